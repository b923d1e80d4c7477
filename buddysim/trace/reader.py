"""Streaming trace reader: ``(line_number, event)`` pairs, validated line by line.

Reads a trace (docs/trace-format.md) in constant memory: the file is never read whole, each line
goes to the event union's core validator (``EVENT_ADAPTER.validator.validate_json(line)``) as
bytes (no ``json.loads`` first) and is dropped once validated. ``.gz`` and ``.xz`` files are
recognised by their magic bytes and decompressed on the fly; ``-`` reads standard input.

A bad line becomes ``trace.jsonl:LINE: op.field: what was expected`` (1-based line numbers,
built from ``ValidationError.errors(include_url=False)``): in strict mode the first one raises
:class:`~buddysim.errors.BadInput` (exit 2); with ``continue_on_error`` bad lines are skipped and
counted, and the first ``max_errors`` are kept as :class:`TraceError` records. A missing or
invalid header and an unsupported format version are always fatal. Blank lines are skipped.

The hot loop is ``zip(count(), map(validate_json, file))`` under ``yield from``: iteration,
numbering and validation all run in C, with Python code only on a bad line.
"""

from __future__ import annotations

import difflib
import gzip
import json
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import IO, Any, cast

from pydantic import ValidationError

from buddysim.errors import BadInput
from buddysim.trace.events import (
    EVENT_ADAPTER,
    FIELD_ORDER,
    FORMAT_VERSION,
    HEADER_ADAPTER,
    OPS,
    SUPPORTED_VERSIONS,
    Event,
    Header,
)

__all__ = ["DEFAULT_MAX_ERRORS", "TraceError", "TraceReader", "open_trace_binary", "peek_header"]

DEFAULT_MAX_ERRORS = 20

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BOM = b"\xef\xbb\xbf"
#: errors a broken compressed stream raises while it is read
_STREAM_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error)
#: error kinds whose message already shows the offending value
_QUOTES_INPUT = frozenset({"gfp_flags", "align_power_of_two"})
_HEADER_EXAMPLE = f'{{"op": "header", "version": {FORMAT_VERSION}, "machine": ...}}'


@dataclass(frozen=True, slots=True)
class TraceError:
    """One bad line (or a bad file): where, which field, what was expected."""

    #: the file name as given
    path: str
    #: 1-based line number, None for file-level errors (empty file, corrupt stream)
    line: int | None
    #: ``op.field`` (``alloc_pages.order``), ``op``, ``header.version``, or None
    field: str | None
    message: str
    #: a machine-readable kind: the pydantic error type or one of ours (``json_invalid``,
    #: ``truncated_line``, ``header``, ``version``, ``empty``, ``stream``)
    kind: str

    @property
    def where(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def render(self) -> str:
        """``trace.jsonl:12: alloc_pages.order: Input should be less than or equal to 10, got 11``."""
        return self.to_bad_input().render()

    def to_bad_input(self) -> BadInput:
        return BadInput(self.message, where=self.where, field=self.field)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message, "kind": self.kind}


def open_trace_binary(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a trace for reading bytes: plain, gzip or xz (by magic bytes); ``-`` is stdin.

    Raises :class:`BadInput` when the file cannot be opened.
    """
    name = os.fspath(path)
    if name == "-":
        return sys.stdin.buffer
    try:
        raw = open(name, "rb")
    except OSError as e:
        raise BadInput(f"cannot open trace: {e.strerror or e}", where=name) from None
    try:
        magic = raw.read(6)
        raw.seek(0)
    except OSError as e:
        raw.close()
        raise BadInput(f"cannot read trace: {e.strerror or e}", where=name) from None
    if magic.startswith(_GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic.startswith(_XZ_MAGIC):
        return cast(IO[bytes], lzma.LZMAFile(raw, mode="rb"))
    return raw


def _close(f: IO[bytes]) -> None:
    if f is sys.stdin.buffer:
        return
    inner = getattr(f, "fileobj", None) or getattr(f, "_fp", None)
    f.close()
    if inner is not None and hasattr(inner, "close"):
        inner.close()


def _show(value: Any, limit: int = 40) -> str:
    # A short rendering of the offending input for "got ..." (JSON spelling).
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_message(error: dict[str, Any]) -> tuple[str, str]:
    detail = str(error.get("ctx", {}).get("error", error["msg"]))
    detail = detail.replace(" at line 1 column ", " at column ")
    line = error.get("input")
    if isinstance(line, bytes) and not line.endswith(b"\n") and "EOF while parsing" in detail:
        return "truncated_line", f"truncated final line (no newline at end of file): invalid JSON: {detail}"
    return "json_invalid", f"invalid JSON: {detail}"


def _unknown_op_message(tag: str) -> str:
    if tag == "header":
        return "a header is only allowed on the first line"
    close = difflib.get_close_matches(tag, OPS, n=1, cutoff=0.6)
    if close:
        return f"unknown op {tag!r} (did you mean {close[0]!r}?)"
    return f"unknown op {tag!r}; format version {FORMAT_VERSION} has: {', '.join(OPS)}"


def _field_message(error: dict[str, Any], op: str | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        fields = [f for f in FIELD_ORDER.get(op or "", ()) if f != "op"]
        has = f"; {op} has: {', '.join(fields)}" if fields else f"; {op} has no other fields"
        return f"unknown field{has}"
    msg = str(error["msg"])
    if kind not in _QUOTES_INPUT and "input" in error and not isinstance(error["input"], dict):
        msg = f"{msg}, got {_show(error['input'])}"
    return msg


def _describe(e: ValidationError, prefix: str | None = None) -> tuple[str | None, str, str]:
    """(field, message, kind) for one failed line; the first error leads, others are appended."""
    parts: list[tuple[str | None, str, str]] = []
    for error in e.errors(include_url=False):
        kind = error["type"]
        loc = error["loc"]
        if kind == "json_invalid":
            kind, msg = _json_message(error)
            parts.append((None, msg, kind))
            continue
        if kind == "union_tag_invalid":
            parts.append(("op", _unknown_op_message(str(error["ctx"]["tag"])), kind))
            continue
        if kind == "union_tag_not_found":
            parts.append(("op", 'missing "op": every line is a JSON object tagged by "op"', kind))
            continue
        if kind in ("dict_type", "typed_dict_type") and not loc:
            parts.append((None, f"expected a JSON object, got {_show(error.get('input'))}", kind))
            continue
        op = prefix or (str(loc[0]) if loc else None)
        field = ".".join(str(p) for p in ((prefix, *loc) if prefix else loc)) or None
        parts.append((field, _field_message(error, op), kind))
    field, message, kind = parts[0]
    if len(parts) > 1:
        more = "; ".join(f"{f}: {m}" if f else m for f, m, _ in parts[1:3])
        extra = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
        message = f"{message} (also {more}{extra})"
    return field, message, kind


class TraceReader:
    """Iterate a trace: ``for line, event in TraceReader("trace.jsonl"): ...``.

    Opening reads and checks the header (available as :attr:`header` before iterating).
    Iteration yields ``(line_number, event)`` with ``event`` the validated dict of
    :data:`buddysim.trace.events.Event` (gfp already an ``int``). A reader iterates once.

    ``continue_on_error``: skip bad lines, count them in :attr:`nr_bad_lines`, keep the first
    ``max_errors`` in :attr:`errors`; otherwise the first bad line raises :class:`BadInput`.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        continue_on_error: bool = False,
        max_errors: int = DEFAULT_MAX_ERRORS,
    ) -> None:
        self.path = os.fspath(path)
        self.continue_on_error = continue_on_error
        self.max_errors = max_errors
        self.errors: list[TraceError] = []
        self.nr_bad_lines = 0
        #: the last line number read (header and blank lines included), after iteration
        self.nr_lines = 0
        self._started = False
        self._file = open_trace_binary(self.path)
        try:
            self.header_line, self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ header
    def _fatal(self, line: int | None, field: str | None, message: str, kind: str) -> BadInput:
        return TraceError(self.path, line, field, message, kind).to_bad_input()

    def _read_header(self) -> tuple[int, Header]:
        lineno = 0
        try:
            for raw in self._file:
                lineno += 1
                if not raw.isspace():
                    break
            else:
                where = "empty trace" if lineno == 0 else "no header: the trace has only blank lines"
                raise self._fatal(None, None, f"{where}; the first line must be {_HEADER_EXAMPLE}", "empty")
        except _STREAM_ERRORS as e:
            raise self._fatal(None, None, f"cannot read trace: {e}", "stream") from None
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            obj = json.loads(raw)  # one line only: lets us say "version" before the schema
        except ValueError as e:
            msg = f"invalid JSON ({e}); the first line must be the header {_HEADER_EXAMPLE}"
            raise self._fatal(lineno, None, msg, "json_invalid") from None
        if not isinstance(obj, dict) or obj.get("op") != "header":
            got = f"op {obj.get('op')!r}" if isinstance(obj, dict) else _show(obj)
            msg = f"missing header: the first line must be {_HEADER_EXAMPLE}, got {got}"
            raise self._fatal(lineno, None, msg, "header")
        version = obj.get("version")
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        if "version" not in obj:
            raise self._fatal(lineno, "header.version", "required field is missing", "version")
        if type(version) is not int:
            msg = f"must be an integer format version ({supported}), got {_show(version)}"
            raise self._fatal(lineno, "header.version", msg, "version")
        if version not in SUPPORTED_VERSIONS:
            newer = " (written by a newer buddysim?)" if version > max(SUPPORTED_VERSIONS) else ""
            msg = (
                f"unsupported trace format version {version}{newer}; this buddysim reads version {supported}"
            )
            raise self._fatal(lineno, "header.version", msg, "version")
        try:
            header = HEADER_ADAPTER.validate_json(raw)
        except ValidationError as e:
            field, message, kind = _describe(e, prefix="header")
            raise self._fatal(lineno, field, message, kind) from None
        return lineno, header

    # ------------------------------------------------------------------ events
    def __iter__(self) -> Iterator[tuple[int, Event]]:
        if self._started:
            raise RuntimeError("a TraceReader iterates once; open the trace again")
        self._started = True
        return self._events()

    def _events(self) -> Iterator[tuple[int, Event]]:
        validate = EVENT_ADAPTER.validator.validate_json  # the core validator: no Python wrapper per line
        validated = map(validate, self._file)  # advances past a line even when it fails
        numbers = count(self.header_line + 1)
        try:
            while True:
                try:
                    yield from zip(numbers, validated, strict=False)
                    break
                except ValidationError as e:
                    # the failed line consumed one number: the next one is the line after it
                    after = next(numbers)
                    numbers = count(after)
                    self._bad_line(after - 1, e)
        except _STREAM_ERRORS as e:
            # zip took a number for the line it could not read
            line = next(numbers) - 2
            if isinstance(self._file, (gzip.GzipFile, lzma.LZMAFile)):
                msg = f"compressed stream is truncated or corrupt after line {line}: {e}"
            else:
                msg = f"cannot read the trace after line {line}: {e}"
            raise self._fatal(None, None, msg, "stream") from None
        # zip took one number before it found the end of the file
        self.nr_lines = next(numbers) - 2

    def _bad_line(self, lineno: int, e: ValidationError) -> None:
        first = e.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            line = first.get("input")
            if isinstance(line, bytes) and line.isspace():
                return  # blank line
        field, message, kind = _describe(e)
        error = TraceError(self.path, lineno, field, message, kind)
        if not self.continue_on_error:
            self.nr_lines = lineno
            raise error.to_bad_input()
        self.nr_bad_lines += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        f = getattr(self, "_file", None)
        if f is not None:
            _close(f)

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peek_header(path: str | os.PathLike[str]) -> Header:
    """The validated header of a trace, reading only up to its first non-blank line."""
    reader = TraceReader(path)
    reader.close()
    return reader.header
