"""Pageblock isolation as memory onlining uses it: mm/page_isolation.c and its page_alloc.c helpers (7.2).

``unset_migratetype_isolate`` lets a just-onlined pageblock join the allocator: a free block of
at least pageblock order whose buddy is not isolated is taken off (``__isolate_free_page``) and
put back (``__putback_isolated_page``, to the tail) so it can merge; otherwise
``pageblock_unisolate_and_move_free_pages`` moves the pageblock's free blocks to the tail of
its real migratetype's lists (splitting a larger buddy that straddles pageblocks first), and
NR_FREE_PAGES grows because isolated free pages are not counted.

Simplified: only the unisolate direction is modelled (memory offlining, CMA and
alloc_contig_range isolation are not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buddysim.mm import page_alloc as pa
from buddysim.mm.internal import (
    FPI_NONE,
    FPI_SKIP_REPORT_NOTIFY,
    FPI_TO_TAIL,
    PB_migrate_isolate,
    clear_pageblock_isolate,
    get_pfnblock_migratetype,
)
from buddysim.mm.mmzone import MIGRATE_ISOLATE, MIGRATE_MOVABLE, Zone, migratetype_is_mergeable
from buddysim.mm.page_store import PG_buddy

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "__isolate_free_page",
    "__putback_isolated_page",
    "find_large_buddy",
    "pageblock_unisolate_and_move_free_pages",
    "undo_isolate_page_range",
    "unset_migratetype_isolate",
]

_del_page_from_free_list = pa.del_page_from_free_list
_free_one_page = getattr(pa, "__free_one_page")
_move_freepages_block = getattr(pa, "__move_freepages_block")


def is_migrate_isolate_page(mm: Machine, pfn: int) -> bool:
    return bool(mm.store.pageblock_mt[pfn >> mm.pageblock_order] & PB_migrate_isolate)


def __isolate_free_page(zone: Zone, page: int, order: int) -> int:
    """``__isolate_free_page()``: take a free block off its list (watermark-checked unless isolated)."""
    mm = zone.mm
    mt = get_pfnblock_migratetype(mm.store, page)
    if mt != MIGRATE_ISOLATE:
        watermark = zone._watermark[0] + (1 << order)
        if not pa.zone_watermark_ok(zone, 0, watermark, 0, pa.ALLOC_CMA):
            return 0
    _del_page_from_free_list(page, zone, order, mt)
    if order >= mm.pageblock_order - 1:
        end = page + (1 << order) - 1
        p = page
        while p < end:
            pmt = get_pfnblock_migratetype(mm.store, p)
            if migratetype_is_mergeable(pmt):
                pa.move_freepages_block(zone, p, pmt, MIGRATE_MOVABLE)
            p += mm.pageblock_nr_pages
    return 1 << order


def __putback_isolated_page(zone: Zone, page: int, order: int, mt: int) -> None:
    """``__putback_isolated_page()``: back to the tail of the free list, merging."""
    _free_one_page(page, page, zone, order, mt, FPI_SKIP_REPORT_NOTIFY | FPI_TO_TAIL)


def find_large_buddy(mm: Machine, start_pfn: int) -> int:
    """``find_large_buddy()``: the head of a free block that straddles ``start_pfn``, or start_pfn."""
    order = 0
    pfn = start_pfn
    flags = mm.store.flags
    while not flags[pfn] & PG_buddy:
        order += 1
        if order > mm.MAX_PAGE_ORDER:
            return start_pfn
        pfn &= ~((1 << order) - 1)
    if pfn + (1 << mm.store.private[pfn]) > start_pfn:
        return pfn
    return start_pfn


def pageblock_unisolate_and_move_free_pages(zone: Zone, page: int) -> bool:
    """``__move_freepages_block_isolate(zone, page, false)``."""
    mm = zone.mm
    store = mm.store
    if not is_migrate_isolate_page(mm, page):
        return False
    ok, start_pfn, _, _ = pa.prep_move_freepages_block(zone, page, False)
    if not ok:
        return False
    if mm.pageblock_order != mm.MAX_PAGE_ORDER:
        pfn = find_large_buddy(mm, start_pfn)
        if pfn != start_pfn:  # a tail block of a larger buddy
            order = store.private[pfn]
            _del_page_from_free_list(pfn, zone, order, get_pfnblock_migratetype(store, pfn))
            clear_pageblock_isolate(store, page)
            pa.split_large_buddy(zone, pfn, pfn, order, FPI_NONE)
            return True
        if store.flags[page] & PG_buddy and store.private[page] > mm.pageblock_order:
            order = store.private[page]
            _del_page_from_free_list(page, zone, order, get_pfnblock_migratetype(store, page))
            clear_pageblock_isolate(store, page)
            pa.split_large_buddy(zone, page, start_pfn, order, FPI_NONE)
            return True
    to_mt = store.pageblock_mt[start_pfn >> store.pageblock_order] & 0x7
    _move_freepages_block(zone, start_pfn, MIGRATE_ISOLATE, to_mt)
    clear_pageblock_isolate(store, start_pfn)
    return True


def unset_migratetype_isolate(zone: Zone, page: int) -> None:
    """``unset_migratetype_isolate()``: give one isolated pageblock back to the allocator."""
    mm = zone.mm
    store = mm.store
    if not is_migrate_isolate_page(mm, page):
        return
    isolated_page = False
    order = 0
    if store.flags[page] & PG_buddy:
        order = store.private[page]
        if mm.pageblock_order <= order < mm.MAX_PAGE_ORDER:
            buddy = pa.find_buddy_page_pfn(zone, page, page, order)
            if buddy is not None and not is_migrate_isolate_page(mm, buddy):
                isolated_page = bool(__isolate_free_page(zone, page, order))
    if not isolated_page:
        pageblock_unisolate_and_move_free_pages(zone, page)
    else:
        clear_pageblock_isolate(store, page)
        __putback_isolated_page(zone, page, order, get_pfnblock_migratetype(store, page))
    zone.nr_isolate_pageblock -= 1


def undo_isolate_page_range(mm: Machine, start_pfn: int, end_pfn: int) -> None:
    """``undo_isolate_page_range()``: unisolate every pageblock of the range, ascending."""
    step = mm.pageblock_nr_pages
    pfn = start_pfn & ~(step - 1)
    while pfn < end_pfn:
        zone = mm.page_zone(pfn)
        if zone is not None:
            unset_migratetype_isolate(zone, pfn)
        pfn += step
