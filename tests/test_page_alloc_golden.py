"""Golden tests of the buddy allocator, worked by hand from kernel-allocator.md.

Expected values come from the spec's worked examples (§6.2 chunking, §4.5 expand, §3.4 merge
and to-tail rules, §11.15 list order), not from running the code under test.
"""

from __future__ import annotations

import pytest

from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_all
from buddysim.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from buddysim.mm.internal import FPI_NONE, FPI_TO_TAIL
from buddysim.mm.mmzone import MIGRATE_MOVABLE, ZONE_DMA, ZONE_DMA32

free_one_page = pa.free_one_page
rmqueue_smallest = getattr(pa, "__rmqueue_smallest")
free_one = getattr(pa, "__free_one_page")
free_pages = getattr(pa, "__free_pages")


def _record(events: list[tuple[str, dict]]):
    return lambda name, fields: events.append((name, dict(fields)))


def _boot_chunks(start: int, end: int) -> list[tuple[int, int]]:
    """The (pfn, order) of every chunk __free_pages_core hands over for free range [start, end)."""
    events: list[tuple[str, dict]] = []
    mm = Machine.simple(
        end, zones=[(ZONE_DMA, end)], reserved=[(0, start)] if start else [], tracer=_record(events)
    )
    mm.boot()
    return [(f["pfn"], f["order"]) for name, f in events if name == "mm_page_free"]


def test_free_pages_memory_chunking_small_range():
    # spec §6.2 worked example: [1, 159)
    assert _boot_chunks(1, 159) == [
        (1, 0),
        (2, 1),
        (4, 2),
        (8, 3),
        (16, 4),
        (32, 5),
        (64, 6),
        (128, 4),
        (144, 3),
        (152, 2),
        (156, 1),
        (158, 0),
    ]


def test_free_pages_memory_chunking_long_range():
    # spec §6.2: [0x100, 0x7ffe0) yields 517 chunks, a ramp up to order 10 and a ramp down
    chunks = _boot_chunks(0x100, 0x7FFE0)
    assert len(chunks) == 517
    assert chunks[:4] == [(0x100, 8), (0x200, 9), (0x400, 10), (0x800, 10)]
    assert chunks[-5:] == [(0x7FC00, 9), (0x7FE00, 8), (0x7FF00, 7), (0x7FF80, 6), (0x7FFC0, 5)]


def _tiny(max_order: int = 3, pageblock_order: int = 2, nr_pages: int = 16, **kw) -> Machine:
    mm = Machine.simple(
        nr_pages,
        zones=[(ZONE_DMA, nr_pages)],
        max_page_order=max_order,
        pageblock_order=pageblock_order,
        **kw,
    )
    mm.boot()
    return mm


def _lists(zone, mt=MIGRATE_MOVABLE) -> list[list[int]]:
    return [list(area.free_list[mt]) for area in zone.free_area]


def test_boot_lists_ascending_and_merged():
    mm = _tiny()
    zone = mm.zones[0]
    # 16 pages, max order 3: two order-3 blocks, ascending (FPI_TO_TAIL)
    assert _lists(zone) == [[], [], [], [0, 8]]
    assert zone.free_area[3].nr_free == 2
    assert zone.NR_FREE_PAGES == 16
    assert validate_all(mm) == []


def test_expand_remainders_go_to_list_heads():
    # spec §4.5: order-0 request from an order-3 block at P leaves P+4 (o2), P+2 (o1), P+1 (o0)
    mm = _tiny()
    zone = mm.zones[0]
    page = rmqueue_smallest(zone, 0, MIGRATE_MOVABLE)
    assert page == 0
    assert _lists(zone) == [[1], [2], [4], [8]]
    # a second order-1 remainder from the next split goes to the HEAD of the order-1 list
    page2 = rmqueue_smallest(zone, 2, MIGRATE_MOVABLE)
    assert page2 == 4
    page3 = rmqueue_smallest(zone, 1, MIGRATE_MOVABLE)
    assert page3 == 2
    page4 = rmqueue_smallest(zone, 0, MIGRATE_MOVABLE)
    assert page4 == 1
    page5 = rmqueue_smallest(zone, 0, MIGRATE_MOVABLE)  # splits the order-3 block at 8
    assert page5 == 8
    assert _lists(zone) == [[9], [10], [12], []]
    assert zone.NR_FREE_PAGES == 16 - 1 - 4 - 2 - 1 - 1


def _set_refcount_frozen(mm: Machine, pfn: int, order: int) -> None:
    for p in range(pfn, pfn + (1 << order)):
        mm.refs.set_frozen(p)


def test_merge_order_and_to_tail_rules():
    mm = _tiny()
    zone = mm.zones[0]
    pages = [rmqueue_smallest(zone, 0, MIGRATE_MOVABLE) for _ in range(16)]
    assert pages == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert zone.NR_FREE_PAGES == 0
    # free 5: its buddy 4 is allocated -> stays order 0; buddy_merge_likely checks the
    # parent [4,5]'s buddy [6,7] at order 1: not free -> head
    free_one(5, 5, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    # free 6 and 7: they merge into [6,7] (order 1); then its buddy [4,5] is not an order-1 block
    free_one(7, 7, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    free_one(6, 6, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    assert _lists(zone)[:2] == [[5], [6]]
    # free 4: merges with 5 -> [4,5] order 1, then with [6,7] -> [4..7] order 2
    free_one(4, 4, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    assert _lists(zone) == [[], [], [4], []]
    # free 1 (buddy 0 allocated); parent [0,1]'s order-1 buddy [2,3] not free -> head of order 0
    free_one(1, 1, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    # free 3 (buddy 2 allocated); parent [2,3]'s buddy [0,1] is not an order-1 block -> head
    free_one(3, 3, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    assert _lists(zone)[0] == [3, 1]
    # free 2: merges with 3 into [2,3]; buddy [0,1] not free at order 1 -> stop at order 1;
    # buddy_merge_likely: parent [0..3]'s order-2 buddy [4..7] IS free -> TAIL
    free_one(9, 9, zone, 0, MIGRATE_MOVABLE, FPI_NONE)  # an unrelated order-1 list member
    free_one(8, 8, zone, 0, MIGRATE_MOVABLE, FPI_NONE)  # [8,9] order 1 at head
    assert _lists(zone)[1] == [8]
    free_one(2, 2, zone, 0, MIGRATE_MOVABLE, FPI_NONE)
    assert _lists(zone)[1] == [8, 2]
    assert _lists(zone)[0] == [1]
    # FPI_TO_TAIL always goes to the tail
    free_one(12, 12, zone, 0, MIGRATE_MOVABLE, FPI_TO_TAIL)
    free_one(14, 14, zone, 0, MIGRATE_MOVABLE, FPI_TO_TAIL)
    assert _lists(zone)[0] == [1, 12, 14]
    for f in validate_all(mm):
        assert f.check == "partition" or f.check == "managed", f.describe()


def test_next_allocation_after_boot_is_lowest_address():
    mm = Machine.simple(1 << 13)
    mm.boot()
    # DMA32 is [4096, 8192); GFP_HIGHUSER_MOVABLE's zonelist starts at Movable/Normal -> DMA32
    p = mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=0)
    assert p == 4096
    # the pcp refill took a batch in ascending order: the next ones follow
    assert [mm.alloc(GFP_HIGHUSER_MOVABLE, 0, cpu=0) for _ in range(3)] == [4097, 4098, 4099]


@pytest.mark.parametrize("model", ["baseline", "final", "inverted"])
def test_free_pages_scenario_leaks_nothing(model):
    """lib/test_free_pages.c: order-3 non-compound, speculative ref, free, drop the ref."""
    mm = Machine.simple(1 << 13, refcount=model)
    mm.boot()
    before = mm.nr_free_pages() + sum(z.pcp_pages() for z in mm.zones)
    page = mm.alloc(GFP_KERNEL, 3, cpu=0)
    assert page is not None
    assert mm.refs.get_page_unless_zero(page)  # the speculative reference
    free_pages(mm, page, 3)
    # everything but page[0] went back: page+4 (o2), page+2 (o1), page+1 (o0)
    pcp_pfns = mm.pcp_pfns()
    assert {page + 1, page + 2, page + 3, page + 4, page + 7} <= pcp_pfns | mm.free_pfns()
    assert page not in pcp_pfns | mm.free_pfns()
    assert mm.refs.page_ref_count(page) == 1
    assert mm.put(page, cpu=0)  # the last reference frees page[0]
    mm.drain()
    after = mm.nr_free_pages() + sum(z.pcp_pages() for z in mm.zones)
    assert after == before
    assert mm.findings == []
    assert validate_all(mm) == []


@pytest.mark.parametrize(
    ("model", "sites", "unfrozen"),
    [
        ("baseline", None, False),
        ("final", None, False),
        ("inverted", None, False),
        ("v1", None, True),
        ("v2", None, True),
        ("final", "baseline", True),
        ("final", "v2", False),  # the frozen setter is the semantic model's: F
        ("v2", "final", True),  # v2's setter stores 0 whatever the table
        ("baseline", "final", False),
    ],
)
def test_boot_pages_frozen_on_entry(model, sites, unfrozen):
    mm = Machine.simple(1 << 14, refcount=model, sites=sites)
    pages = mm.boot()
    found = [f for f in mm.findings if f.kind == "unfrozen-free-entry"]
    if not unfrozen:
        assert found == []
        return
    # every boot page is reported, at __free_pages_core, with the right counts
    assert sum(f.count for f in found) == pages == 1 << 14
    assert all("__free_pages_core" in f.chain and f.function == "__free_one_page" for f in found)
    assert all(f.raw_before == 0 for f in found)


def test_findings_name_event_pfn_order_raw_and_chain():
    mm = Machine.simple(1 << 12, zones=[(ZONE_DMA, 1 << 12)], refcount="v2")
    mm.event = 7
    mm.boot()
    f = mm.findings[0]
    assert (f.event, f.pfn, f.order, f.raw_before, f.model, f.sites) == (7, 0, 9, 0, "v2", "v2")
    assert f.chain[-4:] == ("__free_pages_ok", "free_one_page", "split_large_buddy", "__free_one_page")


def test_zone_limits_and_zonelist():
    mm = Machine.simple(0x100000 + 4096)
    assert [(z.name, z.zone_start_pfn, z.spanned_pages) for z in mm.zones] == [
        ("DMA", 0, 4096),
        ("DMA32", 4096, 0x100000 - 4096),
        ("Normal", 0x100000, 4096),
    ]
    mm.boot()
    # GFP_KERNEL -> Normal first
    assert mm.alloc(GFP_KERNEL, 0, cpu=1) >= 0x100000
    assert mm.zones[1].zone_idx == ZONE_DMA32
