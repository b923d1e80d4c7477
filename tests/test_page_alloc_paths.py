"""Golden tests of the allocation and free paths, worked by hand from kernel-allocator.md.

Each test builds a tiny machine whose state can be followed on paper, drives one kernel path
(claim, steal, highatomic reserve, isolation, bad-page checks, double free, exhaustion, zone
fallback, lowmem_reserve) and compares pfns, list contents, pageblock types, counters and
trace events with values computed in the comments from the spec's pseudo-code (§3-§4, §9).

Most machines pass ``min_free_kbytes=0`` so every watermark is 0 and only the path under test
decides (spec §1.4: pages_min = 0, gap = max(0, managed * 10 // 10000) = 0 below 1000 pages).
"""

from __future__ import annotations

import pytest
from support import Recorder, one_zone

from buddysim.findings import FindingError, VMBug
from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_all
from buddysim.mm.gfp import (
    __GFP_COMP,
    __GFP_RECLAIMABLE,
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
)
from buddysim.mm.internal import get_pfnblock_migratetype, set_pageblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_NORMAL,
)
from buddysim.mm.page_store import PG_buddy, PG_locked, PG_mapped, PG_mapping, PG_reserved

rmqueue = getattr(pa, "__rmqueue")
RMQUEUE_NORMAL = pa.RMQUEUE_NORMAL


def lists(zone, mt: int) -> list[list[int]]:
    return [list(area.free_list[mt]) for area in zone.free_area]


def pageblock_types(mm: Machine) -> list[int]:
    return [
        get_pfnblock_migratetype(mm.store, pb << mm.pageblock_order)
        for pb in range(len(mm.store.pageblock_mt))
    ]


# ---------------------------------------------------------------------------------- claim


def test_first_unmovable_allocation_claims_a_whole_movable_block():
    """§4.5, §6.3: after boot every pageblock is MOVABLE; the first GFP_KERNEL page claims.

    Normal zone of 256 pages, MAX order 4 (16 pages), pageblocks of 8. Boot leaves 16 order-4
    MOVABLE blocks, ascending. GFP_KERNEL prefers Normal, so ALLOC_NOFRAGMENT is set and
    __rmqueue_claim looks only at orders >= pageblock_order, largest first: order 4 has a
    MOVABLE block (fallbacks[UNMOVABLE] = RECLAIMABLE, MOVABLE), its first entry is pfn 0.
    try_to_claim_block with current_order 4 >= pageblock_order retypes the whole block
    (pageblocks 0 and 1) to UNMOVABLE and expands it: 8 (o3), 4 (o2), 2 (o1), 1 (o0) on the
    UNMOVABLE lists; pfn 0 goes to the pcp list and out. The claim at >= pageblock_order emits
    mm_page_alloc_extfrag but no mm_page_alloc_zone_locked (§9).
    """
    rec = Recorder()
    mm = one_zone(
        256,
        ZONE_NORMAL,
        max_page_order=4,
        pageblock_order=3,
        nr_cpus=1,
        min_free_kbytes=0,
        tracer=rec,
    )
    rec.take()
    zone = mm.zones[0]
    assert pa.alloc_flags_nofragment(mm, zone, GFP_KERNEL) & pa.ALLOC_NOFRAGMENT

    assert mm.alloc(GFP_KERNEL, 0, cpu=0) == 0
    assert rec.take() == [
        (
            "mm_page_alloc_extfrag",
            {
                "pfn": 0,
                "alloc_order": 0,
                "fallback_order": 4,
                "alloc_migratetype": MIGRATE_UNMOVABLE,
                "fallback_migratetype": MIGRATE_MOVABLE,
                "change_ownership": 1,
            },
        ),
        ("mm_page_alloc", {"pfn": 0, "order": 0, "gfp_flags": GFP_KERNEL, "migratetype": MIGRATE_UNMOVABLE}),
    ]
    assert pageblock_types(mm)[:3] == [MIGRATE_UNMOVABLE, MIGRATE_UNMOVABLE, MIGRATE_MOVABLE]
    assert pageblock_types(mm).count(MIGRATE_MOVABLE) == 30
    assert lists(zone, MIGRATE_UNMOVABLE) == [[1], [2], [4], [8], []]
    assert lists(zone, MIGRATE_MOVABLE)[4] == list(range(16, 256, 16))
    assert zone.NR_FREE_PAGES == 255
    assert validate_all(mm) == []

    # The second page: the pcp list is empty again. nr_pcp_alloc (§5.2): batch 1, high_min 4,
    # high_max 256 // 8 = 32; high 5 after the first refill, alloc_factor 1, so this refill
    # asks 1 << 1 = 2 entries (high 7, max_nr_alloc 6): __rmqueue_smallest takes 1 (o0), then
    # splits 2 (o1) leaving 3; both emit zone_locked with percpu_refill=1; the head (1) is used.
    assert mm.alloc(GFP_KERNEL, 0, cpu=0) == 1
    assert rec.take() == [
        ("mm_page_alloc_zone_locked", {"pfn": 1, "order": 0, "migratetype": 0, "percpu_refill": 1}),
        ("mm_page_alloc_zone_locked", {"pfn": 2, "order": 0, "migratetype": 0, "percpu_refill": 1}),
        ("mm_page_alloc", {"pfn": 1, "order": 0, "gfp_flags": GFP_KERNEL, "migratetype": 0}),
    ]
    assert mm.pcp_pfns() == {2}
    assert lists(zone, MIGRATE_UNMOVABLE) == [[3], [], [4], [8], []]


def _reclaimable_pageblock(rec: Recorder | None = None) -> Machine:
    """64 pages in one DMA zone, MAX order 3 = pageblock_order 3 (8 pages), one CPU.

    (64 >= pageblock_nr_pages * MIGRATE_TYPES = 48, so mobility grouping stays on.) A
    reclaimable order-0 request (straight through __rmqueue, no pcp) claims the MOVABLE block
    at 0: pageblock 0 becomes RECLAIMABLE, remainders 4 (o2), 2 (o1), 1 (o0) stay on its
    lists; then the seven MOVABLE blocks 8..56 are taken away, so a MOVABLE request must fall
    back. The direct __rmqueue pages carry no PG_lru, i.e. they are not "alike".
    """
    mm = one_zone(64, ZONE_DMA, max_page_order=3, pageblock_order=3, nr_cpus=1, min_free_kbytes=0, tracer=rec)
    zone = mm.zones[0]
    assert rmqueue(zone, 0, MIGRATE_RECLAIMABLE, 0, [RMQUEUE_NORMAL]) == 0
    assert get_pfnblock_migratetype(mm.store, 0) == MIGRATE_RECLAIMABLE
    assert [rmqueue(zone, 3, MIGRATE_MOVABLE, 0, [RMQUEUE_NORMAL]) for _ in range(7)] == list(range(8, 64, 8))
    assert not mm.page_group_by_mobility_disabled
    assert lists(zone, MIGRATE_RECLAIMABLE) == [[1], [2], [4], []]
    return mm


def test_movable_page_steals_when_the_claim_is_refused():
    """§4.5 steal: pageblock 0 (RECLAIMABLE) keeps only [2,3] free, everything else is used.

    GFP_HIGHUSER_MOVABLE order 0 on a DMA-only machine (no ALLOC_NOFRAGMENT). __rmqueue_claim,
    largest first: orders 3 and 2 are empty; at order 1 should_try_claim_block(1, MOVABLE)
    holds (1 >= 3 // 2) and the RECLAIMABLE list has pfn 2, but try_to_claim_block counts
    free_pages = 2 and alike = movable_pages = 0: 2 < 2^(3-1) = 4, refused. At order 0
    should_try_claim_block fails (0 < 1, MOVABLE) -> FALLBACK_NOCLAIM -> break. __rmqueue_steal
    then takes the smallest fallback block, 2 at order 1, splits it (3 stays RECLAIMABLE, at
    order 0) and leaves pageblock 0 RECLAIMABLE: change_ownership = 0. Steal emits no
    mm_page_alloc_zone_locked.
    """
    rec = Recorder()
    mm = _reclaimable_pageblock(rec)
    zone = mm.zones[0]
    assert rmqueue(zone, 2, MIGRATE_RECLAIMABLE, 0, [RMQUEUE_NORMAL]) == 4
    assert rmqueue(zone, 0, MIGRATE_RECLAIMABLE, 0, [RMQUEUE_NORMAL]) == 1
    rec.take()

    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=0) == 2
    assert rec.take() == [
        (
            "mm_page_alloc_extfrag",
            {
                "pfn": 2,
                "alloc_order": 0,
                "fallback_order": 1,
                "alloc_migratetype": MIGRATE_MOVABLE,
                "fallback_migratetype": MIGRATE_RECLAIMABLE,
                "change_ownership": 0,
            },
        ),
        ("mm_page_alloc", {"pfn": 2, "order": 0, "gfp_flags": GFP_HIGHUSER_MOVABLE, "migratetype": 1}),
    ]
    assert get_pfnblock_migratetype(mm.store, 0) == MIGRATE_RECLAIMABLE
    assert lists(zone, MIGRATE_RECLAIMABLE) == [[3], [], [], []]
    assert lists(zone, MIGRATE_MOVABLE) == [[], [], [], []]
    assert zone.watermark_boost == 0  # high watermark 0: max_boost 0, no boost
    assert validate_all(mm) == []


def test_movable_page_claims_a_mostly_free_pageblock():
    """§4.5 sub-pageblock claim: same machine, but pageblock 0 has 6 free pages (2 o1, 4 o2).

    At order 2 the RECLAIMABLE block 4 is found; free_pages = 6 >= 4, so try_to_claim_block
    moves every free block of the pageblock to the MOVABLE lists' tails (in pfn order: 2 at
    o1, 4 at o2), retypes pageblock 0 MOVABLE and returns __rmqueue_smallest(0, MOVABLE): 2
    is split (3 to the o0 head) -> zone_locked with percpu_refill=1, then extfrag with the
    page that came back (2) and change_ownership = 1.
    """
    rec = Recorder()
    mm = _reclaimable_pageblock(rec)
    zone = mm.zones[0]
    assert rmqueue(zone, 0, MIGRATE_RECLAIMABLE, 0, [RMQUEUE_NORMAL]) == 1
    rec.take()

    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=0) == 2
    assert rec.take() == [
        ("mm_page_alloc_zone_locked", {"pfn": 2, "order": 0, "migratetype": 1, "percpu_refill": 1}),
        (
            "mm_page_alloc_extfrag",
            {
                "pfn": 2,
                "alloc_order": 0,
                "fallback_order": 2,
                "alloc_migratetype": MIGRATE_MOVABLE,
                "fallback_migratetype": MIGRATE_RECLAIMABLE,
                "change_ownership": 1,
            },
        ),
        ("mm_page_alloc", {"pfn": 2, "order": 0, "gfp_flags": GFP_HIGHUSER_MOVABLE, "migratetype": 1}),
    ]
    assert get_pfnblock_migratetype(mm.store, 0) == MIGRATE_MOVABLE
    assert lists(zone, MIGRATE_MOVABLE) == [[3], [], [4], []]
    assert lists(zone, MIGRATE_RECLAIMABLE) == [[], [], [], []]
    assert validate_all(mm) == []


# ---------------------------------------------------------------------------------- highatomic


def test_atomic_high_order_allocation_reserves_a_highatomic_pageblock():
    """§4.6: GFP_ATOMIC order 1 under pressure takes the slow path and reserves a pageblock.

    DMA zone of 1024 pages, MAX order 4, pageblocks of 8, min_free_kbytes 384:
    pages_min = 96 = WMARK_MIN, gap = max(96 >> 2, 1024 * 10 // 10000) = 24, so low 120,
    high 144. 57 movable order-4 blocks leave 7 blocks = 112 free pages.
    Fast path (ALLOC_WMARK_LOW): 112 - (2 - 1) = 111 <= 120 -> fail. Slow path:
    gfp_to_alloc_flags(GFP_ATOMIC, 1) = WMARK_MIN | MIN_RESERVE | NON_BLOCK | HIGHATOMIC
    (no direct reclaim, __GFP_HIGH, order > 0); min = 96 - 48 = 48, - 48 // 4 = 36 < 111.
    rmqueue_pcplist returns NULL for ALLOC_HIGHATOMIC (7.x), rmqueue_buddy finds no
    HIGHATOMIC block, __rmqueue claims the first MOVABLE order-4 block (912): pageblocks 114,
    115 -> UNMOVABLE, remainders 920 (o3), 916 (o2), 914 (o1). Then
    reserve_highatomic_pageblock: managed / 100 = 10 >= 8, max_managed = ALIGN(10, 8) = 16 >
    0 reserved; order 1 < pageblock_order -> move_freepages_block(pageblock of 912,
    UNMOVABLE -> HIGHATOMIC): 914 and 916 move to the HIGHATOMIC lists (6 pages), pageblock
    114 becomes HIGHATOMIC, nr_reserved_highatomic = 8.
    """
    rec = Recorder()
    mm = one_zone(
        1024,
        ZONE_DMA,
        max_page_order=4,
        pageblock_order=3,
        nr_cpus=2,
        min_free_kbytes=384,
        tracer=rec,
    )
    zone = mm.zones[0]
    assert zone._watermark == [96, 120, 144, 168]
    held = [mm.alloc(GFP_HIGHUSER_MOVABLE, 4, cpu=1) for _ in range(57)]
    assert held == list(range(0, 912, 16))
    assert zone.NR_FREE_PAGES == 112
    rec.take()

    assert mm.alloc(GFP_ATOMIC, 1, cpu=0) == 912
    assert rec.take() == [
        (
            "mm_page_alloc_extfrag",
            {
                "pfn": 912,
                "alloc_order": 1,
                "fallback_order": 4,
                "alloc_migratetype": MIGRATE_UNMOVABLE,
                "fallback_migratetype": MIGRATE_MOVABLE,
                "change_ownership": 1,
            },
        ),
        ("mm_page_alloc", {"pfn": 912, "order": 1, "gfp_flags": GFP_ATOMIC, "migratetype": 0}),
    ]
    assert zone.nr_reserved_highatomic == 8
    assert zone.nr_free_highatomic == 6
    assert pageblock_types(mm)[114:116] == [MIGRATE_HIGHATOMIC, MIGRATE_UNMOVABLE]
    assert lists(zone, MIGRATE_HIGHATOMIC) == [[], [914], [916], [], []]
    assert lists(zone, MIGRATE_UNMOVABLE) == [[], [], [], [920], []]
    assert zone.NR_FREE_PAGES == 110
    assert validate_all(mm) == []

    # The next atomic order-1 request is served from the reserve (rmqueue_buddy tries
    # HIGHATOMIC first); the reserve does not grow: the page's pageblock is HIGHATOMIC, not
    # mergeable, so reserve_highatomic_pageblock returns early.
    assert mm.alloc(GFP_ATOMIC, 1, cpu=0) == 914
    assert zone.nr_reserved_highatomic == 8
    assert zone.nr_free_highatomic == 4

    # Freeing both: HIGHATOMIC pages ride the MOVABLE pcp list (§3.2), and the drain merges
    # them with 916 into the whole pageblock 912 (o3), which does not merge with its UNMOVABLE
    # buddy 920 at pageblock_order (HIGHATOMIC is not mergeable, §3.4 stop 4).
    mm.free(912, 1, cpu=0)
    mm.free(914, 1, cpu=0)
    pcp = zone.per_cpu_pageset[0]
    assert list(pcp.lists[pa.order_to_pindex(MIGRATE_MOVABLE, 1)]) == [914, 912]
    mm.drain()
    assert lists(zone, MIGRATE_HIGHATOMIC) == [[], [], [], [912], []]
    assert lists(zone, MIGRATE_UNMOVABLE) == [[], [], [], [920], []]
    assert zone.nr_free_highatomic == 8
    assert validate_all(mm) == []


def test_atomic_pageblock_order_allocation_reserves_its_whole_block():
    """§4.6, order >= pageblock_order: the same machine, GFP_ATOMIC order 4 (not pcp-able,
    straight to rmqueue_buddy). Fast path: 112 - 15 = 97 <= low 120; slow path: 97 > 36.
    The claim takes MOVABLE block 912 whole (no remainders); reserve_highatomic_pageblock
    retypes both its pageblocks (change_pageblock_range) and adds 1 << 4 = 16 to
    nr_reserved_highatomic (max_managed 16 is not exceeded before). Freed, the block goes
    through __free_pages_ok > split_large_buddy in pageblock-order chunks: 912 (o3), then
    920 (o3), whose buddy 912 has the same type, HIGHATOMIC, so they merge again (stop 4 only
    applies to differing types)."""
    mm = Machine.simple(
        1024, zones=[(ZONE_DMA, 1024)], max_page_order=4, pageblock_order=3, nr_cpus=2, min_free_kbytes=384
    )
    mm.boot()
    zone = mm.zones[0]
    for _ in range(57):
        mm.alloc(GFP_HIGHUSER_MOVABLE, 4, cpu=1)
    assert mm.alloc(GFP_ATOMIC, 4, cpu=0) == 912
    assert zone.nr_reserved_highatomic == 16
    assert pageblock_types(mm)[114:116] == [MIGRATE_HIGHATOMIC, MIGRATE_HIGHATOMIC]
    assert zone.nr_free_highatomic == 0
    mm.free(912, 4, cpu=0)
    assert lists(zone, MIGRATE_HIGHATOMIC) == [[], [], [], [], [912]]
    assert zone.nr_free_highatomic == 16
    assert mm.pcp_pfns() == set()
    assert validate_all(mm) == []


# ---------------------------------------------------------------------------------- isolation


def _isolated() -> tuple[Machine, Recorder]:
    """32 pages, MAX order 3, pageblocks of 4. The order-2 block [0,4) is allocated (pcp
    refill of one entry: the order-3 block 0 is split, 4 stays free at order 2); then its
    pageblock gets the isolate bit, as start_isolate_page_range would set it."""
    rec = Recorder()
    mm = one_zone(32, ZONE_DMA, max_page_order=3, pageblock_order=2, nr_cpus=1, min_free_kbytes=0, tracer=rec)
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 2, cpu=0) == 0
    set_pageblock_migratetype(mm.store, 0, MIGRATE_ISOLATE)
    mm.zones[0].nr_isolate_pageblock += 1
    rec.take()
    return mm, rec


def test_free_into_isolated_pageblock_bypasses_pcp_and_does_not_merge():
    """§3.2: an isolated pageblock's pages go straight to free_one_page, never to pcp.
    §3.4: at order 2 = pageblock_order the MOVABLE buddy 4 has a different type and ISOLATE
    is not mergeable: the block stops at order 2 on the ISOLATE list, and account_freepages
    skips ISOLATE, so NR_FREE_PAGES stays at 28."""
    mm, rec = _isolated()
    zone = mm.zones[0]
    mm.free(0, 2, cpu=0)
    assert mm.pcp_pfns() == set()
    assert zone.per_cpu_pageset[0].count == 0
    assert rec.take() == [("mm_page_free", {"pfn": 0, "order": 2})]  # no mm_page_pcpu_drain
    assert lists(zone, MIGRATE_ISOLATE) == [[], [], [0], []]
    assert lists(zone, MIGRATE_MOVABLE) == [[], [], [4], [8, 16, 24]]
    assert zone.NR_FREE_PAGES == 28
    assert zone.NR_FREE_PAGES_BLOCKS == 28  # order >= pageblock_order, not ISOLATE
    assert validate_all(mm) == []  # the unmerged pair is §11.8's documented exception


def test_movable_buddy_does_not_merge_into_isolated_block():
    """The other direction: [0,4) is free on the ISOLATE list, then the MOVABLE buddy [4,8)
    is allocated and freed through pcp. This pcp holds at most 4 pages (§5.1: batch 1,
    high_min = max(0 // 1, 1 << 2) = 4 = high_max = max(32 // 8, 4)), so the order-2 free
    drains at once (§5.3: count 4 >= high 4; nr_pcp_free = clamp(free_count 4, 1, 3) = 3,
    freed in chunks of batch = 1 page: the order-2 entry goes in the first chunk). The
    drain's __free_one_page(4, order 2, MOVABLE) stops at the ISOLATE buddy (§3.4 stop 4)."""
    mm, rec = _isolated()
    zone = mm.zones[0]
    mm.free(0, 2, cpu=0)
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 2, cpu=0) == 4
    rec.take()
    mm.free(4, 2, cpu=0)
    assert rec.take() == [
        ("mm_page_free", {"pfn": 4, "order": 2}),
        ("mm_page_pcpu_drain", {"pfn": 4, "order": 2, "migratetype": MIGRATE_MOVABLE}),
    ]
    assert mm.pcp_pfns() == set() and zone.per_cpu_pageset[0].count == 0
    assert lists(zone, MIGRATE_ISOLATE) == [[], [], [0], []]
    assert lists(zone, MIGRATE_MOVABLE) == [[], [], [4], [8, 16, 24]]
    assert validate_all(mm) == []


# ---------------------------------------------------------------------------------- bad pages


def _small(model: str = "baseline", **kw) -> Machine:
    mm = Machine.simple(
        64,
        zones=[(ZONE_DMA, 64)],
        max_page_order=3,
        pageblock_order=2,
        nr_cpus=1,
        min_free_kbytes=0,
        refcount=model,
        **kw,
    )
    mm.boot()
    return mm


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_free_frozen_pages_of_a_referenced_page_is_a_bad_page(model):
    """§3.3: free_frozen_pages skips the put; a page still holding refcount 1 fails
    page_expected_state: bad_page("nonzero _refcount"), and the page is leaked."""
    mm = _small(model)
    pfn = mm.alloc(GFP_KERNEL, 0, cpu=0)
    mm.free(pfn, 0, cpu=0, frozen=True)
    (f,) = mm.findings
    assert (f.kind, f.function, f.check, f.pfn, f.raw_before) == (
        "bad_page",
        "bad_page",
        "page dumped because: nonzero _refcount",
        pfn,
        1,
    )
    assert f.message == f"BUG: Bad page state pfn:{pfn:05x}"
    assert pfn not in mm.pcp_pfns() | mm.free_pfns()


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (PG_reserved, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
        (PG_locked, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
        (PG_mapping, "non-NULL mapping"),
        (PG_mapped, "nonzero mapcount"),
        # page_bad_reason() keeps the LAST matching reason: mapcount < mapping < flags
        (PG_mapped | PG_mapping, "non-NULL mapping"),
        (PG_mapping | PG_reserved, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
    ],
)
def test_bad_page_reasons_on_free(flags, reason):
    mm = _small()
    pfn = mm.alloc(GFP_KERNEL, 0, cpu=0)
    mm.store.flags[pfn] |= flags
    mm.free(pfn, 0, cpu=0)
    assert [(f.kind, f.check, f.pfn) for f in mm.findings] == [
        ("bad_page", f"page dumped because: {reason}", pfn)
    ]
    assert pfn not in mm.pcp_pfns() | mm.free_pfns()


def test_bad_tail_page_leaks_the_whole_block():
    """§3.3: a non-compound order-2 block with a flag on page 2: bad_page names page 2, the
    prepare fails and none of the four pages is freed."""
    mm = _small()
    pfn = mm.alloc(GFP_KERNEL, 2, cpu=0)
    mm.store.flags[pfn + 2] |= PG_locked
    free_before = mm.nr_free_pages()
    mm.free(pfn, 2, cpu=0)
    assert [(f.check, f.pfn) for f in mm.findings] == [
        ("page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set", pfn + 2)
    ]
    assert not set(range(pfn, pfn + 4)) & (mm.pcp_pfns() | mm.free_pfns())
    assert mm.nr_free_pages() == free_before


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_a_second_free_of_a_pcp_page_is_a_bad_page_not_a_hang(model):
    """A frozen page freed twice: the second free finds it on a pcp list. The kernel catches
    that only in list debugging (and then spins in free_pcppages_bulk on a pcp->count its lists
    do not hold); the model reports a bad page, the first free stands, the drain is clean."""
    mm = _small(model)
    pfn = mm.alloc(GFP_KERNEL, 0, cpu=0, frozen=True)
    mm.free(pfn, 0, cpu=0, frozen=True)
    pcp = mm.zones[0].per_cpu_pageset[0]
    count = pcp.count
    mm.free(pfn, 0, cpu=0, frozen=True)
    assert [(f.kind, f.check, f.pfn) for f in mm.findings] == [
        ("bad_page", "page dumped because: page already on a pcp list (freed twice)", pfn)
    ]
    assert pcp.count == count and pfn in mm.pcp_pfns()
    mm.drain()
    assert validate_all(mm) == [] and pfn in mm.free_pfns()


def test_a_second_free_of_a_free_block_head_is_a_bad_page():
    """PageBuddy is a page_type in _mapcount: freeing a free block's head again fails
    page_expected_state with "nonzero mapcount", and nothing is freed twice."""
    mm = _small()
    pfn = mm.alloc(GFP_KERNEL, 3, cpu=0, frozen=True)
    mm.free(pfn, 3, cpu=0, frozen=True)
    mm.drain()
    assert mm.store.flags[pfn] & PG_buddy and pfn in mm.free_pfns()
    free_before = mm.nr_free_pages()
    mm.free(pfn, 3, cpu=0, frozen=True)
    assert [(f.kind, f.check, f.pfn) for f in mm.findings] == [
        ("bad_page", "page dumped because: nonzero mapcount", pfn)
    ]
    assert mm.nr_free_pages() == free_before


def test_a_pcp_count_its_lists_do_not_hold_is_a_finding_not_a_hang():
    """free_pcppages_bulk looks for a non-empty list while pcp->count says pages remain; with
    every list empty the kernel would loop forever: the model stops with a finding."""
    mm = _small()
    mm.drain()
    pcp = mm.zones[0].per_cpu_pageset[0]
    pcp.count = 3  # broken bookkeeping: three pages counted, none listed
    with pytest.raises(FindingError) as exc:
        mm.drain()
    f = exc.value.finding
    assert (f.kind, f.function) == ("pcp-count", "free_pcppages_bulk")
    assert "is 3 but every pcp list is empty" in f.message


def test_compound_order_mismatch_is_a_vm_bug():
    """§3.3 VM_BUG_ON_PAGE(compound && compound_order(page) != order) under CONFIG_DEBUG_VM."""
    mm = _small(debug_vm="bug")
    pfn = mm.alloc(GFP_KERNEL | __GFP_COMP, 2, cpu=0)
    with pytest.raises(VMBug) as exc:
        mm.free(pfn, 1, cpu=0)
    f = exc.value.finding
    assert (f.kind, f.function, f.pfn) == ("VM_BUG_ON_PAGE", "__free_pages_prepare", pfn)
    assert f.check == "VM_BUG_ON_PAGE(compound && compound_order(page) != order)"


def test_compound_order_mismatch_is_recorded_under_debug_vm_warn():
    mm = _small(debug_vm="warn")
    pfn = mm.alloc(GFP_KERNEL | __GFP_COMP, 2, cpu=0)
    mm.free(pfn, 1, cpu=0)
    assert [(f.kind, f.function, f.pfn) for f in mm.findings] == [
        ("VM_BUG_ON_PAGE", "__free_pages_prepare", pfn)
    ]


def test_compound_order_mismatch_is_silent_without_debug_vm():
    mm = _small()
    pfn = mm.alloc(GFP_KERNEL | __GFP_COMP, 2, cpu=0)
    mm.free(pfn, 2, cpu=0)
    assert mm.findings == []


def _state(mm: Machine) -> tuple:
    return (
        [
            (z.name, o, mt, list(lst))
            for z in mm.zones
            for o, a in enumerate(z.free_area)
            for mt, lst in enumerate(a.free_list)
        ],
        [
            (pcp.cpu, i, list(lst))
            for z in mm.zones
            for pcp in z.per_cpu_pageset
            for i, lst in enumerate(pcp.lists)
        ],
        mm.store.refcount_np.tobytes(),
        mm.nr_free_pages(),
    )


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_double_put_page_is_a_vm_bug_and_changes_nothing(model):
    """put_page on a page already freed (now on a pcp list, refcount frozen):
    put_page_testzero's VM_BUG_ON_PAGE(page_ref_count(page) == 0) stops it before the
    decrement; lists, counters and refcount words are unchanged."""
    mm = _small(model, debug_vm="bug")
    pfn = mm.alloc(GFP_KERNEL, 0, cpu=0)
    assert mm.put(pfn, cpu=0)
    assert pfn in mm.pcp_pfns()
    before = _state(mm)
    with pytest.raises(VMBug) as exc:
        mm.put(pfn, cpu=0)
    f = exc.value.finding
    assert (f.kind, f.function, f.pfn) == ("VM_BUG_ON_PAGE", "put_page_testzero", pfn)
    assert f.check == "VM_BUG_ON_PAGE(page_ref_count(page) == 0)"
    assert _state(mm) == before
    assert validate_all(mm) == []


@pytest.mark.parametrize(("model", "raw"), [("baseline", -1), ("final", 0x7FFFFFFF)])
def test_double_put_page_without_debug_vm_corrupts_a_pcp_page(model, raw):
    """Without CONFIG_DEBUG_VM the second put decrements a free page: 0 -> -1 upstream,
    0x80000000 -> 0x7fffffff (frozen bit lost) under the series; nothing is freed twice,
    and validate_refcounts reports the pcp page as no longer frozen."""
    mm = _small(model)
    pfn = mm.alloc(GFP_KERNEL, 0, cpu=0)
    assert mm.put(pfn, cpu=0)
    assert not mm.put(pfn, cpu=0)
    assert mm.store.refcount[pfn] == raw
    found = validate_all(mm)
    assert [(f.check, f.pfn, f.raw_before) for f in found] == [("refcounts", pfn, raw)]


# ---------------------------------------------------------------------------------- failure


def test_exhausted_memory_returns_none_and_traces_a_null_page():
    """§4.2: trace_mm_page_alloc fires with page == NULL (pfn None here) on failure.

    32 pages, MAX order 3: four order-3 GFP_KERNEL allocations take everything (each a pcp
    refill of one order-3 entry: batch 1). The next order-0 request fails in the fast path,
    in the slow path (min watermark 0: 0 free <= 0), after drain_all_pages, and returns None.
    """
    rec = Recorder()
    mm = one_zone(16, ZONE_DMA, max_page_order=3, pageblock_order=2, nr_cpus=1, min_free_kbytes=0, tracer=rec)
    assert [mm.alloc(GFP_KERNEL, 3, cpu=0) for _ in range(2)] == [0, 8]
    assert mm.nr_free_pages() == 0
    rec.take()
    assert mm.alloc(GFP_KERNEL, 0, cpu=0) is None
    assert rec.take() == [
        ("mm_page_alloc", {"pfn": None, "order": 0, "gfp_flags": GFP_KERNEL, "migratetype": 0})
    ]
    assert validate_all(mm) == []


def test_order_above_max_fails_without_a_trace_event():
    """WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER): NULL before anything else, no mm_page_alloc."""
    rec = Recorder()
    mm = Machine.simple(
        16, zones=[(ZONE_DMA, 16)], max_page_order=3, pageblock_order=2, min_free_kbytes=0, tracer=rec
    )
    mm.boot()
    rec.take()
    assert mm.alloc(GFP_KERNEL, 4, cpu=0) is None
    assert rec.take() == []
    assert mm.nr_free_pages() == 16


# ---------------------------------------------------------------------------------- zones


def _three_zones() -> Machine:
    """DMA [0,64), DMA32 [64,320), Normal [320,1088): managed 64, 256, 768; MAX order 4.

    lowmem_reserve (§1.4, ratios 256, 256, 32):
      DMA:   [0, 256 // 256 = 1, (256 + 768) // 256 = 4, (1024 + 0) // 256 = 4]
      DMA32: [0, 0, 768 // 256 = 3, 3]
      Normal:[0, 0, 0, 0 // 32 = 0]
    min_free_kbytes 0: every watermark is 0, so only lowmem_reserve holds pages back.
    """
    mm = Machine.simple(
        1088,
        zones=[(ZONE_DMA, 64), (ZONE_DMA32, 320), (ZONE_NORMAL, 1088)],
        max_page_order=4,
        pageblock_order=3,
        nr_cpus=2,
        min_free_kbytes=0,
    )
    mm.boot()
    dma, dma32, normal = mm.zones
    assert dma.lowmem_reserve == [0, 1, 4, 4]
    assert dma32.lowmem_reserve == [0, 0, 3, 3]
    assert normal.lowmem_reserve == [0, 0, 0, 0]
    return mm


def test_gfp_kernel_falls_back_normal_dma32_dma_and_lowmem_reserve_stops_it():
    """§4.2 zonelist Normal -> DMA32 -> DMA; §4.3 __zone_watermark_ok with lowmem_reserve.

    Order-4 blocks (16 pages; order 4 > PAGE_ALLOC_COSTLY_ORDER, so no pcp: straight to the buddy).
    Normal: 48 blocks, reserve 0: the last one passes (16 - 15 = 1 > 0).
    DMA32 (reserve[NORMAL] = 3): with 16 free, 16 - 15 = 1 <= 3 -> the last block is kept:
    15 blocks. DMA (reserve 4): likewise 3 of 4 blocks. Then GFP_KERNEL fails.
    """
    mm = _three_zones()
    got = [mm.alloc(GFP_KERNEL, 4, cpu=0) for _ in range(48 + 15 + 3)]
    assert got == list(range(320, 1088, 16)) + list(range(64, 304, 16)) + [0, 16, 32]
    assert mm.alloc(GFP_KERNEL, 4, cpu=0) is None
    dma, dma32, _normal = mm.zones
    assert (dma.NR_FREE_PAGES, dma32.NR_FREE_PAGES) == (16, 16)
    # GFP_DMA32's highest zone is DMA32, whose own reserve entry is 0: it gets DMA32's last
    # block; GFP_DMA (reserve[DMA] = 0 in DMA) gets DMA's.
    assert mm.alloc(GFP_KERNEL | GFP_DMA32, 4, cpu=0) == 304
    assert mm.alloc(GFP_KERNEL | GFP_DMA, 4, cpu=0) == 48
    assert mm.nr_free_pages() == 0
    assert validate_all(mm) == []


def test_gfp_dma_uses_only_the_dma_zone():
    mm = _three_zones()
    got = [mm.alloc(GFP_KERNEL | GFP_DMA, 4, cpu=1) for _ in range(4)]
    assert got == [0, 16, 32, 48]
    assert mm.alloc(GFP_KERNEL | GFP_DMA, 4, cpu=1) is None
    assert mm.alloc(GFP_KERNEL | GFP_DMA, 0, cpu=1) is None
    assert mm.alloc(GFP_KERNEL, 4, cpu=1) == 320  # Normal still has everything


def test_order0_kernel_pages_respect_lowmem_reserve():
    """Order 0 through pcp, with Normal and DMA32 filled by order-4 blocks first (DMA32 keeps
    one block, 304..319). GFP_KERNEL's watermark test runs on NR_FREE_PAGES (pcp pages
    excluded) before each refill: DMA32 serves while free > reserve 3; its 4th refill
    (alloc_factor 3: 8 entries, §5.2) takes 311..318 and leaves 1 free, so the next request
    skips DMA32 although its pcp holds 7 pages, and claims in DMA. When everything is
    refused, the slow path's drain_all_pages puts the stranded pcp pages back and they are
    used; at the end no zone has more free pages than its reserve for Normal."""
    mm = _three_zones()
    dma, dma32, _normal = mm.zones
    for _ in range(48 + 15):
        assert mm.alloc(GFP_KERNEL, 4, cpu=0) is not None
    pages = []
    while (p := mm.alloc(GFP_KERNEL, 0, cpu=0)) is not None:
        pages.append(p)
    assert pages[:9] == [*range(304, 312), 0]
    assert len(set(pages)) == len(pages) and all(p < 320 for p in pages)
    assert dma.pcp_pages() == dma32.pcp_pages() == 0  # drained by the failing slow path
    assert 0 < dma.NR_FREE_PAGES <= dma.lowmem_reserve[ZONE_NORMAL]
    assert dma32.NR_FREE_PAGES <= dma32.lowmem_reserve[ZONE_NORMAL]
    assert len(pages) == 64 + 16 - dma.NR_FREE_PAGES - dma32.NR_FREE_PAGES
    assert mm.alloc(GFP_KERNEL | GFP_DMA, 0, cpu=1) is not None  # reserve[DMA] = 0
    assert validate_all(mm) == []


def test_gfp_reclaimable_unmovable_movable_each_claim_their_own_pageblocks():
    """After boot all pageblocks are MOVABLE; the first reclaimable and unmovable requests
    each claim a whole MAX-order block (2 pageblocks) for their type, movable uses its own."""
    mm = Machine.simple(
        256, zones=[(ZONE_DMA, 256)], max_page_order=4, pageblock_order=3, nr_cpus=1, min_free_kbytes=0
    )
    mm.boot()
    assert mm.alloc(GFP_KERNEL | __GFP_RECLAIMABLE, 4, cpu=0) == 0
    assert mm.alloc(GFP_KERNEL, 4, cpu=0) == 16
    assert mm.alloc(GFP_HIGHUSER_MOVABLE, 4, cpu=0) == 32
    assert pageblock_types(mm)[:6] == [
        MIGRATE_RECLAIMABLE,
        MIGRATE_RECLAIMABLE,
        MIGRATE_UNMOVABLE,
        MIGRATE_UNMOVABLE,
        MIGRATE_MOVABLE,
        MIGRATE_MOVABLE,
    ]
