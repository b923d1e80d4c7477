"""Litmus tests for page refcount races: every interleaving, under any refcount model.

A scenario (TOML, docs/litmus.md) is one page and a few threads running short programs of
kernel-level actions (speculative get, put, freeze, allocation, call-site writes, ...). Each
action is cut into the atomic steps the chosen model's own code performs, by intercepting the
model's ``atomic_*`` primitives and replaying recorded results (:mod:`.stepper`), so built-in
and third-party models are handled alike. :mod:`.explorer` explores every interleaving with
state hashing and partial-order reduction; :mod:`.oracle` checks the invariants of refcount.md
§8 on a ghost copy of the page; :mod:`.run` compares the verdicts with the scenario's
expectations and :mod:`.report` renders them. Layout: scenario (parse), program (actions),
stepper (atomic steps), semantics (one step with the oracle's bookkeeping), explorer (search),
oracle (invariants), variants (the ``atomic_or`` model), run, report.
"""

from buddysim.litmus.explorer import Exploration, Explorer
from buddysim.litmus.run import ModelResult, ScenarioResult, run_scenario
from buddysim.litmus.scenario import INVARIANTS, Scenario, load_scenario, parse_scenario
from buddysim.litmus.semantics import Machine, StepRow, Trace
from buddysim.litmus.stepper import Stepper, litmus_class
from buddysim.litmus.variants import LITMUS_VARIANTS, AtomicOrFree, resolve_model

__all__ = [
    "INVARIANTS",
    "LITMUS_VARIANTS",
    "AtomicOrFree",
    "Exploration",
    "Explorer",
    "Machine",
    "ModelResult",
    "Scenario",
    "ScenarioResult",
    "StepRow",
    "Stepper",
    "Trace",
    "litmus_class",
    "load_scenario",
    "parse_scenario",
    "resolve_model",
    "run_scenario",
]
