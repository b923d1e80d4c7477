"""Where is pfn X? Free (which free list, inside which free block), on a CPU's pcp list, or allocated.

The question of gef's ``buddy-contains``, pwndbg's ``buddydump -f`` and crash's ``kmem -f
<address>`` (formats-and-metrics.md §4): is this page in the buddy, on a per-cpu list, or inside a
larger free block, and if not, who allocated it. :func:`find_pfn` answers it from a
:class:`~buddysim.machine.Machine` in O(MAX_PAGE_ORDER + CPUs x pcp lists) dictionary lookups:
the candidate heads are the naturally aligned pfns at or below X (a free block of order k starts
at ``X & ~(2^k - 1)`` with ``PageBuddy`` and ``buddy_order == k``; a pcp entry likewise with
``PG_pcp``), then the lists say which migratetype or which CPU holds it. The raw ``_refcount``
word, ``page_ref_count()`` and the model's ``is_frozen`` come with every answer.

"Allocated by which event" needs a memory of allocations: :class:`AllocTracker` subscribes to an
:class:`~buddysim.engine.Engine` (``engine.subscribe``) and records, per allocated block head,
the event index, trace line, op and handle of the allocation (the pfn and order come from the
allocator's ``mm_page_alloc`` tracepoint, so allocations without a handle and page_frag refills
are seen too). Memory is bounded: a freed block's record is dropped at ``mm_page_free`` of its
head, and at most ``max_records`` are kept (the oldest go first).

Simplified: a block freed in pieces (the tail pages of a non-compound high-order allocation
freed while the head is still held) keeps its record; the newest record covering a pfn wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from buddysim.findings import fmt_raw
from buddysim.mm.internal import get_pfnblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_PCPTYPES,
    NR_LOWORDER_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    migratetype_names,
)
from buddysim.mm.page_store import (
    PG_buddy,
    PG_head,
    PG_hwpoison,
    PG_lru,
    PG_mapped,
    PG_mapping,
    PG_offline,
    PG_pcp,
    PG_reserved,
    PG_tail,
)

if TYPE_CHECKING:
    from buddysim.engine import Engine
    from buddysim.machine import Machine

__all__ = ["AllocRecord", "AllocTracker", "PfnInfo", "find_pfn", "page_flag_names"]

_FLAG_NAMES = (
    (PG_head, "head"),
    (PG_tail, "tail"),
    (PG_reserved, "reserved"),
    (PG_buddy, "buddy"),
    (PG_pcp, "pcp"),
    (PG_offline, "offline"),
    (PG_mapping, "mapping"),
    (PG_mapped, "mapped"),
    (PG_lru, "lru"),
    (PG_hwpoison, "hwpoison"),
)


def page_flag_names(flags: int) -> tuple[str, ...]:
    """The modelled page flags set in ``flags``, by name (``head``, ``buddy``, ``pcp``, ...)."""
    return tuple(name for bit, name in _FLAG_NAMES if flags & bit)


@dataclass(frozen=True, slots=True)
class AllocRecord:
    """One allocation the engine performed: the block it returned and the event that asked."""

    pfn: int
    order: int
    event: int
    line: int | None
    op: str
    handle: object = None


class AllocTracker:
    """Remembers which event allocated each live block: ``AllocTracker().attach(engine)``.

    ``lookup(pfn)`` gives the newest record whose block covers ``pfn``. Attach before the first
    event. The tracker chains any tracer already installed on the machine.
    """

    def __init__(self, max_records: int = 1 << 20) -> None:
        self.max_records = max_records
        self.records: dict[int, AllocRecord] = {}
        self.max_order = 0
        self._pending: list[tuple[int, int]] = []
        self._prev: Callable[[str, dict[str, int | None]], None] | None = None

    def attach(self, engine: Engine) -> AllocTracker:
        """Hook the machine's allocator tracepoints and subscribe to the engine's events."""
        mm = engine.mm
        self.max_order = mm.MAX_PAGE_ORDER
        self._prev = mm.tracer
        mm.tracer = self._tracepoint
        engine.subscribe(self._after_event)
        return self

    # A bound method (not a closure), so copy.deepcopy of an engine carries its own tracker.
    def _tracepoint(self, name: str, fields: dict[str, int | None]) -> None:
        if name == "mm_page_alloc":
            pfn = fields.get("pfn")
            if pfn is not None:
                self._pending.append((pfn, fields.get("order") or 0))
        elif name == "mm_page_free":
            pfn = fields.get("pfn")
            if pfn is not None:
                self.records.pop(pfn, None)
        if self._prev is not None:
            self._prev(name, fields)

    def _after_event(self, engine: Engine, event: dict[str, Any]) -> None:
        if not self._pending:
            return
        op = str(event.get("op"))
        handle = event.get("handle")
        for pfn, order in self._pending:
            self.records.pop(pfn, None)  # re-insert: dict order is allocation order
            self.records[pfn] = AllocRecord(pfn, order, engine.index, engine.line, op, handle)
        self._pending.clear()
        while len(self.records) > self.max_records:
            del self.records[next(iter(self.records))]

    def lookup(self, pfn: int) -> AllocRecord | None:
        """The newest recorded allocation whose block covers ``pfn`` (None if none is known)."""
        best: AllocRecord | None = None
        for k in range(self.max_order + 1):
            rec = self.records.get(pfn & ~((1 << k) - 1))
            if (
                rec is not None
                and pfn < rec.pfn + (1 << rec.order)
                and (best is None or rec.event > best.event)
            ):
                best = rec
        return best


@dataclass(frozen=True, slots=True)
class PfnInfo:
    """The answer for one pfn. ``state`` is one of: ``free`` (in a buddy free block), ``pcp``
    (inside an entry of a CPU's per-cpu list), ``allocated``, ``reserved`` (memblock-reserved,
    never in the buddy), ``hole`` (no memory there), ``offline``, ``outside`` (in no zone)."""

    pfn: int
    state: str
    nid: int | None = None
    zone: str | None = None
    #: head pfn and order of the free block / pcp entry / allocation holding the pfn
    block_pfn: int | None = None
    block_order: int | None = None
    #: free list's (or pcp list's) migratetype name
    migratetype: str | None = None
    pageblock_migratetype: str | None = None
    cpu: int | None = None
    pcp_pindex: int | None = None
    #: the raw ``_refcount`` word, ``page_ref_count()`` and the model's verdict on the word
    raw: int | None = None
    count: int | None = None
    frozen: bool | None = None
    model: str = ""
    flags: tuple[str, ...] = ()
    compound_head: int | None = None
    compound_order: int | None = None
    alloc_event: int | None = None
    alloc_line: int | None = None
    alloc_op: str | None = None
    alloc_handle: object = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = list(self.flags)
        if d["alloc_handle"] is not None and not isinstance(d["alloc_handle"], int | str):
            d["alloc_handle"] = repr(d["alloc_handle"])
        return d

    def describe(self) -> list[str]:
        """Lines for humans, most important first."""
        where = f"node {self.nid} {self.zone}" if self.zone is not None else "no zone"
        lines = [f"pfn {self.pfn:#x} ({self.pfn}): {self.state.upper()}  [{where}]"]
        blk = (
            f"order-{self.block_order} block at {self.block_pfn:#x}"
            if self.block_pfn is not None and self.block_order is not None
            else ""
        )
        if self.state == "free":
            inside = "head of" if self.block_pfn == self.pfn else "inside"
            lines.append(f"{inside} the {blk} on free_area[{self.block_order}].free_list[{self.migratetype}]")
        elif self.state == "pcp":
            inside = "head of" if self.block_pfn == self.pfn else "inside"
            lines.append(
                f"{inside} the {blk} on CPU {self.cpu}'s pcp list {self.pcp_pindex} ({self.migratetype})"
            )
        elif self.state == "allocated":
            if self.alloc_event is not None:
                line = f", line {self.alloc_line}" if self.alloc_line is not None else ""
                handle = f", handle {self.alloc_handle!r}" if self.alloc_handle is not None else ""
                lines.append(
                    f"allocated as the {blk} by event {self.alloc_event} ({self.alloc_op}{line}{handle})"
                )
            else:
                lines.append("allocated by no recorded event (before the trace, or record evicted)")
            if self.compound_head is not None:
                lines.append(f"compound page: head {self.compound_head:#x}, order {self.compound_order}")
        if self.raw is not None:
            lines.append(
                f"_refcount raw {fmt_raw(self.raw)}  page_ref_count {self.count}  "
                f"{self.model}: {'frozen' if self.frozen else 'not frozen'}"
            )
        if self.pageblock_migratetype is not None:
            lines.append(f"pageblock {self.pageblock_migratetype}  flags {'|'.join(self.flags) or '-'}")
        if self.note:
            lines.append(self.note)
        return lines


def _free_block(mm: Machine, zone: Any, pfn: int) -> tuple[int, int] | None:
    flags, private = mm.store.flags, mm.store.private
    for k in range(mm.NR_PAGE_ORDERS):
        head = pfn & ~((1 << k) - 1)
        if head < zone.zone_start_pfn:
            break
        if flags[head] & PG_buddy and private[head] == k:
            return head, k
    return None


def _pcp_entry(mm: Machine, zone: Any, pfn: int) -> tuple[int, int, int, int] | None:
    """(head, order, cpu, pindex) of the pcp entry holding ``pfn``."""
    from buddysim.mm.page_alloc import pindex_to_order

    flags = mm.store.flags
    orders = list(range(PAGE_ALLOC_COSTLY_ORDER + 1)) + ([mm.pageblock_order] if mm.thp else [])
    for k in orders:
        head = pfn & ~((1 << k) - 1)
        if head < zone.zone_start_pfn or not flags[head] & PG_pcp:
            continue
        for pcp in zone.per_cpu_pageset:
            for pindex, lst in enumerate(pcp.lists):
                if head in lst:
                    order = pindex_to_order(pindex)
                    if pfn < head + (1 << order):
                        return head, order, pcp.cpu, pindex
    return None


def _pcp_list_name(pindex: int) -> str:
    if pindex < NR_LOWORDER_PCP_LISTS:
        return migratetype_names[pindex % MIGRATE_PCPTYPES]
    return "Movable" if pindex == NR_LOWORDER_PCP_LISTS + 1 else "Unmovable/Reclaimable"


def find_pfn(mm: Machine, pfn: int, allocs: AllocTracker | None = None) -> PfnInfo:
    """Classify ``pfn`` (``unsigned long pfn``): free, pcp, allocated, reserved, hole, offline or outside.

    >>> from buddysim.machine import Machine
    >>> mm = Machine.simple(1024, zones=[(0, 1024)]); _ = mm.boot()
    >>> info = find_pfn(mm, 5); info.state, info.block_pfn, info.block_order
    ('free', 0, 10)
    """
    zone = mm.page_zone(pfn) if 0 <= pfn < mm.store.end_pfn else None
    if zone is None:
        return PfnInfo(pfn, "outside", model=mm.refs.name, note="the pfn lies in no zone of the machine")
    store, refs = mm.store, mm.refs
    raw = refs.atomic_read(pfn)
    flags = store.flags[pfn]
    common: dict[str, Any] = {
        "nid": zone.node,
        "zone": zone.name,
        "raw": raw,
        "count": refs.count_of_raw(raw),
        "frozen": refs.is_frozen_raw(raw),
        "model": refs.name,
        "flags": page_flag_names(flags),
        "pageblock_migratetype": migratetype_names[get_pfnblock_migratetype(store, pfn)],
    }
    if flags & PG_offline:
        return PfnInfo(pfn, "offline", **common)
    if flags & PG_reserved:
        in_memory = any(s <= pfn < e for s, e, _ in mm.memory_pfn_ranges)
        if not in_memory:
            return PfnInfo(pfn, "hole", **common, note="no memory at this pfn (a hole in the zone span)")
        deferred = not mm.early_page_initialised(pfn) and not any(
            s <= pfn < e for s, e in mm.reserved_pfn_ranges
        )
        note = "struct page not yet initialised (deferred init)" if deferred else "memblock-reserved"
        return PfnInfo(pfn, "reserved", **common, note=note)
    blk = _free_block(mm, zone, pfn)
    if blk is not None:
        head, order = blk
        mt = next((m for m, lst in enumerate(zone.free_area[order].free_list) if head in lst), None)
        note = "" if mt is not None else f"PageBuddy at {head:#x} but on no order-{order} free list"
        return PfnInfo(
            pfn,
            "free",
            block_pfn=head,
            block_order=order,
            migratetype=migratetype_names[mt] if mt is not None else None,
            note=note,
            **common,
        )
    ent = _pcp_entry(mm, zone, pfn)
    if ent is not None:
        head, order, cpu, pindex = ent
        return PfnInfo(
            pfn,
            "pcp",
            block_pfn=head,
            block_order=order,
            migratetype=_pcp_list_name(pindex),
            cpu=cpu,
            pcp_pindex=pindex,
            **common,
        )
    chead = store.compound_head(pfn)
    compound = bool(store.flags[chead] & PG_head)
    rec = allocs.lookup(pfn) if allocs is not None else None
    return PfnInfo(
        pfn,
        "allocated",
        block_pfn=rec.pfn if rec else (chead if compound else None),
        block_order=rec.order if rec else (store.compound_order(chead) if compound else None),
        compound_head=chead if compound else None,
        compound_order=store.compound_order(chead) if compound else None,
        alloc_event=rec.event if rec else None,
        alloc_line=rec.line if rec else None,
        alloc_op=rec.op if rec else None,
        alloc_handle=rec.handle if rec else None,
        **common,
    )
