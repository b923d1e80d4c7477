"""A zone's page map: per-pageblock free fraction and migratetype, binned into a few thousand cells.

What ``/proc/pagetypeinfo``'s "Number of blocks type" table counts, drawn as a strip: one cell per
pageblock (or per bin of pageblocks on huge zones), coloured by the pageblock's migratetype and
shaded by how much of it sits on the buddy free lists. The aggregation never walks pages: free
pages per pageblock come from the free lists' heads (``zone.free_area[order].free_list[mt]``,
read into numpy arrays and counted with ``np.bincount``), migratetypes from the per-pageblock
array of the page store, holes and memblock-reserved pages from the machine's memory and reserved
pfn ranges. The work is O(free blocks + pageblocks), and :attr:`PageMap.work` says how much was
done, so tests can hold it to that (a 1 TiB zone has 131k pageblocks and, after boot, ~130k free
blocks; its 134M pages are never read one by one).

:class:`PageMapRenderable` draws a :class:`PageMap` with rich (two cells per character: ``▀``
with the upper cell as foreground and the lower one as background); :func:`pagemap_lines` gives
the same segments line by line for Textual's Line API. :func:`pagemap_json` is the JSON form.

Simplified: pages on the per-cpu lists are not counted as free (``NR_FREE_PAGES`` does not count
them either); a bin's migratetype is the most common one among its pageblocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from buddysim.mm.mmzone import MIGRATE_ISOLATE, MIGRATE_TYPES, migratetype_names

if TYPE_CHECKING:
    from buddysim.machine import Machine
    from buddysim.mm.mmzone import Zone

__all__ = [
    "DEFAULT_MAX_CELLS",
    "MT_COLOURS",
    "NO_MT",
    "SHADES",
    "PageMap",
    "PageMapRenderable",
    "cell_style",
    "pageblock_free_pages",
    "pagemap_json",
    "pagemap_lines",
    "pages_per_pageblock",
    "usable_pfn_ranges",
    "zone_pagemap",
]

#: at most this many cells unless the caller asks otherwise (a large terminal shows ~2 x 200 x 40)
DEFAULT_MAX_CELLS = 4096
#: the migratetype of a cell with no memory (a hole, or a zone's partial edge block)
NO_MT = 255
_PB_MIGRATE_ISOLATE = 1 << 3
_PB_MT_MASK = 0x7

#: base colour per migratetype (fully free); allocated pageblocks are drawn darker
MT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 80, 60),  # Unmovable
    (80, 200, 100),  # Movable
    (80, 150, 240),  # Reclaimable
    (220, 90, 220),  # HighAtomic
    (60, 210, 210),  # CMA
    (170, 170, 170),  # Isolate
)
_HOLE = Color.from_rgb(40, 40, 40)
_RESERVED = Color.from_rgb(90, 80, 40)


@dataclass(frozen=True)
class PageMap:
    """A zone's pageblocks aggregated into cells (arrays indexed by cell)."""

    nid: int
    zone: str
    zone_start_pfn: int
    spanned: int
    pageblock_order: int
    nr_pageblocks: int
    #: pageblocks per cell (1 unless the zone has more pageblocks than cells allowed)
    blocks_per_cell: int
    #: first pfn of each cell (int64)
    cell_pfn: np.ndarray
    #: the cell's migratetype (the most common among its pageblocks), or NO_MT (uint8)
    mt: np.ndarray
    #: pages on the buddy free lists / pages of the cell inside the zone span (float32)
    free_fraction: np.ndarray
    #: pages that are memory and not memblock-reserved / pages in the span (float32)
    usable_fraction: np.ndarray
    #: free pages per cell (int64)
    free_pages: np.ndarray
    #: how much work it took: free-list entries read, pageblocks read, per-page reads (always 0)
    work: dict[str, int] = field(default_factory=dict)

    @property
    def nr_cells(self) -> int:
        return int(self.mt.size)

    def cell_of_pfn(self, pfn: int) -> int | None:
        """The cell holding ``pfn``, or None outside the zone."""
        if not self.zone_start_pfn <= pfn < self.zone_start_pfn + self.spanned:
            return None
        first_pb = self.zone_start_pfn >> self.pageblock_order
        return ((pfn >> self.pageblock_order) - first_pb) // self.blocks_per_cell


def pages_per_pageblock(
    ranges: list[tuple[int, int]], first_pb: int, n: int, pbo: int, lo: int, hi: int
) -> np.ndarray:
    """Pages of ``ranges`` (pfn ``[s, e)``) falling in each of ``n`` pageblocks from ``first_pb``,
    clipped to ``[lo, hi)``: O(ranges + pageblocks), ranges assumed disjoint."""
    full = np.zeros(n + 1, dtype=np.int64)  # difference array of fully covered blocks
    part = np.zeros(n, dtype=np.int64)
    pb = 1 << pbo
    for s, e in ranges:
        s, e = max(s, lo), min(e, hi)
        if s >= e:
            continue
        sb, eb = (s >> pbo) - first_pb, ((e - 1) >> pbo) - first_pb
        if sb == eb:
            part[sb] += e - s
            continue
        part[sb] += ((sb + first_pb + 1) << pbo) - s
        part[eb] += e - ((eb + first_pb) << pbo)
        if eb > sb + 1:
            full[sb + 1] += 1
            full[eb] -= 1
    return np.cumsum(full[:n]) * pb + part


def usable_pfn_ranges(mm: Machine) -> list[tuple[int, int]]:
    """Memory that is not memblock-reserved, as pfn ranges (``for_each_free_mem_range``, whole pages)."""
    shift = mm.PAGE_SHIFT
    return [(-(-s >> shift), e >> shift) for s, e in mm.free_mem_ranges() if -(-s >> shift) < e >> shift]


def pageblock_free_pages(zone: Zone) -> tuple[np.ndarray, int]:
    """Pages on the buddy free lists per pageblock of ``zone``, and how many list entries were read.

    ``struct zone *zone``. Reads every ``free_area[order].free_list[mt]`` once (its pfns into a
    numpy array); never touches the per-page arrays.
    """
    pbo = zone.mm.pageblock_order
    first_pb = zone.zone_start_pfn >> pbo
    n = ((zone.zone_end_pfn - 1) >> pbo) - first_pb + 1 if zone.spanned_pages else 0
    free = np.zeros(n, dtype=np.int64)
    whole = np.zeros(n + 1, dtype=np.int64)  # difference array: blocks of order >= pageblock_order
    visited = 0
    for order, free_area in enumerate(zone.free_area):
        for free_list in free_area.free_list:
            nr = len(free_list)
            if not nr:
                continue
            visited += nr
            heads = np.fromiter(free_list, dtype=np.int64, count=nr)
            idx = (heads >> pbo) - first_pb
            if order < pbo:
                free += np.bincount(idx, minlength=n)[:n] << order
            else:
                span = 1 << (order - pbo)
                whole += np.bincount(idx, minlength=n + 1)[: n + 1]
                whole -= np.bincount(np.minimum(idx + span, n), minlength=n + 1)[: n + 1]
    if n:
        free += np.cumsum(whole[:n]) << pbo
    return free, visited


def zone_pagemap(mm: Machine, zone: Zone, max_cells: int = DEFAULT_MAX_CELLS) -> PageMap:
    """Aggregate ``zone`` into at most ``max_cells`` cells of whole pageblocks.

    >>> from buddysim.machine import Machine
    >>> mm = Machine.simple(4096, zones=[(0, 4096)]); _ = mm.boot()
    >>> pm = zone_pagemap(mm, mm.zones[0]); pm.nr_cells, round(float(pm.free_fraction[1]), 2)
    (8, 1.0)
    """
    if max_cells < 1:
        raise ValueError("max_cells must be at least 1")
    store = mm.store
    pbo = mm.pageblock_order
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    first_pb = start >> pbo
    n = ((end - 1) >> pbo) - first_pb + 1 if zone.spanned_pages else 0
    free, visited = pageblock_free_pages(zone)
    # pages of each pageblock inside the zone span (the edge blocks may be partial)
    block_start = (first_pb + np.arange(n, dtype=np.int64)) << pbo
    span = np.minimum(block_start + (1 << pbo), end) - np.maximum(block_start, start)
    memory = pages_per_pageblock(
        [(s, e) for s, e, _nid in mm.memory_pfn_ranges], first_pb, n, pbo, start, end
    )
    usable = pages_per_pageblock(usable_pfn_ranges(mm), first_pb, n, pbo, start, end)
    bits = store.pageblock_mt_np[first_pb : first_pb + n]
    mts = np.where(bits & _PB_MIGRATE_ISOLATE, MIGRATE_ISOLATE, bits & _PB_MT_MASK).astype(np.uint8)
    mts[memory == 0] = NO_MT
    bpc = max(1, -(-n // max_cells))
    cells = -(-n // bpc) if n else 0
    pad = cells * bpc - n

    def binned(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, np.zeros(pad, dtype=a.dtype)]).reshape(cells, bpc).sum(axis=1)

    free_c, span_c, usable_c = binned(free), binned(span), binned(usable)
    if bpc == 1:
        mt_c = mts
    else:
        padded = np.concatenate([mts, np.full(pad, NO_MT, dtype=np.uint8)]).reshape(cells, bpc)
        counts = np.stack([(padded == mt).sum(axis=1) for mt in range(MIGRATE_TYPES)], axis=1)
        mt_c = np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), NO_MT).astype(np.uint8)
    denom = np.maximum(span_c, 1)
    return PageMap(
        nid=zone.node,
        zone=zone.name,
        zone_start_pfn=start,
        spanned=zone.spanned_pages,
        pageblock_order=pbo,
        nr_pageblocks=n,
        blocks_per_cell=bpc,
        cell_pfn=np.maximum(block_start[::bpc], start) if n else block_start,
        mt=mt_c,
        free_fraction=(free_c / denom).astype(np.float32),
        usable_fraction=(usable_c / denom).astype(np.float32),
        free_pages=free_c,
        work={"free_list_entries": visited, "pageblocks": n, "cells": cells, "page_reads": 0},
    )


# ---------------------------------------------------------------------------------- rendering
#: brightness steps between "all allocated" and "all free" (colours are quantised so that
#: styles can be cached: a 1 TiB zone's 8,700 cells need only a few dozen distinct styles)
SHADES = 16


def _cell_colour(mt: int, free: float, usable: float) -> Color:
    if mt == NO_MT:
        return _HOLE
    if usable <= 0.0:
        return _RESERVED
    r, g, b = MT_COLOURS[mt]
    level = round(min(max(free, 0.0), 1.0) * (SHADES - 1)) / (SHADES - 1)
    k = 0.22 + 0.78 * level  # allocated: dark; free: the full colour
    return Color.from_rgb(int(r * k), int(g * k), int(b * k))


def cell_style(pm: PageMap, i: int) -> Color:
    """The colour of cell ``i``: the migratetype's hue, brighter the more of it is free."""
    return _cell_colour(int(pm.mt[i]), float(pm.free_fraction[i]), float(pm.usable_fraction[i]))


def _cell_keys(pm: PageMap) -> list[int]:
    """One small int per cell naming its colour (migratetype x shade, hole, reserved): numpy."""
    shade = np.rint(np.clip(pm.free_fraction, 0.0, 1.0) * (SHADES - 1)).astype(np.int64)
    keys = pm.mt.astype(np.int64) * SHADES + shade
    keys[pm.usable_fraction <= 0.0] = -1
    keys[pm.mt == NO_MT] = -2
    return keys.tolist()


def pagemap_lines(pm: PageMap, width: int, *, highlight: int | None = None) -> list[list[Segment]]:
    """The map as lines of ``width`` characters, two cells per character (``▀``: upper cell is
    the foreground, lower cell the background), cells in reading order; ``highlight`` marks one
    cell (the cell of a found pfn) with a white ``◆``. O(cells), with styles cached per colour
    pair."""
    width = max(1, width)
    keys = _cell_keys(pm)
    colours: dict[int, Color] = {}
    for i, key in enumerate(keys):
        if key not in colours:
            colours[key] = cell_style(pm, i)
    styles: dict[tuple[int, int | None], Style] = {}
    mark = None if highlight is None else highlight // 2
    lines: list[list[Segment]] = []
    n = len(keys)
    chars = -(-n // 2)
    for row_start in range(0, chars, width):
        segs: list[Segment] = []
        for c in range(row_start, min(row_start + width, chars)):
            top = keys[2 * c]
            bottom = keys[2 * c + 1] if 2 * c + 1 < n else None
            if c == mark:
                segs.append(Segment("◆", Style(color="white", bgcolor=colours[top], bold=True)))
                continue
            style = styles.get((top, bottom))
            if style is None:
                bg = colours[bottom] if bottom is not None else None
                style = styles[(top, bottom)] = Style(color=colours[top], bgcolor=bg)
            segs.append(Segment("▀", style))
        lines.append(segs)
    return lines


class PageMapRenderable:
    """A rich renderable of a :class:`PageMap` (works in a plain console and in Textual)."""

    def __init__(self, pm: PageMap, *, highlight: int | None = None) -> None:
        self.pm = pm
        self.highlight = highlight

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in pagemap_lines(self.pm, options.max_width, highlight=self.highlight):
            yield from line
            yield Segment.line()


def pagemap_json(pm: PageMap) -> dict[str, Any]:
    """The page map as plain data (what ``show --format json`` and the TUI share)."""
    return {
        "node": pm.nid,
        "zone": pm.zone,
        "zone_start_pfn": pm.zone_start_pfn,
        "spanned": pm.spanned,
        "pageblock_order": pm.pageblock_order,
        "nr_pageblocks": pm.nr_pageblocks,
        "blocks_per_cell": pm.blocks_per_cell,
        "cells": [
            {
                "pfn": int(pm.cell_pfn[i]),
                "migratetype": None if pm.mt[i] == NO_MT else migratetype_names[int(pm.mt[i])],
                "free_pages": int(pm.free_pages[i]),
                "free_fraction": round(float(pm.free_fraction[i]), 4),
                "usable_fraction": round(float(pm.usable_fraction[i]), 4),
            }
            for i in range(pm.nr_cells)
        ],
        "work": dict(pm.work),
    }
