"""Seeded trace generators (buddysim/trace/gen) and ``buddysim gen`` (buddysim/cli/gen.py).

Oracles: the trace reader (every line valid), the replay engine on the machine the header names
(strict mode: no anomalies; no findings under the baseline and final refcount models, with the
debug checks on and the whole-zone sweeps every 50 events), the ``check`` events the generators
write (exact for the configured machine), and the shipped traces, which must be byte for byte
what the command in their own header's ``source`` line produces.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from buddysim.cli import main
from buddysim.cli.common import config_from_header
from buddysim.engine import Engine
from buddysim.errors import BadInput
from buddysim.machine import Machine
from buddysim.mm import page_frag_cache as pfc
from buddysim.trace.gen import GENERATORS, get_generator
from buddysim.trace.gen.gup_pin import GUP_PIN_COUNTING_BIAS, STALE_HANDLE
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import write_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"
KINDS = ("boot", "churn", "fragmentation", "page_frag", "test-free-pages", "gup-pin")

#: small but complete options per kind (every phase runs)
SMALL: dict[str, dict[str, Any]] = {
    "boot": {},
    "churn": {"events": 600, "lifetime": 40.0, "extra_ref": 0.2, "frozen": 0.1, "drain": 0.01},
    "fragmentation": {"fill": 0.6, "unmovable": 24, "probes": 2},
    "page_frag": {"frags": 200, "pressure_frags": 60, "drain": 0.02},
    "test-free-pages": {"iterations": 24, "orders": "1:1,2:1,3:4,4:1", "check_every": 8},
    "gup-pin": {"events": 400, "pages": 12, "stale_pins": 64},
    "default": {"churn_events": 300, "frags": 100, "pressure_frags": 40, "iterations": 10},
}


def write(tmp_path: Path, kind: str, seed: int = 1, name: str | None = None, **options: Any) -> Path:
    trace = get_generator(kind).generate(seed, **options)
    path = tmp_path / (name or f"{kind}-{seed}.jsonl")
    write_trace(path, trace.header, trace.events)
    return path


def replay(path: Path, refcount: str, observer: Any = None) -> Engine:
    """Replay on the machine the header names, strictly, with the debug checks on."""
    with TraceReader(path) as reader:
        config = config_from_header(reader.header["machine"], str(path))
        mm = Machine.from_config(config, refcount=refcount, sites=None, debug_vm="bug")
        engine = Engine(mm, reader, strict=True, check_every=50, path=str(path))
        if observer is not None:
            engine.subscribe(observer)
        engine.run()
        engine.finish()
    return engine


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


# ---------------------------------------------------------------------------------- registry
def test_registry_lists_every_kind_with_a_description() -> None:
    assert set(GENERATORS) == {*KINDS, "default"}
    for info in GENERATORS.values():
        assert info.description and "\n" not in info.description
        assert len({o.flag for o in info.options}) == len(info.options)
    with pytest.raises(BadInput, match="unknown generator 'nope'; expected one of: boot, churn"):
        get_generator("nope")


# ---------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("kind", [*KINDS, "default"])
def test_same_seed_same_bytes_other_seed_other_events(tmp_path: Path, kind: str) -> None:
    a = write(tmp_path, kind, 5, "a.jsonl", **SMALL[kind])
    b = write(tmp_path, kind, 5, "b.jsonl", **SMALL[kind])
    c = write(tmp_path, kind, 6, "c.jsonl", **SMALL[kind])
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    if kind != "boot":  # boot has nothing random: only the header's seed differs
        assert events_of(a) != events_of(c)


def test_options_as_python_values_or_command_line_text_are_the_same(tmp_path: Path) -> None:
    a = write(tmp_path, "churn", 3, "a.jsonl", events=100, orders={"0": 3, "2": 1}, comp=0.25)
    b = write(tmp_path, "churn", 3, "b.jsonl", events="100", orders="0:3, 2:1", comp="0.25")
    assert a.read_bytes() == b.read_bytes()
    header = json.loads(a.read_text().splitlines()[0])
    assert "--orders 0:3,2:1" in header["source"] and header["meta"]["options"]["orders"] == "0:3,2:1"


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    a = write(tmp_path, "boot", name="a.jsonl.gz")
    b = write(tmp_path, "boot", name="b.jsonl.gz")
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).startswith(b'{"op":"header"')


# ---------------------------------------------------------------------------------- replay
@pytest.mark.parametrize("kind", [*KINDS, "default"])
def test_every_kind_validates_and_replays_clean_under_baseline_and_final(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, kind, 2, **SMALL[kind])
    with TraceReader(path) as reader:
        n = sum(1 for _ in reader)
        assert reader.nr_bad_lines == 0
        assert reader.header["seed"] == 2 and reader.header["meta"]["generator"] == kind
    assert n > 0
    for model in ("baseline", "final"):
        engine = replay(path, model)
        assert engine.index == n
        assert engine.nr_anomalies == 0
        assert engine.mm.findings == [], (model, engine.mm.findings[:3])


def test_gup_pin_stale_pins_leave_stale_increments_only_under_the_frozen_bit_model(tmp_path: Path) -> None:
    n = 300
    path = write(tmp_path, "gup-pin", 4, events=300, pages=8, stale_pins=n)
    base, final = replay(path, "baseline"), replay(path, "final")
    pfn = base.freed_handles[STALE_HANDLE][0]
    assert final.freed_handles[STALE_HANDLE][0] == pfn
    # baseline: a failed get_page_unless_zero-style add on a free page adds nothing
    assert base.mm.refs.atomic_read(pfn) == 0
    # final: every failed folio_ref_try_add left its 1024 on the frozen word (spec §5.7)
    assert final.mm.refs.atomic_read(pfn) & 0xFFFFFFFF == 0x80000000 + n * GUP_PIN_COUNTING_BIAS
    assert final.mm.refs.page_ref_count(pfn) == base.mm.refs.page_ref_count(pfn) == 0
    pins = [e for e in events_of(path) if e.get("fn") == "folio_ref_try_add" and e["handle"] == STALE_HANDLE]
    assert len(pins) == n and all(e["count"] == GUP_PIN_COUNTING_BIAS for e in pins)


def test_page_frag_pressure_phase_yields_pfmemalloc_pages() -> None:
    pf: set[tuple[str, int]] = set()
    marks: list[str] = []

    def observe(engine: Engine, event: dict[str, Any]) -> None:
        if event["op"] == "mark":
            marks.append(event["label"])
        for nc in engine.caches.values():
            if nc.encoded_page and pfc.encoded_page_decode_pfmemalloc(nc.encoded_page):
                assert marks[-1] in ("pfmemalloc", "pressure-release"), marks[-1]
                pf.add((nc.name, pfc.encoded_page_decode_page(nc.encoded_page)))

    path = TRACES / "examples" / "page_frag.jsonl"
    replay(path, "baseline", observe)
    assert len(pf) >= 4, pf
    assert {name for name, _ in pf} == {"cpu0", "cpu1"}
    ops = Counter(e["op"] for e in events_of(path))
    assert ops["page_frag_alloc"] == ops["page_frag_free"] > 500
    gfps = {e["gfp"] for e in events_of(path) if e["op"] == "page_frag_alloc"}
    assert gfps == {"GFP_ATOMIC|__GFP_NOWARN", "GFP_ATOMIC|__GFP_NOWARN|__GFP_MEMALLOC"}
    sizes = {e["size"] for e in events_of(path) if e["op"] == "page_frag_alloc"}
    assert {64, 1500, 2048, 4096} <= sizes and min(sizes) >= 64 and max(sizes) <= 4096


def test_fragmentation_pins_pageblocks() -> None:
    """At the ``after`` mark most memory is free again, yet no pageblock-order block is."""
    seen: dict[str, tuple[int, int]] = {}

    def observe(engine: Engine, event: dict[str, Any]) -> None:
        if event["op"] == "mark":
            mm = engine.mm
            big = sum(
                z.free_area[o].nr_free for z in mm.zones for o in range(mm.pageblock_order, mm.NR_PAGE_ORDERS)
            )
            seen[event["label"]] = (mm.nr_free_pages(), big)

    path = TRACES / "examples" / "fragmentation.jsonl"
    replay(path, "baseline", observe)
    boot_free, boot_big = seen["before"]
    after_free, after_big = seen["after"]
    assert boot_big > 0 and after_big == 0
    assert after_free > 0.9 * boot_free
    probes = [e for e in events_of(path) if e["op"] == "alloc_pages" and e["order"] == 9]
    assert probes and all("handle" not in e for e in probes)  # every THP probe failed


def test_test_free_pages_takes_references_every_way_and_frees_non_compound_blocks(tmp_path: Path) -> None:
    events = events_of(TRACES / "examples" / "test-free-pages.jsonl")
    getters = Counter(
        e.get("fn", e["op"]) for e in events if e["op"] in ("get_page", "folio_try_get", "page_ref")
    )
    assert set(getters) == {"get_page", "folio_try_get", "get_page_unless_zero"}
    gfps = Counter(e["gfp"] for e in events if e["op"] == "alloc_pages")
    assert set(gfps) == {"GFP_KERNEL", "GFP_KERNEL|__GFP_COMP"}
    assert {e["order"] for e in events if e["op"] == "alloc_pages"} == {3}
    checks = [e for e in events if e["op"] == "check" and "zone" not in e]
    assert len({e["nr_free"] for e in checks}) == 1 and len(checks) >= 4


def test_churn_is_placement_independent(tmp_path: Path) -> None:
    """Its checks aside (exact for the configured machine), churn replays on another machine."""
    path = write(tmp_path, "churn", 9, events=800)
    with TraceReader(path) as reader:
        events = ((line, e) for line, e in reader if e["op"] != "check")
        engine = Engine(Machine.simple(4096, nr_cpus=2, debug_vm="bug"), events, strict=True, check_every=100)
        engine.run()
        engine.finish()
    assert engine.nr_anomalies == 0 and engine.mm.findings == []


def test_churn_mixes_orders_gfp_free_paths_and_cpus() -> None:
    events = events_of(TRACES / "examples" / "churn.jsonl")
    ops = Counter(e["op"] for e in events)
    for op in (
        "alloc_pages",
        "alloc_frozen_pages",
        "__free_pages",
        "free_frozen_pages",
        "put_page",
        "folio_put",
    ):
        assert ops[op], op
    assert (
        ops["get_page"] and ops["drain_all_pages"] and ops["check"] == 4
    )  # three zones after the handoff, nr_free at the end
    allocs = [e for e in events if e["op"] in ("alloc_pages", "alloc_frozen_pages")]
    assert {e["order"] for e in allocs} == {0, 1, 2, 3}
    assert {e["cpu"] for e in allocs} == {0, 1}
    kinds = {e["gfp"].removesuffix("|__GFP_COMP") for e in allocs}
    assert kinds == {"GFP_HIGHUSER_MOVABLE", "GFP_KERNEL", "GFP_KERNEL|__GFP_RECLAIMABLE"}
    # every allocation is released
    assert len(allocs) == len(
        {
            e["handle"]
            for e in events
            if e["op"] in ("__free_pages", "free_frozen_pages", "put_page", "folio_put")
        }
    )


def test_boot_describes_memblock_of_the_config(tmp_path: Path) -> None:
    events = events_of(TRACES / "examples" / "boot.jsonl")
    assert [e["op"] for e in events[:8]] == ["memblock_add"] * 2 + ["memblock_reserve"] * 5 + [
        "memblock_free_all"
    ]
    assert events[0] == {"op": "memblock_add", "base": 0x1000, "size": 0x9E000, "nid": 0}
    zones = [e["zone"] for e in events if e["op"] == "check"]
    assert zones == ["DMA", "DMA32", "Normal"]


def test_other_machines(tmp_path: Path) -> None:
    """Generators follow the config: two nodes (checks carry the nid) and an inline config."""
    path = write(tmp_path, "test-free-pages", config="numa-2node", iterations=6, check_every=3)
    checks = [e for e in events_of(path) if e["op"] == "check" and "zone" in e]
    assert {e["nid"] for e in checks} == {0, 1}
    assert replay(path, "final").mm.findings == []
    inline = write(tmp_path, "boot", config=str(ROOT / "configs" / "tiny.toml"))
    header = json.loads(inline.read_text().splitlines()[0])
    assert isinstance(header["machine"], dict) and header["machine"]["name"] == "tiny"
    assert events_of(inline) == events_of(TRACES / "examples" / "boot.jsonl")
    assert replay(inline, "baseline").mm.findings == []


# ---------------------------------------------------------------------------------- shipped traces
def shipped() -> list[Path]:
    return [TRACES / "default.jsonl", *sorted((TRACES / "examples").glob("*.jsonl"))]


def test_one_small_example_per_kind() -> None:
    assert sorted(p.stem for p in (TRACES / "examples").glob("*.jsonl")) == sorted(KINDS)
    for path in shipped():
        assert path.stat().st_size < 200_000, path


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.name)
def test_shipped_trace_is_what_its_source_command_writes(tmp_path: Path, path: Path) -> None:
    header = json.loads(path.read_text().splitlines()[0])
    argv = shlex.split(header["source"])
    assert argv[:2] == ["buddysim", "gen"]
    out = tmp_path / path.name
    assert main([*argv[1:], "-q", "-o", str(out)]) == 0
    assert out.read_bytes() == path.read_bytes(), (
        f"regenerate: {header['source']} -o {path.relative_to(ROOT)}"
    )


def test_default_trace_mixes_everything_and_replays_clean() -> None:
    path = TRACES / "default.jsonl"
    events = events_of(path)
    assert 2000 <= len(events) <= 5000
    ops = Counter(e["op"] for e in events)
    assert ops["memblock_free_all"] == 1 and ops["mark"] >= 5 and 5 <= ops["check"] <= 20
    for op in ("page_frag_alloc", "page_frag_free", "page_frag_cache_drain", "get_page", "folio_try_get"):
        assert ops[op], op
    allocs = [e for e in events if e["op"] in ("alloc_pages", "alloc_frozen_pages")]
    assert {0, 1, 2, 3} <= {e["order"] for e in allocs} and {e["cpu"] for e in allocs} == {0, 1}
    assert {"GFP_HIGHUSER_MOVABLE", "GFP_KERNEL", "GFP_KERNEL|__GFP_RECLAIMABLE"} <= {
        e["gfp"] for e in allocs
    }
    labels = [e["label"] for e in events if e["op"] == "mark"]
    assert {"boot", "churn", "page_frag", "pfmemalloc", "test_free_pages", "end"} <= set(labels)
    for model in ("baseline", "final"):
        engine = replay(path, model)
        assert engine.mm.findings == [] and engine.nr_anomalies == 0


# ---------------------------------------------------------------------------------- CLI
def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(GENERATORS)


def test_cli_writes_refuses_to_overwrite_and_forces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.jsonl"
    assert main(["gen", "churn", "--seed", "3", "--events", "50", "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 93 events, ")
    first = out.read_bytes()
    assert main(["gen", "churn", "--seed", "4", "--events", "50", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"buddysim gen: error: {out}: exists; pass --force to overwrite"
    assert out.read_bytes() == first
    assert main(["gen", "churn", "--seed", "4", "--events", "50", "-o", str(out), "--force", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]  # no temporary file left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["churn", "--events", "0"], "--events: expected an integer >= 1, got '0'"),
        (["churn", "--orders", "0:70,11:30"], "--orders: orders are 0..10 (MAX_PAGE_ORDER), got '11'"),
        (["churn", "--orders", "0:x"], "--orders: weight of '0' must be a number, got 'x'"),
        (["churn", "--orders", "0:0"], "--orders: expected at least one positive weight"),
        (
            ["churn", "--gfp", "atomic:1"],
            "--gfp: gfp classes are movable, unmovable, reclaimable; got 'atomic'",
        ),
        (["churn", "--cpus", "3"], "--cpus: the machine 'tiny' has 2 CPUs, got 3"),
        (["churn", "--comp", "1.5"], "--comp: expected a number 0..1, got '1.5'"),
        (["page_frag", "--hold", "-1"], "--hold: expected a number 0..1e+09, got '-1'"),
        (["gup-pin", "--config", "nowhere"], "no config file and no preset named 'nowhere'"),
        (["boot"], "-o: -o/--output is required"),
        ([], "give a KIND; buddysim gen --list shows them"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = ["-o", str(tmp_path / "x.jsonl")] if argv and argv != ["boot"] else []
    assert main(["gen", *argv, *out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_argparse_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", "nokind", "-o", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'nokind'" in capsys.readouterr().err
    assert main(["gen", "churn", "--seed", "-3", "-o", str(tmp_path / "x")]) == 2
    assert "expected a seed 0..2^63-1" in capsys.readouterr().err


def test_cli_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", "boot", "-o", "-"]) == 0
    captured = capsys.readouterr()
    assert captured.out.encode() == (TRACES / "examples" / "boot.jsonl").read_bytes()
    assert "12 events" in captured.err


def test_console_script_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("buddysim")
    out = tmp_path / "tfp.jsonl"
    cmd = [str(exe), "gen", "test-free-pages", "--seed", "7", "--iterations", "5", "-o", str(out)]
    run = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"}
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {out}: ")
    with TraceReader(out) as reader:
        assert reader.header["source"].startswith("buddysim gen test-free-pages --seed 7 --config tiny")
        assert sum(1 for _ in reader) > 20
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_python_api_rejects_unknown_options_and_bad_seeds() -> None:
    with pytest.raises(BadInput, match="unknown option 'event'; options: --events"):
        get_generator("churn").generate(1, event=10)
    with pytest.raises(BadInput, match="--seed"):
        get_generator("churn").generate(True)
    with pytest.raises(BadInput, match="--orders: '1' is given twice"):
        get_generator("churn").generate(1, orders="1:1,1:2")
