"""CLI tests of `buddysim boot` and `buddysim replay` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buddysim.cli import main
from buddysim.trace.recorder import make_header, write_trace

ROOT = Path(__file__).resolve().parent.parent


def _trace(path: Path, events: list[dict], machine: str = "tiny", **hdr) -> Path:
    write_trace(str(path), make_header(machine, **hdr), events)
    return path


def _run_json(capsys, argv: list[str]) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


# ------------------------------------------------------------------ boot
@pytest.mark.parametrize(
    ("refcount", "sites", "code", "unfrozen"),
    [
        ("baseline", None, 0, False),
        ("final", None, 0, False),
        ("v1", None, 1, True),
        ("v2", None, 1, True),
        ("final", "baseline", 1, True),
    ],
)
def test_boot_outcomes(capsys, refcount, sites, code, unfrozen):
    argv = ["boot", "tiny", "--refcount", refcount] + (["--sites", sites] if sites else [])
    got, data = _run_json(capsys, argv)
    assert got == code
    rows = [r for r in data["findings_by_kind"] if r["kind"] == "unfrozen-free-entry"]
    if not unfrozen:
        assert rows == []
        return
    # every boot page is reported as entering a free list unfrozen, at __free_pages_core
    assert sum(r["pages"] for r in rows) == data["handoff_pages"] == data["totalram_pages"]
    assert "__free_pages_core" in rows[0]["first"]["chain"]
    assert data["verified"] is True


def test_boot_text_output_and_bytes_per_page(capsys):
    assert main(["boot", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "nr_free_pages:" in out and "(verified)" in out
    assert "7.00 bytes of page state per page" in out


def test_boot_emit_trace_replays_to_the_same_state(tmp_path, capsys):
    out = tmp_path / "boot.jsonl"
    code, booted = _run_json(capsys, ["boot", "tiny", "--emit-trace", str(out)])
    assert code == 0 and out.exists()
    code, replayed = _run_json(capsys, ["replay", str(out)])
    assert code == 0
    assert [z["free_blocks_per_order"] for z in replayed["zones"]] == [
        z["free_blocks_per_order"] for z in booted["zones"]
    ]
    assert replayed["nr_free_pages"] == booted["nr_free_pages"]
    # --emit-trace refuses to overwrite without --force
    assert main(["boot", "tiny", "--emit-trace", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_boot_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nnr_cpus = "many"\n')
    assert main(["boot", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "nr_cpus" in err and "Traceback" not in err
    assert main(["boot", "no-such-preset"]) == 2


# ------------------------------------------------------------------ replay
def _churn() -> list[dict]:
    ev = []
    for i in range(40):
        ev.append({"op": "alloc_pages", "order": i % 4, "gfp": "GFP_KERNEL", "handle": i, "cpu": i % 2})
    for i in range(0, 40, 2):
        ev.append({"op": "__free_pages", "order": i % 4, "handle": i, "cpu": 1})
    ev.append({"op": "drain_all_pages"})
    ev.append({"op": "mark", "label": "drained"})
    return ev


def test_replay_clean_trace_exit_0(tmp_path, capsys):
    t = _trace(tmp_path / "t.jsonl", _churn(), seed=3)
    code, data = _run_json(capsys, ["replay", str(t)])
    assert code == 0
    # 40 allocations, 20 frees, a drain and a mark
    assert data["events"] == 62 and data["nr_findings"] == 0 and data["verified"] is True
    assert data["marks"] == {"drained": 62}
    assert data["seed"] == 3


def test_replay_double_free_is_a_finding_exit_1(tmp_path, capsys):
    ev = [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": "a"},
        {"op": "__free_pages", "order": 0, "handle": "a"},
        {"op": "__free_pages", "order": 0, "handle": "a"},
    ]
    t = _trace(tmp_path / "t.jsonl", ev)
    code, data = _run_json(capsys, ["replay", str(t)])
    assert code == 1
    first = data["findings"][0]
    assert first["event"] == 3 and first["function"] == "put_page_testzero"
    assert first["raw_before"] == 0 and first["pfn"] is not None


def test_replay_bad_line_names_file_line_field(tmp_path, capsys):
    t = tmp_path / "t.jsonl"
    t.write_text(
        json.dumps(make_header("tiny"))
        + "\n"
        + json.dumps({"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL"})
        + "\n"
        + json.dumps({"op": "alloc_pages", "order": "big", "gfp": "GFP_KERNEL"})
        + "\n"
    )
    assert main(["replay", str(t)]) == 2
    err = capsys.readouterr().err
    assert f"{t}:3: alloc_pages.order" in err and "Traceback" not in err
    # --continue-on-error goes on, counts the line, still exits 2
    code = main(["replay", str(t), "--continue-on-error", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 2 and data["bad_lines"] == 1 and data["events"] == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty"),
        ('{"op": "header", "version": 99, "machine": "tiny"}\n', "version"),
        ('{"op": "header", "version": 1, "machine": "tiny"}\n{"op": "nosuch"}\n', "nosuch"),
        (
            '{"op": "header", "version": 1, "machine": "tiny"}\n{"op": "alloc_pages", "order": 0, "gf',
            "truncated",
        ),
        (
            '{"op": "header", "version": 1, "machine": "tiny"}\n{"op": "alloc_pages", "order": 1e30, "gfp": 0}\n',
            "order",
        ),
    ],
)
def test_replay_bad_inputs_exit_2(tmp_path, capsys, content, needle):
    t = tmp_path / "t.jsonl"
    t.write_text(content)
    assert main(["replay", str(t)]) == 2
    err = capsys.readouterr().err
    assert needle in err.lower() and "Traceback" not in err


def test_replay_unknown_handle_is_an_anomaly(tmp_path, capsys):
    t = _trace(tmp_path / "t.jsonl", [{"op": "__free_pages", "order": 0, "handle": "ghost"}])
    assert main(["replay", str(t)]) == 2
    assert f"{t}:2" in capsys.readouterr().err


def test_replay_model_comparison_shows_the_divergence(tmp_path, capsys):
    # a speculative get on a freed (frozen) page: baseline leaves 0, final F+1 -> the inc_return
    # value read back differs
    ev = [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": "p"},
        {"op": "__free_pages", "order": 0, "handle": "p"},
        {"op": "folio_try_get", "handle": "p"},
        {"op": "page_ref", "fn": "page_ref_count", "handle": "p"},
        {"op": "page_ref", "fn": "page_ref_inc_return", "handle": "p"},
    ]
    t = _trace(tmp_path / "t.jsonl", ev)
    code = main(["replay", str(t), "--refcount", "baseline,final", "--debug-vm", "off", "--json"])
    data = json.loads(capsys.readouterr().out)
    div = data["divergence"]
    assert div is not None and div["event"] == 5 and div["op"] == "page_ref"
    assert div["models"]["baseline"]["value"] == 1
    assert div["models"]["final"]["value"] == -0x80000000 + 2
    assert code == 1  # the increment of a free page leaves it unfrozen on the list: a finding


def test_replay_record_round_trip(tmp_path, capsys):
    t = _trace(tmp_path / "t.jsonl", _churn())
    rec = tmp_path / "rec.jsonl"
    assert main(["replay", str(t), "--record", str(rec), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    assert lines[0]["op"] == "header"
    assert all("pfn" in e for e in lines[1:] if e["op"] in ("alloc_pages", "__free_pages"))
    assert all("handle" not in e for e in lines[1:] if e["op"] == "__free_pages")
    assert main(["replay", str(rec), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["zones"] == first["zones"]


def test_replay_console_script_subprocess(tmp_path):
    t = _trace(tmp_path / "t.jsonl", _churn())
    exe = Path(sys.executable).parent / "buddysim"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "buddysim"]
    p = subprocess.run(
        [*cmd, "replay", str(t)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}
    )
    assert p.returncode == 0, p.stderr
    assert "nr_free_pages:" in p.stdout and "(verified)" in p.stdout
    p = subprocess.run([*cmd, "replay", str(tmp_path / "missing.jsonl")], capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_help_lists_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0  ran clean", "1  findings", "2  bad usage or bad input"):
        assert line in out
    assert main(["--version"]) == 0
    assert main(["replay"]) == 2


@pytest.mark.parametrize(
    ("events", "needle"),
    [
        ([{"op": "check", "cpu": 9, "pcp_count": 0}], "cpu 9 does not exist"),
        ([{"op": "check", "nid": 5, "nr_free": 0}], "node 5 does not exist"),
        ([{"op": "drain_all_pages", "zone": "Movable"}], "no zone 'Movable'"),
    ],
)
def test_replay_names_that_do_not_exist_are_bad_input(tmp_path, capsys, events, needle):
    t = _trace(tmp_path / "t.jsonl", events)
    assert main(["replay", str(t), "-q"]) == 2
    assert f"{t}:2" in (err := capsys.readouterr().err) and needle in err


def test_replay_refuses_to_record_over_its_input_and_devices(tmp_path, capsys):
    t = _trace(tmp_path / "t.jsonl", _churn())
    assert main(["replay", str(t), "--record", str(t), "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err
    assert len(t.read_text().splitlines()) == 63  # header + 62 events, untouched
    assert main(["replay", str(t), "--record", "/dev/null", "--force"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_failed_allocation_handles_are_skipped_not_bad_input(tmp_path, capsys):
    # tiny has 981 Normal pages: the second order-10 GFP_KERNEL allocation cannot be served
    ev = [
        {"op": "alloc_pages", "order": 10, "gfp": "GFP_KERNEL|__GFP_THISNODE", "handle": i} for i in range(4)
    ]
    ev += [{"op": "__free_pages", "order": 10, "handle": i} for i in range(4)]
    t = _trace(tmp_path / "t.jsonl", ev)
    code, data = _run_json(capsys, ["replay", str(t)])
    assert code == 0 and data["anomalies"] == 0


def test_gfp_reclaimable_and_movable_is_a_warning_not_a_crash(tmp_path, capsys):
    t = _trace(
        tmp_path / "t.jsonl", [{"op": "alloc_pages", "order": 0, "gfp": "__GFP_RECLAIMABLE|__GFP_MOVABLE"}]
    )
    code, data = _run_json(capsys, ["replay", str(t)])
    assert code == 1
    assert data["findings"][0]["function"] == "gfp_migratetype"


def test_replay_of_a_double_free_ends_with_a_finding(tmp_path):
    """A five-line trace that used to hang the replay (a frozen page freed twice, then a
    drain): now exit 1 with the bad page, well within the timeout."""
    trace = tmp_path / "double-free.jsonl"
    trace.write_text(
        '{"op":"header","version":1,"machine":"tiny"}\n'
        '{"op":"alloc_frozen_pages","order":0,"gfp":"GFP_KERNEL","cpu":0,"handle":1}\n'
        '{"op":"free_frozen_pages","order":0,"handle":1,"cpu":0}\n'
        '{"op":"free_frozen_pages","order":0,"handle":1,"cpu":0}\n'
        '{"op":"drain_all_pages"}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "buddysim", "replay", str(trace), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [(f["kind"], f["check"]) for f in data["findings"]] == [
        ("bad_page", "page dumped because: page already on a pcp list (freed twice)")
    ]
