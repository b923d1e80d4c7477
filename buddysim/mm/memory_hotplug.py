"""Memory onlining: mm/memory_hotplug.c (Linux 7.2) ``online_pages`` and its chunking.

``online_pages(pfn, nr_pages, zone)``: the range joins the zone with its memmap initialised
for MEMINIT_HOTPLUG (PageOffline, refcount 1, pageblocks MOVABLE with the isolate bit), is
handed to the buddy in ``online_pages_range``'s naturally aligned chunks through
``generic_online_page`` > ``__free_pages_core(MEMINIT_HOTPLUG)`` (so the pages land on
MIGRATE_ISOLATE lists, not counted as free), present pages are adjusted, the isolation is
undone (``undo_isolate_page_range``) and the watermarks recomputed.

Simplified: zone choice is the kernel's default policy reduced to: a range inside an existing
zone's span joins it; otherwise ``online_movable`` picks ZONE_MOVABLE and the others the
node's ZONE_NORMAL (no auto-movable policies, no memory groups); no memory notifiers, no
shuffle, no kswapd/kcompactd start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buddysim.findings import Finding
from buddysim.mm import page_alloc as pa
from buddysim.mm.internal import MEMINIT_HOTPLUG, PB_migrate_isolate
from buddysim.mm.mm_init import PAGES_PER_SECTION
from buddysim.mm.mmzone import MIGRATE_MOVABLE, ZONE_MOVABLE, ZONE_NORMAL, Zone
from buddysim.mm.page_isolation import undo_isolate_page_range
from buddysim.mm.page_store import PG_offline

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = ["generic_online_page", "move_pfn_range_to_zone", "online_pages", "online_pages_range"]

_free_pages_core = getattr(pa, "__free_pages_core")


def zone_for_pfn_range(mm: Machine, online_type: str, nid: int, start_pfn: int, nr_pages: int) -> Zone:
    """``zone_for_pfn_range()`` reduced: an existing zone spanning the range, else Movable/Normal."""
    for z in mm.node_data[nid].node_zones:
        if z.spanned_pages and z.zone_start_pfn <= start_pfn and start_pfn + nr_pages <= z.zone_end_pfn:
            return z
    idx = ZONE_MOVABLE if online_type == "online_movable" else ZONE_NORMAL
    return mm.node_data[nid].node_zones[idx]


def move_pfn_range_to_zone(mm: Machine, zone: Zone, start_pfn: int, nr_pages: int) -> None:
    """``move_pfn_range_to_zone(..., MIGRATE_MOVABLE, isolate=true)``: grow the spans and init the
    memmap for MEMINIT_HOTPLUG: PageOffline, refcount 1, pageblocks MOVABLE + isolate bit."""
    end = start_pfn + nr_pages
    mm.store.grow(end)
    mm.refs._w = mm.store.refcount  # the model reads the (re-allocated) word array
    if not zone.spanned_pages:
        zone.zone_start_pfn, zone.spanned_pages = start_pfn, nr_pages
    else:
        new_start = min(zone.zone_start_pfn, start_pfn)
        zone.spanned_pages = max(zone.zone_end_pfn, end) - new_start
        zone.zone_start_pfn = new_start
    store = mm.store
    store.flags_np[start_pfn:end] = PG_offline
    mm.site_range("__init_single_page", start_pfn, nr_pages)
    pb = mm.pageblock_order
    store.pageblock_mt_np[start_pfn >> pb : -(-end >> pb)] = MIGRATE_MOVABLE | PB_migrate_isolate
    mm.zones_changed()


def generic_online_page(mm: Machine, page: int, order: int) -> None:
    """``generic_online_page()``: ``__free_pages_core(page, order, MEMINIT_HOTPLUG)``."""
    _free_pages_core(mm, page, order, MEMINIT_HOTPLUG)


def online_pages_range(mm: Machine, start_pfn: int, nr_pages: int) -> None:
    """``online_pages_range()``: the ``__free_pages_memory`` chunking without the length clamp."""
    end_pfn = start_pfn + nr_pages
    pfn = start_pfn
    while pfn < end_pfn:
        order = min(mm.MAX_PAGE_ORDER, (pfn & -pfn).bit_length() - 1) if pfn else mm.MAX_PAGE_ORDER
        generic_online_page(mm, pfn, order)
        pfn += 1 << order


def online_pages(mm: Machine, pfn: int, nr_pages: int, nid: int = 0, online_type: str = "online") -> int:
    """``online_pages()``: returns 0, or -22 (-EINVAL) with a finding for a misaligned range."""
    if pfn & (mm.pageblock_nr_pages - 1) or (pfn + nr_pages) & (PAGES_PER_SECTION - 1):
        mm.report(
            Finding(
                "WARN_ON_ONCE",
                "online_pages",
                "!IS_ALIGNED(pfn, pageblock_nr_pages) || !IS_ALIGNED(pfn + nr_pages, PAGES_PER_SECTION)",
                mm.refs.name,
                pfn,
                message=f"online_pages({pfn:#x}, {nr_pages}) is not pageblock/section aligned: -EINVAL",
            )
        )
        return -22
    if any(mm.page_zone(p) is not None for p in (pfn, pfn + nr_pages - 1)) and mm.store.end_pfn > pfn:
        if not all(
            mm.store.flags[p] & PG_offline or not mm.store.flags[p] for p in (pfn, pfn + nr_pages - 1)
        ):
            mm.report(
                Finding(
                    "online_pages",
                    "online_pages",
                    "range already online",
                    mm.refs.name,
                    pfn,
                    message=f"pfns [{pfn:#x}, {pfn + nr_pages:#x}) are already online memory",
                )
            )
            return -22
    zone = zone_for_pfn_range(mm, online_type, nid, pfn, nr_pages)
    move_pfn_range_to_zone(mm, zone, pfn, nr_pages)
    zone.nr_isolate_pageblock += nr_pages // mm.pageblock_nr_pages
    if not any(p.high_max for p in zone.per_cpu_pageset):
        pa.zone_set_pageset_high_and_batch(zone, 0)  # setup_zone_pageset
    online_pages_range(mm, pfn, nr_pages)
    zone.present_pages += nr_pages  # adjust_present_page_count
    mm.node_data[nid].node_present_pages += nr_pages
    undo_isolate_page_range(mm, pfn, pfn + nr_pages)
    pa.init_per_zone_wmark_min(mm)
    return 0
