"""buddysim.mm.gfp: gfp_types.h values, show_gfp_flags() output, gfp_migratetype, gfp_zone.

Expected values are written out by hand from include/linux/gfp_types.h and
include/trace/events/mmflags.h (Linux 7.2), and from gfp strings printed by real kernels
(../shared/data/real, ../shared/spec/formats-and-metrics.md, read only when present).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buddysim.mm import gfp as G
from buddysim.mm.gfp import (
    SHOW_GFP_FLAGS,
    GfpParseError,
    GfpZoneError,
    format_gfp,
    gfp_migratetype,
    gfp_zone,
    parse_gfp,
)
from buddysim.mm.mmzone import ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NORMAL

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("__GFP_DMA", 0x1),
        ("__GFP_HIGHMEM", 0x2),
        ("__GFP_DMA32", 0x4),
        ("__GFP_MOVABLE", 0x8),
        ("__GFP_RECLAIMABLE", 0x10),
        ("__GFP_HIGH", 0x20),
        ("__GFP_IO", 0x40),
        ("__GFP_FS", 0x80),
        ("__GFP_ZERO", 0x100),
        ("__GFP_DIRECT_RECLAIM", 0x400),
        ("__GFP_KSWAPD_RECLAIM", 0x800),
        ("__GFP_WRITE", 0x1000),
        ("__GFP_NOWARN", 0x2000),
        ("__GFP_RETRY_MAYFAIL", 0x4000),
        ("__GFP_NOFAIL", 0x8000),
        ("__GFP_NORETRY", 0x10000),
        ("__GFP_MEMALLOC", 0x20000),
        ("__GFP_COMP", 0x40000),
        ("__GFP_NOMEMALLOC", 0x80000),
        ("__GFP_HARDWALL", 0x100000),
        ("__GFP_THISNODE", 0x200000),
        ("__GFP_ACCOUNT", 0x400000),
        ("__GFP_ZEROTAGS", 0x800000),
        ("__GFP_NO_OBJ_EXT", 0x1000000),
        ("__GFP_SKIP_KASAN", 0),
        ("__GFP_SKIP_ZERO", 0),
        ("__GFP_NOLOCKDEP", 0),
        ("__GFP_RECLAIM", 0xC00),
        ("GFP_ATOMIC", 0x820),
        ("GFP_KERNEL", 0xCC0),
        ("GFP_KERNEL_ACCOUNT", 0x400CC0),
        ("GFP_NOWAIT", 0x2800),
        ("GFP_NOIO", 0xC00),
        ("GFP_NOFS", 0xC40),
        ("GFP_USER", 0x100CC0),
        ("GFP_DMA", 0x1),
        ("GFP_DMA32", 0x4),
        ("GFP_HIGHUSER", 0x100CC2),
        ("GFP_HIGHUSER_MOVABLE", 0x100CCA),
        ("GFP_TRANSHUGE_LIGHT", 0x1C20CA),
        ("GFP_TRANSHUGE", 0x1C24CA),
    ],
)
def test_gfp_values(name: str, value: int) -> None:
    assert getattr(G, name) == value
    assert parse_gfp(name) == value


def test_show_gfp_flags_table_order() -> None:
    # mmflags.h __def_gfpflag_names: composites first, then TRACE_GFP_FLAGS in bit order
    assert [name for _, name in SHOW_GFP_FLAGS] == [
        "GFP_TRANSHUGE",
        "GFP_TRANSHUGE_LIGHT",
        "GFP_HIGHUSER_MOVABLE",
        "GFP_HIGHUSER",
        "GFP_USER",
        "GFP_KERNEL_ACCOUNT",
        "GFP_KERNEL",
        "GFP_NOFS",
        "GFP_ATOMIC",
        "GFP_NOIO",
        "GFP_NOWAIT",
        "GFP_DMA",
        "GFP_DMA32",
        "__GFP_RECLAIM",
        "__GFP_DMA",
        "__GFP_HIGHMEM",
        "__GFP_DMA32",
        "__GFP_MOVABLE",
        "__GFP_RECLAIMABLE",
        "__GFP_HIGH",
        "__GFP_IO",
        "__GFP_FS",
        "__GFP_ZERO",
        "__GFP_DIRECT_RECLAIM",
        "__GFP_KSWAPD_RECLAIM",
        "__GFP_WRITE",
        "__GFP_NOWARN",
        "__GFP_RETRY_MAYFAIL",
        "__GFP_NOFAIL",
        "__GFP_NORETRY",
        "__GFP_MEMALLOC",
        "__GFP_COMP",
        "__GFP_NOMEMALLOC",
        "__GFP_HARDWALL",
        "__GFP_THISNODE",
        "__GFP_ACCOUNT",
        "__GFP_ZEROTAGS",
        "__GFP_NO_OBJ_EXT",
    ]


@pytest.mark.parametrize(
    ("mask", "text"),
    [
        (0, "none"),
        (0x140CCA, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),  # formats-and-metrics.md §2
        (0x400DC0, "GFP_KERNEL_ACCOUNT|__GFP_ZERO"),  # page_owner sample, same spec
        (0xCC0, "GFP_KERNEL"),
        (0x100CC0, "GFP_USER"),  # not GFP_KERNEL|__GFP_HARDWALL: table order
        (0x100DCA, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
        (0x140DCA, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"),  # spec §9 example
        (0x42800, "GFP_NOWAIT|__GFP_COMP"),
        (0x2820, "GFP_ATOMIC|__GFP_NOWARN"),
        (0xC00, "GFP_NOIO"),  # GFP_NOIO == __GFP_RECLAIM; the composite listed first wins
        (0xC20, "GFP_ATOMIC|__GFP_DIRECT_RECLAIM"),
        (0x400, "__GFP_DIRECT_RECLAIM"),
        (0x200, "0x200"),  # the unused bit prints as leftover hex
        (0xCC0 | 0x200, "GFP_KERNEL|0x200"),
        (0x80000000, "0x80000000"),
        (0x1C20CA | 0x200000, "GFP_TRANSHUGE_LIGHT|__GFP_THISNODE"),
        (0x10 | 0xCC0, "GFP_KERNEL|__GFP_RECLAIMABLE"),
        (0x1000000, "__GFP_NO_OBJ_EXT"),
    ],
)
def test_format_gfp(mask: int, text: str) -> None:
    assert format_gfp(mask) == text
    assert parse_gfp(text) == mask


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("GFP_KERNEL|__GFP_COMP", 0x40CC0),
        (" GFP_KERNEL | __GFP_COMP ", 0x40CC0),
        ("0x140cca", 0x140CCA),
        ("0X140CCA", 0x140CCA),
        ("3264", 0xCC0),  # decimal GFP_KERNEL
        ("none", 0),
        ("0", 0),
        ("GFP_HIGHUSER|__GFP_MOVABLE|__GFP_SKIP_KASAN", 0x100CCA),
        ("GFP_KERNEL|GFP_KERNEL", 0xCC0),
        (0x140CCA, 0x140CCA),
        (0xFFFFFFFF, 0xFFFFFFFF),
    ],
)
def test_parse_gfp(text: str | int, mask: int) -> None:
    assert parse_gfp(text) == mask


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("GFP_KERNL", "unknown gfp flag 'GFP_KERNL' (did you mean 'GFP_KERNEL'?)"),
        ("GFP_BOGUS_THING", "unknown gfp flag 'GFP_BOGUS_THING'"),
        ("", "empty gfp string (use 'none' or 0 for no flags)"),
        ("GFP_KERNEL||__GFP_COMP", "empty flag in 'GFP_KERNEL||__GFP_COMP'"),
        ("0x100000000", "gfp value 0x100000000 does not fit gfp_t (unsigned int, < 0x100000000)"),
        ("-1", "unknown gfp flag '-1'"),
        (-1, "gfp value -0x1 does not fit gfp_t (unsigned int)"),
        (1 << 32, "gfp value 0x100000000 does not fit gfp_t (unsigned int)"),
        (True, "gfp must be a string or an int, not bool"),
        (1.0, "gfp must be a string or an int, not float"),
    ],
)
def test_parse_gfp_errors(value: object, message: str) -> None:
    with pytest.raises(GfpParseError) as info:
        parse_gfp(value)  # type: ignore[arg-type]
    assert str(info.value) == message


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 32) - 1))
def test_parse_format_round_trip(mask: int) -> None:
    text = format_gfp(mask)
    assert parse_gfp(text) == mask
    assert format_gfp(parse_gfp(text)) == text


def test_old_kernel_gfp_string_reprints_in_7_2_order() -> None:
    # An LKML 2020 capture (4.x era, GFP_NOWAIT without __GFP_NOWARN). In 7.2 GFP_NOWAIT
    # includes __GFP_NOWARN, so the same mask prints shorter.
    mask = parse_gfp("GFP_NOWAIT|__GFP_HIGHMEM|__GFP_NOWARN|__GFP_MOVABLE")
    assert mask == 0x280A
    assert format_gfp(mask) == "GFP_NOWAIT|__GFP_HIGHMEM|__GFP_MOVABLE"


def _real_gfp_samples() -> list[tuple[str, str | None]]:
    """(symbolic, hex or None) pairs printed by real kernels in ../shared."""
    files = sorted((SHARED / "data" / "real").glob("*.txt"))
    files.append(SHARED / "spec" / "formats-and-metrics.md")
    found: list[tuple[str, str | None]] = []
    for path in files:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        for m in re.finditer(r"gfp_flags=((?:[A-Z_0-9]+)(?:\|[A-Z_0-9]+)*)(?=[\s`]|$)", text):
            found.append((m.group(1), None))
        for m in re.finditer(r"mask (0x[0-9a-f]+)\(([A-Z_|0-9]+)\)", text):
            found.append((m.group(2), m.group(1)))
    return found


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared not available")
def test_gfp_strings_from_real_traces() -> None:
    samples = _real_gfp_samples()
    assert len(samples) >= 10
    reprinted = {}
    for text, hex_mask in samples:
        mask = parse_gfp(text)
        if hex_mask is not None:  # page_owner prints both: %#x(%pGg)
            assert mask == int(hex_mask, 16)
            assert format_gfp(int(hex_mask, 16)) == text
        reprinted[text] = format_gfp(mask)
    # strings whose printing did not change up to 7.2 come back byte for byte
    for text in ("GFP_KERNEL", "GFP_HIGHUSER|__GFP_ZERO", "GFP_HIGHUSER_MOVABLE|__GFP_COMP"):
        assert reprinted[text] == text
    assert "GFP_KERNEL_ACCOUNT|__GFP_ZERO" in reprinted


@pytest.mark.parametrize(
    ("gfp", "mt"),
    [
        (G.GFP_KERNEL, 0),
        (G.GFP_ATOMIC, 0),
        (G.GFP_HIGHUSER_MOVABLE, 1),
        (G.GFP_TRANSHUGE, 1),
        (G.GFP_KERNEL | G.__GFP_RECLAIMABLE, 2),
        (G.__GFP_MOVABLE | G.__GFP_RECLAIMABLE, 3),  # a caller bug; the kernel's shift gives HIGHATOMIC
    ],
)
def test_gfp_migratetype(gfp: int, mt: int) -> None:
    assert gfp_migratetype(gfp) == mt
    assert gfp_migratetype(gfp, page_group_by_mobility_disabled=True) == 0


@pytest.mark.parametrize(
    ("gfp", "zone"),
    [
        (0, ZONE_NORMAL),
        (G.GFP_KERNEL, ZONE_NORMAL),
        (G.__GFP_DMA, ZONE_DMA),
        (G.GFP_DMA | G.GFP_KERNEL, ZONE_DMA),
        (G.__GFP_DMA32, ZONE_DMA32),
        (G.__GFP_HIGHMEM, ZONE_NORMAL),  # no HIGHMEM on x86-64
        (G.GFP_HIGHUSER, ZONE_NORMAL),
        (G.__GFP_MOVABLE, ZONE_NORMAL),  # movable alone may not use ZONE_MOVABLE
        (G.__GFP_MOVABLE | G.__GFP_HIGHMEM, ZONE_MOVABLE),
        (G.GFP_HIGHUSER_MOVABLE, ZONE_MOVABLE),
        (G.__GFP_MOVABLE | G.__GFP_DMA, ZONE_DMA),
        (G.__GFP_MOVABLE | G.__GFP_DMA32, ZONE_DMA32),
    ],
)
def test_gfp_zone(gfp: int, zone: int) -> None:
    assert gfp_zone(gfp) == zone


@pytest.mark.parametrize("bits", [0x3, 0x5, 0x6, 0x7, 0xB, 0xD, 0xE, 0xF])
def test_gfp_zone_bad_combinations(bits: int) -> None:
    with pytest.raises(GfpZoneError, match=r"invalid zone modifier combination"):
        gfp_zone(G.GFP_KERNEL | bits)
    assert gfp_zone(G.GFP_KERNEL | bits, check=False) == ZONE_DMA  # what a !DEBUG_VM kernel returns
