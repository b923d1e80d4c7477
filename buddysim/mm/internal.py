"""mm/internal.h helpers: FPI and ALLOC flags, buddy helpers, pageblock types, set_page_refcounted.

Pages are pfns. Functions that the kernel writes against ``struct page`` take the page store
(or the zone, which reaches it through ``zone.mm``).

Simplified: the pageblock bitmap is one uint8 per pageblock (3 bits of migratetype plus the
7.2 ``PB_migrate_isolate`` bit); ``PB_compact_skip`` is not modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buddysim.mm.mmzone import MIGRATE_ISOLATE, MIGRATE_PCPTYPES, MIGRATE_UNMOVABLE
from buddysim.mm.page_store import PageStore, PG_buddy, PG_tail
from buddysim.refcount.page_ref import DebugCheck, DebugVM

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "ALLOC_CMA",
    "ALLOC_CPUSET",
    "ALLOC_HIGHATOMIC",
    "ALLOC_KSWAPD",
    "ALLOC_MIN_RESERVE",
    "ALLOC_NOFRAGMENT",
    "ALLOC_NON_BLOCK",
    "ALLOC_NO_WATERMARKS",
    "ALLOC_OOM",
    "ALLOC_RESERVES",
    "ALLOC_WMARK_HIGH",
    "ALLOC_WMARK_LOW",
    "ALLOC_WMARK_MASK",
    "ALLOC_WMARK_MIN",
    "FPI_NONE",
    "FPI_PREPARED",
    "FPI_SKIP_REPORT_NOTIFY",
    "FPI_TO_TAIL",
    "FPI_TRYLOCK",
    "MEMINIT_EARLY",
    "MEMINIT_HOTPLUG",
    "PB_migrate_isolate",
    "__find_buddy_pfn",
    "buddy_order",
    "change_pageblock_range",
    "clear_pageblock_isolate",
    "get_pageblock_migratetype",
    "get_pfnblock_migratetype",
    "set_buddy_order",
    "set_page_refcounted",
    "set_pageblock_migratetype",
]

# fpi_t (page_alloc.c, 7.2)
FPI_NONE = 0
FPI_SKIP_REPORT_NOTIFY = 1 << 0
FPI_TO_TAIL = 1 << 1
FPI_TRYLOCK = 1 << 2
FPI_PREPARED = 1 << 3

# ALLOC_* (mm/internal.h)
ALLOC_WMARK_MIN = 0
ALLOC_WMARK_LOW = 1
ALLOC_WMARK_HIGH = 2
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_TRYLOCK = 0x400
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

# enum meminit_context
MEMINIT_EARLY = 0
MEMINIT_HOTPLUG = 1

#: 7.2 pageblock-flags.h: a separate isolate bit; the 3-bit type is remembered underneath
PB_migrate_isolate = 1 << 3
_PB_MIGRATETYPE_MASK = 0x7


def __find_buddy_pfn(page_pfn: int, order: int) -> int:
    """``__find_buddy_pfn()``: ``page_pfn ^ (1 << order)``."""
    return page_pfn ^ (1 << order)


def buddy_order(store: PageStore, page: int) -> int:
    """``buddy_order(page)``: ``page_private(page)`` of a free-block head."""
    return store.private[page]


def set_buddy_order(store: PageStore, page: int, order: int) -> None:
    """``set_buddy_order()``: ``set_page_private(page, order)`` and ``__SetPageBuddy(page)``."""
    store.private[page] = order
    store.flags[page] |= PG_buddy


def get_pfnblock_migratetype(store: PageStore, pfn: int) -> int:
    """``get_pfnblock_migratetype()``: MIGRATE_ISOLATE if the isolate bit is set, else the type."""
    bits = store.pageblock_mt[pfn >> store.pageblock_order]
    return MIGRATE_ISOLATE if bits & PB_migrate_isolate else bits & _PB_MIGRATETYPE_MASK


get_pageblock_migratetype = get_pfnblock_migratetype


def set_pageblock_migratetype(store: PageStore, pfn: int, migratetype: int) -> None:
    """``set_pageblock_migratetype()``: store the 3-bit type, keep the isolate bit.

    With mobility grouping disabled (tiny machines) every pcp type is stored as UNMOVABLE.

    Setting MIGRATE_ISOLATE sets the isolate bit instead (``set_pageblock_isolate``).
    """
    if store.page_group_by_mobility_disabled and migratetype < MIGRATE_PCPTYPES:
        migratetype = MIGRATE_UNMOVABLE
    idx = pfn >> store.pageblock_order
    bits = store.pageblock_mt[idx]
    if migratetype == MIGRATE_ISOLATE:
        store.pageblock_mt[idx] = bits | PB_migrate_isolate
    else:
        store.pageblock_mt[idx] = (bits & PB_migrate_isolate) | migratetype


def clear_pageblock_isolate(store: PageStore, pfn: int) -> None:
    """``clear_pageblock_isolate()``: drop the isolate bit; the underlying type reappears."""
    idx = pfn >> store.pageblock_order
    store.pageblock_mt[idx] = store.pageblock_mt[idx] & ~PB_migrate_isolate & 0xFF


def change_pageblock_range(store: PageStore, pageblock_page: int, start_order: int, migratetype: int) -> None:
    """``change_pageblock_range()``: retag every pageblock a block of ``start_order`` covers."""
    nr_pageblocks = 1 << max(start_order - store.pageblock_order, 0)
    step = 1 << store.pageblock_order
    for i in range(nr_pageblocks):
        set_pageblock_migratetype(store, pageblock_page + i * step, migratetype)


_SET_REFCOUNTED_TAIL = DebugCheck("VM_BUG_ON_PAGE", "set_page_refcounted", "PageTail(page)")
_SET_REFCOUNTED_COUNT = DebugCheck("VM_BUG_ON_PAGE", "set_page_refcounted", "page_ref_count(page)")


def set_page_refcounted(mm: Machine, page: int) -> None:
    """mm/internal.h ``set_page_refcounted()``: the allocation side's "unfreeze".

    ``VM_BUG_ON_PAGE(PageTail(page))``; ``VM_BUG_ON_PAGE(page_ref_count(page))``; then the
    version's write at the ``set_page_refcounted`` call site (``set_page_count(page, 1)`` or
    ``init_page_count(page)``), which clears a frozen bit and any stale increments.
    """
    refs = mm.refs
    if refs.debug_vm is not DebugVM.OFF:
        if mm.store.flags[page] & PG_tail:
            refs.vm_check(_SET_REFCOUNTED_TAIL, True, page, refs.atomic_read(page))
        if refs.page_ref_count(page) != 0:
            refs.vm_check(_SET_REFCOUNTED_COUNT, True, page, refs.atomic_read(page))
    mm.site("set_page_refcounted", page)
