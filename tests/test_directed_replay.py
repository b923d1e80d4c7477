"""Directed replay: exact takes, predictions, every window/artefact class, initial state, compare."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from support import GFPS, synthetic_trace

from buddysim.cli import main
from buddysim.config import config_from_dict, resolve_config
from buddysim.engine import Engine
from buddysim.machine import Machine
from buddysim.mm import directed as D
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_all
from buddysim.mm.gfp import format_gfp, gfp_migratetype, parse_gfp
from buddysim.mm.mmzone import MIGRATE_MOVABLE
from buddysim.report.reconcile import compare_buddyinfo, parse_buddyinfo
from buddysim.trace.directed import DirectedReplay, load_initial_state
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import make_header, write_trace

DATA = Path(__file__).parent / "data" / "ftrace"
DMESG = Path(__file__).parent / "data" / "dmesg"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json", "-q"])
    return code, json.loads(capsys.readouterr().out)


def import_text(tmp_path: Path, text_path: Path, config: str = "tiny", name: str = "imp.jsonl") -> Path:
    out = tmp_path / name
    assert (
        main(["import", "ftrace", str(text_path), "-o", str(out), "--config", config, "-q", "--force"]) == 0
    )
    return out


def classes(report: dict[str, Any]) -> dict[str, int]:
    return {c["class"]: c["count"] for c in report["directed"]["classes"]}


def booted(name: str = "tiny") -> Machine:
    mm = Machine.from_config(resolve_config(name))
    mm.boot()
    return mm


# ------------------------------------------------------------------ model side
def test_take_block_splits_like_expand() -> None:
    mm = booted()
    zone = mm.page_zone(0x800)
    before = {o: list(a.free_list[MIGRATE_MOVABLE]) for o, a in enumerate(zone.free_area)}
    assert 0x800 in before[9]
    # the lowest page: exactly expand(): upper halves at the list heads
    assert D.take_block(mm, 0x800, 0, 0) == D.SRC_BUDDY_SPLIT
    for o in range(9):
        assert zone.free_area[o].free_list[MIGRATE_MOVABLE].first() == 0x800 + (1 << o)
    # a page in the upper part: the half not holding it goes to the head
    assert D.take_block(mm, 0x900 + 5, 0, 0) == D.SRC_BUDDY_SPLIT
    assert zone.free_area[0].free_list[MIGRATE_MOVABLE].first() == 0x904
    assert D.take_block(mm, 0x904, 0, 1) == D.SRC_BUDDY
    assert D.block_state(mm, 0x905, 0) == D.SRC_ALLOCATED
    assert D.block_state(mm, 0x904, 1) == D.SRC_ALLOCATED
    assert D.block_state(mm, 0x906, 1) == D.SRC_BUDDY
    assert D.block_state(mm, 0x904, 2) == D.SRC_MIXED
    assert D.block_state(mm, 0x258, 0) == D.SRC_RESERVED and D.block_state(mm, 0x5000, 0) == D.SRC_NO_ZONE
    assert zone.NR_FREE_PAGES == sum(
        len(lst) << o for o, a in enumerate(zone.free_area) for lst in a.free_list
    )
    # pcp: put, find on another CPU, drain to the buddy (merging back)
    D.put_on_pcp(zone, 1, 0x905, 0, MIGRATE_MOVABLE)
    assert D.block_state(mm, 0x905, 0, cpu=0) == D.SRC_PCP
    assert D.take_block(mm, 0x905, 0, 0) == D.SRC_PCP_REMOTE
    D.put_on_pcp(zone, 0, 0x905, 0, MIGRATE_MOVABLE)
    assert D.pcp_to_buddy(zone, 0x905, 0, 1) == D.SRC_PCP_REMOTE
    assert validate_all(mm) == []


def test_seed_free_area_matches_a_buddyinfo_row() -> None:
    mm = booted()
    zone = mm.zones[2]
    wanted = [4, 0, 2, 1, 1, 0, 0, 0, 1, 0, 0]
    res = D.seed_free_area(mm, zone, wanted)
    assert res.exact and [a.nr_free for a in zone.free_area] == wanted
    assert zone.NR_FREE_PAGES == 4 + 8 + 8 + 16 + 256
    assert validate_all(mm) == []
    # more than the model has: as much as fits, and says so
    res = D.seed_free_area(mm, mm.zones[0], [0] * 9 + [3])
    assert not res.exact and res.notes


def test_prediction_is_what_the_model_returns() -> None:
    """predict_alloc is read-only and, when sure, exactly the model's own allocation."""
    mm = booted()
    rng = random.Random(5)
    live: list[tuple[int, int]] = []
    sure = same = 0
    for _ in range(3000):
        if live and (rng.random() < 0.45 or len(live) > 150):
            pfn, order = live.pop(rng.randrange(len(live)))
            mm.free(pfn, order, cpu=rng.randrange(2))
            continue
        gfp = parse_gfp(rng.choice(GFPS))
        order = rng.choice((0, 0, 0, 1, 2, 3, 4, 9))
        cpu = rng.randrange(2)
        pred = D.predict_alloc(mm, gfp, order, cpu)
        got = mm.alloc(gfp, order, cpu=cpu)
        if pred.sure:
            sure += 1
            same += pred.pfn == got
        if got is not None:
            live.append((got, order))
    assert sure > 1000 and same == sure
    assert mm.nr_findings == 0


# ------------------------------------------------------------------ classes
def test_window_and_artefact_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = import_text(tmp_path, DATA / "windows.txt")
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0 and data["findings_by_kind"] == [] and data["anomalies"] == 0
    assert classes(data) == {
        "alloc": 7,
        "alloc-failed": 1,
        "free": 4,
        "page-ref": 2,
        "pre-capture-free": 1,
        "pre-capture-page-ref": 1,
        "unknown-pfn": 2,
        "reserved-release": 1,
        "lost-events": 1,
        "duplicate-record": 1,
        "batched-pair": 2,
        "double-free": 1,
        "alloc-of-allocated": 1,
    }
    d = data["directed"]
    assert d["events"] == 25 and d["explained"] == 23 and d["unexplained"] == 2
    assert d["still_allocated"] == {"blocks": 3, "pages": 6}
    assert d["samples"] == [
        f"{trace}:12: double-free: order-0 block 0x820 is already free in the model",
        f"{trace}:20: alloc-of-allocated: order-0 block 0x860 allocated in the trace before",
    ]
    assert d["agreement"]["allocations"] == 8 and d["agreement"]["failed_allocations"] == 1
    # text report
    assert main(["replay", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "directed replay: 25 events, 23 explained, 2 unexplained" in out
    assert "duplicate-record" in out and "still allocated at the end of the capture: 3 blocks, 6 pages" in out


def test_pcp_move_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = import_text(tmp_path, DATA / "pcp_moves.txt")
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0 and data["findings_by_kind"] == []
    assert classes(data) == {
        "alloc": 6,
        "refill": 4,
        "extfrag": 3,
        "free": 2,
        "drain": 1,
        "unknown-pfn": 1,
        "drain-not-on-pcp": 1,
        "drain-of-allocated": 1,
        "orphan-take": 1,
    }
    d = data["directed"]
    assert d["classified"] == d["events"] == 20  # one class per event
    assert d["mode"] == {"refill": "trace (mm_page_alloc_zone_locked)", "drain": "trace (mm_page_pcpu_drain)"}
    assert d["notes"]["pageblock-claimed"] == 3
    # the second refilled page was the pcp head: the model agrees there
    assert {(r["order"], r["migratetype"]): r["agree"] for r in d["agreement"]["by_order_migratetype"]}[
        (0, "Movable")
    ] == 1


def test_deferred_init_frees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = resolve_config("x86_64-1g").model_dump(mode="json")
    cfg["deferred_struct_page_init"] = True
    first = Machine.from_config(config_from_dict(cfg)).first_deferred_pfn[0]
    events = [
        {"op": "__free_pages", "order": 10, "pfn": first + 0x4000, "cpu": 0},  # never initialised
        {"op": "__free_pages", "order": 0, "pfn": 0x5000, "cpu": 1},  # allocated before the capture
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "cpu": 0, "pfn": first + 0x8000},
        {"op": "__free_pages", "order": 0, "pfn": first + 0x8000, "cpu": 0},
    ]
    trace = tmp_path / "deferred.jsonl"
    write_trace(
        str(trace), make_header(cfg, source="ftrace: hand-written", meta={"importer": "ftrace"}), events
    )
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0
    assert classes(data) == {"deferred-init-free": 1, "pre-capture-free": 1, "alloc": 1, "free": 1}


def test_real_duplicate_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = REAL / "linux_mm_2010_mm_page_free_direct_duplicate_records.txt"
    if not src.exists():
        pytest.skip(f"{src} not available")
    trace = import_text(tmp_path, src, config="x86_64-4g")
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0 and data["findings_by_kind"] == []
    assert classes(data) == {"pre-capture-free": 1, "duplicate-record": 2, "alloc": 1, "free": 1}


# ------------------------------------------------------------------ fidelity on the model's own traces
def _line(cpu: int, i: int, body: str) -> str:
    return f"{'stress-ng':>16}-{4000 + cpu:<7} [{cpu:03d}] d..1. {100 + i / 1e6:12.6f}: {body}"


def model_kmem_capture(trace: Path) -> tuple[str, Machine]:
    """Replay ``trace`` on tiny with the model's own kmem tracepoints rendered as ftrace text."""
    mm = booted()
    lines: list[str] = []

    def tracer(name: str, f: dict[str, Any]) -> None:
        i, cpu, pfn = len(lines), mm.cpu, f.get("pfn")
        if name == "mm_page_alloc":
            page = "0000000000000000" if pfn is None else "00000000a1b2c3d4"
            body = (
                f"mm_page_alloc: page={page} pfn={0 if pfn is None else hex(pfn)} order={f['order']} "
                f"migratetype={f['migratetype']} gfp_flags={format_gfp(f['gfp_flags'])}"
            )
        elif name == "mm_page_free":
            body = f"mm_page_free: page=00000000a1b2c3d4 pfn={hex(pfn)} order={f['order']}"
        elif name == "mm_page_alloc_zone_locked":
            body = (
                f"mm_page_alloc_zone_locked: page=00000000a1b2c3d4 pfn={hex(pfn)} order={f['order']} "
                f"migratetype={f['migratetype']} percpu_refill={f['percpu_refill']}"
            )
        elif name == "mm_page_pcpu_drain":
            body = f"mm_page_pcpu_drain: page=00000000a1b2c3d4 pfn={hex(pfn)} order={f['order']} migratetype={f['migratetype']}"
        else:
            body = (
                f"mm_page_alloc_extfrag: page=00000000a1b2c3d4 pfn={hex(pfn)} alloc_order={f['alloc_order']} "
                f"fallback_order={f['fallback_order']} pageblock_order=9 alloc_migratetype={f['alloc_migratetype']} "
                f"fallback_migratetype={f['fallback_migratetype']} fragmenting=1 change_ownership={f['change_ownership']}"
            )
        lines.append(_line(cpu, i, body))

    mm.tracer = tracer
    with TraceReader(str(trace)) as r:
        engine = Engine(mm, r)
        engine.run()
    return "\n".join(lines) + "\n", mm


def _free_state(zones: list[dict]) -> list[tuple]:
    return [(z["zone"], z["free_blocks_per_order"], z["pcp_pages"]) for z in zones]


def test_model_kmem_capture_replays_with_full_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's own zone_locked / pcpu_drain / extfrag / alloc / free events, replayed
    directed: every allocation agrees and the final free lists and pcp counts are the same."""
    syn = tmp_path / "syn.jsonl"
    synthetic_trace(syn)
    text, mm = model_kmem_capture(syn)
    capture = tmp_path / "kmem.txt"
    capture.write_text(text)
    trace = import_text(tmp_path, capture)
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0 and data["findings_by_kind"] == []
    d = data["directed"]
    assert d["mode"]["refill"].startswith("trace") and d["mode"]["drain"].startswith("trace")
    assert d["unexplained"] == 0
    assert d["agreement"]["rate"] == 1.0 and d["agreement"]["allocations"] > 500
    assert {"refill", "drain", "alloc", "free"} <= set(classes(data))
    model = [(z.name, [a.nr_free for a in z.free_area], z.pcp_pages()) for z in mm.zones]
    assert _free_state(data["zones"]) == model


def test_record_round_trip_replays_with_full_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay --record, rendered as mm_page_alloc / mm_page_free text, imported, replayed directed:
    the model agrees with itself on every allocation and ends in the same state."""
    syn, rec, txt = tmp_path / "syn.jsonl", tmp_path / "rec.jsonl", tmp_path / "rec.txt"
    synthetic_trace(syn, seed=11)
    code, plain = run_json(capsys, ["replay", str(syn), "--record", str(rec)])
    assert code == 0
    lines = []
    with TraceReader(str(rec)) as r:
        for i, (_, ev) in enumerate(r):
            cpu, pfn = ev.get("cpu", 0), ev["pfn"]
            if ev["op"] == "alloc_pages":
                body = (
                    f"mm_page_alloc: page=00000000a1b2c3d4 pfn={0 if pfn is None else hex(pfn)} order={ev['order']} "
                    f"migratetype={gfp_migratetype(ev['gfp'])} gfp_flags={format_gfp(ev['gfp'])}"
                )
            else:
                body = f"mm_page_free: page=00000000a1b2c3d4 pfn={hex(pfn)} order={ev['order']}"
            lines.append(_line(cpu, i, body))
    txt.write_text("\n".join(lines) + "\n")
    trace = import_text(tmp_path, txt)
    code, data = run_json(capsys, ["replay", str(trace)])
    assert code == 0 and data["findings_by_kind"] == []
    d = data["directed"]
    assert d["mode"] == {"refill": "model", "drain": "model"}
    assert d["agreement"]["rate"] == 1.0 and d["unexplained"] == 0 and d["notes"] == {}
    assert _free_state(data["zones"]) == _free_state(plain["zones"])
    # --directed works on the recorded trace itself too (handles and pfns)
    code, again = run_json(capsys, ["replay", str(rec), "--directed"])
    assert code == 0 and again["directed"]["agreement"]["rate"] == 1.0


# ------------------------------------------------------------------ initial state and compare
# the kernel prints a space after the last count (frag_show_print)
BUDDYINFO = "".join(
    row + " \n"
    for row in (
        "Node 0, zone      DMA      0      0      0      1      0      0      0      0      0      0      0",
        "Node 0, zone    DMA32      3      2      1      0      0      0      0      1      0      0      0",
        "Node 0, zone   Normal      4      0      2      1      1      0      0      0      1      0      0",
    )
)
PRE_CAPTURE = """\
            bash-100     [000] .....    10.000001: mm_page_alloc: page=0000000000000001 pfn=0x7ff order=0 migratetype=0 gfp_flags=GFP_KERNEL
            bash-100     [000] d..1.    10.000002: mm_page_pcpu_drain: page=0000000000000002 pfn=0x7fd order=0 migratetype=1
            bash-100     [000] .....    10.000003: mm_page_free: page=0000000000000003 pfn=0x7f0 order=0
"""


def test_initial_state_buddyinfo_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = tmp_path / "buddyinfo"
    info.write_text(BUDDYINFO)
    capture = tmp_path / "pre.txt"
    capture.write_text(PRE_CAPTURE)
    trace = import_text(tmp_path, capture)
    code, data = run_json(
        capsys, ["replay", str(trace), "--initial-state", str(info), "--compare", str(info)]
    )
    assert code == 0 and data["findings_by_kind"] == []
    d = data["directed"]
    assert all(z["exact"] for z in d["initial_state"]["zones"])
    # 0x7ff and 0x7fd were not free in the seeded model; the free of 0x7f0 is a pre-capture free
    assert classes(data) == {"pre-capture-page": 2, "pre-capture-free": 1}
    cmp = {z["zone"]: z for z in d["compare"]["zones"]}
    assert cmp["DMA"]["diff"] == [0] * 11 and cmp["Normal"]["diff"] == [0] * 11
    assert cmp["DMA32"]["diff"][0] == 1  # the drained page; the freed one sits on the pcp list
    assert d["compare"]["diff_pages"] == 1
    # text rendering
    assert main(["replay", str(trace), "--initial-state", str(info), "--compare", str(info), "-q"]) == 0
    out = capsys.readouterr().out
    assert "free blocks per order: model vs captured /proc/buddyinfo" in out
    assert "difference +1" in out


def test_compare_without_directed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = tmp_path / "buddyinfo"
    info.write_text(
        BUDDYINFO
        + "Node 1, zone   Normal      1      0      0      0      0      0      0      0      0      0      0\n"
    )
    syn = tmp_path / "syn.jsonl"
    synthetic_trace(syn, n=50)
    code, data = run_json(capsys, ["replay", str(syn), "--compare", str(info)])
    assert code == 0 and "directed" not in data
    zones = {(z["nid"], z["zone"]): z for z in data["compare"]["zones"]}
    assert zones[(1, "Normal")]["model"] is None and zones[(1, "Normal")]["diff"] is None


def test_initial_state_zoneinfo_and_boot_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zoneinfo = tmp_path / "zoneinfo"
    zoneinfo.write_text(
        "Node 0, zone      DMA\n  pages free     100\n        present  926\n"
        "Node 0, zone    DMA32\n  pages free     300\n        present  1024\n"
        "  pagesets\n    cpu: 0\n              count:    7\n"
    )
    st = load_initial_state([str(zoneinfo)])
    assert st.zoneinfo is not None and st.zoneinfo[1].pcp_count == {0: 7}
    mm = Machine.from_config(resolve_config("tiny"))
    with TraceReader(str(import_text(tmp_path, DATA / "windows.txt"))) as r:
        engine = Engine(mm, r, strict=False)
        glue = DirectedReplay(engine, header=r.header, initial_state=st)
        engine.step()  # the first event readies the model: boot, then the seeding
    assert [z.NR_FREE_PAGES for z in mm.zones[:2]] == [100, 300]
    assert "left as booted" in " ".join(glue.initial_report["lines"])
    assert validate_all(mm) == []
    # a boot log names the machine
    log = DMESG / "qemu_2g_plain.log"
    syn = tmp_path / "syn.jsonl"
    synthetic_trace(syn, n=20)
    code, data = run_json(capsys, ["replay", str(syn), "--initial-state", str(log)])
    assert code == 0 and data["machine"] != "tiny"


@pytest.mark.parametrize(
    ("opt", "text", "message"),
    [
        ("--initial-state", "hello\n", "not a /proc/buddyinfo, /proc/zoneinfo or a boot log"),
        ("--compare", "Node 0, zone DMA x y\n", "expected a buddyinfo row"),
        ("--compare", "nothing\n", "no buddyinfo rows"),
    ],
)
def test_bad_state_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opt: str, text: str, message: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    trace = import_text(tmp_path, DATA / "windows.txt")
    assert main(["replay", str(trace), opt, str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_no_directed_refuses_recorded_ops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = import_text(tmp_path, DATA / "pcp_moves.txt")
    assert main(["replay", str(trace), "--no-directed", "-q"]) == 2
    assert "mm_page_alloc_zone_locked" in capsys.readouterr().err
    # without recorded-only ops the plain replay runs the model on the trace's requests
    _code, data = run_json(
        capsys,
        ["replay", str(import_text(tmp_path, DATA / "windows.txt")), "--no-directed", "--continue-on-error"],
    )
    assert "directed" not in data


def test_parse_buddyinfo_rows() -> None:
    rows = parse_buddyinfo(BUDDYINFO)
    assert [(r.nid, r.zone, r.counts[7]) for r in rows] == [(0, "DMA", 0), (0, "DMA32", 1), (0, "Normal", 0)]
    mm = booted()
    cmp = compare_buddyinfo(mm, rows)
    assert cmp["model_pages"] == mm.nr_free_pages() and cmp["captured_pages"] == 8 + 139 + 292
    assert pa.zone_batchsize(mm.zones[2]) >= 1  # the machine is intact after reading


# ------------------------------------------------------------------ robustness
def _garbage_capture(seed: int, n: int) -> str:
    """Random kmem/page_ref lines on tiny: the model and the 'kernel' disagree everywhere."""
    rng = random.Random(seed)
    lines = []
    gfps = ("GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_COMP", "GFP_KERNEL|__GFP_RECLAIMABLE")
    for i in range(n):
        cpu, order, mt = rng.randrange(3), rng.choice((0, 0, 0, 1, 2, 3, 4, 9, 10)), rng.randrange(4)
        pfn = rng.randrange(0x1100) & ~((1 << order) - 1)
        r = rng.random()
        if r < 0.3:
            body = f"mm_page_alloc: page=0 pfn={pfn:#x} order={order} migratetype={mt} gfp_flags={rng.choice(gfps)}"
        elif r < 0.6:
            body = f"mm_page_free: page=0 pfn={pfn:#x} order={order}"
        elif r < 0.7:
            body = f"mm_page_alloc_zone_locked: page=0 pfn={pfn:#x} order={order} migratetype={mt} percpu_refill=1"
        elif r < 0.8:
            body = f"mm_page_pcpu_drain: page=0 pfn={pfn:#x} order={order} migratetype={mt}"
        elif r < 0.85:
            body = (
                f"mm_page_alloc_extfrag: page=0 pfn={pfn:#x} alloc_order={order} "
                f"fallback_order={min(10, order + rng.randrange(3))} pageblock_order=9 alloc_migratetype={mt} "
                f"fallback_migratetype={rng.randrange(3)} fragmenting=1 change_ownership=1"
            )
        elif r < 0.9:
            body = f"mm_page_free_batched: page=0 pfn={pfn:#x} order=0"
        else:
            body = (
                f"page_ref_mod_and_test: pfn={pfn:#x} flags=none count=0 mapcount=0 mapping=0 mt=1 "
                f"val=-1 ret={rng.randrange(2)}"
            )
        lines.append(_line(cpu, i, body))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", [1, 2])
def test_garbage_capture_never_breaks_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    """Whatever a capture says, directed replay classifies it and the model's invariants hold
    after every event (the validators run each step)."""
    capture = tmp_path / "garbage.txt"
    capture.write_text(_garbage_capture(seed, 700))
    trace = import_text(tmp_path, capture)
    code, data = run_json(capsys, ["replay", str(trace), "--check-every", "1"])
    assert code == 0 and data["findings_by_kind"] == [] and data["anomalies"] == 0
    d = data["directed"]
    assert d["classified"] == d["events"] == 700 and d["unexplained"] > 0


def test_show_and_report_replay_imported_traces_directed(tmp_path, capsys):
    """Traces imported from ftrace carry recorded-only ops: show and report run them directed."""
    from buddysim.cli import main

    data = Path(__file__).resolve().parent / "data" / "ftrace" / "pcp_moves.txt"
    out = tmp_path / "pm.jsonl"
    assert main(["import", "ftrace", str(data), "--config", "tiny", "-q", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["show", str(out), "--format", "buddyinfo"]) == 0
    assert capsys.readouterr().out.startswith("Node 0, zone")
    assert main(["report", str(out), "-o", str(tmp_path / "pm.html"), "-q"]) in (0, 1)
    assert (tmp_path / "pm.html").exists()
