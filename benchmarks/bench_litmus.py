"""Benchmark of ``buddysim litmus``: three threads of four actions each, explored exhaustively.

The scenario (below) has an owner that removes the page from a mapping, takes and drops an extra
reference and then its own; a speculative reader (get, re-validate, put, get again); and a GUP
user (get with the 1024 bias, re-validate, put, then an allocation that waits for the page to be
free). For every model it reports, with partial-order reduction on and off: states, transitions,
complete schedules in the explored graph, and wall time. The unreduced run's schedule count is
the naive number of interleavings.

Run: ``.venv/bin/python benchmarks/bench_litmus.py [--repeat N] [--refcount M,...]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from buddysim.litmus.explorer import Explorer
from buddysim.litmus.scenario import parse_scenario
from buddysim.litmus.variants import resolve_model

SCENARIO = {
    "title": "bench: three threads of four actions",
    "initial": {"page": "allocated", "type": "X", "count": 1, "mapped": True},
    "thread": [
        {"name": "T0", "refs": 1, "program": ["remove_from_mapping", "get", "put", "put"]},
        {
            "name": "T1",
            "program": ["get", {"action": "revalidate", "on_fail": "put_stop"}, "put", "get"],
        },
        {
            "name": "T2",
            "type": "Y",
            "program": [
                {"action": "get", "nr": 1024},
                {"action": "revalidate", "on_fail": "put_stop"},
                {"action": "put", "nr": 1024},
                "allocate",
            ],
        },
    ],
}

MODELS = "baseline,rfc,v1,v2,v3,final,inverted,atomic_or"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--refcount", default=MODELS, help=f"models (default {MODELS})")
    args = ap.parse_args()
    sc = parse_scenario(SCENARIO, "bench_litmus")
    hdr = (
        f"{'model':10} {'states':>7} {'trans':>7} {'sched':>9} {'time':>9}   "
        f"{'naive st':>8} {'naive tr':>8} {'naive sched':>12} {'time':>9}  violations"
    )
    print(hdr)
    print("-" * len(hdr))
    total = 0.0
    for name in args.refcount.split(","):
        cls = resolve_model(name)
        runs = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = Explorer(sc, cls).explore()
            runs.append(time.perf_counter() - t0)
        nruns = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = Explorer(sc, cls, por=False).explore()
            nruns.append(time.perf_counter() - t0)
        t, nt = statistics.median(runs), statistics.median(nruns)
        total += t
        print(
            f"{name:10} {r.states:7,} {r.transitions:7,} {r.schedules:9,} {t * 1000:7.1f}ms   "
            f"{n.states:8,} {n.transitions:8,} {n.schedules:12,} {nt * 1000:7.1f}ms  "
            f"{','.join(sorted(r.violations)) or '-'}"
        )
    print(f"total (reduced, all models): {total * 1000:.1f} ms")


if __name__ == "__main__":
    main()
