"""Pageblock maps: per pageblock of a zone, its migratetype and how much of it is free.

What ``/proc/pagetypeinfo``'s "Number of blocks type" table counts, laid out by pfn: one cell per
pageblock (``pageblock_nr_pages`` pages), coloured by ``get_pageblock_migratetype()`` (the 7.2
isolate bit wins) and shaded by the share of its pages that sit in free buddy blocks. Computed
with numpy over the page store (``flags_np`` PG_buddy heads, ``private_np`` = their order,
``pageblock_mt_np``), never page by page in Python, in chunks so that a 1 TiB machine needs no
page-sized temporaries. Zones with more than ``max_cells`` pageblocks are binned: a cell then
holds several consecutive pageblocks, shows their majority migratetype and their pooled free
fraction, and records the majority's share.

Simplified: "free" means on the buddy free lists (what ``NR_FREE_PAGES`` counts); pages on the
per-cpu lists count as allocated, as they do in the zone counters. Reserved pages (memblock
reservations and holes, PG_reserved) are counted separately so that a pageblock of firmware
holes is not mistaken for a full one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from buddysim.mm.internal import PB_migrate_isolate
from buddysim.mm.mmzone import MIGRATE_ISOLATE, MIGRATE_TYPES
from buddysim.report.pagemap import pageblock_free_pages, pages_per_pageblock, usable_pfn_ranges

if TYPE_CHECKING:
    from buddysim.machine import Machine
    from buddysim.mm.mmzone import Zone

__all__ = ["DEFAULT_MAX_CELLS", "free_pages_per_pageblock", "pageblock_snapshot", "zone_pageblock_map"]

#: cells per zone before pageblocks are binned
DEFAULT_MAX_CELLS = 2048


def free_pages_per_pageblock(mm: Machine, zone: Zone) -> tuple[np.ndarray, np.ndarray]:
    """Free (buddy) and unusable (hole or memblock-reserved) pages in each pageblock of ``zone``.

    The free pages come from the free lists (:func:`buddysim.report.pagemap.pageblock_free_pages`,
    no per-page reads); the unusable ones from the memory and reserved ranges.
    """
    pb = mm.pageblock_order
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    first = start >> pb
    n = ((end - 1) >> pb) - first + 1 if zone.spanned_pages else 0
    free, _visited = pageblock_free_pages(zone)
    usable = pages_per_pageblock(usable_pfn_ranges(mm), first, n, pb, start, end)
    block_start = (first + np.arange(n, dtype=np.int64)) << pb
    span = np.minimum(block_start + (1 << pb), end) - np.maximum(block_start, start)
    return free, span - usable


def zone_pageblock_map(mm: Machine, zone: Zone, max_cells: int = DEFAULT_MAX_CELLS) -> dict[str, Any]:
    """One zone's map: per cell (a pageblock or a bin of them) migratetype and fractions."""
    pb = mm.pageblock_order
    nr_pb_pages = 1 << pb
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    first = start >> pb
    last = min((end + nr_pb_pages - 1) >> pb, len(mm.store.pageblock_mt_np))
    n = max(0, last - first)
    bits = mm.store.pageblock_mt_np[first:last].astype(np.int64)
    mt = np.where(bits & PB_migrate_isolate, MIGRATE_ISOLATE, bits & 0x7)
    mt = np.minimum(mt, MIGRATE_TYPES - 1)
    free, reserved = free_pages_per_pageblock(mm, zone)
    # pages of each pageblock inside the zone (the first and last may be partial)
    pb_start = (np.arange(n, dtype=np.int64) + first) << pb
    pages = np.minimum(pb_start + nr_pb_pages, end) - np.maximum(pb_start, start)
    per_cell = max(1, -(-n // max_cells)) if n else 1
    cells = -(-n // per_cell) if n else 0
    pad = cells * per_cell - n
    if pad:
        free = np.concatenate([free, np.zeros(pad, dtype=np.int64)])
        reserved = np.concatenate([reserved, np.zeros(pad, dtype=np.int64)])
        pages = np.concatenate([pages, np.zeros(pad, dtype=np.int64)])
        mt = np.concatenate([mt, np.full(pad, -1, dtype=np.int64)])
    free_c = free.reshape(cells, per_cell).sum(axis=1)
    res_c = reserved.reshape(cells, per_cell).sum(axis=1)
    pages_c = pages.reshape(cells, per_cell).sum(axis=1)
    # majority migratetype per cell, weighted by the cell's pages
    cell_of = np.repeat(np.arange(cells, dtype=np.int64), per_cell)
    valid = mt >= 0
    counts = np.bincount(
        cell_of[valid] * MIGRATE_TYPES + mt[valid], weights=pages[valid], minlength=cells * MIGRATE_TYPES
    ).reshape(cells, MIGRATE_TYPES)
    major = counts.argmax(axis=1) if cells else np.zeros(0, dtype=np.int64)
    denom = np.maximum(pages_c, 1)
    share = counts.max(axis=1) / denom if cells else np.zeros(0)
    return {
        "node": zone.node,
        "zone": zone.name,
        "first_pfn": first << pb,
        "pageblocks": n,
        "pageblocks_per_cell": per_cell,
        "migratetype": [int(v) for v in major],
        "free_fraction": [round(float(v), 4) for v in free_c / denom],
        "reserved_fraction": [round(float(v), 4) for v in res_c / denom],
        "majority_share": [round(float(v), 4) for v in share],
        "free_pages": int(free_c.sum()),
        "pageblocks_per_migratetype": [int(v) for v in np.bincount(mt[valid], minlength=MIGRATE_TYPES)],
    }


def pageblock_snapshot(
    mm: Machine, label: str, event: int, max_cells: int = DEFAULT_MAX_CELLS
) -> dict[str, Any]:
    """The pageblock maps of every zone of ``mm`` now, labelled (``end`` or a mark's label)."""
    return {
        "label": label,
        "event": event,
        "zones": [zone_pageblock_map(mm, z, max_cells) for z in mm.zones],
    }
