"""`buddysim show`: every format through the real entry point, at the end, at an event, at a mark."""

from __future__ import annotations

import json

import pytest

from buddysim.cli import main
from buddysim.config import load_preset
from buddysim.engine import Engine
from buddysim.machine import Machine
from buddysim.mm import vmstat
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import make_header, write_trace

EVENTS = [
    {"op": "alloc_pages", "order": 3, "gfp": "GFP_KERNEL", "handle": "a", "cpu": 0},
    {"op": "alloc_pages", "order": 0, "gfp": "GFP_HIGHUSER_MOVABLE", "handle": "b", "cpu": 1},
    {"op": "mark", "label": "two"},
    {"op": "alloc_pages", "order": 5, "gfp": "GFP_KERNEL", "handle": "c"},
    {"op": "__free_pages", "order": 3, "handle": "a"},
]


@pytest.fixture
def trace(tmp_path):
    t = tmp_path / "t.jsonl"
    write_trace(str(t), make_header("tiny"), EVENTS)
    return t


def _expected(trace, until=None) -> Machine:
    mm = Machine.from_config(load_preset("tiny"), debug_vm="bug")
    with TraceReader(str(trace)) as r:
        e = Engine(mm, r)
        e.run(until=until)
    return mm


@pytest.mark.parametrize(
    ("fmt", "fn"),
    [
        ("buddyinfo", vmstat.frag_show),
        ("pagetypeinfo", vmstat.pagetypeinfo_show),
        ("zoneinfo", vmstat.zoneinfo_show),
        ("kmem-f", vmstat.kmem_f),
        ("extfrag", vmstat.extfrag_index),
        ("unusable", vmstat.unusable_index),
    ],
)
def test_show_formats_match_the_engine_state(trace, capsys, fmt, fn):
    assert main(["show", str(trace), "--format", fmt]) == 0
    assert capsys.readouterr().out == fn(_expected(trace))


def test_show_at_event_and_mark(trace, capsys):
    assert main(["show", str(trace), "--at", "2", "--format", "buddyinfo"]) == 0
    at2 = capsys.readouterr().out
    assert at2 == vmstat.frag_show(_expected(trace, until=2))
    assert main(["show", str(trace), "--at", "two"]) == 0
    assert capsys.readouterr().out == at2  # the mark is event 3 and changes nothing
    assert at2 != vmstat.frag_show(_expected(trace))
    assert main(["show", str(trace), "--at", "99"]) == 2
    assert "only 5 events" in capsys.readouterr().err
    assert main(["show", str(trace), "--at", "nosuch"]) == 2


def test_show_json_and_preset(capsys):
    assert main(["show", "tiny", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 1
    assert main(["show", "tiny", "--format", "buddyinfo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[3] for ln in lines] == ["DMA", "DMA32", "Normal"]
