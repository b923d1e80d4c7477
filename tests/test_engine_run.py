"""Engine.run(): the replay loop applies every event once, in order, as step() does."""

from __future__ import annotations

from typing import Any

import pytest

from buddysim.engine import Engine
from buddysim.machine import Machine


def _marks(n: int) -> list[tuple[int, dict[str, Any]]]:
    return [(i + 2, {"op": "mark", "label": f"m{i}"}) for i in range(n)]


def _engine(n: int) -> Engine:
    return Engine(Machine.simple(1 << 12), iter(_marks(n)))


@pytest.mark.parametrize("peeks", [1, 2])
def test_an_observer_that_peeks_does_not_lose_events(peeks: int) -> None:
    """An observer (or a handler) that peeks takes the next event off the reader; run() must
    apply it next, not skip it (the step() loop did that by construction)."""
    seen: list[str] = []

    def observer(eng: Engine, ev: dict[str, Any]) -> None:
        seen.append(ev["label"])
        for _ in range(peeks):
            eng.peek()

    e = _engine(7)
    e.subscribe(observer)
    assert e.run() == 7
    assert seen == [f"m{i}" for i in range(7)] and e.peek() is None and e.index == 7


def test_run_after_peek_and_until_then_to_the_end() -> None:
    e = _engine(5)
    assert e.peek() == {"op": "mark", "label": "m0"}
    assert e.run(until=2) == 2 and e.index == 2
    assert e.run() == 3 and e.index == 5 and sorted(e.marks) == [f"m{i}" for i in range(5)]


def test_tick_every_8192_events() -> None:
    ticks: list[int] = []
    e = _engine(3 * 8192 + 5)
    assert e.run(tick=ticks.append) == 3 * 8192 + 5
    assert ticks == [8192, 2 * 8192, 3 * 8192]
