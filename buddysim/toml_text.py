"""Where a key or a syntax error sits in a TOML text: the ``file:line`` of bad-input messages.

``tomllib`` keeps no positions, so :func:`locate_key` finds a validation error's key path
(``thread[1].program``) by scanning the text's table headers and keys (best effort: the key's
own line, else its table's header line).
"""

from __future__ import annotations

import re
import tomllib

from buddysim.errors import BadInput

__all__ = ["locate_key", "toml_decode_error"]

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def locate_key(text: str, keypath: str) -> int | None:
    """Best-effort 1-based line of ``keypath`` (``memory[1].end``) in TOML ``text``."""
    m = re.match(r"^([A-Za-z0-9_]+)(?:\[(\d+)\])?(?:\.([A-Za-z0-9_]+))?", keypath)
    if not m:
        return None
    table, index, leaf = m.group(1), m.group(2), m.group(3)
    counts: dict[str, int] = {}
    current: tuple[str, int | None] = ("", None)
    header_line: int | None = None
    for n, line in enumerate(text.splitlines(), 1):
        h = _HEADER_RE.match(line)
        if h:
            name = h.group(2)
            if h.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                current = (name, counts[name])
            else:
                current = (name, None)
            if current[0] == table and (index is None or current[1] == int(index)):
                header_line = n
                if leaf is None:
                    return n
            continue
        k = _KEY_RE.match(line)
        if not k:
            continue
        key = k.group(1)
        if index is None and leaf is None and current[0] == "" and key == table:
            return n
        if index is None and leaf is not None and current == (table, None) and key == leaf:
            return n
        if index is not None and current == (table, int(index)) and key == leaf:
            return n
    return header_line


def toml_decode_error(e: tomllib.TOMLDecodeError, source: str) -> BadInput:
    """``source:LINE: invalid TOML: ...`` from tomllib's ``(at line L, column C)`` message."""
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
    where = f"{source}:{m.group(1)}" if m else source
    return BadInput(f"invalid TOML: {str(e).split(' (at line')[0]}", where=where)
