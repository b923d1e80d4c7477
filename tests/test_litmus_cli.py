"""``buddysim litmus`` on the command line: exit codes, messages, JSON, the console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from buddysim.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces" / "litmus"
SCRIPT = ROOT / ".venv" / "bin" / "buddysim"

GOOD = """
[initial]
count = 1
mapped = true

[[thread]]
name = "T0"
refs = 1
program = ["remove_from_mapping", "put"]

[[thread]]
name = "T1"
program = ["get", { action = "revalidate", on_fail = "put_stop" }]

[expect]
final = "pass"
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_clean_run_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["litmus", str(TRACES / "get_vs_final_put.toml"), "--refcount", "baseline,final", "--no-naive"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "all verdicts match the expectations" in out
    assert "order_A" in out and "states" in out


def test_violation_prints_the_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["litmus", str(TRACES / "atomic_or_free.toml"), "--refcount", "atomic_or"])
    out = capsys.readouterr().out
    assert rc == 0  # the violation is the expected verdict
    assert "shortest counterexample for no_stale_ref" in out
    assert "atomic_or(F)" in out and "F+2" in out


def test_verdict_differing_from_expectation_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _write(tmp_path, GOOD.replace('final = "pass"', 'final = "violation"'))
    assert main(["litmus", f]) == 1
    assert "MISMATCH: final: overall: expected violation, found pass" in capsys.readouterr().out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, GOOD)
    assert main(["litmus", f, "--json", "--refcount", "final,v1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and doc["matches"] is True
    (sc,) = doc["scenarios"]
    fin = sc["models"]["final"]
    assert fin["overall"] == "pass" and fin["expected"] == {"overall": "pass"}
    assert fin["states"] > 0 and fin["naive_schedules"] >= fin["schedules"] > 0
    assert sc["models"]["v1"]["expected"] == {}


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (GOOD.replace('"put"]', '"put"]\nbogus = 1', 1), "s.toml:10: thread[0].bogus: Extra inputs"),
        (GOOD.replace('"get"', '"fly"'), "s.toml:13: thread[1].program[0]: unknown action 'fly'"),
        (GOOD.replace("count = 1", 'count = "one"'), "s.toml:3: initial.count"),
        (GOOD.replace('final = "pass"', 'v9 = "pass"'), "s.toml:16: expect.v9: unknown refcount model 'v9'"),
        (GOOD.replace("[initial]", "[initial"), "s.toml:2: invalid TOML"),
    ],
)
def test_bad_input_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expect: str
) -> None:
    f = _write(tmp_path, text)
    assert main(["litmus", f]) == 2
    err = capsys.readouterr().err
    assert expect in err
    assert "Traceback" not in err


def test_setup_that_cannot_run_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An error found while exploring (not while parsing) still points at the TOML line."""
    text = GOOD.replace("mapped = true", 'mapped = true\nsetup = ["allocate"]')  # the page is not free
    f = _write(tmp_path, text)
    assert main(["litmus", f]) == 2
    err = capsys.readouterr().err
    assert "s.toml:5: initial.setup: setup action 'allocate" in err and "cannot run" in err


def test_unknown_model_and_missing_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, GOOD)
    assert main(["litmus", f, "--refcount", "nope"]) == 2
    assert "unknown refcount model 'nope'" in capsys.readouterr().err
    assert main(["litmus", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: cannot read scenario" in capsys.readouterr().err
    assert main(["litmus", f, "--bound", "0"]) == 2


def test_console_script() -> None:
    proc = subprocess.run(
        [str(SCRIPT), "litmus", "traces/litmus/alloc_frozen_inc.toml", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    models = doc["scenarios"][0]["models"]
    assert models["baseline"]["overall"] == "pass"
    assert models["final"]["verdicts"]["no_leak"] == "violation"
    # the same counts as an in-process run: exploration is deterministic across processes
    from buddysim.litmus.explorer import Explorer
    from buddysim.litmus.scenario import load_scenario
    from buddysim.refcount.registry import get_model

    e = Explorer(load_scenario(TRACES / "alloc_frozen_inc.toml"), get_model("final")).explore()
    assert (models["final"]["states"], models["final"]["transitions"]) == (e.states, e.transitions)
