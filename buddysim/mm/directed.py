"""Directed replay, model side: move exactly the blocks a recorded trace names, and predict the model.

A capture of a real kernel says which pfn each allocation returned. Directed replay makes the
model hand out exactly that block (:func:`take_block`: from this CPU's pcp list, another CPU's,
or the buddy lists, splitting a larger free block the way ``expand()`` does), moves blocks
between the buddy and the pcp lists as ``mm_page_alloc_zone_locked`` and ``mm_page_pcpu_drain``
say (:func:`put_on_pcp`, :func:`pcp_to_buddy`), and, before each of these moves, asks what the
model left to itself would have returned (:func:`predict_alloc`, :func:`predict_batch_head`):
``get_page_from_freelist`` → ``rmqueue`` → pcp list head or ``__rmqueue`` (``__rmqueue_smallest``,
CMA, ``__rmqueue_claim``, ``__rmqueue_steal``), evaluated without changing any state.
:func:`seed_free_area` gives a zone the free-block counts of a captured /proc/buddyinfo row.

Kernel context: ``expand()`` always keeps the lowest ``2^low`` pages and puts each upper half at
the head of its list; a kernel that returned a block from the upper part of a larger free block
must have split it differently before, so :func:`take_block` generalises the split (the half that
does not hold the target goes to the list head), which is ``expand()`` itself when the target is
the lowest part.

Simplified: the prediction follows the fast path and the first slow-path retry (min watermark,
reserves, ``__GFP_MEMALLOC``); past that (``unreserve_highatomic_pageblock``,
``drain_all_pages``) it answers "not sure" rather than simulate the side effects; it ignores
``check_new_pages`` rejecting a bad first page. Blocks the model held allocated when the trace
allocates them again are reset to the frozen, flag-free state of a free page first (their owner
is unknown: the capture missed their free, or they sat on a pcp list before it started).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from buddysim.mm import gfp as G
from buddysim.mm import page_alloc as pa
from buddysim.mm.internal import (
    ALLOC_CMA,
    ALLOC_HIGHATOMIC,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_NON_BLOCK,
    ALLOC_OOM,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    FPI_NONE,
    change_pageblock_range,
    get_pfnblock_migratetype,
    set_buddy_order,
    set_page_refcounted,
    set_pageblock_migratetype,
)
from buddysim.mm.mmzone import (
    MIGRATE_CMA,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    ZONE_BELOW_HIGH,
    ZONE_NORMAL,
    Zone,
)
from buddysim.mm.page_store import PG_buddy, PG_head, PG_hwpoison, PG_pcp, PG_reserved, PG_tail

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "Prediction",
    "SeedResult",
    "block_state",
    "claim_pageblock",
    "commit_free",
    "counts_for_free_pages",
    "find_free_head",
    "find_pcp_entry",
    "finish_alloc",
    "force_free",
    "pcp_to_buddy",
    "predict_alloc",
    "predict_batch_head",
    "put_on_pcp",
    "reset_allocated",
    "seed_free_area",
    "take_block",
]

_del_page_from_free_list = pa.__del_page_from_free_list
_add_to_free_list = pa.__add_to_free_list
_free_one_page = pa.__free_one_page
_free_frozen_pages = pa.__free_frozen_pages
_free_pages_prepare = pa.__free_pages_prepare

# where take_block found a block
SRC_PCP = "pcp"  # this CPU's pcp list, exactly that entry
SRC_PCP_REMOTE = "pcp-remote"  # another CPU's pcp list
SRC_PCP_SPLIT = "pcp-split"  # inside a larger pcp entry (the rest goes to the buddy)
SRC_BUDDY = "buddy"  # a free block of exactly that order
SRC_BUDDY_SPLIT = "buddy-split"  # inside a larger free block, split as expand() would
SRC_ALLOCATED = "allocated"  # the model holds it allocated: nothing to take
SRC_MIXED = "mixed"  # partly free (smaller free blocks / pcp entries inside), partly allocated
SRC_RESERVED = "reserved"  # reserved or a hole in the model: not taken
SRC_NO_ZONE = "no-zone"  # in no zone of the machine, or crossing a zone's end


# ---------------------------------------------------------------------------------- lookups
def _pcp_orders(zone: Zone) -> tuple[int, ...]:
    return (0, 1, 2, 3, 9) if zone.mm.thp else (0, 1, 2, 3)


def find_free_head(zone: Zone, pfn: int, order: int) -> tuple[int, int, int] | None:
    """The free buddy block holding ``[pfn, pfn + 2^order)``: (head pfn, its order, its list's mt).

    Like ``is_free_buddy_page()``: for each order ``o >= order`` the candidate head is ``pfn``
    rounded down to ``2^o``; it must be PageBuddy with ``buddy_order == o``.
    """
    store = zone.mm.store
    flags = store.flags
    private = store.private
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    for o in range(order, zone.mm.NR_PAGE_ORDERS):
        head = pfn & ~((1 << o) - 1)
        if head < start or head + (1 << o) > end:
            break
        if flags[head] & PG_buddy and private[head] == o:
            area = zone.free_area[o]
            mt = get_pfnblock_migratetype(store, head)
            if head in area.free_list[mt]:
                return head, o, mt
            for m in range(MIGRATE_TYPES):
                if head in area.free_list[m]:
                    return head, o, m
            return None  # PageBuddy but on no list: the invariants will say so
    return None


def find_pcp_entry(zone: Zone, pfn: int, cpu: int) -> tuple[int, int, int, int] | None:
    """The pcp entry holding ``pfn``: (cpu, pindex, entry pfn, entry order); ``cpu``'s lists first."""
    flags = zone.mm.store.flags
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    prev = -1
    for o in _pcp_orders(zone):
        head = pfn & ~((1 << o) - 1)
        if head == prev or head < start or head >= end:
            continue
        prev = head
        if not flags[head] & PG_pcp:
            continue
        pcps = zone.per_cpu_pageset
        for c in (cpu, *(c for c in range(len(pcps)) if c != cpu)):
            for pindex, lst in enumerate(pcps[c].lists):
                if head in lst:
                    eo = pa.pindex_to_order(pindex)
                    if head + (1 << eo) > pfn:
                        return c, pindex, head, eo
    return None


def block_state(mm: Machine, pfn: int, order: int, cpu: int = 0) -> str:
    """Where the model holds ``[pfn, pfn + 2^order)``: ``buddy``, ``pcp``, ``allocated``, ``mixed``
    (partly free, or partly reserved), ``reserved`` (all of it) or ``no-zone`` (read-only)."""
    zone = mm.page_zone(pfn)
    nr = 1 << order
    if zone is None or pfn + nr > zone.zone_end_pfn:
        return SRC_NO_ZONE
    if order:
        fl = mm.store.flags_np[pfn : pfn + nr]
        reserved = fl & PG_reserved
        if reserved.any():
            return SRC_RESERVED if reserved.all() else SRC_MIXED
        inside = bool((fl & (PG_buddy | PG_pcp)).any())
    else:
        f = mm.store.flags[pfn]
        if f & PG_reserved:
            return SRC_RESERVED
        inside = bool(f & (PG_buddy | PG_pcp))
    if find_free_head(zone, pfn, order) is not None:
        return SRC_BUDDY
    entry = find_pcp_entry(zone, pfn, cpu)
    if entry is not None and entry[2] + (1 << entry[3]) >= pfn + nr:
        return SRC_PCP
    if entry is not None or inside or _inside_free_block(zone, pfn):
        return SRC_MIXED
    return SRC_ALLOCATED


def _inside_free_block(zone: Zone, pfn: int) -> bool:
    return find_free_head(zone, pfn, 0) is not None


# ---------------------------------------------------------------------------------- taking blocks
def _split_take(zone: Zone, head: int, head_order: int, mt: int, pfn: int, order: int) -> None:
    """Unlink the free block ``head`` and split it down to ``(pfn, order)``: every half that does
    not hold the target goes to the head of its list (``expand()`` when ``pfn == head``)."""
    mm = zone.mm
    store = mm.store
    _del_page_from_free_list(head, zone, head_order, mt)
    end = head + (1 << head_order)
    # the frozen-on-entry check of expand(): one range test each side, per part only on failure
    check = mm.check_frozen and not (
        mm.range_frozen(head, pfn - head) and mm.range_frozen(pfn + (1 << order), end - pfn - (1 << order))
    )
    cur, co, added = head, head_order, 0
    while co > order:
        co -= 1
        size = 1 << co
        if pfn >= cur + size:
            part, cur = cur, cur + size
        else:
            part = cur + size
        if check:
            mm.check_frozen_entry(part, co, "expand")
        _add_to_free_list(part, zone, co, mt, False)
        set_buddy_order(store, part, co)
        added += size
    pa.account_freepages(zone, -((1 << head_order) - added), mt)


def _unlink_pcp(zone: Zone, cpu: int, pindex: int, entry: int) -> int:
    pcp = zone.per_cpu_pageset[cpu]
    del pcp.lists[pindex][entry]
    zone.mm.store.flags[entry] &= ~PG_pcp & 0xFFFF
    order = pa.pindex_to_order(pindex)
    pcp.count -= 1 << order
    return order


def _release_parts(zone: Zone, start: int, start_order: int, keep: int, keep_order: int) -> None:
    """Give the parts of ``[start, start + 2^start_order)`` outside the kept block to the buddy."""
    cur, co = start, start_order
    store = zone.mm.store
    while co > keep_order:
        co -= 1
        size = 1 << co
        if keep >= cur + size:
            part, cur = cur, cur + size
        else:
            part = cur + size
        _free_one_page(part, part, zone, co, get_pfnblock_migratetype(store, part), FPI_NONE)


def take_block(mm: Machine, pfn: int, order: int, cpu: int) -> str:
    """Remove exactly ``[pfn, pfn + 2^order)`` from wherever the model holds it; returns the source.

    Looks in ``cpu``'s pcp lists, then the other CPUs', then the buddy lists (splitting a larger
    free block); a block the model holds allocated is left as it is (``allocated``); a range that
    is partly free has its free parts removed (``mixed``). Pages taken keep the frozen refcount
    they had on the lists; the caller finishes the allocation (:func:`finish_alloc`).
    """
    zone = mm.page_zone(pfn)
    nr = 1 << order
    if zone is None or pfn + nr > zone.zone_end_pfn:
        return SRC_NO_ZONE
    store = mm.store
    flags = store.flags
    if flags[pfn] & PG_reserved or (order and (store.flags_np[pfn : pfn + nr] & PG_reserved).any()):
        return SRC_RESERVED
    if flags[pfn] & PG_buddy and store.private[pfn] == order:
        hit = find_free_head(zone, pfn, order)
        if hit is not None:
            _split_take(zone, *hit, pfn, order)
            return SRC_BUDDY
    entry = find_pcp_entry(zone, pfn, cpu)
    if entry is not None:
        c, pindex, head, eorder = entry
        if head == pfn and eorder == order:
            _unlink_pcp(zone, c, pindex, head)
            return SRC_PCP if c == cpu else SRC_PCP_REMOTE
        if eorder > order:
            _unlink_pcp(zone, c, pindex, head)
            _release_parts(zone, head, eorder, pfn, order)
            return SRC_PCP_SPLIT
    hit = find_free_head(zone, pfn, order)
    if hit is not None:
        _split_take(zone, *hit, pfn, order)
        return SRC_BUDDY if hit[1] == order else SRC_BUDDY_SPLIT
    # Partly free: smaller free blocks or pcp entries inside the range (or a pcp entry that
    # starts inside and reaches beyond it), or allocated.
    removed = False
    if entry is not None:  # a smaller pcp entry holding pfn itself
        c, pindex, head, eorder = entry
        _unlink_pcp(zone, c, pindex, head)
        removed = True
    if order:
        seg = store.flags_np[pfn : pfn + nr]
        for off in np.flatnonzero(seg & (PG_buddy | PG_pcp)).tolist():
            p = pfn + off
            if flags[p] & PG_buddy:
                hit = find_free_head(zone, p, 0)
                if hit is not None and hit[0] == p:
                    pa.del_page_from_free_list(p, zone, hit[1], hit[2])
                    removed = True
            elif flags[p] & PG_pcp:
                e = find_pcp_entry(zone, p, cpu)
                if e is not None:
                    eo = _unlink_pcp(zone, e[0], e[1], e[2])
                    if e[2] + (1 << eo) > pfn + nr:  # reaches beyond: give back what is outside
                        _release_parts(zone, e[2], eo, pfn, order)
                    removed = True
    return SRC_MIXED if removed else SRC_ALLOCATED


def reset_allocated(mm: Machine, pfn: int, order: int) -> None:
    """Put pages the model held allocated into the state of pages just taken off a free list:
    the version's frozen refcount, no flags but hwpoison, ``private`` 0. A compound page that
    overlaps the range from outside loses its compound state too."""
    nr = 1 << order
    store = mm.store
    for p in (pfn, pfn + nr - 1):
        if store.flags[p] & PG_tail:
            head = store.compound_head(p)
            if head != p and not pfn <= head < pfn + nr:
                hnr = 1 << store.compound_order(head)
                store.flags_np[head : head + hnr] &= np.uint16(~(PG_head | PG_tail) & 0xFFFF)
                store.private[head + 1] = 0
    if store.flags[pfn] & PG_head:
        hnr = 1 << store.compound_order(pfn)
        if hnr > nr:
            store.flags_np[pfn : pfn + hnr] &= np.uint16(~(PG_head | PG_tail) & 0xFFFF)
            store.private[pfn + 1] = 0
    store.refcount_np[pfn : pfn + nr] = mm.refs.frozen_setter_raw()
    store.flags_np[pfn : pfn + nr] &= np.uint16(PG_hwpoison)
    store.private_np[pfn : pfn + nr] = 0


def finish_alloc(mm: Machine, pfn: int, order: int, gfp: int, frozen: bool = False) -> bool:
    """What ``rmqueue``'s callers do with a block taken off the lists: ``check_new_pages`` (a bad
    page is a finding), ``prep_new_page``, ``set_page_refcounted`` (unless ``frozen``), PGALLOC.

    Returns whether ``check_new_pages`` found a bad page.
    """
    zone = mm.page_zone_checked(pfn)
    bad = pa.check_new_pages(zone, pfn, order)
    mt = G.gfp_migratetype(gfp, mm.page_group_by_mobility_disabled)
    pa.prep_new_page(zone, pfn, order, gfp, 0, mt)
    if not frozen:
        set_page_refcounted(mm, pfn)
    zone.PGALLOC += 1 << order
    return bad


def put_on_pcp(zone: Zone, cpu: int, pfn: int, order: int, migratetype: int, tail: bool = True) -> None:
    """``rmqueue_bulk``'s ``list_add_tail`` (or a free's ``list_add``) of a frozen block on a pcp list."""
    mm = zone.mm
    mm.check_frozen_entry(pfn, order, "rmqueue_bulk" if tail else "free_frozen_page_commit")
    mt = migratetype if migratetype < MIGRATE_PCPTYPES else MIGRATE_MOVABLE
    pcp = zone.per_cpu_pageset[cpu]
    pcp.lists[pa.order_to_pindex(mt, order)].add(pfn, tail)
    mm.store.flags[pfn] |= PG_pcp
    pcp.count += 1 << order


def pcp_to_buddy(zone: Zone, pfn: int, order: int, cpu: int) -> str | None:
    """``free_pcppages_bulk`` for one named entry: unlink it from the pcp list that holds it
    (``cpu``'s first) and ``__free_one_page`` it with its pageblock's type. None if no pcp list
    holds exactly that entry."""
    entry = find_pcp_entry(zone, pfn, cpu)
    if entry is None or entry[2] != pfn or entry[3] != order:
        return None
    c, pindex, head, _ = entry
    _unlink_pcp(zone, c, pindex, head)
    _free_one_page(pfn, pfn, zone, order, get_pfnblock_migratetype(zone.mm.store, pfn), FPI_NONE)
    return SRC_PCP if c == cpu else SRC_PCP_REMOTE


def force_free(zone: Zone, pfn: int, order: int) -> None:
    """Hand a block the model held allocated straight to the buddy (``split_large_buddy``: each
    pageblock with its own type), after :func:`reset_allocated`: for drains of pages whose free
    the capture did not show."""
    reset_allocated(zone.mm, pfn, order)
    pa.split_large_buddy(zone, pfn, pfn, order, FPI_NONE)


def commit_free(zone: Zone, pfn: int, order: int, cpu: int, model_drains: bool) -> None:
    """``__free_frozen_pages`` for a block whose refcount is already frozen.

    With ``model_drains`` it is the model's own path (``free_frozen_page_commit`` drains when the
    list passes ``high``). Without, the pcp side stops after the ``list_add``: the capture's
    ``mm_page_pcpu_drain`` events say what leaves the pcp lists.
    """
    mm = zone.mm
    mm.cpu = cpu
    if model_drains or not pa.pcp_allowed_order(zone, order):
        _free_frozen_pages(zone, pfn, order, FPI_NONE)
        return
    if not _free_pages_prepare(zone, pfn, order, FPI_NONE):
        return
    mt = get_pfnblock_migratetype(mm.store, pfn)
    if mt == MIGRATE_ISOLATE:
        pa.free_one_page(zone, pfn, pfn, order, FPI_NONE)
        return
    zone.PGFREE += 1 << order
    put_on_pcp(zone, cpu, pfn, order, mt, tail=False)


def claim_pageblock(zone: Zone, pfn: int, new_mt: int) -> None:
    """``try_to_claim_block``'s conversion of the pageblock(s) holding ``pfn`` to ``new_mt``,
    applied after the fact: every free block in it moves to the tail of ``new_mt``'s list (from
    whichever list holds it), and the pageblock type changes. A free block of pageblock order or
    more changes all the pageblocks it covers."""
    mm = zone.mm
    store = mm.store
    hit = find_free_head(zone, pfn, 0)
    if hit is not None and hit[1] >= mm.pageblock_order:
        head, order, mt = hit
        if mt != new_mt:
            pa.move_to_free_list(head, zone, order, mt, new_mt)
        change_pageblock_range(store, head, order, new_mt)
        return
    start = pfn & ~(mm.pageblock_nr_pages - 1)
    if not (zone.zone_spans_pfn(start) and zone.zone_spans_pfn(start + mm.pageblock_nr_pages - 1)):
        return  # the kernel does not claim a pageblock that straddles the zone
    seg = store.flags_np[start : start + mm.pageblock_nr_pages]
    for off in np.flatnonzero(seg & PG_buddy).tolist():
        p = start + off
        found = find_free_head(zone, p, 0)
        if found is not None and found[0] == p and found[2] != new_mt:
            pa.move_to_free_list(p, zone, found[1], found[2], new_mt)
    set_pageblock_migratetype(store, start, new_mt)


# ---------------------------------------------------------------------------------- prediction
@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model left to itself would return: pfn (None: fail), zone, path, and ``sure``
    (False when the answer needs side effects the predictor does not simulate)."""

    pfn: int | None
    zone: Zone | None
    source: str
    sure: bool = True


def _smallest(zone: Zone, order: int, mt: int) -> int | None:
    """``__rmqueue_smallest()``'s choice: the first block of the smallest order >= ``order``."""
    for area in zone.free_area[order:]:
        lst = area.free_list[mt]
        if lst:
            return lst.first()
    return None


def _predict_claim(zone: Zone, order: int, mt: int, alloc_flags: int) -> int | None:
    """``__rmqueue_claim()``'s page, read-only (``try_to_claim_block`` evaluated, not applied)."""
    mm = zone.mm
    pbo = mm.pageblock_order
    min_order = pbo if order < pbo and alloc_flags & ALLOC_NOFRAGMENT else order
    for cur in range(mm.MAX_PAGE_ORDER, min_order - 1, -1):
        res, fb = pa.find_suitable_fallback(zone, cur, mt, True)
        if res == pa.FALLBACK_EMPTY:
            continue
        if res == pa.FALLBACK_NOCLAIM:
            break
        page = zone.free_area[cur].free_list[fb].first()
        if cur >= pbo:
            return page
        ok, start, free_pages, movable = pa.prep_move_freepages_block(zone, page, True)
        if not ok:
            continue
        if pa.claim_block_test(mm, mt, fb, free_pages, movable):
            # every free block of the pageblock moves to the (empty at >= order) mt lists in pfn
            # order; __rmqueue_smallest then takes the smallest order >= order, lowest pfn
            store = mm.store
            seg = store.flags_np[start : start + mm.pageblock_nr_pages]
            best: tuple[int, int] | None = None
            for off in np.flatnonzero(seg & PG_buddy).tolist():
                o = store.private[start + off]
                if o >= order and (best is None or o < best[0]):
                    best = (o, start + off)
            return best[1] if best is not None else page
    return None


def _predict_steal(zone: Zone, order: int, mt: int) -> int | None:
    for cur in range(order, zone.mm.NR_PAGE_ORDERS):
        res, fb = pa.find_suitable_fallback(zone, cur, mt, False)
        if res == pa.FALLBACK_EMPTY:
            continue
        return zone.free_area[cur].free_list[fb].first()
    return None


def _predict_rmqueue_inner(zone: Zone, order: int, mt: int, alloc_flags: int) -> tuple[int | None, str]:
    """``__rmqueue()``'s first page with mode RMQUEUE_NORMAL, read-only: (pfn, path)."""
    if alloc_flags & ALLOC_CMA and zone.NR_FREE_CMA_PAGES > zone.NR_FREE_PAGES // 2:
        page = _smallest(zone, order, MIGRATE_CMA)
        if page is not None:
            return page, "cma"
    page = _smallest(zone, order, mt)
    if page is not None:
        return page, "buddy"
    if alloc_flags & ALLOC_CMA:
        page = _smallest(zone, order, MIGRATE_CMA)
        if page is not None:
            return page, "cma"
    page = _predict_claim(zone, order, mt, alloc_flags)
    if page is not None:
        return page, "claim"
    if not alloc_flags & ALLOC_NOFRAGMENT:
        page = _predict_steal(zone, order, mt)
        if page is not None:
            return page, "steal"
    return None, "none"


def _predict_rmqueue(zone: Zone, order: int, alloc_flags: int, mt: int, cpu: int) -> Prediction | None:
    """``rmqueue()`` read-only: the pcp list head, a refill's first page, or ``rmqueue_buddy``."""
    if pa.pcp_allowed_order(zone, order):
        lst = zone.per_cpu_pageset[cpu].lists[pa.order_to_pindex(mt, order)]
        if lst:
            return Prediction(lst.first(), zone, "pcp")
        if not alloc_flags & ALLOC_HIGHATOMIC:
            page, path = _predict_rmqueue_inner(zone, order, mt, alloc_flags)
            if page is not None:
                return Prediction(page, zone, "refill-" + path)
    page = None
    path = "none"
    if alloc_flags & ALLOC_HIGHATOMIC:
        page = _smallest(zone, order, MIGRATE_HIGHATOMIC)
        path = "highatomic"
    if page is None:
        page, path = _predict_rmqueue_inner(zone, order, mt, alloc_flags)
        if page is None and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
            page, path = _smallest(zone, order, MIGRATE_HIGHATOMIC), "highatomic"
    return Prediction(page, zone, path) if page is not None else None


def _predict_gpf(
    mm: Machine, gfp: int, order: int, alloc_flags: int, zonelist: list[Zone], highest: int, mt: int, cpu: int
) -> Prediction | None:
    """``get_page_from_freelist()`` read-only (ZONE_BELOW_HIGH is read, not set)."""
    while True:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        preferred = zonelist[0]
        retry = False
        for zone in zonelist:
            if no_fallback and not mm.defrag_mode and zone.node != preferred.node:
                alloc_flags &= ~ALLOC_NOFRAGMENT
                retry = True
                break
            if not zone.flags & ZONE_BELOW_HIGH:
                if pa.zone_watermark_fast(zone, order, zone.high_wmark_pages(), highest, alloc_flags, gfp):
                    p = _predict_rmqueue(zone, order, alloc_flags, mt, cpu)
                    if p is not None:
                        return p
                    continue
            mark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
            if not pa.zone_watermark_fast(zone, order, mark, highest, alloc_flags, gfp):
                if not alloc_flags & ALLOC_NO_WATERMARKS:
                    continue
            p = _predict_rmqueue(zone, order, alloc_flags, mt, cpu)
            if p is not None:
                return p
        if retry:
            continue
        if no_fallback and not mm.defrag_mode:
            alloc_flags &= ~ALLOC_NOFRAGMENT
            continue
        return None


def predict_alloc(mm: Machine, gfp: int, order: int, cpu: int, nid: int | None = None) -> Prediction:
    """What ``__alloc_frozen_pages_noprof(gfp, order)`` on ``cpu`` would return now, read-only.

    >>> # p = predict_alloc(mm, GFP_KERNEL, 0, cpu=0); p.pfn == mm.alloc(GFP_KERNEL, 0, cpu=0)
    """
    if order > mm.MAX_PAGE_ORDER:
        return Prediction(None, None, "none")
    sure = True
    try:
        highest = G.gfp_zone(gfp)
    except G.GfpZoneError:
        highest = G.gfp_zone(gfp, check=False)
        sure = False  # the model reports gfp_zone's VM_BUG_ON
    mt = G.gfp_migratetype(gfp)
    if mm.page_group_by_mobility_disabled:
        mt = MIGRATE_UNMOVABLE
    node = mm.cpu_to_node[cpu] if nid is None else nid
    zonelist = mm.zonelist(node, gfp, highest)
    if not zonelist:
        return Prediction(None, None, "none", sure)
    alloc_flags = ALLOC_WMARK_LOW | (ALLOC_CMA if mt == MIGRATE_MOVABLE else 0)
    alloc_flags |= pa.alloc_flags_nofragment(mm, zonelist[0], gfp)
    p = _predict_gpf(mm, gfp, order, alloc_flags, zonelist, highest, mt, cpu)
    if p is not None:
        return Prediction(p.pfn, p.zone, p.source, sure)
    alloc_flags = pa.gfp_to_alloc_flags(gfp, order, mm.page_group_by_mobility_disabled)
    p = _predict_gpf(mm, gfp, order, alloc_flags, zonelist, highest, mt, cpu)
    if p is not None:
        return Prediction(p.pfn, p.zone, "slowpath-" + p.source, sure)
    if gfp & G.__GFP_MEMALLOC and not gfp & G.__GFP_NOMEMALLOC:
        cma = ALLOC_CMA if mt == MIGRATE_MOVABLE else 0
        p = _predict_gpf(
            mm,
            gfp,
            order,
            ALLOC_NO_WATERMARKS | cma | (alloc_flags & pa.ALLOC_KSWAPD),
            zonelist,
            highest,
            mt,
            cpu,
        )
        if p is not None:
            return Prediction(p.pfn, p.zone, "memalloc-" + p.source, sure)
    if not gfp & G.__GFP_DIRECT_RECLAIM:
        return Prediction(None, None, "none", sure)
    return Prediction(None, None, "reclaim", False)  # unreserve + drain_all_pages + retry


def predict_batch_head(zone: Zone, order: int, migratetype: int, cpu: int) -> Prediction:
    """The first block of a pcp refill or a direct buddy take about to start in ``zone`` with
    ``__rmqueue_smallest(zone, order, migratetype)`` (the zone_locked event's type), read-only.

    A non-empty pcp list for that (order, type) means the model would not have refilled: its
    head is the prediction. The gfp mask is not known yet, so the flags are the fast path's
    (``ALLOC_CMA`` for movable, ``ALLOC_NOFRAGMENT`` in ZONE_NORMAL).
    """
    mt = migratetype if migratetype < MIGRATE_PCPTYPES else MIGRATE_MOVABLE
    if pa.pcp_allowed_order(zone, order):
        lst = zone.per_cpu_pageset[cpu].lists[pa.order_to_pindex(mt, order)]
        if lst:
            return Prediction(lst.first(), zone, "pcp")
    if migratetype == MIGRATE_HIGHATOMIC:
        page = _smallest(zone, order, MIGRATE_HIGHATOMIC)
        if page is not None:
            return Prediction(page, zone, "highatomic")
    flags = ALLOC_WMARK_LOW | (ALLOC_CMA if mt == MIGRATE_MOVABLE else 0)
    if zone.zone_idx == ZONE_NORMAL and not zone.mm.defrag_mode:
        flags |= ALLOC_NOFRAGMENT
    page, path = _predict_rmqueue_inner(zone, order, mt, flags)
    if page is None and flags & ALLOC_NOFRAGMENT:
        page, path = _predict_rmqueue_inner(zone, order, mt, flags & ~ALLOC_NOFRAGMENT)
    return Prediction(page, zone, path)


# ---------------------------------------------------------------------------------- initial state
@dataclass
class SeedResult:
    """How close :func:`seed_free_area` got to a captured row."""

    zone: str
    nid: int
    wanted: list[int]
    got: list[int]
    #: free pages before seeding (the booted model) and wanted by the capture
    model_free_before: int = 0
    wanted_pages: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.wanted == self.got


def counts_for_free_pages(zone: Zone, nr_pages: int) -> list[int]:
    """Free blocks per order adding up to ``nr_pages``: the model's own free blocks in pfn order,
    the last one cut down in binary (for a /proc/zoneinfo ``pages free`` without a buddyinfo)."""
    counts = [0] * len(zone.free_area)
    left = nr_pages
    for _pfn, order, _mt in sorted(zone.iter_free_blocks()):
        if left <= 0:
            break
        size = 1 << order
        if size <= left:
            counts[order] += 1
            left -= size
            continue
        for o in range(order - 1, -1, -1):
            if left >= 1 << o:
                counts[o] += 1
                left -= 1 << o
    return counts


def seed_free_area(mm: Machine, zone: Zone, wanted: list[int]) -> SeedResult:
    """Make ``zone``'s free lists hold ``wanted[order]`` free blocks per order (a /proc/buddyinfo row).

    Every free block of the booted zone is taken off its list; then, from the largest order
    down, each wanted block is carved out of that memory (a region of exactly that order whose
    buddy is not to be free, else the lowest part of the smallest larger region, whose buddy
    half stays out) and freed with ``__free_one_page``, so no two wanted blocks merge. What is
    not handed back stays allocated: memory in use before the capture, owner unknown. Which pfns
    were free is not in a buddyinfo row; the lowest addresses are used first.
    """
    nr_orders = len(zone.free_area)
    want = [0] * nr_orders
    for o, n in enumerate(wanted):
        if o < nr_orders:
            want[o] += n
        else:  # a row with more orders than this machine: fold into MAX_PAGE_ORDER blocks
            want[-1] += n << (o - nr_orders + 1)
    for cpu in range(len(zone.per_cpu_pageset)):
        pa.drain_pages_zone(zone, cpu)
    res = SeedResult(zone.name, zone.node, list(want), [0] * nr_orders, zone.NR_FREE_PAGES)
    res.wanted_pages = sum(n << o for o, n in enumerate(want))
    blocks = sorted(zone.iter_free_blocks())
    for pfn, order, mt in blocks:
        pa.del_page_from_free_list(pfn, zone, order, mt)
    # memory available for carving, per order: free[o] regions whose buddy stays allocated or
    # is carved further, blocked[o] regions whose buddy is a wanted block (not wanted themselves)
    free: list[deque[int]] = [deque() for _ in range(nr_orders)]
    blocked: list[deque[int]] = [deque() for _ in range(nr_orders)]
    for pfn, order, _mt in blocks:
        free[order].append(pfn)
    chosen: list[tuple[int, int]] = []
    for k in range(nr_orders - 1, -1, -1):
        for _ in range(want[k]):
            got = _carve(free, blocked, k)
            if got is None:
                break
            chosen.append((got, k))
            res.got[k] += 1
    store = mm.store
    for pfn, k in sorted(chosen):
        _free_one_page(pfn, pfn, zone, k, get_pfnblock_migratetype(store, pfn), FPI_NONE)
    if not res.exact:
        short = res.wanted_pages - sum(n << o for o, n in enumerate(res.got))
        res.notes.append(f"{short} wanted free pages did not fit in the model's free memory")
    return res


def _carve(free: list[deque[int]], blocked: list[deque[int]], k: int) -> int | None:
    """Take a block of order ``k`` whose buddy will not be free; split larger regions as needed."""
    if free[k]:
        return free[k].popleft()
    for o in range(k + 1, len(free)):
        src = blocked[o] if blocked[o] else free[o]
        if src:
            pfn = src.popleft()
            while o > k:
                o -= 1
                # the upper half of each level goes back; at level k it is the target's buddy
                (blocked if o == k else free)[o].appendleft(pfn + (1 << o))
            return pfn
    return None
