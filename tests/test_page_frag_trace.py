"""page_frag_cache through trace events replayed by the Engine, and ``buddysim replay``.

The ops (docs/trace-format.md): ``page_frag_alloc`` (cache, size, optional align, gfp, handle),
``page_frag_free`` (handle) and ``page_frag_cache_drain`` (cache). Traces are written with the
recorder and read back with the validating reader, on the ``tiny`` preset (Normal zone from
pfn 2048, 2 CPUs). Arithmetic as in tests/test_page_frag_cache.py: a refill gives count
1 + 32768 = 32769 and bias 32769, each fragment takes one from the bias, an order-3 page holds
32768 bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from buddysim.cli import main
from buddysim.config import resolve_config
from buddysim.engine import Engine, StepResult
from buddysim.errors import BadInput
from buddysim.findings import Finding
from buddysim.machine import Machine
from buddysim.mm import gfp as G
from buddysim.mm import page_frag_cache as pfc
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import make_header, write_trace

MODELS = ("baseline", "rfc", "v1", "v2", "v3", "final", "inverted")
F = -0x80000000
PAGE = 4096
FROZEN_RAW = {"baseline": 0, "rfc": F, "v1": F, "v2": F, "v3": F, "final": F, "inverted": 0}


# ------------------------------------------------------------------ helpers
def alloc(cache: str, size: int, handle: Any, align: int | None = None, gfp: str = "GFP_ATOMIC") -> dict:
    ev: dict[str, Any] = {"op": "page_frag_alloc", "cache": cache, "size": size, "gfp": gfp, "handle": handle}
    if align is not None:
        ev["align"] = align
    return ev


def free(handle: Any) -> dict:
    return {"op": "page_frag_free", "handle": handle}


def drain(cache: str) -> dict:
    return {"op": "page_frag_cache_drain", "cache": cache}


def write(tmp_path: Path, events: list[dict], name: str = "t.jsonl", **hdr: Any) -> Path:
    path = tmp_path / name
    write_trace(str(path), make_header("tiny", **hdr), events)
    return path


class Replay:
    """An Engine on the tiny preset over a written trace, stepped with observation."""

    def __init__(
        self, path: Path, model: str, sites: str | None = None, debug_vm: str = "off", check_every: int = 0
    ) -> None:
        self.reader = TraceReader(str(path))
        self.mm = Machine.from_config(resolve_config("tiny"), refcount=model, sites=sites, debug_vm=debug_vm)
        self.engine = Engine(self.mm, self.reader, path=str(path), check_every=check_every)
        self.results: list[StepResult] = []
        self.page_frees: list[tuple[int, int]] = []

    def run(self) -> list[StepResult]:
        self.engine._ensure_booted()
        self.n0 = len(self.mm.findings)
        # our own kmem tracer, under the engine's: every mm_page_free, whoever frees
        self.mm.tracer = self._tracer
        try:
            while self.engine.peek() is not None:
                self.results.append(self.engine.step_result(observe=True))
        finally:
            self.reader.close()
        return self.results

    def _tracer(self, name: str, fields: dict[str, int | None]) -> None:
        if name == "mm_page_free":
            self.page_frees.append((fields["pfn"], fields["order"]))  # type: ignore[arg-type]

    def value(self, i: int) -> Any:
        return self.results[i].value

    @property
    def unconverted(self) -> bool:
        """Does the site table leave boot pages at a word this model does not call frozen?"""
        mm = self.mm
        act = mm.sites.action("__free_pages_core")
        raw = mm.refs.frozen_setter_raw() if act.kind == "frozen" else mm.refs.raw_for_count(act.value)
        return not mm.refs.is_frozen_raw(raw)

    def noise(self, f: Finding, heads: Collection[int] = ()) -> bool:
        """What the unconverted tables (rfc, v1, v2, v3) report anyway: unfrozen boot pages and
        compound tails entering free lists, and the same pages found by the refcount sweep."""
        if not self.unconverted:
            return False
        if f.kind == "unfrozen-free-entry":
            return "__alloc_frozen_pages_noprof" in f.chain or f.pfn not in heads
        # the sweeps see free-list pages only, and a frag head freed unfrozen would already
        # have been reported on its way in (unfrozen-free-entry, kept above)
        return f.function == "validate_refcounts" and "is not frozen" in f.message

    def finish(self, heads: Collection[int] = ()) -> list[Finding]:
        """engine.finish() (every validator, page_frag's invariant included), minus the noise."""
        return [f for f in self.engine.finish() if not self.noise(f, heads)]

    def findings(self, heads: Collection[int] = ()) -> list[Finding]:
        """New findings since boot, minus the noise."""
        return [f for f in self.mm.findings[self.n0 :] if not self.noise(f, heads)]


def pfn_of(addr: int) -> int:
    return (addr - pfc.PAGE_OFFSET) >> 12


def off_of(addr: int) -> int:
    return (addr - pfc.PAGE_OFFSET) & 0xFFF


def base(pfn: int) -> int:
    return pfc.PAGE_OFFSET + (pfn << 12)


# ------------------------------------------------------------------ exhausted with fragments alive
@pytest.mark.parametrize("model", MODELS)
def test_trace_exhausted_page_lives_until_its_last_fragment_free(tmp_path, model):
    ev = [alloc("rx", PAGE, i) for i in range(9)]
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    ev += [free(i) for i in order]
    r = Replay(write(tmp_path, ev), model, check_every=1)
    res = r.run()
    a = pfn_of(r.value(0))
    # 8 x 4096 fill the order-3 page: offsets 0, 4096, ..., 28672 (in-page offset 0 each time)
    assert [r.value(i) for i in range(8)] == [base(a) + i * PAGE for i in range(8)]
    # the 9th starts a new page (32769 - 32761 = 8 references left on A)
    b = pfn_of(r.value(8))
    assert b != a and off_of(r.value(8)) == 0
    assert all(x.freed == () for x in res[:-1])
    # page_frag_free returns whether it freed; only the last one, 1 -> 0, does
    assert [x.value for x in res[9:]] == [False] * 7 + [True]
    assert res[-1].freed == ((a, 3),)
    assert r.mm.refs.atomic_read(a) == FROZEN_RAW[model]
    assert r.finish() == []
    assert r.findings({a, b}) == []


@pytest.mark.parametrize("sites", [None, "frag-unfreeze"])
@pytest.mark.parametrize("model", MODELS)
def test_trace_reuse_in_place(tmp_path, model, sites):
    ev = [alloc("rx", PAGE, i) for i in range(8)] + [free(i) for i in (6, 1, 4, 0, 7, 2, 5, 3)]
    ev += [alloc("rx", 100, "again"), alloc("rx", 100, "next")]
    r = Replay(write(tmp_path, ev), model, sites=sites, check_every=1)
    res = r.run()
    a = pfn_of(r.value(0))
    # sub_and_test(32761) = 0 -> reuse: same pfn, offset back to 0, then 100
    assert r.value(16) == base(a) and r.value(17) == base(a) + 100
    assert all(x.freed == () for x in res) and r.page_frees == []
    nc = r.engine.caches["rx"]
    # count 32769, bias 32769 - 2 = 32767: two fragments live
    assert r.mm.refs.page_ref_count(a) == 32769 and nc.pagecnt_bias == 32767
    assert r.finish() == []
    assert r.findings({a}) == []


# ------------------------------------------------------------------ pfmemalloc
@pytest.mark.parametrize("model", MODELS)
def test_trace_pfmemalloc_page_under_memory_pressure(tmp_path, model):
    """GFP_ATOMIC page allocations drain tiny to its reserves; the frag cache then gets an
    order-0 page with __GFP_MEMALLOC (ALLOC_NO_WATERMARKS): pfmemalloc, not reused in place."""
    ev = [{"op": "alloc_pages", "order": 0, "gfp": "GFP_ATOMIC", "handle": f"p{i}"} for i in range(3000)]
    mem = "GFP_ATOMIC|__GFP_MEMALLOC"
    ev += [alloc("nfs", 2048, "a", gfp=mem), alloc("nfs", 2048, "b", gfp=mem), free("b"), free("a")]
    ev += [alloc("nfs", 2048, "c", gfp=mem)]
    r = Replay(write(tmp_path, ev), model)
    res = r.run()
    assert res[2999].value is None  # the machine ran out for GFP_ATOMIC
    p = pfn_of(r.value(3000))
    # 0 + 2048 and 2048 + 2048 = 4096 fit the order-0 page
    assert off_of(r.value(3000)) == 0 and r.value(3001) == base(p) + 2048
    # the 3rd: 4096 + 2048 > 4096, sub_and_test(32767) = 0, pfmemalloc -> free_frozen_pages(p, 0)
    assert (p, 0) in r.page_frees
    nc = r.engine.caches["nfs"]
    assert pfc.encoded_page_decode_order(nc.encoded_page) == 0
    assert pfc.encoded_page_decode_pfmemalloc(nc.encoded_page)  # still under pressure
    assert nc.pagecnt_bias == 32768 and r.value(3004) == base(pfc.encoded_page_decode_page(nc.encoded_page))
    assert r.finish() == []
    assert r.findings({p}) == []


# ------------------------------------------------------------------ drain
@pytest.mark.parametrize("model", MODELS)
def test_trace_drain_with_live_fragments(tmp_path, model):
    ev = [alloc("rx", 1000, i) for i in range(3)] + [drain("rx"), alloc("rx", 1000, 3)]
    ev += [free(1), free(2), free(0), free(3), drain("rx"), drain("rx")]
    r = Replay(write(tmp_path, ev), model, check_every=1)
    res = r.run()
    a, b = pfn_of(r.value(0)), pfn_of(r.value(4))
    # drain: 32769 - (32769 - 3) = 3 references left, one per fragment; the next alloc refills
    assert a != b
    assert [x.value for x in res[5:9]] == [False, False, True, False]  # free(0) is A's last
    assert res[7].freed == ((a, 3),)
    # free(3) leaves B at 32768 = its bias; the drain frees it (32768 - 32768 = 0)
    assert (b, 3) in r.page_frees
    assert r.engine.caches["rx"].encoded_page == 0  # the second drain is a no-op
    assert r.finish() == []
    assert r.findings({a, b}) == []


def test_trace_drain_of_an_unused_cache_and_free_of_an_unknown_handle_are_anomalies(tmp_path):
    path = write(tmp_path, [drain("never")])
    with pytest.raises(BadInput, match="never used"):
        Replay(path, "final").run()
    path = write(tmp_path, [alloc("rx", 64, "a"), free("a"), free("a")], name="u.jsonl")
    with pytest.raises(BadInput, match="names no live fragment"):
        Replay(path, "final").run()
    # lenient mode counts them instead
    mm = Machine.from_config(resolve_config("tiny"), refcount="final")
    with TraceReader(str(path)) as reader:
        e = Engine(mm, reader, strict=False)
        e.run()
    assert e.nr_anomalies == 1 and e.anomalies[0].op == "page_frag_free"


def test_trace_frees_by_drain_are_observed(tmp_path):
    ev = [alloc("rx", 100, "a"), free("a"), drain("rx")]
    r = Replay(write(tmp_path, ev), "final")
    res = r.run()
    a = pfn_of(r.value(0))
    assert r.page_frees == [(a, 3)]  # the page was freed, by the drain
    assert res[2].freed == ((a, 3),)


# ------------------------------------------------------------------ alignment and sizes
@pytest.mark.parametrize("model", MODELS)
def test_trace_alignment(tmp_path, model):
    ev = [alloc("rx", 10, 0), alloc("rx", 10, 1, 64), alloc("rx", 10, 2, 256), alloc("rx", 10, 3, 4096)]
    ev += [alloc("rx", 10, 4)]
    r = Replay(write(tmp_path, ev), model)
    r.run()
    b = r.value(0)
    # (10 + 63) & ~63 = 64; (74 + 255) & ~255 = 256; (266 + 4095) & ~4095 = 4096; then 4106
    assert [r.value(i) - b for i in range(5)] == [0, 64, 256, 4096, 4106]
    assert r.engine.caches["rx"].pagecnt_bias == 32769 - 5
    assert r.finish() == [] and r.findings() == []


def test_trace_non_power_of_two_align(tmp_path):
    # the trace format refuses it ...
    path = tmp_path / "bad.jsonl"
    write_trace(str(path), make_header("tiny"), [alloc("rx", 10, 0), alloc("rx", 10, 1, 48)], validate=False)
    with pytest.raises(BadInput, match="align"), TraceReader(str(path)) as reader:
        list(reader)
    # ... the engine, fed directly, does what the kernel does: WARN_ON_ONCE and
    # (10 + 47) & ~47 = 57 & ~0b101111 = 0b111001 & 0b010000 = 16
    mm = Machine.from_config(resolve_config("tiny"), refcount="final")
    ev = [alloc("rx", 10, 0), alloc("rx", 10, 1, 48)]
    for e in ev:
        e["gfp"] = G.GFP_ATOMIC
    eng = Engine(mm, enumerate(ev, 2))
    a0 = eng.step_result().value
    r1 = eng.step_result()
    assert r1.value - a0 == 16
    assert [(f.kind, f.function) for f in r1.new_findings] == [("WARN_ON_ONCE", "page_frag_alloc_align")]


@pytest.mark.parametrize("model", MODELS)
def test_trace_fragsz_over_page_size(tmp_path, model):
    ev = [alloc("rx", 8192, i) for i in range(5)] + [alloc("rx", 4096, 5), alloc("tx", 40000, 6)]
    r = Replay(write(tmp_path, ev), model)
    r.run()
    a = pfn_of(r.value(0))
    assert [r.value(i) for i in range(4)] == [base(a) + i * 8192 for i in range(4)]
    # 32768 + 8192 > 32768 and 8192 > PAGE_SIZE: NULL, the cache page kept (no refill)
    assert r.value(4) is None
    # 4096 takes the exhausted path: 32769 - 32765 = 4 left -> a new page
    assert pfn_of(r.value(5)) != a
    assert r.mm.refs.page_ref_count(a) == 4
    # 40000 > 32768 on an empty cache: refilled, then NULL; the page stays cached, unused
    assert r.value(6) is None
    tx = r.engine.caches["tx"]
    c = pfc.encoded_page_decode_page(tx.encoded_page)
    assert tx.pagecnt_bias == 32769 == r.mm.refs.page_ref_count(c)
    assert r.finish() == [] and r.findings() == []


# ------------------------------------------------------------------ network-like workload
def network_trace(seed: int, n: int = 2500) -> list[dict]:
    """Many small fragments on two per-CPU caches, frees out of order, occasional drains."""
    rng = random.Random(seed)
    ev: list[dict] = []
    live: list[int] = []
    h = 0
    sizes = (64, 128, 256, 256, 512, 1500, 1500, 2048, 4096)
    while len(ev) < n:
        r = rng.random()
        if (r < 0.5 or not live) and len(live) < 48:
            align = 64 if rng.random() < 0.25 else None
            ev.append(alloc(f"cpu{rng.randrange(2)}", rng.choice(sizes), h, align))
            live.append(h)
            h += 1
        elif r < 0.99:
            # completions arrive roughly in order, with reordering inside a window of 8
            ev.append(free(live.pop(rng.randrange(min(len(live), 8)))))
        else:
            ev.append(drain(f"cpu{rng.randrange(2)}"))
    rng.shuffle(live)
    ev += [free(x) for x in live]
    ev += [drain("cpu0"), drain("cpu1")]
    return ev


@pytest.mark.parametrize("sites", [None, "frag-unfreeze"])
@pytest.mark.parametrize("model", ["baseline", "final"])
def test_network_like_sequence_has_no_findings(tmp_path, model, sites):
    path = write(tmp_path, network_trace(7), seed=7)
    r = Replay(path, model, sites=sites, check_every=25)
    res = r.run()
    reuses = sum(1 for x in res if x.op == "page_frag_alloc" and x.value is not None and off_of(x.value) == 0)
    assert reuses > 10 and len(r.page_frees) > 5
    assert r.finish() == []
    assert r.mm.nr_findings == 0
    assert r.mm.frag_live == {}  # every page back
    # everything went back: the free page count is the boot count again after a pcp drain
    r.mm.drain()
    boot = Machine.from_config(resolve_config("tiny"), refcount=model)
    boot.boot()
    assert r.mm.nr_free_pages() == boot.nr_free_pages()


@pytest.mark.parametrize("model", [m for m in MODELS if m not in ("baseline", "final")])
def test_network_like_sequence_other_models(tmp_path, model):
    path = write(tmp_path, network_trace(7, 800), seed=7)
    r = Replay(path, model)
    r.run()
    assert r.finish() == []
    assert r.findings({p for p, o in r.page_frees if o == 3}) == []


def test_network_like_sequence_models_agree(tmp_path, capsys):
    """Every observable result (values, blocks freed, findings) is the same under baseline,
    final and inverted."""
    path = write(tmp_path, network_trace(11, 1500), seed=11)
    code = main(["replay", str(path), "--refcount", "baseline,final,inverted", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["divergence"] is None
    assert [m["nr_findings"] for m in data["models"]] == [0, 0, 0]


# ------------------------------------------------------------------ CLI --strict-setters
def reuse_trace() -> list[dict]:
    """Two reuses in place: 8 x 4096, all freed, one more (reuse); the same again."""
    ev = [alloc("rx", PAGE, i) for i in range(8)] + [free(i) for i in range(8)]
    ev += [alloc("rx", PAGE, 100 + i) for i in range(8)] + [free(100 + i) for i in range(8)]
    ev += [alloc("rx", 64, "last")]
    return ev


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_cli_strict_setters_flags_the_frag_reuse_under_the_final_table(tmp_path, capsys, model):
    path = write(tmp_path, reuse_trace())
    code = main(["replay", str(path), "--refcount", model, "--sites", "final", "--strict-setters", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    rows = [r for r in data["findings_by_kind"] if r["kind"] == "strict-setters"]
    # the reuse of alloc 9 (event 17) and of alloc 100+0 (event 33); nothing else under final
    assert [(r["function"], r["count"]) for r in rows] == [("__page_frag_alloc_align", 2)]
    first = rows[0]["first"]
    assert first["event"] == 17 and first["sites"] == "final"
    assert first["check"] == "set_page_count(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
    assert first["raw_before"] == FROZEN_RAW[model] and first["raw_after"] == 32769
    assert first["message"].startswith("raw set_page_count on a frozen page")
    assert data["nr_findings"] == 2


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_cli_strict_setters_silent_under_frag_unfreeze(tmp_path, capsys, model):
    path = write(tmp_path, reuse_trace())
    code = main(
        ["replay", str(path), "--refcount", model, "--sites", "frag-unfreeze", "--strict-setters", "--json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["nr_findings"] == 0 and data["findings_by_kind"] == []


def test_cli_without_strict_setters_the_reuse_is_silent(tmp_path, capsys):
    path = write(tmp_path, reuse_trace())
    code = main(["replay", str(path), "--refcount", "final", "--sites", "final", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["nr_findings"] == 0


def test_cli_record_resolves_fragments_to_pfn_and_offset(tmp_path, capsys):
    path = write(tmp_path, [alloc("rx", 100, "a"), alloc("rx", 100, "b", 64), free("a"), drain("rx")])
    out = tmp_path / "rec.jsonl"
    assert main(["replay", str(path), "--record", str(out), "--json"]) == 0
    capsys.readouterr()
    with TraceReader(str(out)) as reader:
        evs = [e for _line, e in reader]
    allocs = [e for e in evs if e["op"] == "page_frag_alloc"]
    # offsets 0 and (100 + 63) & ~63 = 128, on one page
    assert [e["offset"] for e in allocs] == [0, 128]
    assert allocs[0]["pfn"] == allocs[1]["pfn"] >= 2048  # tiny's Normal zone
    # the recorded trace replays to the same state
    assert main(["replay", str(out), "--json"]) == 0
    capsys.readouterr()
