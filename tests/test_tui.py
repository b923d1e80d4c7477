"""The inspector, headless: keys drive the app (Pilot), tests read the session and the panes.

Every expectation comes from an independent replay (a fresh machine and Engine run to the same
event) or from the machine's own list walks (``free_pfns``, ``pcp_pfns``). SVG snapshots live in
tests/snapshots/; BUDDYSIM_UPDATE_SNAPSHOTS=1 rewrites them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from buddysim.cli import main
from buddysim.config import resolve_config
from buddysim.engine import Engine
from buddysim.machine import Machine
from buddysim.report.pagemap import zone_pagemap
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import make_header, write_trace
from buddysim.tui.app import InspectApp
from buddysim.tui.session import InspectSession
from buddysim.tui.widgets import FreeAreaTable

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
DOUBLE_FREE_AT = 150  # event index of the double free (a finding)
N_EVENTS = 240


def _events() -> list[dict[str, Any]]:
    rnd = random.Random(9)
    events: list[dict[str, Any]] = []
    live: list[tuple[int, int]] = []
    handle = 0
    while len(events) < N_EVENTS:
        n = len(events) + 1
        if n == 60:
            events.append({"op": "mark", "label": "warm"})
        elif n == DOUBLE_FREE_AT - 1:
            events.append({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": 0, "handle": "x", "cpu": 0})
        elif n == DOUBLE_FREE_AT:
            events.append({"op": "__free_pages", "handle": "x", "order": 0, "cpu": 0})
            events.append({"op": "__free_pages", "handle": "x", "order": 0, "cpu": 0})
        elif live and rnd.random() < 0.4:
            h, o = live.pop(rnd.randrange(len(live)))
            events.append({"op": "__free_pages", "handle": h, "order": o, "cpu": rnd.randrange(2)})
        else:
            o = rnd.choice([0, 0, 0, 1, 2, 3])
            gfp = rnd.choice(["GFP_KERNEL", "GFP_HIGHUSER_MOVABLE"])
            events.append(
                {"op": "alloc_pages", "gfp": gfp, "order": o, "handle": handle, "cpu": rnd.randrange(2)}
            )
            live.append((handle, o))
            handle += 1
    return events


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui") / "inspect.jsonl"
    write_trace(str(path), make_header("tiny", seed=9, source="test_tui"), _events())
    return path


def _read(trace: Path) -> tuple[Any, list[tuple[int, dict[str, Any]]]]:
    with TraceReader(str(trace)) as reader:
        return resolve_config(reader.header["machine"]), list(reader)


def _session(trace: Path, **kw: Any) -> InspectSession:
    config, events = _read(trace)
    return InspectSession(lambda: Machine.from_config(config), events, path="inspect.jsonl", **kw)


def _oracle(trace: Path, index: int) -> Engine:
    """An independent replay to event ``index``: fresh machine, fresh engine, no checkpoints."""
    config, events = _read(trace)
    mm = Machine.from_config(config)
    mm.boot()
    engine = Engine(mm, events, strict=False)
    engine.run(until=index)
    return engine


def _first_finding(trace: Path) -> int:
    engine = _oracle(trace, 0)
    while engine.mm.nr_findings == 0:
        engine.step()
    return engine.index


def _run(app: InspectApp, size: tuple[int, int], scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(go())


def _free_area_matches(app: InspectApp, engine: Engine) -> None:
    table = app.query_one(FreeAreaTable)
    zone = engine.mm.zones[app.zone_index]
    for order, area in enumerate(zone.free_area):
        assert table.cell_text("total", order) == str(area.nr_free), order
        for mt, lst in enumerate(area.free_list):
            assert table.cell_text(f"mt{mt}", order) == str(len(lst)), (order, mt)


# ---------------------------------------------------------------------------------- stepping
def test_step_forward_and_back(trace: Path) -> None:
    session = _session(trace)
    app = InspectApp(session)

    async def scenario(pilot: Any) -> None:
        assert session.index == 0
        _free_area_matches(app, _oracle(trace, 0))
        for _ in range(7):
            await pilot.press("n")
        await pilot.pause()
        assert session.index == app.cursor == 7
        _free_area_matches(app, _oracle(trace, 7))
        assert "event 7/" in app.pane_text("status")
        await pilot.press("right_square_bracket")  # +100
        await pilot.pause()
        assert session.index == 107
        await pilot.press("p", "left")
        await pilot.pause()
        assert session.index == 105
        assert session.last_replayed < session.every  # back restores a checkpoint, replays < every
        oracle = _oracle(trace, 105)
        _free_area_matches(app, oracle)
        assert session.view().zones == oracle.view().zones
        await pilot.press("z")  # next zone: the panes follow
        await pilot.pause()
        _free_area_matches(app, oracle)

    _run(app, (120, 40), scenario)


def test_goto_mark_and_findings(trace: Path) -> None:
    session = _session(trace)
    app = InspectApp(session)

    async def scenario(pilot: Any) -> None:
        await pilot.press("g", *"200", "enter")
        await pilot.pause()
        assert session.index == 200
        await pilot.press("g", *"warm", "enter")
        await pilot.pause()
        assert session.index == session.marks["warm"] == 60
        await pilot.press("f")  # runs to the event that notices the double free
        await pilot.pause()
        first = _first_finding(trace)
        assert DOUBLE_FREE_AT < first < N_EVENTS and session.index == first
        assert session.mm.nr_findings >= 1
        assert "findings (" in str(app.query_one("#findings").border_title)
        assert "no findings" not in app.pane_text("findings")
        await pilot.press("g", *str(N_EVENTS), "enter", "F")  # previous finding
        await pilot.pause()
        assert session.index == max(f.event for f in session.mm.findings if f.event and f.event < N_EVENTS)
        await pilot.press("g", *"0", "enter", "m")  # next mark
        await pilot.pause()
        assert session.index == 60

    _run(app, (120, 40), scenario)


def test_play_and_pause(trace: Path) -> None:
    session = _session(trace)
    app = InspectApp(session, play_interval=0.01)

    async def scenario(pilot: Any) -> None:
        await pilot.press("space")
        for _ in range(50):
            await pilot.pause(0.02)
            if session.index >= 3:
                break
        await pilot.press("space")
        await pilot.pause()
        stopped = session.index
        assert 1 <= stopped <= session.total and not app.playing
        await pilot.pause(0.05)
        assert session.index == stopped

    _run(app, (120, 40), scenario)


# ---------------------------------------------------------------------------------- find pfn
def test_find_pfn_free_pcp_allocated_reserved(trace: Path) -> None:
    session = _session(trace)
    app = InspectApp(session)
    at = 120
    oracle = _oracle(trace, at)
    mm = oracle.mm
    free = sorted(mm.free_pfns())
    pcp = sorted(mm.pcp_pfns())
    reserved = next(p for s, e in mm.reserved_pfn_ranges for p in range(s, e) if mm.page_zone(p) is not None)
    # the newest live allocation, and the event that made it (read off the trace itself)
    handle, (apfn, aorder) = next(
        (h, rec) for h, rec in reversed(list(oracle.handles.items())) if isinstance(h, int)
    )
    alloc_index = next(
        i + 1
        for i, (_line, ev) in enumerate(session.events[:at])
        if ev["op"] == "alloc_pages" and ev.get("handle") == handle
    )
    assert free and pcp

    async def scenario(pilot: Any) -> None:
        await pilot.press("g", *str(at), "enter")
        await pilot.pause()
        expect = {
            free[len(free) // 2]: "FREE",
            pcp[0]: "PCP",
            apfn + (1 << aorder) - 1: "ALLOCATED",
            reserved: "RESERVED",
        }
        for pfn, state in expect.items():
            await pilot.press("slash", *hex(pfn), "enter")
            await pilot.pause()
            text = app.pane_text("find-result")
            assert text.startswith(f"pfn {pfn:#x} ({pfn}): {state}"), text
            assert f"_refcount raw {mm.refs.atomic_read(pfn) & 0xFFFFFFFF:#010x}" in text
            frozen = mm.refs.is_frozen_raw(mm.refs.atomic_read(pfn))
            assert ("baseline: frozen" if frozen else "baseline: not frozen") in text
            if state == "FREE":
                info = app.found
                assert info is not None and info.block_pfn is not None and info.block_order is not None
                assert (info.block_pfn, info.block_order, info.migratetype) in {
                    (p, o, ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"][mt])
                    for _z, p, o, mt in mm.free_blocks()
                }
            if state == "PCP":
                cpu = next(
                    c
                    for z in mm.zones
                    for c, p in enumerate(z.per_cpu_pageset)
                    if any(pfn in lst for lst in p.lists)
                )
                assert f"on CPU {cpu}'s pcp list" in text
            if state == "ALLOCATED":
                assert f"by event {alloc_index} (alloc_pages" in text and f"handle {handle}" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.found is None and not app.query_one("#find-result").has_class("-visible")
        await pilot.press("slash", *"nonsense", "enter")  # a bad pfn is refused, nothing breaks
        await pilot.pause()
        assert app.found is None

    _run(app, (120, 40), scenario)


# ---------------------------------------------------------------------------------- layout
def test_small_terminal_pages_and_help(trace: Path) -> None:
    session = _session(trace)
    app = InspectApp(session)

    async def scenario(pilot: Any) -> None:
        assert app.screen.has_class("narrow")
        shown = [p.id for p in app.query(".page") if p.display and p.has_class("-current")]
        assert shown == ["page-state"]
        await pilot.press("v", "v")
        await pilot.pause()
        assert app.query_one("#page-log").has_class("-current")
        assert not app.query_one("#page-state").has_class("-current")
        assert "(initial state)" in app.pane_text("events")
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ == "Screen"
        await pilot.press("q")

    _run(app, (80, 24), scenario)


def test_config_alone_and_nodes() -> None:
    config = resolve_config("numa-2node")
    session = InspectSession(lambda: Machine.from_config(config), [], path="numa-2node")
    app = InspectApp(session, zone=0)

    async def scenario(pilot: Any) -> None:
        nodes = [z.node for z in session.mm.zones]
        assert session.total == 0 and session.mm.handoff_done
        await pilot.press("o")
        await pilot.pause()
        assert session.mm.zones[app.zone_index].node == next(n for n in nodes if n != nodes[0])
        assert "no trace events" in app.pane_text("events")
        await pilot.press("n")  # nothing to step: stays at 0
        assert session.index == 0

    _run(app, (160, 50), scenario)


# ---------------------------------------------------------------------------------- snapshots
def _normalise(svg: str) -> str:
    return re.sub(r"terminal-\d+", "terminal", svg)


def _snapshot(app: InspectApp, size: tuple[int, int], name: str, keys: list[str], tmp_path: Path) -> None:
    svgs: list[str] = []

    async def scenario(pilot: Any) -> None:
        await pilot.press(*keys)
        await pilot.pause()
        svgs.append(app.export_screenshot())

    _run(app, size, scenario)
    actual = _normalise(svgs[0])
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("BUDDYSIM_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with BUDDYSIM_UPDATE_SNAPSHOTS=1"
    if path.read_text(encoding="utf-8") != actual:
        (tmp_path / path.name).write_text(actual, encoding="utf-8")
        pytest.fail(f"{name} differs from {path}; the new screen is {tmp_path / path.name}")


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
def test_snapshot_main_screen(trace: Path, size: tuple[int, int], tmp_path: Path) -> None:
    app = InspectApp(_session(trace))
    _snapshot(app, size, f"main_{size[0]}x{size[1]}", ["g", "4", "2", "enter"], tmp_path)


def test_snapshot_find_pfn(trace: Path, tmp_path: Path) -> None:
    app = InspectApp(_session(trace))
    pfn = sorted(_oracle(trace, 42).mm.pcp_pfns())[0]
    keys = ["g", "4", "2", "enter", "slash", *hex(pfn), "enter"]
    _snapshot(app, (120, 40), "find_pfn_120x40", keys, tmp_path)


# ---------------------------------------------------------------------------------- CLI
def test_cli_find_without_ui(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    oracle = _oracle(trace, 42)
    pfn = sorted(oracle.mm.free_pfns())[0]
    code = main(["inspect", str(trace), "--find", hex(pfn), "--at", "42", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["event"] == 42 and data["state"] == "free" and data["pfn"] == pfn
    code = main(["inspect", "tiny", "--find", "3"])
    out = capsys.readouterr().out
    assert code == 0 and "after event 0 of 0" in out and "pfn 0x3 (3): RESERVED" in out
    assert main(["inspect", str(trace), "--refcount", "baseline,final", "--find", "1"]) == 2


def test_cli_at_past_the_end_is_bad_input(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As ``show --at``: an event the trace does not have is refused (exit 2), not clamped."""
    total = _session(trace).total
    assert main(["inspect", str(trace), "--find", "1", "--at", str(total), "--json"]) in (0, 1)  # 1: findings
    assert json.loads(capsys.readouterr().out)["event"] == total
    assert main(["inspect", str(trace), "--find", "1", "--at", str(total + 1)]) == 2
    assert f"--at: the trace has only {total} events" in capsys.readouterr().err
    assert main(["inspect", str(trace), "--at", str(total + 1)]) == 2  # before the UI starts
    capsys.readouterr()
    assert main(["inspect", "tiny", "--find", "5", "--at", "0"]) == 2  # as show: no trace, no --at
    assert "--at: --at needs a trace, not a machine config" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- big machines
def test_responsive_on_a_64g_machine() -> None:
    """The view model, the page map and find-pfn on x86_64-64g (16.7M pages, 31k pageblocks in
    Normal) do work proportional to pageblocks and free blocks, never to pages."""
    mm = Machine.from_config(resolve_config("x86_64-64g"))
    mm.boot()
    engine = Engine(mm, [])
    view = engine.view()
    normal = max(range(len(mm.zones)), key=lambda i: mm.zones[i].spanned_pages)
    zone = mm.zones[normal]
    store = mm.store
    saved = store.refcount_np, store.flags_np, store.private_np
    store.refcount_np = store.flags_np = store.private_np = None  # type: ignore[assignment]
    try:
        pm = zone_pagemap(mm, zone, max_cells=2 * 78 * 20)
    finally:
        store.refcount_np, store.flags_np, store.private_np = saved
    assert pm.nr_pageblocks == -(-zone.spanned_pages // 512) and pm.nr_cells <= 2 * 78 * 20
    assert pm.work["free_list_entries"] == sum(view.zones[normal].free_per_order)
    assert pm.work["free_list_entries"] < zone.spanned_pages // 512
    assert pm.work["page_reads"] == 0
    assert float(pm.free_fraction.mean()) > 0.9


# ---------------------------------------------------------------------------------- checkpoints
def _digest(engine: Engine) -> tuple[object, ...]:
    mm = engine.mm
    s = mm.store
    zones = tuple(
        (
            tuple(tuple(lst) for area in z.free_area for lst in area.free_list),
            tuple(
                (p.count, p.high, p.free_count, tuple(tuple(lst) for lst in p.lists))
                for p in z.per_cpu_pageset
            ),
            z.NR_FREE_PAGES,
            z.flags,
        )
        for z in mm.zones
    )
    arrays = tuple(a.tobytes() for a in (s.refcount_np, s.flags_np, s.private_np, s.pageblock_mt_np))
    return (engine.index, arrays, zones, tuple(engine.handles.items()), mm.nr_findings)


def test_back_and_jumps_equal_an_independent_replay(trace: Path) -> None:
    session = _session(trace, every=8, budget=700 << 10)  # small budget: forces thinning
    session.goto(N_EVENTS)
    assert session.every > 8 and session.checkpoint_bytes <= 700 << 10
    assert 0 in session.checkpoints
    for target in (N_EVENTS - 1, 17, 200, 3, 0, 161, 160):
        session.goto(target)
        assert _digest(session.engine) == _digest(_oracle(trace, target)), target
        assert session.last_replayed < session.every
    # the restored copy runs on independently of its checkpoint
    session.goto(150)
    session.goto(N_EVENTS)
    assert _digest(session.engine) == _digest(_oracle(trace, N_EVENTS))
