"""Boot-time memmap init and the memblock handoff: mm/mm_init.c and mm/memblock.c (Linux 7.2).

``memmap_init`` gives every present page refcount 1 (``__init_single_page`` >
``init_page_count``, through the call-site table), marks holes reserved
(``init_unavailable_range``) and every pageblock MOVABLE. ``memblock_free_all`` then hands the
free ranges (memory minus reserved) to the buddy allocator with the exact chunking of
``__free_pages_memory``: each chunk naturally aligned, as large as the alignment of its start
and the remaining length allow, capped at MAX_PAGE_ORDER, freed through
``memblock_free_pages`` > ``__free_pages_core``.

Simplified: vectorised per range rather than per page (same end state); no KMSAN, no
page-tag references, no unaccepted memory, no KHO scratch areas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from buddysim.mm.internal import MEMINIT_EARLY, set_pageblock_migratetype
from buddysim.mm.mmzone import MIGRATE_MOVABLE
from buddysim.mm.page_store import PG_reserved

#: x86-64 SECTION_SIZE_BITS 27: 32768 pages (128 MiB) per memory section
PAGES_PER_SECTION = 1 << (27 - 12)

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "PAGES_PER_SECTION",
    "__free_memory_core",
    "__free_pages_memory",
    "deferred_free_pages",
    "deferred_init_memmap",
    "first_deferred_pfns",
    "free_low_memory_core_early",
    "memblock_free_all",
    "memblock_free_pages",
    "memmap_init",
    "memmap_init_reserved_pages",
]


def memmap_init(mm: Machine) -> None:
    """``memmap_init()``: init every struct page of the zone spans.

    Present pages get ``__init_single_page`` (refcount 1 via the ``__init_single_page`` site,
    flags clear); pfns in a zone span but in no memory range are holes
    (``init_unavailable_range``: PG_reserved, refcount 1); pfns before the first zone (pfn 0 on
    x86, trimmed by ``trim_bios_range``) are reserved too. All pageblocks start MOVABLE.
    """
    store = mm.store
    store.flags_np[:] = PG_reserved  # everything is a hole until a memory range says otherwise
    mm.site_range("__init_single_page", 0, store.end_pfn)
    store.pageblock_mt_np[:] = MIGRATE_MOVABLE
    for start, end, _nid in mm.memory_pfn_ranges:
        store.flags_np[start:end] = 0
    # CONFIG_DEFERRED_STRUCT_PAGE_INIT: struct pages from first_deferred_pfn on are not
    # initialised yet (left zeroed); the model marks them reserved until deferred_init_memmap.
    for nid, first in mm.first_deferred_pfn.items():
        zone = mm.node_data[nid].last_zone()
        if zone is not None and first < zone.zone_end_pfn:
            store.flags_np[first : zone.zone_end_pfn] = PG_reserved
            store.refcount_np[first : zone.zone_end_pfn] = 0


def first_deferred_pfns(mm: Machine) -> dict[int, int]:
    """``defer_init()`` per node: the first pfn whose struct page is left to deferred init.

    Only the node's highest zone (the one ending where the node ends) is deferred; after more
    than PAGES_PER_SECTION of its pfns have been initialised (counted over its memory ranges in
    ascending order), the next section-aligned pfn is ``NODE_DATA(nid)->first_deferred_pfn``.
    """
    out: dict[int, int] = {}
    for pgdat in mm.node_data:
        zone = pgdat.last_zone()
        if zone is None:
            continue
        nr_initialised = 0
        found = None
        for start, end, nid in mm.memory_pfn_ranges:
            if nid != pgdat.node_id:
                continue
            start = max(start, zone.zone_start_pfn)
            end = min(end, zone.zone_end_pfn)
            if start >= end:
                continue
            # smallest section-aligned pfn p in [start, end) with nr_initialised + (p - start) + 1 > PPS
            need = max(start, start + PAGES_PER_SECTION - nr_initialised)
            p = -(-need // PAGES_PER_SECTION) * PAGES_PER_SECTION
            if p < end:
                found = p
                break
            nr_initialised += end - start
        if found is not None:
            out[pgdat.node_id] = found
    return out


def deferred_free_pages(mm: Machine, pfn: int, nr_pages: int, mt: int) -> None:
    """``deferred_free_pages()``: a whole aligned MAX_ORDER chunk at once, else page by page."""
    from buddysim.mm.page_alloc import __free_pages_core

    pb = mm.pageblock_nr_pages
    if nr_pages == 1 << mm.MAX_PAGE_ORDER and not pfn & (nr_pages - 1):
        for i in range(0, nr_pages, pb):
            set_pageblock_migratetype(mm.store, pfn + i, mt)
        __free_pages_core(mm, pfn, mm.MAX_PAGE_ORDER, MEMINIT_EARLY)
        return
    for p in range(pfn, pfn + nr_pages):
        if not p & (pb - 1):
            set_pageblock_migratetype(mm.store, p, mt)
        __free_pages_core(mm, p, 0, MEMINIT_EARLY)


def deferred_init_memmap(mm: Machine, nid: int) -> int:
    """``deferred_init_memmap()`` (kthread ``pgdatinit<nid>``) done in ascending section order.

    For each free memblock range of the node clipped to ``[first_deferred_pfn, zone end)``, in
    chunks ending at MAX_ORDER boundaries: ``deferred_init_pages`` (``__init_single_page``) then
    ``deferred_free_pages``. Returns the pages handed over. Simplified: padata's parallel jobs
    run one after another in ascending order.
    """
    first = mm.first_deferred_pfn.get(nid)
    zone = mm.node_data[nid].last_zone()
    if first is None or zone is None:
        return 0
    end = zone.zone_end_pfn
    max_nr = 1 << mm.MAX_PAGE_ORDER
    count = 0
    shift = mm.PAGE_SHIFT
    for base, limit in mm.free_mem_ranges(nid):
        spfn = max(-(-base >> shift), first)
        epfn = min(limit >> shift, end)
        while spfn < epfn:
            chunk_end = min((spfn + 1 + max_nr - 1) & ~(max_nr - 1), epfn)
            mm.store.flags_np[spfn:chunk_end] = 0  # deferred_init_pages: __init_single_page
            mm.site_range("__init_single_page", spfn, chunk_end - spfn)
            deferred_free_pages(mm, spfn, chunk_end - spfn, MIGRATE_MOVABLE)
            count += chunk_end - spfn
            spfn = chunk_end
    del mm.first_deferred_pfn[nid]
    return count


def memmap_init_reserved_pages(mm: Machine) -> None:
    """``memmap_init_reserved_pages()``: PG_reserved on every memblock.reserved range."""
    for start, end in mm.reserved_pfn_ranges:
        mm.store.flags_np[start:end] |= np.uint16(PG_reserved)


def __free_pages_memory(mm: Machine, start: int, end: int) -> None:
    """``__free_pages_memory()``: the chunking.

    >>> # [1, 159) -> (1,0) (2,1) (4,2) (8,3) (16,4) (32,5) (64,6) (128,4) (144,3) (152,2) ...
    """
    max_order = mm.MAX_PAGE_ORDER
    while start < end:
        if start:
            order = min(max_order, (start & -start).bit_length() - 1)  # __ffs(start)
        else:
            order = max_order
        while start + (1 << order) > end:
            order -= 1
        memblock_free_pages(mm, start, order)
        start += 1 << order


def memblock_free_pages(mm: Machine, pfn: int, order: int) -> None:
    """``memblock_free_pages()``: skip pfns left to deferred init, else ``__free_pages_core``."""
    from buddysim.mm.page_alloc import __free_pages_core

    first = mm.first_deferred_pfn
    if first and not mm.early_page_initialised(pfn):
        return
    __free_pages_core(mm, pfn, order, MEMINIT_EARLY)


def __free_memory_core(mm: Machine, start: int, end: int) -> int:
    """``__free_memory_core()``: byte range -> ``[PFN_UP(start), PFN_DOWN(end))``, freed."""
    start_pfn = -(-start >> mm.PAGE_SHIFT)
    end_pfn = end >> mm.PAGE_SHIFT
    end_pfn = min(end_pfn, mm.max_low_pfn)
    if start_pfn >= end_pfn:
        return 0
    __free_pages_memory(mm, start_pfn, end_pfn)
    return end_pfn - start_pfn


def free_low_memory_core_early(mm: Machine, free_ranges: Iterable[tuple[int, int]]) -> int:
    """``free_low_memory_core_early()``: reserved pages marked, then every free range freed."""
    memmap_init_reserved_pages(mm)
    count = 0
    for start, end in free_ranges:
        count += __free_memory_core(mm, start, end)
    return count


def memblock_free_all(mm: Machine, free_ranges: Iterable[tuple[int, int]]) -> int:
    """``memblock_free_all()``: managed = 0 everywhere, hand over the free ranges, totalram.

    ``free_ranges`` are byte ranges of memblock.memory minus memblock.reserved, ascending (what
    ``for_each_free_mem_range`` yields). Returns the pages counted into totalram_pages.
    """
    for zone in mm.zones:
        zone.managed_pages = 0  # reset_all_zones_managed_pages()
    pages = free_low_memory_core_early(mm, free_ranges)
    mm.totalram_pages += pages
    return pages
