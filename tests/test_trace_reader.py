"""buddysim.trace.reader / recorder and ``buddysim check-trace``: exact messages, modes, files."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from buddysim.cli import main
from buddysim.errors import BadInput
from buddysim.trace.reader import TraceReader, peek_header
from buddysim.trace.recorder import TraceRecorder, dumps_event, dumps_header, make_header, write_trace

HEADER = '{"op":"header","version":1,"machine":"small"}'
ALL_OPS = (
    "memblock_add, memblock_reserve, memblock_phys_free, memblock_phys_alloc_range, memblock_free_all, "
    "online_pages, alloc_pages, alloc_frozen_pages, __free_pages, free_frozen_pages, put_page, get_page, "
    "folio_try_get, folio_put, page_ref, page_frag_alloc, page_frag_free, page_frag_cache_drain, "
    "drain_all_pages, mm_page_alloc_zone_locked, mm_page_pcpu_drain, mm_page_alloc_extfrag, "
    "mm_page_free_batched, check, mark"
)
FIRST_LINE = '{"op": "header", "version": 1, "machine": ...}'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # messages carry the path as given: run in tmp_path and name files "t.jsonl"
    monkeypatch.chdir(tmp_path)


def write(lines: list[str], name: str = "t.jsonl", final_newline: bool = True) -> str:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    Path(name).write_text(text)
    return name


def read_all(path: str, **kw: Any) -> list[tuple[int, dict[str, Any]]]:
    with TraceReader(path, **kw) as reader:
        return list(reader)  # type: ignore[arg-type]


def first_error(lines: list[str], final_newline: bool = True) -> str:
    path = write(lines, final_newline=final_newline)
    with pytest.raises(BadInput) as info:
        read_all(path)
    return str(info.value)


# ---------------------------------------------------------------- good input
def test_line_numbers_skip_blank_lines() -> None:
    path = write(
        [
            "",
            HEADER,
            '{"op":"alloc_pages","order":1,"gfp":"GFP_KERNEL","handle":1}',
            "   ",
            "",
            '{"op":"__free_pages","handle":1,"order":1}',
            '{"op":"mark","label":"end"}',
        ]
    )
    with TraceReader(path) as reader:
        assert reader.header == {"op": "header", "version": 1, "machine": "small"}
        assert reader.header_line == 2
        events = list(reader)
        assert reader.nr_lines == 7
    assert events == [
        (3, {"op": "alloc_pages", "order": 1, "gfp": 0xCC0, "handle": 1}),
        (6, {"op": "__free_pages", "order": 1, "handle": 1}),
        (7, {"op": "mark", "label": "end"}),
    ]


def test_last_line_without_newline_is_fine() -> None:
    path = write([HEADER, '{"op":"mark","label":"x"}'], final_newline=False)
    assert read_all(path) == [(2, {"op": "mark", "label": "x"})]


def test_crlf_and_bom() -> None:
    Path("t.jsonl").write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b'\r\n{"op":"mark","label":"x"}\r\n')
    assert read_all("t.jsonl") == [(2, {"op": "mark", "label": "x"})]


def test_header_only() -> None:
    assert read_all(write([HEADER])) == []
    assert peek_header(write([HEADER])) == {"op": "header", "version": 1, "machine": "small"}


def test_iterates_once() -> None:
    with TraceReader(write([HEADER])) as reader:
        list(reader)
        with pytest.raises(RuntimeError, match="iterates once"):
            iter(reader)


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_compressed(suffix: str) -> None:
    data = (HEADER + '\n{"op":"mark","label":"z"}\n').encode()
    opener = gzip.open if suffix == ".gz" else lzma.open
    with opener("t.jsonl" + suffix, "wb") as f:
        f.write(data)
    assert read_all("t.jsonl" + suffix) == [(2, {"op": "mark", "label": "z"})]
    # detection is by magic bytes, not by name
    Path("t.jsonl" + suffix).rename("renamed.jsonl")
    assert read_all("renamed.jsonl") == [(2, {"op": "mark", "label": "z"})]


def test_truncated_gzip_stream() -> None:
    lines = [HEADER] + [f'{{"op":"mark","label":"{i}"}}' for i in range(2000)]
    blob = gzip.compress(("\n".join(lines) + "\n").encode())
    Path("t.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(BadInput) as info:
        read_all("t.jsonl.gz")
    assert str(info.value).startswith("t.jsonl.gz: compressed stream is truncated or corrupt after line ")


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO((HEADER + '\n{"op":"mark","label":"s"}\n').encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert read_all("-") == [(2, {"op": "mark", "label": "s"})]


# ---------------------------------------------------------------- bad lines: exact messages
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"op":"alloc_page","order":0,"gfp":"GFP_KERNEL"}',
            "t.jsonl:2: op: unknown op 'alloc_page' (did you mean 'alloc_pages'?)",
        ),
        ('{"op":"frobnicate"}', f"t.jsonl:2: op: unknown op 'frobnicate'; format version 1 has: {ALL_OPS}"),
        ('{"order":1}', 't.jsonl:2: op: missing "op": every line is a JSON object tagged by "op"'),
        (HEADER, "t.jsonl:2: op: a header is only allowed on the first line"),
        (
            '{"op":"alloc_pages","order":"3","gfp":"GFP_KERNEL"}',
            't.jsonl:2: alloc_pages.order: Input should be a valid integer, got "3"',
        ),
        (
            '{"op":"alloc_pages","order":true,"gfp":"GFP_KERNEL"}',
            "t.jsonl:2: alloc_pages.order: Input should be a valid integer, got true",
        ),
        (
            '{"op":"alloc_pages","order":11,"gfp":"GFP_KERNEL"}',
            "t.jsonl:2: alloc_pages.order: Input should be less than or equal to 10, got 11",
        ),
        (
            '{"op":"alloc_pages","order":1e30,"gfp":"GFP_KERNEL"}',
            "t.jsonl:2: alloc_pages.order: Input should be a valid integer, got 1e+30",
        ),
        (
            '{"op":"alloc_pages","order":1000000000000000000000000000000,"gfp":0}',
            "t.jsonl:2: alloc_pages.order: Input should be less than or equal to 10, "
            "got 1000000000000000000000000000000",
        ),
        (  # 10**50: the echo of the input is cut at 40 characters
            '{"op":"alloc_pages","order":1' + "0" * 50 + ',"gfp":0}',
            "t.jsonl:2: alloc_pages.order: Input should be less than or equal to 10, got 1"
            + "0" * 36
            + "...",
        ),
        (
            '{"op":"put_page","pfn":18446744073709551617}',
            "t.jsonl:2: put_page.pfn: Input should be less than 1099511627776, got 18446744073709551617",
        ),
        (
            '{"op":"put_page","pfn":-1}',
            "t.jsonl:2: put_page.pfn: Input should be greater than or equal to 0, got -1",
        ),
        ('{"op":"__free_pages","handle":1}', "t.jsonl:2: __free_pages.order: required field is missing"),
        (
            '{"op":"alloc_pages"}',
            "t.jsonl:2: alloc_pages.order: required field is missing "
            "(also alloc_pages.gfp: required field is missing)",
        ),
        (
            '{"op":"__free_pages","handle":1,"pfn":2,"order":0}',
            "t.jsonl:2: __free_pages: give exactly one of 'handle' or 'pfn', not both",
        ),
        ('{"op":"get_page"}', "t.jsonl:2: get_page: the page is missing: give 'handle' or 'pfn'"),
        (
            '{"op":"alloc_pages","order":0,"gfp":"GFP_KERNL"}',
            "t.jsonl:2: alloc_pages.gfp: unknown gfp flag 'GFP_KERNL' (did you mean 'GFP_KERNEL'?)",
        ),
        ('{"op":"mark","label":"x","color":"red"}', "t.jsonl:2: mark.color: unknown field; mark has: label"),
        (
            '{"op":"memblock_free_all","x":1}',
            "t.jsonl:2: memblock_free_all.x: unknown field; memblock_free_all has no other fields",
        ),
        (
            '{"op":"check","zone":"normal","nr_free":1}',
            "t.jsonl:2: check.zone: Input should be 'DMA', 'DMA32', 'Normal' or 'Movable', got \"normal\"",
        ),
        (
            '{"op":"check","free_per_order":[1,-2]}',
            "t.jsonl:2: check.free_per_order.1: Input should be greater than or equal to 0, got -2",
        ),
        (
            '{"op":"get_page","handle":1.5}',
            "t.jsonl:2: get_page.handle: handle must be an integer 0..2^63-1 or a string of 1 to 128 "
            "characters, got 1.5",
        ),
        ("hello", "t.jsonl:2: invalid JSON: expected value at column 1"),
        ('{"op":"mark","label":"x"} extra', "t.jsonl:2: invalid JSON: trailing characters at column 27"),
        ('{"op":"mark",}', "t.jsonl:2: invalid JSON: trailing comma at column 14"),
        ("[1, 2]", "t.jsonl:2: expected a JSON object, got [1, 2]"),
    ],
)
def test_bad_line_messages(line: str, message: str) -> None:
    assert first_error([HEADER, line, '{"op":"mark","label":"after"}']) == message


def test_truncated_final_line() -> None:
    lines = [HEADER, '{"op":"mark","label":"a"}', '{"op":"mark","label":"b"']
    assert first_error(lines, final_newline=False) == (
        "t.jsonl:3: truncated final line (no newline at end of file): "
        "invalid JSON: EOF while parsing an object at column 24"
    )


def test_error_goes_through_cli_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    write([HEADER, '{"op":"alloc_pages","order":11,"gfp":0}'])
    assert main(["check-trace", "t.jsonl"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "buddysim check-trace: error: t.jsonl:2: alloc_pages.order: "
        "Input should be less than or equal to 10, got 11\n"
    )


# ---------------------------------------------------------------- header errors
@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], f"t.jsonl: empty trace; the first line must be {FIRST_LINE}"),
        (
            ["", "  "],
            f"t.jsonl: no header: the trace has only blank lines; the first line must be {FIRST_LINE}",
        ),
        (
            ['{"op":"alloc_pages","order":0,"gfp":0}'],
            f"t.jsonl:1: missing header: the first line must be {FIRST_LINE}, got op 'alloc_pages'",
        ),
        (["[1]"], f"t.jsonl:1: missing header: the first line must be {FIRST_LINE}, got [1]"),
        (
            ['{"op":"header","version":2,"machine":"small"}'],
            "t.jsonl:1: header.version: unsupported trace format version 2 (written by a newer buddysim?); "
            "this buddysim reads version 1",
        ),
        (
            ['{"op":"header","version":0,"machine":"small"}'],
            "t.jsonl:1: header.version: unsupported trace format version 0; this buddysim reads version 1",
        ),
        (
            ['{"op":"header","version":"1","machine":"small"}'],
            't.jsonl:1: header.version: must be an integer format version (1), got "1"',
        ),
        (['{"op":"header","machine":"small"}'], "t.jsonl:1: header.version: required field is missing"),
        (['{"op":"header","version":1}'], "t.jsonl:1: header.machine: required field is missing"),
        (
            ['{"op":"header","version":1,"machine":"small","colour":1}'],
            "t.jsonl:1: header.colour: unknown field; header has: version, machine, refcount, sites, seed, "
            "source, meta",
        ),
        (
            ['{"op":"header","version":1,"machine":7}'],
            "t.jsonl:1: header.machine: machine must be a preset name or an inline machine config object, got 7",
        ),
        (
            ["", '{"op":"header","version":1,"machine":"small","seed":1.5}'],
            "t.jsonl:2: header.seed: Input should be a valid integer, got 1.5",
        ),
    ],
)
def test_header_errors(lines: list[str], message: str) -> None:
    path = write(lines, final_newline=bool(lines))
    with pytest.raises(BadInput) as info:
        TraceReader(path)
    assert str(info.value) == message


def test_header_invalid_json() -> None:
    with pytest.raises(BadInput) as info:
        peek_header(write(['{"op":"header",']))
    assert str(info.value).startswith("t.jsonl:1: invalid JSON (")
    assert str(info.value).endswith(f"the first line must be the header {FIRST_LINE}")


def test_missing_file() -> None:
    with pytest.raises(BadInput) as info:
        TraceReader("nope.jsonl")
    assert str(info.value) == "nope.jsonl: cannot open trace: No such file or directory"


def test_header_errors_are_fatal_even_when_lenient() -> None:
    with pytest.raises(BadInput):
        TraceReader(write(['{"op":"header","version":9,"machine":"x"}']), continue_on_error=True)


# ---------------------------------------------------------------- lenient mode
def test_continue_on_error_counts_and_caps() -> None:
    lines = [HEADER]
    for i in range(10):
        lines.append(f'{{"op":"mark","label":"ok{i}"}}')
        lines.append('{"op":"mark"}')
    path = write(lines)
    with TraceReader(path, continue_on_error=True, max_errors=3) as reader:
        events = list(reader)
    assert [n for n, _ in events] == list(range(2, 22, 2))
    assert reader.nr_bad_lines == 10
    assert [e.render() for e in reader.errors] == [
        "t.jsonl:3: mark.label: required field is missing",
        "t.jsonl:5: mark.label: required field is missing",
        "t.jsonl:7: mark.label: required field is missing",
    ]
    assert reader.errors[0].as_dict() == {
        "line": 3,
        "field": "mark.label",
        "message": "required field is missing",
        "kind": "missing",
    }


def test_continue_on_error_truncated_tail() -> None:
    path = write([HEADER, "{", '{"op":"mark","label":"x"}', '{"op":"ma'], final_newline=False)
    with TraceReader(path, continue_on_error=True) as reader:
        assert list(reader) == [(3, {"op": "mark", "label": "x"})]
    assert [e.kind for e in reader.errors] == ["json_invalid", "truncated_line"]
    assert reader.nr_lines == 4


# ---------------------------------------------------------------- recorder
EVENTS: list[dict[str, Any]] = [
    {"op": "memblock_add", "base": 0, "size": 1 << 32, "nid": 0},
    {"op": "memblock_reserve", "base": 0, "size": 1 << 20},
    {"op": "memblock_phys_free", "base": 1 << 24, "size": 1 << 16},
    {"op": "memblock_phys_alloc_range", "size": 1 << 16, "align": 4096, "base": 1 << 23},
    {"op": "memblock_free_all"},
    {"op": "online_pages", "start_pfn": 1 << 20, "nr_pages": 32768, "nid": 0},
    {"op": "alloc_pages", "order": 3, "gfp": 0x40CC0, "cpu": 1, "handle": 1},
    {"op": "alloc_pages", "order": 0, "gfp": 0x140CCA, "pfn": None},
    {"op": "alloc_frozen_pages", "order": 2, "gfp": 0x200, "handle": "f"},
    {"op": "get_page", "handle": 1},
    {"op": "page_ref", "fn": "page_ref_add", "handle": 1, "nr": 1024, "ret": 3},
    {"op": "folio_try_get", "pfn": 77, "ret": True},
    {"op": "put_page", "handle": 1},
    {"op": "folio_put", "pfn": 77},
    {"op": "__free_pages", "order": 3, "handle": 1},
    {"op": "free_frozen_pages", "order": 2, "handle": "f", "cpu": 0},
    {"op": "page_frag_alloc", "cache": "cpu0", "size": 1500, "align": 64, "gfp": 0x820, "handle": "x"},
    {"op": "page_frag_free", "handle": "x"},
    {"op": "page_frag_cache_drain", "cache": "cpu0"},
    {"op": "drain_all_pages", "cpu": 1},
    {"op": "check", "zone": "Normal", "free_per_order": [1, 2, 3], "nr_free": 17},
    {"op": "check", "handle": 1, "raw": -2147483648},
    {"op": "mark", "label": "end ✓"},
]


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz", "r.jsonl.xz"])
def test_recorder_round_trip(name: str) -> None:
    header = make_header(
        {"zones": ["Normal"]}, refcount="final", seed=7, source="test", meta={"b": 1, "a": 2}
    )
    assert write_trace(name, header, EVENTS) == len(EVENTS)
    with TraceReader(name) as reader:
        assert reader.header == header
        assert [e for _, e in reader] == EVENTS
    assert [n for n, _ in read_all(name)] == list(range(2, len(EVENTS) + 2))


def test_recorder_exact_bytes_and_key_order() -> None:
    header = make_header("small", seed=1)
    write_trace(
        "r.jsonl",
        header,
        [
            {"handle": 5, "gfp": 0x40CC0, "order": 1, "op": "alloc_pages"},
            {"order": 1, "op": "__free_pages", "handle": 5},
        ],
    )
    assert Path("r.jsonl").read_text() == (
        '{"op":"header","version":1,"machine":"small","sites":null,"seed":1}\n'
        '{"op":"alloc_pages","order":1,"gfp":"GFP_KERNEL|__GFP_COMP","handle":5}\n'
        '{"op":"__free_pages","order":1,"handle":5}\n'
    )


def test_recorder_gz_is_reproducible() -> None:
    header = make_header("small", seed=3)
    write_trace("a.jsonl.gz", header, EVENTS)
    write_trace("b.jsonl.gz", header, EVENTS)
    assert Path("a.jsonl.gz").read_bytes() == Path("b.jsonl.gz").read_bytes()


def test_recorder_refuses_invalid() -> None:
    with TraceRecorder("r.jsonl", make_header("small")) as rec:
        with pytest.raises(ValueError, match=r"refusing to write an invalid __free_pages: __free_pages: "):
            rec.write({"op": "__free_pages", "order": 0, "handle": 1, "pfn": 2})
        rec.write({"op": "mark", "label": "ok"})
        assert rec.nr_events == 1
    with pytest.raises(ValueError, match="not an event op"):
        dumps_event({"op": "nope"})
    with pytest.raises(ValueError, match=r"mark: unknown field\(s\): x"):
        dumps_event({"op": "mark", "label": "a", "x": 1})
    with pytest.raises(ValueError, match="unknown header field"):
        dumps_header({"op": "header", "version": 1, "machine": "m", "extra": 1})


def test_dumps_nested_objects_sorted() -> None:
    line = dumps_header({"op": "header", "version": 1, "machine": {"b": 1, "a": {"d": 1, "c": 2}}})
    assert line == '{"op":"header","version":1,"machine":{"a":{"c":2,"d":1},"b":1}}'


# ---------------------------------------------------------------- check-trace CLI
def test_check_trace_valid(capsys: pytest.CaptureFixture[str]) -> None:
    write_trace("r.jsonl", make_header("small"), EVENTS)
    assert main(["check-trace", "r.jsonl"]) == 0
    out = capsys.readouterr().out
    assert "r.jsonl: format version 1, machine small" in out
    assert "│ alloc_pages " in out and "│      2 │" in out
    assert f"valid: {len(EVENTS) + 1} lines" in out


def test_check_trace_continue_on_error(capsys: pytest.CaptureFixture[str]) -> None:
    write([HEADER, '{"op":"mark"}', '{"op":"mark","label":"a"}', '{"op":"x"}', '{"op":"mark","label":"b"}'])
    assert main(["check-trace", "t.jsonl", "--continue-on-error", "--max-errors", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "buddysim check-trace: error: t.jsonl:2: mark.label: required field is missing\n"
        "buddysim check-trace: ... and 1 more bad line(s)\n"
    )
    assert "invalid: 2 bad line(s) of 5" in captured.out
    assert "│ mark  │      2 │" in captured.out


def test_check_trace_json(capsys: pytest.CaptureFixture[str]) -> None:
    write([HEADER, '{"op":"mark","label":"a"}', '{"op":"mark"}'])
    assert main(["check-trace", "t.jsonl", "--json", "--continue-on-error"]) == 2
    report = json.loads(capsys.readouterr().out)
    del report["seconds"]
    assert report == {
        "schema_version": 1,
        "file": "t.jsonl",
        "valid": False,
        "header": {"op": "header", "version": 1, "machine": "small"},
        "lines": 3,
        "events": 1,
        "ops": {"mark": 1},
        "bad_lines": 1,
        "errors": [
            {"line": 3, "field": "mark.label", "message": "required field is missing", "kind": "missing"}
        ],
    }
    write(['{"op":"header","version":3,"machine":"small"}'])
    assert main(["check-trace", "t.jsonl", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["errors"] == [
        {
            "line": 1,
            "field": "header.version",
            "message": "unsupported trace format version 3 (written by a newer buddysim?); "
            "this buddysim reads version 1",
            "kind": "fatal",
        }
    ]
    assert captured.err.startswith("buddysim check-trace: error: t.jsonl:1: header.version: unsupported")


def test_check_trace_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-trace", "t.jsonl", "--max-errors", "0"]) == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err
    assert main(["check-trace", "missing.jsonl"]) == 2
    assert capsys.readouterr().err == (
        "buddysim check-trace: error: missing.jsonl: cannot open trace: No such file or directory\n"
    )
    write([], final_newline=False)
    assert main(["check-trace", "t.jsonl"]) == 2
    assert "t.jsonl: empty trace" in capsys.readouterr().err


def test_check_trace_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("buddysim")
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    write_trace("ok.jsonl.gz", make_header("small"), EVENTS)
    write([HEADER, '{"op":"put_page","handle":1,"pfn":1}'], name="bad.jsonl")
    ok = subprocess.run([script, "check-trace", "ok.jsonl.gz"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "valid:" in ok.stdout
    bad = subprocess.run([script, "check-trace", "bad.jsonl"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr == (
        "buddysim check-trace: error: bad.jsonl:2: put_page: give exactly one of 'handle' or 'pfn', not both\n"
    )
    assert "Traceback" not in bad.stderr
