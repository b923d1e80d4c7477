"""Zone and node geometry: the ``free_area_init`` part of mm/mm_init.c (Linux 7.2), x86-64.

From the memory ranges (``for_each_mem_pfn_range``) and the architecture's zone limits
(``arch_zone_limits_init`` in arch/x86/mm/init.c: ZONE_DMA below ``MAX_DMA_PFN``, ZONE_DMA32
below ``MAX_DMA32_PFN``, ZONE_NORMAL up to ``max_pfn``) this computes what ``free_area_init``
computes before any ``struct page`` is touched: ``arch_zone_lowest/highest_possible_pfn``, the
start of ZONE_MOVABLE per node (``find_zone_movable_pfns_for_nodes`` for ``kernelcore=`` /
``movablecore=``), and per node and zone ``zone_start_pfn``, ``spanned_pages`` and
``present_pages`` (``calculate_node_totalpages``: spanned minus ``zone_absent_pages_in_node``).
It also computes the holes ``memmap_init`` marks reserved (``init_unavailable_range``) and prints
the same lines the kernel does ("Zone ranges:", "Movable zone start for each node", "Early memory
node ranges", "Initmem setup node N", "On node N, zone Z: K pages in unavailable ranges").
No per-page work: everything is arithmetic on ranges, so a 1 TiB machine takes microseconds.

Zone indices follow buddysim.mm.mmzone (DMA, DMA32, Normal, Movable); ZONE_DEVICE is never
populated and appears only as the "Device   empty" line the kernel prints with
CONFIG_ZONE_DEVICE.

Simplified: no ``kernelcore=mirror`` (refused), no ``movable_node`` (hotpluggable SRAT ranges),
no memoryless nodes, no HIGHMEM (64-bit only), no ``arch_has_descending_max_zone_pfns``;
``pfn_valid`` is "the pfn lies in a present 128 MiB section" (early sections are valid whole);
the deferred-init split (``first_deferred_pfn``) is left to mm_init.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buddysim.config import Config, CoreSpec
    from buddysim.mm.memblock import Memblock

__all__ = [
    "MAX_DMA32_PFN",
    "MAX_DMA_PFN",
    "MAX_NR_ZONES",
    "PAGES_PER_SECTION",
    "PAGE_SHIFT",
    "PFN_SECTION_SHIFT",
    "SECTION_SIZE_BITS",
    "ZONE_DMA",
    "ZONE_DMA32",
    "ZONE_MOVABLE",
    "ZONE_NORMAL",
    "NodeGeometry",
    "UnavailableRange",
    "ZoneGeometry",
    "ZoneLayout",
    "__absent_pages_in_range",
    "adjust_zone_range_for_zone_movable",
    "arch_zone_limits_init",
    "calculate_node_totalpages",
    "find_usable_zone_for_movable",
    "find_zone_movable_pfns_for_nodes",
    "free_area_init",
    "get_pfn_range_for_nid",
    "memmap_init_unavailable",
    "zone_absent_pages_in_node",
    "zone_geometry",
    "zone_index",
    "zone_names",
    "zone_spanned_pages_in_node",
]

PAGE_SHIFT = 12
SECTION_SIZE_BITS = 27
PFN_SECTION_SHIFT = SECTION_SIZE_BITS - PAGE_SHIFT
PAGES_PER_SECTION = 1 << PFN_SECTION_SHIFT
MAX_DMA_PFN = (16 << 20) >> PAGE_SHIFT
MAX_DMA32_PFN = 1 << (32 - PAGE_SHIFT)

ZONE_DMA = 0
ZONE_DMA32 = 1
ZONE_NORMAL = 2
ZONE_MOVABLE = 3
MAX_NR_ZONES = 4
zone_names = ("DMA", "DMA32", "Normal", "Movable")

MemRange = tuple[int, int, int]  # (start_pfn, end_pfn, nid)


def zone_index(zone: int | str) -> int:
    """A zone index from an index or a kernel zone name (``"DMA32"``)."""
    if isinstance(zone, int):
        if not 0 <= zone < MAX_NR_ZONES:
            raise ValueError(f"zone index {zone} out of range 0..{MAX_NR_ZONES - 1}")
        return zone
    try:
        return zone_names.index(zone)
    except ValueError:
        raise ValueError(f"unknown zone {zone!r}; expected one of {', '.join(zone_names)}") from None


def _clamp(x: int, lo: int, hi: int) -> int:
    return min(max(x, lo), hi)


@dataclass(frozen=True, slots=True)
class ZoneGeometry:
    """One ``struct zone``'s span and size as ``calculate_node_totalpages`` sets them."""

    nid: int
    zone_type: int
    name: str
    start_pfn: int  # zone_start_pfn (0 when the zone spans nothing)
    spanned: int  # spanned_pages
    present: int  # present_pages: spanned minus holes

    @property
    def end_pfn(self) -> int:
        """``zone_end_pfn()``."""
        return self.start_pfn + self.spanned

    @property
    def absent(self) -> int:
        return self.spanned - self.present

    @property
    def populated(self) -> bool:
        """``populated_zone()``."""
        return self.present > 0


@dataclass(frozen=True, slots=True)
class NodeGeometry:
    """A node (``pg_data_t``): its span, its present pages and its ``MAX_NR_ZONES`` zones."""

    nid: int
    node_start_pfn: int
    node_spanned_pages: int
    node_present_pages: int
    zones: tuple[ZoneGeometry, ...]

    @property
    def node_end_pfn(self) -> int:
        """``pgdat_end_pfn()``."""
        return self.node_start_pfn + self.node_spanned_pages

    def zone(self, zone: int | str) -> ZoneGeometry:
        return self.zones[zone_index(zone)]


@dataclass(frozen=True, slots=True)
class UnavailableRange:
    """A hole ``memmap_init`` gives to ``init_unavailable_range`` (its pages become PG_reserved).

    ``pages`` counts the pfns that have a ``struct page`` (those in present sections), which is
    what the kernel counts and prints; ``[start_pfn, end_pfn)`` is the whole hole.
    """

    nid: int
    zone_type: int
    start_pfn: int
    end_pfn: int
    pages: int


@dataclass(frozen=True)
class ZoneLayout:
    """Everything ``free_area_init`` decides, for the machine and the boot log lines."""

    max_pfn: int
    max_page_order: int
    max_zone_pfn: tuple[int, ...]
    arch_zone_lowest_possible_pfn: tuple[int, ...]
    arch_zone_highest_possible_pfn: tuple[int, ...]
    movable_zone: int
    zone_movable_pfn: tuple[tuple[int, int], ...]  # (nid, pfn) for nodes with a ZONE_MOVABLE
    mem_pfn_ranges: tuple[MemRange, ...]
    nodes: tuple[NodeGeometry, ...]
    unavailable: tuple[UnavailableRange, ...]

    def node(self, nid: int) -> NodeGeometry:
        for n in self.nodes:
            if n.nid == nid:
                return n
        raise KeyError(f"no node {nid}; nodes: {[n.nid for n in self.nodes]}")

    def zone(self, nid: int, zone: int | str) -> ZoneGeometry:
        return self.node(nid).zone(zone)

    @property
    def zones(self) -> tuple[ZoneGeometry, ...]:
        """Every zone of every node, node by node, in zone order (empty zones included)."""
        return tuple(z for n in self.nodes for z in n.zones)

    @property
    def totalpages(self) -> int:
        """Sum of present pages (``get_num_physpages()``)."""
        return sum(n.node_present_pages for n in self.nodes)

    def dmesg_lines(self, *, zone_device: bool = True) -> list[str]:
        """The lines ``free_area_init`` and ``memmap_init`` print, in the kernel's order."""
        return [
            *zone_ranges_lines(
                self.arch_zone_lowest_possible_pfn,
                self.arch_zone_highest_possible_pfn,
                zone_device=zone_device,
            ),
            *movable_zone_lines(self.zone_movable_pfn),
            *early_memory_node_ranges_lines(self.mem_pfn_ranges),
            *(initmem_setup_line(n) for n in self.nodes),
            *unavailable_lines(self.unavailable),
        ]


# --------------------------------------------------------------------------------------------
# the kernel's computations


def arch_zone_limits_init(
    max_pfn: int, dma_pfn: int = MAX_DMA_PFN, dma32_pfn: int = MAX_DMA32_PFN
) -> tuple[int, ...]:
    """``max_zone_pfns[]`` as arch/x86/mm/init.c sets them (``max_low_pfn == max_pfn`` on x86-64)."""
    limits = [0] * MAX_NR_ZONES
    limits[ZONE_DMA] = min(dma_pfn, max_pfn)
    limits[ZONE_DMA32] = min(dma32_pfn, max_pfn)
    limits[ZONE_NORMAL] = max_pfn
    return tuple(limits)


def get_pfn_range_for_nid(mem_pfn_ranges: Iterable[MemRange], nid: int) -> tuple[int, int]:
    """``get_pfn_range_for_nid()``: the lowest start and highest end pfn of the node, or (0, 0)."""
    spans = [(s, e) for s, e, n in mem_pfn_ranges if n == nid]
    if not spans:
        return 0, 0
    return min(s for s, _ in spans), max(e for _, e in spans)


def __absent_pages_in_range(
    mem_pfn_ranges: Iterable[MemRange], nid: int, range_start_pfn: int, range_end_pfn: int
) -> int:
    """``__absent_pages_in_range()``: pfns of ``[start, end)`` not covered by the node's memory."""
    nr_absent = range_end_pfn - range_start_pfn
    for s, e, n in mem_pfn_ranges:
        if n != nid:
            continue
        nr_absent -= _clamp(e, range_start_pfn, range_end_pfn) - _clamp(s, range_start_pfn, range_end_pfn)
    return nr_absent


def find_usable_zone_for_movable(lowest: Sequence[int], highest: Sequence[int]) -> int:
    """``find_usable_zone_for_movable()``: the highest non-empty zone below ZONE_MOVABLE."""
    for zone_index_ in range(MAX_NR_ZONES - 1, -1, -1):
        if zone_index_ == ZONE_MOVABLE:
            continue
        if highest[zone_index_] > lowest[zone_index_]:
            return zone_index_
    return ZONE_DMA


def find_zone_movable_pfns_for_nodes(
    mem_pfn_ranges: Sequence[MemRange],
    lowest: Sequence[int],
    highest: Sequence[int],
    max_order_nr_pages: int,
    kernelcore: CoreSpec | None = None,
    movablecore: CoreSpec | None = None,
) -> dict[int, int]:
    """``find_zone_movable_pfns_for_nodes()``: where ZONE_MOVABLE starts on each node.

    ``kernelcore`` / ``movablecore`` are parsed ``kernelcore=`` / ``movablecore=`` values
    (:func:`buddysim.config.parse_core`). Kernelcore is spread evenly over the nodes with
    memory, the rest of each node goes to ZONE_MOVABLE, and each start is rounded up to
    ``MAX_ORDER_NR_PAGES`` (a start at or beyond the node's end means no ZONE_MOVABLE there).
    Returns ``{nid: start_pfn}`` for the nodes that get one.
    """
    nodes = sorted({n for s, e, n in mem_pfn_ranges if e > s})
    zone_movable_pfn = dict.fromkeys(nodes, 0)
    totalpages = sum(e - s for s, e, _ in mem_pfn_ranges)
    usable_nodes = len(nodes)
    movable_zone = find_usable_zone_for_movable(lowest, highest)

    required_kernelcore = kernelcore.pages if kernelcore else 0
    required_movablecore = movablecore.pages if movablecore else 0
    if kernelcore and kernelcore.percent:
        required_kernelcore = (totalpages * 100 * kernelcore.percent) // 10000
    if movablecore and movablecore.percent:
        required_movablecore = (totalpages * 100 * movablecore.percent) // 10000

    if required_movablecore:
        required_movablecore = -(-required_movablecore // max_order_nr_pages) * max_order_nr_pages
        required_movablecore = min(totalpages, required_movablecore)
        corepages = totalpages - required_movablecore
        required_kernelcore = max(required_kernelcore, corepages)

    if not required_kernelcore or required_kernelcore >= totalpages:
        return {}

    usable_startpfn = lowest[movable_zone]
    while True:  # restart:
        kernelcore_node = required_kernelcore // usable_nodes
        for nid in nodes:
            if required_kernelcore < kernelcore_node:
                kernelcore_node = required_kernelcore // usable_nodes
            kernelcore_remaining = kernelcore_node
            for start_pfn, end_pfn, n in mem_pfn_ranges:
                if n != nid:
                    continue
                start_pfn = max(start_pfn, zone_movable_pfn[nid])
                if start_pfn >= end_pfn:
                    continue
                if start_pfn < usable_startpfn:
                    kernel_pages = min(end_pfn, usable_startpfn) - start_pfn
                    kernelcore_remaining -= min(kernel_pages, kernelcore_remaining)
                    required_kernelcore -= min(kernel_pages, required_kernelcore)
                    if end_pfn <= usable_startpfn:
                        zone_movable_pfn[nid] = end_pfn
                        continue
                    start_pfn = usable_startpfn
                size_pages = min(end_pfn - start_pfn, kernelcore_remaining)
                zone_movable_pfn[nid] = start_pfn + size_pages
                required_kernelcore -= min(required_kernelcore, size_pages)
                kernelcore_remaining -= size_pages
                if not kernelcore_remaining:
                    break
        usable_nodes -= 1
        if not (usable_nodes and required_kernelcore > usable_nodes):
            break

    # out2: align the start of ZONE_MOVABLE on every node to MAX_ORDER_NR_PAGES
    out: dict[int, int] = {}
    for nid in nodes:
        pfn = -(-zone_movable_pfn[nid] // max_order_nr_pages) * max_order_nr_pages
        _, end_pfn = get_pfn_range_for_nid(mem_pfn_ranges, nid)
        if pfn and pfn < end_pfn:
            out[nid] = pfn
    return out


def adjust_zone_range_for_zone_movable(
    zone_movable_pfn: int,
    zone_type: int,
    node_end_pfn: int,
    zone_start_pfn: int,
    zone_end_pfn: int,
    movable_zone: int,
    highest: Sequence[int],
) -> tuple[int, int]:
    """``adjust_zone_range_for_zone_movable()`` (without kernelcore=mirror)."""
    if zone_movable_pfn:
        if zone_type == ZONE_MOVABLE:
            return zone_movable_pfn, min(node_end_pfn, highest[movable_zone])
        if zone_start_pfn < zone_movable_pfn < zone_end_pfn:
            return zone_start_pfn, zone_movable_pfn
        if zone_start_pfn >= zone_movable_pfn:
            return zone_end_pfn, zone_end_pfn
    return zone_start_pfn, zone_end_pfn


def zone_spanned_pages_in_node(
    zone_type: int,
    node_start_pfn: int,
    node_end_pfn: int,
    lowest: Sequence[int],
    highest: Sequence[int],
    zone_movable_pfn: int = 0,
    movable_zone: int = ZONE_NORMAL,
) -> tuple[int, int, int]:
    """``zone_spanned_pages_in_node()``: ``(spanned, zone_start_pfn, zone_end_pfn)``."""
    zone_low, zone_high = lowest[zone_type], highest[zone_type]
    zone_start_pfn = _clamp(node_start_pfn, zone_low, zone_high)
    zone_end_pfn = _clamp(node_end_pfn, zone_low, zone_high)
    zone_start_pfn, zone_end_pfn = adjust_zone_range_for_zone_movable(
        zone_movable_pfn, zone_type, node_end_pfn, zone_start_pfn, zone_end_pfn, movable_zone, highest
    )
    if zone_end_pfn < node_start_pfn or zone_start_pfn > node_end_pfn:
        return 0, zone_start_pfn, zone_end_pfn
    zone_end_pfn = min(zone_end_pfn, node_end_pfn)
    zone_start_pfn = max(zone_start_pfn, node_start_pfn)
    return zone_end_pfn - zone_start_pfn, zone_start_pfn, zone_end_pfn


def zone_absent_pages_in_node(
    mem_pfn_ranges: Iterable[MemRange], nid: int, zone_start_pfn: int, zone_end_pfn: int
) -> int:
    """``zone_absent_pages_in_node()`` (without kernelcore=mirror)."""
    if zone_start_pfn == zone_end_pfn:
        return 0
    return __absent_pages_in_range(mem_pfn_ranges, nid, zone_start_pfn, zone_end_pfn)


def calculate_node_totalpages(
    nid: int,
    mem_pfn_ranges: Sequence[MemRange],
    lowest: Sequence[int],
    highest: Sequence[int],
    zone_movable_pfn: int = 0,
    movable_zone: int = ZONE_NORMAL,
) -> NodeGeometry:
    """``free_area_init_node()`` + ``calculate_node_totalpages()`` for one node."""
    node_start_pfn, node_end_pfn = get_pfn_range_for_nid(mem_pfn_ranges, nid)
    zones = []
    for i in range(MAX_NR_ZONES):
        spanned, zstart, zend = zone_spanned_pages_in_node(
            i, node_start_pfn, node_end_pfn, lowest, highest, zone_movable_pfn, movable_zone
        )
        absent = zone_absent_pages_in_node(mem_pfn_ranges, nid, zstart, zend) if spanned else 0
        zones.append(ZoneGeometry(nid, i, zone_names[i], zstart if spanned else 0, spanned, spanned - absent))
    return NodeGeometry(
        nid,
        node_start_pfn,
        sum(z.spanned for z in zones),
        sum(z.present for z in zones),
        tuple(zones),
    )


def _present_sections(mem_pfn_ranges: Iterable[MemRange]) -> list[tuple[int, int]]:
    """``memblocks_present()``: merged pfn intervals of the sections that hold any memory."""
    spans = sorted(
        (
            (s >> PFN_SECTION_SHIFT) << PFN_SECTION_SHIFT,
            (((e - 1) >> PFN_SECTION_SHIFT) + 1) << PFN_SECTION_SHIFT,
        )
        for s, e, _ in mem_pfn_ranges
        if e > s
    )
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _valid_pfns(sections: Sequence[tuple[int, int]], spfn: int, epfn: int) -> int:
    return sum(max(0, min(e, epfn) - max(s, spfn)) for s, e in sections)


def memmap_init_unavailable(
    mem_pfn_ranges: Sequence[MemRange], nodes: Sequence[NodeGeometry]
) -> tuple[UnavailableRange, ...]:
    """The holes ``memmap_init()`` hands to ``init_unavailable_range()``, with their page counts.

    Walks the memory ranges in order and, for each populated zone of the range's node, the part
    of the range inside the zone; a gap since the previous part is a hole attributed to that
    zone. The tail up to the next section boundary goes to the last zone seen. Holes without a
    valid pfn (no present section) are dropped, as the kernel prints nothing for them.
    """
    by_nid = {n.nid: n for n in nodes}
    sections = _present_sections(mem_pfn_ranges)
    holes: list[UnavailableRange] = []
    hole_pfn = 0
    zone_id = 0
    nid = 0
    end_pfn = 0

    def _hole(spfn: int, epfn: int, zone: int, node: int) -> None:
        pages = _valid_pfns(sections, spfn, epfn)
        if pages:
            holes.append(UnavailableRange(node, zone, spfn, epfn, pages))

    for start_pfn, end_pfn, nid in mem_pfn_ranges:
        node = by_nid[nid]
        for j, zone in enumerate(node.zones):
            if not zone.populated:
                continue
            s = _clamp(start_pfn, zone.start_pfn, zone.end_pfn)
            e = _clamp(end_pfn, zone.start_pfn, zone.end_pfn)
            if s < e:
                if hole_pfn < s:
                    _hole(hole_pfn, s, j, nid)
                hole_pfn = e
            zone_id = j
    end = -(-end_pfn // PAGES_PER_SECTION) * PAGES_PER_SECTION
    if hole_pfn < end:
        _hole(hole_pfn, end, zone_id, nid)
    return tuple(holes)


def free_area_init(
    mem_pfn_ranges: Iterable[MemRange],
    max_zone_pfn: Sequence[int],
    *,
    max_page_order: int = 10,
    kernelcore: CoreSpec | None = None,
    movablecore: CoreSpec | None = None,
) -> ZoneLayout:
    """``free_area_init(max_zone_pfn)``: zone boundaries, ZONE_MOVABLE, node and zone sizes.

    ``mem_pfn_ranges`` are ``(start_pfn, end_pfn, nid)`` as ``for_each_mem_pfn_range`` yields
    them (ascending); ``max_zone_pfn`` has ``MAX_NR_ZONES`` entries (Movable's is ignored).
    """
    ranges = tuple(mem_pfn_ranges)
    if not ranges:
        raise ValueError("free_area_init: no memory ranges")
    start_pfn = ranges[0][0]
    lowest = [0] * MAX_NR_ZONES
    highest = [0] * MAX_NR_ZONES
    for zone in range(MAX_NR_ZONES):
        if zone == ZONE_MOVABLE:
            continue
        end_pfn = max(max_zone_pfn[zone], start_pfn)
        lowest[zone] = start_pfn
        highest[zone] = end_pfn
        start_pfn = end_pfn
    movable_zone = find_usable_zone_for_movable(lowest, highest)
    zmp = find_zone_movable_pfns_for_nodes(
        ranges, lowest, highest, 1 << max_page_order, kernelcore, movablecore
    )
    nids = sorted({n for _, _, n in ranges})
    nodes = tuple(
        calculate_node_totalpages(nid, ranges, lowest, highest, zmp.get(nid, 0), movable_zone) for nid in nids
    )
    return ZoneLayout(
        max_pfn=max(e for _, e, _ in ranges),
        max_page_order=max_page_order,
        max_zone_pfn=tuple(max_zone_pfn),
        arch_zone_lowest_possible_pfn=tuple(lowest),
        arch_zone_highest_possible_pfn=tuple(highest),
        movable_zone=movable_zone,
        zone_movable_pfn=tuple(sorted(zmp.items())),
        mem_pfn_ranges=ranges,
        nodes=nodes,
        unavailable=memmap_init_unavailable(ranges, nodes),
    )


def zone_geometry(config: Config, memblock: Memblock | None = None) -> ZoneLayout:
    """The layout of a configured machine (``memblock`` defaults to :func:`memblock_from_config`)."""
    if memblock is None:
        from buddysim.mm.memblock import memblock_from_config

        memblock = memblock_from_config(config, reserve=False)
    ranges = tuple(memblock.for_each_mem_pfn_range())
    max_pfn = max(e for _, e, _ in ranges)
    limits = arch_zone_limits_init(max_pfn, config.zones.dma >> PAGE_SHIFT, config.zones.dma32 >> PAGE_SHIFT)
    return free_area_init(
        ranges,
        limits,
        max_page_order=config.max_page_order,
        kernelcore=config.zones.kernelcore_spec,
        movablecore=config.zones.movablecore_spec,
    )


# --------------------------------------------------------------------------------------------
# what the kernel prints


def _mem(start_pfn: int, end_pfn: int) -> str:
    return f"[mem {start_pfn << PAGE_SHIFT:#018x}-{(end_pfn << PAGE_SHIFT) - 1:#018x}]"


def zone_ranges_lines(
    lowest: Sequence[int], highest: Sequence[int], *, zone_device: bool = True
) -> list[str]:
    """``Zone ranges:`` and one line per zone but Movable (``  %-8s [mem …]`` or ``empty``)."""
    lines = ["Zone ranges:"]
    for i in range(MAX_NR_ZONES):
        if i == ZONE_MOVABLE:
            continue
        span = "empty" if lowest[i] == highest[i] else _mem(lowest[i], highest[i])
        lines.append(f"  {zone_names[i]:<8} {span}")
    if zone_device:
        lines.append(f"  {'Device':<8} empty")
    return lines


def movable_zone_lines(zone_movable_pfn: Iterable[tuple[int, int]]) -> list[str]:
    return ["Movable zone start for each node"] + [
        f"  Node {nid}: {pfn << PAGE_SHIFT:#018x}" for nid, pfn in zone_movable_pfn if pfn
    ]


def early_memory_node_ranges_lines(mem_pfn_ranges: Iterable[MemRange]) -> list[str]:
    return ["Early memory node ranges"] + [f"  node {nid:3d}: {_mem(s, e)}" for s, e, nid in mem_pfn_ranges]


def initmem_setup_line(node: NodeGeometry) -> str:
    if not node.node_spanned_pages:
        return f"Initmem setup node {node.nid} as memoryless"
    return f"Initmem setup node {node.nid} {_mem(node.node_start_pfn, node.node_end_pfn)}"


def unavailable_lines(holes: Iterable[UnavailableRange]) -> list[str]:
    return [
        f"On node {h.nid}, zone {zone_names[h.zone_type]}: {h.pages} pages in unavailable ranges"
        for h in holes
    ]
