"""Per-cpu page lists: sizing (§5.1), refill (§5.2), free and drain (§5.3, §3.7), THP lists.

Expected values are computed in the comments from the spec's formulas (Linux 7.2
``zone_batchsize``, ``zone_highsize``, ``nr_pcp_alloc``, ``nr_pcp_high``, ``nr_pcp_free``,
``free_pcppages_bulk``), not read back from the code under test.
"""

from __future__ import annotations

from support import Recorder, one_gib, one_zone

from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_all, validate_pcp
from buddysim.mm.gfp import __GFP_COMP, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_TRANSHUGE
from buddysim.mm.mmzone import (
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    NR_LOWORDER_PCP_LISTS,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)

# ---------------------------------------------------------------------------------- sizing


def test_zone_batchsize_and_highsize_one_gib():
    mm = one_gib()
    dma, dma32 = mm.zones
    # zone_batchsize (7.2): DMA32: min(258048 >> 12 = 63, 256K / 4K = 64) = 63;
    #   rounddown_pow_of_two(63 + 31 = 94) - 1 = 63. DMA: 4095 >> 12 = 0 <= 1 -> 1.
    assert (dma.pageset_batch, dma32.pageset_batch) == (1, 63)
    # zone_highsize(..., cpu_online=0): split over the node's 4 CPUs.
    #   DMA32 high_min = max(low 1265 // 4 = 316, 63 << 2 = 252) = 316
    #   DMA32 high_max = max(258048 // 8 = 32256 // 4 = 8064, 252) = 8064
    #   DMA   high_min = max(19 // 4 = 4, 1 << 2 = 4) = 4
    #   DMA   high_max = max(4095 // 8 = 511 // 4 = 127, 4) = 127
    assert (dma32.pageset_high_min, dma32.pageset_high_max) == (316, 8064)
    assert (dma.pageset_high_min, dma.pageset_high_max) == (4, 127)
    for zone, want in ((dma, (1, 4, 127)), (dma32, (63, 316, 8064))):
        for pcp in zone.per_cpu_pageset:
            assert (pcp.batch, pcp.high_min, pcp.high_max) == want
            assert (pcp.high, pcp.count, pcp.alloc_factor) == (0, 0, 0)  # high set lazily


def test_zone_batchsize_rounding_and_four_zones():
    mm = Machine.simple(
        196608,
        zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 65536), (ZONE_NORMAL, 131072), (ZONE_MOVABLE, 196608)],
        nr_cpus=4,
    )
    mm.boot()
    # batch: 4096 >> 12 = 1 -> 1; 61440 >> 12 = 15 -> rounddown_pow_of_two(22) - 1 = 15;
    #        65536 >> 12 = 16 -> rounddown_pow_of_two(24) - 1 = 15 (twice)
    assert [z.pageset_batch for z in mm.zones] == [1, 15, 15, 15]
    # high_min = max(low // 4, batch << 2): lows 27, 423, 452, 154 (test_watermarks.py)
    #   -> max(6, 4) = 6, max(105, 60) = 105, max(113, 60) = 113, max(38, 60) = 60
    # high_max = max(managed // 8 // 4, batch << 2): 128, 1920, 2048, 2048
    assert [z.pageset_high_min for z in mm.zones] == [6, 105, 113, 60]
    assert [z.pageset_high_max for z in mm.zones] == [128, 1920, 2048, 2048]


def test_percpu_pagelist_high_fraction_fixes_high():
    """vm.percpu_pagelist_high_fraction = 8: high_min = high_max = managed // 8 // cpus."""
    mm = Machine.simple(
        1 << 18, zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 1 << 18)], reserved=[(0, 1)], nr_cpus=4
    )
    mm.percpu_pagelist_high_fraction = 8
    mm.boot()
    dma, dma32 = mm.zones
    assert (dma32.pageset_high_min, dma32.pageset_high_max) == (8064, 8064)
    assert (dma.pageset_high_min, dma.pageset_high_max) == (127, 127)


# ---------------------------------------------------------------------------------- refill


def test_first_order0_refill_and_alloc_factor_growth():
    """§5.2 nr_pcp_alloc on DMA32 (batch 63, high_min 316, high_max 8064), cpu 0.

    refill  high before  batch = 63 << factor  high = min(high + batch, 8064)  max_nr = high - 63  entries
      1        316             63                       379                     316               63
      2        379            126                       505                     442              126
      3        505            252                       757                     694              252
      4        757            504                      1261                    1198              504
      5       1261           1008                      2269                    2206             1008
      6       2269           2016                      4285                    4222             2016
    alloc_factor goes 1, 2, 3, 4, 5 and stays at CONFIG_PCP_BATCH_SCALE_MAX = 5.
    Each refill happens when the list is empty (count 0), so max_nr = high - 0 - 63.
    """
    rec = Recorder()
    mm = one_gib(tracer=rec)
    dma32 = mm.zones[1]
    pcp = dma32.per_cpu_pageset[0]
    rec.take()

    # The first GFP_KERNEL page claims the first DMA32 order-10 block (4096): one extfrag
    # event for the claim, then 62 zone_locked events with percpu_refill=1 for the rest of
    # the batch, taken in ascending order from the expanded block.
    assert mm.alloc(GFP_KERNEL, 0, cpu=0) == 4096
    events = rec.take()
    assert [e[0] for e in events] == ["mm_page_alloc_extfrag"] + ["mm_page_alloc_zone_locked"] * 62 + [
        "mm_page_alloc"
    ]
    assert [f["pfn"] for name, f in events if name == "mm_page_alloc_zone_locked"] == list(range(4097, 4159))
    assert all(f["percpu_refill"] == 1 for name, f in events if name == "mm_page_alloc_zone_locked")
    assert list(pcp.lists[pa.order_to_pindex(MIGRATE_UNMOVABLE, 0)]) == list(range(4097, 4159))
    assert (pcp.count, pcp.high, pcp.alloc_factor) == (62, 379, 1)

    refills = [(63, 379, 1)]
    for _ in range(5):
        for _ in range(pcp.count):
            assert mm.alloc(GFP_KERNEL, 0, cpu=0) is not None
        assert pcp.count == 0
        mm.alloc(GFP_KERNEL, 0, cpu=0)
        refills.append((pcp.count + 1, pcp.high, pcp.alloc_factor))
    assert refills == [
        (63, 379, 1),
        (126, 505, 2),
        (252, 757, 3),
        (504, 1261, 4),
        (1008, 2269, 5),
        (2016, 4285, 5),
    ]
    # the other CPUs' pcp lists were never touched
    assert all(p.count == 0 and p.high == 0 for p in dma32.per_cpu_pageset[1:])
    assert validate_all(mm) == []


def test_a_free_halves_alloc_factor():
    """free_frozen_page_commit: ``pcp->alloc_factor >>= 1`` on every free."""
    mm = one_gib()
    pcp = mm.zones[1].per_cpu_pageset[0]
    pages = [mm.alloc(GFP_KERNEL, 0, cpu=0) for _ in range(63 + 126 + 1)]  # three refills
    assert pcp.alloc_factor == 3
    mm.free(pages[0], 0, cpu=0)
    assert pcp.alloc_factor == 1
    mm.free(pages[1], 0, cpu=0)
    assert pcp.alloc_factor == 0


# ---------------------------------------------------------------------------------- list order


def test_free_goes_to_the_head_and_alloc_takes_the_head():
    """§11.15: pcp frees insert at the head (hot), allocation takes the head."""
    mm = one_gib()
    pcp = mm.zones[1].per_cpu_pageset[2]
    lst = pcp.lists[pa.order_to_pindex(MIGRATE_MOVABLE, 0)]
    a, b, c = (mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=2) for _ in range(3))
    rest = list(lst)
    assert rest[:1] == [c + 1]  # the refill's remaining pages, in physical order
    mm.free(a, 0, cpu=2)
    mm.free(b, 0, cpu=2)
    assert list(lst) == [b, a, *rest]
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=2) == b
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=2) == a
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=2) == rest[0]


def test_pages_freed_on_another_cpu_stay_on_that_cpu():
    mm = one_gib()
    p = mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=0)
    mm.free(p, 0, cpu=3)
    dma32 = mm.zones[1]
    assert list(dma32.per_cpu_pageset[3].lists[MIGRATE_MOVABLE]) == [p]
    assert p not in dma32.per_cpu_pageset[0].lists[MIGRATE_MOVABLE]


# ---------------------------------------------------------------------------------- drain


def _tiny(rec: Recorder | None = None) -> Machine:
    """64 pages, one DMA zone, MAX order 3, pageblocks of 4, two CPUs, min_free_kbytes 0.

    §5.1: batch 1 (64 >> 12 = 0); high_min = max(low 0 // 2, 1 << 2) = 4;
    high_max = max(64 // 8 // 2 = 4, 4) = 4. So high is 4 and never auto-tuned.
    """
    mm = one_zone(64, ZONE_DMA, max_page_order=3, pageblock_order=2, nr_cpus=2, min_free_kbytes=0, tracer=rec)
    return mm


def test_drain_on_free_takes_the_last_entries_in_list_order():
    """§5.3 with high 4, batch 1. After a drain the pcp is empty, free_count 0 (allocations
    halve it). Frees a0..a3 (head insertion: list [a3, a2, a1, a0]); at a3 count 4 >= high 4:
    nr_pcp_free = clamp(free_count 4, batch 1, high - batch 3) = 3, freed in chunks of
    batch = 1 by free_pcppages_bulk, each taking the LAST entry: a0, then a1, then a2.
    Then a4, a5 (count 2, 3), a6: count 4 again, free_count 7 -> 3 more: a3, a4, a5."""
    rec = Recorder()
    mm = _tiny(rec)
    zone = mm.zones[0]
    pcp = zone.per_cpu_pageset[0]
    a = [mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=1) for _ in range(8)]
    mm.drain()
    assert pcp.count == pcp.free_count == 0
    rec.take()

    for p in a[:3]:
        mm.free(p, 0, cpu=0)
    assert list(pcp.lists[MIGRATE_MOVABLE]) == [a[2], a[1], a[0]]
    assert rec.take("mm_page_pcpu_drain") == []
    mm.free(a[3], 0, cpu=0)
    assert [f["pfn"] for _n, f in rec.take("mm_page_pcpu_drain")] == [a[0], a[1], a[2]]
    assert list(pcp.lists[MIGRATE_MOVABLE]) == [a[3]]
    assert (pcp.count, pcp.free_count) == (1, 4)

    for p in a[4:7]:
        mm.free(p, 0, cpu=0)
    assert [f["pfn"] for _n, f in rec.take("mm_page_pcpu_drain")] == [a[3], a[4], a[5]]
    assert list(pcp.lists[MIGRATE_MOVABLE]) == [a[6]]
    assert validate_all(mm) == []


def test_drain_all_pages_empties_every_cpu_and_zone():
    mm = one_gib()
    held = []
    for cpu in range(4):
        held += [mm.alloc(GFP_KERNEL, 0, cpu=cpu), mm.alloc(GFP_HIGHUSER_MOVABLE, 1, cpu=cpu)]
        held += [mm.alloc(GFP_KERNEL | __GFP_COMP, 3, cpu=cpu)]
    mm.free(held[0], 0, cpu=3)
    pcp_pages = sum(z.pcp_pages() for z in mm.zones)
    assert pcp_pages > 0 and all(z.per_cpu_pageset[c].count for z in mm.zones[1:] for c in range(4))
    free_before = mm.nr_free_pages()
    mm.drain(cpu=3)  # drain_local_pages on cpu 3 only
    assert all(z.per_cpu_pageset[3].count == 0 for z in mm.zones)
    assert all(z.per_cpu_pageset[0].count for z in mm.zones[1:])
    mm.drain()
    assert mm.pcp_pfns() == set()
    assert all(pcp.count == 0 and not any(pcp.lists) for z in mm.zones for pcp in z.per_cpu_pageset)
    assert mm.nr_free_pages() == free_before + pcp_pages
    assert validate_all(mm) == []


def test_consecutive_high_order_frees_drain_everything_free_high():
    """§5.3 free_high for orders 1..3 (PCPF_FREE_HIGH_BATCH off).

    40 order-3 GFP_KERNEL pages on cpu 0. Each order-3 refill asks max(63 >> 3, 2) = 7
    entries and raises pcp->high by batch: 316 + 6 * 63 = 694 after six refills (42 entries,
    40 used, 2 left: count 16). Allocations halve free_count (0).
    Freeing them back: the k-th free tests free_count (8 * (k - 1), before its own += 8)
    >= batch + high_min / 2 = 63 + 158 = 221 with PCPF_PREV_FREE_HIGH_ORDER set (by the
    previous order-3 free). First true at k = 29 (224): nr_pcp_high sets pcp->high =
    max(694 - (63 << 5), 316) = 316 and returns 0, nr_pcp_free = min(count 16 + 29 * 8 = 248,
    63 << 5) = 248: all 31 entries go, the LAST first (the two refill leftovers, then the
    freed pages oldest first). Every later free drains its page at once.
    """
    rec = Recorder()
    mm = one_gib(tracer=rec)
    pcp = mm.zones[1].per_cpu_pageset[0]
    pages = [mm.alloc(GFP_KERNEL, 3, cpu=0) for _ in range(40)]
    lst = pcp.lists[pa.order_to_pindex(MIGRATE_UNMOVABLE, 3)]
    leftovers = list(lst)
    assert len(leftovers) == 2
    assert (pcp.count, pcp.high, pcp.free_count) == (16, 694, 0)
    rec.take()
    for p in pages[:28]:
        mm.free(p, 3, cpu=0)
    assert rec.take("mm_page_pcpu_drain") == []
    assert (pcp.count, pcp.free_count, pcp.high) == (240, 224, 694)
    mm.free(pages[28], 3, cpu=0)
    drained = [f["pfn"] for _n, f in rec.take("mm_page_pcpu_drain")]
    assert drained == [leftovers[1], leftovers[0], *pages[:29]]
    assert (pcp.count, pcp.high) == (0, 316)
    mm.free(pages[29], 3, cpu=0)
    assert [f["pfn"] for _n, f in rec.take("mm_page_pcpu_drain")] == [pages[29]]
    assert validate_all(mm) == []


# ---------------------------------------------------------------------------------- THP lists


def test_order9_thp_pcp_lists():
    """MAX order 10 with THP: order 9 (HPAGE_PMD_ORDER) has two pcp lists, pindex 12
    (non-movable) and 13 (movable) (§2.3). A refill fetches max(63 >> 9, 2) = 2 entries.

    GFP_TRANSHUGE (movable): DMA32's first order-10 block 4096 splits into 4096 and 4608
    (both zone_locked, percpu_refill=1); 4096 is returned, 4608 waits on list 13:
    count 512. pcp->high 316 -> 379 (+ batch). An unmovable order-9 folio claims the next
    order-10 block (5120, retyped UNMOVABLE), expands 5632 and refills list 12 with
    [5120, 5632]: count 1024, high 442.

    Freeing the THP (put_page): list 13 = [4096, 4608], count 1536, free_count 512.
    nr_pcp_high: count >= high 442 -> pcp->high = clamp(free_count + batch = 575) = 575,
    returns 442. nr_pcp_free = clamp(512, 63, 442 - 63 = 379) = 379, freed in chunks of 63:
    each chunk drains one 512-page entry (count goes negative at once): 4608 (last of list
    13), then 4096, then - list 13 being empty - round-robin to list 12's last, 5632. The
    pcp is then empty; 4608 + 4096 merge back into the order-10 block 4096.
    """
    rec = Recorder()
    mm = one_gib(tracer=rec)
    dma32 = mm.zones[1]
    pcp = dma32.per_cpu_pageset[0]
    assert pa.pcp_allowed_order(dma32, 9) and not pa.pcp_allowed_order(dma32, 8)
    assert (pa.order_to_pindex(MIGRATE_MOVABLE, 9), pa.order_to_pindex(MIGRATE_UNMOVABLE, 9)) == (13, 12)
    assert pa.pindex_to_order(NR_LOWORDER_PCP_LISTS) == pa.pindex_to_order(13) == 9
    rec.take()

    thp = mm.alloc(GFP_TRANSHUGE, 9, cpu=0)
    assert thp == 4096
    assert [(f["pfn"], f["percpu_refill"]) for _n, f in rec.take("mm_page_alloc_zone_locked")] == [
        (4096, 1),
        (4608, 1),
    ]
    assert list(pcp.lists[13]) == [4608]
    assert (pcp.count, pcp.high) == (512, 379)

    slab = mm.alloc(GFP_KERNEL | __GFP_COMP, 9, cpu=0)
    assert slab == 5120
    assert list(pcp.lists[12]) == [5632]
    assert (pcp.count, pcp.high) == (1024, 442)
    rec.take()

    assert mm.put(thp, cpu=0)
    assert [f["pfn"] for _n, f in rec.take("mm_page_pcpu_drain")] == [4608, 4096, 5632]
    assert pcp.count == 0 and pcp.high == 575
    assert 4096 in dma32.free_area[10].free_list[MIGRATE_MOVABLE]
    assert 5632 in dma32.free_area[9].free_list[MIGRATE_UNMOVABLE]
    assert validate_all(mm) == []


def test_order9_without_thp_bypasses_pcp():
    mm = Machine.simple(1 << 18, zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 1 << 18)], nr_cpus=2, thp=False)
    mm.boot()
    dma32 = mm.zones[1]
    assert len(dma32.per_cpu_pageset[0].lists) == NR_LOWORDER_PCP_LISTS
    p = mm.alloc(GFP_TRANSHUGE, 9, cpu=0)
    assert p == 4096 and dma32.pcp_pages() == 0
    mm.put(p, cpu=0)
    assert dma32.pcp_pages() == 0 and 4096 in dma32.free_area[10].free_list[MIGRATE_MOVABLE]


# ---------------------------------------------------------------------------------- clamp bug


def _high_min_above_high_max() -> Machine:
    """1024 pages, one DMA zone, two CPUs, min_free_kbytes 512: pages_min 128 = WMARK_MIN,
    gap max(32, 1) = 32, low 160. high_min = max(160 // 2, 4) = 80 but
    high_max = max(1024 // 8 // 2, 4) = 64: the low watermark is above managed / 8, which
    the kernel's own defaults produce for zones below about 400 pages."""
    mm = Machine.simple(
        1024, zones=[(ZONE_DMA, 1024)], max_page_order=4, pageblock_order=3, nr_cpus=2, min_free_kbytes=512
    )
    mm.boot()
    zone = mm.zones[0]
    assert (zone.pageset_high_min, zone.pageset_high_max) == (80, 64)
    return mm


def test_pcp_high_clamp_matches_kernel_when_high_min_exceeds_high_max():
    """Kernel (include/linux/minmax.h __clamp): first alloc, nr_pcp_alloc:
    high = clamp(0, 80, 64) = 80 (0 < 64, 0 <= 80), then high = min(80 + 1, 64) = 64.
    First free, nr_pcp_high: high = clamp(64, 80, 64) = 64 (64 >= 64 -> hi): pcp->high
    stays 64 and the drain threshold is 64. Also clamp itself, value by value."""
    assert pa.clamp(64, 80, 64) == 64  # val >= hi -> hi, tested first
    assert pa.clamp(0, 80, 64) == 80  # val < hi, val <= lo -> lo
    assert pa.clamp(100, 80, 64) == 64
    mm = _high_min_above_high_max()
    pcp = mm.zones[0].per_cpu_pageset[0]
    p = mm.alloc(GFP_KERNEL, 0, cpu=0)
    assert pcp.high == 64
    mm.free(p, 0, cpu=0)
    assert pcp.high == 64


def test_validate_pcp_accepts_a_zone_with_high_min_above_high_max():
    """§11.10 assumes high_min <= high_max; with the bounds crossed the kernel's pcp->high
    sits on either bound, and the validator must not report it."""
    mm = _high_min_above_high_max()
    mm.alloc(GFP_KERNEL, 0, cpu=0)  # pcp->high becomes 64 in the kernel and in the model
    assert mm.zones[0].per_cpu_pageset[0].high == 64
    assert list(validate_pcp(mm, mm.zones[0])) == []
