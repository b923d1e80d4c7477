"""free_area_init geometry (buddysim/mm/zone_geometry.py), checked against hand-computed layouts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buddysim.config import load_config, load_preset, parse_core
from buddysim.mm.zone_geometry import (
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    UnavailableRange,
    arch_zone_limits_init,
    free_area_init,
    zone_geometry,
    zone_index,
)


def spans(layout) -> list[tuple[int, str, int, int, int]]:
    """(nid, zone, start_pfn, spanned, present) of the zones that span anything."""
    return [(z.nid, z.name, z.start_pfn, z.spanned, z.present) for z in layout.zones if z.spanned]


def test_arch_zone_limits_init() -> None:
    assert arch_zone_limits_init(0x7FFE0) == (4096, 0x7FFE0, 0x7FFE0, 0)
    assert arch_zone_limits_init(0x140000) == (4096, 0x100000, 0x140000, 0)
    assert arch_zone_limits_init(100) == (100, 100, 100, 0)
    assert arch_zone_limits_init(0x1000, 1024, 2048) == (1024, 2048, 0x1000, 0)


def test_ubuntu_5_4_layout() -> None:
    # the memory ranges of a real 1.6 GiB machine: pfns [1, 0x9e), [0x100, 0x66959), [0x66b09, 0x66f00)
    ranges = [(1, 0x9E, 0), (0x100, 0x66959, 0), (0x66B09, 0x66F00, 0)]
    layout = free_area_init(ranges, arch_zone_limits_init(0x66F00))
    # DMA [1, 4096): 0x9d + (0x1000 - 0x100) present; DMA32 [4096, 0x66f00): 0x65959 + 0x3f7 present
    assert spans(layout) == [(0, "DMA", 1, 4095, 157 + 3840), (0, "DMA32", 4096, 0x65F00, 416089 + 1015)]
    assert layout.node(0).node_present_pages == 421101
    assert (layout.node(0).node_start_pfn, layout.node(0).node_spanned_pages) == (1, 0x66EFF)
    # holes: [0, 1) and [0x9e, 0x100) in DMA, [0x66959, 0x66b09) and the section tail
    # [0x66f00, 0x68000) in DMA32: 1 + 98 + 432 + 4352 = 4883 pages
    assert layout.unavailable == (
        UnavailableRange(0, 0, 0, 1, 1),
        UnavailableRange(0, 0, 0x9E, 0x100, 98),
        UnavailableRange(0, 1, 0x66959, 0x66B09, 432),
        UnavailableRange(0, 1, 0x66F00, 0x68000, 4352),
    )


def test_tiny() -> None:
    layout = zone_geometry(load_preset("tiny"))
    # explicit limits: DMA below pfn 1024, DMA32 below 2048; memory [1, 0x9f) and [0x100, 0x1000)
    assert spans(layout) == [
        (0, "DMA", 1, 1023, 0x9E + (0x400 - 0x100)),
        (0, "DMA32", 1024, 1024, 1024),
        (0, "Normal", 2048, 2048, 2048),
    ]
    assert layout.max_pfn == 0x1000
    assert layout.totalpages == 926 + 1024 + 2048
    assert layout.dmesg_lines() == [
        "Zone ranges:",
        "  DMA      [mem 0x0000000000001000-0x00000000003fffff]",
        "  DMA32    [mem 0x0000000000400000-0x00000000007fffff]",
        "  Normal   [mem 0x0000000000800000-0x0000000000ffffff]",
        "  Device   empty",
        "Movable zone start for each node",
        "Early memory node ranges",
        "  node   0: [mem 0x0000000000001000-0x000000000009efff]",
        "  node   0: [mem 0x0000000000100000-0x0000000000ffffff]",
        "Initmem setup node 0 [mem 0x0000000000001000-0x0000000000ffffff]",
        "On node 0, zone DMA: 1 pages in unavailable ranges",
        "On node 0, zone DMA: 97 pages in unavailable ranges",
        # memory ends at pfn 0x1000 inside the first 32768-page section: the rest of the
        # section goes to the last zone
        "On node 0, zone Normal: 28672 pages in unavailable ranges",
    ]


def test_numa_2node() -> None:
    layout = zone_geometry(load_preset("numa-2node"))
    assert spans(layout) == [
        (0, "DMA", 1, 4095, 3998),
        (0, "DMA32", 4096, 0x80000 - 4096, 0x80000 - 4096),
        (1, "DMA32", 0x80000, 0x80000, 0xBFFE0 - 0x80000),
        (1, "Normal", 0x100000, 0x40000, 0x40000),
    ]
    n1 = layout.node(1)
    assert (n1.node_start_pfn, n1.node_spanned_pages, n1.node_present_pages) == (
        0x80000,
        0xC0000,
        0x3FFE0 + 0x40000,
    )
    # the PCI-hole hole [0xbffe0, 0x100000) is given to the zone where memory resumes (Normal);
    # only its 32 pages inside section 23 have a struct page
    assert [(h.nid, h.zone_type, h.pages) for h in layout.unavailable] == [
        (0, 0, 1),
        (0, 0, 97),
        (1, ZONE_NORMAL, 32),
    ]
    assert layout.unavailable[-1].start_pfn == 0xBFFE0 and layout.unavailable[-1].end_pfn == 0x100000
    assert layout.dmesg_lines()[-1] == "On node 1, zone Normal: 32 pages in unavailable ranges"
    assert "Initmem setup node 1 [mem 0x0000000080000000-0x000000013fffffff]" in layout.dmesg_lines()


def test_1t_geometry_is_fast_and_right() -> None:
    cfg = load_preset("x86_64-1t")
    t = time.perf_counter()
    layout = zone_geometry(cfg)
    assert time.perf_counter() - t < 1.0
    assert spans(layout) == [
        (0, "DMA", 1, 4095, 3998),
        (0, "DMA32", 4096, 0x100000 - 4096, 0x6F6B0 - 0x1000),
        (0, "Normal", 0x100000, 0x8080000 - 0x100000, 0x8080000 - 0x100000),
        (1, "Normal", 0x8080000, 0x8000000, 0x8000000),
    ]
    assert layout.totalpages == 268367438
    # the firmware hole [0x6f6b0, 0x100000): only up to the end of section 13 (0x70000) is valid
    assert [(h.nid, h.zone_type, h.pages) for h in layout.unavailable] == [
        (0, 0, 1),
        (0, 0, 97),
        (0, 2, 0x70000 - 0x6F6B0),
    ]


# ---------------------------------------------------------------------------------------------
# ZONE_MOVABLE: find_zone_movable_pfns_for_nodes


def test_movablecore_size_and_percent() -> None:
    # memory [1, 0x9f) + [0x100, 0x80000): 524190 pages. movablecore=512M = 131072 pages, so
    # kernelcore = 524190 - 131072 = 393118: 158 + 3840 pages below DMA32, then 389120 in DMA32
    # from pfn 4096 -> ZONE_MOVABLE starts at 4096 + 389120 = 393216 (already 1024-aligned)
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "example.toml")
    layout = zone_geometry(cfg)
    assert layout.zone_movable_pfn == ((0, 393216),)
    assert spans(layout)[1:] == [(0, "DMA32", 4096, 389120, 389120), (0, "Movable", 393216, 131072, 131072)]
    assert "  Node 0: 0x0000000060000000" in layout.dmesg_lines()
    # 25% of 524190 = 131047 pages, rounded up to 1024 -> 131072: the same start
    ranges = [(1, 0x9F, 0), (0x100, 0x80000, 0)]
    pct = free_area_init(ranges, arch_zone_limits_init(0x80000), movablecore=parse_core("25%"))
    assert pct.zone_movable_pfn == ((0, 393216),)


def test_kernelcore_rounding_into_normal() -> None:
    # the 4 GiB QEMU layout with kernelcore=3584M (917504 pages): DMA/DMA32 give 158 + 786144,
    # the remaining 131202 come from Normal: 0x100000 + 131202 = 0x120082 -> rounded up to 0x120400
    ranges = [(1, 0x9F, 0), (0x100, 0xBFFE0, 0), (0x100000, 0x140000, 0)]
    layout = free_area_init(ranges, arch_zone_limits_init(0x140000), kernelcore=parse_core("3584M"))
    assert layout.zone_movable_pfn == ((0, 0x120400),)
    assert layout.movable_zone == ZONE_NORMAL
    assert spans(layout)[2:] == [
        (0, "Normal", 0x100000, 0x20400, 0x20400),
        (0, "Movable", 0x120400, 0x1FC00, 0x1FC00),
    ]
    assert layout.dmesg_lines()[6] == "  Node 0: 0x0000000120400000"


def test_kernelcore_spread_over_nodes() -> None:
    limits = arch_zone_limits_init(0x180000)
    ranges = [(0x100000, 0x140000, 0), (0x140000, 0x180000, 1)]
    # 512M = 131072 pages, 65536 per node
    layout = free_area_init(ranges, limits, kernelcore=parse_core("512M"))
    assert layout.zone_movable_pfn == ((0, 0x110000), (1, 0x150000))
    assert spans(layout) == [
        (0, "Normal", 0x100000, 0x10000, 0x10000),
        (0, "Movable", 0x110000, 0x30000, 0x30000),
        (1, "Normal", 0x140000, 0x10000, 0x10000),
        (1, "Movable", 0x150000, 0x30000, 0x30000),
    ]


def test_kernelcore_restart_when_a_node_is_too_small() -> None:
    # node 0 has 16384 pages, less than its 32768 share of kernelcore=256M: it is all kernel
    # memory, node 1 takes 32768 in the first pass and the missing 16384 in the second
    ranges = [(0x100000, 0x104000, 0), (0x104000, 0x200000, 1)]
    layout = free_area_init(ranges, arch_zone_limits_init(0x200000), kernelcore=parse_core("256M"))
    assert layout.zone_movable_pfn == ((1, 0x110000),)
    assert layout.zone(0, "Movable").spanned == 0
    assert layout.zone(1, "Movable").start_pfn == 0x110000


def test_kernelcore_exactly_a_node() -> None:
    # node 0's share is exactly its size: its ZONE_MOVABLE start lands on its end -> none there
    ranges = [(0x100000, 0x108000, 0), (0x108000, 0x200000, 1)]
    layout = free_area_init(ranges, arch_zone_limits_init(0x200000), kernelcore=parse_core("256M"))
    assert layout.zone_movable_pfn == ((1, 0x110000),)


def test_kernelcore_too_big_means_no_movable() -> None:
    ranges = [(0x100, 0x8000, 0)]
    assert (
        free_area_init(ranges, arch_zone_limits_init(0x8000), kernelcore=parse_core("1G")).zone_movable_pfn
        == ()
    )
    assert (
        free_area_init(ranges, arch_zone_limits_init(0x8000), kernelcore=parse_core("100%")).zone_movable_pfn
        == ()
    )


def test_zone_lookup() -> None:
    layout = zone_geometry(load_preset("x86_64-4g"))
    assert layout.zone(0, "DMA32") is layout.zone(0, ZONE_DMA32)
    assert layout.zone(0, ZONE_MOVABLE).spanned == 0
    assert zone_index("Normal") == ZONE_NORMAL
    with pytest.raises(ValueError, match="unknown zone 'HighMem'"):
        zone_index("HighMem")
    with pytest.raises(KeyError, match="no node 3"):
        layout.node(3)
