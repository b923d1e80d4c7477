"""/proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo, the extfrag debugfs files and crash ``kmem -f``.

Named after mm/vmstat.c (Linux 7.2), which renders the first five from ``struct zone``; crash's
``kmem -f`` (crash-utility ``memory.c``: ``dump_free_pages_zones_v2`` and
``dump_zone_free_area``) is the sixth view of the same free areas. Every renderer is a pure
function of a :class:`~buddysim.machine.Machine` returning the text the kernel (or crash)
would print, byte for byte, so existing /proc parsers read ours unchanged; the spec is
kernel-allocator.md §10 and formats-and-metrics.md §2-§3. :func:`vmstat_json` gives the same
facts as one JSON-able dict, and :func:`fragmentation_index` / :func:`unusable_free_index`
the two fragmentation metrics as the kernel's ×1000 integers.

Configuration rendered (a distro x86-64 build): CONFIG_NUMA, CONFIG_SMP, CONFIG_COMPACTION,
CONFIG_DEBUG_FS, CONFIG_CMA and CONFIG_MEMORY_ISOLATION (six migratetypes), CONFIG_ZSMALLOC,
CONFIG_SWAP, CONFIG_IOMMU_SUPPORT, CONFIG_NUMA_BALANCING, CONFIG_HUGETLB_PAGE; no
CONFIG_PAGE_OWNER (so pagetypeinfo has no "Number of mixed blocks" table: the kernel prints it
only when page_owner is compiled in and enabled), no CONFIG_UNACCEPTED_MEMORY (no
``nr_unaccepted``, as in the spec's §10.3 example), no CONFIG_SHADOW_CALL_STACK (arm64 only).

Simplified: the model keeps no LRU, slab, file-page, memcg, reclaim or NUMA-event state, so
every per-node stat, the LRU/mlock/zspages zone stats, the numa_* events and
``node_unreclaimable`` are printed as 0, which is what the kernel prints for a machine whose
only activity is the page allocator's (names are kept, as the spec asks). The vm_stat
counters are exact (no per-cpu deltas), so ``nr_free_pages`` never lags the lists the way it
can on a live kernel. ``vm stats threshold`` is ``calculate_normal_threshold()`` (the value
``refresh_zone_stat_thresholds()`` sets; kswapd's temporary pressure threshold is not
modelled).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buddysim.mm.internal import get_pageblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_TYPES,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    Zone,
    migratetype_names,
)

if TYPE_CHECKING:
    from buddysim.machine import Machine
    from buddysim.mm.mmzone import pglist_data

__all__ = [
    "MAX_RECLAIM_RETRIES",
    "NODE_STAT_ITEMS",
    "NUMA_STAT_ITEMS",
    "SCHEMA_VERSION",
    "ZONE_STAT_ITEMS",
    "__fragmentation_index",
    "__unusable_free_index",
    "calculate_normal_threshold",
    "contig_page_info",
    "extfrag_for_order",
    "extfrag_index",
    "fill_contig_page_info",
    "frag_show",
    "fragmentation_index",
    "is_zone_first_populated",
    "kmem_f",
    "pagetypeinfo_show",
    "unusable_free_index",
    "unusable_index",
    "vmstat_json",
    "zoneinfo_show",
]

#: :func:`vmstat_json` layout version
SCHEMA_VERSION = 1

#: mm/internal.h: ``pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES`` is "node_unreclaimable"
MAX_RECLAIM_RETRIES = 16

#: pagetypeinfo_showfree_print() stops counting a free list here and prints ">" before the cap
_FREE_LIST_WALK_CAP = 100000

# vmstat_text[] (mm/vmstat.c), the names of enum zone_stat_item, numa_stat_item and
# node_stat_item in the configuration above. The zone list is the spec's 7.2 list
# (kernel-allocator.md §10.3: nr_bounce gone, nr_free_pages_blocks added). The spec does not
# list the node stats; these are the node_stat_item names of a mainline vmstat.c from the
# 7.x cycle (the one whose zoneinfo already prints reserved_highatomic/free_highatomic and
# tests kswapd_test_hopeless()): NR_WRITEBACK_TEMP removed, pgsteal/pgscan/pgrefill moved to
# node stats, nr_vmalloc, nr_kernel_file_pages and nr_gpu_* added. If 7.2 differs, only this
# tuple changes: every value is 0 in the model.
ZONE_STAT_ITEMS: tuple[str, ...] = (
    "nr_free_pages",
    "nr_free_pages_blocks",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_zspages",  # CONFIG_ZSMALLOC
    "nr_free_cma",
)

NUMA_STAT_ITEMS: tuple[str, ...] = (
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_interleave",
    "numa_local",
    "numa_other",
)

NODE_STAT_ITEMS: tuple[str, ...] = (
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_isolated_anon",
    "nr_isolated_file",
    "workingset_nodes",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "nr_anon_pages",
    "nr_mapped",
    "nr_file_pages",
    "nr_dirty",
    "nr_writeback",
    "nr_shmem",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_hugepages",
    "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
    "nr_vmalloc",
    "nr_kernel_stack",
    "nr_page_table_pages",
    "nr_sec_page_table_pages",
    "nr_iommu_pages",  # CONFIG_IOMMU_SUPPORT
    "nr_swapcached",  # CONFIG_SWAP
    "pgpromote_success",  # CONFIG_NUMA_BALANCING
    "pgpromote_candidate",
    "pgpromote_candidate_nrl",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgdemote_khugepaged",
    "pgdemote_proactive",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgsteal_khugepaged",
    "pgsteal_proactive",
    "pgsteal_anon",
    "pgsteal_file",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_khugepaged",
    "pgscan_proactive",
    "pgscan_anon",
    "pgscan_file",
    "pgrefill",
    "nr_hugetlb",  # CONFIG_HUGETLB_PAGE
    "nr_balloon_pages",
    "nr_kernel_file_pages",
    "nr_gpu_active",
    "nr_gpu_reclaim",
)

_ULONG_MASK = (1 << 64) - 1


def _lu(value: int) -> int:
    """``%lu`` of an ``unsigned long`` (a corrupted negative count wraps, as in C)."""
    return value & _ULONG_MASK


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero; Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_mod(a: int, b: int) -> int:
    """C ``%``: the remainder takes the sign of the dividend."""
    return a - b * _c_div(a, b)


def _s32(value: int) -> int:
    """An ``unsigned long`` expression returned as ``int``: keep the low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _populated_zone(zone: Zone) -> bool:
    """``populated_zone()``: ``zone->present_pages != 0``."""
    return zone.present_pages > 0


def _node_has_memory(pgdat: pglist_data) -> bool:
    """``node_state(nid, N_MEMORY)``: the node has a populated zone."""
    return any(_populated_zone(z) for z in pgdat.node_zones)


def _walk_zones_in_node(pgdat: pglist_data, assert_populated: bool) -> Iterator[Zone]:
    """``walk_zones_in_node()``: the node's zones in index order (populated ones only if asked)."""
    for zone in pgdat.node_zones:
        if assert_populated and not _populated_zone(zone):
            continue
        yield zone


def _zone_page_state(value: int) -> int:
    """``zone_page_state()``: a vm_stat counter, clamped at 0 (CONFIG_SMP)."""
    return max(value, 0)


# ---------------------------------------------------------------------------- fragmentation


@dataclass(frozen=True, slots=True)
class contig_page_info:
    """``struct contig_page_info``: what ``fill_contig_page_info()`` gathers for one order."""

    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def fill_contig_page_info(zone: Zone, suitable_order: int) -> contig_page_info:
    """``fill_contig_page_info(zone, suitable_order, info)``: free pages, free blocks, and blocks
    of at least ``suitable_order`` (counted in ``suitable_order`` units), from ``nr_free``.

    Reads only ``zone->free_area[order].nr_free`` (blocks, every migratetype), as the kernel
    does; pcp pages are not free here.
    """
    free_pages = free_blocks_total = free_blocks_suitable = 0
    for order, area in enumerate(zone.free_area):
        blocks = area.nr_free
        free_blocks_total += blocks
        free_pages += blocks << order
        if order >= suitable_order:
            free_blocks_suitable += blocks << (order - suitable_order)
    return contig_page_info(free_pages, free_blocks_total, free_blocks_suitable)


def __fragmentation_index(order: int, info: contig_page_info, max_page_order: int = 10) -> int:
    """``__fragmentation_index(order, info)``: ×1000; -1000 when a suitable block exists.

    ``1000 - div_u64(1000 + div_u64(free_pages * 1000, 1 << order), free_blocks_total)``, in
    unsigned arithmetic returned as ``int``. The result is not confined to [0, 1000]: with few,
    nearly large enough blocks it goes negative (one free order-0 page: -500 at order 1).
    """
    requested = 1 << order
    if order > max_page_order:  # WARN_ON_ONCE(order > MAX_PAGE_ORDER)
        return 0
    if not info.free_blocks_total:
        return 0
    if info.free_blocks_suitable:
        return -1000
    return _s32(1000 - (1000 + (info.free_pages * 1000) // requested) // info.free_blocks_total)


def fragmentation_index(zone: Zone, order: int) -> int:
    """``fragmentation_index(zone, order)``: why an order-``order`` allocation would fail, ×1000.

    ``struct zone *zone``, ``unsigned int order``. Near 0: lack of memory; near 1000: external
    fragmentation (compaction is worth it above ``vm.extfrag_threshold``, 500); -1000: the
    allocation would succeed.

    >>> from buddysim.machine import Machine
    >>> mm = Machine.simple(1024, zones=[(0, 1024)]); _ = mm.boot()
    >>> fragmentation_index(mm.zones[0], 10)
    -1000
    """
    return __fragmentation_index(order, fill_contig_page_info(zone, order), len(zone.free_area) - 1)


def __unusable_free_index(order: int, info: contig_page_info) -> int:
    """``unusable_free_index(order, info)`` (static in vmstat.c): share of free memory in blocks
    smaller than ``1 << order``, ×1000; 1000 when nothing is free."""
    if info.free_pages == 0:
        return 1000
    return ((info.free_pages - (info.free_blocks_suitable << order)) * 1000) // info.free_pages


def unusable_free_index(zone: Zone, order: int) -> int:
    """The unusable free space index of ``zone`` at ``order``, ×1000 (0: none of the free
    memory is unusable for such an allocation; 1000: all of it is)."""
    return __unusable_free_index(order, fill_contig_page_info(zone, order))


def extfrag_for_order(zone: Zone, order: int) -> int:
    """``extfrag_for_order()``: percentage of free pages in blocks smaller than ``1 << order``
    (0 when nothing is free); what compaction's proactiveness score uses."""
    info = fill_contig_page_info(zone, order)
    if info.free_pages == 0:
        return 0
    return ((info.free_pages - (info.free_blocks_suitable << order)) * 100) // info.free_pages


def _index_text(index: int, width: int) -> str:
    """``"%Nd.%03d "`` of ``index / 1000, index % 1000`` with C division (so -500 prints
    ``0.-500``, exactly as the kernel does)."""
    return f"{_c_div(index, 1000):{width}d}.{_c_mod(index, 1000):03d} "


def unusable_show_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """One row of /sys/kernel/debug/extfrag/unusable_index (``"%d.%03d "`` per order)."""
    row = [f"Node {pgdat.node_id}, zone {zone.name:>8s} "]
    for order in range(mm.NR_PAGE_ORDERS):
        row.append(_index_text(__unusable_free_index(order, fill_contig_page_info(zone, order)), 0))
    row.append("\n")
    return "".join(row)


def extfrag_show_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """One row of /sys/kernel/debug/extfrag/extfrag_index (``"%2d.%03d "`` per order)."""
    row = [f"Node {pgdat.node_id}, zone {zone.name:>8s} "]
    for order in range(mm.NR_PAGE_ORDERS):
        info = fill_contig_page_info(zone, order)
        row.append(_index_text(__fragmentation_index(order, info, mm.MAX_PAGE_ORDER), 2))
    row.append("\n")
    return "".join(row)


def unusable_index(mm: Machine) -> str:
    """/sys/kernel/debug/extfrag/unusable_index (``unusable_show``): populated zones of nodes
    with memory, one row each.

    >>> from buddysim.machine import Machine
    >>> mm = Machine.simple(1024, zones=[(0, 1024)]); _ = mm.boot()
    >>> unusable_index(mm)
    'Node 0, zone      DMA 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 \\n'
    """
    out = []
    for pgdat in mm.node_data:
        if not _node_has_memory(pgdat):
            continue
        out.extend(unusable_show_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, True))
    return "".join(out)


def extfrag_index(mm: Machine) -> str:
    """/sys/kernel/debug/extfrag/extfrag_index (``extfrag_show``): populated zones, one row each."""
    out = []
    for pgdat in mm.node_data:
        out.extend(extfrag_show_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, True))
    return "".join(out)


# ---------------------------------------------------------------------------- /proc/buddyinfo


def frag_show_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """One /proc/buddyinfo row: ``"Node %d, zone %8s "``, ``"%6lu "`` per order, newline."""
    counts = "".join(f"{_lu(area.nr_free):6d} " for area in zone.free_area)
    return f"Node {pgdat.node_id}, zone {zone.name:>8s} {counts}\n"


def frag_show(mm: Machine) -> str:
    """/proc/buddyinfo: free blocks per order (all migratetypes, pcp excluded) of every
    populated zone of every node. Each row ends with a space before the newline.

    >>> from buddysim.machine import Machine
    >>> mm = Machine.simple(1024, zones=[(0, 1024)]); _ = mm.boot()
    >>> frag_show(mm)
    'Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      1 \\n'
    """
    out = []
    for pgdat in mm.node_data:
        out.extend(frag_show_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, True))
    return "".join(out)


# ---------------------------------------------------------------------------- /proc/pagetypeinfo


def pagetypeinfo_showfree_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """Rows of the free-list table: one per migratetype, the length of each free list per order
    (``>100000`` when the kernel's capped walk would stop)."""
    out = []
    for mtype in range(MIGRATE_TYPES):
        out.append(f"Node {pgdat.node_id:4d}, zone {zone.name:>8s}, type {migratetype_names[mtype]:>12s} ")
        for area in zone.free_area:
            freecount = len(area.free_list[mtype])
            overflow = freecount >= _FREE_LIST_WALK_CAP
            if overflow:
                freecount = _FREE_LIST_WALK_CAP
            out.append(f"{'>' if overflow else ''}{freecount:6d} ")
        out.append("\n")
    return "".join(out)


def pagetypeinfo_showblockcount_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """One row of the pageblock table: pageblocks per migratetype, stepping from
    ``zone_start_pfn`` by ``pageblock_nr_pages`` (an unaligned zone start counts the blocks its
    steps land in, as the kernel does)."""
    count = [0] * MIGRATE_TYPES
    store = mm.store
    for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, mm.pageblock_nr_pages):
        if pfn >= store.end_pfn or mm.page_zone(pfn) is not zone:  # pfn_to_online_page, page_zone
            continue
        mtype = get_pageblock_migratetype(store, pfn)
        if mtype < MIGRATE_TYPES:
            count[mtype] += 1
    cells = "".join(f"{c:12d} " for c in count)
    return f"Node {pgdat.node_id}, zone {zone.name:>8s} {cells}\n"


def pagetypeinfo_show(mm: Machine) -> str:
    """/proc/pagetypeinfo: per node with memory, the pageblock size header, free list lengths
    per migratetype and order, and pageblocks per migratetype.

    There is no "Number of mixed blocks" table: the kernel prints it only with CONFIG_PAGE_OWNER
    and page_owner enabled (``pagetypeinfo_showmixedcount``), and the model has no page_owner.
    """
    names = "".join(f"{name:>12s} " for name in migratetype_names)
    orders = "".join(f"{order:6d} " for order in range(mm.NR_PAGE_ORDERS))
    out = []
    for pgdat in mm.node_data:
        if not _node_has_memory(pgdat):
            continue
        out.append(f"Page block order: {mm.pageblock_order}\n")
        out.append(f"Pages per block:  {mm.pageblock_nr_pages}\n")
        out.append("\n")
        out.append(f"{'Free pages count per migrate type at order':<43s} {orders}\n")
        out.extend(pagetypeinfo_showfree_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, True))
        out.append(f"\n{'Number of blocks type ':<23s}{names}\n")
        out.extend(pagetypeinfo_showblockcount_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, True))
    return "".join(out)


# ---------------------------------------------------------------------------- /proc/zoneinfo


def is_zone_first_populated(pgdat: pglist_data, zone: Zone) -> bool:
    """``is_zone_first_populated()``: ``zone`` is the node's lowest populated zone."""
    for compare in pgdat.node_zones:
        if _populated_zone(compare):
            return compare is zone
    return False


def calculate_normal_threshold(zone: Zone, nr_online_cpus: int | None = None) -> int:
    """``calculate_normal_threshold(zone)``: the per-cpu vm_stat drift threshold.

    ``2 * fls(num_online_cpus()) * (1 + fls(managed >> (27 - PAGE_SHIFT)))``, at most 125 (the
    memory term counts 128 MiB units).
    """
    cpus = zone.mm.nr_cpus if nr_online_cpus is None else nr_online_cpus
    mem = zone.managed_pages >> (27 - zone.mm.PAGE_SHIFT)
    return min(125, 2 * cpus.bit_length() * (1 + mem.bit_length()))


def _zone_stat_values(zone: Zone) -> tuple[int, ...]:
    """enum zone_stat_item values in :data:`ZONE_STAT_ITEMS` order (0 for what is not modelled)."""
    values = {
        "nr_free_pages": zone.NR_FREE_PAGES,
        "nr_free_pages_blocks": zone.NR_FREE_PAGES_BLOCKS,
        "nr_free_cma": zone.NR_FREE_CMA_PAGES,
    }
    return tuple(_zone_page_state(values.get(name, 0)) for name in ZONE_STAT_ITEMS)


def zoneinfo_show_print(mm: Machine, pgdat: pglist_data, zone: Zone) -> str:
    """One zone of /proc/zoneinfo (7.2 layout: boost/promo/cma lines, the five pcp fields, the
    highatomic lines), including the per-node stats on the node's first populated zone."""
    out = [f"Node {pgdat.node_id}, zone {zone.name:>8s}"]
    if is_zone_first_populated(pgdat, zone):
        out.append("\n  per-node stats")
        # node_page_state_pages(): no node stat is modelled (THP items would be / HPAGE_PMD_NR)
        out.extend(f"\n      {name:<12s} 0" for name in NODE_STAT_ITEMS)
    out.append(
        f"\n  pages free     {_zone_page_state(zone.NR_FREE_PAGES)}"
        f"\n        boost    {_lu(zone.watermark_boost)}"
        f"\n        min      {_lu(zone.wmark_pages(WMARK_MIN))}"
        f"\n        low      {_lu(zone.wmark_pages(WMARK_LOW))}"
        f"\n        high     {_lu(zone.wmark_pages(WMARK_HIGH))}"
        f"\n        promo    {_lu(zone.wmark_pages(WMARK_PROMO))}"
        f"\n        spanned  {_lu(zone.spanned_pages)}"
        f"\n        present  {_lu(zone.present_pages)}"
        f"\n        managed  {_lu(zone.managed_pages)}"
        f"\n        cma      {_lu(zone.cma_pages)}"
    )
    reserve = zone.lowmem_reserve
    out.append(f"\n        protection: ({reserve[0]}")
    out.extend(f", {r}" for r in reserve[1:])
    out.append(")")
    if not _populated_zone(zone):
        out.append("\n")
        return "".join(out)
    for name, value in zip(ZONE_STAT_ITEMS, _zone_stat_values(zone), strict=True):
        out.append(f"\n      {name:<12s} {value}")
    # CONFIG_NUMA: zone_statistics() is not modelled, so every numa event is 0
    out.extend(f"\n      {name:<12s} 0" for name in NUMA_STAT_ITEMS)
    out.append("\n  pagesets")
    threshold = calculate_normal_threshold(zone)
    for cpu in range(mm.nr_cpus):  # for_each_online_cpu
        pcp = zone.per_cpu_pageset[cpu]
        out.append(
            f"\n    cpu: {cpu}"
            f"\n              count:    {pcp.count}"
            f"\n              high:     {pcp.high}"
            f"\n              batch:    {pcp.batch}"
            f"\n              high_min: {pcp.high_min}"
            f"\n              high_max: {pcp.high_max}"
            f"\n  vm stats threshold: {threshold}"
        )
    out.append(
        "\n  node_unreclaimable:  0"  # kswapd_failures >= MAX_RECLAIM_RETRIES; no kswapd here
        f"\n  start_pfn:           {_lu(zone.zone_start_pfn)}"
        f"\n  reserved_highatomic: {_lu(zone.nr_reserved_highatomic)}"
        f"\n  free_highatomic:     {_lu(zone.nr_free_highatomic)}"
        "\n"
    )
    return "".join(out)


def zoneinfo_show(mm: Machine) -> str:
    """/proc/zoneinfo: every zone of every node, populated or not (unpopulated zones stop after
    ``protection:``), in the 7.2 layout of kernel-allocator.md §10.3."""
    out = []
    for pgdat in mm.node_data:
        out.extend(zoneinfo_show_print(mm, pgdat, z) for z in _walk_zones_in_node(pgdat, False))
    return "".join(out)


# ---------------------------------------------------------------------------- crash kmem -f

# crash prints kernel virtual addresses (mem_map, the free_list heads), which a simulation does
# not have. They are synthetic but x86-64 shaped, so layouts and strides read like a real dump:
# mem_map is the vmemmap page of the zone's first pfn (vmemmap_base 0xffffea0000000000 without
# KASLR, 64-byte struct page), and &zone->free_area[order].free_list[mt] steps by
# sizeof(struct list_head) = 16 per migratetype and sizeof(struct free_area) = 6 * 16 + 8 = 104
# per order. Zones sit in a made-up pg_data_t per node (_PGDAT_BASE + nid * _PGDAT_STRIDE) at
# a made-up sizeof(struct zone); only the strides above mean anything.
_VMEMMAP_BASE = 0xFFFFEA0000000000
_SIZEOF_STRUCT_PAGE = 64
_PGDAT_BASE = 0xFFFF88807FFD5000
_PGDAT_STRIDE = 0x40000000
_NODE_ZONES_OFFSET = 0x0
_SIZEOF_STRUCT_ZONE = 0x680
_FREE_AREA_OFFSET = 0xC0
_SIZEOF_LIST_HEAD = 16
_SIZEOF_FREE_AREA = MIGRATE_TYPES * _SIZEOF_LIST_HEAD + 8
#: crash's VADDR_PRLEN on a 64-bit target
_VADDR_PRLEN = 16
_ZONE_HDR = "ZONE  NAME        SIZE    FREE"
_FREE_AREA_HDR4 = "AREA    SIZE  FREE_AREA_STRUCT  BLOCKS  PAGES\n"


def _mkstring(text: str, size: int, rjust: bool = False) -> str:
    """crash ``mkstring(s, size, CENTER[|LJUST|RJUST], ...)``: centre ``text`` in ``size``
    columns; an odd spare column goes right (LJUST or no justify flag) or left (RJUST)."""
    extra = size - len(text)
    if extra <= 0:
        return text
    left = extra // 2 + (extra % 2 if rjust else 0)
    return " " * left + text + " " * (extra - left)


def _zone_address(zone: Zone) -> int:
    return _PGDAT_BASE + zone.node * _PGDAT_STRIDE + _NODE_ZONES_OFFSET + zone.zone_idx * _SIZEOF_STRUCT_ZONE


def _free_list_address(zone: Zone, order: int, mt: int) -> int:
    return _zone_address(zone) + _FREE_AREA_OFFSET + order * _SIZEOF_FREE_AREA + mt * _SIZEOF_LIST_HEAD


def _dump_zone_free_area(mm: Machine, zone: Zone) -> tuple[str, int]:
    """crash ``dump_zone_free_area()`` (the multiple-lists form): one row per order and free list,
    and the pages counted by walking the lists."""
    out = [_FREE_AREA_HDR4]
    total_free = 0
    kbytes_per_page = mm.PAGE_SIZE // 1024
    for order, area in enumerate(zone.free_area):
        chunk_size = 1 << order
        size = f"{chunk_size * kbytes_per_page}k"
        for mt, free_list in enumerate(area.free_list):
            addr = _mkstring(f"{_free_list_address(zone, order, mt):x}", max(_VADDR_PRLEN, 16))
            cnt = len(free_list)  # do_list()
            out.append(f"{order:3d}  {size:>7s}  {addr}  {cnt:6d} {cnt * chunk_size:6d}\n")
            total_free += cnt * chunk_size
    return "".join(out), total_free


def kmem_f(mm: Machine) -> str:
    """crash ``kmem -f`` (``dump_free_pages_zones_v2``): per node and zone the header row (SIZE =
    spanned pages, FREE = NR_FREE_PAGES), the free lists of zones with free pages, and
    ``nr_free_pages: N  (verified)`` when N, the sum of the counters, equals the pages counted
    on the lists, else ``(found M)``.

    As in crash, a zone whose NR_FREE_PAGES is 0 is not walked, so its listed pages are not
    counted; SIZE is ``spanned_pages``; START_MAPNR is the zone's offset from the node's first
    pfn. The "NODE" heading is printed (a NUMA kernel: crash's NODES flag).
    """
    out = []
    total = found = 0
    mem_map_hdr = _mkstring("MEM_MAP", _VADDR_PRLEN)
    for n, pgdat in enumerate(mm.node_data):
        for i, zone in enumerate(pgdat.node_zones):
            if i == 0:
                if n:
                    out.append("\n" + "-" * (74 if _VADDR_PRLEN > 8 else 66) + "\n")
                out.append(f"{chr(10) if n else ''}NODE\n {pgdat.node_id:2d}\n")
            out.append(f"{chr(10) if i > 0 else ''}{_ZONE_HDR}  {mem_map_hdr}  START_PADDR  START_MAPNR\n")
            size = zone.spanned_pages
            value = zone.NR_FREE_PAGES
            start_pfn = zone.zone_start_pfn if size else 0
            mem_map = _VMEMMAP_BASE + start_pfn * _SIZEOF_STRUCT_PAGE if size else 0
            start_mapnr = start_pfn - pgdat.node_start_pfn if mem_map else 0
            out.append(
                f"{i:3d}   {zone.name:<9s} {size:6d}  {value:6d}  "
                f"{_mkstring(f'{mem_map:x}', _VADDR_PRLEN)}  "
                f"{_mkstring(f'{zone.zone_start_pfn << mm.PAGE_SHIFT:x}', len('START_PADDR'), rjust=True)}  "
                f"{_mkstring(str(start_mapnr), len('START_MAPNR'), rjust=True)}\n"
            )
            total += value
            if value:
                text, pages = _dump_zone_free_area(mm, zone)
                out.append(text)
                found += pages
    out.append(f"\nnr_free_pages: {total}  ")
    out.append("(verified)\n" if total == found else f"(found {found})\n")
    return "".join(out)


# ---------------------------------------------------------------------------- JSON


def _sorted(obj: Any) -> Any:
    """Recursively rebuild dicts with sorted keys (stable golden files without sort_keys)."""
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def _pageblock_counts(mm: Machine, zone: Zone) -> list[int]:
    count = [0] * MIGRATE_TYPES
    for pfn in range(zone.zone_start_pfn, zone.zone_end_pfn, mm.pageblock_nr_pages):
        if pfn < mm.store.end_pfn and mm.page_zone(pfn) is zone:
            mtype = get_pageblock_migratetype(mm.store, pfn)
            if mtype < MIGRATE_TYPES:
                count[mtype] += 1
    return count


def _zone_json(mm: Machine, pgdat: pglist_data, zone: Zone) -> dict[str, Any]:
    orders = range(mm.NR_PAGE_ORDERS)
    listed = sum(len(fl) << order for order, area in enumerate(zone.free_area) for fl in area.free_list)
    blocks = _pageblock_counts(mm, zone)
    return {
        "node": pgdat.node_id,
        "zone": zone.name,
        "zone_idx": zone.zone_idx,
        "populated": _populated_zone(zone),
        "start_pfn": zone.zone_start_pfn,
        "spanned": zone.spanned_pages,
        "present": zone.present_pages,
        "managed": zone.managed_pages,
        "cma": zone.cma_pages,
        "nr_free": [area.nr_free for area in zone.free_area],
        "free_lists": {
            migratetype_names[mt]: [len(zone.free_area[o].free_list[mt]) for o in orders]
            for mt in range(MIGRATE_TYPES)
        },
        "pageblocks": {migratetype_names[mt]: blocks[mt] for mt in range(MIGRATE_TYPES)},
        "counters": {
            "nr_free_pages": zone.NR_FREE_PAGES,
            "nr_free_pages_blocks": zone.NR_FREE_PAGES_BLOCKS,
            "nr_free_cma": zone.NR_FREE_CMA_PAGES,
            "pgalloc": zone.PGALLOC,
            "pgfree": zone.PGFREE,
            "reserved_highatomic": zone.nr_reserved_highatomic,
            "free_highatomic": zone.nr_free_highatomic,
        },
        "free_pages_listed": listed,
        "watermarks": {
            "boost": zone.watermark_boost,
            "min": zone.wmark_pages(WMARK_MIN),
            "low": zone.wmark_pages(WMARK_LOW),
            "high": zone.wmark_pages(WMARK_HIGH),
            "promo": zone.wmark_pages(WMARK_PROMO),
        },
        "protection": list(zone.lowmem_reserve),
        "pcp": [
            {
                "cpu": cpu,
                "count": pcp.count,
                "high": pcp.high,
                "batch": pcp.batch,
                "high_min": pcp.high_min,
                "high_max": pcp.high_max,
            }
            for cpu, pcp in enumerate(zone.per_cpu_pageset[: mm.nr_cpus])
        ],
        "stat_threshold": calculate_normal_threshold(zone) if _populated_zone(zone) else 0,
        # the kernel's ×1000 integers as numbers (-1.0: a suitable block exists)
        "extfrag_index": [fragmentation_index(zone, o) / 1000 for o in orders],
        "unusable_index": [unusable_free_index(zone, o) / 1000 for o in orders],
    }


def vmstat_json(mm: Machine) -> dict[str, Any]:
    """Everything the text views show, as one JSON-able dict with sorted keys (``schema_version``
    1): per zone (all zones of all nodes) the free blocks per order and per migratetype list,
    pageblocks per migratetype, the vm_stat counters, watermarks, protection, pcp sizes, and the
    extfrag and unusable indices per order as numbers (index / 1000); at the top the totals of
    the ``kmem -f`` footer.
    """
    zones = [_zone_json(mm, pgdat, z) for pgdat in mm.node_data for z in pgdat.node_zones]
    nr_free_pages = sum(z["counters"]["nr_free_pages"] for z in zones)
    listed = sum(z["free_pages_listed"] for z in zones)
    return _sorted(
        {
            "schema_version": SCHEMA_VERSION,
            "page_size": mm.PAGE_SIZE,
            "max_page_order": mm.MAX_PAGE_ORDER,
            "pageblock_order": mm.pageblock_order,
            "pageblock_nr_pages": mm.pageblock_nr_pages,
            "nr_cpus": mm.nr_cpus,
            "nr_nodes": len(mm.node_data),
            "migratetypes": list(migratetype_names[:MIGRATE_TYPES]),
            "nr_free_pages": nr_free_pages,
            "free_pages_listed": listed,
            "verified": nr_free_pages == listed,
            "zones": zones,
        }
    )
