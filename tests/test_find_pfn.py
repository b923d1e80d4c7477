"""find_pfn and the page map against hand-computed expectations on small machines."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from buddysim.engine import Engine
from buddysim.machine import Machine, MachineLayout, ZoneSpan
from buddysim.mm.gfp import parse_gfp
from buddysim.mm.mmzone import MIGRATE_MOVABLE, ZONE_NORMAL
from buddysim.mm.page_alloc import order_to_pindex
from buddysim.report.find_pfn import AllocTracker, find_pfn
from buddysim.report.pagemap import (
    NO_MT,
    PageMapRenderable,
    pageblock_free_pages,
    pagemap_json,
    pagemap_lines,
    zone_pagemap,
)

MOVABLE = parse_gfp("GFP_HIGHUSER_MOVABLE")


def _booted(nr_pages: int = 4096, **kw: object) -> Machine:
    mm = Machine.simple(nr_pages, zones=[(ZONE_NORMAL, nr_pages)], nr_cpus=2, **kw)  # type: ignore[arg-type]
    mm.boot()
    return mm


# ---------------------------------------------------------------------------------- find_pfn
def test_after_boot_every_page_is_inside_an_order_10_block() -> None:
    mm = _booted()
    for pfn in (0, 5, 1023, 1024, 3000, 4095):
        info = find_pfn(mm, pfn)
        assert info.state == "free"
        assert (info.block_pfn, info.block_order) == (pfn & ~1023, 10)
        assert info.migratetype == "Movable"
        assert info.frozen is True and info.raw == 0 and info.count == 0
    assert find_pfn(mm, 1024).describe()[1].startswith("head of the order-10 block at 0x400")
    assert find_pfn(mm, 1025).describe()[1].startswith("inside the order-10 block at 0x400")


def test_split_block_by_hand() -> None:
    """An order-4 movable allocation splits one order-10 block: buddies of orders 4..9 remain."""
    mm = _booted()
    p = mm.alloc(MOVABLE, 4)
    assert p is not None and p % 1024 == 0  # __rmqueue_smallest hands out the block's first pages
    for order in range(4, 10):
        head = p + (1 << order)  # expand() frees the upper half at each order
        for pfn in (head, head + (1 << order) - 1):
            info = find_pfn(mm, pfn)
            assert (info.state, info.block_pfn, info.block_order) == ("free", head, order), hex(pfn)
    info = find_pfn(mm, p + 7)
    assert info.state == "allocated"
    assert info.raw == 0 and info.frozen is True  # a tail page of a non-compound allocation
    head = find_pfn(mm, p)
    assert head.state == "allocated" and head.raw == 1 and head.count == 1 and head.frozen is False
    assert head.alloc_event is None  # no tracker: nobody remembers the event


def test_pcp_page_names_its_cpu_and_list() -> None:
    mm = _booted(65536)  # big enough for a pcp batch above 1
    p = mm.alloc(MOVABLE, 0, cpu=1)
    assert p is not None
    others = sorted(mm.pcp_pfns())  # independent: walks every pcp list
    assert others and p not in others
    for q in others[:3]:
        info = find_pfn(mm, q)
        assert info.state == "pcp"
        assert (info.cpu, info.block_pfn, info.block_order) == (1, q, 0)
        assert info.pcp_pindex == order_to_pindex(MIGRATE_MOVABLE, 0)
        assert info.migratetype == "Movable"
        assert "pcp" in info.flags
    assert find_pfn(mm, p).state == "allocated"


def test_reserved_hole_and_outside() -> None:
    mm = _booted(reserved=[(0, 600)])
    r = find_pfn(mm, 3)
    assert r.state == "reserved" and r.note == "memblock-reserved" and "reserved" in r.flags
    assert find_pfn(mm, 600).state == "free"
    assert find_pfn(mm, 4096).state == "outside"
    assert find_pfn(mm, -1).state == "outside"
    layout = MachineLayout(
        zones=(ZoneSpan(0, ZONE_NORMAL, 0, 4096, 3072),),
        memory=((0, 2048 << 12, 0), (3072 << 12, 4096 << 12, 0)),
        nr_cpus=2,
    )
    holey = Machine(layout)
    holey.boot()
    assert find_pfn(holey, 2500).state == "hole"
    assert find_pfn(holey, 3100).state == "free"


def test_alloc_tracker_names_the_event() -> None:
    mm = Machine.simple(4096, zones=[(ZONE_NORMAL, 4096)], nr_cpus=2)
    mm.boot()
    events = [
        (2, {"op": "alloc_pages", "gfp": MOVABLE, "order": 4, "handle": "a"}),
        (3, {"op": "alloc_pages", "gfp": MOVABLE, "order": 2, "handle": "b", "cpu": 1}),
        (4, {"op": "mark", "label": "here"}),
        (5, {"op": "__free_pages", "handle": "a", "order": 4}),
        (6, {"op": "alloc_pages", "gfp": MOVABLE, "order": 0, "handle": "c"}),
    ]
    engine = Engine(mm, events, strict=True)
    tracker = AllocTracker().attach(engine)
    engine.run(until=3)
    a, _ = engine.handles["a"]
    b, _ = engine.handles["b"]
    info = find_pfn(mm, a + 9, tracker)
    assert (info.state, info.alloc_event, info.alloc_op, info.alloc_handle) == (
        "allocated",
        1,
        "alloc_pages",
        "a",
    )
    assert (info.block_pfn, info.block_order, info.alloc_line) == (a, 4, 2)
    assert find_pfn(mm, b + 3, tracker).alloc_event == 2
    engine.run()
    assert a not in tracker.records  # freed at event 4: the record went with it
    c, _ = engine.handles["c"]
    assert find_pfn(mm, c, tracker).alloc_event == 5
    assert find_pfn(mm, a + 9, tracker).state in ("free", "pcp")


def test_tracker_is_bounded() -> None:
    mm = _booted()
    events = [(i + 2, {"op": "alloc_pages", "gfp": MOVABLE, "order": 0, "handle": i}) for i in range(20)]
    engine = Engine(mm, events)
    tracker = AllocTracker(max_records=5).attach(engine)
    engine.run()
    assert len(tracker.records) == 5
    assert [r.event for r in tracker.records.values()] == [16, 17, 18, 19, 20]


# ---------------------------------------------------------------------------------- page map
def _free_per_block_oracle(mm: Machine, zone_start: int, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.int64)
    for pfn in mm.free_pfns():
        out[(pfn >> mm.pageblock_order) - (zone_start >> mm.pageblock_order)] += 1
    return out


def test_pagemap_after_boot_and_allocations() -> None:
    mm = _booted()
    zone = mm.zones[0]
    pm = zone_pagemap(mm, zone)
    assert pm.nr_pageblocks == pm.nr_cells == 8 and pm.blocks_per_cell == 1
    assert pm.free_fraction.tolist() == [1.0] * 8
    assert pm.mt.tolist() == [MIGRATE_MOVABLE] * 8
    assert pm.cell_pfn.tolist() == [512 * i for i in range(8)]
    mm = _booted(16384)
    zone = mm.zones[0]
    p = mm.alloc(MOVABLE, 4)
    q = mm.alloc(MOVABLE, 0, cpu=0)  # refills the pcp list: those pages are not free either
    assert p is not None and q is not None
    assert mm.pcp_pfns()
    pm = zone_pagemap(mm, zone)
    free, visited = pageblock_free_pages(zone)
    assert free.tolist() == _free_per_block_oracle(mm, 0, 32).tolist()
    assert visited == sum(a.nr_free for a in zone.free_area)
    assert pm.free_pages[p >> 9] <= 512 - 16 - len(mm.pcp_pfns()) - 1
    assert pm.cell_of_pfn(p) == p >> 9 and pm.cell_of_pfn(16384) is None
    assert pm.work == {"free_list_entries": visited, "pageblocks": 32, "cells": 32, "page_reads": 0}


def test_pagemap_bins_and_reserved() -> None:
    mm = _booted(reserved=[(0, 600)])
    pm = zone_pagemap(mm, mm.zones[0], max_cells=3)
    assert (pm.blocks_per_cell, pm.nr_cells) == (3, 3)
    # cell 0: pageblocks 0-2 (pages 0-599 reserved), cell 2: pageblocks 6-7 only
    assert pm.free_pages.tolist() == [1536 - 600, 1536, 1024]
    assert pm.usable_fraction[0] == pytest.approx((1536 - 600) / 1536)
    assert pm.free_fraction[2] == pytest.approx(1.0)
    one = zone_pagemap(mm, mm.zones[0])
    assert one.usable_fraction[0] == 0.0 and one.usable_fraction[1] == pytest.approx((1024 - 600) / 512)
    data = pagemap_json(pm)
    assert data["cells"][2] == {
        "pfn": 3072,
        "migratetype": "Movable",
        "free_pages": 1024,
        "free_fraction": 1.0,
        "usable_fraction": 1.0,
    }


def test_pagemap_of_a_zone_with_a_hole_and_a_partial_edge() -> None:
    layout = MachineLayout(
        zones=(ZoneSpan(0, 0, 100, 3996, 2948),),
        memory=((100 << 12, 2048 << 12, 0), (3072 << 12, 4096 << 12, 0)),
        nr_cpus=2,
    )
    mm = Machine(layout)
    mm.boot()
    pm = zone_pagemap(mm, mm.zones[0])
    assert pm.nr_pageblocks == 8
    assert pm.mt[4] == NO_MT and pm.mt[5] == NO_MT  # pfns 2048-3071: no memory
    free, _ = pageblock_free_pages(mm.zones[0])
    assert free.tolist() == _free_per_block_oracle(mm, 100, 8).tolist()
    assert pm.free_fraction[0] == pytest.approx(free[0] / (512 - 100))


def test_pagemap_never_reads_the_per_page_arrays() -> None:
    mm = _booted(8192)
    mm.alloc(MOVABLE, 3)
    store = mm.store
    saved = store.refcount_np, store.flags_np, store.private_np
    store.refcount_np = store.flags_np = store.private_np = None  # type: ignore[assignment]
    try:
        pm = zone_pagemap(mm, mm.zones[0], max_cells=5)
    finally:
        store.refcount_np, store.flags_np, store.private_np = saved
    assert pm.nr_cells <= 5 and pm.work["page_reads"] == 0


def test_pagemap_renders_two_cells_per_character() -> None:
    mm = _booted()
    pm = zone_pagemap(mm, mm.zones[0])
    lines = pagemap_lines(pm, 3)
    assert [len(line) for line in lines] == [3, 1]  # 8 cells -> 4 characters on a 3-wide map
    assert all(seg.text == "▀" for line in lines for seg in line)
    marked = pagemap_lines(pm, 3, highlight=5)
    assert marked[0][2].text == "◆"
    console = Console(record=True, width=10, color_system="truecolor", force_terminal=True)
    console.print(PageMapRenderable(pm))
    assert console.export_text() == "▀▀▀▀\n"
