"""Checks: the frozen-on-entry assertion, the kernel call chain of a finding, the §11 invariants.

``check_frozen_entry`` is the check the users asked for: every page of a block entering a free
list (a buddy free_area list or a pcp list) must be frozen under the active refcount model at
that moment. The ``validate_*`` functions are the structural invariants of
kernel-allocator.md §11 (mm/debug.c and the VM_BUG_ONs of page_alloc.c, gathered in one place,
as drgn's ``validate_*`` helpers do); each yields findings instead of raising, and
``validate_all`` runs them all. ``ValidationError`` is raised by :func:`check_all` for callers
that want an exception.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from buddysim.findings import Finding
from buddysim.mm.internal import PB_migrate_isolate, get_pfnblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_CMA,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    Zone,
    migratetype_is_mergeable,
    migratetype_names,
)
from buddysim.mm.page_store import PG_buddy, PG_offline, PG_pcp, PG_reserved

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "ValidationError",
    "check_all",
    "kernel_chain",
    "validate_all",
    "validate_counters",
    "validate_free_lists",
    "validate_managed",
    "validate_merging",
    "validate_partition",
    "validate_pcp",
    "validate_refcounts",
    "validate_watermarks",
]

_CHAIN_MODULES = ("buddysim.mm.",)
_CHAIN_SKIP = {"check_frozen_entry", "report", "raise_finding", "site", "site_range", "kernel_chain"}


def kernel_chain(skip: int = 1) -> tuple[str, ...]:
    """The kernel functions on the Python stack, outermost first.

    Model functions carry their kernel names, so the stack *is* the kernel call chain:
    ``memblock_free_all > __free_pages_core > __free_pages_ok > ... > __free_one_page``.
    Private helpers (one leading underscore) and the checking machinery are left out.
    """
    names: list[str] = []
    frame = sys._getframe(skip)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_name
        if (
            module.startswith(_CHAIN_MODULES)
            and not module.endswith(".debug")
            and (not name.startswith("_") or name.startswith("__"))
            and name not in _CHAIN_SKIP
            and not name.startswith("<")
        ):
            if not names or names[-1] != name:
                names.append(name)
        frame = frame.f_back
    return tuple(reversed(names))


class ValidationError(Exception):
    """A structural invariant does not hold (raised by :func:`check_all`)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__("; ".join(f.describe() for f in findings[:5]))


def _inv(
    mm: Machine,
    zone: Zone | None,
    what: str,
    message: str,
    pfn: int | None = None,
    order: int | None = None,
    count: int = 1,
) -> Finding:
    raw = mm.refs.atomic_read(pfn) if pfn is not None and 0 <= pfn < mm.store.end_pfn else None
    where = f"node {zone.node} zone {zone.name}: " if zone is not None else ""
    return Finding(
        kind="invariant",
        function=f"validate_{what}",
        check=what,
        model=mm.refs.name,
        pfn=pfn,
        raw_before=raw,
        order=order,
        count=count,
        message=where + message,
        sites=mm.sites.name,
    )


def _pcp_entries(zone: Zone) -> Iterator[tuple[int, int, int, int]]:
    """(pfn, order, cpu, pindex) of every pcp entry of the zone."""
    from buddysim.mm.page_alloc import pindex_to_order

    for pcp in zone.per_cpu_pageset:
        for pindex, lst in enumerate(pcp.lists):
            order = pindex_to_order(pindex)
            for pfn in lst:
                yield pfn, order, pcp.cpu, pindex


# ---------------------------------------------------------------------------------- invariants
def validate_free_lists(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.1 alignment and zone containment, §11.3 head marking, §11.4 list/type, §11.5 nr_free."""
    store = mm.store
    flags = store.flags
    private = store.private
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    heads: set[int] = set()
    for order, area in enumerate(zone.free_area):
        n = 0
        for mt, free_list in enumerate(area.free_list):
            n += len(free_list)
            for pfn in free_list:
                heads.add(pfn)
                if pfn & ((1 << order) - 1):
                    yield _inv(mm, zone, "free_lists", f"free block not aligned to order {order}", pfn, order)
                if not (start <= pfn and pfn + (1 << order) <= end):
                    yield _inv(mm, zone, "free_lists", "free block outside the zone span", pfn, order)
                    continue
                if not flags[pfn] & PG_buddy or private[pfn] != order:
                    yield _inv(
                        mm,
                        zone,
                        "free_lists",
                        f"head on free_area[{order}] not PageBuddy with private == {order} "
                        f"(PageBuddy={bool(flags[pfn] & PG_buddy)}, private={private[pfn]})",
                        pfn,
                        order,
                    )
                block_mt = get_pfnblock_migratetype(store, pfn)
                if block_mt != mt:
                    yield _inv(
                        mm,
                        zone,
                        "free_lists",
                        f"on the {migratetype_names[mt]} list but pageblock is {migratetype_names[block_mt]}",
                        pfn,
                        order,
                    )
                if order > store.pageblock_order:
                    pbs = store.pageblock_mt_np[
                        pfn >> store.pageblock_order : (pfn + (1 << order)) >> store.pageblock_order
                    ]
                    if (pbs != pbs[0]).any():
                        yield _inv(
                            mm, zone, "free_lists", "block spans pageblocks of different types", pfn, order
                        )
        if n != area.nr_free:
            yield _inv(
                mm,
                zone,
                "free_lists",
                f"free_area[{order}].nr_free = {area.nr_free}, lists hold {n}",
                None,
                order,
            )
    seg = store.flags_np[start:end]
    marked = np.flatnonzero(seg & PG_buddy)
    if marked.size != len(heads):
        stray = [start + int(x) for x in marked if start + int(x) not in heads]
        if stray:
            yield _inv(mm, zone, "free_lists", "PageBuddy page on no free list", stray[0], None, len(stray))


def validate_partition(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.2: each pfn in at most one free block / pcp entry, none reserved or offline."""
    intervals: list[tuple[int, int, str]] = []
    for pfn, order, mt in zone.iter_free_blocks():
        intervals.append((pfn, pfn + (1 << order), f"free_area[{order}] {migratetype_names[mt]}"))
    for pfn, order, cpu, pindex in _pcp_entries(zone):
        intervals.append((pfn, pfn + (1 << order), f"cpu {cpu} pcp list {pindex}"))
    intervals.sort()
    prev_end, prev_what = -1, ""
    fl = mm.store.flags_np
    for s, e, what in intervals:
        if s < prev_end:
            yield _inv(mm, zone, "partition", f"{what} overlaps {prev_what}", s, None)
        if (fl[s:e] & (PG_reserved | PG_offline)).any():
            yield _inv(mm, zone, "partition", f"{what} holds a reserved or offline page", s, None)
        prev_end, prev_what = max(prev_end, e), what


def validate_pcp(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.10: pcp->count equals its entries; entries are pcp heads (not PageBuddy); high clamp."""
    from buddysim.mm.page_alloc import pindex_to_order

    flags = mm.store.flags
    for pcp in zone.per_cpu_pageset:
        total = 0
        for pindex, lst in enumerate(pcp.lists):
            order = pindex_to_order(pindex)
            total += len(lst) << order
            for pfn in lst:
                if flags[pfn] & PG_buddy or not flags[pfn] & PG_pcp:
                    yield _inv(mm, zone, "pcp", f"cpu {pcp.cpu} pcp entry marked wrongly", pfn, order)
                if get_pfnblock_migratetype(mm.store, pfn) == MIGRATE_ISOLATE:
                    yield _inv(
                        mm, zone, "pcp", f"cpu {pcp.cpu} pcp entry in an isolated pageblock", pfn, order
                    )
        if total != pcp.count:
            yield _inv(mm, zone, "pcp", f"cpu {pcp.cpu} pcp->count = {pcp.count}, lists hold {total}")
        # the kernel's clamp() tests the upper bound first: with high_min > high_max (tiny
        # zones) it lands on either bound, so the valid range is the two bounds, sorted
        lo, hi = sorted((pcp.high_min, pcp.high_max))
        if pcp.high and not lo <= pcp.high <= hi:
            yield _inv(
                mm, zone, "pcp", f"cpu {pcp.cpu} high {pcp.high} outside [{pcp.high_min}, {pcp.high_max}]"
            )


def validate_counters(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.6: NR_FREE_PAGES, NR_FREE_CMA_PAGES, nr_free_highatomic, NR_FREE_PAGES_BLOCKS; §11.9."""
    free = cma = highatomic = blocks = 0
    for order, area in enumerate(zone.free_area):
        for mt, free_list in enumerate(area.free_list):
            pages = len(free_list) << order
            if mt != MIGRATE_ISOLATE:
                free += pages
                if order >= mm.pageblock_order:
                    blocks += pages
            if mt == MIGRATE_CMA:
                cma += pages
            elif mt == MIGRATE_HIGHATOMIC:
                highatomic += pages
    for name, have, want in (
        ("NR_FREE_PAGES", zone.NR_FREE_PAGES, free),
        ("NR_FREE_CMA_PAGES", zone.NR_FREE_CMA_PAGES, cma),
        ("nr_free_highatomic", zone.nr_free_highatomic, highatomic),
        ("NR_FREE_PAGES_BLOCKS", zone.NR_FREE_PAGES_BLOCKS, blocks),
    ):
        if have != want:
            yield _inv(mm, zone, "counters", f"{name} = {have}, free lists hold {want}")
    pbo = mm.store.pageblock_order
    first = zone.zone_start_pfn >> pbo
    last = (zone.zone_end_pfn - 1) >> pbo
    isolated = int(np.count_nonzero(mm.store.pageblock_mt_np[first : last + 1] & PB_migrate_isolate))
    if zone.spanned_pages and isolated != zone.nr_isolate_pageblock:
        yield _inv(
            mm, zone, "counters", f"nr_isolate_pageblock = {zone.nr_isolate_pageblock}, bits set: {isolated}"
        )
    if zone.nr_reserved_highatomic % mm.pageblock_nr_pages:
        yield _inv(
            mm, zone, "counters", f"nr_reserved_highatomic {zone.nr_reserved_highatomic} not pageblock-sized"
        )


def validate_refcounts(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.7 under the active model: every page of every free block and pcp entry is frozen."""
    refs = mm.refs
    rc = mm.store.refcount_np
    blocks = [(pfn, order, "free list") for pfn, order, _ in zone.iter_free_blocks()]
    blocks += [(pfn, order, f"cpu {cpu} pcp") for pfn, order, cpu, _ in _pcp_entries(zone)]
    for pfn, order, where in blocks:
        seg = rc[pfn : pfn + (1 << order)]
        mask = refs.frozen_mask(seg)
        if not bool(mask.all()):
            bad = np.flatnonzero(~mask)
            yield _inv(
                mm,
                zone,
                "refcounts",
                f"page of a block on a {where} is not frozen under {refs.name} "
                f"(raw {int(seg[bad[0]]) & 0xFFFFFFFF:#x})",
                pfn + int(bad[0]),
                order,
                int(bad.size),
            )


def validate_merging(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.8: no two free buddies of the same order both on lists, unless types forbid merging."""
    store = mm.store
    for order, area in enumerate(zone.free_area[: mm.MAX_PAGE_ORDER]):
        members = {pfn: mt for mt, lst in enumerate(area.free_list) for pfn in lst}
        for pfn, mt in members.items():
            buddy = pfn ^ (1 << order)
            if buddy < pfn or buddy not in members:
                continue
            bmt = members[buddy]
            if (
                order >= store.pageblock_order
                and mt != bmt
                and (not migratetype_is_mergeable(mt) or not migratetype_is_mergeable(bmt))
            ):
                continue
            yield _inv(
                mm, zone, "merging", f"buddies {pfn:#x} and {buddy:#x} both free at order {order}", pfn, order
            )


def validate_managed(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.11: managed <= present <= spanned; managed = pages neither reserved nor offline."""
    if not zone.managed_pages <= zone.present_pages <= zone.spanned_pages:
        yield _inv(
            mm,
            zone,
            "managed",
            f"managed {zone.managed_pages} <= present {zone.present_pages} <= spanned {zone.spanned_pages} fails",
        )
    if mm.handoff_done:
        seg = mm.store.flags_np[zone.zone_start_pfn : zone.zone_end_pfn]
        owned = int(np.count_nonzero((seg & (PG_reserved | PG_offline)) == 0)) - mm.deferred_pages(zone)
        if owned != zone.managed_pages:
            yield _inv(
                mm,
                zone,
                "managed",
                f"managed_pages {zone.managed_pages}, pages neither reserved nor offline {owned}",
            )


def validate_watermarks(mm: Machine, zone: Zone) -> Iterator[Finding]:
    """§11.12: min <= low <= high <= promo; lowmem_reserve non-decreasing and 0 for j <= i."""
    w = zone._watermark
    if not w[WMARK_MIN] <= w[WMARK_LOW] <= w[WMARK_HIGH] <= w[WMARK_PROMO]:
        yield _inv(mm, zone, "watermarks", f"watermarks not ordered: {w}")
    lr = zone.lowmem_reserve
    for j in range(len(lr)):
        if j <= zone.zone_idx and lr[j]:
            yield _inv(
                mm, zone, "watermarks", f"lowmem_reserve[{j}] = {lr[j]} for a zone index <= {zone.zone_idx}"
            )
        if j and j > zone.zone_idx + 1 and lr[j] < lr[j - 1]:
            yield _inv(mm, zone, "watermarks", f"lowmem_reserve decreases at {j}: {lr}")


ALL_VALIDATORS = (
    validate_free_lists,
    validate_partition,
    validate_pcp,
    validate_counters,
    validate_refcounts,
    validate_merging,
    validate_managed,
    validate_watermarks,
)


def validate_all(mm: Machine, validators: tuple = ALL_VALIDATORS) -> list[Finding]:
    """Run every validator on every zone; returns the findings (empty when all hold)."""
    out: list[Finding] = []
    for zone in mm.zones:
        for v in validators:
            out.extend(v(mm, zone))
    return out


def check_all(mm: Machine) -> None:
    """:func:`validate_all`, raising :class:`ValidationError` if anything fails."""
    found = validate_all(mm)
    if found:
        raise ValidationError(found)
