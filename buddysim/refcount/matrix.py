"""The behaviour matrix: every page_ref function of a model on every class of raw value.

For each model, each operation is run on a fresh word holding a representative of each
value class of refcount.md §3.3 (live, 0, the bare frozen bit, frozen with stale increments,
just below / at the reset limit, INT_MAX), with CONFIG_DEBUG_VM on, and the return value,
the resulting raw word and any debug check that fired are recorded. It is what a reviewer
reads to compare versions at a glance, and the tests check it cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from buddysim.findings import Finding, VMBug
from buddysim.refcount.page_ref import INT_MAX, INT_MIN, DebugVM, ListStorage, PageRefModel

__all__ = ["OPERATIONS", "VALUE_CLASSES", "Cell", "matrix", "run_cell"]

#: (label, raw value) — the value classes of refcount.md §3.3
VALUE_CLASSES: tuple[tuple[str, int], ...] = (
    ("live 1", 1),
    ("live 2", 2),
    ("0", 0),
    ("F", INT_MIN),
    ("F+5", INT_MIN + 5),
    ("F+2^30-1", INT_MIN + (1 << 30) - 1),
    ("0xC0000000", INT_MIN + (1 << 30)),
    ("INT_MAX", INT_MAX),
)

Op = Callable[[PageRefModel], object]

#: (label, operation on page 0)
OPERATIONS: tuple[tuple[str, Op], ...] = (
    ("page_ref_count", lambda m: m.page_ref_count(0)),
    ("page_ref_inc", lambda m: m.page_ref_inc(0)),
    ("page_ref_dec", lambda m: m.page_ref_dec(0)),
    ("page_ref_inc_return", lambda m: m.page_ref_inc_return(0)),
    ("page_ref_dec_return", lambda m: m.page_ref_dec_return(0)),
    ("page_ref_dec_and_test", lambda m: m.page_ref_dec_and_test(0)),
    ("put_page_testzero", lambda m: m.put_page_testzero(0)),
    ("get_page", lambda m: m.get_page(0)),
    ("get_page_unless_zero", lambda m: m.get_page_unless_zero(0)),
    ("folio_ref_try_add(1024)", lambda m: m.folio_ref_try_add(0, 1024)),
    ("page_ref_freeze(1)", lambda m: m.page_ref_freeze(0, 1)),
    ("page_ref_unfreeze(1)", lambda m: m.page_ref_unfreeze(0, 1)),
    ("frozen setter", lambda m: m.set_frozen(0)),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """One operation on one value: what it returned, the word after, which checks fired."""

    result: object
    raw_after: int
    checks: tuple[str, ...]
    bug: bool

    def render(self) -> str:
        res = "" if self.result is None else f"{_fmt(self.result)} "
        fired = f" !{','.join(self.checks)}" if self.checks else ""
        stop = " BUG" if self.bug else ""
        return f"{res}-> {self.raw_after & 0xFFFFFFFF:#x}{fired}{stop}"


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int) and not -1000 < v < 100000:
        return f"{v & 0xFFFFFFFF:#x}"
    return str(v)


def run_cell(model_cls: type[PageRefModel], op: Op, raw: int, debug_vm: str = "bug") -> Cell:
    """Run ``op`` on a single word holding ``raw`` under ``model_cls``."""
    found: list[Finding] = []
    m = model_cls(ListStorage(1, raw), debug_vm=debug_vm, report=found.append)
    bug = False
    result: object = None
    try:
        result = op(m)
    except VMBug as e:
        found.append(e.finding)
        bug = True
    return Cell(result, m.atomic_read(0), tuple(f.kind for f in found), bug)


def matrix(model_cls: type[PageRefModel], debug_vm: str = DebugVM.BUG.value) -> list[list[Cell]]:
    """Rows = :data:`OPERATIONS`, columns = :data:`VALUE_CLASSES`."""
    return [[run_cell(model_cls, op, raw, debug_vm) for _, raw in VALUE_CLASSES] for _, op in OPERATIONS]
