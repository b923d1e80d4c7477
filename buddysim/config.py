"""Machine configs: what a simulated machine is, validated with pydantic (STYLE §6).

A machine is its physical memory (``[[memory]]``: the ``memblock.memory`` ranges with their
node, or ``[[e820]]``: the BIOS-e820 map, with ``[[numa]]`` node spans standing in for the ACPI
SRAT), its boot-time reservations (``[[reserved]]``: ``memblock.reserved``), its zone limits
(``[zones]``: x86-64 ``arch_zone_limits_init`` defaults, or explicit; ``kernelcore=`` /
``movablecore=`` as the kernel parses them), and the knobs of the allocator (``nr_cpus``,
``max_page_order``, ``pageblock_order``, ``min_free_kbytes``, ``deferred_struct_page_init``, the
default refcount model and site table). Byte addresses and sizes accept integers, hex strings
(``"0x100000"``) and memparse sizes (``"4G"``); ranges take ``start`` plus ``end`` (exclusive)
or ``size``.

The e820 path follows ``arch/x86/kernel/e820.c`` and ``setup.c``: ``trim_bios_range`` (page 0
becomes reserved, 640 KiB–1 MiB is removed from RAM), ``e820__update_table`` (overlaps resolved,
neighbours merged), then ``e820__memblock_setup`` adds the usable entries to memblock and trims
them to whole pages (see :func:`buddysim.mm.memblock.memblock_from_config`).

``load_config`` reads TOML (``tomllib``), validates, and turns every error into
:class:`~buddysim.errors.BadInput` reading ``file:LINE: key.path: what was expected``.
Presets ship in ``buddysim/presets`` and are read with ``importlib.resources``.

Simplified: no ``mem=`` / ``memmap=`` / ``movable_node`` / ``kernelcore=mirror`` (refused with a
clear error); one e820 table (no ``e820_table_kexec`` / firmware copies); CPUs are not bound to
nodes (a consumer spreads ``nr_cpus`` over the nodes); memory flags (hotplug, mirror, nomap) are
not configurable.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from buddysim.errors import BadInput
from buddysim.toml_text import locate_key, toml_decode_error

__all__ = [
    "DEFAULT_DMA32_LIMIT",
    "DEFAULT_DMA_LIMIT",
    "E820_TYPES",
    "MAX_NUMNODES",
    "MAX_PHYS_ADDR",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "Config",
    "ConfigError",
    "CoreSpec",
    "E820Entry",
    "MemoryRange",
    "NumaNode",
    "ReservedRange",
    "ZoneLimits",
    "config_from_dict",
    "e820__range_remove",
    "e820__range_update",
    "e820__update_table",
    "format_size",
    "list_presets",
    "load_config",
    "load_preset",
    "memparse",
    "parse_core",
    "resolve_config",
    "trim_bios_range",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: x86-64 with 5-level paging: 52 physical address bits (MAX_PHYSMEM_BITS).
MAX_PHYS_ADDR = 1 << 52
#: CONFIG_NODES_SHIFT=10 (distro kernels): node ids 0..1023.
MAX_NUMNODES = 1 << 10
#: arch/x86/include/asm/dma.h: MAX_DMA_PFN (16 MiB) and MAX_DMA32_PFN (4 GiB), in bytes.
DEFAULT_DMA_LIMIT = 16 << 20
DEFAULT_DMA32_LIMIT = 4 << 30
#: BIOS_BEGIN / BIOS_END (arch/x86/include/asm/e820/types.h): the legacy 640 KiB–1 MiB window.
BIOS_BEGIN = 0xA0000
BIOS_END = 0x100000

#: e820_print_type() labels. The kernel sorts overlapping entries by type number (the greater
#: type wins in e820__update_table); the numbers follow enum e820_type.
E820_TYPES: dict[str, int] = {
    "usable": 1,
    "reserved": 2,
    "ACPI data": 3,
    "ACPI NVS": 4,
    "unusable": 5,
    "persistent (type 7)": 7,
    "persistent (type 12)": 12,
    "soft reserved": 0xEFFFFFFF,
}
_E820_TYPE_RE = re.compile(r"type (\d+)")

_SUFFIX = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
_SIZE_RE = re.compile(r"^\s*(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)\s*([kmgtpe]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_EXPECTED = 'expected a byte count: an integer, a hex string like "0x100000" or a size like "4G"'


# --------------------------------------------------------------------------------------------
# sizes


def memparse(text: str) -> int:
    """Parse a size as ``memparse()`` (lib/cmdline.c) does: a C number, then K/M/G/T/P/E.

    >>> memparse("4G"), memparse("0x1000"), memparse("640K")
    (4294967296, 4096, 655360)

    Also accepts ``KiB``/``KB`` style suffixes. Raises ``ValueError`` on anything else.
    """
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"{text!r}: {_SIZE_EXPECTED}")
    digits, suffix = m.groups()
    if digits.lower().startswith("0x"):
        value = int(digits, 16)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)  # simple_strtoull(base 0): a leading 0 means octal
    else:
        value = int(digits)
    return value << _SUFFIX[suffix.upper()]


def _parse_bytes(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r}: {_SIZE_EXPECTED}")
    if isinstance(value, int):
        v = value
    elif isinstance(value, str):
        v = memparse(value)
    else:
        raise ValueError(f"{value!r}: {_SIZE_EXPECTED}")
    if v < 0:
        raise ValueError(f"{value!r}: must not be negative")
    if v > MAX_PHYS_ADDR:
        raise ValueError(f"{value!r}: beyond the 52-bit x86-64 physical address space")
    return v


ByteCount = Annotated[int, BeforeValidator(_parse_bytes)]


def format_size(n: int) -> str:
    """The shortest exact size string: ``"4G"``, ``"640K"``, ``"0x9fc00"`` for odd values."""
    if n == 0:
        return "0"
    for suffix in ("E", "P", "T", "G", "M", "K"):
        shift = _SUFFIX[suffix]
        if n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return hex(n)


def _fmt_range(start: int, end: int) -> str:
    return f"[{start:#x}-{end:#x})"


# --------------------------------------------------------------------------------------------
# kernelcore= / movablecore=


class CoreSpec(BaseModel):
    """A parsed ``kernelcore=`` / ``movablecore=`` value: bytes, or a percentage of memory."""

    model_config = ConfigDict(frozen=True)

    pages: int = 0
    percent: int = 0
    text: str = ""


def parse_core(text: str) -> CoreSpec:
    """``cmdline_parse_core()`` (mm/mm_init.c): ``"NN%"`` is a percentage, else memparse bytes.

    ``kernelcore=mirror`` is recognised and refused (mirrored memory is not modelled).
    """
    t = text.strip()
    if t == "mirror":
        raise ValueError(
            "kernelcore=mirror (mirrored memory) is not modelled; give a size such as '2G' "
            "or a percentage such as '25%'"
        )
    m = re.match(r"^(0x[0-9a-f]+|\d+)%$", t, re.IGNORECASE)
    if m:
        pct = int(m.group(1), 0)
        if pct > 100:
            raise ValueError(f"{text!r}: a percentage must be at most 100%")
        return CoreSpec(percent=pct, text=t)
    try:
        nbytes = memparse(t)
    except ValueError:
        raise ValueError(f"{text!r}: expected a size such as '2G' or a percentage such as '25%'") from None
    return CoreSpec(pages=nbytes >> PAGE_SHIFT, text=t)


# --------------------------------------------------------------------------------------------
# the e820 table (arch/x86/kernel/e820.c)

E820Table = list[tuple[int, int, str]]  # (start, end exclusive, type label)


def _e820_rank(kind: str) -> int:
    if kind in E820_TYPES:
        return E820_TYPES[kind]
    m = _E820_TYPE_RE.fullmatch(kind)
    return int(m.group(1)) if m else 0xFFFFFFFF


def e820__update_table(table: Iterable[tuple[int, int, str]]) -> E820Table:
    """Sanitize an e820 table: resolve overlaps (the greater type wins) and merge neighbours.

    Models ``e820__update_table()``; empty entries are dropped.
    """
    entries = [(s, e, t) for s, e, t in table if e > s]
    points = sorted({p for s, e, _ in entries for p in (s, e)})
    out: E820Table = []
    for lo, hi in pairwise(points):
        kinds = [t for s, e, t in entries if s <= lo and hi <= e]
        if not kinds:
            continue
        kind = max(kinds, key=_e820_rank)
        if out and out[-1][1] == lo and out[-1][2] == kind:
            out[-1] = (out[-1][0], hi, kind)
        else:
            out.append((lo, hi, kind))
    return out


def e820__range_update(
    table: Iterable[tuple[int, int, str]], start: int, size: int, old_type: str, new_type: str
) -> E820Table:
    """``e820__range_update()``: the ``old_type`` parts of ``[start, start+size)`` become ``new_type``."""
    end = start + size
    out: E820Table = []
    for s, e, t in table:
        if t != old_type or e <= start or s >= end:
            out.append((s, e, t))
            continue
        if s < start:
            out.append((s, start, t))
        out.append((max(s, start), min(e, end), new_type))
        if e > end:
            out.append((end, e, t))
    return e820__update_table(out)


def e820__range_remove(
    table: Iterable[tuple[int, int, str]], start: int, size: int, old_type: str | None = None
) -> E820Table:
    """``e820__range_remove()``: drop ``[start, start+size)`` (only entries of ``old_type`` if given)."""
    end = start + size
    out: E820Table = []
    for s, e, t in table:
        if (old_type is not None and t != old_type) or e <= start or s >= end:
            out.append((s, e, t))
            continue
        if s < start:
            out.append((s, start, t))
        if e > end:
            out.append((end, e, t))
    return e820__update_table(out)


def trim_bios_range(table: Iterable[tuple[int, int, str]]) -> E820Table:
    """``trim_bios_range()`` (arch/x86/kernel/setup.c): page 0 is reserved, 640K–1M is not RAM."""
    t = e820__range_update(table, 0, PAGE_SIZE, "usable", "reserved")
    return e820__range_remove(t, BIOS_BEGIN, BIOS_END - BIOS_BEGIN, "usable")


# --------------------------------------------------------------------------------------------
# the models


class ConfigError(BadInput):
    """A cross-field config error raised inside validation: carries the key path in ``field``.

    Not a ``ValueError``, so pydantic lets it through unchanged; :func:`load_config` adds the file.
    """


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Strict):
    start: ByteCount
    end: ByteCount | None = Field(default=None, description="exclusive end address")
    size: ByteCount | None = None

    @_model_validator(mode="after")
    def _end_or_size(self) -> _Range:
        if (self.end is None) == (self.size is None):
            which = "both" if self.end is not None else "neither"
            raise ValueError(f"give exactly one of end (exclusive) or size; got {which}")
        if self.limit <= self.start:
            raise ValueError(f"empty range {_fmt_range(self.start, self.limit)}: end must be above start")
        if self.limit > MAX_PHYS_ADDR:
            raise ValueError("range ends beyond the 52-bit x86-64 physical address space")
        return self

    @property
    def limit(self) -> int:
        """The exclusive end address (``start + size`` when ``size`` was given)."""
        return self.end if self.end is not None else self.start + (self.size or 0)


class MemoryRange(_Range):
    """A ``memblock.memory`` range as ``memblock_add_node(start, size, nid, 0)`` adds it."""

    nid: Annotated[int, Field(ge=0, lt=MAX_NUMNODES)] = 0


class E820Entry(_Range):
    """A BIOS-e820 entry; only ``usable`` entries become memory."""

    type: str = "usable"

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v in E820_TYPES or _E820_TYPE_RE.fullmatch(v):
            return v
        raise ValueError(f"unknown e820 type {v!r}; expected one of {', '.join(E820_TYPES)} or 'type N'")


class NumaNode(_Range):
    """A node's physical span (an ACPI SRAT memory affinity entry); a node may have several."""

    nid: Annotated[int, Field(ge=0, lt=MAX_NUMNODES)]


class ReservedRange(_Range):
    """A ``memblock_reserve(start, size)`` made before the handoff (kernel image, memmap, …)."""

    name: Annotated[str, Field(min_length=1)]


class ZoneLimits(_Strict):
    """Zone limits (``max_zone_pfns``) as physical addresses, and ZONE_MOVABLE sizing.

    ``dma`` / ``dma32`` are the exclusive upper addresses of ZONE_DMA / ZONE_DMA32 (x86-64:
    16 MiB and 4 GiB); ZONE_NORMAL reaches ``max_pfn``. ``dma = 0`` means no ZONE_DMA.
    """

    dma: ByteCount = DEFAULT_DMA_LIMIT
    dma32: ByteCount = DEFAULT_DMA32_LIMIT
    kernelcore: str | None = Field(default=None, description="kernelcore=SIZE or NN%")
    movablecore: str | None = Field(default=None, description="movablecore=SIZE or NN%")

    @field_validator("kernelcore", "movablecore")
    @classmethod
    def _core(cls, v: str | None) -> str | None:
        if v is not None:
            parse_core(v)
        return v

    @property
    def kernelcore_spec(self) -> CoreSpec | None:
        return parse_core(self.kernelcore) if self.kernelcore is not None else None

    @property
    def movablecore_spec(self) -> CoreSpec | None:
        return parse_core(self.movablecore) if self.movablecore is not None else None


class Config(_Strict):
    """A machine. Load with :func:`load_config` / :func:`load_preset` / :func:`resolve_config`."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    nr_cpus: Annotated[int, Field(ge=1, le=8192)] = 1
    max_page_order: Annotated[int, Field(ge=1, le=20)] = 10
    pageblock_order: Annotated[int, Field(ge=1, le=20)] = 9
    min_free_kbytes: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="None: the kernel's formula (calculate_min_free_kbytes)"
    )
    deferred_struct_page_init: bool = False
    refcount: str = "baseline"
    sites: str | None = None
    memory: tuple[MemoryRange, ...] = ()
    e820: tuple[E820Entry, ...] = ()
    numa: tuple[NumaNode, ...] = ()
    reserved: tuple[ReservedRange, ...] = ()
    zones: ZoneLimits = ZoneLimits()

    @field_validator("refcount")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from buddysim.refcount.registry import ModelLookupError, get_model

        try:
            get_model(v)
        except ModelLookupError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("sites")
    @classmethod
    def _known_sites(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from buddysim.refcount.registry import ModelLookupError, get_site_table
        from buddysim.refcount.sites import SITE_TABLES

        try:
            get_site_table(v)
        except ModelLookupError:
            raise ValueError(
                f"unknown site table {v!r}; expected one of {', '.join(SITE_TABLES)} or a refcount model name"
            ) from None
        return v

    @_model_validator(mode="after")
    def _machine(self) -> Config:
        _check_machine(self)
        return self

    # -- derived views (pure arithmetic, cached: the model is frozen) --------------------

    @cached_property
    def e820_table(self) -> tuple[tuple[int, int, str], ...]:
        """The e820 map after ``trim_bios_range`` and ``e820__update_table`` (empty with ``memory``)."""
        if not self.e820:
            return ()
        return tuple(trim_bios_range(e820__update_table((e.start, e.limit, e.type) for e in self.e820)))

    @cached_property
    def memory_ranges(self) -> tuple[tuple[int, int, int], ...]:
        """``memblock.memory`` as ``(start, end, nid)`` byte ranges, as the handoff will see it."""
        from buddysim.mm.memblock import memblock_from_config

        mb = memblock_from_config(self, reserve=False)
        return tuple((r.base, r.end, r.nid) for r in mb.memory)

    @property
    def nodes(self) -> tuple[int, ...]:
        """The node ids that have memory, ascending."""
        return tuple(sorted({nid for _, _, nid in self.memory_ranges}))

    @property
    def max_pfn(self) -> int:
        """``max_pfn``: the end of the last memory range, in pages."""
        return max(end for _, end, _ in self.memory_ranges) >> PAGE_SHIFT

    @property
    def MAX_ORDER_NR_PAGES(self) -> int:
        return 1 << self.max_page_order

    @property
    def pageblock_nr_pages(self) -> int:
        return 1 << self.pageblock_order


def _overlaps(items: Sequence[tuple[int, int, str]]) -> tuple[str, str, str] | None:
    """First overlap among labelled ranges: (later label, earlier label, description)."""
    ordered = sorted(items)
    for (s0, e0, k0), (s1, e1, k1) in pairwise(ordered):
        if s1 < e0:
            return k1, k0, f"{_fmt_range(s1, e1)} overlaps {k0} {_fmt_range(s0, e0)}"
    return None


def _check_machine(cfg: Config) -> None:
    """Cross-field checks; each raises :class:`ConfigError` naming the key path."""
    if cfg.pageblock_order > cfg.max_page_order:
        raise ConfigError(
            f"{cfg.pageblock_order} is above max_page_order ({cfg.max_page_order}); "
            "expected pageblock_order <= max_page_order (PAGE_BLOCK_MAX_ORDER <= MAX_PAGE_ORDER)",
            field="pageblock_order",
        )
    if cfg.memory and cfg.e820:
        raise ConfigError(
            "give the memory either as [[memory]] (memblock.memory) or as [[e820]] (BIOS map), not both",
            field="memory",
        )
    if not cfg.memory and not cfg.e820:
        raise ConfigError("no memory: expected [[memory]] or [[e820]] ranges", field="memory")
    if cfg.numa and not cfg.e820:
        raise ConfigError(
            "[[numa]] node spans only apply to an [[e820]] map; give nid on each [[memory]] range",
            field="numa",
        )
    for i, r in enumerate(cfg.memory):
        if r.start % PAGE_SIZE or r.limit % PAGE_SIZE:
            bad = "start" if r.start % PAGE_SIZE else ("end" if r.end is not None else "size")
            raise ConfigError(
                f"{_fmt_range(r.start, r.limit)} is not page aligned; memblock.memory ranges "
                f"are whole pages ({PAGE_SIZE:#x} bytes) after memblock_trim_memory",
                field=f"memory[{i}].{bad}",
            )
    entries: tuple[_Range, ...]
    for key, entries in (("memory", cfg.memory), ("e820", cfg.e820), ("numa", cfg.numa)):
        hit = _overlaps([(r.start, r.limit, f"{key}[{i}]") for i, r in enumerate(entries)])
        if hit:
            raise ConfigError(hit[2], field=hit[0])
    if cfg.e820:
        usable = [(s, e) for s, e, t in cfg.e820_table if t == "usable"]
        pages = [(-(-s // PAGE_SIZE) * PAGE_SIZE, e // PAGE_SIZE * PAGE_SIZE) for s, e in usable]
        if not any(e > s for s, e in pages):
            raise ConfigError(
                "no usable RAM: after trim_bios_range (page 0 reserved, 640K-1M removed) and "
                "trimming to whole pages, no 'usable' entry is left",
                field="e820",
            )
        if cfg.numa:
            spans = sorted((n.start, n.limit) for n in cfg.numa)
            for s, e in pages:
                pos = s
                for ns, ne in spans:
                    if ns <= pos < ne:
                        pos = ne
                if s < e and pos < e:
                    idx = next((i for i, x in enumerate(cfg.e820) if x.start <= pos < x.limit), None)
                    raise ConfigError(
                        f"usable RAM at {pos:#x} is not inside any [[numa]] node span",
                        field="e820" if idx is None else f"e820[{idx}]",
                    )
    _check_zones(cfg)
    _check_reserved(cfg)


def _check_zones(cfg: Config) -> None:
    z = cfg.zones
    align = PAGE_SIZE << cfg.max_page_order
    for key in ("dma", "dma32"):
        v = getattr(z, key)
        if v % align:
            raise ConfigError(
                f"{v:#x} is not aligned to MAX_ORDER_NR_PAGES ({1 << cfg.max_page_order} pages = "
                f"{format_size(align)}); zone boundaries must be, so no buddy block straddles two zones",
                field=f"zones.{key}",
            )
    if z.dma > z.dma32:
        raise ConfigError(
            f"ZONE_DMA limit {z.dma:#x} is above the ZONE_DMA32 limit {z.dma32:#x}; expected dma <= dma32",
            field="zones.dma",
        )


def _check_reserved(cfg: Config) -> None:
    mem = cfg.memory_ranges
    dram_end = max(e for _, e, _ in mem)
    for i, r in enumerate(cfg.reserved):
        if not any(r.start < e and s < r.limit for s, e, _ in mem):
            raise ConfigError(
                f"{r.name!r} {_fmt_range(r.start, r.limit)} lies outside memory: no memory range overlaps it",
                field=f"reserved[{i}]",
            )
        if r.limit > dram_end:
            raise ConfigError(
                f"{r.name!r} {_fmt_range(r.start, r.limit)} ends beyond the end of memory "
                f"(memblock_end_of_DRAM() = {dram_end:#x})",
                field=f"reserved[{i}].{'end' if r.end is not None else 'size'}",
            )


# --------------------------------------------------------------------------------------------
# loading


def _keypath(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "union[", "nullable[")) or part in (
            "int",
            "str",
            "constrained-int",
        ):
            continue
        else:
            out += f".{part}" if out else part
    return out


def _fields_at(loc: Sequence[int | str]) -> list[str] | None:
    """The allowed keys of the table at ``loc`` (for "unknown key" errors)."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        ann = fields[part].annotation
        inner = getattr(ann, "__args__", None)
        if inner:
            ann = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        model = ann
    fields = getattr(model, "model_fields", None)
    return list(fields) if fields else None


def _messages(e: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in e.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(loc[:-1])
            msg = f"unknown key {loc[-1]!r}" + (f"; expected one of: {', '.join(allowed)}" if allowed else "")
        elif err["type"] == "missing":
            msg = "missing required key"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = f"expected a table, got {type(err['input']).__name__}"
        elif err["type"] in ("tuple_type", "list_type") and loc and isinstance(loc[-1], str):
            msg = f"expected an array of tables ([[{loc[-1]}]]), got {type(err['input']).__name__}"
        out.append((_keypath(loc), msg))
    return out


def _bad(source: str, text: str | None, field: str | None, message: str) -> BadInput:
    line = locate_key(text, field) if (text is not None and field) else None
    return BadInput(message, where=f"{source}:{line}" if line else source, field=field or None)


def config_from_dict(data: Mapping[str, Any], source: str = "<config>", text: str | None = None) -> Config:
    """Validate a parsed TOML document; errors become :class:`BadInput` naming source and key."""
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        msgs = _messages(e)
        field, msg = msgs[0]
        if len(msgs) > 1:
            rest = "; ".join(f"{k}: {m}" for k, m in msgs[1:4])
            more = f" (+{len(msgs) - 4} more)" if len(msgs) > 4 else ""
            msg = f"{msg}; also {rest}{more}"
        raise _bad(source, text, field, msg) from None
    except ConfigError as e:
        raise _bad(source, text, e.field, e.message) from None


def _load_text(text: str, source: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise toml_decode_error(e, source) from None
    return config_from_dict(data, source, text)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a machine config (TOML).

    Raises :class:`BadInput` (``file:LINE: key.path: message``) on any problem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput("no such config file", where=str(p)) from None
    except IsADirectoryError:
        raise BadInput("is a directory, expected a TOML config file", where=str(p)) from None
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 text: {e.reason}", where=str(p)) from None
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror}", where=str(p)) from None
    return _load_text(text, str(p))


def list_presets() -> list[str]:
    """The names of the presets shipped in ``buddysim/presets``."""
    root = resources.files("buddysim.presets")
    return sorted(f.name.removesuffix(".toml") for f in root.iterdir() if f.name.endswith(".toml"))


def load_preset(name: str) -> Config:
    """Load the packaged preset ``name`` (``buddysim/presets/NAME.toml``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name) or name not in list_presets():
        raise BadInput(f"unknown preset {name!r}; expected one of: {', '.join(list_presets())}")
    text = resources.files("buddysim.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return _load_text(text, f"preset {name} (buddysim/presets/{name}.toml)")


def resolve_config(name_or_path: str | os.PathLike[str]) -> Config:
    """A preset name (``x86_64-4g``) or a path to a TOML file."""
    s = os.fspath(name_or_path)
    if os.path.exists(s) or s.endswith(".toml") or os.sep in s or "/" in s:
        return load_config(s)
    if s in list_presets():
        return load_preset(s)
    raise BadInput(
        f"no config file and no preset named {s!r}; presets: {', '.join(list_presets())}",
        where=s,
    )
