"""Exhaustive exploration of every interleaving of a litmus scenario under one refcount model.

The state graph's nodes are :class:`~buddysim.litmus.oracle.State` values (raw word, ghost page,
mapping slot, and per thread: program counter, the leaves recorded in its current action,
references held, frozen hold). A transition is one atomic step of one thread (see
:mod:`buddysim.litmus.stepper`); steps of ghost-only actions are transitions too. The graph is a
DAG (every step extends a log or moves a program counter), explored depth-first with a visited
table, and reduced two ways:

* *independent steps first* (a persistent set of one): when a thread's next step only touches
  variables no other thread can touch for the rest of its program (a re-validation once nobody
  can free, re-allocate or unmap the page any more, say) and does not change the word or the
  page, only that step is explored from the state;
* *sleep sets* with Godefroid's state-caching rule: after exploring step ``t`` from a state, a
  sibling step ``u`` independent of ``t`` (by the variables both actually touched) is not
  explored again after ``t``; a state reached again with a smaller sleep set re-explores what
  it previously skipped.

Both preserve every reachable final state and every reachable violation; what is recorded is
the explored graph, in which a breadth-first search finds the shortest counterexample and the
shortest witness for each property, and in which the number of complete schedules is counted.
Run with ``por=False`` to explore the full graph (its schedule count is the naive number of
interleavings).

Bounded loops: an action that needs more than ``bound`` atomic steps (a CAS loop starved by the
other threads) stops its thread there; such states are marked, and final-state checks are
skipped on them. The explorer does no I/O.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field

from buddysim.refcount.page_ref import PageRefModel

from .oracle import BOUNDED, OOPS, RUNNING, State, Violation, state_violations, terminal_violations
from .program import PAGE, REFS_ALL, WORD
from .scenario import Scenario
from .semantics import Edge, Machine, StepRow, Trace

__all__ = ["Exploration", "Explorer"]


@dataclass
class Exploration:
    """Everything one exploration found: counts, verdicts, shortest traces."""

    model: str
    states: int
    transitions: int
    schedules: int
    seconds: float
    terminal_states: int
    bound: int
    bound_hits: int
    violations: dict[str, Trace] = field(default_factory=dict)
    violation_messages: dict[str, str] = field(default_factory=dict)
    witnesses: dict[str, Trace | None] = field(default_factory=dict)
    findings: tuple[str, ...] = ()
    terminal_set: frozenset[State] = frozenset()

    def verdict(self, invariant: str) -> str:
        return "violation" if invariant in self.violations else "pass"


def _conflict(r1: frozenset[str], w1: frozenset[str], r2: frozenset[str], w2: frozenset[str]) -> bool:
    if w1 & (r2 | w2) or w2 & r1:
        return True
    if REFS_ALL in r1 and any(x.startswith("refs:") for x in w2):
        return True
    return REFS_ALL in r2 and any(x.startswith("refs:") for x in w1)


class Explorer:
    """Explores one scenario under one model class.

    ``por`` turns both reductions on or off; ``bound`` overrides the scenario's per-action
    atomic-step bound.
    """

    def __init__(
        self,
        scenario: Scenario,
        model_cls: type[PageRefModel],
        *,
        por: bool = True,
        bound: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.model_cls = model_cls
        self.por = por
        self.machine = Machine(scenario, model_cls, bound=bound)
        self.bound = self.machine.bound

    def _ample(self, s: State, enabled: list[Edge]) -> list[Edge]:
        """A single step no other thread can ever interfere with, if there is one."""
        if len(enabled) < 2:
            return enabled
        for e in enabled:
            if WORD in e.writes or PAGE in e.writes:
                continue
            th = s.threads[e.tid]
            ins = self.machine.programs[e.tid].instrs[th.pc]
            r, w = ins.reads, ins.writes
            if WORD in w or PAGE in w:
                continue
            clash = False
            for u, tu in enumerate(s.threads):
                if u == e.tid or tu.status != RUNNING:
                    continue
                p = self.machine.programs[u]
                if _conflict(r, w, p.rest_reads[tu.pc], p.rest_writes[tu.pc]):
                    clash = True
                    break
            if not clash:
                return [e]
        return enabled

    # ------------------------------------------------------------------ search
    def explore(self) -> Exploration:
        """Explore every interleaving; returns counts, verdicts and shortest traces."""
        t0 = time.perf_counter()
        s0, setup_rows, setup_viol, self.machine.raw0 = self.machine.initial_state()
        self._ids: dict[State, list] = {}
        self._states: list[State] = []
        self._edges: list[list[tuple[int, int, tuple[Violation, ...], tuple[str, ...]]]] = []
        self._sviol: dict[int, list[Violation]] = {}
        self._terminal: list[int] = []
        self._truncated: set[int] = set()
        self._bound_hits = 0
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))
        try:
            self._visit(s0, {})
        finally:
            sys.setrecursionlimit(limit)
        seconds = time.perf_counter() - t0
        if setup_viol:
            self._sviol.setdefault(0, [])[:0] = setup_viol
        return self._summarise(s0, setup_rows, seconds)

    def _enabled(self, s: State) -> list[Edge]:
        out = []
        for tid in range(len(s.threads)):
            e = self.machine.succ(s, tid)
            if e is not None:
                out.append(e)
        return out

    def _new_state(self, s: State) -> int:
        sid = len(self._states)
        self._states.append(s)
        self._edges.append([])
        v = state_violations(self.machine.plain, s)
        if v:
            self._sviol[sid] = v
        if any(t.status in (BOUNDED, OOPS) for t in s.threads):
            self._truncated.add(sid)
        return sid

    def _visit(self, s: State, sleep: dict[int, tuple[frozenset[str], frozenset[str]]]) -> int:
        entry = self._ids.get(s)
        if entry is None:
            sid = self._new_state(s)
            entry = self._ids[s] = [sid, frozenset(sleep)]
            enabled = self._enabled(s)
            if not enabled:
                self._terminal.append(sid)
                if sid not in self._truncated:
                    v = terminal_violations(self.machine.plain, s, self.machine.names, self.machine.external)
                    if v:
                        self._sviol.setdefault(sid, []).extend(v)
                return sid
            cands = self._ample(s, enabled) if self.por else enabled
            explored: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
            for e in cands:
                if e.tid in sleep:
                    continue
                child_sleep: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
                if self.por:
                    for u, fp in (*sleep.items(), *explored.items()):
                        if not _conflict(fp[0], fp[1], e.reads, e.writes):
                            child_sleep[u] = fp
                self._record(sid, e, self._visit(e.state, child_sleep))
                explored[e.tid] = (e.reads, e.writes)
            return sid
        sid, stored = entry
        if stored <= sleep.keys():
            return sid
        need = stored - sleep.keys()
        entry[1] = stored & sleep.keys()
        cands = self._ample(s, self._enabled(s))
        for e in cands:
            if e.tid not in need:
                continue
            child_sleep = {u: fp for u, fp in sleep.items() if not _conflict(fp[0], fp[1], e.reads, e.writes)}
            self._record(sid, e, self._visit(e.state, child_sleep))
        return sid

    def _record(self, sid: int, e: Edge, child: int) -> None:
        self._edges[sid].append((e.tid, child, e.violations, e.hits))
        if e.bounded:
            self._bound_hits += 1

    # ------------------------------------------------------------------ results
    def _summarise(self, s0: State, setup_rows: tuple[StepRow, ...], seconds: float) -> Exploration:
        n = len(self._states)
        dist = [-1] * n
        parent: list[tuple[int, int]] = [(-1, -1)] * n
        dist[0] = 0
        order = [0]
        q = deque([0])
        while q:
            u = q.popleft()
            for tid, c, _, _ in self._edges[u]:
                if dist[c] < 0:
                    dist[c] = dist[u] + 1
                    parent[c] = (u, tid)
                    order.append(c)
                    q.append(c)
        best: dict[str, tuple[int, int, int, int, str]] = {}  # inv -> (depth, seq, sid, tid|-1, msg)
        wbest: dict[str, tuple[int, int, int, int]] = {}
        seq = 0
        for u in order:
            for viol in self._sviol.get(u, ()):
                seq += 1
                cand = (dist[u], seq, u, -1, viol.message)
                if viol.invariant not in best or cand < best[viol.invariant]:
                    best[viol.invariant] = cand
            for tid, _c, viols, hits in self._edges[u]:
                for viol in viols:
                    seq += 1
                    cand = (dist[u] + 1, seq, u, tid, viol.message)
                    if viol.invariant not in best or cand < best[viol.invariant]:
                        best[viol.invariant] = cand
                for h in hits:
                    seq += 1
                    wc = (dist[u] + 1, seq, u, tid)
                    if h not in wbest or wc < wbest[h]:
                        wbest[h] = wc

        def path(sid: int, last: int) -> list[int]:
            tids = []
            while sid > 0:
                p, t = parent[sid]
                tids.append(t)
                sid = p
            tids.reverse()
            if last >= 0:
                tids.append(last)
            return tids

        exp = Exploration(
            model=self.model_cls.name,
            states=n,
            transitions=sum(len(e) for e in self._edges),
            schedules=self._count_paths(),
            seconds=seconds,
            terminal_states=len(self._terminal),
            bound=self.bound,
            bound_hits=self._bound_hits,
            findings=tuple(sorted(self.machine.findings)),
            terminal_set=frozenset(self._states[i] for i in self._terminal),
        )
        for inv, (_, _, sid, tid, msg) in sorted(best.items()):
            exp.violations[inv] = self.machine.replay(s0, setup_rows, path(sid, tid))
            exp.violation_messages[inv] = msg
        for w in self.scenario.witness:
            wb = wbest.get(w.name)
            exp.witnesses[w.name] = (
                None if wb is None else self.machine.replay(s0, setup_rows, path(wb[2], wb[3]))
            )
        return exp

    def _count_paths(self) -> int:
        """Complete schedules in the explored graph (maximal paths from the initial state)."""
        memo: dict[int, int] = {}
        stack = [(0, False)]
        while stack:
            u, post = stack.pop()
            if u in memo:
                continue
            kids = self._edges[u]
            if not kids:
                memo[u] = 1
                continue
            if post:
                memo[u] = sum(memo[c] for _, c, _, _ in kids)
                continue
            stack.append((u, True))
            stack.extend((c, False) for _, c, _, _ in kids if c not in memo)
        return memo[0]
