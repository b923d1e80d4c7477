"""Run a scenario under a list of models and compare what was found with what it expects.

For each model: one reduced exploration (the verdicts, counterexamples, witnesses and the timing
come from it) and, unless turned off, one unreduced exploration whose schedule count is the
naive number of interleavings. A verdict is per invariant (``pass`` / ``violation``); the
scenario's ``[expect]`` entry for the model is either an overall verdict or a table of
invariants (plus ``overall``); unlisted invariants are reported but not compared. Models named
nowhere in the scenario have no expectation and cannot make the run fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from buddysim.errors import BadInput
from buddysim.refcount.page_ref import PageRefModel
from buddysim.refcount.registry import BUILTIN_MODELS, ModelLookupError

from .explorer import Exploration, Explorer
from .scenario import INVARIANTS, Scenario, scenario_error
from .stepper import ModelNondeterminism
from .variants import LITMUS_VARIANTS, resolve_model

__all__ = ["ModelResult", "ScenarioResult", "default_models", "invariants_for", "run_scenario"]


def invariants_for(scenario: Scenario) -> tuple[str, ...]:
    """The invariants checked for a scenario (``no_vm_bug`` only with ``debug_vm = "bug"``)."""
    return tuple(i for i in INVARIANTS if i != "no_vm_bug" or scenario.debug_vm == "bug")


@dataclass
class ModelResult:
    """One model's exploration of one scenario, judged against the expectation."""

    spec: str
    exploration: Exploration
    naive: Exploration | None
    verdicts: dict[str, str]
    expected: dict[str, str]
    witnesses: dict[str, tuple[bool, str | None]]
    mismatches: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The column name: the spec, or the model's own name for a ``module:Class`` spec."""
        return self.exploration.model if ":" in self.spec else self.spec

    @property
    def overall(self) -> str:
        return "violation" if "violation" in self.verdicts.values() else "pass"

    @property
    def matches(self) -> bool:
        return not self.mismatches


@dataclass
class ScenarioResult:
    scenario: Scenario
    models: list[ModelResult]

    @property
    def matches(self) -> bool:
        return all(m.matches for m in self.models)


def default_models(scenario: Scenario) -> list[str]:
    """The models a scenario names (expectations first, then witnesses), else every built-in."""
    names: list[str] = list(scenario.expect)
    for w in scenario.witness:
        names += [m for m in w.expect if m not in names]
    known = [*BUILTIN_MODELS, *LITMUS_VARIANTS]
    names.sort(key=lambda n: known.index(n) if n in known else len(known))  # stable: file order last
    return names or list(BUILTIN_MODELS)


def _resolve(scenario: Scenario, spec: str, named_in_file: bool) -> type[PageRefModel]:
    try:
        return resolve_model(spec)
    except ModelLookupError as e:
        if named_in_file:
            raise scenario_error(scenario, str(e), f"expect.{spec}") from None
        raise


def run_scenario(
    scenario: Scenario,
    models: list[str] | None = None,
    *,
    naive: bool = True,
    por: bool = True,
    bound: int | None = None,
) -> ScenarioResult:
    """Explore ``scenario`` under each model (default: :func:`default_models`)."""
    specs = models if models is not None else default_models(scenario)
    invs = invariants_for(scenario)
    # Resolve every model first: a typo must fail before minutes of exploring.
    classes = [(spec, _resolve(scenario, spec, models is None)) for spec in specs]
    results = []
    for spec, cls in classes:
        try:
            exp = Explorer(scenario, cls, por=por, bound=bound).explore()
            full = Explorer(scenario, cls, por=False, bound=bound).explore() if naive and por else None
        except (ModelNondeterminism, NotImplementedError) as e:
            what = (
                "is not deterministic under replay" if isinstance(e, ModelNondeterminism) else "is incomplete"
            )
            raise BadInput(f"refcount model {spec!r} {what}: {e}", where=scenario.path) from None
        verdicts = {i: exp.verdict(i) for i in invs}
        expected, mismatches = _judge(scenario, spec, cls, verdicts)
        wit: dict[str, tuple[bool, str | None]] = {}
        for w in scenario.witness:
            reached = exp.witnesses.get(w.name) is not None
            want = w.expect.get(spec, w.expect.get(cls.name))
            wit[w.name] = (reached, want)
            if want is not None and (want == "reachable") != reached:
                mismatches.append(
                    f"witness {w.name}: expected {want}, found {'reachable' if reached else 'unreachable'}"
                )
        results.append(ModelResult(spec, exp, full, verdicts, expected, wit, mismatches))
    return ScenarioResult(scenario, results)


def _judge(
    scenario: Scenario, spec: str, cls: type[PageRefModel], verdicts: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    raw = scenario.expect.get(spec, scenario.expect.get(cls.name))
    if raw is None:
        return {}, []
    expected = {"overall": raw} if isinstance(raw, str) else dict(raw)
    overall = "violation" if "violation" in verdicts.values() else "pass"
    mismatches = []
    for key, want in expected.items():
        got = overall if key == "overall" else verdicts.get(key, "pass")
        if got != want:
            mismatches.append(f"{key}: expected {want}, found {got}")
    return expected, mismatches
