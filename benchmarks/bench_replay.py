"""Replay throughput and memory, as ratios (not a test).

Generates an order-0..3 churn trace of N events (buddysim gen churn), then measures, each in a
fresh process: (a) parsing only (TraceReader: the floor any replay pays), (a') parsing plus the
engine's dispatch with every op handler a no-op (what the engine itself adds), (b) `buddysim replay`
with the default checks (cheap per-operation checks; the whole-zone sweeps every 100000
events), reporting events/s, the ratio replay/parse, and peak RSS. Run it at two sizes to see
that memory stays flat:

    .venv/bin/python benchmarks/bench_replay.py 1000000 10000000
    .venv/bin/python benchmarks/bench_replay.py --profile 200000   # where the time goes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PARSE = """
import resource, sys, time
from buddysim.trace.reader import TraceReader
t = time.perf_counter(); n = 0
with TraceReader(sys.argv[1]) as r:
    for _ in r:
        n += 1
dt = time.perf_counter() - t
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

DISPATCH = """
import resource, sys, time
from buddysim.engine import Engine
from buddysim.machine import Machine
from buddysim.trace.reader import TraceReader
with TraceReader(sys.argv[1]) as r:
    e = Engine(Machine.simple(1 << 12), r)
    for op in list(e._dispatch):
        e._dispatch[op] = lambda ev: None  # every handler a no-op: reader + engine only
    t = time.perf_counter()
    n = e.run()
    dt = time.perf_counter() - t
print(n, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

REPLAY = """
import io, json, resource, sys, time
from contextlib import redirect_stdout
from buddysim.cli import main
buf = io.StringIO()
t = time.perf_counter()
with redirect_stdout(buf):
    code = main(["replay", sys.argv[1], "--json", "--debug-vm", sys.argv[2], "-q"])
dt = time.perf_counter() - t
d = json.loads(buf.getvalue())
print(d["events"], dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code, d["nr_findings"])
"""


PROFILE = """
import cProfile, io, pstats, sys
from contextlib import redirect_stdout
from buddysim.cli import main
prof = cProfile.Profile()
with redirect_stdout(io.StringIO()):
    prof.runcall(main, ["replay", sys.argv[1], "--json", "-q"])
st = pstats.Stats(prof)
st.sort_stats("tottime").print_stats(25)
st.sort_stats("cumulative").print_stats(r"engine.py.*\\((_alloc_pages|_free_pages|_put|_drain|_apply)\\)|reader.py")
"""


def run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


def generate(n: int, tmp: str) -> tuple[str, float]:
    """The churn trace of ``n`` events and the seconds ``buddysim gen`` took."""
    path = os.path.join(tmp, f"churn-{n}.jsonl")
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "buddysim",
            "gen",
            "churn",
            "--seed",
            "1",
            "--config",
            "x86_64-1g",
            "--events",
            str(n),
            "-o",
            path,
            "-q",
            "--force",
        ],
        check=True,
    )
    return path, time.perf_counter() - t


def bench(n: int, tmp: str) -> dict[str, object]:
    path, gen_s = generate(n, tmp)
    pn, pt, _parse_rss = run(PARSE, path)
    dn, dt, _dispatch_rss = run(DISPATCH, path)
    out = {
        "events": int(pn),
        "trace_mb": round(os.path.getsize(path) / 2**20, 1),
        "gen_s": round(gen_s, 1),
        "parse_per_s": round(int(pn) / float(pt)),
        "dispatch_per_s": round(int(dn) / float(dt)),
    }
    for dv in ("off", "bug"):
        rn, rt, rrss, code, findings = run(REPLAY, path, dv)
        out[f"replay_{dv}_per_s"] = round(int(rn) / float(rt))
        out[f"ratio_replay_{dv}_to_parse"] = round(float(rt) / float(pt), 2)
        out[f"peak_rss_mb_{dv}"] = round(int(rrss) / 1024, 1)
        out[f"exit_{dv}"] = int(code)
        out[f"findings_{dv}"] = int(findings)
    os.unlink(path)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1_000_000], help="events per trace")
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="instead: cProfile one replay of an N-event trace (top 25 by own time, then the "
        "engine's handlers and the reader by cumulative time)",
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.profile:
            trace, _ = generate(a.profile, tmp)
            out = subprocess.run(
                [sys.executable, "-c", PROFILE, trace], capture_output=True, text=True, check=True
            )
            print(out.stdout)
        else:
            for n in a.sizes:
                print(json.dumps(bench(n, tmp)), flush=True)
