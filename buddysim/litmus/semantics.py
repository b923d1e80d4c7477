"""One step of one thread: the model's atomic step plus the oracle's bookkeeping.

:class:`Machine` is the transition relation the explorer searches. It compiles the scenario's
threads, builds the model behind a :class:`~buddysim.litmus.stepper.Stepper`, runs the
``setup`` program, and for a state and a thread computes the successor: the next atomic step of
the thread's current action (or the single step of a ghost-only action) and, when the action
completes, what it means for the ghost page and the thread (a get that succeeded holds ``nr``
references; a put whose dec-and-test returned true frees the page with the destructor the action
names; an allocation starts an epoch; ...), the invariants checked on the way, witness matches,
control flow, and the variables the step read and wrote (for the reduction). With
``detail=True`` it also renders the step for a step table.

Simplified: a put's reference is gone at its first write to the word (the subtraction), not at
the end of the action; ghost-only actions take one step; ``await`` blocks a thread until the
page is free / allocated. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from buddysim.errors import BadInput
from buddysim.refcount.page_ref import DebugVM, ListStorage, PageRefModel, wrap32
from buddysim.refcount.sites import SITE_TABLES, SiteTable

from .oracle import (
    ALLOCATED,
    BOUNDED,
    DONE,
    FREE,
    OOPS,
    RESERVED,
    RUNNING,
    PageGhost,
    State,
    ThreadGhost,
    Violation,
    alloc_page,
    free_page,
    revalidate,
    state_violations,
    terminal_violations,
)
from .program import END, PAGE, WORD, Instr, Op, compile_program, refs_var, run_call
from .scenario import RawExpr, Scenario, WitnessSpec, scenario_error
from .stepper import StepOutcome, Stepper, fmt_word

__all__ = ["Edge", "Machine", "StepRow", "Trace", "eval_raw", "site_table_for"]


def site_table_for(model_cls: type[PageRefModel]) -> SiteTable:
    """The call-site table a model ships with (``SITE_TABLE`` attribute or ``default_sites``)."""
    own = getattr(model_cls, "SITE_TABLE", None)
    if isinstance(own, SiteTable):
        return own
    try:
        return SITE_TABLES[model_cls.default_sites]
    except KeyError:
        raise BadInput(
            f"model {model_cls.name!r} names site table {model_cls.default_sites!r}, which does not exist"
        ) from None


def eval_raw(expr: RawExpr, model: PageRefModel) -> int:
    """The raw word ``expr`` means under ``model``."""
    if expr.base == "lit":
        base = expr.value
    elif expr.base == "F":
        base = -0x80000000
    elif expr.base == "frozen":
        base = model.frozen_raw()
    else:
        base = model.raw_for_count(expr.value)
    return wrap32(base + expr.offset)


class Edge(NamedTuple):
    """One explored transition: thread, successor, footprint, what it violated or witnessed."""

    tid: int
    state: State
    reads: frozenset[str]
    writes: frozenset[str]
    violations: tuple[Violation, ...]
    hits: tuple[str, ...]
    bounded: bool
    row: StepRow | None


class StepRow(NamedTuple):
    """A row of a step table: thread, what it did (the atomic op and its result), word after."""

    thread: str
    action: str
    raw_after: int
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class Trace:
    """A schedule from the initial state, rendered step by step (``setup`` rows first)."""

    setup: tuple[StepRow, ...]
    steps: tuple[StepRow, ...]
    initial_raw: int
    #: what the state the threads start from already violates (shown with the setup)
    initial_violations: tuple[Violation, ...] = ()


class Machine:
    """The transition relation of one scenario under one model class.

    ``bound`` overrides the scenario's per-action atomic-step bound.
    """

    def __init__(
        self, scenario: Scenario, model_cls: type[PageRefModel], *, bound: int | None = None
    ) -> None:
        self.scenario = scenario
        self.model_cls = model_cls
        self.bound = bound or scenario.bound
        self.debug_vm = DebugVM(scenario.debug_vm)
        self.sites = site_table_for(model_cls)
        self.plain = model_cls(ListStorage(1), debug_vm=DebugVM.OFF)
        sites = self.sites
        self.stepper = Stepper(model_cls, lambda m, c: run_call(m, c, sites), self.debug_vm)
        self.names = tuple(t.name for t in scenario.thread)
        self.programs = tuple(
            compile_program(t, i, intent=t.type or scenario.initial.type, debug_vm=self.debug_vm)
            for i, t in enumerate(scenario.thread)
        )
        self.external = scenario.initial.external_refs
        self.frag_value = sites.action("__page_frag_alloc_align").value
        self._witness = self._compile_witnesses(scenario.witness)
        self.findings: set[str] = set()
        self.raw0 = 0

    def _compile_witnesses(self, ws: Iterable[WitnessSpec]) -> dict[tuple[int, str], list[tuple]]:
        out: dict[tuple[int, str], list[tuple]] = {}
        for w in ws:
            tid = self.names.index(w.thread)
            rb = None if w.raw_before is None else eval_raw(w.raw_before, self.plain)
            ra = None if w.raw_after is None else eval_raw(w.raw_after, self.plain)
            out.setdefault((tid, w.action), []).append(
                (w.name, w.result, rb, ra, w.count_before, w.count_after, w.page_before, w.type_before)
            )
        return out

    def initial_state(self) -> tuple[State, tuple[StepRow, ...], list[Violation], int]:
        """The state after ``[initial]`` and its ``setup`` program (run alone, by ``init``).

        Returns the state, the setup's step rows, what the setup violated, and the raw word
        before the setup ran.
        """
        ini = self.scenario.initial
        held = sum(p.refs for p in self.programs) + ini.external_refs
        if ini.raw is not None:
            raw = eval_raw(ini.raw, self.plain)
        elif ini.count is not None:
            raw = self.plain.raw_for_count(ini.count)
        elif ini.page == "allocated":
            raw = self.plain.raw_for_count(held)
        elif ini.page == "free":
            raw = self.plain.frozen_raw()
        else:
            raw = self.plain.raw_for_count(1)
        status = {"allocated": ALLOCATED, "free": FREE, "reserved": RESERVED}[ini.page]
        page = PageGhost(status, 0, ini.type, 1 if status == FREE else 0)
        mapped = 0 if ini.mapped else -1
        threads = tuple(ThreadGhost(0, (), p.refs, 0, False, RUNNING) for p in self.programs)
        if not ini.setup:
            return State(raw, page, mapped, threads), (), [], raw
        init = compile_program(list(ini.setup), len(threads), intent=ini.type, debug_vm=self.debug_vm)
        saved = self.programs, self.names
        self.programs, self.names = (*self.programs, init), (*self.names, "init")
        s = State(raw, page, mapped, (*threads, ThreadGhost(0, (), 0, 0, False, RUNNING)))
        rows: list[StepRow] = []
        viols: list[Violation] = []
        try:
            while s.threads[-1].status == RUNNING:
                e = self.succ(s, len(threads), detail=True)
                if e is None:
                    raise scenario_error(
                        self.scenario,
                        f"setup action {init.instrs[s.threads[-1].pc].label!r} cannot run (it waits "
                        "for a page state the setup never reaches)",
                        "initial.setup",
                    )
                assert e.row is not None
                rows.append(e.row)
                viols.extend(e.violations)
                s = e.state
        finally:
            self.programs, self.names = saved
        return State(s.raw, s.page, s.mapped, s.threads[:-1]), tuple(rows), viols, raw

    # ------------------------------------------------------------------ one step
    def succ(self, s: State, tid: int, detail: bool = False) -> Edge | None:
        """Thread ``tid``'s next step from ``s``, or None if it is done, cut or waiting."""
        th = s.threads[tid]
        if th.status != RUNNING:
            return None
        ins: Instr = self.programs[tid].instrs[th.pc]
        if ins.await_ is not None and s.page.status != (FREE if ins.await_ == "free" else ALLOCATED):
            return None
        me = refs_var(tid)
        g = _Ghost(s.page, s.mapped, th.refs, th.tag, th.hold)
        reads: set[str] = {PAGE} if ins.await_ else set()
        writes: set[str] = set()
        out: StepOutcome | None = None
        raw, done, result, bug = s.raw, True, None, None
        if ins.call is not None:
            out = self.stepper.step(ins.call, th.log, s.raw)
            reads.add(WORD)
            if out.leaf is not None and out.leaf.wrote:
                writes.add(WORD)
            raw, done, result, bug = out.raw, out.done, out.result, out.bug
            self.findings.update(out.findings)
            wrote = out.leaf is not None and out.leaf.wrote
            if ins.op is Op.PUT and not any(leaf.wrote for leaf in th.log) and (wrote or (done and not bug)):
                g.refs -= ins.nr  # the reference is gone once the put's first write lands
                writes.add(me)
        bounded = False
        if not done:
            assert out is not None
            status = RUNNING
            if len(out.log) >= self.bound:
                status, bounded = BOUNDED, True
                g.notes.append(f"bound of {self.bound} atomic steps reached: branch cut")
            nt = ThreadGhost(th.pc, out.log, g.refs, g.tag, g.hold, status)
            hits: tuple[str, ...] = ()
        else:
            reads |= ins.reads - {WORD}
            writes |= ins.writes - {WORD}
            ok = self._complete(s, tid, ins, g, result, bug)
            nxt = END if bug is not None else (ins.ok_next if ok else ins.fail_next)
            status = RUNNING if nxt != END else (OOPS if bug is not None else DONE)
            nt = ThreadGhost(nxt if nxt != END else th.pc, (), g.refs, g.tag, g.hold, status)
            hits = self._hits(s, raw, tid, ins.op, ok if ins.op is Op.REVALIDATE else bool(result))
            if detail and ins.op in (Op.GET, Op.PUT, Op.FREEZE, Op.REVALIDATE) and bug is None:
                res = ("ok" if ok else "failed") if ins.op is Op.REVALIDATE else str(bool(result)).lower()
                g.notes.insert(0, f"→ {res}")
        ns = State(raw, g.page, g.mapped, _set(s.threads, tid, nt))
        row = (
            StepRow(self.names[tid], _describe(self._label(ins), out, g.notes), raw, tuple(g.viol))
            if detail
            else None
        )
        return Edge(tid, ns, frozenset(reads), frozenset(writes), tuple(g.viol), hits, bounded, row)

    def _complete(self, s: State, tid: int, ins: Instr, g: _Ghost, result: object, bug: str | None) -> bool:
        """The action just returned ``result``: update the ghost state; did it succeed?"""
        name = self.names[tid]
        intent = self.programs[tid].intent
        # the other threads as they are, this one with what it holds now
        threads = _set(s.threads, tid, s.threads[tid]._replace(refs=g.refs, hold=g.hold))
        op = ins.op
        if bug is not None:
            g.viol.append(Violation("no_vm_bug", f"{name}: {bug}"))
            g.notes.append(f"BUG: {bug}")
            return False
        if op in (Op.GET, Op.PUT, Op.FREEZE) and not result:
            return False
        if op in (Op.GET, Op.PAGE_REF_INC):
            new_tag = g.page.epoch if g.page.status == ALLOCATED else -1
            g.tag = new_tag if g.refs == 0 or g.tag == new_tag else -1
            g.refs += ins.nr if op is Op.GET else 1
            g.hold = g.hold and op is Op.GET
        elif op is Op.PUT and ins.free:
            d = g.page.ptype if ins.destructor == "page" else intent
            g.page = g.fold(free_page(g.page, threads, self.names, name, d))
            g.notes.append(f"frees ({d} destructor, from the {ins.destructor})")
        elif op is Op.PUT:
            g.hold = True
            g.notes.append("frozen, owned by the caller")
        elif op is Op.FREEZE:
            g.hold = True
        elif op is Op.UNFREEZE:
            g.hold = False
        elif op in (Op.ALLOCATE, Op.ALLOC_FROZEN, Op.FRAG_REUSE):
            ptype = g.page.ptype if op is Op.FRAG_REUSE else ins.ptype
            others = _set(threads, tid, threads[tid]._replace(hold=False, refs=0))
            g.page = g.fold(alloc_page(g.page, others, self.names, name, ptype))
            if op is Op.ALLOC_FROZEN:
                g.hold = True
            else:
                g.refs += 1 if op is Op.ALLOCATE else self.frag_value
                g.tag, g.hold = g.page.epoch, False
            if ins.map:
                g.mapped = g.page.epoch
            g.notes.append(f"epoch {g.page.epoch}, type {g.page.ptype}")
        elif op is Op.FREE_PAGES_CORE:
            g.page = g.fold(free_page(g.page, threads, self.names, name, None))
        elif op is Op.FREE_FROZEN:
            d = g.page.ptype if ins.destructor == "page" else intent
            others = _set(threads, tid, threads[tid]._replace(refs=0, hold=False))
            g.page = g.fold(free_page(g.page, others, self.names, name, d))
            g.refs, g.hold = 0, False
        elif op is Op.REVALIDATE:
            ok, v = revalidate(g.page, g.mapped, s.threads[tid], name)
            g.viol += v
            return ok
        elif op is Op.REMOVE_FROM_MAPPING:
            g.mapped = -1
        return True

    def _label(self, ins: Instr) -> str:
        """The action's label, naming what this version's code writes at a call site."""
        if ins.op is Op.SET_FROZEN:
            return f"frozen setter {self.model_cls.frozen_setter}()"
        if ins.call is not None and ins.call.method in ("site", "set_page_refcounted"):
            site = str(ins.call.args[0]) if ins.call.method == "site" else "set_page_refcounted"
            return f"{ins.label} [{self.sites.action(site).describe()}]"
        return ins.label

    def _hits(self, s: State, raw: int, tid: int, op: Op, result: bool) -> tuple[str, ...]:
        """The witnesses a completion of ``op`` by ``tid`` from ``s`` (word now ``raw``) matches."""
        hits = []
        count = self.plain.count_of_raw
        for wname, wres, rb, ra, cb, ca, pb, tb in self._witness.get((tid, op), ()):
            if (
                (wres is None or result == wres)
                and (pb is None or s.page.status == pb)
                and (tb is None or s.page.ptype == tb)
                and (rb is None or s.raw == rb)
                and (ra is None or raw == ra)
                and (cb is None or count(s.raw) == cb)
                and (ca is None or count(raw) == ca)
            ):
                hits.append(wname)
        return tuple(hits)

    def replay(self, s0: State, setup_rows: tuple[StepRow, ...], tids: list[int]) -> Trace:
        """Re-run a schedule from the initial state and render each step."""
        s = s0
        rows = []
        before = {v.invariant for v in state_violations(self.plain, s0)}
        for tid in tids:
            e = self.succ(s, tid, detail=True)
            assert e is not None and e.row is not None, "schedule does not replay"
            now = state_violations(self.plain, e.state)
            extra = tuple(v for v in now if v.invariant not in before)  # report where it starts
            before = {v.invariant for v in now}
            if not any(self.succ(e.state, u) for u in range(len(e.state.threads))):
                if not any(t.status in (BOUNDED, OOPS) for t in e.state.threads):
                    extra += tuple(terminal_violations(self.plain, e.state, self.names, self.external))
            rows.append(e.row._replace(violations=e.row.violations + extra))
            s = e.state
        return Trace(setup_rows, tuple(rows), self.raw0, tuple(state_violations(self.plain, s0)))


class _Ghost:
    """The mutable scratch copy of what one step may change besides the word."""

    __slots__ = ("hold", "mapped", "notes", "page", "refs", "tag", "viol")

    def __init__(self, page: PageGhost, mapped: int, refs: int, tag: int, hold: bool) -> None:
        self.page, self.mapped, self.refs, self.tag, self.hold = page, mapped, refs, tag, hold
        self.viol: list[Violation] = []
        self.notes: list[str] = []

    def fold(self, res: tuple[PageGhost, list[Violation]]) -> PageGhost:
        self.viol += res[1]
        return res[0]


def _set(threads: tuple[ThreadGhost, ...], i: int, t: ThreadGhost) -> tuple[ThreadGhost, ...]:
    return (*threads[:i], t, *threads[i + 1 :])


def _fmt_arg(a: object) -> str:
    if isinstance(a, bool) or not isinstance(a, int):
        return repr(a)
    return str(a) if -(1 << 20) < a < 0 else fmt_word(a)


def _describe(label: str, out: StepOutcome | None, notes: list[str]) -> str:
    text = label
    if out is not None and out.leaf is not None:
        leaf = out.leaf
        args = (
            ", ".join(_fmt_arg(a) for a in leaf.args[1:])
            if leaf.name != "<store>"
            else _fmt_arg(leaf.args[1])
        )
        op = "/".join(out.chain) if leaf.name != "<store>" else "store"
        ret = "" if out.ret is None else f" = {_fmt_arg(out.ret)}"
        text += f": {op}({args}){ret}"
    if notes:
        text += (" " if notes[0].startswith("→") else " — ") + "; ".join(notes)
    return text
