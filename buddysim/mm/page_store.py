"""The page store: the ``struct page`` fields the allocator uses, as compact per-pfn arrays.

Linux keeps one ``struct page`` (64 bytes) per page frame. buddysim keeps only the fields
the allocator reads, each in its own array indexed by pfn, so a 1 TiB machine (268M pages)
costs 7 bytes per page: ``_refcount`` (int32), ``flags`` (uint16) and ``private`` (uint8: the
buddy order of a free-block head; on the first tail page of a compound page, the folio order,
which the kernel keeps in that page's ``_flags_1``). Per-pageblock migratetypes (with the 7.2
``PB_migrate_isolate`` bit) live in their own uint8 array. Scalar reads and writes go through memoryviews
(fast in CPython); range operations go through numpy views of the same buffers.

Simplified: list linkage (``buddy_list``/``pcp_list``) is not stored per page; the free lists
hold their members themselves (see mm/mmzone.py). ``mapping``/``memcg_data`` and
``_mapcount`` are flag bits (non-NULL / mapped or not); PG_lru marks pages allocated movable.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PAGE_FLAGS_CHECK_AT_FREE",
    "PAGE_FLAGS_CHECK_AT_PREP",
    "PG_buddy",
    "PG_head",
    "PG_hwpoison",
    "PG_locked",
    "PG_lru",
    "PG_mapped",
    "PG_mapping",
    "PG_offline",
    "PG_pcp",
    "PG_pfmemalloc",
    "PG_reserved",
    "PG_tail",
    "PageStore",
]

# Flag bits of the uint16 ``flags`` array. Only the states the allocator checks are kept.
PG_head = 1 << 0  # compound head (PG_head)
PG_tail = 1 << 1  # compound tail (page->compound_head & 1)
PG_reserved = 1 << 2  # PG_reserved: memblock-reserved or hole, never in the buddy
PG_buddy = 1 << 3  # page_type PGTY_buddy: head of a free buddy block
PG_pcp = 1 << 4  # on a per-cpu list (the kernel knows it from pcp_list linkage)
PG_offline = 1 << 5  # page_type PGTY_offline: hotplugged, not yet onlined
PG_mapping = 1 << 6  # page->mapping != NULL (or memcg_data != 0)
PG_mapped = 1 << 7  # _mapcount != -1
PG_lru = 1 << 8  # PG_lru: here, "allocated with a movable migratetype" (try_to_claim_block)
PG_locked = 1 << 9  # PG_locked (stands for any other PAGE_FLAGS_CHECK_AT_FREE flag)
PG_hwpoison = 1 << 10  # PG_hwpoison
PG_pfmemalloc = 1 << 11  # page->pfmemalloc (page_frag_cache)
#: mm/page-flags.h PAGE_FLAGS_CHECK_AT_FREE, restricted to the bits modelled (PG_lru is
#: cleared by the free path itself here: it only marks movable allocations)
PAGE_FLAGS_CHECK_AT_FREE = PG_locked | PG_reserved
#: PAGE_FLAGS_CHECK_AT_PREP: every page flag (the mapcount/mapping stand-ins and PageBuddy,
#: a page_type in _mapcount, are reasons of their own; hwpoison is treated apart by
#: check_new_page_bad)
PAGE_FLAGS_CHECK_AT_PREP = ~(PG_mapping | PG_mapped | PG_buddy | PG_hwpoison) & 0xFFFF


class PageStore:
    """Per-pfn state for pfns ``[0, end_pfn)`` (one array per field, no per-page objects).

    >>> s = PageStore(1024, pageblock_order=9)
    >>> s.refcount[5] = 1; s.refcount_np[:4] = 0; int(s.refcount_np[5])
    1
    """

    __slots__ = (
        "end_pfn",
        "flags",
        "flags_np",
        "page_group_by_mobility_disabled",
        "pageblock_mt",
        "pageblock_mt_np",
        "pageblock_order",
        "private",
        "private_np",
        "refcount",
        "refcount_np",
    )

    def __init__(self, end_pfn: int, pageblock_order: int = 9) -> None:
        if end_pfn <= 0:
            raise ValueError(f"end_pfn must be positive, got {end_pfn}")
        self.end_pfn = end_pfn
        self.pageblock_order = pageblock_order
        #: set by build_all_zonelists() on machines too small for mobility grouping
        self.page_group_by_mobility_disabled = False
        # Fresh struct pages start as memblock leaves them before memmap init: zeroed.
        self.refcount_np = np.zeros(end_pfn, dtype=np.int32)
        self.flags_np = np.zeros(end_pfn, dtype=np.uint16)
        self.private_np = np.zeros(end_pfn, dtype=np.uint8)
        nr_pageblocks = (end_pfn + (1 << pageblock_order) - 1) >> pageblock_order
        self.pageblock_mt_np = np.zeros(nr_pageblocks, dtype=np.uint8)
        # memoryviews over the same buffers: scalar access without numpy scalar boxing
        self.refcount = memoryview(self.refcount_np).cast("B").cast("i")
        self.flags = memoryview(self.flags_np).cast("B").cast("H")
        self.private = memoryview(self.private_np)
        self.pageblock_mt = memoryview(self.pageblock_mt_np)

    def grow(self, end_pfn: int) -> None:
        """Extend the memmap to ``end_pfn`` (memory hotplug's ``sparse_add_section``).

        New pfns start as holes (PG_reserved, as memmap_init leaves pfns no memory range covers)
        until the onlined range is initialised. The memoryviews are rebuilt: holders of the old
        views (the refcount model) must re-read them.
        """
        if end_pfn <= self.end_pfn:
            return
        extra = end_pfn - self.end_pfn
        self.refcount_np = np.concatenate([self.refcount_np, np.zeros(extra, dtype=np.int32)])
        self.flags_np = np.concatenate([self.flags_np, np.full(extra, PG_reserved, dtype=np.uint16)])
        self.private_np = np.concatenate([self.private_np, np.zeros(extra, dtype=np.uint8)])
        nr_pageblocks = (end_pfn + (1 << self.pageblock_order) - 1) >> self.pageblock_order
        more = nr_pageblocks - len(self.pageblock_mt_np)
        if more > 0:
            self.pageblock_mt_np = np.concatenate([self.pageblock_mt_np, np.zeros(more, dtype=np.uint8)])
        self.end_pfn = end_pfn
        self.refcount = memoryview(self.refcount_np).cast("B").cast("i")
        self.flags = memoryview(self.flags_np).cast("B").cast("H")
        self.private = memoryview(self.private_np)
        self.pageblock_mt = memoryview(self.pageblock_mt_np)

    # -- accounting -------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by all per-page and per-pageblock arrays."""
        return int(
            self.refcount_np.nbytes
            + self.flags_np.nbytes
            + self.private_np.nbytes
            + self.pageblock_mt_np.nbytes
        )

    @property
    def bytes_per_page(self) -> float:
        return self.nbytes / self.end_pfn

    # -- struct page helpers ------------------------------------------------------------
    def compound_head(self, pfn: int) -> int:
        """``compound_head(page)``: the head pfn of the compound page holding ``pfn``.

        Simplified: the kernel reads ``page->compound_head``; here the head is found by
        testing the naturally aligned candidates (at most MAX_PAGE_ORDER probes), which
        works because compound pages from the buddy allocator are naturally aligned.
        """
        flags = self.flags
        if not flags[pfn] & PG_tail:
            return pfn
        private = self.private
        for k in range(1, 31):
            head = pfn & ~((1 << k) - 1)
            if flags[head] & PG_head and private[head + 1] >= k:
                return head
            if head == 0:
                break
        return pfn

    def compound_order(self, pfn: int) -> int:
        """``compound_order(page)``: the folio order of a head page, 0 otherwise."""
        return self.private[pfn + 1] if self.flags[pfn] & PG_head else 0

    def test_flags(self, pfn: int, mask: int) -> bool:
        return bool(self.flags[pfn] & mask)

    def set_flags_range(self, start: int, nr: int, mask: int) -> None:
        self.flags_np[start : start + nr] |= np.uint16(mask)

    def clear_flags_range(self, start: int, nr: int, mask: int) -> None:
        self.flags_np[start : start + nr] &= np.uint16(~mask & 0xFFFF)
