"""The §11 validators: each accepts a clean state and rejects a state corrupted by hand.

A machine is booted and used (free blocks of every order, pcp entries on two CPUs, live
allocations); every validator must be silent on it. Then one field is broken by hand (a list,
a counter, a flag, a refcount word, a pageblock bit, a watermark) and the validator that owns
that invariant must report it, naming the zone, pfn or order. drgn keeps the same kind of
corrupted fixtures for its own ``validate_*`` helpers (STYLE.md §1).
"""

from __future__ import annotations

import pytest

from buddysim.machine import Machine
from buddysim.mm.debug import (
    ALL_VALIDATORS,
    ValidationError,
    check_all,
    validate_all,
    validate_counters,
    validate_free_lists,
    validate_managed,
    validate_merging,
    validate_partition,
    validate_pcp,
    validate_refcounts,
    validate_watermarks,
)
from buddysim.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from buddysim.mm.internal import set_buddy_order, set_pageblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_DMA,
    ZONE_NORMAL,
)
from buddysim.mm.page_store import PG_buddy, PG_pcp, PG_reserved


def _used(model: str = "baseline") -> Machine:
    """1024 pages (DMA 256, Normal 768), MAX order 4, pageblocks of 8, two CPUs, in use."""
    mm = Machine.simple(
        1024,
        zones=[(ZONE_DMA, 256), (ZONE_NORMAL, 1024)],
        max_page_order=4,
        pageblock_order=3,
        nr_cpus=2,
        refcount=model,
    )
    mm.boot()
    held = [mm.alloc(GFP_KERNEL, o, cpu=0) for o in (0, 0, 1, 2, 3, 0)]
    held += [mm.alloc(GFP_HIGHUSER_MOVABLE, o, cpu=1) for o in (0, 2, 4, 0)]
    for pfn, order in zip(held[:3], (0, 0, 1), strict=True):
        mm.free(pfn, order, cpu=0)  # to cpu 0's pcp lists
    mm.free(held[6], 0, cpu=1)
    return mm


@pytest.fixture
def mm() -> Machine:
    mm = _used()
    assert validate_all(mm) == [], [f.describe() for f in validate_all(mm)]
    return mm


@pytest.fixture
def normal(mm):
    return next(z for z in mm.zones if z.zone_idx == ZONE_NORMAL)


def _block(zone, order: int) -> tuple[int, int]:
    """(head, migratetype) of the first free block of ``order`` (MOVABLE lists first)."""
    for mt in (MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE):
        lst = zone.free_area[order].free_list[mt]
        if lst:
            return lst.first(), mt
    raise AssertionError(f"fixture has no order-{order} block")


def _head(zone, order: int) -> int:
    return _block(zone, order)[0]


def _pcp_entry(zone):
    for pcp in zone.per_cpu_pageset:
        for pindex, lst in enumerate(pcp.lists):
            if lst:
                return pcp, pindex, lst.first()
    raise AssertionError("fixture has no pcp entry")


def _run(validator, mm, zone) -> list:
    found = list(validator(mm, zone))
    name = validator.__name__.removeprefix("validate_")
    assert found, f"{validator.__name__} accepted the corrupted state"
    assert all(f.kind == "invariant" and f.check == name and f.function == validator.__name__ for f in found)
    assert all(f"zone {zone.name}" in f.message for f in found)
    # the same findings come out of validate_all
    assert {f.message for f in found} <= {f.message for f in validate_all(mm)}
    return found


# ---------------------------------------------------------------------------------- clean


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_every_validator_accepts_a_used_machine(model):
    mm = _used(model)
    assert mm.findings == []
    for zone in mm.zones:
        for v in ALL_VALIDATORS:
            assert list(v(mm, zone)) == [], v.__name__
    check_all(mm)  # does not raise
    # and the fixture really exercises what the validators walk
    assert any(pcp.count for z in mm.zones for pcp in z.per_cpu_pageset)
    assert len({o for z in mm.zones for _p, o, _mt in z.iter_free_blocks()}) >= 4


def test_check_all_raises_validation_error(mm, normal):
    normal.NR_FREE_PAGES += 3
    with pytest.raises(ValidationError) as exc:
        check_all(mm)
    assert [f.check for f in exc.value.findings] == ["counters"]
    assert "NR_FREE_PAGES" in str(exc.value)


# ---------------------------------------------------------------------------------- free lists


def test_free_lists_rejects_misaligned_head(mm, normal):
    h, mt = _block(normal, 2)
    lst = normal.free_area[2].free_list[mt]
    del lst[h]
    lst.add(h + 1, False)
    mm.store.flags[h] &= ~PG_buddy & 0xFFFF
    set_buddy_order(mm.store, h + 1, 2)
    found = _run(validate_free_lists, mm, normal)
    assert any(f.pfn == h + 1 and f.order == 2 and "not aligned to order 2" in f.message for f in found)


def test_free_lists_rejects_nr_free_mismatch(mm, normal):
    normal.free_area[3].nr_free += 1
    (f,) = _run(validate_free_lists, mm, normal)
    n = normal.free_area[3].nr_free
    assert f.order == 3 and f"free_area[3].nr_free = {n}, lists hold {n - 1}" in f.message


def test_free_lists_rejects_head_without_page_buddy(mm, normal):
    h = _head(normal, 1)
    mm.store.flags[h] &= ~PG_buddy & 0xFFFF
    (f,) = _run(validate_free_lists, mm, normal)
    assert f.pfn == h and "not PageBuddy with private == 1" in f.message


def test_free_lists_rejects_wrong_private(mm, normal):
    h = _head(normal, 2)
    mm.store.private[h] = 3
    (f,) = _run(validate_free_lists, mm, normal)
    assert f.pfn == h and "private=3" in f.message


def test_free_lists_rejects_list_of_the_wrong_type(mm, normal):
    h = _head(normal, 4)
    area = normal.free_area[4]
    del area.free_list[MIGRATE_MOVABLE][h]
    area.free_list[MIGRATE_RECLAIMABLE].add(h, True)
    (f,) = _run(validate_free_lists, mm, normal)
    assert f.pfn == h and "on the Reclaimable list but pageblock is Movable" in f.message


def test_free_lists_rejects_stray_page_buddy(mm, normal):
    h = _head(normal, 4)
    mm.store.flags[h + 3] |= PG_buddy  # inside a free block, but no list holds it
    (f,) = _run(validate_free_lists, mm, normal)
    assert f.pfn == h + 3 and "PageBuddy page on no free list" in f.message


def test_free_lists_rejects_block_outside_the_zone(mm, normal):
    dma = mm.zones[0]
    h = _head(dma, 4)  # a DMA block filed on a Normal list
    normal.free_area[4].free_list[MIGRATE_MOVABLE].add(h, True)
    normal.free_area[4].nr_free += 1
    found = _run(validate_free_lists, mm, normal)
    assert any(f.pfn == h and "outside the zone span" in f.message for f in found)


def test_free_lists_rejects_block_over_mixed_pageblocks(mm, normal):
    h = _head(normal, 4)  # two pageblocks of 8
    set_pageblock_migratetype(mm.store, h + 8, MIGRATE_RECLAIMABLE)
    (f,) = _run(validate_free_lists, mm, normal)
    assert f.pfn == h and "spans pageblocks of different types" in f.message


# ---------------------------------------------------------------------------------- partition


def test_partition_rejects_page_on_two_cpus(mm, normal):
    pcp, pindex, pfn = _pcp_entry(normal)
    other = normal.per_cpu_pageset[1 - pcp.cpu]
    other.lists[pindex].add(pfn, False)
    other.count += 1 << (pindex // 3)
    found = _run(validate_partition, mm, normal)
    assert any(f.pfn == pfn and "overlaps" in f.message for f in found)
    assert [v.__name__ for v in ALL_VALIDATORS if list(v(mm, normal))] == ["validate_partition"]


def test_partition_rejects_free_block_also_on_pcp(mm, normal):
    h = _head(normal, 0)
    pcp = normal.per_cpu_pageset[0]
    pcp.lists[MIGRATE_MOVABLE].add(h, True)
    pcp.count += 1
    found = _run(validate_partition, mm, normal)
    assert any(f.pfn == h and "overlaps" in f.message for f in found)


def test_partition_rejects_reserved_page_in_a_free_block(mm, normal):
    h = _head(normal, 3)
    mm.store.flags[h + 5] |= PG_reserved
    found = _run(validate_partition, mm, normal)
    assert any(f.pfn == h and "reserved or offline" in f.message for f in found)


# ---------------------------------------------------------------------------------- pcp


def test_pcp_rejects_count_mismatch(mm, normal):
    pcp, _pindex, _pfn = _pcp_entry(normal)
    pcp.count += 1
    (f,) = _run(validate_pcp, mm, normal)
    assert f"cpu {pcp.cpu} pcp->count = {pcp.count}, lists hold {pcp.count - 1}" in f.message


def test_pcp_rejects_entry_without_pcp_mark(mm, normal):
    _pcp, _pindex, pfn = _pcp_entry(normal)
    mm.store.flags[pfn] &= ~PG_pcp & 0xFFFF
    (f,) = _run(validate_pcp, mm, normal)
    assert f.pfn == pfn and "marked wrongly" in f.message


def test_pcp_rejects_entry_marked_page_buddy(mm, normal):
    _pcp, _pindex, pfn = _pcp_entry(normal)
    mm.store.flags[pfn] |= PG_buddy
    found = _run(validate_pcp, mm, normal)
    assert any(f.pfn == pfn and "marked wrongly" in f.message for f in found)


def test_pcp_rejects_entry_in_isolated_pageblock(mm, normal):
    _pcp, _pindex, pfn = _pcp_entry(normal)
    set_pageblock_migratetype(mm.store, pfn, MIGRATE_ISOLATE)
    normal.nr_isolate_pageblock += 1
    found = _run(validate_pcp, mm, normal)
    assert any(f.pfn == pfn and "isolated pageblock" in f.message for f in found)


def test_pcp_rejects_high_outside_its_range(mm, normal):
    pcp = normal.per_cpu_pageset[0]
    pcp.high = pcp.high_max + 1
    (f,) = _run(validate_pcp, mm, normal)
    assert f"high {pcp.high} outside [{pcp.high_min}, {pcp.high_max}]" in f.message


# ---------------------------------------------------------------------------------- counters


@pytest.mark.parametrize(
    ("field", "delta", "text"),
    [
        ("NR_FREE_PAGES", -1, "NR_FREE_PAGES = "),
        ("NR_FREE_CMA_PAGES", 8, "NR_FREE_CMA_PAGES = 8, free lists hold 0"),
        ("nr_free_highatomic", 8, "nr_free_highatomic = 8, free lists hold 0"),
        ("NR_FREE_PAGES_BLOCKS", 16, "NR_FREE_PAGES_BLOCKS = "),
        ("nr_isolate_pageblock", 1, "nr_isolate_pageblock = 1, bits set: 0"),
        ("nr_reserved_highatomic", 3, "nr_reserved_highatomic 3 not pageblock-sized"),
    ],
)
def test_counters_reject_each_counter(mm, normal, field, delta, text):
    setattr(normal, field, getattr(normal, field) + delta)
    (f,) = _run(validate_counters, mm, normal)
    assert text in f.message


def test_counters_accept_a_reserved_highatomic_pageblock(mm, normal):
    normal.nr_reserved_highatomic += mm.pageblock_nr_pages
    assert list(validate_counters(mm, normal)) == []


# ---------------------------------------------------------------------------------- refcounts


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_refcounts_reject_referenced_page_in_a_free_block(model):
    mm = _used(model)
    normal = mm.zones[1]
    h = _head(normal, 4)
    mm.refs.set_page_count(h + 9, 1)  # a tail page of a free block gains a reference
    (f,) = _run(validate_refcounts, mm, normal)
    assert (f.pfn, f.order, f.count, f.raw_before) == (h + 9, 4, 1, 1)
    assert "free list is not frozen" in f.message


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_refcounts_reject_referenced_pcp_page(model):
    mm = _used(model)
    normal = mm.zones[1]
    pcp, _pindex, pfn = _pcp_entry(normal)
    mm.refs.set_page_count(pfn, 1)
    (f,) = _run(validate_refcounts, mm, normal)
    assert f.pfn == pfn and f"cpu {pcp.cpu} pcp is not frozen" in f.message


def test_refcounts_follow_the_model_encoding():
    """A plain 0 is frozen upstream but not under the frozen-bit series (refcount.md §3.3)."""
    for model, fires in (("baseline", False), ("final", True)):
        mm = _used(model)
        normal = mm.zones[1]
        h = _head(normal, 2)
        mm.store.refcount[h + 1] = 0
        found = list(validate_refcounts(mm, normal))
        assert bool(found) == fires, model
        if fires:
            assert (found[0].pfn, found[0].raw_before) == (h + 1, 0)


# ---------------------------------------------------------------------------------- merging


def _split(mm, zone, order: int, isolate_right: bool) -> tuple[int, int]:
    """Replace the first free order-``order`` block by its two halves, consistently; the
    right half's pageblock optionally isolated (as start_isolate_page_range leaves it)."""
    h, left_mt = _block(zone, order)
    right_mt = MIGRATE_ISOLATE if isolate_right else left_mt
    half = order - 1
    right = h + (1 << half)
    area = zone.free_area[order]
    del area.free_list[left_mt][h]
    area.nr_free -= 1
    if order >= mm.pageblock_order:
        zone.NR_FREE_PAGES_BLOCKS -= 1 << order
    for pfn, mt in ((h, left_mt), (right, right_mt)):
        zone.free_area[half].free_list[mt].add(pfn, True)
        zone.free_area[half].nr_free += 1
        set_buddy_order(mm.store, pfn, half)
        if half >= mm.pageblock_order and mt != MIGRATE_ISOLATE:
            zone.NR_FREE_PAGES_BLOCKS += 1 << half
    mm.store.flags[right] |= PG_buddy
    if right_mt == MIGRATE_ISOLATE:
        set_pageblock_migratetype(mm.store, right, MIGRATE_ISOLATE)
        zone.nr_isolate_pageblock += 1
        zone.NR_FREE_PAGES -= 1 << half  # isolated free pages are not counted
    return h, right


def test_merging_rejects_two_free_buddies(mm, normal):
    h, right = _split(mm, normal, 2, isolate_right=False)
    (f,) = _run(validate_merging, mm, normal)
    assert (f.pfn, f.order) == (h, 1) and f"buddies {h:#x} and {right:#x} both free" in f.message
    # nothing else is wrong with the split state
    assert [v.__name__ for v in ALL_VALIDATORS if list(v(mm, normal))] == ["validate_merging"]


def test_merging_rejects_unmerged_pageblock_buddies_of_one_type(mm, normal):
    _split(mm, normal, 4, isolate_right=False)
    (f,) = _run(validate_merging, mm, normal)
    assert f.order == 3


def test_merging_accepts_isolated_pageblock_buddy(mm, normal):
    """§11.8 exception: at >= pageblock_order, MOVABLE and ISOLATE buddies stay apart."""
    _split(mm, normal, 4, isolate_right=True)
    assert validate_all(mm) == []


# ---------------------------------------------------------------------------------- managed


def test_managed_rejects_lost_page(mm, normal):
    normal.managed_pages -= 1
    (f,) = _run(validate_managed, mm, normal)
    assert f"managed_pages {normal.managed_pages}, pages neither reserved nor offline 768" in f.message


def test_managed_rejects_more_than_present(mm, normal):
    normal.managed_pages = normal.present_pages + 1
    found = _run(validate_managed, mm, normal)
    assert any("managed 769 <= present 768 <= spanned 768 fails" in f.message for f in found)


def test_managed_rejects_newly_reserved_page(mm, normal):
    pfn = next(iter(mm.free_pfns() & set(range(normal.zone_start_pfn, normal.zone_end_pfn))))
    mm.store.flags[pfn] |= PG_reserved
    found = _run(validate_managed, mm, normal)
    assert "pages neither reserved nor offline 767" in found[0].message


# ---------------------------------------------------------------------------------- watermarks


def test_watermarks_reject_min_above_low(mm, normal):
    normal._watermark[WMARK_MIN] = normal._watermark[WMARK_LOW] + 1
    (f,) = _run(validate_watermarks, mm, normal)
    assert "watermarks not ordered" in f.message


def test_watermarks_reject_reserve_for_own_or_lower_zone(mm):
    dma = mm.zones[0]
    dma.lowmem_reserve[ZONE_DMA] = 5
    (f,) = _run(validate_watermarks, mm, dma)
    assert "lowmem_reserve[0] = 5 for a zone index <= 0" in f.message


def test_watermarks_reject_decreasing_reserve(mm):
    dma = mm.zones[0]
    assert dma.lowmem_reserve[2] > 0  # (768) // 256 = 3 pages kept from Normal allocations
    dma.lowmem_reserve[3] = dma.lowmem_reserve[2] - 1
    (f,) = _run(validate_watermarks, mm, dma)
    assert "lowmem_reserve decreases at 3" in f.message
