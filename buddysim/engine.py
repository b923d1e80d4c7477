"""The replay engine: one object that applies trace events to a Machine (SimPy's Environment shape).

``step()`` applies the next event and returns it (raising :class:`EndOfTrace` when the trace
is done), ``peek()`` shows the next one, ``run(until=...)`` loops. Findings are collected as it
goes (the Machine's list), a debug-check BUG stops only the event that hit it, and
``view()`` gives a small immutable view model (per-zone free counts per order and
migratetype, pcp counts, last event, findings so far) for renderers. The engine reads no file
and prints nothing: readers, CLI, reports and UI sit at the edges.

Trace semantics: ops act on pages named by ``handle`` (synthetic traces) or ``pfn`` (recorded
ones). A reference to an unknown handle or a pfn outside every zone is a trace anomaly: an
exception in strict mode, a counted :class:`Anomaly` in lenient mode. The machine is handed
over from memblock at ``memblock_free_all`` or, if the trace has none, implicitly before the
first allocator event.
"""

from __future__ import annotations

import time
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from buddysim.errors import BadInput
from buddysim.findings import Finding, FindingError, VMBug
from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm import page_frag_cache as pfc
from buddysim.mm.debug import ALL_VALIDATORS, validate_all
from buddysim.mm.mmzone import MIGRATE_TYPES, migratetype_names

__all__ = ["Anomaly", "EndOfTrace", "Engine", "EngineView", "StepResult", "ZoneView"]

_free_pages = pa.__free_pages
_alloc_pages = pa.__alloc_pages_noprof
_alloc_frozen_pages = pa.__alloc_frozen_pages_noprof


class EndOfTrace(Exception):
    """``step()`` past the last event (SimPy's EmptySchedule)."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A trace event that cannot be applied as written (lenient mode)."""

    line: int
    op: str
    message: str


@dataclass(frozen=True, slots=True)
class ZoneView:
    nid: int
    name: str
    zone_start_pfn: int
    spanned: int
    present: int
    managed: int
    nr_free_pages: int
    #: free blocks per order
    free_per_order: tuple[int, ...]
    #: free blocks per migratetype per order: [mt][order]
    free_per_mt: tuple[tuple[int, ...], ...]
    #: pages on each CPU's pcp lists
    pcp_count: tuple[int, ...]
    watermarks: tuple[int, int, int, int]
    lowmem_reserve: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EngineView:
    """What renderers see after a step (immutable)."""

    event_index: int
    line: int | None
    last_event: dict[str, Any] | None
    zones: tuple[ZoneView, ...]
    nr_findings: int
    findings_tail: tuple[Finding, ...]
    anomalies: int
    marks: tuple[tuple[str, int], ...]
    refcount: str
    sites: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one event did, observably: used to compare models event by event."""

    index: int
    line: int
    op: str
    event: dict[str, Any]
    #: the value the operation returned (pfn, bool, int, address) or None
    value: object
    #: blocks handed back to the buddy/pcp by this event: (pfn, order)
    freed: tuple[tuple[int, int], ...]
    new_findings: tuple[Finding, ...]


def _zone_view(mm: Machine, z: Any) -> ZoneView:
    per_mt = tuple(tuple(len(area.free_list[mt]) for area in z.free_area) for mt in range(MIGRATE_TYPES))
    per_order = tuple(area.nr_free for area in z.free_area)
    return ZoneView(
        z.node,
        z.name,
        z.zone_start_pfn,
        z.spanned_pages,
        z.present_pages,
        z.managed_pages,
        z.NR_FREE_PAGES,
        per_order,
        per_mt,
        tuple(p.count for p in z.per_cpu_pageset),
        tuple(z._watermark),
        tuple(z.lowmem_reserve),
    )


@dataclass
class _Options:
    strict: bool = True
    check_every: int = 0
    freed_handles_kept: int = 1 << 16


class Engine:
    """Applies a stream of ``(line, event)`` to a :class:`Machine`.

    ``events`` is any iterable of ``(line_number, event_dict)`` (the trace reader yields these).
    ``strict`` turns trace anomalies into :class:`~buddysim.errors.BadInput`; otherwise they are
    counted. The cheap checks run inside every operation (the frozen-on-entry check, the
    VM_BUG_ONs of the free path); ``check_every`` runs the whole-zone §11 validators every N
    events (0: only at :meth:`finish`); ``path`` names the trace in messages.
    """

    def __init__(
        self,
        machine: Machine,
        events: Iterable[tuple[int, dict[str, Any]]],
        *,
        strict: bool = True,
        check_every: int = 0,
        path: str = "trace",
        boot: Callable[[Machine], object] | None = None,
    ) -> None:
        self.mm = machine
        self._events: Iterator[tuple[int, dict[str, Any]]] = iter(events)
        self._peeked: tuple[int, dict[str, Any]] | None = None
        self.path = path
        self.opts = _Options(strict=strict, check_every=check_every)
        self.index = 0  # events applied
        self.line: int | None = None
        self.last_event: dict[str, Any] | None = None
        self.handles: dict[object, tuple[int, int]] = {}
        self.freed_handles: OrderedDict[object, tuple[int, int]] = OrderedDict()
        self.fragments: dict[object, int] = {}
        #: handles whose allocation failed (or was stopped by a BUG): later ops on them are skipped
        self.failed_handles: set[object] = set()
        self.nr_skipped = 0
        self.caches: dict[str, pfc.page_frag_cache] = {}
        self.marks: dict[str, int] = {}
        self.anomalies: list[Anomaly] = []
        self.nr_anomalies = 0
        self._observers: list[Callable[[Engine, dict[str, Any]], None]] = []
        self._freed: list[tuple[int, int]] | None = None
        self._boot = boot or (lambda mm: mm.boot())
        self.started = time.perf_counter()
        self._dispatch: dict[str, Callable[[dict[str, Any]], object]] = {
            "alloc_pages": self._alloc_pages,
            "alloc_frozen_pages": self._alloc_pages,
            "__free_pages": self._free_pages,
            "free_frozen_pages": self._free_pages,
            "put_page": self._put,
            "folio_put": self._put,
            "get_page": self._get_page,
            "folio_try_get": self._folio_try_get,
            "page_ref": self._page_ref,
            "drain_all_pages": self._drain,
            "page_frag_alloc": self._frag_alloc,
            "page_frag_free": self._frag_free,
            "page_frag_cache_drain": self._frag_drain,
            "check": self._check,
            "mark": self._mark,
            "memblock_free_all": self._memblock_free_all,
            "online_pages": self._online_pages,
            "memblock_add": self._memblock,
            "memblock_reserve": self._memblock,
            "memblock_phys_free": self._memblock,
            "memblock_phys_alloc_range": self._memblock,
        }

    def __repr__(self) -> str:
        return f"Engine({self.mm!r}, index={self.index}, path={self.path!r})"

    # ------------------------------------------------------------------ SimPy-style API
    def subscribe(self, callback: Callable[[Engine, dict[str, Any]], None]) -> None:
        """Call ``callback(engine, event)`` after every applied event."""
        self._observers.append(callback)

    def register_op(self, op: str, handler: Callable[[dict[str, Any]], object]) -> None:
        """Add (or replace) the handler of one trace op."""
        self._dispatch[op] = handler

    def peek(self) -> dict[str, Any] | None:
        """The next event, without applying it (None at the end)."""
        if self._peeked is None:
            try:
                self._peeked = next(self._events)
            except StopIteration:
                return None
        return self._peeked[1]

    def _next(self) -> tuple[int, dict[str, Any]]:
        if self._peeked is not None:
            item, self._peeked = self._peeked, None
            return item
        try:
            return next(self._events)
        except StopIteration:
            raise EndOfTrace from None

    def _apply(self, line: int, event: dict[str, Any]) -> object:
        """Apply one event: the handler, BUGs caught, periodic sweeps, observers."""
        mm = self.mm
        index = self.index = self.index + 1
        self.line = line
        self.last_event = event
        mm.event = index
        value: object = None
        try:
            handler = self._dispatch.get(event["op"])
            if handler is None:
                self._anomaly(event, f"op {event['op']!r} is not supported by this engine yet")
            else:
                value = handler(event)
        except VMBug as e:
            mm.report(e.finding.at_event(index, _chain_from_traceback(e.__traceback__)))
            self._stopped(event)
        except FindingError:
            if mm.fail_fast:
                raise
            self._stopped(event)
        every = self.opts.check_every
        if every and not index % every and mm.handoff_done:
            self._run_validators(ALL_VALIDATORS)
        if self._observers:
            for cb in self._observers:
                cb(self, event)
        return value

    def _stopped(self, event: dict[str, Any]) -> None:
        """A BUG stopped this event: an allocation it named never happened."""
        h = event.get("handle")
        if h is not None and event["op"] in ("alloc_pages", "alloc_frozen_pages", "page_frag_alloc"):
            if h not in self.handles and h not in self.fragments:
                self.failed_handles.add(h)

    def step(self) -> dict[str, Any]:
        """Apply the next event and return it; :class:`EndOfTrace` when there is none."""
        line, event = self._next()
        self._apply(line, event)
        return event

    def step_result(self, observe: bool = False) -> StepResult:
        """Apply the next event; with ``observe``, also say what it returned and freed."""
        line, event = self._next()
        mm = self.mm
        n_before = len(mm.findings)
        if observe:
            self._freed = []
        value = self._apply(line, event)
        freed = tuple(self._freed) if self._freed is not None else ()
        self._freed = None
        new = tuple(mm.findings[n_before:])
        return StepResult(self.index, line, event["op"], event, value, freed, new)

    def run(
        self,
        until: int | Callable[[Engine], bool] | None = None,
        *,
        tick: Callable[[int], None] | None = None,
    ) -> int:
        """Step until the trace ends, event index ``until`` is reached, or ``until(engine)``.

        Without ``until`` the events are applied in one loop over the reader (the replay hot
        loop); ``tick(index)`` is then called every 8192 events (progress bars; ``tick`` is
        for that loop only). An event :meth:`peek`-ed by a handler or an observer is applied
        next, as :meth:`step` would.
        """
        n = 0
        if until is None:
            apply = self._apply
            if self._peeked is not None:
                item, self._peeked = self._peeked, None
                apply(*item)
                n += 1
            for line, event in self._events:
                apply(line, event)
                n += 1
                while self._peeked is not None:  # applying it peeked at the next event
                    item, self._peeked = self._peeked, None
                    apply(*item)
                    n += 1
                if tick is not None and not n & 8191:
                    tick(self.index)
            return n
        while True:
            if isinstance(until, int) and self.index >= until:
                break
            if callable(until) and until(self):
                break
            try:
                self.step()
            except EndOfTrace:
                break
            n += 1
        return n

    def finish(self) -> list[Finding]:
        """The end-of-trace sweep: every §11 validator, findings recorded; returns them."""
        self._ensure_booted()
        return self._run_validators(ALL_VALIDATORS)

    def _run_validators(self, validators: tuple) -> list[Finding]:
        found = validate_all(self.mm, validators)
        if self.caches:
            found += pfc.validate_page_frag_cache(self.mm, list(self.caches.values()))
        for f in found:
            try:
                self.mm.report(f.at_event(self.index, f.chain))
            except FindingError:
                if self.mm.fail_fast:
                    raise
        return found

    # ------------------------------------------------------------------ views
    def view(self, findings_tail: int = 10) -> EngineView:
        mm = self.mm
        return EngineView(
            self.index,
            self.line,
            dict(self.last_event) if self.last_event is not None else None,
            tuple(_zone_view(mm, z) for z in mm.zones),
            mm.nr_findings,
            tuple(mm.findings[-findings_tail:]),
            self.nr_anomalies,
            tuple(sorted(self.marks.items(), key=lambda kv: kv[1])),
            mm.refs.name,
            mm.sites.name,
        )

    # ------------------------------------------------------------------ helpers
    def _anomaly(self, event: dict[str, Any], message: str) -> None:
        line = self.line or 0
        if self.opts.strict:
            raise BadInput(message, where=f"{self.path}:{line}", field=event.get("op"))
        self.nr_anomalies += 1
        if len(self.anomalies) < 1000:
            self.anomalies.append(Anomaly(line, str(event.get("op")), message))

    def _ensure_booted(self) -> None:
        if not self.mm.handoff_done:
            self._boot(self.mm)

    def _cpu(self, event: dict[str, Any]) -> None:
        cpu = event.get("cpu")
        if cpu is not None:
            if cpu >= self.mm.nr_cpus:
                self._anomaly(event, f"cpu {cpu} does not exist (machine has {self.mm.nr_cpus} CPUs)")
                return
            self.mm.cpu = cpu

    def _page(self, event: dict[str, Any]) -> tuple[int, int] | None:
        """(pfn, order of the allocation or 0) of the page an event names, or None (anomaly)."""
        h = event.get("handle")
        if h is None:
            pfn = event["pfn"]
            if self.mm.page_zone(pfn) is None:
                self._anomaly(event, f"pfn {pfn:#x} is in no zone of the machine")
                return None
            return pfn, -1
        rec = self.handles.get(h)
        if rec is None:
            rec = self.freed_handles.get(h)
            if rec is None:
                if h in self.failed_handles:
                    self.nr_skipped += 1  # its allocation failed in this model: nothing to act on
                    return None
                self._anomaly(event, f"handle {h!r} names no allocation")
                return None
        return rec

    def _released(self, handle: object, rec: tuple[int, int]) -> None:
        """The block behind ``handle`` went back to the allocator: keep it resolvable a while."""
        self.handles.pop(handle, None)
        self.freed_handles[handle] = rec
        if len(self.freed_handles) > self.opts.freed_handles_kept:
            self.freed_handles.popitem(last=False)

    # ------------------------------------------------------------------ op handlers
    def _alloc_pages(self, event: dict[str, Any]) -> int | None:
        mm = self.mm
        if not mm.handoff_done:
            self._boot(mm)
        order = event["order"]
        if order > mm.MAX_PAGE_ORDER:
            self._anomaly(event, f"order {order} exceeds MAX_PAGE_ORDER {mm.MAX_PAGE_ORDER}")
            return None
        cpu = event.get("cpu")
        if cpu is not None:
            if cpu >= mm.nr_cpus:
                self._anomaly(event, f"cpu {cpu} does not exist (machine has {mm.nr_cpus} CPUs)")
                return None
            mm.cpu = cpu
        nid = event.get("nid")
        if nid is None:
            nid = mm.cpu_to_node[mm.cpu]
        elif nid >= len(mm.node_data):
            self._anomaly(event, f"node {nid} does not exist")
            return None
        if event["op"] == "alloc_frozen_pages":
            pfn = _alloc_frozen_pages(mm, event["gfp"], order, nid)
        else:
            pfn = _alloc_pages(mm, event["gfp"], order, nid)
        h = event.get("handle")
        if h is not None:
            if pfn is not None:
                self.handles[h] = (pfn, order)
                if self.freed_handles:
                    self.freed_handles.pop(h, None)
            else:
                self.failed_handles.add(h)  # later ops on it are skipped (the allocation failed)
        return pfn

    def _track_free(self) -> Callable[[], None] | None:
        if self._freed is None:
            return None
        mm = self.mm
        prev = mm.tracer
        freed = self._freed

        def tracer(name: str, fields: dict[str, int | None]) -> None:
            if name == "mm_page_free":
                freed.append((fields["pfn"], fields["order"]))  # type: ignore[arg-type]
            if prev is not None:
                prev(name, fields)

        mm.tracer = tracer

        def restore() -> None:
            mm.tracer = prev

        return restore

    def _free_pages(self, event: dict[str, Any]) -> None:
        mm = self.mm
        if not mm.handoff_done:
            self._boot(mm)
        h = event.get("handle")
        rec = self.handles.get(h) if h is not None else None
        if rec is None:
            rec = self._page(event)
            if rec is None:
                return
        cpu = event.get("cpu")
        if cpu is not None:
            if cpu >= mm.nr_cpus:
                self._anomaly(event, f"cpu {cpu} does not exist (machine has {mm.nr_cpus} CPUs)")
                return
            mm.cpu = cpu
        restore = self._track_free() if self._freed is not None else None
        try:
            if event["op"] == "free_frozen_pages":
                pa.free_frozen_pages(mm, rec[0], event["order"])
            else:
                _free_pages(mm, rec[0], event["order"])
        finally:
            if restore:
                restore()
        if h is not None and h in self.handles:
            self._released(h, rec)

    def _put(self, event: dict[str, Any]) -> bool:
        if not self.mm.handoff_done:
            self._boot(self.mm)
        rec = self._page(event)
        if rec is None:
            return False
        if "cpu" in event:
            self._cpu(event)
        restore = self._track_free() if self._freed is not None else None
        try:
            fn = pa.put_page if event["op"] == "put_page" else pa.folio_put
            freed = fn(self.mm, rec[0])
        finally:
            if restore:
                restore()
        h = event.get("handle")
        if freed and h is not None and h in self.handles:
            self._released(h, rec)
        return freed

    def _get_page(self, event: dict[str, Any]) -> None:
        rec = self._page(event)
        if rec is not None:
            self.mm.refs.get_page(rec[0])

    def _folio_try_get(self, event: dict[str, Any]) -> bool:
        rec = self._page(event)
        if rec is None:
            return False
        return self.mm.refs.folio_try_get(self.mm.store.compound_head(rec[0]))

    def _page_ref(self, event: dict[str, Any]) -> object:
        rec = self._page(event)
        if rec is None:
            return None
        fn = event["fn"]
        if fn not in self.mm.refs.API:
            self._anomaly(event, f"{fn}() does not exist in refcount model {self.mm.refs.name!r}")
            return None
        args = [event[a] for a in ("nr", "count", "v") if a in event]
        return self.mm.refs.call(fn, rec[0], *args)

    def _select_zones(self, event: dict[str, Any]) -> list[Any] | None:
        """The zones an event's ``zone``/``nid`` name (all when absent); None (an anomaly) if
        they name nothing on this machine, or its ``cpu`` does not exist."""
        mm = self.mm
        cpu = event.get("cpu")
        if cpu is not None and cpu >= mm.nr_cpus:
            self._anomaly(event, f"cpu {cpu} does not exist (machine has {mm.nr_cpus} CPUs)")
            return None
        nid = event.get("nid")
        if nid is not None and nid >= len(mm.node_data):
            self._anomaly(event, f"node {nid} does not exist")
            return None
        zones = [
            z
            for z in mm.zones
            if ("zone" not in event or z.name == event["zone"]) and (nid is None or z.node == nid)
        ]
        if not zones:
            where = f"zone {event['zone']!r}" if "zone" in event else "populated zone"
            self._anomaly(event, f"no {where} on {'node ' + str(nid) if nid is not None else 'the machine'}")
            return None
        return zones

    def _drain(self, event: dict[str, Any]) -> None:
        self._ensure_booted()
        zones = self._select_zones(event)
        if zones is None:
            return
        cpu = event.get("cpu")
        restore = self._track_free()
        try:
            for z in zones:
                for c in [cpu] if cpu is not None else range(self.mm.nr_cpus):
                    pa.drain_pages_zone(z, c)
        finally:
            if restore:
                restore()

    def _frag_alloc(self, event: dict[str, Any]) -> int | None:
        self._ensure_booted()
        self._cpu(event)
        name = event["cache"]
        nc = self.caches.get(name)
        if nc is None:
            nc = self.caches[name] = pfc.page_frag_cache(name)
        restore = self._track_free()
        try:
            if "align" in event:
                addr = pfc.page_frag_alloc_align(self.mm, nc, event["size"], event["gfp"], event["align"])
            else:
                addr = pfc.page_frag_alloc(self.mm, nc, event["size"], event["gfp"])
        finally:
            if restore:
                restore()
        self._check_frag()
        h = event.get("handle")
        if h is not None:
            if addr is not None:
                self.fragments[h] = addr
            else:
                self.failed_handles.add(h)
        return addr

    def _frag_free(self, event: dict[str, Any]) -> bool:
        h = event.get("handle")
        if h is not None:
            addr = self.fragments.pop(h, None)
            if addr is None:
                if h in self.failed_handles:
                    self.nr_skipped += 1
                    return False
                self._anomaly(event, f"fragment handle {h!r} names no live fragment")
                return False
        else:
            addr = pfc.page_address(event["pfn"])
        restore = self._track_free()
        try:
            return pfc.page_frag_free(self.mm, addr)
        finally:
            if restore:
                restore()
            self._check_frag()

    def _frag_drain(self, event: dict[str, Any]) -> None:
        nc = self.caches.get(event["cache"])
        if nc is None:
            self._anomaly(event, f"page_frag cache {event['cache']!r} was never used")
            return
        restore = self._track_free()
        try:
            pfc.page_frag_cache_drain(self.mm, nc)
        finally:
            if restore:
                restore()
        self._check_frag()

    def _check_frag(self) -> None:
        """The page_frag_cache invariant after every page_frag operation (issue 6)."""
        for f in pfc.validate_page_frag_cache(self.mm, list(self.caches.values())):
            self.mm.report(f.at_event(self.index))

    def _mark(self, event: dict[str, Any]) -> None:
        self.marks[event["label"]] = self.index

    def _memblock(self, event: dict[str, Any]) -> int | None:
        """memblock operations before the handoff (mm/memblock.c); after it they are anomalies.

        Memory added must lie inside the machine's zones (the zones were sized from the
        machine config, as free_area_init sized them from memblock before the handoff).
        """
        mm = self.mm
        op = event["op"]
        if mm.handoff_done:
            self._anomaly(event, f"{op} after memblock_free_all: memblock is gone")
            return None
        mb = mm.memblock
        if mb is None:
            self._anomaly(event, f"{op}: this machine was not built from a config (no memblock)")
            return None
        if op == "memblock_add":
            base, size = event["base"], event["size"]
            first, last = base >> mm.PAGE_SHIFT, (base + size - 1) >> mm.PAGE_SHIFT
            if mm.page_zone(first) is None or mm.page_zone(last) is None:
                self._anomaly(event, f"memory [{base:#x}, {base + size:#x}) lies outside the machine's zones")
                return None
            return mb.memblock_add_node(base, size, event.get("nid", 0), caller="trace")
        if op == "memblock_reserve":
            return mb.memblock_reserve(event["base"], event["size"], caller="trace")
        if op == "memblock_phys_free":
            return mb.memblock_phys_free(event["base"], event["size"], caller="trace")
        align = event.get("align", 1 << mm.PAGE_SHIFT)
        if "nid" in event and "start" not in event and "end" not in event:
            got = mb.memblock_phys_alloc_try_nid(event["size"], align, event["nid"], caller="trace")
        else:
            from buddysim.mm.memblock import MEMBLOCK_ALLOC_ACCESSIBLE

            got = mb.memblock_phys_alloc_range(
                event["size"],
                align,
                event.get("start", 0),
                event.get("end", MEMBLOCK_ALLOC_ACCESSIBLE),
                caller="trace",
            )
        if "base" in event and event["base"] != got:
            self._anomaly(
                event, f"memblock_phys_alloc_range returned {got:#x}, the recording saw {event['base']:#x}"
            )
        return got

    def _online_pages(self, event: dict[str, Any]) -> int:
        from buddysim.mm.memory_hotplug import online_pages

        self._ensure_booted()
        nid = event.get("nid", 0)
        if nid >= len(self.mm.node_data):
            self._anomaly(event, f"node {nid} does not exist")
            return -22
        return online_pages(
            self.mm, event["start_pfn"], event["nr_pages"], nid, event.get("online_type", "online")
        )

    def _memblock_free_all(self, event: dict[str, Any]) -> int:
        if self.mm.handoff_done:
            self._anomaly(event, "memblock_free_all after the handoff already happened")
            return 0
        return int(self._boot(self.mm) or 0)

    def _check(self, event: dict[str, Any]) -> bool:
        """Assertions inside a trace; each failed one is a finding of kind ``check``."""
        self._ensure_booted()
        mm = self.mm
        zones = self._select_zones(event)
        if zones is None:
            return False
        failures: list[str] = []
        if "free_per_order" in event:
            mt = event.get("migratetype")
            mti = migratetype_names.index(mt) if mt is not None else None
            have = [0] * mm.NR_PAGE_ORDERS
            for z in zones:
                for o, area in enumerate(z.free_area):
                    have[o] += area.nr_free if mti is None else len(area.free_list[mti])
            want = list(event["free_per_order"])
            if want != have[: len(want)]:
                failures.append(f"free blocks per order {have[: len(want)]}, expected {want}")
        if "nr_free" in event:
            have_free = sum(z.NR_FREE_PAGES for z in zones)
            if have_free != event["nr_free"]:
                failures.append(f"nr_free_pages {have_free}, expected {event['nr_free']}")
        if "pcp_count" in event:
            cpu = event.get("cpu")
            have_pcp = sum(p.count for z in zones for p in z.per_cpu_pageset if cpu is None or p.cpu == cpu)
            if have_pcp != event["pcp_count"]:
                failures.append(f"pcp pages {have_pcp}, expected {event['pcp_count']}")
        pfn = None
        if "raw" in event or "count" in event:
            rec = self._page(event)
            if rec is None:
                return False
            pfn = rec[0]
            raw = mm.refs.atomic_read(pfn)
            if "raw" in event and (raw - event["raw"]) % (1 << 32):
                failures.append(
                    f"raw _refcount {raw & 0xFFFFFFFF:#x}, expected {event['raw'] & 0xFFFFFFFF:#x}"
                )
            if "count" in event and mm.refs.page_ref_count(pfn) != event["count"]:
                failures.append(f"page_ref_count {mm.refs.page_ref_count(pfn)}, expected {event['count']}")
        for msg in failures:
            extra = f" ({event['message']})" if "message" in event else ""
            mm.report(
                Finding(
                    "check",
                    "check",
                    "trace assertion",
                    mm.refs.name,
                    pfn,
                    mm.refs.atomic_read(pfn) if pfn is not None else None,
                    message=msg + extra,
                    event=self.index,
                    sites=mm.sites.name,
                )
            )
        return not failures


def _chain_from_traceback(tb: types.TracebackType | None) -> tuple[str, ...]:
    """Kernel function names on the traceback of a BUG (model and refcount frames)."""
    names: list[str] = []
    while tb is not None:
        f = tb.tb_frame
        module = f.f_globals.get("__name__", "")
        name = f.f_code.co_name
        if (
            module.startswith(("buddysim.mm.", "buddysim.refcount."))
            and (not name.startswith("_") or name.startswith("__"))
            and name not in ("vm_check", "call")
        ):
            if not names or names[-1] != name:
                names.append(name)
        tb = tb.tb_next
    return tuple(names)
