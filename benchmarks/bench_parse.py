"""Parse throughput of the trace reader: the floor under ``buddysim replay``.

Generates a synthetic alloc/free churn trace (orders 0..3, handles, seeded) into a temporary
file, then reports lines per second of:

* ``read lines``: iterating the file's lines and nothing else (the I/O floor);
* ``json.loads``: stdlib ``json.loads`` per line (and ``orjson.loads`` when it happens to be
  installed; buddysim does not depend on it);
* ``validate_json``: ``EVENT_ADAPTER.validate_json`` per line in a bare loop (pydantic's floor);
* ``TraceReader``: the real reader (header, validation, line numbers, error handling), which is
  what ``buddysim replay`` and ``buddysim check-trace`` pay per event.

This is a benchmark script, not a test::

    .venv/bin/python benchmarks/bench_parse.py                # 1M events
    .venv/bin/python benchmarks/bench_parse.py --events 200000 --repeat 5 --keep churn.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from buddysim.trace.events import EVENT_ADAPTER
from buddysim.trace.reader import TraceReader
from buddysim.trace.recorder import TraceRecorder, make_header

GFPS = ("GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_COMP", "GFP_ATOMIC")


def generate(path: Path, events: int, seed: int) -> None:
    """Churn: allocate (orders 0..3, weights 8:4:2:1) while below a target population, else free."""
    rng = random.Random(seed)
    live: list[tuple[int, int]] = []
    next_handle = 0
    header = make_header("small", refcount="baseline", seed=seed, source=f"bench_parse churn {events}")
    with TraceRecorder(path, header, validate=False) as rec:
        for _ in range(events):
            if live and (len(live) >= 4096 or rng.random() < 0.5):
                i = rng.randrange(len(live))
                live[i], live[-1] = live[-1], live[i]
                handle, order = live.pop()
                rec.write({"op": "__free_pages", "order": order, "handle": handle})
            else:
                order = rng.choices((0, 1, 2, 3), weights=(8, 4, 2, 1))[0]
                gfp = GFPS[rng.randrange(len(GFPS))]
                rec.write(
                    {
                        "op": "alloc_pages",
                        "order": order,
                        "gfp": gfp,
                        "cpu": rng.randrange(4),
                        "handle": next_handle,
                    }
                )
                live.append((next_handle, order))
                next_handle += 1


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def bench_read_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for _ in f:
            n += 1
    return n


def bench_loads(loads: Callable[[bytes], object]) -> Callable[[Path], int]:
    def run(path: Path) -> int:
        n = 0
        with open(path, "rb") as f:
            for line in f:
                loads(line)
                n += 1
        return n

    return run


def bench_validate_json(path: Path) -> int:
    validate = EVENT_ADAPTER.validate_json
    n = 0
    with open(path, "rb") as f:
        next(f)  # header
        for line in f:
            validate(line)
            n += 1
    return n + 1


def bench_reader(path: Path) -> int:
    n = 0
    with TraceReader(path) as reader:
        for _ in reader:
            n += 1
    return n + 1


def measure(fn: Callable[[Path], int], path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    lines = 0
    for _ in range(repeat):
        t = time.perf_counter()
        lines = fn(path)
        best = min(best, time.perf_counter() - t)
    return best, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--keep", type=Path, help="write the trace here and keep it")
    args = parser.parse_args(argv)

    tmpdir = None
    if args.keep:
        path = args.keep
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="buddysim-bench-")
        path = Path(tmpdir.name) / "churn.jsonl"
    t = time.perf_counter()
    generate(path, args.events, args.seed)
    gen_s = time.perf_counter() - t
    size = os.path.getsize(path)
    print(
        f"trace: {path} ({_lines(path):,} lines, {size / 2**20:.1f} MiB, generated in {gen_s:.1f} s)\n"
        f"python {sys.version.split()[0]}, best of {args.repeat}"
    )

    cases: list[tuple[str, Callable[[Path], int]]] = [
        ("read lines (I/O floor)", bench_read_lines),
        ("json.loads per line", bench_loads(json.loads)),
    ]
    try:
        import orjson  # type: ignore[import-not-found]

        cases.append(("orjson.loads per line", bench_loads(orjson.loads)))
    except ImportError:
        print("orjson: not installed (optional; buddysim does not depend on it)")
    cases += [
        ("validate_json per line", bench_validate_json),
        ("TraceReader (validated events)", bench_reader),
    ]
    results: dict[str, float] = {}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for label, fn in cases:
        seconds, lines = measure(fn, path, args.repeat)
        results[label] = lines / seconds
        print(f"  {label:<32} {lines / seconds:>12,.0f} lines/s   {seconds:7.3f} s")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reader = results["TraceReader (validated events)"]
    print(
        f"TraceReader / json.loads speed: {reader / results['json.loads per line']:.2f}x; "
        f"TraceReader / bare validate_json: {reader / results['validate_json per line']:.2f}x"
    )
    print(
        f"peak RSS growth while reading: {(rss_after - rss_before) / 1024:.1f} MiB (streaming: should be ~0)"
    )
    if tmpdir is not None:
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
