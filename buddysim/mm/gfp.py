"""GFP flags: include/linux/gfp_types.h, include/linux/gfp.h and show_gfp_flags() (Linux 7.2).

The ``gfp_t`` bits of Linux 7.2 with their kernel names, the composite ``GFP_*`` masks, the
name table that ``show_gfp_flags()`` (include/trace/events/mmflags.h) walks when a kmem
tracepoint prints ``gfp_flags=``, and the two gfp.h helpers the allocator needs:
``gfp_migratetype()`` and ``gfp_zone()`` (``GFP_ZONE_TABLE`` / ``GFP_ZONE_BAD``).
:func:`parse_gfp` reads what a trace carries (``"GFP_KERNEL|__GFP_COMP"``, ``"0x140cca"`` or an
int) and :func:`format_gfp` prints a mask byte for byte as ``show_gfp_flags()`` does.

Configuration assumed (a typical x86-64 distro kernel): ``CONFIG_KASAN_HW_TAGS=n`` (arm64 only),
so ``__GFP_SKIP_ZERO`` and ``__GFP_SKIP_KASAN`` are 0 and have no bit; ``CONFIG_LOCKDEP=n``, so
``__GFP_NOLOCKDEP`` is 0; ``CONFIG_SLAB_OBJ_EXT=y`` (selected by MEMCG), so ``__GFP_NO_OBJ_EXT``
takes the next bit (24) and appears in the name table; ``CONFIG_ZONE_DMA=y``,
``CONFIG_ZONE_DMA32=y``, ``CONFIG_HIGHMEM=n``, ``CONFIG_ZONE_DEVICE=y`` (so
``GFP_ZONES_SHIFT`` = 2). The bit numbers up to 23 are the same in 6.12 and 7.2
(spec/kernel-allocator.md §1.5). No I/O here.

>>> format_gfp(parse_gfp("0x140cca"))
'GFP_HIGHUSER_MOVABLE|__GFP_COMP'
>>> hex(parse_gfp("GFP_KERNEL|__GFP_COMP"))
'0x40cc0'
"""

from __future__ import annotations

import difflib
from functools import lru_cache

from buddysim.mm.mmzone import (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)

__all__ = [
    "GFP_ATOMIC",
    "GFP_BIT_NAMES",
    "GFP_DMA",
    "GFP_DMA32",
    "GFP_HIGHUSER",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_KERNEL",
    "GFP_KERNEL_ACCOUNT",
    "GFP_MOVABLE_MASK",
    "GFP_MOVABLE_SHIFT",
    "GFP_NAMES",
    "GFP_NOFS",
    "GFP_NOIO",
    "GFP_NOWAIT",
    "GFP_TRANSHUGE",
    "GFP_TRANSHUGE_LIGHT",
    "GFP_USER",
    "GFP_ZONEMASK",
    "GFP_ZONES_SHIFT",
    "GFP_ZONE_BAD",
    "GFP_ZONE_TABLE",
    "SHOW_GFP_FLAGS",
    "__GFP_ACCOUNT",
    "__GFP_BITS_MASK",
    "__GFP_BITS_SHIFT",
    "__GFP_COMP",
    "__GFP_DIRECT_RECLAIM",
    "__GFP_DMA",
    "__GFP_DMA32",
    "__GFP_FS",
    "__GFP_HARDWALL",
    "__GFP_HIGH",
    "__GFP_HIGHMEM",
    "__GFP_IO",
    "__GFP_KSWAPD_RECLAIM",
    "__GFP_MEMALLOC",
    "__GFP_MOVABLE",
    "__GFP_NOFAIL",
    "__GFP_NOLOCKDEP",
    "__GFP_NOMEMALLOC",
    "__GFP_NORETRY",
    "__GFP_NOWARN",
    "__GFP_NO_OBJ_EXT",
    "__GFP_RECLAIM",
    "__GFP_RECLAIMABLE",
    "__GFP_RETRY_MAYFAIL",
    "__GFP_SKIP_KASAN",
    "__GFP_SKIP_ZERO",
    "__GFP_THISNODE",
    "__GFP_WRITE",
    "__GFP_ZERO",
    "__GFP_ZEROTAGS",
    "GfpParseError",
    "GfpZoneError",
    "format_gfp",
    "gfp_migratetype",
    "gfp_zone",
    "parse_gfp",
]

# --- BEGIN include/linux/gfp_types.h (Linux 7.2) -------------------------------------------------
# Transcribed by hand from the ___GFP_*_BIT enum, in enum order. Index = bit number.
# "UNUSED" is ___GFP_UNUSED_BIT ("0x200u unused"). ___GFP_SKIP_ZERO_BIT / ___GFP_SKIP_KASAN_BIT
# (CONFIG_KASAN_HW_TAGS) and ___GFP_NOLOCKDEP_BIT (CONFIG_LOCKDEP) are compiled out in the
# configuration above, so ___GFP_NO_OBJ_EXT_BIT is 24 and ___GFP_LAST_BIT is 25.
GFP_BIT_NAMES: tuple[str, ...] = (
    "DMA",  # 0
    "HIGHMEM",  # 1
    "DMA32",  # 2
    "MOVABLE",  # 3
    "RECLAIMABLE",  # 4
    "HIGH",  # 5
    "IO",  # 6
    "FS",  # 7
    "ZERO",  # 8
    "UNUSED",  # 9  (0x200)
    "DIRECT_RECLAIM",  # 10
    "KSWAPD_RECLAIM",  # 11
    "WRITE",  # 12
    "NOWARN",  # 13
    "RETRY_MAYFAIL",  # 14
    "NOFAIL",  # 15
    "NORETRY",  # 16
    "MEMALLOC",  # 17
    "COMP",  # 18
    "NOMEMALLOC",  # 19
    "HARDWALL",  # 20
    "THISNODE",  # 21
    "ACCOUNT",  # 22
    "ZEROTAGS",  # 23
    "NO_OBJ_EXT",  # 24
)

__GFP_DMA = 1 << 0
__GFP_HIGHMEM = 1 << 1
__GFP_DMA32 = 1 << 2
__GFP_MOVABLE = 1 << 3
__GFP_RECLAIMABLE = 1 << 4
__GFP_HIGH = 1 << 5
__GFP_IO = 1 << 6
__GFP_FS = 1 << 7
__GFP_ZERO = 1 << 8
# bit 9 (0x200) unused
__GFP_DIRECT_RECLAIM = 1 << 10
__GFP_KSWAPD_RECLAIM = 1 << 11
__GFP_WRITE = 1 << 12
__GFP_NOWARN = 1 << 13
__GFP_RETRY_MAYFAIL = 1 << 14
__GFP_NOFAIL = 1 << 15
__GFP_NORETRY = 1 << 16
__GFP_MEMALLOC = 1 << 17
__GFP_COMP = 1 << 18
__GFP_NOMEMALLOC = 1 << 19
__GFP_HARDWALL = 1 << 20
__GFP_THISNODE = 1 << 21
__GFP_ACCOUNT = 1 << 22
__GFP_ZEROTAGS = 1 << 23
__GFP_SKIP_ZERO = 0  # CONFIG_KASAN_HW_TAGS=n
__GFP_SKIP_KASAN = 0  # CONFIG_KASAN_HW_TAGS=n
__GFP_NOLOCKDEP = 0  # CONFIG_LOCKDEP=n
__GFP_NO_OBJ_EXT = 1 << 24

__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
__GFP_BITS_SHIFT = 25
__GFP_BITS_MASK = (1 << __GFP_BITS_SHIFT) - 1
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE

GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN
GFP_TRANSHUGE_LIGHT = (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM
# --- END include/linux/gfp_types.h -------------------------------------------------------------

# --- BEGIN include/trace/events/mmflags.h (Linux 7.2): __def_gfpflag_names ---------------------
# The table show_gfp_flags() hands to __print_flags(), in order: the composites first ("most
# bits set go first"), then TRACE_GFP_FLAGS (the single bits in ___GFP_*_BIT order; KASAN and
# LOCKDEP entries compiled out, NO_OBJ_EXT present with CONFIG_SLAB_OBJ_EXT). Order decides the
# output: GFP_KERNEL before GFP_USER would print GFP_KERNEL|__GFP_HARDWALL.
SHOW_GFP_FLAGS: tuple[tuple[int, str], ...] = (
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_NOFS, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_NOWAIT, "GFP_NOWAIT"),
    (GFP_DMA, "GFP_DMA"),
    (GFP_DMA32, "GFP_DMA32"),
    (__GFP_RECLAIM, "__GFP_RECLAIM"),
    (__GFP_DMA, "__GFP_DMA"),
    (__GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (__GFP_DMA32, "__GFP_DMA32"),
    (__GFP_MOVABLE, "__GFP_MOVABLE"),
    (__GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (__GFP_HIGH, "__GFP_HIGH"),
    (__GFP_IO, "__GFP_IO"),
    (__GFP_FS, "__GFP_FS"),
    (__GFP_ZERO, "__GFP_ZERO"),
    (__GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (__GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (__GFP_WRITE, "__GFP_WRITE"),
    (__GFP_NOWARN, "__GFP_NOWARN"),
    (__GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (__GFP_NOFAIL, "__GFP_NOFAIL"),
    (__GFP_NORETRY, "__GFP_NORETRY"),
    (__GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (__GFP_COMP, "__GFP_COMP"),
    (__GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (__GFP_HARDWALL, "__GFP_HARDWALL"),
    (__GFP_THISNODE, "__GFP_THISNODE"),
    (__GFP_ACCOUNT, "__GFP_ACCOUNT"),
    (__GFP_ZEROTAGS, "__GFP_ZEROTAGS"),
    (__GFP_NO_OBJ_EXT, "__GFP_NO_OBJ_EXT"),
)
# --- END include/trace/events/mmflags.h --------------------------------------------------------

#: Every name parse_gfp() accepts: the show_gfp_flags() table plus the names that print under
#: another name (GFP_KERNEL_ACCOUNT is in the table; __GFP_SKIP_* and __GFP_NOLOCKDEP are 0 here).
GFP_NAMES: dict[str, int] = {
    **{name: mask for mask, name in SHOW_GFP_FLAGS},
    "__GFP_SKIP_ZERO": __GFP_SKIP_ZERO,
    "__GFP_SKIP_KASAN": __GFP_SKIP_KASAN,
    "__GFP_NOLOCKDEP": __GFP_NOLOCKDEP,
}

#: gfp_t is ``unsigned int``
_GFP_T_LIMIT = 1 << 32


class GfpParseError(ValueError):
    """A gfp string that names no known flag or is not a number (bad input)."""


class GfpZoneError(ValueError):
    """``gfp_zone()`` on a combination GFP_ZONE_BAD marks invalid (the kernel's VM_BUG_ON)."""


def _parse_token(token: str, text: str) -> int:
    mask = GFP_NAMES.get(token)
    if mask is not None:
        return mask
    try:
        if token[:2] in ("0x", "0X"):
            value = int(token, 16)
        elif token.isdigit():
            value = int(token, 10)
        else:
            value = -1
    except ValueError:
        value = -1
    if 0 <= value < _GFP_T_LIMIT:
        return value
    if value >= _GFP_T_LIMIT:
        raise GfpParseError(f"gfp value {token} does not fit gfp_t (unsigned int, < 0x100000000)")
    if not token:
        raise GfpParseError(f"empty flag in {text!r}")
    close = difflib.get_close_matches(token, GFP_NAMES, n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise GfpParseError(f"unknown gfp flag {token!r}{hint}")


@lru_cache(maxsize=4096)
def _parse_gfp_str(text: str) -> int:
    stripped = text.strip()
    if stripped == "none":  # show_gfp_flags(0)
        return 0
    if not stripped:
        raise GfpParseError("empty gfp string (use 'none' or 0 for no flags)")
    mask = 0
    for token in stripped.split("|"):
        mask |= _parse_token(token.strip(), text)
    return mask


def parse_gfp(value: str | int) -> int:
    """Read a gfp mask as a trace carries it; the inverse of :func:`format_gfp`.

    Accepts what ``show_gfp_flags()`` prints (``"GFP_KERNEL|__GFP_COMP"``, ``"none"``, names
    mixed with leftover hex such as ``"GFP_KERNEL|0x200"``), a bare hex or decimal string
    (``"0x140cca"``, as printed when the enums are not exported), or an int. Names are the 7.2
    ones of :data:`GFP_NAMES`. Raises :class:`GfpParseError` (a ``ValueError``).

    >>> parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_COMP") == parse_gfp("0x140cca") == 0x140CCA
    True
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GfpParseError(f"gfp must be a string or an int, not {type(value).__name__}")
    if isinstance(value, int):
        if not 0 <= value < _GFP_T_LIMIT:
            raise GfpParseError(f"gfp value {value:#x} does not fit gfp_t (unsigned int)")
        return value
    return _parse_gfp_str(value)


@lru_cache(maxsize=4096)
def format_gfp(gfp: int) -> str:
    """``show_gfp_flags(gfp)``: the string a kmem tracepoint prints for ``gfp_flags=``.

    ``trace_print_flags_seq()``: walk :data:`SHOW_GFP_FLAGS` in order, print every entry whose
    whole mask is still set and clear its bits, join with ``|``; leftover bits print as
    ``0x%lx``; 0 prints ``none``.

    >>> format_gfp(GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT)
    'GFP_KERNEL_ACCOUNT|__GFP_ZERO'
    >>> format_gfp(GFP_KERNEL | 0x200)
    'GFP_KERNEL|0x200'
    """
    if not gfp:
        return "none"
    flags = gfp
    names: list[str] = []
    for mask, name in SHOW_GFP_FLAGS:
        if not flags:
            break
        if flags & mask == mask:
            names.append(name)
            flags &= ~mask
    if flags:
        names.append(f"{flags:#x}")
    return "|".join(names)


# --- include/linux/gfp.h (Linux 7.2) -----------------------------------------------------------
#: ``GFP_MOVABLE_MASK`` / ``GFP_MOVABLE_SHIFT`` (gfp.h): ``__GFP_MOVABLE >> 3`` is MIGRATE_MOVABLE
GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE
GFP_MOVABLE_SHIFT = 3


def gfp_migratetype(gfp: int, page_group_by_mobility_disabled: bool = False) -> int:
    """``gfp_migratetype(gfp_flags)`` (include/linux/gfp.h): the migratetype an allocation wants.

    ``(gfp & (__GFP_RECLAIMABLE|__GFP_MOVABLE)) >> GFP_MOVABLE_SHIFT``: MIGRATE_UNMOVABLE (0),
    MIGRATE_MOVABLE (1) or MIGRATE_RECLAIMABLE (2); MIGRATE_UNMOVABLE when
    ``page_group_by_mobility_disabled``. Both bits set is a caller bug the kernel only
    VM_WARN_ONs; the shift then yields 3 (MIGRATE_HIGHATOMIC), returned as the kernel does.

    >>> gfp_migratetype(GFP_HIGHUSER_MOVABLE), gfp_migratetype(GFP_KERNEL)
    (1, 0)
    """
    if page_group_by_mobility_disabled:
        return MIGRATE_UNMOVABLE
    return (gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT


assert (__GFP_MOVABLE >> GFP_MOVABLE_SHIFT, __GFP_RECLAIMABLE >> GFP_MOVABLE_SHIFT) == (
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
)  # the kernel's BUILD_BUG_ONs

#: CONFIG_ZONE_DEVICE and MAX_NR_ZONES - 1 <= 4 (DMA, DMA32, Normal, Movable, Device)
GFP_ZONES_SHIFT = 2
_OPT_ZONE_DMA = ZONE_DMA  # CONFIG_ZONE_DMA=y
_OPT_ZONE_DMA32 = ZONE_DMA32  # CONFIG_ZONE_DMA32=y
_OPT_ZONE_HIGHMEM = ZONE_NORMAL  # CONFIG_HIGHMEM=n

GFP_ZONE_TABLE = (
    (ZONE_NORMAL << 0 * GFP_ZONES_SHIFT)
    | (_OPT_ZONE_DMA << __GFP_DMA * GFP_ZONES_SHIFT)
    | (_OPT_ZONE_HIGHMEM << __GFP_HIGHMEM * GFP_ZONES_SHIFT)
    | (_OPT_ZONE_DMA32 << __GFP_DMA32 * GFP_ZONES_SHIFT)
    | (ZONE_NORMAL << __GFP_MOVABLE * GFP_ZONES_SHIFT)
    | (_OPT_ZONE_DMA << (__GFP_MOVABLE | __GFP_DMA) * GFP_ZONES_SHIFT)
    | (ZONE_MOVABLE << (__GFP_MOVABLE | __GFP_HIGHMEM) * GFP_ZONES_SHIFT)
    | (_OPT_ZONE_DMA32 << (__GFP_MOVABLE | __GFP_DMA32) * GFP_ZONES_SHIFT)
)

GFP_ZONE_BAD = (
    1 << (__GFP_DMA | __GFP_HIGHMEM)
    | 1 << (__GFP_DMA | __GFP_DMA32)
    | 1 << (__GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_MOVABLE | __GFP_HIGHMEM | __GFP_DMA)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_DMA)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_HIGHMEM)
    | 1 << (__GFP_MOVABLE | __GFP_DMA32 | __GFP_DMA | __GFP_HIGHMEM)
)


def gfp_zone(gfp: int, check: bool = True) -> int:
    """``gfp_zone(flags)`` (include/linux/gfp.h): the highest zone index an allocation may use.

    Looks the four zone modifier bits up in :data:`GFP_ZONE_TABLE`: none → ZONE_NORMAL,
    ``__GFP_DMA`` → ZONE_DMA, ``__GFP_DMA32`` → ZONE_DMA32, ``__GFP_HIGHMEM`` → ZONE_NORMAL (no
    HIGHMEM on x86-64), ``__GFP_MOVABLE`` alone → ZONE_NORMAL, ``__GFP_MOVABLE|__GFP_HIGHMEM``
    → ZONE_MOVABLE. A combination in :data:`GFP_ZONE_BAD` (two zone bits at once) is the
    kernel's ``VM_BUG_ON``: :class:`GfpZoneError` when ``check``; without it the table value
    (0, ZONE_DMA) is returned, as a kernel without CONFIG_DEBUG_VM would.

    >>> gfp_zone(GFP_KERNEL) == ZONE_NORMAL, gfp_zone(GFP_HIGHUSER_MOVABLE) == ZONE_MOVABLE
    (True, True)
    """
    bit = gfp & GFP_ZONEMASK
    if check and (GFP_ZONE_BAD >> bit) & 1:
        raise GfpZoneError(f"gfp_zone: invalid zone modifier combination {format_gfp(bit)} ({bit:#x})")
    return (GFP_ZONE_TABLE >> (bit * GFP_ZONES_SHIFT)) & ((1 << GFP_ZONES_SHIFT) - 1)
