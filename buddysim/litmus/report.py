"""Rendering litmus results: rich tables for people, a sorted compact JSON for tools.

Per scenario: a verdict matrix (invariants and witnesses down, models across; a verdict that
differs from the scenario's expectation is flagged), the exploration figures per model (states,
transitions, complete schedules explored, the naive count, time, bound), and for every violation
the shortest counterexample as a step table (step, thread, action, raw word after), in the shape
of refcount.md §5. Identical counterexamples of several models are printed once.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .explorer import Trace
from .run import ModelResult, ScenarioResult, invariants_for
from .stepper import fmt_word

__all__ = ["SCHEMA_VERSION", "render", "to_json", "trace_table"]

SCHEMA_VERSION = 1


_LEGEND_VERDICTS = "✓ holds  ✗ violated  witness: reachable yes/no  ≠ differs from the expectation"
_LEGEND_FIGURES = (
    "schedules: complete interleavings in the explored (reduced) graph; naive: the same without "
    "reduction; cut: branches stopped by the bound"
)


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.1f} s"


def trace_table(trace: Trace, title: str) -> Table:
    """A counterexample or witness as the spec writes races: step, thread, action, word after."""
    t = Table(title=title, title_justify="left", title_style="bold")
    t.add_column("step", justify="right")
    t.add_column("thread")
    t.add_column("action")
    t.add_column("word after", justify="right")
    t.add_row(
        "0",
        "",
        _action("initial state", () if trace.setup else trace.initial_violations),
        fmt_word(trace.initial_raw),
        style="dim" if trace.setup else None,
    )
    for i, row in enumerate(trace.setup, 1):
        viols = row.violations + (trace.initial_violations if i == len(trace.setup) else ())
        t.add_row("·", row.thread, _action(row.action, viols), fmt_word(row.raw_after))
    for i, row in enumerate(trace.steps, 1):
        t.add_row(str(i), row.thread, _action(row.action, row.violations), fmt_word(row.raw_after))
    return t


def _action(text: str, violations: tuple[Any, ...]) -> Text:
    out = Text(text)
    for v in violations:
        out.append(f"\n✗ {v.invariant}: {v.message}", style="bold red")
    return out


def _cell(got: str, want: str | None) -> Text:
    mark = Text("✓", style="green") if got == "pass" else Text("✗", style="bold red")
    if want is not None and want != got:
        mark.append(" ≠", style="bold red reverse")
    return mark


def _reach(got: bool, want: str | None) -> Text:
    out = Text("yes" if got else "no", style="cyan" if got else "dim")
    if want is not None and want != ("reachable" if got else "unreachable"):
        out.append(" ≠", style="bold red reverse")
    return out


def render(results: list[ScenarioResult], console: Console, *, witnesses: bool = False) -> None:
    """Print every scenario's verdicts, figures and counterexamples."""
    for res in results:
        sc = res.scenario
        head = Text(f"litmus {sc.name}", style="bold")
        if sc.title:
            head.append(f" — {sc.title}")
        if sc.spec:
            head.append(f" ({sc.spec})", style="dim")
        threads = ", ".join(f"{t.name} ({len(t.program)})" for t in sc.thread)
        console.print(head)
        console.print(
            Text(
                f"{sc.path}  threads: {threads}  debug_vm: {sc.debug_vm}  "
                f"bound: {res.models[0].exploration.bound if res.models else sc.bound} atomic steps per action",
                style="dim",
            )
        )
        console.print(_verdicts(res))
        console.print(Text(_LEGEND_VERDICTS, style="dim"))
        console.print(_figures(res))
        console.print(Text(_LEGEND_FIGURES, style="dim"))
        _counterexamples(res, console)
        if witnesses:
            for m in res.models:
                for name, tr in m.exploration.witnesses.items():
                    if tr is not None:
                        console.print(trace_table(tr, f"{m.label}: shortest witness {name}"))
        for m in res.models:
            e = m.exploration
            if e.bound_hits:
                console.print(
                    Text(
                        f"{m.label}: {e.bound_hits} branch(es) cut at the bound of {e.bound} atomic steps "
                        "per action: verdicts cover the explored part only",
                        style="bold yellow",
                    )
                )
            if m.exploration.findings:
                console.print(
                    Text(
                        f"{m.label}: debug checks fired: " + "; ".join(m.exploration.findings), style="yellow"
                    )
                )
        verdict = (
            Text("all verdicts match the expectations", style="green")
            if res.matches
            else Text(
                "MISMATCH: "
                + "; ".join(f"{m.spec}: {', '.join(m.mismatches)}" for m in res.models if m.mismatches),
                style="bold red",
            )
        )
        console.print(verdict)
        console.print()


def _verdicts(res: ScenarioResult) -> Table:
    t = Table(title="verdicts", title_justify="left")
    t.add_column("invariant / witness", no_wrap=True)
    for m in res.models:
        t.add_column(m.label, justify="center")
    for inv in invariants_for(res.scenario):
        t.add_row(inv, *(_cell(m.verdicts[inv], m.expected.get(inv)) for m in res.models))
    t.add_row(
        Text("overall", style="bold"),
        *(_cell(m.overall, m.expected.get("overall")) for m in res.models),
        end_section=True,
    )
    for w in res.scenario.witness:
        t.add_row(f"witness {w.name}", *(_reach(*m.witnesses[w.name]) for m in res.models))
    return t


def _figures(res: ScenarioResult) -> Table:
    t = Table(title="exploration", title_justify="left")
    for col in ("model", "states", "transitions", "schedules", "naive", "time", "cut"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=col != "model")
    t.add_column("expected", min_width=8, no_wrap=True)
    for m in res.models:
        e, n = m.exploration, m.naive
        t.add_row(
            m.label,
            f"{e.states:,}",
            f"{e.transitions:,}",
            f"{e.schedules:,}",
            "-" if n is None else f"{n.schedules:,}",
            _ms(e.seconds),
            str(e.bound_hits),
            Text("ok", style="green")
            if m.matches and (m.expected or any(w for _, w in m.witnesses.values()))
            else Text("-", style="dim")
            if m.matches
            else Text("DIFFERS", style="bold red"),
        )
    return t


def _counterexamples(res: ScenarioResult, console: Console) -> None:
    groups: dict[tuple[Any, ...], tuple[list[str], list[str], Trace, str]] = {}
    for m in res.models:
        by_trace: dict[Trace, list[str]] = {}
        for inv, tr in m.exploration.violations.items():
            by_trace.setdefault(tr, []).append(inv)
        for tr, invs in by_trace.items():
            key = (tr.setup, tr.steps, tr.initial_raw, tuple(invs))
            msg = m.exploration.violation_messages[invs[0]]
            groups.setdefault(key, ([], invs, tr, msg))[0].append(m.label)
    for models, invs, tr, msg in groups.values():
        title = f"{', '.join(models)}: shortest counterexample for {', '.join(invs)} — {msg}"
        console.print(Group(trace_table(tr, title)))


def _trace_json(tr: Trace | None) -> dict[str, Any] | None:
    if tr is None:
        return None

    def rows(rs: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [
            {
                "step": i,
                "thread": r.thread,
                "action": r.action,
                "raw_after": r.raw_after,
                "word_after": fmt_word(r.raw_after),
                "violations": [{"invariant": v.invariant, "message": v.message} for v in r.violations],
            }
            for i, r in enumerate(rs, 1)
        ]

    return {
        "initial_raw": tr.initial_raw,
        "initial_violations": [
            {"invariant": v.invariant, "message": v.message} for v in tr.initial_violations
        ],
        "setup": rows(tr.setup),
        "steps": rows(tr.steps),
    }


def _model_json(m: ModelResult) -> dict[str, Any]:
    e = m.exploration
    return {
        "model": e.model,
        "verdicts": m.verdicts,
        "overall": m.overall,
        "expected": m.expected,
        "matches": m.matches,
        "mismatches": m.mismatches,
        "states": e.states,
        "transitions": e.transitions,
        "schedules": e.schedules,
        "terminal_states": e.terminal_states,
        "naive_schedules": None if m.naive is None else m.naive.schedules,
        "naive_states": None if m.naive is None else m.naive.states,
        "seconds": round(e.seconds, 6),
        "bound": e.bound,
        "bound_hits": e.bound_hits,
        "debug_checks": list(e.findings),
        "counterexamples": {
            inv: {"message": e.violation_messages[inv], "trace": _trace_json(tr)}
            for inv, tr in e.violations.items()
        },
        "witnesses": {
            name: {"reachable": got, "expected": want, "trace": _trace_json(e.witnesses.get(name))}
            for name, (got, want) in m.witnesses.items()
        },
    }


def to_json(results: list[ScenarioResult]) -> dict[str, Any]:
    """The whole run as one JSON-ready dict (``schema_version`` first-class)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "matches": all(r.matches for r in results),
        "scenarios": [
            {
                "name": r.scenario.name,
                "path": r.scenario.path,
                "title": r.scenario.title,
                "spec": r.scenario.spec,
                "debug_vm": r.scenario.debug_vm,
                "matches": r.matches,
                "models": {m.spec: _model_json(m) for m in r.models},
            }
            for r in results
        ],
    }
