"""Zones, free areas, per-cpu pagesets and nodes: include/linux/mmzone.h (Linux 7.2).

``struct free_area`` holds one list per migratetype and ``nr_free`` (blocks, not pages);
``struct zone`` the span, size accounting, watermarks, ``lowmem_reserve``, the free areas and
per-cpu pagesets; ``struct per_cpu_pages`` the pcp lists of one CPU for one zone;
``pglist_data`` a node. Lists are insertion-ordered hash maps of pfns (:class:`FreeList`) that
behave like ``list_head``: add at head or tail, unlink from the middle, take the first or
last entry, all O(1), with the order observable.

Simplified: list linkage lives in the list objects instead of ``page->buddy_list`` /
``pcp_list``; vm_stat counters are exact (no per-cpu deltas, so no /proc lag); the zone lock
and the pcp spinlock are not modelled (operations are atomic with respect to each other).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "HPAGE_PMD_ORDER",
    "MIGRATE_CMA",
    "MIGRATE_HIGHATOMIC",
    "MIGRATE_ISOLATE",
    "MIGRATE_MOVABLE",
    "MIGRATE_PCPTYPES",
    "MIGRATE_RECLAIMABLE",
    "MIGRATE_TYPES",
    "MIGRATE_UNMOVABLE",
    "NR_LOWORDER_PCP_LISTS",
    "PAGE_ALLOC_COSTLY_ORDER",
    "WMARK_HIGH",
    "WMARK_LOW",
    "WMARK_MIN",
    "WMARK_PROMO",
    "ZONE_BELOW_HIGH",
    "ZONE_BOOSTED_WATERMARK",
    "ZONE_DMA",
    "ZONE_DMA32",
    "ZONE_MOVABLE",
    "ZONE_NORMAL",
    "FreeArea",
    "FreeList",
    "PerCpuPages",
    "Zone",
    "migratetype_is_mergeable",
    "migratetype_names",
    "pglist_data",
    "zone_names",
]

# enum migratetype (CONFIG_CMA=y, CONFIG_MEMORY_ISOLATION=y: the typical distro config)
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_CMA = 4
MIGRATE_ISOLATE = 5
MIGRATE_TYPES = 6
migratetype_names = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")

# enum zone_type on x86-64 (no HIGHMEM); ZONE_DEVICE is not modelled.
ZONE_DMA = 0
ZONE_DMA32 = 1
ZONE_NORMAL = 2
ZONE_MOVABLE = 3
MAX_NR_ZONES = 4
zone_names = ("DMA", "DMA32", "Normal", "Movable")

# enum zone_watermarks
WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO = 0, 1, 2, 3

# zone->flags bits
ZONE_BOOSTED_WATERMARK = 1 << 0
ZONE_RECLAIM_ACTIVE = 1 << 1
ZONE_BELOW_HIGH = 1 << 2

PAGE_ALLOC_COSTLY_ORDER = 3
HPAGE_PMD_ORDER = 9
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)

# per_cpu_pages.flags
PCPF_PREV_FREE_HIGH_ORDER = 1 << 0
PCPF_FREE_HIGH_BATCH = 1 << 1


def migratetype_is_mergeable(mt: int) -> bool:
    """``migratetype_is_mergeable(mt)``: ``mt < MIGRATE_PCPTYPES``."""
    return mt < MIGRATE_PCPTYPES


class FreeList(OrderedDict[int, None]):
    """A ``struct list_head`` of pfns: O(1) add at head/tail, unlink, first/last entry.

    Iteration goes from the head (``list_first_entry``) to the tail.
    """

    __slots__ = ()

    def add(self, pfn: int, tail: bool) -> None:
        """``list_add`` (head) or ``list_add_tail``."""
        self[pfn] = None
        if not tail:
            self.move_to_end(pfn, last=False)

    def first(self) -> int:
        """``list_first_entry``; the list must not be empty."""
        return next(iter(self))

    def last(self) -> int:
        """``list_last_entry``; the list must not be empty."""
        return next(reversed(self))

    def __repr__(self) -> str:
        return f"FreeList({list(self)!r})"


class FreeArea:
    """``struct free_area``: ``free_list[MIGRATE_TYPES]`` and ``nr_free`` (blocks)."""

    __slots__ = ("free_list", "nr_free")

    def __init__(self) -> None:
        self.free_list: list[FreeList] = [FreeList() for _ in range(MIGRATE_TYPES)]
        self.nr_free = 0


class PerCpuPages:
    """``struct per_cpu_pages`` of one CPU for one zone."""

    __slots__ = (
        "alloc_factor",
        "batch",
        "count",
        "cpu",
        "expire",
        "flags",
        "free_count",
        "high",
        "high_max",
        "high_min",
        "lists",
    )

    def __init__(self, cpu: int, nr_pcp_lists: int) -> None:
        self.cpu = cpu
        self.count = 0
        self.high = 0
        # boot_pageset values until setup_zone_pageset() sizes it (BOOT_PAGESET_HIGH/BATCH)
        self.high_min = 0
        self.high_max = 0
        self.batch = 1
        self.flags = 0
        self.alloc_factor = 0
        self.expire = 0
        self.free_count = 0
        self.lists: list[FreeList] = [FreeList() for _ in range(nr_pcp_lists)]

    def __repr__(self) -> str:
        return (
            f"PerCpuPages(cpu={self.cpu}, count={self.count}, high={self.high}, "
            f"batch={self.batch}, high_min={self.high_min}, high_max={self.high_max})"
        )


class Zone:
    """``struct zone``: span, sizes, watermarks, lowmem_reserve, free areas, pcp, vm_stat.

    ``mm`` points back at the :class:`~buddysim.machine.Machine` that owns all state (the
    kernel reaches the same things through globals).
    """

    __slots__ = (
        "NR_FREE_CMA_PAGES",
        "NR_FREE_PAGES",
        "NR_FREE_PAGES_BLOCKS",
        "PGALLOC",
        "PGFREE",
        "_watermark",
        "cma_pages",
        "flags",
        "free_area",
        "lowmem_reserve",
        "managed_pages",
        "mm",
        "name",
        "node",
        "nr_free_highatomic",
        "nr_isolate_pageblock",
        "nr_reserved_highatomic",
        "pageset_batch",
        "pageset_high_max",
        "pageset_high_min",
        "per_cpu_pageset",
        "present_pages",
        "spanned_pages",
        "watermark_boost",
        "zone_idx",
        "zone_start_pfn",
    )

    def __init__(
        self,
        mm: Machine,
        node: int,
        zone_idx: int,
        zone_start_pfn: int,
        spanned_pages: int,
        present_pages: int,
        nr_page_orders: int,
        nr_cpus: int,
        nr_pcp_lists: int,
    ) -> None:
        self.mm = mm
        self.node = node
        self.zone_idx = zone_idx
        self.name = zone_names[zone_idx]
        self.zone_start_pfn = zone_start_pfn
        self.spanned_pages = spanned_pages
        self.present_pages = present_pages
        # zone_init_internals() estimates managed = present; memblock_free_all() resets it to 0
        self.managed_pages = present_pages
        self.cma_pages = 0
        self._watermark = [0, 0, 0, 0]
        self.watermark_boost = 0
        self.lowmem_reserve = [0] * MAX_NR_ZONES
        self.nr_reserved_highatomic = 0
        self.nr_free_highatomic = 0
        self.nr_isolate_pageblock = 0
        self.flags = 0
        self.free_area = [FreeArea() for _ in range(nr_page_orders)]
        self.per_cpu_pageset = [PerCpuPages(cpu, nr_pcp_lists) for cpu in range(nr_cpus)]
        self.pageset_high_min = 0
        self.pageset_high_max = 0
        self.pageset_batch = 1
        self.NR_FREE_PAGES = 0
        self.NR_FREE_CMA_PAGES = 0
        self.NR_FREE_PAGES_BLOCKS = 0
        self.PGALLOC = 0
        self.PGFREE = 0

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    def zone_spans_pfn(self, pfn: int) -> bool:
        return self.zone_start_pfn <= pfn < self.zone_start_pfn + self.spanned_pages

    def populated_zone(self) -> bool:
        return self.present_pages > 0

    def wmark_pages(self, w: int) -> int:
        """``wmark_pages(z, w)``: ``_watermark[w] + watermark_boost``."""
        return self._watermark[w] + self.watermark_boost

    def min_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_MIN)

    def low_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_LOW)

    def high_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_HIGH)

    def promo_wmark_pages(self) -> int:
        return self.wmark_pages(WMARK_PROMO)

    def pcp_pages(self) -> int:
        return sum(pcp.count for pcp in self.per_cpu_pageset)

    def iter_free_blocks(self) -> Iterator[tuple[int, int, int]]:
        """Every free block as (pfn, order, migratetype), list order preserved."""
        for order, free_area in enumerate(self.free_area):
            for mt, free_list in enumerate(free_area.free_list):
                for pfn in free_list:
                    yield pfn, order, mt

    def __repr__(self) -> str:
        return (
            f"Zone(node={self.node}, name={self.name!r}, start={self.zone_start_pfn:#x}, "
            f"spanned={self.spanned_pages}, present={self.present_pages}, "
            f"managed={self.managed_pages}, free={self.NR_FREE_PAGES})"
        )


class pglist_data:
    """``pg_data_t`` (``NODE_DATA(nid)``): a node's zones and CPUs."""

    __slots__ = (
        "cpus",
        "node_id",
        "node_present_pages",
        "node_spanned_pages",
        "node_start_pfn",
        "node_zones",
    )

    def __init__(self, node_id: int, node_zones: list[Zone], cpus: list[int]) -> None:
        self.node_id = node_id
        self.node_zones = node_zones
        self.cpus = cpus
        starts = [z.zone_start_pfn for z in node_zones if z.spanned_pages]
        ends = [z.zone_end_pfn for z in node_zones if z.spanned_pages]
        self.node_start_pfn = min(starts) if starts else 0
        self.node_spanned_pages = (max(ends) - self.node_start_pfn) if ends else 0
        self.node_present_pages = sum(z.present_pages for z in node_zones)

    def last_zone(self) -> Zone | None:
        """The zone that ends where the node ends (the one ``defer_init`` defers)."""
        end = self.node_start_pfn + self.node_spanned_pages
        for z in reversed(self.node_zones):
            if z.spanned_pages and z.zone_end_pfn == end:
                return z
        return None
