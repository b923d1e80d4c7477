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

from buddysim.mm.internal import MEMINIT_EARLY
from buddysim.mm.mmzone import MIGRATE_MOVABLE
from buddysim.mm.page_store import PG_reserved

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "__free_memory_core",
    "__free_pages_memory",
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

    if not mm.early_page_initialised(pfn):
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
