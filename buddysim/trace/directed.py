"""Directed replay, engine side: apply a recorded trace's pfns, classify what does not fit, measure.

``buddysim replay --directed`` (automatic for traces whose header says they came from ftrace)
installs :class:`DirectedReplay` on an :class:`~buddysim.engine.Engine` through
``Engine.register_op``. Then:

* an allocation with an observed ``pfn`` first asks the model what it would have returned
  (:func:`buddysim.mm.directed.predict_alloc`, read-only) and records whether that is the
  kernel's pfn (the agreement rate, per order and migratetype); then the model hands out exactly
  that block (:func:`~buddysim.mm.directed.take_block`). When the trace does not show pcp
  refills and the model agrees, the model's own allocation runs instead, so its refill of the
  pcp list stands in for the kernel's unseen one;
* a free goes through the normal free path (``__free_frozen_pages``: the frozen-on-entry check,
  pcp lists, merging), after the refcount is brought to what the kernel's free implies;
* ``mm_page_alloc_zone_locked`` takes the block off the buddy lists (converting the pageblock
  first when the kernel evidently claimed it); the blocks of one refill wait on their CPU until
  its ``mm_page_alloc`` names the first, and the rest go to the tail of that CPU's pcp list, as
  ``rmqueue_bulk`` puts them; ``mm_page_pcpu_drain`` moves a block from whichever pcp list holds
  it to the buddy (with drain events in the trace, the model's own drains are off);
  ``mm_page_alloc_extfrag`` without a preceding zone_locked event is a steal (or a whole-pageblock
  claim) and takes the block itself;
* every event lands in one class of :data:`CLASSES`: applied as written, explained by the capture
  window (pages allocated before it, still allocated after it, pages the model never saw,
  deferred-init frees, lost events) or by a tracepoint artefact (duplicate records, batched
  pairs), or a divergence between the model and the kernel. Nothing raises; the reconciliation
  report (buddysim.report.reconcile) shows the counts.

``--initial-state`` files (:func:`load_initial_state`) seed the model: a boot log (through
buddysim.trace.importers.dmesg) gives the machine; a /proc/buddyinfo capture gives the free blocks
per zone and order (:func:`buddysim.mm.directed.seed_free_area`), a /proc/zoneinfo capture the
free pages per zone when there is no buddyinfo.

Simplified: page_ref events are applied only to pages whose allocation the trace showed (for
others the count before the capture is unknown); the refcount a free implies is "the last
reference is gone", so a model count above 1 at a free is reset (counted as a note).
"""

from __future__ import annotations

import os
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from buddysim.errors import BadInput
from buddysim.mm import directed as D
from buddysim.mm import mm_init
from buddysim.mm import page_alloc as pa
from buddysim.mm.gfp import gfp_migratetype
from buddysim.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_PCPTYPES, migratetype_names
from buddysim.mm.page_store import PG_head, PG_hwpoison, PG_lru, PG_reserved, PG_tail

if TYPE_CHECKING:
    from buddysim.config import Config
    from buddysim.engine import Engine
    from buddysim.machine import Machine
    from buddysim.report.reconcile import BuddyinfoRow, ZoneinfoZone

__all__ = [
    "CATEGORIES",
    "CLASSES",
    "DirectedReplay",
    "InitialState",
    "ReplaySetup",
    "add_replay_options",
    "install",
    "is_directed_source",
    "load_initial_state",
    "replay_attach",
    "replay_finish",
    "replay_render",
    "replay_reports",
    "replay_setup",
]

CATEGORIES = ("applied", "window", "artefact", "divergence")

#: class → (category, what it means)
CLASSES: dict[str, tuple[str, str]] = {
    "alloc": ("applied", "allocation: the block was free in the model and is taken there"),
    "alloc-failed": ("applied", "failed allocation (page=(null)) recorded"),
    "free": ("applied", "free of a block allocated in the trace, through the normal free path"),
    "free-partial": (
        "applied",
        "free of part of a block allocated in the trace (split_page, alloc_pages_exact)",
    ),
    "refill": ("applied", "mm_page_alloc_zone_locked: block taken off the buddy lists"),
    "drain": ("applied", "mm_page_pcpu_drain: block moved from a pcp list to the buddy"),
    "extfrag": ("applied", "mm_page_alloc_extfrag: fallback (claim or steal) applied"),
    "page-ref": ("applied", "page_ref op on a page allocated in the trace"),
    "pre-capture-free": ("window", "free of a page allocated before the capture started"),
    "pre-capture-page": ("window", "alloc or drain of a page free or on a pcp list before the capture"),
    "pre-capture-page-ref": ("window", "page_ref on a page not allocated in the trace (not applied)"),
    "unknown-pfn": ("window", "page the model never saw: outside the machine or in a hole"),
    "reserved-release": ("window", "free of memory the model holds reserved (free_reserved_area)"),
    "deferred-init-free": ("window", "deferred struct page init handing never-initialised memory over"),
    "lost-events": ("window", "CPU:N [LOST M EVENTS]: the model misses what the kernel did meanwhile"),
    "duplicate-record": ("artefact", "the same free recorded twice in a row on one CPU (2.6.33 bug)"),
    "batched-pair": ("artefact", "mm_page_free_batched of a free already applied (or about to be)"),
    "double-free": ("divergence", "free of a block the model holds free, seen in the trace"),
    "alloc-of-allocated": ("divergence", "allocation of a block the trace allocated and never freed"),
    "alloc-mixed": ("divergence", "allocation of a block the model holds partly free"),
    "free-mixed": ("divergence", "free of a block the model holds partly free (not applied)"),
    "free-order-mismatch": ("divergence", "free larger than what the trace allocated there"),
    "pcp-remote": ("divergence", "allocation found the block on another CPU's pcp list"),
    "pcp-split": ("divergence", "allocation found the block inside a larger pcp entry"),
    "drain-not-on-pcp": ("divergence", "drain of a block the model holds in the buddy (not applied)"),
    "drain-of-allocated": ("divergence", "drain of a block the trace allocated and never freed"),
    "refill-from-pcp": ("divergence", "zone_locked block was on a pcp list in the model, not in the buddy"),
    "orphan-take": ("divergence", "zone_locked block never named by an mm_page_alloc nor refillable"),
    "misaligned": ("divergence", "block not aligned to its order (not applied)"),
}

_MAX_SAMPLES = 20
_BATCHED_KEPT = 1 << 16


def is_directed_source(header: dict[str, Any]) -> bool:
    """Does the header say the trace is a capture (so replay it directed by default)?"""
    src = str(header.get("source") or "")
    meta = header.get("meta") or {}
    return src.startswith("ftrace") or (isinstance(meta, dict) and meta.get("importer") == "ftrace")


# ---------------------------------------------------------------------------------- initial state
@dataclass
class InitialState:
    """What ``--initial-state`` files gave: a machine config, buddyinfo rows, zoneinfo zones."""

    paths: list[str] = field(default_factory=list)
    config: Config | None = None
    buddyinfo: list[BuddyinfoRow] | None = None
    zoneinfo: list[ZoneinfoZone] | None = None
    notes: list[str] = field(default_factory=list)


def _read_text(path: str) -> str:
    from buddysim.trace.importers.ftrace import open_text

    text, raw, _size = open_text(path)
    try:
        return text.read()
    finally:
        text.close()
        if raw is not None:
            raw.close()


def load_initial_state(paths: Sequence[str]) -> InitialState:
    """Read ``--initial-state`` files, each a /proc/buddyinfo, a /proc/zoneinfo or a boot log."""
    from buddysim.report.reconcile import (
        looks_like_buddyinfo,
        looks_like_zoneinfo,
        parse_buddyinfo,
        parse_zoneinfo,
    )

    st = InitialState(paths=list(paths))
    for path in paths:
        text = _read_text(path)
        if looks_like_zoneinfo(text):
            st.zoneinfo = parse_zoneinfo(text, path)
            st.notes.append(f"{os.path.basename(path)}: /proc/zoneinfo, {len(st.zoneinfo)} zones")
        elif looks_like_buddyinfo(text):
            st.buddyinfo = parse_buddyinfo(text, path)
            st.notes.append(f"{os.path.basename(path)}: /proc/buddyinfo, {len(st.buddyinfo)} rows")
        else:
            from buddysim.trace.importers.dmesg import import_dmesg

            try:
                imp = import_dmesg(path)
            except BadInput as e:
                raise BadInput(
                    f"not a /proc/buddyinfo, /proc/zoneinfo or a boot log with a memory map ({e.message})",
                    where=path,
                ) from None
            st.config = imp.config
            st.notes.append(f"{os.path.basename(path)}: boot log, machine {imp.config.name}")
    return st


# ---------------------------------------------------------------------------------- the replay
class DirectedReplay:
    """Directed replay on one engine: install with ``DirectedReplay(engine, header=...)``.

    Counters: :attr:`classes` (events per class), :attr:`agreement` ((order, migratetype) →
    [allocations, agreeing]), :attr:`disagree` (why the model chose differently), :attr:`failed`,
    :attr:`notes` (secondary counts), :attr:`live` (blocks allocated in the trace and not freed:
    head → [order, pages still allocated]), :attr:`samples` (the first divergences, as
    ``trace:line: class: message``). Call :meth:`finish` after the last event.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        header: dict[str, Any] | None = None,
        initial_state: InitialState | None = None,
    ) -> None:
        self.engine = engine
        self.mm: Machine = engine.mm
        self.path = engine.path
        self.initial_state = initial_state
        self.initial_report: dict[str, Any] | None = None
        meta = (header or {}).get("meta") or {}
        seen_events = meta.get("events", {}) if isinstance(meta, dict) else {}
        self.explicit_refill = bool(seen_events.get("mm_page_alloc_zone_locked"))
        self.explicit_drain = bool(seen_events.get("mm_page_pcpu_drain"))
        self.classes: Counter[str] = Counter()
        self.agreement: dict[tuple[int, str], list[int]] = {}
        self.disagree: Counter[str] = Counter()
        self.failed = {"trace": 0, "agree": 0}
        self.notes: Counter[str] = Counter()
        self.samples: list[str] = []
        self.live: dict[int, list[int]] = {}
        #: cpu -> [(pfn, order, migratetype, class given)]: blocks taken off the buddy, in order
        self.pending: dict[int, list[tuple[int, int, int, str]]] = {}
        self.pending_pred: dict[int, D.Prediction] = {}
        #: pending block head -> (cpu, order): blocks taken off the lists, not yet allocated
        self.pending_owner: dict[int, tuple[int, int]] = {}
        self.last: dict[int, tuple[str, int, int]] = {}
        self.batched: OrderedDict[int, int] = OrderedDict()
        self.seen: np.ndarray | None = None
        mm = self.mm
        if mm.first_deferred_pfn:
            firsts = dict(mm.first_deferred_pfn)
        elif mm.layout.deferred_struct_page_init:
            firsts = mm_init.first_deferred_pfns(mm)
        else:
            firsts = {}
        self.deferred: list[tuple[int, int]] = []
        for nid, first in firsts.items():
            z = mm.node_data[nid].last_zone()
            if z is not None:
                self.deferred.append((first, z.zone_end_pfn))
        self._ready = False
        # the engine's own handlers, for events without a pfn (synthetic parts of a trace)
        self._orig = dict(engine._dispatch)
        for op, h in {
            "alloc_pages": self._alloc,
            "alloc_frozen_pages": self._alloc,
            "__free_pages": self._free,
            "free_frozen_pages": self._free,
            "put_page": self._put,
            "folio_put": self._put,
            "page_ref": self._page_ref,
            "mark": self._mark,
            "mm_page_alloc_zone_locked": self._zone_locked,
            "mm_page_pcpu_drain": self._drain,
            "mm_page_alloc_extfrag": self._extfrag,
            "mm_page_free_batched": self._batched,
        }.items():
            engine.register_op(op, h)

    # ------------------------------------------------------------------ set-up
    def _ensure_ready(self) -> None:
        if self._ready:
            return
        self._ready = True
        mm = self.mm
        if not mm.handoff_done:
            mm.boot()
        self.seen = np.zeros(mm.store.end_pfn, dtype=bool)
        if self.initial_state is not None:
            self.initial_report = self._seed(self.initial_state)

    def _seed(self, st: InitialState) -> dict[str, Any]:
        mm = self.mm
        lines = list(st.notes)
        zones_out = []
        if st.buddyinfo or st.zoneinfo:
            rows = {(r.nid, r.zone): r.counts for r in (st.buddyinfo or [])}
            zinfo = {(z.nid, z.zone): z for z in (st.zoneinfo or [])}
            keys = set(rows) | {k for k, z in zinfo.items() if z.pages_free is not None and z.present}
            for zone in mm.zones:
                key = (zone.node, zone.name)
                if key in rows:
                    wanted = list(rows[key])
                elif key in zinfo and zinfo[key].pages_free is not None:
                    wanted = D.counts_for_free_pages(zone, zinfo[key].pages_free or 0)
                else:
                    lines.append(f"node {zone.node} zone {zone.name}: not in the capture, left as booted")
                    continue
                keys.discard(key)
                res = D.seed_free_area(mm, zone, wanted)
                zones_out.append(
                    {
                        "nid": res.nid,
                        "zone": res.zone,
                        "wanted": res.wanted,
                        "got": res.got,
                        "exact": res.exact,
                        "model_free_before": res.model_free_before,
                        "wanted_pages": res.wanted_pages,
                    }
                )
                lines.append(
                    f"node {res.nid} zone {res.zone}: {res.wanted_pages} free pages seeded "
                    f"(booted model had {res.model_free_before})"
                    + ("" if res.exact else "; " + "; ".join(res.notes))
                )
            for nid, name in sorted(keys):
                lines.append(f"node {nid} zone {name}: in the capture but not on this machine")
        return {"files": st.paths, "zones": zones_out, "lines": lines}

    # ------------------------------------------------------------------ helpers
    def _classify(self, name: str, message: str = "") -> None:
        self.classes[name] += 1
        if CLASSES[name][0] == "divergence" and len(self.samples) < _MAX_SAMPLES:
            self.samples.append(f"{self.path}:{self.engine.line}: {name}: {message}")

    def _cpu(self, event: dict[str, Any]) -> int:
        cpu = event.get("cpu", 0)
        n = self.mm.nr_cpus
        if cpu >= n:
            self.notes["cpu-folded"] += 1
            cpu %= n
        self.mm.cpu = cpu
        return cpu

    def _mark_seen(self, pfn: int, order: int) -> None:
        seen = self.seen
        if seen is not None and pfn < len(seen):
            if order:
                seen[pfn : pfn + (1 << order)] = True
            else:
                seen[pfn] = True

    def _was_seen(self, pfn: int, order: int) -> bool:
        seen = self.seen
        if seen is None or pfn >= len(seen):
            return False
        if not order:
            return bool(seen[pfn])
        return bool(seen[pfn : pfn + (1 << order)].any())

    def _in_deferred(self, pfn: int) -> bool:
        return any(first <= pfn < end for first, end in self.deferred)

    def _live_head(self, pfn: int) -> int | None:
        """The head of the trace allocation holding ``pfn``, if any."""
        live = self.live
        if pfn in live:
            return pfn
        for o in range(1, self.mm.NR_PAGE_ORDERS):
            head = pfn & ~((1 << o) - 1)
            rec = live.get(head)
            if rec is not None and rec[0] >= o:
                return head
        return None

    def _forget_live(self, pfn: int, order: int) -> None:
        """Drop trace allocations overlapping ``[pfn, pfn + 2^order)`` (a block reused)."""
        head = self._live_head(pfn)
        if head is not None:
            del self.live[head]
        if order:
            for p in range(pfn + 1, pfn + (1 << order)):
                self.live.pop(p, None)

    def _note_last(self, cpu: int, kind: str, pfn: int, order: int) -> None:
        self.last[cpu] = (kind, pfn, order)

    def _agree(self, order: int, mt: int, pred: D.Prediction, pfn: int | None) -> None:
        if pfn is None:
            self.failed["trace"] += 1
            if pred.pfn is None:
                self.failed["agree"] += 1
            return
        key = (order, migratetype_names[mt] if mt < len(migratetype_names) else str(mt))
        rec = self.agreement.get(key)
        if rec is None:
            rec = self.agreement[key] = [0, 0]
        rec[0] += 1
        if pred.pfn == pfn:
            rec[1] += 1
            return
        if pred.pfn is None:
            why = "model-would-fail" if pred.source != "reclaim" else "model-would-reclaim"
        elif pred.zone is not None and not pred.zone.zone_spans_pfn(pfn):
            why = "other-zone"
        else:
            why = f"model-{pred.source}-head-differs"
        self.disagree[why] += 1

    # ------------------------------------------------------------------ pending refills
    def _flush(self, cpu: int, list_mt: int | None = None) -> None:
        """The rest of a refill goes to ``cpu``'s pcp list tail (``rmqueue_bulk``)."""
        batch = self.pending.pop(cpu, None)
        self.pending_pred.pop(cpu, None)
        if not batch:
            return
        mm = self.mm
        for pfn, order, mt, cls in batch:
            self.pending_owner.pop(pfn, None)
            zone = mm.page_zone(pfn)
            if zone is None:
                continue
            if pa.pcp_allowed_order(zone, order):
                D.put_on_pcp(zone, cpu, pfn, order, list_mt if list_mt is not None else mt, tail=True)
            else:
                self.live[pfn] = [order, 1 << order]
                D.finish_alloc(mm, pfn, order, 0, frozen=True)
                self.classes[cls] -= 1  # one class per event: the take was an orphan after all
                if not self.classes[cls]:
                    del self.classes[cls]
                self._classify(
                    "orphan-take", f"order-{order} block {pfn:#x} taken off the lists, never allocated"
                )

    def _flush_others(self, cpu: int) -> None:
        if cpu in self.pending:
            self._flush(cpu)

    def _settle(self, pfn: int, order: int) -> None:
        """An event names a block that a refill still holds: the refill finished first (no other
        CPU sees pages inside ``rmqueue_bulk``), so its CPU's batch is flushed now."""
        owners = self.pending_owner
        if not owners:
            return
        end = pfn + (1 << order)
        cpus = {c for h, (c, o) in owners.items() if h < end and pfn < h + (1 << o)}
        for c in cpus:
            self._flush(c)

    def _add_pending(self, cpu: int, pfn: int, order: int, mt: int, cls: str) -> None:
        self.pending.setdefault(cpu, []).append((pfn, order, mt, cls))
        self.pending_owner[pfn] = (cpu, order)

    # ------------------------------------------------------------------ allocation
    def _alloc(self, event: dict[str, Any]) -> int | None:
        if "pfn" not in event:
            return self._orig[event["op"]](event)  # type: ignore[no-any-return]
        self._ensure_ready()
        mm = self.mm
        pfn = event["pfn"]
        order = event["order"]
        gfp = event["gfp"]
        frozen = event["op"] == "alloc_frozen_pages"
        cpu = self._cpu(event)
        nid = event.get("nid")
        if nid is not None and nid >= len(mm.node_data):
            nid = None
            self.notes["nid-ignored"] += 1
        mt = gfp_migratetype(gfp, mm.page_group_by_mobility_disabled)
        self._note_last(cpu, "alloc", pfn if pfn is not None else -1, order)
        if order > mm.MAX_PAGE_ORDER or (pfn is not None and pfn & ((1 << order) - 1)):
            self._flush(cpu)
            self._classify("misaligned", f"order-{order} allocation at {pfn}")
            return pfn  # type: ignore[no-any-return]
        # a refill (or direct take) announced by zone_locked events on this CPU
        batch = self.pending.get(cpu)
        if batch and pfn is not None and batch[0][0] == pfn and batch[0][1] == order:
            pred = self.pending_pred.get(cpu) or D.Prediction(None, None, "none")
            batch.pop(0)
            self.pending_owner.pop(pfn, None)
            self._flush(cpu, list_mt=mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE)
            self._agree(order, mt, pred, pfn)
            self._finish(pfn, order, gfp, frozen, event)
            self.classes["alloc"] += 1
            return pfn  # type: ignore[no-any-return]
        if batch:
            self._flush(cpu, list_mt=mt if mt < MIGRATE_PCPTYPES else MIGRATE_MOVABLE)
        if pfn is not None:
            self._settle(pfn, order)
        pred = D.predict_alloc(mm, gfp, order, cpu, nid)
        if pfn is None:
            self._agree(order, mt, pred, None)
            self.classes["alloc-failed"] += 1
            return None
        zone = mm.page_zone(pfn)
        if zone is None or pfn + (1 << order) > zone.zone_end_pfn:
            self._agree(order, mt, pred, pfn)
            self.classes["unknown-pfn"] += 1
            return pfn  # type: ignore[no-any-return]
        if not self.explicit_refill and (not pred.sure or pred.pfn == pfn):
            # the model left to itself: its own allocation, refill side effects included
            got = mm.alloc(gfp, order, cpu=cpu, nid=nid, frozen=frozen)
            if not pred.sure:
                pred = D.Prediction(got, mm.page_zone(got) if got is not None else None, pred.source)
            self._agree(order, mt, pred, pfn)
            if got == pfn:
                self._record_live(pfn, order, event)
                self.classes["alloc"] += 1
                return pfn  # type: ignore[no-any-return]
            if pred.pfn == pfn:
                self.notes["prediction-inexact"] += 1
            if got is not None:  # give the model's own choice back, then take the kernel's
                zg = mm.page_zone_checked(got)
                if mm.refs.page_ref_count(got):
                    mm.refs.put_page_testzero(got)
                D.commit_free(zg, got, order, cpu, model_drains=not self.explicit_drain)
        else:
            self._agree(order, mt, pred, pfn)
        src = D.take_block(mm, pfn, order, cpu)
        self._after_take(src, pfn, order, "alloc")
        if src in (D.SRC_RESERVED, D.SRC_NO_ZONE):
            return pfn  # type: ignore[no-any-return]
        self._finish(pfn, order, gfp, frozen, event)
        return pfn  # type: ignore[no-any-return]

    def _after_take(self, src: str, pfn: int, order: int, what: str) -> str:
        """Classify a take and repair blocks the model held allocated; returns the class."""
        mm = self.mm
        if what == "refill" and src in (D.SRC_PCP, D.SRC_PCP_REMOTE, D.SRC_PCP_SPLIT):
            cls = "refill-from-pcp"
            msg = f"order-{order} block {pfn:#x} was on a pcp list in the model"
        elif src in (D.SRC_PCP, D.SRC_BUDDY, D.SRC_BUDDY_SPLIT):
            cls, msg = ("alloc" if what == "alloc" else "refill"), ""
        elif src == D.SRC_PCP_REMOTE:
            cls, msg = "pcp-remote", f"order-{order} block {pfn:#x} was on another CPU's pcp list"
        elif src == D.SRC_PCP_SPLIT:
            cls, msg = "pcp-split", f"order-{order} block {pfn:#x} was inside a larger pcp entry"
        elif src in (D.SRC_RESERVED, D.SRC_NO_ZONE):
            cls, msg = "unknown-pfn", ""
        else:  # allocated or mixed in the model: reset, and say whose it was
            head = self._live_head(pfn)
            seen = self._was_seen(pfn, order)
            self._forget_live(pfn, order)
            D.reset_allocated(mm, pfn, order)
            if src == D.SRC_MIXED:
                cls, msg = "alloc-mixed", f"order-{order} block {pfn:#x} partly free in the model"
            elif head is not None or seen:
                cls, msg = "alloc-of-allocated", f"order-{order} block {pfn:#x} allocated in the trace before"
            else:
                cls, msg = "pre-capture-page", ""
        self._classify(cls, msg)
        return cls

    def _finish(self, pfn: int, order: int, gfp: int, frozen: bool, event: dict[str, Any]) -> None:
        D.finish_alloc(self.mm, pfn, order, gfp, frozen)
        self._record_live(pfn, order, event)

    def _record_live(self, pfn: int, order: int, event: dict[str, Any]) -> None:
        self.live[pfn] = [order, 1 << order]
        self._mark_seen(pfn, order)
        self.batched.pop(pfn, None)
        h = event.get("handle")
        if h is not None:
            self.engine.handles[h] = (pfn, order)
            self.engine.freed_handles.pop(h, None)

    # ------------------------------------------------------------------ free
    def _free(self, event: dict[str, Any]) -> None:
        if "pfn" not in event:  # by handle: the engine's own free; forget the block if it went
            self._orig[event["op"]](event)
            rec = self.engine.freed_handles.get(event["handle"])
            if rec is not None and rec[0] in self.live and self.engine.handles.get(event["handle"]) is None:
                del self.live[rec[0]]
            return
        self._ensure_ready()
        cpu = self._cpu(event)
        self._flush_others(cpu)
        pfn, order = event["pfn"], event["order"]
        last = self.last.get(cpu)
        self._note_last(cpu, "free", pfn, order)
        self._do_free(pfn, order, cpu, last, batched=False)

    def _do_free(
        self, pfn: int, order: int, cpu: int, last: tuple[str, int, int] | None, batched: bool
    ) -> None:
        mm = self.mm
        if order > mm.MAX_PAGE_ORDER or pfn & ((1 << order) - 1):
            self._classify("misaligned", f"order-{order} free at {pfn:#x}")
            return
        self._settle(pfn, order)
        state = D.block_state(mm, pfn, order, cpu)
        if state == D.SRC_NO_ZONE:
            self.classes["unknown-pfn"] += 1
            return
        paired = self.batched.pop(pfn, None) is not None
        if state == D.SRC_RESERVED:
            self._reserved_release(pfn, order, cpu)
            return
        seen = self._was_seen(pfn, order)
        if state in (D.SRC_BUDDY, D.SRC_PCP):
            if last == ("free", pfn, order) and not batched:
                self.classes["duplicate-record"] += 1
            elif paired or (batched and seen):
                self.classes["batched-pair"] += 1
            elif not seen and self._in_deferred(pfn):
                self.classes["deferred-init-free"] += 1
            elif not seen:
                self.classes["pre-capture-free"] += 1  # the model had it free: no initial state there
            else:
                self._classify("double-free", f"order-{order} block {pfn:#x} is already free in the model")
            self._mark_seen(pfn, order)
            return
        if state == D.SRC_MIXED:
            self._classify("free-mixed", f"order-{order} block {pfn:#x} is partly free in the model")
            self._mark_seen(pfn, order)
            return
        # allocated in the model
        head = self._live_head(pfn)
        if head is not None:
            rec = self.live[head]
            if head == pfn and rec[0] == order:
                del self.live[head]
                cls = "free"
            elif rec[0] > order:
                rec[1] -= 1 << order
                if rec[1] <= 0:
                    del self.live[head]
                cls = "free-partial"
                if head == pfn:
                    self._drop_compound(pfn)
            else:
                self._forget_live(pfn, order)
                cls = "free-order-mismatch"
        elif order and any(p in self.live for p in range(pfn + 1, pfn + (1 << order))):
            self._forget_live(pfn, order)
            cls = "free-order-mismatch"
        else:
            cls = "deferred-init-free" if not seen and self._in_deferred(pfn) else "pre-capture-free"
        if cls == "free-order-mismatch":
            self._classify(cls, f"order-{order} free at {pfn:#x} is larger than its allocation")
        else:
            self.classes[cls] += 1
        if batched:
            self.batched[pfn] = cpu
            if len(self.batched) > _BATCHED_KEPT:
                self.batched.popitem(last=False)
        self._mark_seen(pfn, order)
        self._release(pfn, order, cpu)

    def _drop_compound(self, pfn: int) -> None:
        """A partial free of a compound head (the kernel would not): make the block non-compound."""
        store = self.mm.store
        if store.flags[pfn] & PG_head:
            nr = 1 << store.compound_order(pfn)
            store.flags_np[pfn : pfn + nr] &= np.uint16(~(PG_head | PG_tail) & 0xFFFF)
            store.private[pfn + 1] = 0
            self.notes["compound-dropped"] += 1

    def _release(self, pfn: int, order: int, cpu: int) -> None:
        """Bring the refcount to 'last reference dropped' and free through the normal path."""
        mm = self.mm
        refs = mm.refs
        store = mm.store
        zone = mm.page_zone_checked(pfn)
        f = store.flags[pfn]
        if f & PG_tail or (f & PG_head and store.compound_order(pfn) != order):
            head = store.compound_head(pfn) if f & PG_tail else pfn
            nr = 1 << store.compound_order(head)
            store.flags_np[head : head + nr] &= np.uint16(~(PG_head | PG_tail) & 0xFFFF)
            store.private[head + 1] = 0
            self.notes["compound-mismatch-repaired"] += 1
        if order:
            # the kernel frees a block whose other pages are at 0 with no flags of their own
            # (PG_tail on a compound page); what the model still holds there (other allocations
            # inside the range, page_ref events on tail pages) is reset to that
            nr = 1 << order
            compound = bool(store.flags[pfn] & PG_head)
            rc = store.refcount_np[pfn + 1 : pfn + nr]
            frozen = refs.frozen_mask(rc)
            keep = np.uint16(PG_hwpoison | PG_lru | (PG_tail if compound else 0))
            fl = store.flags_np[pfn + 1 : pfn + nr]
            if not bool(frozen.all()) or bool((fl & ~keep).any()):
                rc[~frozen] = refs.frozen_setter_raw()
                fl &= keep
                if not compound:
                    store.private_np[pfn + 1 : pfn + nr] = 0
                self.notes["tails-reset"] += 1
        count = refs.page_ref_count(pfn)
        if count > 1 or count < 0:
            refs.set_page_count(pfn, 1)
            self.notes["refcount-repaired"] += 1
            count = 1
        if count == 1:
            if not refs.put_page_testzero(pfn):
                self.notes["refcount-repaired"] += 1
                store.refcount[pfn] = refs.frozen_setter_raw()
        D.commit_free(zone, pfn, order, cpu, model_drains=not self.explicit_drain)

    def _reserved_release(self, pfn: int, order: int, cpu: int) -> None:
        """``free_reserved_page``: ClearPageReserved, init_page_count, __free_page; managed grows."""
        mm = self.mm
        nr = 1 << order
        in_memory = any(s <= pfn and pfn + nr <= e for s, e, _ in mm.memory_pfn_ranges)
        if not in_memory:
            self.classes["unknown-pfn"] += 1
            return
        store = mm.store
        zone = mm.page_zone_checked(pfn)
        nr_reserved = int(np.count_nonzero(store.flags_np[pfn : pfn + nr] & PG_reserved))
        store.flags_np[pfn : pfn + nr] &= np.uint16(~PG_reserved & 0xFFFF)
        store.refcount_np[pfn : pfn + nr] = mm.refs.frozen_setter_raw()
        mm.refs.set_page_count(pfn, 1)
        mm.adjust_managed_page_count(zone, nr_reserved)
        self.classes["reserved-release"] += 1
        self._mark_seen(pfn, order)
        self._release(pfn, order, cpu)

    def _put(self, event: dict[str, Any]) -> bool:
        freed = bool(self._orig[event["op"]](event))
        if freed and "pfn" in event:
            head = self.mm.store.compound_head(event["pfn"])
            self.live.pop(head, None)
        return freed

    def _batched(self, event: dict[str, Any]) -> None:
        self._ensure_ready()
        cpu = self._cpu(event)
        self._flush_others(cpu)
        pfn, order = event["pfn"], event.get("order", 0)
        last = self.last.get(cpu)
        self._note_last(cpu, "batched", pfn, order)
        self._do_free(pfn, order, cpu, last, batched=True)

    # ------------------------------------------------------------------ pcp moves
    def _zone_locked(self, event: dict[str, Any]) -> None:
        self._ensure_ready()
        self.explicit_refill = True
        mm = self.mm
        cpu = self._cpu(event)
        pfn, order = event["pfn"], event["order"]
        mt = migratetype_names.index(event["migratetype"])
        self._note_last(cpu, "zone_locked", pfn, order)
        zone = mm.page_zone(pfn)
        if zone is None or pfn + (1 << order) > zone.zone_end_pfn:
            self.classes["unknown-pfn"] += 1
            return
        if pfn & ((1 << order) - 1):
            self._classify("misaligned", f"zone_locked order-{order} at {pfn:#x}")
            return
        self._settle(pfn, order)
        if not self.pending.get(cpu):
            self.pending_pred[cpu] = D.predict_batch_head(zone, order, mt, cpu)
        hit = D.find_free_head(zone, pfn, order)
        if hit is not None and hit[2] != mt and mt < MIGRATE_PCPTYPES and hit[2] < MIGRATE_PCPTYPES:
            self._claim(zone, hit, mt)
        src = D.take_block(mm, pfn, order, cpu)
        cls = self._after_take(src, pfn, order, "refill")
        if src in (D.SRC_RESERVED, D.SRC_NO_ZONE):
            return
        self._mark_seen(pfn, order)
        self._add_pending(cpu, pfn, order, mt, cls)

    def _claim(self, zone: Any, hit: tuple[int, int, int], new_mt: int) -> None:
        """The kernel took from ``new_mt``'s list a block the model has on another type's list:
        it claimed the pageblock first (``try_to_claim_block``): convert it the same way."""
        D.claim_pageblock(zone, hit[0], new_mt)
        self.notes["pageblock-claimed"] += 1

    def _drain(self, event: dict[str, Any]) -> None:
        self._ensure_ready()
        self.explicit_drain = True
        mm = self.mm
        cpu = self._cpu(event)
        self._flush_others(cpu)
        pfn, order = event["pfn"], event["order"]
        self._note_last(cpu, "drain", pfn, order)
        zone = mm.page_zone(pfn)
        if zone is None or pfn + (1 << order) > zone.zone_end_pfn:
            self.classes["unknown-pfn"] += 1
            return
        if pfn & ((1 << order) - 1):
            self._classify("misaligned", f"drain order-{order} at {pfn:#x}")
            return
        self._settle(pfn, order)
        if D.pcp_to_buddy(zone, pfn, order, cpu) is not None:
            self.classes["drain"] += 1
            self._mark_seen(pfn, order)
            return
        state = D.block_state(mm, pfn, order, cpu)
        if state in (D.SRC_BUDDY, D.SRC_PCP, D.SRC_MIXED):
            self._classify(
                "drain-not-on-pcp", f"order-{order} block {pfn:#x} is not on a pcp list in the model"
            )
            return
        if state == D.SRC_RESERVED:
            self.classes["unknown-pfn"] += 1
            return
        head = self._live_head(pfn)
        seen = self._was_seen(pfn, order)
        self._forget_live(pfn, order)
        D.force_free(zone, pfn, order)
        self._mark_seen(pfn, order)
        if head is not None or seen:
            self._classify(
                "drain-of-allocated", f"order-{order} block {pfn:#x} allocated in the trace, not freed"
            )
        else:
            self.classes["pre-capture-page"] += 1

    def _extfrag(self, event: dict[str, Any]) -> None:
        self._ensure_ready()
        mm = self.mm
        cpu = self._cpu(event)
        pfn = event["pfn"]
        order = event["alloc_order"]
        fb_order = event["fallback_order"]
        alloc_mt = migratetype_names.index(event["alloc_migratetype"])
        self.classes["extfrag"] += 1
        batch = self.pending.get(cpu)
        if batch and any(p[0] == pfn for p in batch):
            return  # a claim whose take the zone_locked event already applied
        zone = mm.page_zone(pfn)
        if zone is None or pfn + (1 << order) > zone.zone_end_pfn or pfn & ((1 << order) - 1):
            return
        self._settle(pfn, order)
        hit = D.find_free_head(zone, pfn, order)
        if hit is None:
            self.notes["extfrag-block-not-free"] += 1
            return
        if not batch:
            self.pending_pred[cpu] = D.predict_batch_head(zone, order, alloc_mt, cpu)
        if fb_order >= mm.pageblock_order and hit[2] != alloc_mt:
            self._claim(zone, hit, alloc_mt)  # whole-pageblock claim: no zone_locked event
        D.take_block(mm, pfn, order, cpu)
        self._mark_seen(pfn, order)
        self._add_pending(cpu, pfn, order, alloc_mt, "extfrag")

    # ------------------------------------------------------------------ refcounts, marks
    def _page_ref(self, event: dict[str, Any]) -> object:
        if "pfn" not in event:
            return self._orig["page_ref"](event)
        self._ensure_ready()
        pfn = event["pfn"]
        if self._live_head(pfn) is None or D.block_state(self.mm, pfn, 0) != D.SRC_ALLOCATED:
            self.classes["pre-capture-page-ref"] += 1
            return None
        refs = self.mm.refs
        fn = event["fn"]
        if fn not in refs.API:
            alt = {
                "page_ref_add_unless_zero": refs.speculative_get,
                "page_ref_add_unless_frozen": refs.speculative_get,
                "page_ref_add_unless": refs.speculative_get,
            }.get(fn)
            if alt is None or alt not in refs.API:
                self.notes["page-ref-fn-missing"] += 1
                return None
            fn = alt
        args = [event[a] for a in ("nr", "count", "v") if a in event]
        ret = refs.call(fn, pfn, *args)
        self.classes["page-ref"] += 1
        if "ret" in event and ret is not None and ret != event["ret"]:
            self.notes["page-ref-ret-differs"] += 1
        return ret

    def _mark(self, event: dict[str, Any]) -> None:
        self._orig["mark"](event)
        label = event["label"]
        if label.startswith("ftrace: CPU") and " lost " in label:
            self.classes["lost-events"] += 1
            self.last.clear()

    # ------------------------------------------------------------------ end
    def finish(self) -> None:
        """End of the trace: give pending refills to their pcp lists."""
        for cpu in list(self.pending):
            self._flush(cpu)

    def report(self, compare: dict[str, Any] | None = None) -> dict[str, Any]:
        """:func:`buddysim.report.reconcile.reconcile_data` of this replay."""
        from buddysim.report.reconcile import reconcile_data

        return reconcile_data(self, compare)


def install(
    engines: Sequence[Engine], header: dict[str, Any], initial_state: InitialState | None = None
) -> list[DirectedReplay]:
    """A :class:`DirectedReplay` on each engine (the replay command's entry point)."""
    return [DirectedReplay(e, header=header, initial_state=initial_state) for e in engines]


# ---------------------------------------------------------------------------------- replay command
def add_replay_options(parser: Any) -> None:
    """``--directed``, ``--initial-state``, ``--compare`` for ``buddysim replay``."""
    import argparse

    parser.add_argument(
        "--directed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="directed replay: allocations take the pfn the trace names, pcp moves follow the "
        "recorded kmem events, every event is classified, the agreement of the model's own choice "
        "is measured (default: on for traces imported from ftrace, off otherwise)",
    )
    parser.add_argument(
        "--initial-state",
        metavar="FILE",
        action="append",
        help="seed the model before a directed replay: a captured /proc/buddyinfo or /proc/zoneinfo "
        "(free blocks per zone) and/or a boot log (the machine); may be given more than once",
    )
    parser.add_argument(
        "--compare",
        metavar="BUDDYINFO",
        help="a captured /proc/buddyinfo: print the model's final free blocks per zone and order "
        "beside it, with the difference",
    )


@dataclass
class ReplaySetup:
    """What ``buddysim replay`` decided from the directed-replay options."""

    directed: bool
    initial_state: InitialState | None
    compare_rows: list[BuddyinfoRow] | None
    glue: list[DirectedReplay] = field(default_factory=list)


def replay_setup(args: Any, header: dict[str, Any]) -> ReplaySetup:
    """Read ``--initial-state`` and ``--compare`` files (BadInput on bad ones) and decide on
    directed mode: ``--directed``/``--no-directed``, else on for ftrace imports."""
    from buddysim.report.reconcile import parse_buddyinfo

    directed = args.directed if args.directed is not None else is_directed_source(header)
    initial = load_initial_state(args.initial_state) if args.initial_state else None
    if initial is not None and (initial.buddyinfo or initial.zoneinfo) and not directed:
        raise BadInput("--initial-state with a buddyinfo/zoneinfo seeds a directed replay; add --directed")
    rows = parse_buddyinfo(_read_text(args.compare), args.compare) if args.compare else None
    return ReplaySetup(directed, initial, rows)


def replay_attach(setup: ReplaySetup, engines: Sequence[Engine], header: dict[str, Any]) -> None:
    """Install directed replay on every engine (when directed)."""
    if setup.directed:
        setup.glue = install(engines, header, setup.initial_state)


def replay_finish(setup: ReplaySetup) -> None:
    """After the last event, before the end-of-trace validators."""
    for g in setup.glue:
        g.finish()


def replay_reports(setup: ReplaySetup, engines: Sequence[Engine], reports: list[dict[str, Any]]) -> None:
    """Add ``directed`` (the reconciliation report) and ``compare`` to each engine's report."""
    from buddysim.report.reconcile import compare_buddyinfo

    glue = {id(g.engine): g for g in setup.glue}
    for e, data in zip(engines, reports, strict=True):
        cmp = compare_buddyinfo(e.mm, setup.compare_rows) if setup.compare_rows is not None else None
        g = glue.get(id(e))
        if g is not None:
            data["directed"] = g.report(cmp)
        elif cmp is not None:
            data["compare"] = cmp


def replay_render(data: dict[str, Any], console: Any) -> None:
    """Print the reconciliation report (or the compare table) of one engine's report."""
    from buddysim.report.reconcile import render_compare, render_reconcile

    if "directed" in data:
        render_reconcile(data["directed"], console)
    elif "compare" in data:
        render_compare(data["compare"], console)
