"""The ftrace importer: every line variant, real captures, the CLI, compressed inputs, round trip."""

from __future__ import annotations

import gzip
import json
import lzma
import random
from pathlib import Path

import pytest
from support import synthetic_trace

from buddysim.cli import main
from buddysim.mm.gfp import format_gfp, gfp_migratetype, parse_gfp
from buddysim.trace.importers.ftrace import (
    FtraceParser,
    choose_machine,
    dumps_event_fast,
    parse_gfp_lenient,
)
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import dumps_event

DATA = Path(__file__).parent / "data" / "ftrace"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def parse(path: Path) -> tuple[list[tuple[int, dict]], FtraceParser]:
    p = FtraceParser(str(path))
    with open(path) as f:
        return list(p.parse(f)), p


def read_trace(path: Path) -> tuple[dict, list[dict]]:
    with TraceReader(str(path)) as r:
        return dict(r.header), [ev for _, ev in r]


# ------------------------------------------------------------------ line variants
def test_ftrace_variants() -> None:
    events, p = parse(DATA / "variants_ftrace.txt")
    got = {line: ev for line, ev in events}
    # 5-char flags, zone_locked, symbolic gfp, hex pfn
    assert got[13] == {
        "op": "mm_page_alloc_zone_locked",
        "pfn": 0x800,
        "order": 0,
        "migratetype": "Movable",
        "percpu_refill": True,
        "cpu": 3,
    }
    assert got[14] == {
        "op": "alloc_pages",
        "order": 0,
        "gfp": "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP",
        "cpu": 3,
        "pfn": 0x800,
    }
    # 5-char flags ending in a digit, comm with a slash and colon
    assert got[15] == {"op": "__free_pages", "order": 0, "pfn": 0x800, "cpu": 0}
    # <...> comm, 4-char flags, decimal pfn, vendor field nr_free=
    assert got[16] == {
        "op": "alloc_pages",
        "order": 0,
        "gfp": "GFP_HIGHUSER|__GFP_ZERO",
        "cpu": 1,
        "pfn": 2049,
    }
    # comm with a space; hex gfp
    assert got[17] == {"op": "alloc_pages", "order": 1, "gfp": "GFP_KERNEL", "cpu": 2, "pfn": 0x802}
    # comm with dashes
    assert got[18] == {"op": "__free_pages", "order": 1, "pfn": 0x802, "cpu": 1}
    # failed allocations: "page= (null) pfn=0" and "page=(null) pfn=0"
    assert got[19]["pfn"] is None and got[19]["cpu"] == 1
    assert got[20] == {
        "op": "alloc_pages",
        "order": 3,
        "gfp": "GFP_ATOMIC|__GFP_NOWARN",
        "cpu": 0,
        "pfn": None,
    }
    # 2.6-era: no flags column, old event names, raw page pointers
    assert got[21]["pfn"] == 2052 and got[21]["cpu"] == 0
    assert got[22] == {"op": "__free_pages", "order": 0, "pfn": 2052, "cpu": 0}
    assert got[23] == {"op": "mm_page_free_batched", "pfn": 2053, "cpu": 0}
    assert got[24] == {"op": "mm_page_free_batched", "pfn": 0x806, "cpu": 1}
    assert got[25] == {
        "op": "mm_page_pcpu_drain",
        "pfn": 0x807,
        "order": 0,
        "migratetype": "Movable",
        "cpu": 3,
    }
    # events-kmem.rst era: cpu= as a field names the pcp's CPU
    assert got[26]["cpu"] == 1
    assert got[27] == {
        "op": "mm_page_alloc_extfrag",
        "pfn": 0x810,
        "alloc_order": 0,
        "fallback_order": 4,
        "alloc_migratetype": "Unmovable",
        "fallback_migratetype": "Movable",
        "change_ownership": False,
        "cpu": 3,
    }
    assert "change_ownership" not in got[28]  # 2.6.3x extfrag had no change_ownership
    # record-tgid column; old gfp names translated (__GFP_COLD -> nothing), unknown ones dropped
    assert got[29] == {
        "op": "alloc_pages",
        "order": 2,
        "gfp": "GFP_KERNEL|__GFP_RECLAIMABLE",
        "cpu": 3,
        "pfn": 0x820,
    }
    assert parse_gfp(got[30]["gfp"]) == parse_gfp("GFP_KERNEL") | 0x200000
    # page_ref events: the page_ref.h function that emits each
    assert got[35] == {
        "op": "page_ref",
        "fn": "page_ref_sub_and_test",
        "pfn": 0x3DBC47,
        "nr": 1,
        "ret": False,
    }
    assert got[36] == {
        "op": "page_ref",
        "fn": "page_ref_add_unless_zero",
        "pfn": 0x3CB36D,
        "nr": 1,
        "ret": True,
    }
    assert got[37] == {"op": "page_ref", "fn": "page_ref_add", "pfn": 0x9F83A8, "nr": 1024}
    assert got[38] == {"op": "page_ref", "fn": "page_ref_sub", "pfn": 0x9F83A8, "nr": 1}
    assert got[39] == {"op": "page_ref", "fn": "set_page_count", "pfn": 0x12345, "v": 1}
    assert got[40] == {"op": "page_ref", "fn": "page_ref_inc_return", "pfn": 0x12345, "ret": 2}
    assert got[41] == {"op": "page_ref", "fn": "page_ref_freeze", "pfn": 0x12345, "count": 2, "ret": True}
    assert got[42] == {"op": "page_ref", "fn": "page_ref_unfreeze", "pfn": 0x12345, "count": 3}
    # lost events become a mark
    assert got[46] == {"op": "mark", "label": "ftrace: CPU 2 lost 1234 events (line 46)"}
    assert len(events) == 27
    st = p.stats
    assert st.lines == 52
    assert st.events["mm_page_alloc"] == 8 and st.events["mm_page_free_direct"] == 1
    assert st.events["mm_pagevec_free"] == 1 and st.events["page_ref_mod"] == 2
    assert dict(st.unknown_events) == {"bio_iov_deb_beg": 1, "kmalloc": 1}
    assert st.stack_lines == 4 and st.other_lines == 1 and st.lost_events == 1234
    assert st.failed_allocs == 2 and st.max_cpu == 67
    assert dict(st.gfp_unknown) == {"__GFP_BOGUS": 1} and st.gfp_translated == 2
    problems = [pr.render() for pr in st.problems]
    path = str(DATA / "variants_ftrace.txt")
    assert problems[:4] == [
        f"{path}:48: mm_page_alloc: expected pfn=<decimal or 0x hex>, got 'zz'",
        f"{path}:49: mm_page_free: order=11 is outside 0..10 (x86-64 MAX_PAGE_ORDER)",
        f"{path}:50: mm_page_pcpu_drain: migratetype=9 is not a migratetype (0..5)",
        f"{path}:51: mm_page_free: expected pfn=<decimal or 0x hex>",
    ]
    assert problems[4].startswith(f"{path}:52: expected an ftrace line")
    assert st.malformed == 5


def test_perf_script_variants() -> None:
    events, p = parse(DATA / "variants_perf.txt")
    assert [ev for _, ev in events] == [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "cpu": 0, "pfn": 1534487},
        {"op": "__free_pages", "order": 0, "pfn": 1534487, "cpu": 1},
        {"op": "alloc_pages", "order": 1, "gfp": "GFP_HIGHUSER_MOVABLE|__GFP_COMP", "cpu": 2, "pfn": 1534488},
        {"op": "mm_page_pcpu_drain", "pfn": 1534488, "order": 1, "migratetype": "Movable", "cpu": 3},
        {"op": "page_ref", "fn": "page_ref_sub_and_test", "pfn": 1534488, "nr": 1, "ret": True},
    ]
    assert p.stats.formats["perf"] == 6 and dict(p.stats.unknown_events) == {"sched_switch": 1}
    assert p.stats.malformed == 0


def test_trace_cmd_report_variants() -> None:
    events, p = parse(DATA / "variants_tracecmd.txt")
    assert [ev["op"] for _, ev in events] == [
        "alloc_pages",
        "__free_pages",
        "mm_page_alloc_zone_locked",
        "page_ref",
        "mark",
    ]
    assert events[2][1]["order"] == 3 and events[2][1]["cpu"] == 1
    assert p.stats.malformed == 0 and p.stats.lost_events == 17 and p.stats.comment_lines == 3


def test_function_graph_comments() -> None:
    events, p = parse(DATA / "variants_funcgraph.txt")
    assert [ev for _, ev in events] == [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "cpu": 1, "pfn": 0x800},
        {"op": "__free_pages", "order": 0, "pfn": 0x800, "cpu": 2},
        {"op": "alloc_pages", "order": 2, "gfp": "GFP_KERNEL|__GFP_COMP", "cpu": 3, "pfn": None},
    ]
    assert p.stats.other_lines == 2 and dict(p.stats.unknown_events) == {"my_debug_printk": 1}
    assert p.stats.malformed == 0


def test_lenient_gfp() -> None:
    assert parse_gfp_lenient("none") == (0, (), 0)
    assert parse_gfp_lenient("") == (0, (), 0)
    mask, unknown, translated = parse_gfp_lenient("GFP_TEMPORARY|__GFP_NOTRACK|__GFP_FOO|0x1000000000")
    assert mask == parse_gfp("GFP_KERNEL|__GFP_RECLAIMABLE")
    assert unknown == ("__GFP_FOO", "0x1000000000") and translated == 2


@pytest.mark.parametrize(
    "ev",
    [
        {"op": "alloc_pages", "order": 3, "gfp": "GFP_KERNEL|__GFP_COMP", "cpu": 7, "pfn": 12345},
        {"op": "alloc_pages", "order": 0, "gfp": "none", "cpu": 0, "pfn": None},
        {"op": "__free_pages", "order": 9, "pfn": 512, "cpu": 1},
        {
            "op": "mm_page_alloc_zone_locked",
            "pfn": 8,
            "order": 3,
            "migratetype": "CMA",
            "percpu_refill": False,
            "cpu": 2,
        },
        {"op": "mm_page_pcpu_drain", "pfn": 8, "order": 0, "migratetype": "Reclaimable", "cpu": 5},
        {"op": "mm_page_free_batched", "pfn": 9, "cpu": 1},
        {"op": "page_ref", "fn": "page_ref_sub_and_test", "pfn": 9, "nr": 1, "ret": True},
        {"op": "mark", "label": "ftrace: CPU 1 lost 3 events (line 9)"},
    ],
)
def test_fast_serializer_writes_the_recorder_bytes(ev: dict) -> None:
    assert dumps_event_fast(ev) == dumps_event(ev)


# ------------------------------------------------------------------ real captures
def _real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def test_real_duplicate_records_capture() -> None:
    events, p = parse(_real("linux_mm_2010_mm_page_free_direct_duplicate_records.txt"))
    assert [ev["op"] for _, ev in events] == ["__free_pages"] * 2 + ["alloc_pages"] + ["__free_pages"] * 2
    assert {ev["pfn"] for _, ev in events} == {1155800}
    assert p.stats.malformed == 0  # "K-PID CPU# TIMESTAMP FUNCTION" is a header


def test_real_highatomic_capture() -> None:
    events, p = parse(_real("lkml_2020_highatomic_mm_page_alloc_and_show_free_areas.txt"))
    allocs = [ev for _, ev in events]
    assert len(allocs) == 9 and allocs[-1]["pfn"] is None and allocs[-1]["cpu"] == 5
    assert [ev["pfn"] for ev in allocs[:3]] == [970744, 970745, 970278]
    assert p.stats.failed_allocs == 1 and p.stats.migratetype_mismatch == 0
    # the show_free_areas() lines are not trace output: reported with their line numbers
    assert all(pr.line > 13 for pr in p.stats.problems) and p.stats.malformed == 9


def test_real_page_ref_captures() -> None:
    events, p = parse(_real("page_ref_trace_gup_bio_merge_leak.txt"))
    leak = [ev for _, ev in events if ev["pfn"] == 0x3CB36D]
    # 2 -> 3 -> 2 -> 3 -> 4 -> 3 -> 4, then the stack-traced repeats
    deltas = [ev.get("nr", 0) * (1 if ev["fn"] != "page_ref_sub_and_test" else -1) for ev in leak[:7]]
    assert deltas == [-1, 1, -1, 1, 1, -1, 1]
    assert p.stats.stack_lines == 30 and p.stats.unknown_events["bio_msg_deb_add"] == 2
    events, p = parse(_real("lkml_2025_page_ref_gup_pin_mlock_batch.txt"))
    assert [(ev["fn"], ev.get("nr")) for _, ev in events] == [
        ("page_ref_add", 1),
        ("page_ref_sub_and_test", 1),
        ("page_ref_add", 1024),
    ]
    assert p.stats.malformed == 0 and p.stats.stack_lines == 58


# ------------------------------------------------------------------ the command
def test_import_command_writes_a_valid_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    src = DATA / "variants_ftrace.txt"
    assert main(["import", "ftrace", str(src), "-o", str(out), "--config", "tiny"]) == 0
    err = capsys.readouterr().err
    assert f"{src}:48: mm_page_alloc: expected pfn=<decimal or 0x hex>, got 'zz'" in err
    assert "unknown gfp flag names dropped: __GFP_BOGUS (1)" in err
    assert "nr_cpus raised to 68" in err  # CPU 67 on a 2-CPU preset
    header, events = read_trace(out)  # the reader validates every line
    assert header["source"] == "ftrace: variants_ftrace.txt"
    assert header["machine"]["nr_cpus"] == 68 and header["machine"]["name"] == "tiny"
    assert header["meta"]["importer"] == "ftrace" and header["meta"]["malformed_lines"] == 5
    assert header["meta"]["events"]["mm_page_alloc"] == 8
    parsed, _ = parse(src)
    assert len(events) == len(parsed)
    assert events[1]["gfp"] == parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP")
    # no overwrite without --force
    assert main(["import", "ftrace", str(src), "-o", str(out), "--config", "tiny", "-q"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["import", "ftrace", str(src), "-o", str(out), "--config", "tiny", "-q", "--force"]) == 0


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_import_reads_compressed_input(tmp_path: Path, kind: str) -> None:
    src = DATA / "variants_perf.txt"
    data = src.read_bytes()
    packed = tmp_path / f"perf.txt.{kind}"
    packed.write_bytes(gzip.compress(data) if kind == "gz" else lzma.compress(data))
    plain, packed_out = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    assert main(["import", "ftrace", str(src), "-o", str(plain), "--config", "x86_64-64g", "-q"]) == 0
    assert main(["import", "ftrace", str(packed), "-o", str(packed_out), "--config", "x86_64-64g", "-q"]) == 0
    assert read_trace(plain)[1] == read_trace(packed_out)[1]


def test_import_to_stdout_and_default_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "ftrace", str(DATA / "variants_funcgraph.txt")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = json.loads(lines[0])
    # the smallest x86-64 preset holding pfn 0x800, with nr_cpus raised for CPU 3
    assert header["machine"]["name"] == "x86_64-1g" and header["machine"]["nr_cpus"] == 4
    assert "no --config given: using preset x86_64-1g" in captured.err
    assert [json.loads(x)["op"] for x in lines[1:]] == ["alloc_pages", "__free_pages", "alloc_pages"]


def test_choose_machine_beyond_every_preset() -> None:
    p = FtraceParser()
    p.feed(1, "bash-1 [000] ..... 1.0: mm_page_free: page=0 pfn=0xffffffffff order=0")
    machine, _config, notes = choose_machine(None, p.stats)
    assert machine == "x86_64-1t" and any("beyond the machine's memory" in n for n in notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no such file"),
        ("# tracer: nop\n", "no kmem or page_ref page events found"),
        ("bash-1 [000] .... 1.0: sched_switch: prev_comm=a\n", "other events: sched_switch (1)"),
    ],
)
def test_import_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, message: str
) -> None:
    src = tmp_path / "in.txt"
    if text is not None:
        src.write_text(text)
    assert main(["import", "ftrace", str(src), "-o", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_import_corrupt_compressed_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.txt.gz"
    rng = random.Random(1)
    data = bytes(rng.randrange(256) for _ in range(5000))
    src.write_bytes(gzip.compress(data)[:2000])
    assert main(["import", "ftrace", str(src), "-o", str(tmp_path / "o.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ------------------------------------------------------------------ round trip


def render_ftrace(events: list[dict]) -> str:
    """A recorded buddysim trace as /sys/kernel/tracing/trace text (mm_page_alloc / mm_page_free)."""
    lines = ["# tracer: nop", "#", "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION"]
    for i, ev in enumerate(events):
        cpu = ev.get("cpu", 0)
        prefix = f"{'stress-ng':>16}-{4000 + cpu:<7} [{cpu:03d}] ..... {100 + i / 1e6:12.6f}: "
        if ev["op"] == "alloc_pages":
            pfn = ev["pfn"]
            page = "0000000000000000" if pfn is None else f"{0xFFFFEA0000000000 + pfn * 64:016x}"
            lines.append(
                prefix
                + f"mm_page_alloc: page={page} pfn={0 if pfn is None else hex(pfn)} order={ev['order']} "
                f"migratetype={gfp_migratetype(ev['gfp'])} gfp_flags={format_gfp(ev['gfp'])}"
            )
        elif ev["op"] == "__free_pages":
            lines.append(
                prefix + f"mm_page_free: page=00000000c0ffee00 pfn={hex(ev['pfn'])} order={ev['order']}"
            )
        else:
            raise AssertionError(f"no ftrace rendering for {ev['op']}")
    return "\n".join(lines) + "\n"


def test_record_rendered_as_ftrace_imports_back_to_the_same_events(tmp_path: Path) -> None:
    syn, rec, txt, imp = (tmp_path / n for n in ("syn.jsonl", "rec.jsonl", "rec.txt", "imp.jsonl"))
    synthetic_trace(syn)
    assert main(["replay", str(syn), "--record", str(rec), "--json", "-q"]) == 0
    _, recorded = read_trace(rec)
    txt.write_text(render_ftrace(recorded))
    assert main(["import", "ftrace", str(txt), "-o", str(imp), "--config", "tiny", "-q"]) == 0
    header, imported = read_trace(imp)
    assert header["machine"] == "tiny"
    expected = [{k: v for k, v in ev.items() if k != "handle"} | {"cpu": ev.get("cpu", 0)} for ev in recorded]
    assert imported == expected
