"""The litmus explorer: atomic steps from any model, the §5 races, determinism, bounds, plug-ins.

Golden values come from refcount.md: the §5.4 table (T0 1 -> 0; T1 0 -> 1 backs off; T2 1 -> 2
succeeds; T0 atomic_or(F) frees: F|2, T2 holds a freed page), the §5.3 order A (a getter's add
lands between the final put's subtraction and its cmpxchg; impossible under baseline), §4.5
(baseline's add-unless is a read and then CAS attempts; final's get is one add_return).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from buddysim.errors import BadInput
from buddysim.litmus.explorer import Explorer
from buddysim.litmus.run import run_scenario
from buddysim.litmus.scenario import load_scenario, parse_raw_expr, parse_scenario
from buddysim.litmus.stepper import Stepper
from buddysim.litmus.variants import LITMUS_VARIANTS, AtomicOrFree, resolve_model
from buddysim.refcount.page_ref import INT_MIN, ListStorage
from buddysim.refcount.registry import ModelLookupError, get_model

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces" / "litmus"
F = INT_MIN


def _call(m: object, c: tuple[str, tuple[int, ...]]) -> object:
    return getattr(m, c[0])(0, *c[1])


def _steps(model: str, call: tuple[str, tuple[int, ...]], raw: int, writes: dict[int, int] | None = None):
    """Run one action to completion; ``writes[i]`` is stored by "another thread" after step i."""
    st = Stepper(resolve_model(model), _call)
    log: tuple = ()
    seq = []
    for i in range(20):
        out = st.step(call, log, raw)
        seq.append((out.chain[-1] if out.chain else None, out.raw))
        raw = out.raw
        if writes and i in writes:
            raw = writes[i]
        if out.done:
            return out.result, seq
        log = out.log
    raise AssertionError("action did not complete")


# ---------------------------------------------------------------------------------- stepper
def test_baseline_get_is_a_read_then_cas_attempts() -> None:
    assert _steps("baseline", ("folio_try_get", ()), 1) == (
        True,
        [("atomic_read", 1), ("atomic_cmpxchg", 2)],
    )
    # another getter moves 1 -> 2 between the read and the CAS: the CAS fails, the loop retries
    assert _steps("baseline", ("folio_try_get", ()), 1, writes={0: 2}) == (
        True,
        [("atomic_read", 1), ("atomic_cmpxchg", 2), ("atomic_cmpxchg", 3)],
    )
    # the final put lands between them: the CAS reads 0 and the get fails without writing
    assert _steps("baseline", ("folio_try_get", ()), 1, writes={0: 0}) == (
        False,
        [("atomic_read", 1), ("atomic_cmpxchg", 0)],
    )


def test_final_get_and_put_steps() -> None:
    assert _steps("final", ("folio_try_get", ()), 1) == (True, [("atomic_add_return", 2)])
    assert _steps("final", ("folio_ref_dec_and_test", ()), 1) == (
        True,
        [("atomic_add_return", 0), ("atomic_cmpxchg", F)],
    )
    # at the reset threshold: the add, then the try_cmpxchg reset loop back to F
    assert _steps("final", ("folio_try_get", ()), F + (1 << 30) - 1) == (
        False,
        [("atomic_add_return", F + (1 << 30)), ("atomic_cmpxchg", F)],
    )
    # v1/v2's plain cmpxchg loop runs once more after its successful swap (§4.5)
    assert _steps("v1", ("folio_try_get", ()), F + (1 << 30) - 1)[1] == [
        ("atomic_add_return", F + (1 << 30)),
        ("atomic_cmpxchg", F),
        ("atomic_cmpxchg", F),
    ]


def test_model_primitive_overrides_are_intercepted() -> None:
    # the variant adds atomic_or; it is a step of its own
    assert "atomic_or" in dir(AtomicOrFree)
    assert _steps("atomic_or", ("folio_ref_dec_and_test", ()), 1) == (
        True,
        [("atomic_add_return", 0), ("atomic_or", F)],
    )
    assert LITMUS_VARIANTS["atomic_or"] is AtomicOrFree
    assert resolve_model("buddysim.litmus.variants:AtomicOrFree") is AtomicOrFree


def test_unknown_model_lists_the_variants() -> None:
    with pytest.raises(ModelLookupError, match="atomic_or"):
        resolve_model("v9")


def test_stepper_leaves_the_model_usable_outside_litmus() -> None:
    st = Stepper(get_model("final"), _call)
    scratch = type(st.model)(ListStorage(1, 1))  # e.g. frozen_setter_raw's own instance
    assert scratch.folio_try_get(0) is True and scratch.atomic_read(0) == 2


# ---------------------------------------------------------------------------------- races
def test_atomic_or_golden_counterexample() -> None:
    """refcount.md §5.4, step by step."""
    sc = load_scenario(TRACES / "atomic_or_free.toml")
    ex = Explorer(sc, AtomicOrFree).explore()
    assert set(ex.violations) == {"no_stale_ref"}
    tr = ex.violations["no_stale_ref"]
    assert [(r.thread, r.raw_after) for r in tr.steps] == [("T0", 0), ("T1", 1), ("T2", 2), ("T0", F | 2)]
    acts = [r.action for r in tr.steps]
    assert acts[0].startswith("folio_put: atomic_add_return(-1) = 0")
    assert acts[1].startswith("folio_try_get: atomic_add_return(1) = 1 → false")  # backs off
    assert acts[2].startswith("folio_try_get: atomic_add_return(1) = 2 → true")
    assert acts[3].startswith("folio_put: atomic_or(F) → true; frees")
    assert [v.invariant for r in tr.steps[:3] for v in r.violations] == []
    (v,) = tr.steps[3].violations
    assert v.invariant == "no_stale_ref" and "T2" in v.message
    # with the real cmpxchg the same schedule cannot free: step 4's CAS finds 2
    assert not Explorer(sc, get_model("final")).explore().violations


def test_order_a_found_under_final_and_unreachable_under_baseline() -> None:
    """refcount.md §5.3: the getter lands between the final put's subtraction and its CAS."""
    sc = load_scenario(TRACES / "get_vs_final_put.toml")
    fin = Explorer(sc, get_model("final")).explore()
    tr = fin.witnesses["order_A"]
    assert tr is not None
    assert [(r.thread, r.raw_after) for r in tr.steps[-2:]] == [("T0", 0), ("T1", 1)]
    assert "folio_put: atomic_add_return(-1) = 0" in tr.steps[-2].action
    assert tr.steps[-1].action.endswith("→ true")
    base = Explorer(sc, get_model("baseline")).explore()
    assert base.witnesses["order_A"] is None
    assert base.witnesses["stale_increment"] is None
    assert not fin.violations and not base.violations


def test_aba_race_matches_the_spec_table() -> None:
    """refcount.md §5.8: T1's cmpxchg succeeds on T3's zero and runs X's destructor on Y."""
    sc = load_scenario(TRACES / "aba_destructor_from_intent.toml")
    tr = Explorer(sc, get_model("final")).explore().violations["destructor_type"]
    assert [r.thread for r in tr.steps] == ["T1", "T2", "T2", "T2", "T2", "T2", "T3", "T3", "T1"]
    assert [r.raw_after for r in tr.steps] == [0, 1, 1, 1, 0, F, 1, 0, F]
    assert "X destructor on a page of type Y" in tr.steps[-1].violations[0].message


def test_exploration_is_deterministic() -> None:
    sc = load_scenario(TRACES / "aba_two_puts_intent.toml")
    runs = [Explorer(sc, get_model("baseline")).explore() for _ in range(2)]
    key = [(e.states, e.transitions, e.schedules, e.terminal_states, sorted(e.violations)) for e in runs]
    assert key[0] == key[1]
    assert runs[0].violations["destructor_type"] == runs[1].violations["destructor_type"]
    full = Explorer(sc, get_model("baseline"), por=False).explore()
    assert full.schedules >= runs[0].schedules


def test_bound_cuts_starved_loops_and_says_so() -> None:
    sc = load_scenario(TRACES / "get_vs_final_put.toml")
    ex = Explorer(sc, get_model("baseline"), bound=1).explore()
    assert ex.bound == 1 and ex.bound_hits > 0  # the read-then-CAS get needs two steps
    assert Explorer(sc, get_model("baseline")).explore().bound_hits == 0


def test_debug_vm_bug_oopses_the_thread() -> None:
    sc = load_scenario(TRACES / "alloc_frozen_inc.toml")
    sc = sc.model_copy(update={"debug_vm": "bug"})
    res = run_scenario(sc, ["baseline", "final"], naive=False)
    base, fin = res.models
    assert base.verdicts["no_vm_bug"] == "pass"
    assert fin.verdicts["no_vm_bug"] == "violation"
    assert "put_page_testzero" in fin.exploration.violation_messages["no_vm_bug"]
    # warn mode lists the checks without a verdict
    warn = run_scenario(load_scenario(TRACES / "alloc_frozen_inc.toml"), ["final"], naive=False)
    assert "no_vm_bug" not in warn.models[0].verdicts
    assert any("page_ref_inc" in f for f in warn.models[0].exploration.findings)


def test_set_page_refcounted_check_on_a_walked_boot_page() -> None:
    """refcount.md §5.5 step 3a: with DEBUG_VM the allocation trips VM_BUG_ON_PAGE (v1 only)."""
    sc = load_scenario(TRACES / "boot_zero_pfn_walker.toml").model_copy(update={"debug_vm": "warn"})
    v1, fin = run_scenario(sc, ["v1", "final"], naive=False).models
    assert "VM_BUG_ON_PAGE(page_ref_count(page) != 0) in set_page_refcounted" in v1.exploration.findings
    assert fin.exploration.findings == ()


# ---------------------------------------------------------------------------------- plug-ins
PLUGIN = '''
from buddysim.refcount.baseline import Baseline

class DirectAddUnless(Baseline):
    """atomic_add_unless as one indivisible operation (the model overrides the primitive)."""
    name = "direct-add-unless"

    def atomic_add_unless(self, pfn, nr, u):
        v = self._w[pfn]
        if v == u:
            return False
        self._w[pfn] = v + nr
        return True

_calls = [0]

class Flaky(Baseline):
    """Not deterministic: its get behaves differently each time it is run."""
    name = "flaky"

    def page_ref_add_unless_zero(self, page, nr):
        _calls[0] += 1
        if _calls[0] % 2:
            return self.atomic_add_unless(page, nr, 0)
        return self.atomic_add_return(page, nr) > 0
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "litmus_plugin_models.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "litmus_plugin_models"
    sys.modules.pop("litmus_plugin_models", None)


def test_third_party_model_overriding_a_primitive(plugin: str) -> None:
    assert _steps(f"{plugin}:DirectAddUnless", ("folio_try_get", ()), 1) == (
        True,
        [("atomic_add_unless", 2)],
    )
    sc = load_scenario(TRACES / "get_vs_final_put.toml")
    res = run_scenario(sc, [f"{plugin}:DirectAddUnless", "baseline"], naive=False)
    plug, base = res.models
    assert plug.verdicts == base.verdicts and plug.overall == "pass"
    assert plug.witnesses["order_A"] == (False, None)  # no expectation for an unknown model
    assert plug.exploration.states < base.exploration.states  # one step fewer per get


def test_nondeterministic_model_is_bad_input(plugin: str) -> None:
    sc = load_scenario(TRACES / "get_vs_final_put.toml")
    with pytest.raises(BadInput, match="not deterministic"):
        run_scenario(sc, [f"{plugin}:Flaky"], naive=False)


def test_shipped_plugin_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimistic-cmpxchg plug-in of docs/plugins.md: upstream safety, no order A."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugin_fixture"))
    try:
        sc = load_scenario(TRACES / "get_vs_final_put.toml")
        (m,) = run_scenario(sc, ["optimistic_cmpxchg:OptimisticCmpxchg"], naive=False).models
        assert m.overall == "pass" and m.witnesses["order_A"][0] is False
    finally:
        sys.modules.pop("optimistic_cmpxchg", None)


# ---------------------------------------------------------------------------------- format
@pytest.mark.parametrize(
    ("text", "base", "value", "offset"),
    [
        ("F", "F", 0, 0),
        ("F+1", "F", 0, 1),
        ("F|2", "F", 0, 2),
        ("frozen+0x3FFFFFFF", "frozen", 0, 0x3FFFFFFF),
        ("count(32769)", "count", 32769, 0),
        ("0xBFFFFFFF", "lit", 0xBFFFFFFF, 0),
        ("-1", "lit", -1, 0),
        (7, "lit", 7, 0),
    ],
)
def test_raw_expressions(text: object, base: str, value: int, offset: int) -> None:
    e = parse_raw_expr(text)
    assert (e.base, e.value, e.offset) == (base, value, offset)


@pytest.mark.parametrize("text", ["G+1", "F+", "count()", "frozen*2", ""])
def test_bad_raw_expressions(text: str) -> None:
    with pytest.raises(ValueError, match="raw-word expression"):
        parse_raw_expr(text)


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"thread": [{"name": "T0", "program": ["fly"]}]}, "thread[0].program[0]", "unknown action 'fly'"),
        (
            {"thread": [{"name": "T0", "program": [{"action": "get", "nr": 0}]}]},
            "thread[0].program[0].nr",
            "",
        ),
        ({"thread": [{"name": "T0", "program": [], "colour": 1}]}, "thread[0].colour", "Extra inputs"),
        ({"thread": [{"name": "T0", "program": [{"action": "site", "site": "nope"}]}]}, "site", "call site"),
        ({"thread": [{"name": "T0", "refs": 2, "program": []}], "initial": {"count": 1}}, "", "add up to 2"),
        (
            {"thread": [{"name": "T0", "program": []}], "expect": {"final": {"nope": "pass"}}},
            "expect",
            "nope",
        ),
        ({"thread": [{"name": "T0", "program": []}], "initial": {"raw": "G"}}, "initial.raw", "raw-word"),
    ],
)
def test_scenario_errors_name_the_key(doc: dict, field: str, message: str) -> None:
    with pytest.raises(BadInput) as ei:
        parse_scenario(doc, "x.toml")
    assert ei.value.where == "x.toml"
    assert field in (ei.value.field or "")
    assert message in ei.value.message
