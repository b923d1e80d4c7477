"""Several engines on one event stream, and the first event where their observable results differ.

Used by ``replay --refcount a,b`` and ``report --refcount a,b``: every engine gets each event in
turn (through a :class:`Feed`), and :func:`run_lockstep` compares what each returned, which blocks
it freed and which findings it recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from buddysim.engine import Engine, StepResult

__all__ = ["Feed", "divergence_of", "jsonable", "observable", "run_lockstep"]


class Feed:
    """One event at a time, pushed by the driver: lets several engines step in lockstep."""

    def __init__(self) -> None:
        self.item: tuple[int, dict[str, Any]] | None = None

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        item, self.item = self.item, None
        if item is None:
            raise StopIteration
        return item


def jsonable(v: object) -> object:
    return v if v is None or isinstance(v, bool | int | float | str) else repr(v)


def observable(r: StepResult) -> tuple[object, ...]:
    """What a model did with one event, as comparable data: value, blocks freed, finding kinds."""
    return (r.value, r.freed, tuple((f.kind, f.function) for f in r.new_findings))


def divergence_of(engines: list[Engine], results: list[StepResult]) -> dict[str, Any] | None:
    """The divergence record of one event, or None when every model agrees."""
    obs = [observable(r) for r in results]
    if all(o == obs[0] for o in obs[1:]):
        return None
    return {
        "event": results[0].index,
        "line": results[0].line,
        "op": results[0].op,
        "models": {
            e.mm.refs.name: {
                "value": jsonable(r.value),
                "freed": [list(x) for x in r.freed],
                "findings": [f.describe() for f in r.new_findings],
            }
            for e, r in zip(engines, results, strict=True)
        },
    }


def run_lockstep(
    events: Iterable[tuple[int, dict[str, Any]]],
    engines: list[Engine],
    feed: Feed,
    on_results: Callable[[list[StepResult]], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    observe_after_divergence: bool = True,
) -> dict[str, Any] | None:
    """Step every engine (all built on ``feed``) through ``events``; return the first divergence."""
    divergence: dict[str, Any] | None = None
    for item in events:
        observe = divergence is None or observe_after_divergence
        results = []
        for e in engines:
            feed.item = item
            results.append(e.step_result(observe=observe))
        if on_results is not None:
            on_results(results)
        if divergence is None:
            divergence = divergence_of(engines, results)
        if on_step is not None:
            on_step(engines[0].index)
    return divergence
