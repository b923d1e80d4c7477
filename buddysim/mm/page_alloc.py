"""The buddy allocator: mm/page_alloc.c of Linux 7.2, function by function.

Freeing (``___free_pages`` > ``__free_frozen_pages`` > ``free_frozen_page_commit`` or
``__free_pages_ok`` > ``free_one_page`` > ``split_large_buddy`` > ``__free_one_page``),
allocating (``__alloc_frozen_pages_noprof`` > ``get_page_from_freelist`` > ``rmqueue`` >
``rmqueue_pcplist`` / ``rmqueue_buddy`` > ``__rmqueue`` > ``__rmqueue_smallest`` / claim /
steal > ``expand``), per-cpu lists, highatomic reserves, watermarks and pcp sizing. Pages are
pfns; a zone reaches the machine's state (page store, refcount model, call-site table,
findings) through ``zone.mm``. Every refcount write goes through the refcount model at a named
call site.

Simplified (see docs/fidelity.md): no zone/pcp locks, so no FPI_TRYLOCK / llist paths; no
compaction capture, page reporting, shuffle, debug guard pages, memcg, KASAN/KMSAN, page_owner;
the slow path is one retry with ``gfp_to_alloc_flags`` and, for callers that may reclaim, a
highatomic unreserve plus ``drain_all_pages`` and a last retry (no reclaim, compaction or OOM);
``PageLRU`` is approximated by "allocated with a movable migratetype".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from buddysim.findings import Finding
from buddysim.mm import gfp as G
from buddysim.mm.internal import (
    ALLOC_CMA,
    ALLOC_CPUSET,
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_NON_BLOCK,
    ALLOC_OOM,
    ALLOC_RESERVES,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    FPI_NONE,
    FPI_PREPARED,
    FPI_TO_TAIL,
    change_pageblock_range,
    get_pfnblock_migratetype,
    set_buddy_order,
    set_page_refcounted,
    set_pageblock_migratetype,
)
from buddysim.mm.mmzone import (
    HPAGE_PMD_ORDER,
    MIGRATE_CMA,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    NR_LOWORDER_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    PCPF_FREE_HIGH_BATCH,
    PCPF_PREV_FREE_HIGH_ORDER,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    ZONE_BELOW_HIGH,
    ZONE_BOOSTED_WATERMARK,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    ZONE_RECLAIM_ACTIVE,
    FreeList,
    PerCpuPages,
    Zone,
    migratetype_is_mergeable,
)
from buddysim.mm.page_store import (
    PAGE_FLAGS_CHECK_AT_FREE,
    PAGE_FLAGS_CHECK_AT_PREP,
    PageStore,
    PG_buddy,
    PG_head,
    PG_hwpoison,
    PG_lru,
    PG_mapped,
    PG_mapping,
    PG_pcp,
    PG_pfmemalloc,
    PG_tail,
)
from buddysim.refcount.page_ref import DebugCheck, DebugVM

_GFP_COMP = G.__GFP_COMP

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "___free_pages",
    "__alloc_frozen_pages_noprof",
    "__alloc_pages_noprof",
    "__free_frozen_pages",
    "__free_one_page",
    "__free_pages",
    "__free_pages_ok",
    "__free_pages_prepare",
    "__rmqueue",
    "__rmqueue_smallest",
    "calculate_min_free_kbytes",
    "drain_all_pages",
    "expand",
    "fallbacks",
    "folio_put",
    "free_frozen_pages",
    "free_one_page",
    "free_pcppages_bulk",
    "get_page_from_freelist",
    "init_per_zone_wmark_min",
    "nr_pcp_alloc",
    "nr_pcp_high",
    "order_to_pindex",
    "pindex_to_order",
    "put_page",
    "rmqueue",
    "split_large_buddy",
    "zone_batchsize",
    "zone_highsize",
    "zone_watermark_ok",
]

#: fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1]
fallbacks = (
    (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),  # UNMOVABLE
    (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),  # MOVABLE
    (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),  # RECLAIMABLE
)

# enum rmqueue_mode
RMQUEUE_NORMAL, RMQUEUE_CMA, RMQUEUE_CLAIM, RMQUEUE_STEAL = 0, 1, 2, 3
# enum fallback_result
FALLBACK_FOUND, FALLBACK_EMPTY, FALLBACK_NOCLAIM = 0, 1, 2

CONFIG_PCP_BATCH_SCALE_MAX = 5
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8
SWAP_CLUSTER_MAX = 32
sysctl_lowmem_reserve_ratio = (256, 256, 32, 0)  # DMA, DMA32, Normal, Movable

_PAGE_IS_BUDDY_COUNT = DebugCheck("VM_BUG_ON_PAGE", "page_is_buddy", "page_count(buddy) != 0")
_FREE_ONE_ALIGN = DebugCheck("VM_BUG_ON_PAGE", "__free_one_page", "pfn & ((1 << order) - 1)")
_FREE_ONE_RANGE = DebugCheck("VM_BUG_ON_PAGE", "__free_one_page", "bad_range(zone, page)")
_GFP_MOVABLE_MASK = DebugCheck(
    "VM_WARN_ON", "gfp_migratetype", "(gfp_flags & GFP_MOVABLE_MASK) == GFP_MOVABLE_MASK"
)
_GFP_ZONE_BAD = DebugCheck("VM_BUG_ON", "gfp_zone", "(GFP_ZONE_BAD >> bit) & 1")
_PREPARE_TAIL = DebugCheck("VM_BUG_ON_PAGE", "__free_pages_prepare", "PageTail(page)")
_PREPARE_ORDER = DebugCheck(
    "VM_BUG_ON_PAGE", "__free_pages_prepare", "compound && compound_order(page) != order"
)


# ---------------------------------------------------------------------------------- helpers
def pcp_allowed_order(zone: Zone, order: int) -> bool:
    """``pcp_allowed_order()``: orders 0..PAGE_ALLOC_COSTLY_ORDER, and HPAGE_PMD_ORDER with THP."""
    if order <= PAGE_ALLOC_COSTLY_ORDER:
        return True
    return zone.mm.thp and order == HPAGE_PMD_ORDER


def order_to_pindex(migratetype: int, order: int) -> int:
    """``order_to_pindex()``: ``MIGRATE_PCPTYPES*order + mt``; THP order uses 12 + movable."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + migratetype


def pindex_to_order(pindex: int) -> int:
    """``pindex_to_order()``."""
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return HPAGE_PMD_ORDER
    return pindex // MIGRATE_PCPTYPES


def account_freepages(zone: Zone, nr_pages: int, migratetype: int) -> None:
    """``account_freepages()``: NR_FREE_PAGES (and CMA / highatomic); isolated pages don't count."""
    if migratetype == MIGRATE_ISOLATE:
        return
    zone.NR_FREE_PAGES += nr_pages
    if migratetype == MIGRATE_CMA:
        zone.NR_FREE_CMA_PAGES += nr_pages
    elif migratetype == MIGRATE_HIGHATOMIC:
        zone.nr_free_highatomic += nr_pages


def page_is_buddy(zone: Zone, page: int, buddy: int, order: int) -> bool:
    """``page_is_buddy()``: ``buddy`` is a free block head of exactly ``order`` in the same zone.

    A pfn outside the zone span (or the memmap) is "not buddy"; holes are PG_reserved.
    """
    if not zone.zone_start_pfn <= buddy < zone.zone_start_pfn + zone.spanned_pages:
        return False
    store = zone.mm.store
    if not store.flags[buddy] & PG_buddy or store.private[buddy] != order:
        return False
    refs = zone.mm.refs
    if refs.debug_vm is not DebugVM.OFF and refs.page_count(buddy) != 0:
        refs.vm_check(_PAGE_IS_BUDDY_COUNT, True, buddy, refs.atomic_read(buddy))
    return True


def find_buddy_page_pfn(zone: Zone, page: int, pfn: int, order: int) -> int | None:
    """``find_buddy_page_pfn()``: the buddy's pfn if it is a free block of ``order``."""
    buddy_pfn = pfn ^ (1 << order)
    return buddy_pfn if page_is_buddy(zone, page, buddy_pfn, order) else None


def buddy_merge_likely(zone: Zone, pfn: int, buddy_pfn: int, page: int, order: int) -> bool:
    """``buddy_merge_likely()``: will the parent merge again? Then add the block to the tail."""
    if order >= zone.mm.MAX_PAGE_ORDER - 1:
        return False
    higher_page_pfn = buddy_pfn & pfn
    return find_buddy_page_pfn(zone, higher_page_pfn, higher_page_pfn, order + 1) is not None


# ---------------------------------------------------------------------------------- free lists
def __add_to_free_list(page: int, zone: Zone, order: int, migratetype: int, tail: bool) -> None:
    """``__add_to_free_list()``: link at head or tail, ``nr_free++``, NR_FREE_PAGES_BLOCKS."""
    area = zone.free_area[order]
    area.free_list[migratetype].add(page, tail)
    area.nr_free += 1
    if order >= zone.mm.pageblock_order and migratetype != MIGRATE_ISOLATE:
        zone.NR_FREE_PAGES_BLOCKS += 1 << order


def __del_page_from_free_list(page: int, zone: Zone, order: int, migratetype: int) -> None:
    """``__del_page_from_free_list()``: unlink, ``__ClearPageBuddy``, private = 0, ``nr_free--``."""
    area = zone.free_area[order]
    try:
        del area.free_list[migratetype][page]
    except KeyError:
        zone.mm.raise_finding(
            "list-corruption",
            "__del_page_from_free_list",
            "list_del: entry not on free_area[order].free_list[mt]",
            page,
            order,
            message=f"pfn {page:#x} is not on the order-{order} {migratetype} list",
        )
    store = zone.mm.store
    store.flags[page] &= ~PG_buddy & 0xFFFF
    store.private[page] = 0
    area.nr_free -= 1
    if order >= zone.mm.pageblock_order and migratetype != MIGRATE_ISOLATE:
        zone.NR_FREE_PAGES_BLOCKS -= 1 << order


def del_page_from_free_list(page: int, zone: Zone, order: int, migratetype: int) -> None:
    """``del_page_from_free_list()``: unlink and ``account_freepages(-2^order)``."""
    __del_page_from_free_list(page, zone, order, migratetype)
    account_freepages(zone, -(1 << order), migratetype)


def move_to_free_list(page: int, zone: Zone, order: int, old_mt: int, new_mt: int) -> None:
    """``move_to_free_list()``: ``list_move_tail`` to the new type, free counts follow."""
    area = zone.free_area[order]
    del area.free_list[old_mt][page]
    area.free_list[new_mt].add(page, True)
    nr_pages = 1 << order
    account_freepages(zone, -nr_pages, old_mt)
    account_freepages(zone, nr_pages, new_mt)
    if order >= zone.mm.pageblock_order and (old_mt == MIGRATE_ISOLATE) != (new_mt == MIGRATE_ISOLATE):
        zone.NR_FREE_PAGES_BLOCKS += -nr_pages if new_mt == MIGRATE_ISOLATE else nr_pages


# ---------------------------------------------------------------------------------- merge
def __free_one_page(page: int, pfn: int, zone: Zone, order: int, migratetype: int, fpi_flags: int) -> None:
    """``__free_one_page()``: merge with free buddies, then add the block to its list.

    Stops at MAX_PAGE_ORDER, at a buddy that is not a free block of the same order in the same
    zone, and at a pageblock-order buddy whose migratetype differs when either type is not
    mergeable. Goes to the tail with FPI_TO_TAIL or when ``buddy_merge_likely``.
    Simplified: no compaction capture, no shuffle, no page reporting.
    """
    mm = zone.mm
    store = mm.store
    refs = mm.refs
    start = zone.zone_start_pfn
    end = start + zone.spanned_pages
    debug = refs.debug_vm is not DebugVM.OFF
    if debug:
        if pfn & ((1 << order) - 1):
            refs.vm_check(_FREE_ONE_ALIGN, True, pfn, refs.atomic_read(pfn))
        if not start <= pfn < end:  # zone_spans_pfn()
            refs.vm_check(_FREE_ONE_RANGE, True, pfn, refs.atomic_read(pfn))
    mm.check_frozen_entry(pfn, order, "__free_one_page")
    account_freepages(zone, 1 << order, migratetype)
    pageblock_order = mm.pageblock_order
    max_order = mm.MAX_PAGE_ORDER
    flags = store.flags
    private = store.private
    buddy_pfn = 0
    while order < max_order:
        buddy_mt = migratetype
        buddy_pfn = pfn ^ (1 << order)
        # page_is_buddy(), inlined for speed
        if not (start <= buddy_pfn < end and flags[buddy_pfn] & PG_buddy and private[buddy_pfn] == order):
            break
        if debug and refs.page_count(buddy_pfn) != 0:
            refs.vm_check(_PAGE_IS_BUDDY_COUNT, True, buddy_pfn, refs.atomic_read(buddy_pfn))
        if order >= pageblock_order:
            buddy_mt = get_pfnblock_migratetype(store, buddy_pfn)
            if migratetype != buddy_mt and (
                not migratetype_is_mergeable(migratetype) or not migratetype_is_mergeable(buddy_mt)
            ):
                break
        __del_page_from_free_list(buddy_pfn, zone, order, buddy_mt)
        if buddy_mt != migratetype:
            change_pageblock_range(store, buddy_pfn, order, migratetype)
        pfn = buddy_pfn & pfn
        order += 1
    set_buddy_order(store, pfn, order)
    if fpi_flags & FPI_TO_TAIL:
        to_tail = True
    else:
        to_tail = buddy_merge_likely(zone, pfn, buddy_pfn, pfn, order)
    __add_to_free_list(pfn, zone, order, migratetype, to_tail)


def split_large_buddy(zone: Zone, page: int, pfn: int, order: int, fpi: int) -> None:
    """``split_large_buddy()``: free in pageblock-sized pieces, each with its own migratetype."""
    end = pfn + (1 << order)
    order = min(order, zone.mm.pageblock_order)
    store = zone.mm.store
    while True:
        mt = get_pfnblock_migratetype(store, pfn)
        __free_one_page(pfn, pfn, zone, order, mt, fpi)
        pfn += 1 << order
        if pfn == end:
            break


def free_one_page(zone: Zone, page: int, pfn: int, order: int, fpi_flags: int) -> None:
    """``free_one_page()``: under zone->lock, ``split_large_buddy``; PGFREE += 2^order."""
    split_large_buddy(zone, page, pfn, order, fpi_flags)
    zone.PGFREE += 1 << order


# ---------------------------------------------------------------------------------- freeing
def page_bad_reason(zone: Zone, page: int, flags: int) -> str | None:
    """``page_bad_reason(page, flags)``: why a page is not in the expected state, or None.

    The kernel picks the LAST matching reason; ``_refcount`` is read with ``page_ref_count()``,
    so a frozen-bit page passes under the series. ``flags`` is PAGE_FLAGS_CHECK_AT_FREE (free
    side) or PAGE_FLAGS_CHECK_AT_PREP (allocation side).
    """
    mm = zone.mm
    f = mm.store.flags[page]
    reason = None
    if f & PG_pcp:  # model only: the kernel cannot tell a page on a pcp list here (fidelity.md)
        reason = "page already on a pcp list (freed twice)"
    if f & (PG_mapped | PG_buddy):  # a free block head's page_type lives in _mapcount
        reason = "nonzero mapcount"
    if f & PG_mapping:
        reason = "non-NULL mapping"
    if mm.refs.page_ref_count(page) != 0:
        reason = "nonzero _refcount"
    if f & flags:
        if flags == PAGE_FLAGS_CHECK_AT_PREP:
            reason = "PAGE_FLAGS_CHECK_AT_PREP flag(s) set"
        else:
            reason = "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"
    return reason


def bad_page(zone: Zone, page: int, reason: str, order: int | None = None) -> None:
    """``bad_page()``: report "BUG: Bad page state" as a finding; clear PageBuddy; page leaked."""
    mm = zone.mm
    mm.report(
        Finding(
            kind="bad_page",
            function="bad_page",
            check=f"page dumped because: {reason}",
            model=mm.refs.name,
            pfn=page,
            raw_before=mm.refs.atomic_read(page),
            order=order,
            message=f"BUG: Bad page state pfn:{page:05x}",
            sites=mm.sites.name,
        )
    )
    mm.store.flags[page] &= ~PG_buddy & 0xFFFF


def __free_pages_prepare(zone: Zone, page: int, order: int, fpi_flags: int) -> bool:
    """``__free_pages_prepare()``: the free-time checks; false means "leak, do not free".

    Checks ``PageTail``, the compound order, every tail (``free_tail_page_prepare``) and every
    page's expected state (refcount via ``page_ref_count``, mapcount, mapping, flags), then
    clears the flags the allocator owns. Emits mm_page_free first, as the kernel does.
    """
    if fpi_flags & FPI_PREPARED:
        return True
    mm = zone.mm
    store = mm.store
    refs = mm.refs
    flags = store.flags
    head_flags = flags[page]
    if head_flags & PG_tail:
        refs.vm_check(_PREPARE_TAIL, True, page, refs.atomic_read(page))
    if mm.tracer is not None:
        mm.tracer("mm_page_free", {"pfn": page, "order": order})
    if head_flags & PG_hwpoison and order == 0:
        return False
    # __folio_put() took the folio off the LRU before freeing: drop the PG_lru stand-in
    if order > _SMALL_ORDER:
        store.flags_np[page : page + (1 << order)] &= np.uint16(~PG_lru & 0xFFFF)
    head_flags &= ~PG_lru & 0xFFFF
    flags[page] = head_flags
    compound = bool(head_flags & PG_head)
    if compound and store.private[page + 1] != order:
        refs.vm_check(_PREPARE_ORDER, True, page, refs.atomic_read(page))
    bad = 0
    check_pages = mm.check_pages
    if 0 < order <= _SMALL_ORDER:
        if compound:
            store.private[page + 1] = 0  # folio->_nr_pages = 0; page[1] flags cleared
        bad += _prepare_tails_small(zone, page, order, compound, check_pages)
    elif order > 0:
        if compound:
            store.private[page + 1] = 0  # folio->_nr_pages = 0; page[1] flags cleared
        nr = 1 << order
        if compound and check_pages:
            tails = store.flags_np[page + 1 : page + nr]
            not_tail = np.flatnonzero((tails & PG_tail) == 0)
            for i in not_tail.tolist():
                bad_page(zone, page + 1 + i, "PageTail not set", order)
            bad += int(not_tail.size)
        if check_pages:
            bad += _check_free_range(zone, page + 1, nr - 1, order)
        # &= ~PAGE_FLAGS_CHECK_AT_PREP (and the tail's compound_head); __PG_HWPOISON survives
        store.flags_np[page + 1 : page + nr] &= np.uint16(PG_hwpoison)
        store.private_np[page + 1 : page + nr] = 0
    if check_pages:
        # free_page_is_bad(): the cheap test first, the reason only for a bad page
        if head_flags & _BAD_AT_FREE or refs.count_of_raw(store.refcount[page]) != 0:
            bad_page(zone, page, page_bad_reason(zone, page, PAGE_FLAGS_CHECK_AT_FREE) or "bad page", order)
            bad += 1
        if bad:
            return False
    flags[page] = head_flags & ~PAGE_FLAGS_CHECK_AT_PREP & 0xFFFF
    if mm.frag_live:
        mm.frag_live.pop(page, None)  # a page_frag page freed by any path is no cache page any more
    store.private[page] = 0
    return True


#: up to this order, per-page work is a Python loop (cheaper than numpy's per-call cost)
_SMALL_ORDER = 4
#: what free_page_is_bad() rejects: mapcount (PageBuddy included), mapping, the flags, and the
#: model's mark of a page on a pcp list (a second free of a page already on a free list)
_BAD_AT_FREE = PG_mapped | PG_buddy | PG_pcp | PG_mapping | PAGE_FLAGS_CHECK_AT_FREE


def _prepare_tails_small(zone: Zone, page: int, order: int, compound: bool, check_pages: bool) -> int:
    """The tail loop of ``__free_pages_prepare`` for a small block, page by page.

    Per tail: ``free_tail_page_prepare`` ("PageTail not set"), then ``free_page_is_bad``
    (skipping the flag clearing of a bad page, as the kernel's ``continue`` does), then
    ``flags &= ~PAGE_FLAGS_CHECK_AT_PREP`` (PG_lru stand-in included; hwpoison kept).
    """
    mm = zone.mm
    store = mm.store
    flags = store.flags
    private = store.private
    w = store.refcount
    count_of_raw = mm.refs.count_of_raw
    bad = 0
    for p in range(page + 1, page + (1 << order)):
        f = flags[p] & ~PG_lru & 0xFFFF
        flags[p] = f
        if check_pages:
            if compound and not f & PG_tail:
                bad_page(zone, p, "PageTail not set", order)
                bad += 1
            if f & _BAD_AT_FREE or count_of_raw(w[p]) != 0:
                bad_page(zone, p, page_bad_reason(zone, p, PAGE_FLAGS_CHECK_AT_FREE) or "bad page", order)
                bad += 1
                continue
        flags[p] = f & PG_hwpoison
        private[p] = 0
    return bad


def _check_free_range(zone: Zone, start: int, nr: int, order: int) -> int:
    """``free_page_is_bad()`` over ``[start, start+nr)`` vectorised; reports the first, counts all."""
    if nr <= 0:
        return 0
    mm = zone.mm
    fl = mm.store.flags_np[start : start + nr]
    bad_flags = (fl & _BAD_AT_FREE) != 0
    nonzero = ~mm.refs.zero_count_mask(mm.store.refcount_np[start : start + nr])
    bad = bad_flags | nonzero
    offenders = np.flatnonzero(bad).tolist()
    for off in offenders:
        p = start + off
        bad_page(zone, p, page_bad_reason(zone, p, PAGE_FLAGS_CHECK_AT_FREE) or "bad page", order)
    return len(offenders)


def __free_pages_ok(zone: Zone, page: int, order: int, fpi_flags: int) -> None:
    """``__free_pages_ok()``: prepare, then ``free_one_page`` (bypasses pcp)."""
    if __free_pages_prepare(zone, page, order, fpi_flags):
        free_one_page(zone, page, page, order, fpi_flags)


def __free_frozen_pages(zone: Zone, page: int, order: int, fpi_flags: int) -> None:
    """``__free_frozen_pages()``: to this CPU's pcp list, or to the buddy for other orders.

    Isolated pageblocks bypass pcp; HIGHATOMIC and CMA pages ride on the MOVABLE pcp list.
    """
    pfn = page
    mm = zone.mm
    if not pcp_allowed_order(zone, order):
        __free_pages_ok(zone, page, order, fpi_flags)
        return
    if not __free_pages_prepare(zone, page, order, fpi_flags):
        return
    mt = get_pfnblock_migratetype(mm.store, pfn)
    if mt >= MIGRATE_PCPTYPES:
        if mt == MIGRATE_ISOLATE:
            free_one_page(zone, page, pfn, order, fpi_flags)
            return
        mt = MIGRATE_MOVABLE
    free_frozen_page_commit(zone, zone.per_cpu_pageset[mm.cpu], page, mt, order, fpi_flags)


def free_frozen_pages(mm: Machine, page: int, order: int) -> None:
    """``free_frozen_pages(page, order)``: free a page whose refcount is already frozen."""
    __free_frozen_pages(mm.page_zone_checked(page), page, order, FPI_NONE)


def ___free_pages(mm: Machine, page: int, order: int, fpi_flags: int) -> None:
    """``___free_pages()``: drop a reference; the last one frees the block.

    If somebody else still holds a reference on page[0] of a NON-compound block, everything
    but page[0] is freed now (``page + 2^o`` for o = order-1 .. 0) and page[0] waits for its
    last ``put_page``: the lib/test_free_pages.c scenario.
    """
    head = bool(mm.store.flags[page] & PG_head)
    if mm.refs.put_page_testzero(page):
        __free_frozen_pages(mm.page_zone_checked(page), page, order, fpi_flags)
    elif not head:
        zone = mm.page_zone_checked(page)
        while order > 0:
            order -= 1
            __free_frozen_pages(zone, page + (1 << order), order, fpi_flags)


def __free_pages(mm: Machine, page: int, order: int) -> None:
    """``__free_pages(page, order)`` = ``___free_pages(page, order, FPI_NONE)``."""
    ___free_pages(mm, page, order, FPI_NONE)


def folio_order(mm: Machine, folio: int) -> int:
    return mm.store.compound_order(folio)


def folio_put(mm: Machine, folio: int) -> bool:
    """``folio_put()``: ``folio_put_testzero`` then ``__folio_put`` (frees the whole order).

    Returns whether this put freed the folio.
    """
    if mm.refs.folio_put_testzero(folio):
        # __folio_put(): page_cache_release / memcg uncharge not modelled
        free_frozen_pages(mm, folio, folio_order(mm, folio))
        return True
    return False


def put_page(mm: Machine, page: int) -> bool:
    """``put_page()``: ``folio_put(page_folio(page))``."""
    return folio_put(mm, mm.store.compound_head(page))


# ---------------------------------------------------------------------------------- pcp
def clamp(val: int, lo: int, hi: int) -> int:
    """The kernel's ``__clamp()`` (include/linux/minmax.h): ``val >= hi ? hi : val <= lo ? lo : val``.

    The upper bound is tested first, which matters when lo > hi (tiny zones).
    """
    return hi if val >= hi else lo if val <= lo else val


def nr_pcp_free(pcp: PerCpuPages, batch: int, high: int, free_high: bool) -> int:
    """``nr_pcp_free()``: how many pages a drain on free releases."""
    if free_high:
        return min(pcp.count, batch << CONFIG_PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    return clamp(pcp.free_count, batch, high - batch)


def nr_pcp_high(pcp: PerCpuPages, zone: Zone, batch: int, free_high: bool) -> int:
    """``nr_pcp_high()``: the high mark that triggers a drain, adjusting ``pcp->high``."""
    high_min = pcp.high_min
    high_max = pcp.high_max
    high = pcp.high = clamp(pcp.high, high_min, high_max)
    if high == 0:
        return 0
    if free_high:
        pcp.high = max(high - (batch << CONFIG_PCP_BATCH_SCALE_MAX), high_min)
        return 0
    if zone.flags & ZONE_RECLAIM_ACTIVE:
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, high_min)
        return min(batch << 2, pcp.high)
    if high_min == high_max:
        return high
    if zone.flags & ZONE_BELOW_HIGH:
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, high_min)
        high = max(pcp.count, high_min)
    elif pcp.count >= high:
        need_high = pcp.free_count + batch
        if pcp.high < need_high:
            pcp.high = clamp(need_high, high_min, high_max)
    return high


def free_frozen_page_commit(
    zone: Zone, pcp: PerCpuPages, page: int, migratetype: int, order: int, fpi_flags: int
) -> bool:
    """``free_frozen_page_commit()``: add to the pcp list HEAD; drain when over high."""
    mm = zone.mm
    mm.check_frozen_entry(page, order, "free_frozen_page_commit")
    pcp.alloc_factor >>= 1
    zone.PGFREE += 1 << order
    pindex = order_to_pindex(migratetype, order)
    pcp.lists[pindex].add(page, False)
    mm.store.flags[page] |= PG_pcp
    nr_pages = 1 << order
    pcp.count += nr_pages
    batch = pcp.batch
    free_count = pcp.free_count
    if order and order <= PAGE_ALLOC_COSTLY_ORDER:
        pflags = pcp.flags
        free_high = (
            free_count >= batch + pcp.high_min // 2
            and bool(pflags & PCPF_PREV_FREE_HIGH_ORDER)
            and (not (pflags & PCPF_FREE_HIGH_BATCH) or pcp.count >= batch)
        )
        pcp.flags = pflags | PCPF_PREV_FREE_HIGH_ORDER
    else:
        free_high = False
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if free_count < (batch << CONFIG_PCP_BATCH_SCALE_MAX):
        pcp.free_count = free_count + nr_pages
    high = nr_pcp_high(pcp, zone, batch, free_high)
    if pcp.count < high:
        return True
    to_free = nr_pcp_free(pcp, batch, high, free_high)
    while to_free > 0 and pcp.count > 0:
        to_free_batched = min(to_free, batch)
        free_pcppages_bulk(zone, to_free_batched, pcp, pindex)
        to_free -= to_free_batched
    if zone.flags & ZONE_BELOW_HIGH and zone_watermark_ok(zone, 0, zone.high_wmark_pages(), ZONE_MOVABLE, 0):
        zone.flags &= ~ZONE_BELOW_HIGH
    return True


def free_pcppages_bulk(zone: Zone, count: int, pcp: PerCpuPages, pindex: int) -> None:
    """``free_pcppages_bulk()``: from the requested list first, take the LAST (coldest) pages."""
    mm = zone.mm
    store = mm.store
    count = min(pcp.count, count)
    nr_lists = len(pcp.lists)
    pindex = pindex - 1
    while count > 0:
        for _ in range(nr_lists):
            pindex += 1
            if pindex == nr_lists:
                pindex = 0
            lst = pcp.lists[pindex]
            if lst:
                break
        else:
            # the kernel would spin here forever: report the broken count instead
            mm.raise_finding(
                "pcp-count",
                "free_pcppages_bulk",
                "pcp->count matches the pages on the pcp lists",
                None,
                None,
                message=f"pcp->count of cpu {pcp.cpu} in {zone.name} is {pcp.count} but every pcp list is empty",
            )
            return
        order = pindex_to_order(pindex)
        nr_pages = 1 << order
        while True:
            page, _ = lst.popitem(last=True)
            store.flags[page] &= ~PG_pcp & 0xFFFF
            mt = get_pfnblock_migratetype(store, page)
            count -= nr_pages
            pcp.count -= nr_pages
            __free_one_page(page, page, zone, order, mt, FPI_NONE)
            if mm.tracer is not None:
                mm.tracer("mm_page_pcpu_drain", {"pfn": page, "order": order, "migratetype": mt})
            if not (count > 0 and lst):
                break


def drain_pages_zone(zone: Zone, cpu: int) -> None:
    """``drain_pages_zone()``: empty one CPU's pcp of one zone in ``batch << SCALE_MAX`` steps."""
    pcp = zone.per_cpu_pageset[cpu]
    while pcp.count > 0:
        free_pcppages_bulk(zone, min(pcp.count, pcp.batch << CONFIG_PCP_BATCH_SCALE_MAX), pcp, 0)


def drain_all_pages(mm: Machine, zone: Zone | None = None, cpu: int | None = None) -> None:
    """``drain_all_pages(zone)`` (all zones when None); with ``cpu``, ``drain_local_pages`` there."""
    zones = [zone] if zone is not None else mm.zones
    cpus = [cpu] if cpu is not None else range(mm.nr_cpus)
    for c in cpus:
        for z in zones:
            drain_pages_zone(z, c)


def nr_pcp_alloc(pcp: PerCpuPages, zone: Zone, order: int) -> int:
    """``nr_pcp_alloc()``: how many order-``order`` entries a refill fetches."""
    base_batch = pcp.batch
    high_min = pcp.high_min
    high_max = pcp.high_max
    high = pcp.high = clamp(pcp.high, high_min, high_max)
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << pcp.alloc_factor
    if high_min != high_max and not zone.flags & ZONE_BELOW_HIGH:
        high = pcp.high = min(high + batch, high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
        if batch <= max_nr_alloc and pcp.alloc_factor < CONFIG_PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def rmqueue_bulk(
    zone: Zone, order: int, count: int, lst: FreeList, migratetype: int, alloc_flags: int
) -> int:
    """``rmqueue_bulk()``: ``count`` entries from the buddy, appended to the pcp list tail."""
    mm = zone.mm
    store = mm.store
    mode = [RMQUEUE_NORMAL]
    i = 0
    while i < count:
        page = __rmqueue(zone, order, migratetype, alloc_flags, mode)
        if page is None:
            break
        mm.check_frozen_entry(page, order, "rmqueue_bulk")
        lst.add(page, True)
        store.flags[page] |= PG_pcp
        i += 1
    return i


def __rmqueue_pcplist(
    zone: Zone, order: int, migratetype: int, alloc_flags: int, pcp: PerCpuPages, lst: FreeList
) -> int | None:
    """``__rmqueue_pcplist()``: refill an empty list with ``rmqueue_bulk``, take the FIRST entry."""
    store = zone.mm.store
    while True:
        if not lst:
            batch = nr_pcp_alloc(pcp, zone, order)
            if alloc_flags & ALLOC_HIGHATOMIC:
                return None
            alloced = rmqueue_bulk(zone, order, batch, lst, migratetype, alloc_flags)
            pcp.count += alloced << order
            if not lst:
                return None
        page, _ = lst.popitem(last=False)
        store.flags[page] &= ~PG_pcp & 0xFFFF
        pcp.count -= 1 << order
        if not check_new_pages(zone, page, order):
            return page


def rmqueue_pcplist(
    preferred_zone: Zone, zone: Zone, order: int, migratetype: int, alloc_flags: int
) -> int | None:
    """``rmqueue_pcplist()``: this CPU's pcp list for (order, migratetype)."""
    pcp = zone.per_cpu_pageset[zone.mm.cpu]
    pcp.free_count >>= 1
    lst = pcp.lists[order_to_pindex(migratetype, order)]
    page = __rmqueue_pcplist(zone, order, migratetype, alloc_flags, pcp, lst)
    if page is not None:
        zone.PGALLOC += 1 << order
    return page


def check_new_pages(zone: Zone, page: int, order: int) -> bool:
    """``check_new_pages()``: true if a page of the block is bad (then leaked; the caller retries).

    Runs with ``check_pages_enabled`` (here the machine's ``check_pages``): every page must be in
    the expected state (no flags, ``page_ref_count() == 0``). A hwpoisoned page is skipped
    silently (``check_new_page_bad``); any other bad page is reported with ``bad_page``.
    """
    mm = zone.mm
    if not mm.check_pages:
        return False
    nr = 1 << order
    store = mm.store
    if nr <= 1 << _SMALL_ORDER:
        flags = store.flags
        w = store.refcount
        count_of_raw = mm.refs.count_of_raw
        if nr == 1:
            if not flags[page] and count_of_raw(w[page]) == 0:
                return False  # the common case, without building the offender list
        elif not any(flags[page : page + nr]) and not any(map(count_of_raw, w[page : page + nr])):
            return False
        offenders = [p for p in range(page, page + nr) if flags[p] or count_of_raw(w[p]) != 0]
    else:
        fl = store.flags_np[page : page + nr]
        bad = (fl != 0) | ~mm.refs.zero_count_mask(store.refcount_np[page : page + nr])
        if not bool(bad.any()):
            return False
        offenders = [page + int(i) for i in np.flatnonzero(bad)]
    for p in offenders:
        if store.flags[p] & PG_hwpoison:
            store.flags[p] &= ~PG_buddy & 0xFFFF  # check_new_page_bad(): don't complain
            continue
        bad_page(zone, p, page_bad_reason(zone, p, PAGE_FLAGS_CHECK_AT_PREP) or "bad page", order)
    return True


# ---------------------------------------------------------------------------------- rmqueue
def expand(zone: Zone, page: int, low: int, high: int, migratetype: int) -> int:
    """``expand()``: split; each upper half goes to the HEAD of its order's list.

    The caller keeps the lowest ``2^low`` pages. Returns the pages put back on lists.
    """
    if high == low:
        return 0
    mm = zone.mm
    store = mm.store
    if mm.check_frozen and not mm.range_frozen(page + (1 << low), (1 << high) - (1 << low)):
        for o in range(high - 1, low - 1, -1):
            mm.check_frozen_entry(page + (1 << o), o, "expand")
    size = 1 << high
    nr_added = 0
    while high > low:
        high -= 1
        size >>= 1
        __add_to_free_list(page + size, zone, high, migratetype, False)
        set_buddy_order(store, page + size, high)
        nr_added += size
    return nr_added


def page_del_and_expand(zone: Zone, page: int, low: int, high: int, migratetype: int) -> None:
    """``page_del_and_expand()``: unlink, split, account ``-2^low`` net."""
    nr_pages = 1 << high
    __del_page_from_free_list(page, zone, high, migratetype)
    nr_pages -= expand(zone, page, low, high, migratetype)
    account_freepages(zone, -nr_pages, migratetype)


def __rmqueue_smallest(zone: Zone, order: int, migratetype: int) -> int | None:
    """``__rmqueue_smallest()``: the first block of the smallest order >= ``order``."""
    free_area = zone.free_area
    for current_order in range(order, len(free_area)):
        lst = free_area[current_order].free_list[migratetype]
        if not lst:
            continue
        page = lst.first()
        page_del_and_expand(zone, page, order, current_order, migratetype)
        if zone.mm.tracer is not None:
            zone.mm.tracer(
                "mm_page_alloc_zone_locked",
                {
                    "pfn": page,
                    "order": order,
                    "migratetype": migratetype,
                    "percpu_refill": int(pcp_allowed_order(zone, order) and migratetype < MIGRATE_PCPTYPES),
                },
            )
        return page
    return None


def should_try_claim_block(zone: Zone, order: int, start_mt: int) -> bool:
    """``should_try_claim_block()``."""
    pageblock_order = zone.mm.pageblock_order
    if order >= pageblock_order:
        return True
    if order >= pageblock_order // 2:
        return True
    if start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE):
        return True
    return zone.mm.page_group_by_mobility_disabled


def find_suitable_fallback(zone: Zone, order: int, migratetype: int, claimable: bool) -> tuple[int, int]:
    """``find_suitable_fallback()``: (FALLBACK_FOUND/EMPTY/NOCLAIM, fallback migratetype)."""
    if claimable and not should_try_claim_block(zone, order, migratetype):
        return FALLBACK_NOCLAIM, -1
    area = zone.free_area[order]
    if area.nr_free == 0:
        return FALLBACK_EMPTY, -1
    for fallback_mt in fallbacks[migratetype]:
        if area.free_list[fallback_mt]:
            return FALLBACK_FOUND, fallback_mt
    return FALLBACK_EMPTY, -1


def boost_watermark(zone: Zone) -> bool:
    """``boost_watermark()``: raise the watermark boost by a pageblock (capped)."""
    mm = zone.mm
    if not mm.watermark_boost_factor:
        return False
    if 4 * mm.pageblock_nr_pages > zone.managed_pages:
        return False
    max_boost = zone._watermark[WMARK_HIGH] * mm.watermark_boost_factor // 10000
    if not max_boost:
        return False
    max_boost = max(mm.pageblock_nr_pages, max_boost)
    zone.watermark_boost = min(zone.watermark_boost + mm.pageblock_nr_pages, max_boost)
    return True


def prep_move_freepages_block(zone: Zone, page: int, want_counts: bool) -> tuple[bool, int, int, int]:
    """``prep_move_freepages_block()``: (ok, start_pfn, free_pages, movable_pages).

    Refuses a pageblock that is not wholly inside the zone. Counts the pages of free blocks
    and the movable (here: PG_lru) pages, vectorised over the page store.
    """
    mm = zone.mm
    pb = mm.pageblock_nr_pages
    start = page & ~(pb - 1)
    end = start + pb
    if not (zone.zone_spans_pfn(start) and zone.zone_spans_pfn(end - 1)):
        return False, start, 0, 0
    if not want_counts:
        return True, start, 0, 0
    fl = mm.store.flags_np[start:end]
    heads = np.flatnonzero(fl & PG_buddy)
    private = mm.store.private_np[start:end]
    free_pages = int((1 << private[heads].astype(np.int64)).sum()) if heads.size else 0
    movable = int(np.count_nonzero(fl & PG_lru))
    return True, start, free_pages, movable


def __move_freepages_block(zone: Zone, start_pfn: int, old_mt: int, new_mt: int) -> int:
    """``__move_freepages_block()``: move every free block of the pageblock to ``new_mt``'s tail."""
    mm = zone.mm
    store = mm.store
    end = start_pfn + mm.pageblock_nr_pages
    heads = np.flatnonzero(store.flags_np[start_pfn:end] & PG_buddy)
    pages_moved = 0
    for off in heads.tolist():
        pfn = start_pfn + off
        order = store.private[pfn]
        move_to_free_list(pfn, zone, order, old_mt, new_mt)
        pages_moved += 1 << order
    return pages_moved


def move_freepages_block(zone: Zone, page: int, old_mt: int, new_mt: int) -> int:
    """``move_freepages_block()``: -1 when the pageblock straddles the zone."""
    ok, start_pfn, _, _ = prep_move_freepages_block(zone, page, False)
    if not ok:
        return -1
    res = __move_freepages_block(zone, start_pfn, old_mt, new_mt)
    set_pageblock_migratetype(zone.mm.store, start_pfn, new_mt)
    return res


def claim_block_test(
    mm: Machine, start_type: int, block_type: int, free_pages: int, movable_pages: int
) -> bool:
    """``try_to_claim_block()``'s test on a pageblock below pageblock order: are at least half its
    pages free or "alike" (movable pages for a MOVABLE request; for an other request from a
    MOVABLE block, its pages that are neither free nor movable)?"""
    if start_type == MIGRATE_MOVABLE:
        alike_pages = movable_pages
    elif block_type == MIGRATE_MOVABLE:
        alike_pages = mm.pageblock_nr_pages - free_pages - movable_pages
    else:
        alike_pages = 0
    return free_pages + alike_pages >= (1 << (mm.pageblock_order - 1)) or mm.page_group_by_mobility_disabled


def try_to_claim_block(
    zone: Zone, page: int, current_order: int, order: int, start_type: int, block_type: int, alloc_flags: int
) -> int | None:
    """``try_to_claim_block()``: take ownership of a fallback pageblock when enough is free or alike."""
    mm = zone.mm
    store = mm.store
    if current_order >= mm.pageblock_order:
        del_page_from_free_list(page, zone, current_order, block_type)
        change_pageblock_range(store, page, current_order, start_type)
        nr_added = expand(zone, page, order, current_order, start_type)
        account_freepages(zone, nr_added, start_type)
        return page
    if boost_watermark(zone) and (alloc_flags & ALLOC_KSWAPD):
        zone.flags |= ZONE_BOOSTED_WATERMARK
    ok, start_pfn, free_pages, movable_pages = prep_move_freepages_block(zone, page, True)
    if not ok:
        return None
    if claim_block_test(mm, start_type, block_type, free_pages, movable_pages):
        __move_freepages_block(zone, start_pfn, block_type, start_type)
        set_pageblock_migratetype(store, start_pfn, start_type)
        return __rmqueue_smallest(zone, order, start_type)
    return None


def _trace_extfrag(zone: Zone, page: int, order: int, current_order: int, start_mt: int, fb_mt: int) -> None:
    tracer = zone.mm.tracer
    if tracer is not None:
        tracer(
            "mm_page_alloc_extfrag",
            {
                "pfn": page,
                "alloc_order": order,
                "fallback_order": current_order,
                "alloc_migratetype": start_mt,
                "fallback_migratetype": fb_mt,
                "change_ownership": int(get_pfnblock_migratetype(zone.mm.store, page) == start_mt),
            },
        )


def __rmqueue_claim(zone: Zone, order: int, start_migratetype: int, alloc_flags: int) -> int | None:
    """``__rmqueue_claim()``: largest fallback blocks first, claiming their pageblock."""
    mm = zone.mm
    if order < mm.pageblock_order and alloc_flags & ALLOC_NOFRAGMENT:
        min_order = mm.pageblock_order
    else:
        min_order = order
    for current_order in range(mm.MAX_PAGE_ORDER, min_order - 1, -1):
        res, fallback_mt = find_suitable_fallback(zone, current_order, start_migratetype, True)
        if res == FALLBACK_EMPTY:
            continue
        if res == FALLBACK_NOCLAIM:
            break
        page = zone.free_area[current_order].free_list[fallback_mt].first()
        got = try_to_claim_block(
            zone, page, current_order, order, start_migratetype, fallback_mt, alloc_flags
        )
        if got is not None:
            _trace_extfrag(zone, got, order, current_order, start_migratetype, fallback_mt)
            return got
    return None


def __rmqueue_steal(zone: Zone, order: int, start_migratetype: int) -> int | None:
    """``__rmqueue_steal()``: smallest fallback block; the remainders keep their type."""
    for current_order in range(order, zone.mm.NR_PAGE_ORDERS):
        res, fallback_mt = find_suitable_fallback(zone, current_order, start_migratetype, False)
        if res == FALLBACK_EMPTY:
            continue
        page = zone.free_area[current_order].free_list[fallback_mt].first()
        page_del_and_expand(zone, page, order, current_order, fallback_mt)
        _trace_extfrag(zone, page, order, current_order, start_migratetype, fallback_mt)
        return page
    return None


def __rmqueue(zone: Zone, order: int, migratetype: int, alloc_flags: int, mode: list[int]) -> int | None:
    """``__rmqueue()``: normal, then CMA, claim, steal; ``mode`` persists across a bulk refill."""
    if alloc_flags & ALLOC_CMA and zone.NR_FREE_CMA_PAGES > zone.NR_FREE_PAGES // 2:
        page = __rmqueue_smallest(zone, order, MIGRATE_CMA)
        if page is not None:
            return page
    m = mode[0]
    if m <= RMQUEUE_NORMAL:
        page = __rmqueue_smallest(zone, order, migratetype)
        if page is not None:
            return page
    if m <= RMQUEUE_CMA and alloc_flags & ALLOC_CMA:
        page = __rmqueue_smallest(zone, order, MIGRATE_CMA)
        if page is not None:
            mode[0] = RMQUEUE_CMA
            return page
    if m <= RMQUEUE_CLAIM:
        page = __rmqueue_claim(zone, order, migratetype, alloc_flags)
        if page is not None:
            mode[0] = RMQUEUE_NORMAL
            return page
    if m <= RMQUEUE_STEAL and not alloc_flags & ALLOC_NOFRAGMENT:
        page = __rmqueue_steal(zone, order, migratetype)
        if page is not None:
            mode[0] = RMQUEUE_STEAL
            return page
    return None


def reserve_highatomic_pageblock(zone: Zone, page: int, order: int) -> None:
    """``reserve_highatomic_pageblock()``: turn the page's pageblock into a HIGHATOMIC reserve."""
    mm = zone.mm
    pb = mm.pageblock_nr_pages
    if zone.managed_pages // 100 < pb:
        return
    max_managed = -(-(zone.managed_pages // 100) // pb) * pb
    if zone.nr_reserved_highatomic >= max_managed:
        return
    mt = get_pfnblock_migratetype(mm.store, page)
    if not migratetype_is_mergeable(mt):
        return
    if order < mm.pageblock_order:
        if move_freepages_block(zone, page, mt, MIGRATE_HIGHATOMIC) == -1:
            return
        zone.nr_reserved_highatomic += pb
    else:
        change_pageblock_range(mm.store, page, order, MIGRATE_HIGHATOMIC)
        zone.nr_reserved_highatomic += 1 << order


def unreserve_highatomic_pageblock(mm: Machine, zonelist: list[Zone], migratetype: int, force: bool) -> bool:
    """``unreserve_highatomic_pageblock()``: give HIGHATOMIC free blocks back to ``migratetype``."""
    pb = mm.pageblock_nr_pages
    for zone in zonelist:
        if not force and zone.nr_reserved_highatomic <= pb:
            continue
        for order, area in enumerate(zone.free_area):
            lst = area.free_list[MIGRATE_HIGHATOMIC]
            if not lst:
                continue
            page = lst.first()
            size = max(pb, 1 << order)
            size = min(size, zone.nr_reserved_highatomic)
            zone.nr_reserved_highatomic -= size
            if order < mm.pageblock_order:
                ret = move_freepages_block(zone, page, MIGRATE_HIGHATOMIC, migratetype)
            else:
                move_to_free_list(page, zone, order, MIGRATE_HIGHATOMIC, migratetype)
                change_pageblock_range(mm.store, page, order, migratetype)
                ret = 1
            if ret > 0:
                return True
    return False


def rmqueue_buddy(
    preferred_zone: Zone, zone: Zone, order: int, alloc_flags: int, migratetype: int
) -> int | None:
    """``rmqueue_buddy()``: highatomic first for ALLOC_HIGHATOMIC, else ``__rmqueue``."""
    while True:
        page = None
        if alloc_flags & ALLOC_HIGHATOMIC:
            page = __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)
        if page is None:
            page = __rmqueue(zone, order, migratetype, alloc_flags, [RMQUEUE_NORMAL])
            if page is None and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
                page = __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)
            if page is None:
                return None
        if not check_new_pages(zone, page, order):
            break
    if alloc_flags & ALLOC_HIGHATOMIC:
        reserve_highatomic_pageblock(zone, page, order)
    zone.PGALLOC += 1 << order
    return page


def rmqueue(
    preferred_zone: Zone, zone: Zone, order: int, gfp_flags: int, alloc_flags: int, migratetype: int
) -> int | None:
    """``rmqueue()``: pcp for pcp-able orders, else (or when the pcp refill fails) the buddy."""
    page = None
    if pcp_allowed_order(zone, order):
        page = rmqueue_pcplist(preferred_zone, zone, order, migratetype, alloc_flags)
    if page is None:
        page = rmqueue_buddy(preferred_zone, zone, order, alloc_flags, migratetype)
    if alloc_flags & ALLOC_KSWAPD and zone.flags & ZONE_BOOSTED_WATERMARK:
        zone.flags &= ~ZONE_BOOSTED_WATERMARK
        # wakeup_kswapd(): kswapd is not modelled; its balance_pgdat() would drop the boost
        zone.watermark_boost = 0
    return page


# ---------------------------------------------------------------------------------- watermarks
def __zone_watermark_unusable_free(z: Zone, order: int, alloc_flags: int) -> int:
    unusable_free = (1 << order) - 1
    if not alloc_flags & ALLOC_RESERVES:
        unusable_free += z.nr_free_highatomic
    if not alloc_flags & ALLOC_CMA:
        unusable_free += z.NR_FREE_CMA_PAGES
    return unusable_free


def __zone_watermark_ok(
    z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int, free_pages: int
) -> bool:
    """``__zone_watermark_ok()``: free pages above mark + lowmem_reserve, and a usable block."""
    free_pages -= __zone_watermark_unusable_free(z, order, alloc_flags)
    min_ = mark
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            min_ -= min_ // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                min_ -= min_ // 4
        if alloc_flags & ALLOC_OOM:
            min_ -= min_ // 2
    if free_pages <= min_ + z.lowmem_reserve[highest_zoneidx]:
        return False
    if not order:
        return True
    for o in range(order, len(z.free_area)):
        area = z.free_area[o]
        if not area.nr_free:
            continue
        for mt in range(MIGRATE_PCPTYPES):
            if area.free_list[mt]:
                return True
        if alloc_flags & ALLOC_CMA and area.free_list[MIGRATE_CMA]:
            return True
        if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and area.free_list[MIGRATE_HIGHATOMIC]:
            return True
    return False


def zone_watermark_ok(z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int) -> bool:
    return __zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, z.NR_FREE_PAGES)


def zone_watermark_fast(
    z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int, gfp_mask: int
) -> bool:
    """``zone_watermark_fast()``: the cheap order-0 test first, then the full one."""
    free_pages = z.NR_FREE_PAGES
    if not order:
        reserved = __zone_watermark_unusable_free(z, 0, alloc_flags)
        usable_free = free_pages - min(free_pages, reserved)
        if usable_free > mark + z.lowmem_reserve[highest_zoneidx]:
            return True
    if __zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, free_pages):
        return True
    if (
        not order
        and alloc_flags & ALLOC_MIN_RESERVE
        and z.watermark_boost
        and (alloc_flags & ALLOC_WMARK_MASK) == WMARK_MIN
    ):
        return __zone_watermark_ok(
            z, order, z._watermark[WMARK_MIN], highest_zoneidx, alloc_flags, free_pages
        )
    return False


# ---------------------------------------------------------------------------------- allocating
def prep_compound_page(store: PageStore, page: int, order: int) -> None:
    """``prep_compound_page()``: PG_head, tails PG_tail, folio order in page[1].

    Tail refcounts are left as the buddy left them (frozen).
    """
    nr = 1 << order
    flags = store.flags
    flags[page] |= PG_head
    if order <= _SMALL_ORDER:  # page by page: cheaper than numpy's per-call cost
        private = store.private
        for p in range(page + 1, page + nr):
            flags[p] |= PG_tail
            private[p] = 0
    else:
        store.flags_np[page + 1 : page + nr] |= np.uint16(PG_tail)
        store.private_np[page + 1 : page + nr] = 0
    store.private[page + 1] = order


def prep_new_page(
    zone: Zone, page: int, order: int, gfp_flags: int, alloc_flags: int, migratetype: int
) -> None:
    """``prep_new_page()``: post_alloc_hook (private = 0), compound prep, pfmemalloc.

    Simplified: PG_lru is set on every page of a movable allocation, standing in for the
    LRU / movable_ops pages ``try_to_claim_block`` counts.
    """
    store = zone.mm.store
    flags = store.flags
    store.private[page] = 0
    if order and gfp_flags & _GFP_COMP:
        prep_compound_page(store, page, order)
    if migratetype == MIGRATE_MOVABLE:
        if order > _SMALL_ORDER:
            store.flags_np[page : page + (1 << order)] |= np.uint16(PG_lru)
        else:
            for p in range(page, page + (1 << order)):
                flags[p] |= PG_lru
    if alloc_flags & ALLOC_NO_WATERMARKS:
        flags[page] |= PG_pfmemalloc
    else:
        flags[page] &= ~PG_pfmemalloc & 0xFFFF


def alloc_flags_nofragment(mm: Machine, zone: Zone | None, gfp_mask: int) -> int:
    """``alloc_flags_nofragment()``: forbid fragmenting fallbacks when Normal is preferred."""
    alloc_flags = ALLOC_KSWAPD if gfp_mask & G.__GFP_KSWAPD_RECLAIM else 0
    if mm.defrag_mode:
        return alloc_flags | ALLOC_NOFRAGMENT
    if zone is None or zone.zone_idx != ZONE_NORMAL:
        return alloc_flags
    if mm.nr_online_nodes > 1:
        dma32 = mm.node_data[zone.node].node_zones[1]
        if not dma32.populated_zone():
            return alloc_flags
    return alloc_flags | ALLOC_NOFRAGMENT


def get_page_from_freelist(
    mm: Machine,
    gfp_mask: int,
    order: int,
    alloc_flags: int,
    zonelist: list[Zone],
    highest_zoneidx: int,
    migratetype: int,
) -> int | None:
    """``get_page_from_freelist()``: walk the zonelist, check watermarks, ``rmqueue``, prep."""
    while True:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        preferred_zone = zonelist[0] if zonelist else None
        retry = False
        for zone in zonelist:
            if (
                no_fallback
                and not mm.defrag_mode
                and preferred_zone is not None
                and zone.node != preferred_zone.node
            ):
                alloc_flags &= ~ALLOC_NOFRAGMENT
                retry = True
                break
            # above the high mark (high_wmark_pages()) a zone goes straight to try_this_zone
            if zone.flags & ZONE_BELOW_HIGH or not zone_watermark_fast(
                zone,
                order,
                zone._watermark[WMARK_HIGH] + zone.watermark_boost,
                highest_zoneidx,
                alloc_flags,
                gfp_mask,
            ):
                zone.flags |= ZONE_BELOW_HIGH
                mark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
                if not zone_watermark_fast(zone, order, mark, highest_zoneidx, alloc_flags, gfp_mask):
                    if not alloc_flags & ALLOC_NO_WATERMARKS:
                        continue
            # try_this_zone:
            page = rmqueue(preferred_zone or zone, zone, order, gfp_mask, alloc_flags, migratetype)
            if page is not None:
                prep_new_page(zone, page, order, gfp_mask, alloc_flags, migratetype)
                return page
        if retry:
            continue
        if no_fallback and not mm.defrag_mode:
            alloc_flags &= ~ALLOC_NOFRAGMENT
            continue
        return None


def gfp_to_alloc_flags(gfp_mask: int, order: int, page_group_by_mobility_disabled: bool = False) -> int:
    """``gfp_to_alloc_flags()`` (slow path; no cpusets, no defrag_mode)."""
    alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    if gfp_mask & G.__GFP_HIGH:
        alloc_flags |= ALLOC_MIN_RESERVE
    if gfp_mask & G.__GFP_KSWAPD_RECLAIM:
        alloc_flags |= ALLOC_KSWAPD
    if not gfp_mask & G.__GFP_DIRECT_RECLAIM:
        if not gfp_mask & G.__GFP_NOMEMALLOC:
            alloc_flags |= ALLOC_NON_BLOCK
            if order > 0 and alloc_flags & ALLOC_MIN_RESERVE:
                alloc_flags |= ALLOC_HIGHATOMIC
    if G.gfp_migratetype(gfp_mask, page_group_by_mobility_disabled) == MIGRATE_MOVABLE:
        alloc_flags |= ALLOC_CMA
    return alloc_flags


def __alloc_pages_slowpath(
    mm: Machine,
    gfp_mask: int,
    order: int,
    zonelist: list[Zone],
    highest_zoneidx: int,
    migratetype: int,
) -> int | None:
    """``__alloc_pages_slowpath()``, reduced to what changes the free lists without reclaim.

    One retry with ``gfp_to_alloc_flags`` (min watermark, reserves, highatomic); with
    ``__GFP_MEMALLOC`` the retries ignore watermarks (``gfp_to_alloc_flags_cma(gfp,
    ALLOC_NO_WATERMARKS) | ALLOC_KSWAPD``); callers that may direct-reclaim then get what
    ``__alloc_pages_direct_reclaim`` and ``should_reclaim_retry`` do to the free lists without
    reclaiming: ``unreserve_highatomic_pageblock(ac, false)`` and ``drain_all_pages``, one more
    attempt, and before OOM ``unreserve_highatomic_pageblock(ac, true)`` and a last attempt.
    """
    alloc_flags = gfp_to_alloc_flags(gfp_mask, order, mm.page_group_by_mobility_disabled)
    page = get_page_from_freelist(mm, gfp_mask, order, alloc_flags, zonelist, highest_zoneidx, migratetype)
    if page is not None:
        return page
    if gfp_mask & G.__GFP_MEMALLOC and not gfp_mask & G.__GFP_NOMEMALLOC:
        cma = (
            ALLOC_CMA
            if G.gfp_migratetype(gfp_mask, mm.page_group_by_mobility_disabled) == MIGRATE_MOVABLE
            else 0
        )
        alloc_flags = ALLOC_NO_WATERMARKS | cma | (alloc_flags & ALLOC_KSWAPD)
        page = get_page_from_freelist(
            mm, gfp_mask, order, alloc_flags, zonelist, highest_zoneidx, migratetype
        )
        if page is not None:
            return page
    if not gfp_mask & G.__GFP_DIRECT_RECLAIM:
        return None
    unreserve_highatomic_pageblock(mm, zonelist, migratetype, False)
    drain_all_pages(mm)
    page = get_page_from_freelist(mm, gfp_mask, order, alloc_flags, zonelist, highest_zoneidx, migratetype)
    if page is None and unreserve_highatomic_pageblock(mm, zonelist, migratetype, True):
        page = get_page_from_freelist(
            mm, gfp_mask, order, alloc_flags, zonelist, highest_zoneidx, migratetype
        )
    return page


def prepare_alloc_pages(mm: Machine, gfp: int, preferred_nid: int) -> tuple[int, int, list[Zone], int]:
    """``prepare_alloc_pages()`` plus the first ``alloc_flags``: (highest_zoneidx, migratetype,
    zonelist, alloc_flags). It depends only on the gfp mask and the node, so the Machine caches
    it (``mm.alloc_context``, cleared when zones change)."""
    try:
        highest_zoneidx = G.gfp_zone(gfp)
    except G.GfpZoneError as e:
        # gfp_zone(): VM_BUG_ON((GFP_ZONE_BAD >> bit) & 1); without DEBUG_VM the table's value
        mm.refs.vm_check(_GFP_ZONE_BAD, True, None, None, message=str(e))  # type: ignore[arg-type]
        highest_zoneidx = G.gfp_zone(gfp, check=False)
    migratetype = G.gfp_migratetype(gfp)
    if migratetype >= MIGRATE_PCPTYPES:
        # gfp_migratetype(): VM_WARN_ON((gfp & GFP_MOVABLE_MASK) == GFP_MOVABLE_MASK); the kernel then
        # indexes past the fallback table. Simplified: recorded, and served as UNMOVABLE.
        mm.refs.vm_check(_GFP_MOVABLE_MASK, True, None, None, message="__GFP_RECLAIMABLE|__GFP_MOVABLE")  # type: ignore[arg-type]
        migratetype = MIGRATE_UNMOVABLE
    if mm.page_group_by_mobility_disabled:
        migratetype = MIGRATE_UNMOVABLE
    zonelist = mm.zonelist(preferred_nid, gfp, highest_zoneidx)
    alloc_flags = ALLOC_WMARK_LOW
    if migratetype == MIGRATE_MOVABLE:
        alloc_flags |= ALLOC_CMA
    alloc_flags |= alloc_flags_nofragment(mm, zonelist[0] if zonelist else None, gfp)
    return highest_zoneidx, migratetype, zonelist, alloc_flags


def __alloc_frozen_pages_noprof(
    mm: Machine,
    gfp: int,
    order: int,
    preferred_nid: int,
) -> int | None:
    """``__alloc_frozen_pages_noprof()``: the heart; the page keeps its frozen refcount.

    Emits mm_page_alloc (also for a failure, with pfn None, like the kernel's page=(null)).
    """
    if order > mm.MAX_PAGE_ORDER:
        return None
    ctx = mm.alloc_context.get((gfp, preferred_nid))
    if ctx is None:
        ctx = mm.alloc_context[(gfp, preferred_nid)] = prepare_alloc_pages(mm, gfp, preferred_nid)
    highest_zoneidx, migratetype, zonelist, alloc_flags = ctx
    page = None
    if zonelist:
        page = get_page_from_freelist(mm, gfp, order, alloc_flags, zonelist, highest_zoneidx, migratetype)
        if page is None:
            page = __alloc_pages_slowpath(mm, gfp, order, zonelist, highest_zoneidx, migratetype)
    if mm.tracer is not None:
        mm.tracer(
            "mm_page_alloc", {"pfn": page, "order": order, "gfp_flags": gfp, "migratetype": migratetype}
        )
    return page


def __alloc_pages_noprof(mm: Machine, gfp: int, order: int, preferred_nid: int) -> int | None:
    """``__alloc_pages_noprof()``: a frozen allocation, then ``set_page_refcounted`` (head = 1)."""
    page = __alloc_frozen_pages_noprof(mm, gfp, order, preferred_nid)
    if page is not None:
        set_page_refcounted(mm, page)
    return page


# ---------------------------------------------------------------------------------- sizing
def int_sqrt(x: int) -> int:
    """``int_sqrt()``: floor of the square root."""
    return math.isqrt(x)


def calculate_min_free_kbytes(mm: Machine) -> None:
    """``calculate_min_free_kbytes()``: ``clamp(int_sqrt(lowmem_kbytes * 16), 128, 262144)``,
    applied only when larger than a value the user set (``user_min_free_kbytes``, -1 if none).

    ``nr_free_buffer_pages()`` sums ``managed - high_wmark`` over zones up to ZONE_NORMAL.
    """
    nr_free_buffer_pages = 0
    for z in mm.zones:
        if z.zone_idx <= ZONE_NORMAL:
            nr_free_buffer_pages += max(z.managed_pages - z.high_wmark_pages(), 0)
    lowmem_kbytes = nr_free_buffer_pages * (mm.PAGE_SIZE >> 10)
    new_min_free_kbytes = int_sqrt(lowmem_kbytes * 16)
    if new_min_free_kbytes > mm.user_min_free_kbytes:
        mm.min_free_kbytes = clamp(new_min_free_kbytes, 128, 262144)


def min_free_kbytes_sysctl_handler(mm: Machine, value: int) -> None:
    """``vm.min_free_kbytes`` written: ``user_min_free_kbytes = min_free_kbytes = value``, then
    ``setup_per_zone_wmarks()`` (watermarks and pcp sizes follow)."""
    mm.user_min_free_kbytes = mm.min_free_kbytes = value
    __setup_per_zone_wmarks(mm)
    for zone in mm.zones:
        if zone.populated_zone():
            zone_set_pageset_high_and_batch(zone, 0)


def __setup_per_zone_wmarks(mm: Machine) -> None:
    """``__setup_per_zone_wmarks()``: min/low/high/promo from min_free_kbytes and managed pages."""
    pages_min = mm.min_free_kbytes >> (mm.PAGE_SHIFT - 10)
    lowmem_pages = sum(z.managed_pages for z in mm.zones if z.zone_idx != ZONE_MOVABLE)
    for zone in mm.zones:
        managed = zone.managed_pages
        tmp = pages_min * managed // lowmem_pages if lowmem_pages else 0
        if zone.zone_idx == ZONE_MOVABLE:
            zone._watermark[WMARK_MIN] = max(SWAP_CLUSTER_MAX, min(managed // 1024, 128))
        else:
            zone._watermark[WMARK_MIN] = tmp
        gap = max(tmp >> 2, managed * mm.watermark_scale_factor // 10000)
        zone.watermark_boost = 0
        zone._watermark[WMARK_LOW] = zone._watermark[WMARK_MIN] + gap
        zone._watermark[WMARK_HIGH] = zone._watermark[WMARK_LOW] + gap
        zone._watermark[WMARK_PROMO] = zone._watermark[WMARK_HIGH] + gap


def setup_per_zone_lowmem_reserve(mm: Machine) -> None:
    """``setup_per_zone_lowmem_reserve()`` per node."""
    for pgdat in mm.node_data:
        zones = pgdat.node_zones
        for i, zone in enumerate(zones[:-1]):
            ratio = sysctl_lowmem_reserve_ratio[i]
            clear = not ratio or not zone.managed_pages
            managed_pages = 0
            for j in range(i + 1, len(zones)):
                managed_pages += zones[j].managed_pages
                zone.lowmem_reserve[j] = 0 if clear else managed_pages // ratio


def zone_batchsize(zone: Zone) -> int:
    """``zone_batchsize()`` (7.2): ``min(managed >> 12, 64)``, then ``2^n - 1``."""
    batch = min(zone.managed_pages >> 12, (256 * 1024) // zone.mm.PAGE_SIZE)
    if batch <= 1:
        return 1
    x = batch + batch // 2
    return (1 << (x.bit_length() - 1)) - 1


def zone_highsize(zone: Zone, batch: int, cpu_online: int, high_fraction: int) -> int:
    """``zone_highsize()``: the low watermark (or managed / fraction) split over the node's CPUs."""
    if not high_fraction:
        total_pages = zone.low_wmark_pages()
    else:
        total_pages = zone.managed_pages // high_fraction
    mm = zone.mm
    nr_split_cpus = len(mm.node_data[zone.node].cpus) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = mm.nr_cpus
    high = total_pages // nr_split_cpus
    return max(high, batch << 2)


def zone_set_pageset_high_and_batch(zone: Zone, cpu_online: int) -> None:
    """``zone_set_pageset_high_and_batch()``: copy batch / high_min / high_max into every pcp."""
    new_batch = zone_batchsize(zone)
    fraction = zone.mm.percpu_pagelist_high_fraction
    if fraction:
        new_high_min = zone_highsize(zone, new_batch, cpu_online, fraction)
        new_high_max = new_high_min
    else:
        new_high_min = zone_highsize(zone, new_batch, cpu_online, 0)
        new_high_max = zone_highsize(zone, new_batch, cpu_online, MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    zone.pageset_high_min = new_high_min
    zone.pageset_high_max = new_high_max
    zone.pageset_batch = new_batch
    for pcp in zone.per_cpu_pageset:
        pcp.high_min = new_high_min
        pcp.high_max = new_high_max
        pcp.batch = new_batch


def init_per_zone_wmark_min(mm: Machine) -> None:
    """``init_per_zone_wmark_min()``: min_free_kbytes, watermarks, pcp sizes, lowmem_reserve."""
    calculate_min_free_kbytes(mm)
    __setup_per_zone_wmarks(mm)
    for zone in mm.zones:
        if zone.populated_zone():
            zone_set_pageset_high_and_batch(zone, 0)
    setup_per_zone_lowmem_reserve(mm)


def __free_pages_core(mm: Machine, page: int, order: int, context: int) -> None:
    """``__free_pages_core()``: hand a boot (or hotplugged) chunk to the buddy allocator.

    Per page: ``__ClearPageReserved`` (or, for MEMINIT_HOTPLUG, ``__ClearPageOffline``) and the
    version's write at the ``__free_pages_core`` call site (``set_page_count(p, 0)`` upstream,
    ``set_page_count_frozen(p)`` from v4 on); managed_pages += n (hotplug:
    ``adjust_managed_page_count``); then ``__free_pages_ok(page, order, FPI_TO_TAIL)``, which
    bypasses the pcp lists and puts the merged block at the tail. Vectorised over the chunk.
    """
    from buddysim.mm.internal import MEMINIT_HOTPLUG
    from buddysim.mm.page_store import PG_offline, PG_reserved

    nr_pages = 1 << order
    zone = mm.page_zone_checked(page)
    if context == MEMINIT_HOTPLUG:
        mm.store.clear_flags_range(page, nr_pages, PG_offline)
        mm.site_range("__free_pages_core", page, nr_pages)
        mm.adjust_managed_page_count(zone, nr_pages)
    else:
        mm.store.clear_flags_range(page, nr_pages, PG_reserved)
        mm.site_range("__free_pages_core", page, nr_pages)
        zone.managed_pages += nr_pages
    __free_pages_ok(zone, page, order, FPI_TO_TAIL)
