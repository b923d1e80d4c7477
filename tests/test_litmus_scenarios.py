"""Every shipped litmus scenario: its written verdicts hold, and the reduction changes nothing.

The expectations live in the scenario files (traces/litmus/*.toml), worked out by hand from
refcount.md §5; this test runs each file under each model it names and fails on any verdict or
witness that differs. The second test explores every scenario with and without partial-order
reduction and compares what must not change: verdicts, witness reachability, the set of final
states, and the length of every shortest counterexample.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buddysim.litmus.explorer import Explorer
from buddysim.litmus.run import default_models, run_scenario
from buddysim.litmus.scenario import load_scenario
from buddysim.litmus.variants import resolve_model

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "traces" / "litmus").glob("*.toml"))
IDS = [p.stem for p in SCENARIOS]


def test_the_issue_scenarios_are_shipped() -> None:
    assert {
        "get_vs_final_put",
        "atomic_or_free",
        "boot_zero_pfn_walker",
        "set_zero_memset",
        "set_zero_frozen_setter",
        "page_frag_reuse",
        "alloc_frozen_inc",
        "stale_increment_reset",
        "aba_destructor_from_page",
        "aba_destructor_from_intent",
    } <= set(IDS)


@pytest.mark.parametrize("path", SCENARIOS, ids=IDS)
def test_expected_verdicts(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.expect, f"{path.name} names no expectation"
    res = run_scenario(sc, naive=False)
    problems = {m.spec: m.mismatches for m in res.models if m.mismatches}
    assert not problems, problems
    # every model the file names was run, and no branch was cut by the bound
    assert [m.spec for m in res.models] == default_models(sc)
    assert all(m.exploration.bound_hits == 0 for m in res.models)


@pytest.mark.parametrize("path", SCENARIOS, ids=IDS)
def test_reduction_preserves_what_it_must(path: Path) -> None:
    sc = load_scenario(path)
    for name in default_models(sc):
        cls = resolve_model(name)
        red = Explorer(sc, cls).explore()
        full = Explorer(sc, cls, por=False).explore()
        assert set(red.violations) == set(full.violations), name
        assert {k: v is None for k, v in red.witnesses.items()} == {
            k: v is None for k, v in full.witnesses.items()
        }, name
        assert red.terminal_set == full.terminal_set, name
        for inv, tr in red.violations.items():
            assert len(tr.steps) == len(full.violations[inv].steps), (name, inv)
        assert red.states <= full.states and red.transitions <= full.transitions
        assert red.schedules <= full.schedules
