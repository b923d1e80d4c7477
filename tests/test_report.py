"""`buddysim report`: the self-contained HTML report and its data files.

* the report builds for a churn trace and a boot trace; the HTML is well formed (stdlib
  html.parser plus strict checks: balanced tags, every SVG element closed, unique ids), has its
  sections and not a single URL;
* the data files agree with an independent replay of the same trace through the Engine at
  every sampled event (and the CSV with the JSON); the adaptive sampling keeps memory flat;
* a golden test on a tiny trace: report.json byte for byte, the HTML with timing normalised
  (``BUDDYSIM_REGEN_GOLDEN=1 python -m pytest tests/test_report.py`` after an intended change);
* several models side by side with the first divergence marked; exit codes (0/1/2), the -o
  refusal without --force, a bad trace reported as file:line.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from buddysim.cli import main
from buddysim.config import resolve_config
from buddysim.engine import EndOfTrace, Engine
from buddysim.machine import Machine
from buddysim.mm.mmzone import migratetype_names
from buddysim.report import svg as S
from buddysim.report.pageblock_map import zone_pageblock_map
from buddysim.report.series import Sampler
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import make_header, write_trace

GOLDEN = Path(__file__).resolve().parent / "golden" / "report"
REGEN = os.environ.get("BUDDYSIM_REGEN_GOLDEN") == "1"

GFPS = ("GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_RECLAIMABLE")


def _trace(path: Path, events: list[dict], machine: str = "tiny", **hdr) -> Path:
    write_trace(str(path), make_header(machine, **hdr), events)
    return path


def _churn(n: int, seed: int = 1, max_live: int = 300, marks: int = 2) -> list[dict]:
    """Allocate/free traffic of orders 0-3 over the three migratetypes on both CPUs."""
    rng = random.Random(seed)
    live: list[tuple[int, int]] = []
    ev: list[dict] = []
    h = 0
    for i in range(n):
        if marks and i and i % (n // (marks + 1)) == 0:
            ev.append({"op": "mark", "label": f"phase{len(ev)}"})
        elif live and (len(live) >= max_live or rng.random() < 0.48):
            hh, o = live.pop(rng.randrange(len(live)))
            ev.append({"op": "__free_pages", "order": o, "handle": hh, "cpu": rng.randrange(2)})
        elif rng.random() < 0.01:
            ev.append({"op": "drain_all_pages"})
        else:
            h += 1
            o = rng.choice((0, 0, 0, 1, 2, 3))
            live.append((h, o))
            ev.append(
                {
                    "op": "alloc_pages",
                    "order": o,
                    "gfp": rng.choice(GFPS),
                    "handle": h,
                    "cpu": rng.randrange(2),
                }
            )
    return ev


# ---------------------------------------------------------------------------- strict HTML checks

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _StrictHTML(HTMLParser):
    """Balanced tags (void elements excepted), every SVG element closed, unique ids, links kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, tuple[int, int]]] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.svg_depth = 0
        self.tags: dict[str, int] = {}
        self.doctype = False

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k, v in attrs:
            if k == "id" and v is not None:
                self.ids.append(v)
            if k in ("href", "src", "xlink:href", "action", "srcset", "poster") and v is not None:
                self.links.append((k, v))

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag in _VOID and self.svg_depth == 0:
            return
        if tag == "svg":
            self.svg_depth += 1
        self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if self.svg_depth == 0 and tag not in _VOID:
            self.errors.append(f"self-closing non-void HTML element <{tag}/> at {self.getpos()}")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID and self.svg_depth == 0:
            self.errors.append(f"end tag of void element </{tag}> at {self.getpos()}")
            return
        if not self.stack:
            self.errors.append(f"</{tag}> with nothing open at {self.getpos()}")
            return
        top, pos = self.stack.pop()
        if top != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} closes <{top}> opened at {pos}")
        if tag == "svg":
            self.svg_depth -= 1

    def close(self) -> None:
        super().close()
        if self.stack:
            self.errors.append(f"unclosed: {[t for t, _ in self.stack][-5:]}")


def check_html(text: str) -> _StrictHTML:
    p = _StrictHTML()
    p.feed(text)
    p.close()
    assert p.doctype, "no <!DOCTYPE html>"
    assert not p.errors, p.errors[:5]
    dup = {i for i in p.ids if p.ids.count(i) > 1}
    assert not dup, f"duplicate ids {sorted(dup)[:5]}"
    # self-contained: no URL of any kind
    assert "http" not in text.lower()
    assert "@import" not in text and "url(" not in text
    assert not p.tags.get("script") and not p.tags.get("link") and not p.tags.get("img")
    for attr, value in p.links:
        assert "//" not in value and ":" not in value, (attr, value)
        assert value.startswith("#") and value[1:] in p.ids, f"dangling link {value}"
    return p


ZONE_BLOCKS = ("free-per-order", "migratetype", "fragmentation", "unusable-heat", "pcp", "managed")


def _report(tmp_path: Path, trace: Path, *extra: str, name: str = "report.html") -> tuple[int, str, dict]:
    out = tmp_path / name
    code = main(["report", str(trace), "-o", str(out), "-q", *extra])
    data_dir = Path(str(out).removesuffix(".html") + "-data")
    for i, a in enumerate(extra):
        if a == "--data-dir":
            data_dir = Path(extra[i + 1])
    return code, out.read_text(encoding="utf-8"), json.loads((data_dir / "report.json").read_text())


# ---------------------------------------------------------------------------- building


def test_report_churn_trace_builds_well_formed_and_self_contained(tmp_path):
    t = _trace(tmp_path / "churn.jsonl", _churn(1500), seed=7)
    code, html, data = _report(tmp_path, t)
    assert code == 0 and data["verdict"] == "clean"
    p = check_html(html)
    for sid in ("summary", "contents", "pageblocks", "findings", "data"):
        assert sid in p.ids
    for z in ("DMA", "DMA32", "Normal"):
        assert f"zone-0-{z}" in p.ids
        for block in ZONE_BLOCKS:
            assert f"zone-0-{z}-{block}" in p.ids
    assert "divergence" not in p.ids  # one model
    assert "findings-none" in p.ids
    assert p.tags["svg"] >= 3 * len(ZONE_BLOCKS) + 3
    # the end map and one map per mark (two marks after the handoff)
    assert [m["label"] for m in data["runs"][0]["pageblock_maps"]] == ["phase500", "phase1000", "end"]
    assert "phase500 (event 501)" in html
    assert data["index_orders"] == [3, 9]
    zone = data["runs"][0]["zones"][2]
    assert set(zone["unusable_index"]) == {"3", "9"} and set(zone["extfrag_index"]) == {"3", "9"}
    assert os.path.getsize(tmp_path / "report.html") < 600_000


def test_report_boot_trace(tmp_path, capsys):
    boot = tmp_path / "boot.jsonl"
    assert main(["boot", "tiny", "--emit-trace", str(boot), "--json"]) == 0
    booted = json.loads(capsys.readouterr().out)
    code, html, data = _report(tmp_path, boot, "--index-orders", "0,5,10")
    assert code == 0
    p = check_html(html)
    assert "zone-0-Normal-fragmentation" in p.ids
    assert data["index_orders"] == [0, 5, 10]
    run = data["runs"][0]
    assert run["sample_events"] == list(range(data["events"] + 1))  # short: every event
    # the end state is the booted machine's
    assert [z["free_blocks_per_order"] for z in booted["zones"]] == [
        [per[-1] for per in z["free_blocks_per_order"]] for z in run["zones"]
    ]
    end = run["pageblock_maps"][-1]
    assert end["label"] == "end"
    assert sum(z["free_pages"] for z in end["zones"]) == booted["nr_free_pages"]
    # the memmap/percpu reservations are whole reserved pageblocks in Normal
    normal = end["zones"][2]
    assert 1.0 in normal["reserved_fraction"]
    assert S.RESERVED_COLOR in html


# ---------------------------------------------------------------------------- data vs the engine


def _replay_views(trace: Path, indices: set[int]) -> dict[int, object]:
    """Replay independently: the engine's own view at each wanted event index (last after finish)."""
    with TraceReader(str(trace)) as reader:
        mm = Machine.from_config(resolve_config(reader.header["machine"]), refcount="baseline")
        e = Engine(mm, reader, strict=True, path=str(trace))
        views = {0: e.view()} if 0 in indices else {}
        while True:
            try:
                e.step()
            except EndOfTrace:
                break
            if e.index in indices:
                views[e.index] = e.view()
        e.finish()
        views[e.index] = e.view()
    return views


def test_data_files_match_the_engine_at_the_sampled_events(tmp_path):
    t = _trace(tmp_path / "t.jsonl", _churn(900, seed=3))
    code, _html, data = _report(
        tmp_path, t, "--every", "3", "--max-points", "40", "--data-dir", str(tmp_path / "d")
    )
    assert code == 0
    run = data["runs"][0]
    ev = run["sample_events"]
    # adaptive: started at 3, doubled to stay within 40 points; kept the multiples of the interval
    assert run["every"] == 3 * 2 ** run["decimations"] and run["decimations"] >= 2
    assert len(ev) <= 41 and ev[0] == 0 and ev[-1] == data["events"]
    assert all(x % run["every"] == 0 for x in ev[:-1])
    views = _replay_views(t, set(ev))
    for i, x in enumerate(ev):
        v = views[x]
        for zv, z in zip(v.zones, run["zones"], strict=True):
            assert (zv.nid, zv.name) == (z["node"], z["zone"])
            assert [per[i] for per in z["free_blocks_per_order"]] == list(zv.free_per_order), (x, zv.name)
            assert z["nr_free_pages"][i] == zv.nr_free_pages
            assert z["managed"][i] == zv.managed
            assert [c[i] for c in z["pcp_pages_per_cpu"]] == list(zv.pcp_count)
            for mt, name in enumerate(migratetype_names):
                pages = sum(n << o for o, n in enumerate(zv.free_per_mt[mt]))
                assert z["free_pages_per_migratetype"][name][i] == pages
    # the CSV holds the same numbers as the JSON
    with open(tmp_path / "d" / "free_per_order.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    normal = [r for r in rows if r["zone"] == "Normal"]
    z = run["zones"][2]
    assert [int(r["event"]) for r in normal] == ev
    assert [int(r["blocks_o3"]) for r in normal] == z["free_blocks_per_order"][3]
    with open(tmp_path / "d" / "fragmentation.csv", newline="") as f:
        frag = [r for r in csv.DictReader(f) if r["zone"] == "Normal"]
    assert [int(r["unusable_o3"]) for r in frag] == z["unusable_index"]["3"]
    assert [int(r["extfrag_o9"]) for r in frag] == z["extfrag_index"]["9"]
    assert sorted(os.listdir(tmp_path / "d")) == sorted(
        [
            "report.json",
            "free_per_order.csv",
            "free_per_migratetype.csv",
            "fragmentation.csv",
            "pcp.csv",
            "managed_free.csv",
            "findings_over_time.csv",
            "findings.csv",
            "marks.csv",
            "pageblocks.csv",
        ]
    )


def test_fragmentation_indices_are_the_kernels(tmp_path):
    from buddysim.mm.vmstat import fragmentation_index, unusable_free_index

    t = _trace(tmp_path / "t.jsonl", _churn(400, seed=5, marks=0))
    with TraceReader(str(t)) as reader:
        mm = Machine.from_config(resolve_config("tiny"), refcount="baseline")
        e = Engine(mm, reader, strict=True)
        s = Sampler(e, max_points=1000)
        e.run()
        e.finish()
        s.finish()
    from buddysim.report.series import report_data

    data = report_data([s], trace="t", header={}, index_orders=[3, 9])
    for z, zone in zip(data["runs"][0]["zones"], mm.zones, strict=True):
        for o in range(mm.NR_PAGE_ORDERS):
            assert z["unusable_index_per_order"][o][-1] == unusable_free_index(zone, o)
            assert z["extfrag_index_per_order"][o][-1] == fragmentation_index(zone, o)


def _parsed(events: list[dict]) -> list[tuple[int, dict]]:
    """(line, event) as the trace reader hands them over (gfp strings parsed)."""
    from buddysim.mm.gfp import parse_gfp

    return [
        (n, {**ev, "gfp": parse_gfp(ev["gfp"])} if "gfp" in ev else ev)
        for n, ev in enumerate(events, start=2)
    ]


def test_sampler_memory_stays_flat():
    mm = Machine.from_config(resolve_config("tiny"), refcount="baseline")
    e = Engine(mm, _parsed(_churn(5000, seed=2, marks=0)), strict=True)
    s = Sampler(e, max_points=16)
    held = 0
    while True:
        try:
            e.step()
        except EndOfTrace:
            break
        held = max(held, len(s.rows))
    s.finish()
    assert held <= 17 and s.every >= 5000 // 16
    assert s.every & (s.every - 1) == 0  # a power of two times the start interval 1
    assert all(r.event % s.every == 0 for r in s.rows[:-1])


def test_pageblock_map_counts_free_pages_with_numpy():
    mm = Machine.from_config(resolve_config("tiny"), refcount="baseline")
    e = Engine(mm, _parsed(_churn(600, seed=9, marks=0)), strict=True)
    e.run()
    for zone in mm.zones:
        m = zone_pageblock_map(mm, zone)
        assert m["free_pages"] == zone.NR_FREE_PAGES
        assert m["pageblocks"] == len(m["migratetype"])
        # binned: two cells for the zone, the same pages
        b = zone_pageblock_map(mm, zone, max_cells=2)
        assert len(b["migratetype"]) <= 2 and b["free_pages"] == m["free_pages"]
        assert b["pageblocks_per_cell"] * len(b["migratetype"]) >= m["pageblocks"]


# ---------------------------------------------------------------------------- golden


def _normalise(html: str) -> str:
    html = re.sub(r'<span class="timing">[^<]*</span>', '<span class="timing">T</span>', html)
    return re.sub(r"buddysim \d+\.\d+\.\d+\S*:", "buddysim VERSION:", html)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with BUDDYSIM_REGEN_GOLDEN=1 to create it"
    want = path.read_text(encoding="utf-8")
    if want != text:
        diff = "".join(
            list(
                difflib.unified_diff(
                    want.splitlines(True), text.splitlines(True), f"golden/{name}", "got", n=1
                )
            )[:40]
        )
        pytest.fail(f"{name} differs from its golden file (BUDDYSIM_REGEN_GOLDEN=1 to accept):\n{diff}")


def _tiny_events() -> list[dict]:
    ev: list[dict] = [{"op": "mark", "label": "start"}]
    for i in range(12):
        ev.append({"op": "alloc_pages", "order": i % 4, "gfp": GFPS[i % 3], "handle": i, "cpu": i % 2})
    ev.append({"op": "mark", "label": '<allocated> & "held"'})
    for i in range(0, 12, 2):
        ev.append({"op": "__free_pages", "order": i % 4, "handle": i, "cpu": 1})
    ev.append({"op": "drain_all_pages"})
    return ev


def test_golden_tiny_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _trace(tmp_path / "tiny.jsonl", _tiny_events(), seed=1, source="tests/test_report.py")
    assert main(["report", "tiny.jsonl", "-o", "tiny.html", "-q"]) == 0
    html = (tmp_path / "tiny.html").read_text(encoding="utf-8")
    check_html(html)
    # the mark label is text, never markup
    assert "&lt;allocated&gt; &amp; &quot;held&quot;" in html and "<allocated>" not in html
    _check_golden("tiny.report.json", (tmp_path / "tiny-data" / "report.json").read_text(encoding="utf-8"))
    _check_golden("tiny.report.html", _normalise(html))


# ---------------------------------------------------------------------------- several models


def test_several_models_side_by_side_with_the_first_divergence(tmp_path):
    ev = [{"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": i} for i in range(8)]
    ev += [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": "p"},
        {"op": "__free_pages", "order": 0, "handle": "p"},
        {"op": "folio_try_get", "handle": "p"},
        {"op": "page_ref", "fn": "page_ref_inc_return", "handle": "p"},
    ]
    ev += [{"op": "__free_pages", "order": 0, "handle": i} for i in range(8)]
    t = _trace(tmp_path / "div.jsonl", ev)
    code, html, data = _report(tmp_path, t, "--refcount", "baseline,final", "--debug-vm", "off")
    assert code == 1  # baseline: the increment leaves a pcp page with a reference (the end sweep)
    p = check_html(html)
    assert data["models"] == ["baseline", "final"]
    div = data["divergence"]
    assert div is not None and div["event"] == 12 and div["op"] == "page_ref"
    assert div["models"]["baseline"]["value"] == 1 and div["models"]["final"]["value"] == -0x80000000 + 2
    assert "divergence" in p.ids and "At event <b>12</b>" in html
    # every zone block holds one figure per model, each with the divergence line
    block = html.split('id="zone-0-Normal-free-per-order"', 1)[1].split('<div class="block"', 1)[0]
    assert block.count("<figure>") == 2
    assert block.count("<title>first divergence</title>") == 2
    assert [r["verdict"] for r in data["runs"]] == ["findings", "clean"]
    assert 'id="findings-table"' in html and "validate_refcounts" in html


# ---------------------------------------------------------------------------- exit codes


def test_output_refused_without_force(tmp_path, capsys):
    t = _trace(tmp_path / "t.jsonl", _tiny_events())
    out = tmp_path / "r.html"
    out.write_text("keep me")
    assert main(["report", str(t), "-o", str(out), "-q"]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["report", str(t), "-o", str(out), "-q", "--force"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    # the data files are protected too
    out.unlink()
    assert main(["report", str(t), "-o", str(out), "-q"]) == 2
    assert "report.json" in capsys.readouterr().err and not out.exists()


def test_bad_trace_exit_2_with_file_and_line(tmp_path, capsys):
    t = tmp_path / "bad.jsonl"
    lines = [json.dumps(dict(make_header("tiny")))]
    lines.append(json.dumps({"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": 1}))
    lines.append(json.dumps({"op": "alloc_pages", "order": 99, "gfp": "GFP_KERNEL", "handle": 2}))
    t.write_text("\n".join(lines) + "\n")
    assert main(["report", str(t), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"{t}:3" in err and "order" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
    # an event the engine cannot apply (unknown handle): also file:line
    t2 = _trace(tmp_path / "ghost.jsonl", [{"op": "__free_pages", "order": 0, "handle": "ghost"}])
    assert main(["report", str(t2), "-o", str(tmp_path / "r.html")]) == 2
    assert f"{t2}:2" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "r.html")]) == 2
    assert main(["report", str(t2), "-o", str(tmp_path / "r.html"), "--index-orders", "11"]) == 2


def test_findings_exit_1_and_table(tmp_path):
    ev = [
        {"op": "alloc_pages", "order": 0, "gfp": "GFP_KERNEL", "handle": "a"},
        {"op": "__free_pages", "order": 0, "handle": "a"},
        {"op": "__free_pages", "order": 0, "handle": "a"},
    ]
    t = _trace(tmp_path / "t.jsonl", ev)
    code, html, data = _report(tmp_path, t)
    assert code == 1 and data["verdict"] == "findings"
    check_html(html)
    f = data["runs"][0]["findings"][0]
    assert f["event"] == 3 and f["function"] == "put_page_testzero" and f["raw_before"] == 0
    assert data["runs"][0]["finding_events"][0] == [3, 1]
    assert 'class="verdict findings"' in html and f"{f['pfn']:#x}" in html
    assert 'class="finding"' in html  # markers on the time axis


# ---------------------------------------------------------------------------- primitives


def test_svg_primitives_escape_and_scale():
    assert S.esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert S.gradient(0) == "#1a9850" and S.gradient(1) == "#d7191c" and S.gradient(0.5) == "#fd8d3c"
    assert S.nice_ticks(0, 1000, 4) == [0, 500, 1000] and S.nice_ticks(-1, 1, 4) == [-1, -0.5, 0, 0.5, 1]
    assert S.fmt_num(1500) == "1500" and S.fmt_num(15000) == "15k" and S.fmt_num(2_500_000) == "2.5M"
    f = S.Frame(0, 100, 0, 10)
    out = S.line(f, list(range(101)), [5.0] * 101, "#000000", "<flat>")
    assert "&lt;flat&gt;" in out and out.count(",") == 2  # a flat line is two points
