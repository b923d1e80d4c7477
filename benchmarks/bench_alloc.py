"""Benchmark of one alloc+free pair on a 1 GiB machine, per refcount model.

The machine is x86-64-like: DMA [0, 4096) with pfn 0 reserved, DMA32 [4096, 262144), two
CPUs, MAX order 10, pageblock order 9; no tracer, CONFIG_DEBUG_VM off, the frozen-on-entry
check on (the default). Each measurement is a loop of ``alloc_pages`` + ``__free_pages`` of
the same order on cpu 0, after a warm-up; the best of ``--repeat`` runs is reported.

* order 0, pcp: the hot path. In steady state the page comes from the head of the pcp list
  and goes back to it: no zone lock, no buddy work.
* order 3, pcp: order 3 is pcp-able (<= PAGE_ALLOC_COSTLY_ORDER), so the same shape.
* order 3, buddy: the pcp lists set to the boot pageset values (high 0, batch 1), so every
  allocation refills one entry through rmqueue_bulk > __rmqueue > __rmqueue_smallest > expand,
  and every free drains it at once through free_pcppages_bulk > __free_one_page (merging
  back to order 10): the buddy allocator's own cost.
* order 5: not pcp-able: rmqueue_buddy and __free_pages_ok > free_one_page >
  split_large_buddy > __free_one_page.

Each pair is two events (one alloc, one free); events/s = 2 / time per pair. The floor is a
plain ``d[k] = None; del d[k]`` on a Python dict, the cheapest thing a pair could cost in pure
Python. A cProfile of the order-0 and order-3-buddy loops (top 15 by tottime) follows.

Run: ``.venv/bin/python benchmarks/bench_alloc.py [--iterations N] [--repeat R] [--refcount M,...]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable

from buddysim.machine import Machine
from buddysim.mm.gfp import GFP_KERNEL
from buddysim.mm.mmzone import ZONE_DMA, ZONE_DMA32

NR_PAGES = 1 << 18  # 1 GiB of 4 KiB pages


def machine(model: str) -> Machine:
    mm = Machine.simple(
        NR_PAGES,
        zones=[(ZONE_DMA, 4096), (ZONE_DMA32, NR_PAGES)],
        reserved=[(0, 1)],
        nr_cpus=2,
        refcount=model,
    )
    mm.boot()
    return mm


def disable_pcp(mm: Machine) -> None:
    """Boot-pageset values (BOOT_PAGESET_HIGH 0, BOOT_PAGESET_BATCH 1): every pcp free drains."""
    for z in mm.zones:
        for pcp in z.per_cpu_pageset:
            pcp.high_min = pcp.high_max = pcp.high = 0
            pcp.batch = 1


def pair_loop(mm: Machine, order: int) -> Callable[[int], None]:
    alloc = mm.alloc
    free = mm.free

    def run(n: int) -> None:
        for _ in range(n):
            p = alloc(GFP_KERNEL, order, cpu=0)
            free(p, order, cpu=0)

    return run


def dict_loop() -> Callable[[int], None]:
    d: dict[int, None] = {}

    def run(n: int) -> None:
        for k in range(n):
            d[k] = None
            del d[k]

    return run


def best_ns_per_iter(run: Callable[[int], None], n: int, repeat: int) -> float:
    run(min(n, 1000))  # warm-up: fills the pcp lists, settles pcp->high
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        run(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


CASES = (
    ("order 0, pcp", 0, False),
    ("order 3, pcp", 3, False),
    ("order 3, buddy", 3, True),
    ("order 5, buddy (not pcp-able)", 5, False),
)


def check_steady_state(mm: Machine, order: int) -> None:
    """The loop must not leak: the same pages keep coming back."""
    p1 = mm.alloc(GFP_KERNEL, order, cpu=0)
    mm.free(p1, order, cpu=0)
    p2 = mm.alloc(GFP_KERNEL, order, cpu=0)
    mm.free(p2, order, cpu=0)
    assert p1 == p2, (p1, p2)
    assert mm.findings == [], mm.findings[:3]


def profile(run: Callable[[int], None], n: int, title: str) -> None:
    prof = cProfile.Profile()
    prof.enable()
    run(n)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print(f"\ncProfile, {title}, {n} pairs, top 15 by tottime:")
    for ln in lines[start - 1 : start + 16]:
        print("  " + ln.replace("/work/main/", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--iterations", type=int, default=40_000, help="pairs per timed run (order 0; others / 4)"
    )
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (best reported)")
    ap.add_argument("--refcount", default="baseline,final", help="models (default baseline,final)")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()

    print(f"machine: {NR_PAGES} pages (1 GiB), 2 CPUs, MAX order 10, pageblock order 9, debug_vm off")
    print("rounds interleave every case and the dict floor, best of each reported (robust to a busy host)\n")
    cases = []
    for model in args.refcount.split(","):
        for title, order, buddy in CASES:
            mm = machine(model)
            if buddy:
                disable_pcp(mm)
            check_steady_state(mm, order)
            n = args.iterations if order == 0 else max(args.iterations // 4, 1000)
            run = pair_loop(mm, order)
            run(min(n, 1000))  # warm-up: fills the pcp lists, settles pcp->high
            cases.append((model, title, n, run, mm))
    floor_run = dict_loop()
    best = [float("inf")] * len(cases)
    floor = float("inf")
    for _ in range(args.repeat):
        floor = min(floor, best_ns_per_iter(floor_run, 10 * args.iterations, 1))
        for i, (_m, _t, n, run, _mm) in enumerate(cases):
            t0 = time.perf_counter_ns()
            run(n)
            best[i] = min(best[i], (time.perf_counter_ns() - t0) / n)
    print(f"floor: dict insert+delete {floor:.1f} ns\n")
    hdr = f"{'model':9} {'case':31} {'us/pair':>9} {'events/s':>11} {'x floor':>8}"
    print(hdr)
    print("-" * len(hdr))
    for (model, title, _n, _run, mm), ns in zip(cases, best, strict=True):
        assert mm.findings == []
        print(f"{model:9} {title:31} {ns / 1000:9.2f} {2e9 / ns:11,.0f} {ns / floor:8.0f}")
    if not args.no_profile:
        model = args.refcount.split(",")[-1]
        mm = machine(model)
        profile(pair_loop(mm, 0), args.iterations, f"{model}, order 0 through pcp")
        mm = machine(model)
        disable_pcp(mm)
        pair_loop(mm, 3)(1000)
        profile(pair_loop(mm, 3), max(args.iterations // 4, 1000), f"{model}, order 3 through the buddy")


if __name__ == "__main__":
    main()
