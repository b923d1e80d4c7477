"""The inspector's time machine: an Engine over an in-memory trace, with checkpoints to go back.

No Textual here: :class:`InspectSession` is what the UI drives and tests call directly. It holds
the trace's events in a list, an :class:`~buddysim.engine.Engine` reading them by position, and an
:class:`~buddysim.report.find_pfn.AllocTracker`. Going forward steps the engine (SimPy-style: the
engine never sleeps; pacing is the UI's). Going back restores the nearest checkpoint at or before
the target and replays from there, so stepping back one event costs one restore plus fewer than
``every`` events.

A checkpoint is a deep copy of the engine (machine, handles, page_frag caches, marks) and the
tracker, with the page store left out: its arrays are kept as a sparse diff against a keyframe (a
full copy, retaken when the diff outgrows a quarter of the store), and restoring writes the
keyframe and the diff back into the live arrays. Checkpoints are taken every ``every`` events
within a memory budget: when the budget is reached every other checkpoint is dropped and the
spacing doubles, so the number of checkpoints stays logarithmic in the trace length. A machine
whose keyframe would not fit a quarter of the budget (the 1 TiB preset: 1.9 GB of page state)
keeps no checkpoint: going back rebuilds it from its config and replays, which
:attr:`InspectSession.rebuild_on_back` tells the UI so it can say so.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from buddysim.engine import EndOfTrace, Engine, EngineView
from buddysim.findings import Finding
from buddysim.machine import Machine
from buddysim.mm.mmzone import FreeList
from buddysim.mm.page_store import PageStore
from buddysim.report.find_pfn import AllocTracker, PfnInfo, find_pfn
from buddysim.report.pagemap import DEFAULT_MAX_CELLS, PageMap, zone_pagemap

__all__ = ["DEFAULT_BUDGET", "DEFAULT_EVERY", "InspectSession", "clone_state"]

DEFAULT_EVERY = 64
DEFAULT_BUDGET = 512 << 20
#: bytes a checkpoint costs per free-list / pcp / handle entry (dict slot + int), an estimate
_ENTRY_BYTES = 160

Event = tuple[int, dict[str, Any]]


class _Feed:
    """The engine's event source: the trace list read by position (deepcopy shares the list)."""

    __slots__ = ("events", "pos")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.pos = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> Event:
        if self.pos >= len(self.events):
            raise StopIteration
        item = self.events[self.pos]
        self.pos += 1
        return item

    def __deepcopy__(self, memo: dict[int, Any]) -> _Feed:
        f = _Feed(self.events)
        f.pos = self.pos
        memo[id(self)] = f
        return f


_ARRAYS = ("refcount_np", "flags_np", "private_np", "pageblock_mt_np")
_VIEWS = ("refcount", "flags", "private", "pageblock_mt")


class _Slot:
    """Stands for one page-store array (or memoryview) inside a checkpoint's object graph."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __deepcopy__(self, memo: dict[int, Any]) -> _Slot:
        return self


_SLOTS = {name: _Slot(name) for name in (*_ARRAYS, *_VIEWS)}


def _ghost_store(store: PageStore) -> PageStore:
    """A PageStore with the scalars of ``store`` and slots where its arrays were."""
    ghost = PageStore.__new__(PageStore)
    ghost.end_pfn = store.end_pfn
    ghost.pageblock_order = store.pageblock_order
    ghost.page_group_by_mobility_disabled = store.page_group_by_mobility_disabled
    for name, slot in _SLOTS.items():
        setattr(ghost, name, slot)
    return ghost


def _lists(mm: Machine) -> list[FreeList]:
    out: list[FreeList] = []
    for z in mm.zones:
        for area in z.free_area:
            out.extend(area.free_list)
        for pcp in z.per_cpu_pageset:
            out.extend(pcp.lists)
    return out


def _seed(memo: dict[int, Any], engine: Engine, tracker: AllocTracker) -> None:
    mm = engine.mm
    # immutable and shared: the call-site table (MappingProxyType inside), the config, the layout
    for shared in (mm.sites, mm.config, mm.layout):
        memo[id(shared)] = shared
    # the big containers hold only immutable values (ints, int tuples, frozen records): copy them
    # shallowly at C speed instead of letting deepcopy walk every entry
    for lst in _lists(mm):
        memo[id(lst)] = FreeList(lst)
    for container in (engine.handles, engine.freed_handles, tracker.records, mm.findings):
        memo[id(container)] = copy.copy(container)


def clone_state(
    engine: Engine, tracker: AllocTracker, store: PageStore | None = None
) -> tuple[Engine, AllocTracker]:
    """A deep copy of an engine and its tracker.

    The page store's place is taken by ``store`` (its arrays and memoryviews keep their
    identity; the caller fills them) or, without one, by a ghost whose arrays are placeholders.
    A graph holding a ghost goes back to life by cloning it with a real ``store``.
    """
    memo: dict[int, Any] = {}
    old = engine.mm.store
    target = store if store is not None else _ghost_store(old)
    for name in (*_ARRAYS, *_VIEWS):
        memo[id(getattr(old, name))] = getattr(target, name)
    memo[id(old)] = target
    _seed(memo, engine, tracker)
    return copy.deepcopy((engine, tracker), memo)


class _Frames:
    """The page store's contents at checkpoints: full keyframes, and sparse diffs against one.

    Fresh memory is expensive to fault in (a 9 MB copy into new pages costs 60x a copy into
    touched ones here), so a checkpoint stores only the positions that differ from its keyframe,
    found with a comparison into a reused scratch buffer; a new keyframe is taken when the diff
    grows past a quarter of the store. Restoring copies the keyframe into the live arrays (no
    allocation) and scatters the diff.
    """

    def __init__(self, store: PageStore) -> None:
        self.keyframes: dict[int, tuple[np.ndarray, ...]] = {}
        self._next = 0
        self.limit = store.nbytes // 4
        self._scratch = [np.empty(getattr(store, a).shape, dtype=bool) for a in _ARRAYS]

    def capture(self, store: PageStore) -> tuple[int, tuple[tuple[np.ndarray, np.ndarray], ...], int]:
        """(keyframe id, per-array (positions, values), bytes of the diff)."""
        if self.keyframes:
            key = max(self.keyframes)
            diffs = []
            nbytes = 0
            for name, base, scratch in zip(_ARRAYS, self.keyframes[key], self._scratch, strict=True):
                arr = getattr(store, name)
                np.not_equal(arr, base, out=scratch)
                idx = np.flatnonzero(scratch)
                vals = arr[idx]
                nbytes += idx.nbytes + vals.nbytes
                diffs.append((idx, vals))
                if nbytes > self.limit:
                    break
            else:
                return key, tuple(diffs), nbytes
        key = self._next
        self._next += 1
        self.keyframes[key] = tuple(getattr(store, a).copy() for a in _ARRAYS)
        return key, (), 0

    def restore(self, store: PageStore, key: int, diffs: tuple[tuple[np.ndarray, np.ndarray], ...]) -> None:
        for i, name in enumerate(_ARRAYS):
            arr = getattr(store, name)
            np.copyto(arr, self.keyframes[key][i])
            if diffs:
                idx, vals = diffs[i]
                arr[idx] = vals

    def keep_only(self, used: set[int]) -> None:
        for key in [k for k in self.keyframes if k not in used]:
            del self.keyframes[key]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for frame in self.keyframes.values() for a in frame)


@dataclass
class _Checkpoint:
    engine: Engine
    tracker: AllocTracker
    keyframe: int
    diffs: tuple[tuple[np.ndarray, np.ndarray], ...]
    page_group_by_mobility_disabled: bool
    cost: int


class InspectSession:
    """Step, go back, jump and search in a trace replayed on a machine.

    ``make_machine`` builds a fresh (not yet booted) machine; ``events`` is the whole trace as
    ``(line, event)`` pairs. Unless the trace does its own memblock handoff, the machine is booted
    before event 1, so index 0 shows the state right after ``memblock_free_all``.
    """

    def __init__(
        self,
        make_machine: Callable[[], Machine],
        events: list[Event],
        *,
        path: str = "trace",
        every: int = DEFAULT_EVERY,
        budget: int = DEFAULT_BUDGET,
        strict: bool = False,
        source: str = "",
    ) -> None:
        self.make_machine = make_machine
        self.events = events
        self.path = path
        self.source = source
        self.strict = strict
        self.budget = budget
        self.every = max(1, every)
        self.total = len(events)
        self.trace_boots = any(str(ev.get("op", "")).startswith("memblock") for _, ev in events)
        #: label -> event index of every mark in the trace (known before it is reached)
        self.marks: dict[str, int] = {}
        for i, (_line, ev) in enumerate(events):
            if ev.get("op") == "mark":
                self.marks.setdefault(str(ev["label"]), i + 1)
        self.checkpoints: dict[int, _Checkpoint] = {}
        #: events replayed by the last move (a restore counts as 0): what "back is instant" costs
        self.last_replayed = 0
        self.last_seconds = 0.0
        self.error: str | None = None
        self.version = 0  # bumps on every state change (caches key on it)
        self._pagemaps: dict[tuple[int, int, int], PageMap] = {}
        self._view: EngineView | None = None
        self._frames: _Frames | None = None
        self._reset()
        self.rebuild_on_back = self.mm.store.nbytes + self._entries_cost() > budget // 4
        self._save_checkpoint()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        mm = self.make_machine()
        if not self.trace_boots:
            mm.boot()
        self.feed = _Feed(self.events)
        self.engine = Engine(mm, self.feed, strict=self.strict, path=self.path)
        self.tracker = AllocTracker().attach(self.engine)
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._view = None
        self._pagemaps.clear()

    @property
    def mm(self) -> Machine:
        return self.engine.mm

    @property
    def index(self) -> int:
        """Events applied so far (0: the initial state)."""
        return self.engine.index

    def view(self) -> EngineView:
        """The engine's view model at the current index (cached until the state changes)."""
        if self._view is None:
            self._view = self.engine.view(findings_tail=50)
        return self._view

    def event_at(self, index: int) -> Event | None:
        """The ``(line, event)`` applied as event ``index`` (1-based)."""
        return self.events[index - 1] if 1 <= index <= self.total else None

    # ------------------------------------------------------------------ checkpoints
    def _entries_cost(self) -> int:
        """Bytes a checkpoint's object graph costs, roughly (free-list, pcp, handle entries)."""
        mm = self.mm
        entries = sum(a.nr_free for z in mm.zones for a in z.free_area)
        entries += sum(len(lst) for z in mm.zones for p in z.per_cpu_pageset for lst in p.lists)
        entries += len(self.engine.handles) + len(self.engine.freed_handles) + len(self.tracker.records)
        return _ENTRY_BYTES * entries + (64 << 10)

    @property
    def checkpoint_bytes(self) -> int:
        """Memory held by checkpoints: diffs and object graphs, plus the keyframes."""
        frames = self._frames.nbytes if self._frames is not None else 0
        return sum(c.cost for c in self.checkpoints.values()) + frames

    def _save_checkpoint(self) -> None:
        if self.rebuild_on_back or self.index in self.checkpoints:
            return
        if self._frames is None:
            self._frames = _Frames(self.mm.store)
        store = self.mm.store
        key, diffs, nbytes = self._frames.capture(store)
        engine, tracker = clone_state(self.engine, self.tracker)
        self.checkpoints[self.index] = _Checkpoint(
            engine, tracker, key, diffs, store.page_group_by_mobility_disabled, nbytes + self._entries_cost()
        )
        while self.checkpoint_bytes > self.budget and len(self.checkpoints) > 1:
            self.every *= 2
            for i in sorted(self.checkpoints):
                if i and i % self.every:
                    del self.checkpoints[i]
            self._frames.keep_only({c.keyframe for c in self.checkpoints.values()})

    def _restore(self, target: int) -> None:
        """Restore the newest checkpoint at or before ``target`` (or rebuild from scratch)."""
        base = max((i for i in self.checkpoints if i <= target), default=None)
        if base is None or self._frames is None:
            self._reset()
            return
        cp = self.checkpoints[base]
        store = self.mm.store  # the live arrays are overwritten in place: no fresh memory
        self._frames.restore(store, cp.keyframe, cp.diffs)
        store.page_group_by_mobility_disabled = cp.page_group_by_mobility_disabled
        self.engine, self.tracker = clone_state(cp.engine, cp.tracker, store)
        self.feed = self.engine._events  # type: ignore[assignment]
        self._changed()

    # ------------------------------------------------------------------ moving
    def _step(self) -> bool:
        try:
            self.engine.step()
        except EndOfTrace:
            return False
        except Exception as e:  # a strict-mode anomaly or a model crash: stop here, say why
            self.error = f"event {self.engine.index}: {type(e).__name__}: {e}"
            return False
        if self.engine.index % self.every == 0:
            self._save_checkpoint()
        return True

    def goto(self, target: int) -> int:
        """Move to event index ``target`` (clamped to 0..total); returns the index reached."""
        t0 = time.perf_counter()
        target = max(0, min(target, self.total))
        replayed = 0
        if target != self.index:
            self.error = None
            base = max((i for i in self.checkpoints if i <= target), default=None)
            if target < self.index or (base is not None and base > self.index):
                self._restore(target)
            while self.index < target:
                if not self._step():
                    break
                replayed += 1
            self._changed()
        self.last_replayed = replayed
        self.last_seconds = time.perf_counter() - t0
        return self.index

    def step(self, n: int = 1) -> int:
        return self.goto(self.index + n)

    def back(self, n: int = 1) -> int:
        return self.goto(self.index - n)

    def goto_mark(self, label: str) -> int:
        if label not in self.marks:
            raise KeyError(label)
        return self.goto(self.marks[label])

    def next_finding(self) -> Finding | None:
        """Run to the next event that records a finding; None (and stay) if none is left."""
        start = self.index
        n0 = self.mm.nr_findings
        t0 = time.perf_counter()
        replayed = 0
        while self.index < self.total:
            if not self._step():
                break
            replayed += 1
            if self.mm.nr_findings > n0:
                break
        self._changed()
        self.last_replayed, self.last_seconds = replayed, time.perf_counter() - t0
        if self.mm.nr_findings > n0:
            return self.mm.findings[-1] if len(self.mm.findings) >= self.mm.nr_findings else None
        self.goto(start)
        return None

    def prev_finding(self) -> Finding | None:
        """Go back to the newest event before the current one that recorded a finding."""
        earlier = [f for f in self.mm.findings if f.event is not None and 0 < f.event < self.index]
        if not earlier:
            return None
        f = max(earlier, key=lambda f: f.event or 0)
        self.goto(f.event or 0)
        return f

    # ------------------------------------------------------------------ questions
    def find(self, pfn: int) -> PfnInfo:
        return find_pfn(self.mm, pfn, self.tracker)

    def pagemap(self, zone_index: int, max_cells: int = DEFAULT_MAX_CELLS) -> PageMap:
        """The page map of ``mm.zones[zone_index]`` (cached per state and size)."""
        key = (self.version, zone_index, max_cells)
        pm = self._pagemaps.get(key)
        if pm is None:
            if len(self._pagemaps) > 8:
                self._pagemaps.clear()
            pm = self._pagemaps[key] = zone_pagemap(self.mm, self.mm.zones[zone_index], max_cells)
        return pm
