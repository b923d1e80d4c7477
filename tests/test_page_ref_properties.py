"""Property tests of the refcount layer (Hypothesis).

1. Differential: on sequences of operations that never touch a frozen page except with
   failed speculative gets after the final put, every patched model is observably the upstream
   baseline (refcount.md §2.1: "maintains the same public API as before"): same return values,
   same page_ref_count()/page_count() reads, same tracepoints, and no debug check fires
   (v2 excepted: its posted predicate BUGs on every live page, §6).
2. A RuleBasedStateMachine (get, put, freeze, unfreeze, allocation, failed speculative gets on
   frozen pages, STYLE.md §3) runs baseline and final in lockstep against an independent oracle:
   a plain Python count and a frozen flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from buddysim.refcount.baseline import Baseline
from buddysim.refcount.final import Final
from buddysim.refcount.inverted import Inverted
from buddysim.refcount.page_ref import ListStorage, PageRefModel, PageRefTrace
from buddysim.refcount.rfc import RFC
from buddysim.refcount.sites import SITE_TABLES, apply_site
from buddysim.refcount.v1 import V1
from buddysim.refcount.v2 import V2
from buddysim.refcount.v3 import V3

F = -0x80000000
LIM = -0x40000000  # 0xC0000000
MAX_COUNT = 1 << 20  # far from any overflow: these sequences model sane owners

# ------------------------------------------------------------------------------ differential
#: (operation, argument) pairs; the plan below turns them into legal calls
OPS = st.one_of(
    st.tuples(st.sampled_from(["get_page", "folio_get", "page_ref_inc", "folio_ref_inc"]), st.just(0)),
    st.tuples(st.sampled_from(["page_ref_inc_return", "folio_ref_inc_return"]), st.just(0)),
    st.tuples(st.sampled_from(["page_ref_add", "folio_ref_add"]), st.integers(1, 1024)),
    st.tuples(st.sampled_from(["page_ref_dec", "folio_ref_dec"]), st.just(0)),
    st.tuples(st.sampled_from(["page_ref_dec_return", "folio_ref_dec_return"]), st.just(0)),
    st.tuples(st.sampled_from(["page_ref_sub", "folio_ref_sub"]), st.integers(1, 1024)),
    st.tuples(st.sampled_from(["page_ref_sub_return", "folio_ref_sub_return"]), st.integers(1, 1024)),
    st.tuples(
        st.sampled_from(["put_page_testzero", "folio_put_testzero", "page_ref_dec_and_test"]), st.just(0)
    ),
    st.tuples(st.sampled_from(["page_ref_sub_and_test", "folio_ref_sub_and_test"]), st.integers(1, 1024)),
    st.tuples(st.sampled_from(["folio_try_get", "get_page_unless_zero"]), st.just(0)),
    st.tuples(st.just("folio_ref_try_add"), st.sampled_from([1, 2, 512, 1024])),
    st.tuples(st.just("freeze_unfreeze"), st.integers(1, 64)),
    st.tuples(st.just("freeze_wrong"), st.integers(-3, 3).filter(bool)),
    st.tuples(st.just("read"), st.just(0)),
)

Call = tuple[str, tuple[int, ...]]


def plan(start: int, ops: list[tuple[str, int]], failed_gets: int) -> tuple[list[Call], list[int]]:
    """Turn drawn operations into a legal call list and the count after each call.

    The count stays >= 1 (a decrement that would reach 0 is skipped) until the final put,
    which drops the last reference; then ``failed_gets`` speculative gets hit the freed page.
    """
    count = start
    calls: list[Call] = []
    counts: list[int] = []

    def emit(name: str, *args: int, delta: int = 0) -> None:
        nonlocal count
        count += delta
        calls.append((name, args))
        counts.append(count)

    for op, k in ops:
        if op in (
            "get_page",
            "folio_get",
            "page_ref_inc",
            "folio_ref_inc",
            "page_ref_inc_return",
            "folio_ref_inc_return",
        ):
            if count < MAX_COUNT:
                emit(op, delta=1)
        elif op in ("page_ref_add", "folio_ref_add"):
            if count + k <= MAX_COUNT:
                emit(op, k, delta=k)
        elif op in ("page_ref_dec", "folio_ref_dec", "page_ref_dec_return", "folio_ref_dec_return"):
            if count > 1:
                emit(op, delta=-1)
        elif op in ("page_ref_sub", "folio_ref_sub", "page_ref_sub_return", "folio_ref_sub_return"):
            if count - k >= 1:
                emit(op, k, delta=-k)
        elif op in ("put_page_testzero", "folio_put_testzero", "page_ref_dec_and_test"):
            if count > 1:
                emit(op, delta=-1)
        elif op in ("page_ref_sub_and_test", "folio_ref_sub_and_test"):
            if count - k >= 1:
                emit(op, k, delta=-k)
        elif op in ("folio_try_get", "get_page_unless_zero"):
            if count < MAX_COUNT:
                emit(op, delta=1)
        elif op == "folio_ref_try_add":
            if count + k <= MAX_COUNT:
                emit(op, k, delta=k)
        elif op == "freeze_unfreeze":
            saved = count
            emit("page_ref_freeze", saved, delta=-saved)
            emit("page_ref_count")
            emit("page_ref_unfreeze", k, delta=k)
        elif op == "freeze_wrong":
            if count + k >= 1:
                emit("folio_ref_freeze", count + k)
        else:
            emit("page_ref_count")
            emit("page_count")
            emit("folio_ref_count")
    # the final put: drop every remaining reference, the last one through an and-test
    if count > 1:
        emit("page_ref_sub", count - 1, delta=-(count - 1))
    emit("put_page_testzero", delta=-1)
    for _ in range(failed_gets):
        emit("folio_try_get")
        emit("page_ref_count")
    return calls, counts


def expected_return(name: str, args: tuple[int, ...], before: int, after: int) -> object:
    """What each call returns, from the count before and after (refcount.md §4)."""
    if name.endswith("_return"):  # the new value
        return after
    if name.endswith(("_and_test", "_testzero")):  # true iff this call dropped the last reference
        return after == 0
    if name in ("folio_try_get", "get_page_unless_zero", "folio_ref_try_add"):
        return before != 0
    if name in ("page_ref_freeze", "folio_ref_freeze"):
        return args[0] == before
    if name in ("page_ref_count", "page_count", "folio_ref_count"):
        return after
    return None


@dataclass
class Run:
    returns: list[object] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    trace: list[PageRefTrace] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


def drive(cls: type[PageRefModel], start: int, calls: list[Call], debug_vm: str) -> Run:
    run = Run()
    m = cls(ListStorage(1), debug_vm=debug_vm, trace=run.trace.append)
    m.set_page_count(0, start)
    for name, args in calls:
        run.returns.append(m.call(name, 0, *args))
        run.counts.append(m.page_ref_count(0))
    run.findings = [f.describe() for f in m.findings]
    return run


SAME_AS_BASELINE = [
    pytest.param(RFC, "bug", id="rfc"),
    pytest.param(V1, "bug", id="v1"),
    pytest.param(V2, "off", id="v2-debug_vm=off"),  # v2's posted check BUGs on live pages
    pytest.param(V3, "bug", id="v3"),
    pytest.param(Final, "bug", id="final"),
    pytest.param(Inverted, "bug", id="inverted"),
]


@pytest.mark.parametrize(("cls", "debug_vm"), SAME_AS_BASELINE)
@given(
    start=st.integers(1, 64),
    ops=st.lists(OPS, max_size=40),
    failed_gets=st.integers(0, 3),
)
def test_patched_model_is_baseline_on_live_pages(
    cls: type[PageRefModel], debug_vm: str, start: int, ops: list[tuple[str, int]], failed_gets: int
) -> None:
    calls, counts = plan(start, ops, failed_gets)
    base = drive(Baseline, start, calls, "bug")
    other = drive(cls, start, calls, debug_vm)
    # the independent oracle first: the plan's own count
    assert base.counts == counts
    befores = [start, *counts[:-1]]
    want = [expected_return(n, a, b, c) for (n, a), b, c in zip(calls, befores, counts, strict=True)]
    assert base.returns == want
    # then the differential: identical observable behaviour
    assert other.returns == base.returns
    assert other.counts == base.counts
    assert other.findings == base.findings == []
    if cls is not Inverted:  # Inverted's mod_and_return logs the raw (F|n) word as ret
        assert other.trace == base.trace


def test_plan_ends_with_the_final_put() -> None:
    calls, counts = plan(3, [("page_ref_add", 2), ("read", 0)], failed_gets=1)
    assert calls[-4:] == [
        ("page_ref_sub", (4,)),
        ("put_page_testzero", ()),
        ("folio_try_get", ()),
        ("page_ref_count", ()),
    ]
    assert counts[-4:] == [1, 0, 0, 0]


# ------------------------------------------------------------------------------ state machine
class RefcountMachine(RuleBasedStateMachine):
    """One page under baseline and final at once, against a count + frozen-flag oracle.

    Frozen (after a final put or a freeze) the oracle's count is the number of references the
    freezer holds for unfreeze; readers see 0. Failed speculative gets on a frozen page leave
    stale increments that final must keep below 0xC0000000 (§4.5 reset) and baseline must never
    leave (its CAS loop does not write 0).
    """

    @initialize(start=st.integers(1, 8))
    def boot(self, start: int) -> None:
        self.models: list[PageRefModel] = [
            Baseline(ListStorage(1), debug_vm="bug"),
            Final(ListStorage(1), debug_vm="bug"),
        ]
        for m in self.models:
            m.init_page_count(0)
            if start > 1:
                m.page_ref_add(0, start - 1)
        self.count = start
        self.frozen = False

    def _all(self, name: str, *args: int) -> list[object]:
        return [m.call(name, 0, *args) for m in self.models]

    @precondition(lambda self: not self.frozen and self.count < 1000)
    @rule(how=st.sampled_from(["get_page", "folio_get", "page_ref_inc"]))
    def get(self, how: str) -> None:
        assert self._all(how) == [None, None]
        self.count += 1

    @precondition(lambda self: not self.frozen and self.count < 1000)
    @rule(nr=st.sampled_from([1, 2, 1024]))
    def speculative_get_live(self, nr: int) -> None:
        assert self._all("folio_ref_try_add", nr) == [True, True]
        self.count += nr

    @precondition(lambda self: not self.frozen)
    @rule(how=st.sampled_from(["put_page_testzero", "folio_put_testzero", "page_ref_dec_and_test"]))
    def put(self, how: str) -> None:
        self.count -= 1
        last = self.count == 0
        assert self._all(how) == [last, last]
        self.frozen = last

    @precondition(lambda self: not self.frozen)
    @rule()
    def freeze(self) -> None:
        assert self._all("page_ref_freeze", self.count) == [True, True]
        self.frozen = True

    @precondition(lambda self: not self.frozen)
    @rule(delta=st.sampled_from([-2, -1, 1, 5]))
    def freeze_wrong_count(self, delta: int) -> None:
        if self.count + delta < 1:
            return
        assert self._all("folio_ref_freeze", self.count + delta) == [False, False]

    @precondition(lambda self: self.frozen)
    @rule(count=st.integers(1, 8))
    def unfreeze(self, count: int) -> None:
        assert self._all("page_ref_unfreeze", count) == [None, None]
        self.count = count
        self.frozen = False

    @precondition(lambda self: self.frozen)
    @rule()
    def allocate(self) -> None:
        """set_page_refcounted at allocation: each model's own call-site table."""
        for m in self.models:
            apply_site(m, SITE_TABLES[m.default_sites], "set_page_refcounted", 0)
        self.count = 1
        self.frozen = False

    @precondition(lambda self: self.frozen)
    @rule(how=st.sampled_from(["folio_try_get", "get_page_unless_zero"]))
    def failed_get(self, how: str) -> None:
        assert self._all(how) == [False, False]

    @precondition(lambda self: self.frozen)
    @rule(nr=st.sampled_from([1, 1024, 1 << 29]))
    def failed_get_nr(self, nr: int) -> None:
        """Large nr reaches the reset band within a few steps."""
        assert self._all("folio_ref_try_add", nr) == [False, False]

    @invariant()
    def matches_oracle(self) -> None:
        seen = 0 if self.frozen else self.count
        base, final = self.models
        for m in self.models:
            assert m.page_ref_count(0) == seen
            assert m.page_count(0) == seen
            assert m.page_is_frozen(0) == self.frozen
            assert m.findings == []
        raw_b, raw_f = base.atomic_read(0), final.atomic_read(0)
        if self.frozen:
            assert raw_b == 0
            assert F <= raw_f < LIM, f"final frozen word {raw_f & 0xFFFFFFFF:#x} outside [F, LIM)"
        else:
            assert raw_b == raw_f == self.count


TestRefcountMachine = RefcountMachine.TestCase
