"""Trace recorder: writes a header and events as compact JSON lines with a stable key order.

Used by ``buddysim replay --record`` (the events the engine performed, pfns resolved) and by the
generators (``buddysim gen``), whose output must be byte-identical for the same seed. Keys come
out in the order the op declares them in :mod:`buddysim.trace.events` (``"op"`` first), absent
optional fields are left out, nested objects (an inline machine config, ``meta``) are written with
sorted keys, and gfp masks are written symbolically as ``show_gfp_flags()`` prints them
(``"GFP_KERNEL|__GFP_COMP"``). A name ending in ``.gz`` or ``.xz`` is compressed; gzip output
carries no timestamp or file name, so it is reproducible too. What is written reads back as the
same events (:class:`~buddysim.trace.reader.TraceReader`).
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
from collections.abc import Iterable, Mapping
from typing import IO, Any, cast

from pydantic import ValidationError

from buddysim.errors import BadInput
from buddysim.mm.gfp import format_gfp, parse_gfp
from buddysim.trace.events import EVENT_ADAPTER, FIELD_ORDER, FORMAT_VERSION, HEADER_ADAPTER, Event, Header

__all__ = ["TraceRecorder", "dumps_event", "dumps_header", "make_header", "write_trace"]

_SEPARATORS = (",", ":")


def make_header(
    machine: str | Mapping[str, Any],
    *,
    refcount: str | None = None,
    sites: str | None = None,
    seed: int | None = None,
    source: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Header:
    """A header for the current :data:`~buddysim.trace.events.FORMAT_VERSION`."""
    header: dict[str, Any] = {"op": "header", "version": FORMAT_VERSION, "machine": machine}
    if refcount is not None:
        header["refcount"] = refcount
    header["sites"] = sites
    header["seed"] = seed
    if source is not None:
        header["source"] = source
    if meta is not None:
        header["meta"] = dict(meta)
    return cast(Header, header)


def dumps_header(header: Mapping[str, Any]) -> str:
    """One header line (no newline): declared key order, nested objects with sorted keys."""
    unknown = set(header) - set(FIELD_ORDER["header"])
    if unknown:
        raise ValueError(f"unknown header field(s): {', '.join(sorted(unknown))}")
    parts = [
        f"{json.dumps(k)}:{json.dumps(header[k], sort_keys=True, separators=_SEPARATORS, ensure_ascii=False)}"
        for k in FIELD_ORDER["header"]
        if k in header
    ]
    return "{" + ",".join(parts) + "}"


#: one encoder for every event (json.dumps with non-default options builds one per call)
_ENCODE = json.JSONEncoder(separators=_SEPARATORS, ensure_ascii=False).encode


def _gfp_text(value: int | str) -> str:
    return format_gfp(parse_gfp(value))


def dumps_event(event: Mapping[str, Any]) -> str:
    """One event line (no newline): ``"op"`` first, then the op's fields in declared order."""
    op = event.get("op")
    order = FIELD_ORDER.get(op) if isinstance(op, str) else None
    if order is None or op == "header":
        raise ValueError(f"not an event op: {op!r}")
    if len(event) > len(order) or any(k not in order for k in event):
        unknown = [k for k in event if k not in order]
        raise ValueError(f"{op}: unknown field(s): {', '.join(map(str, unknown))}")
    out = {k: event[k] for k in order if k in event}
    if "gfp" in out:
        out["gfp"] = _gfp_text(out["gfp"])
    return _ENCODE(out)


def _open_for_writing(path: str) -> IO[bytes]:
    try:
        raw = open(path, "wb")
    except OSError as e:
        raise BadInput(f"cannot write trace: {e.strerror or e}", where=path) from None
    if path.endswith(".gz"):
        # mtime=0 and no file name: the same events give the same bytes
        return cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
    if path.endswith(".xz"):
        return cast(IO[bytes], lzma.LZMAFile(raw, mode="wb"))
    return raw


class TraceRecorder:
    """Write a trace line by line: ``with TraceRecorder("out.jsonl", header) as rec: rec.write(ev)``.

    ``validate`` (default on) checks the header and every event against the schema before
    writing it, so a recorder never produces a trace the reader refuses; an engine writing
    events it has just read can pass ``validate=False``. Invalid input raises ``ValueError``.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: Mapping[str, Any], *, validate: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self.validate = validate
        self.nr_events = 0
        if validate:
            _validated(HEADER_ADAPTER.validate_python, header, "header")
        line = dumps_header(header)
        self._file = _open_for_writing(self.path)
        self._raw = getattr(self._file, "fileobj", None) or getattr(self._file, "_fp", None)
        self._file.write(line.encode() + b"\n")

    def write(self, event: Mapping[str, Any] | Event) -> None:
        """Append one event."""
        if self.validate:
            _validated(EVENT_ADAPTER.validate_python, event, event.get("op"))
        self._file.write(dumps_event(event).encode() + b"\n")
        self.nr_events += 1

    def write_many(self, events: Iterable[Mapping[str, Any] | Event]) -> int:
        """Append events; returns how many were written."""
        before = self.nr_events
        for event in events:
            self.write(event)
        return self.nr_events - before

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._raw is not None and not self._raw.closed:
            self._raw.close()

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _validated(validate: Any, value: Mapping[str, Any], what: object) -> None:
    try:
        validate(dict(value))
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"]) or str(what)
        raise ValueError(f"refusing to write an invalid {what}: {loc}: {first['msg']}") from None


def write_trace(
    path: str | os.PathLike[str],
    header: Mapping[str, Any],
    events: Iterable[Mapping[str, Any] | Event],
    *,
    validate: bool = True,
) -> int:
    """Write a whole trace; returns the number of events written."""
    with TraceRecorder(path, header, validate=validate) as recorder:
        return recorder.write_many(events)
