"""Boot handoff speed and memory, as ratios (not a test).

For each preset: the time of memblock_free_all (the handoff) against the floor of touching
every page's state once (a plain numpy fill of the same page arrays), and peak memory in
bytes per simulated page (ru_maxrss of a fresh process per preset, so presets do not mix).

    .venv/bin/python benchmarks/bench_boot.py x86_64-4g x86_64-64g x86_64-1t
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def one(preset: str) -> dict[str, float]:
    import numpy as np

    from buddysim.config import load_preset
    from buddysim.machine import Machine

    cfg = load_preset(preset)
    t0 = time.perf_counter()
    mm = Machine.from_config(cfg)
    t1 = time.perf_counter()
    pages = mm.boot()
    t2 = time.perf_counter()
    n = mm.store.end_pfn
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak so far: build + boot
    # the floor: touch every page's state once (refcount, flags, private), as a plain fill
    rc = np.empty(n, dtype=np.int32)
    fl = np.empty(n, dtype=np.uint16)
    pv = np.empty(n, dtype=np.uint8)
    f0 = time.perf_counter()
    rc.fill(0)
    fl.fill(0)
    pv.fill(0)
    f1 = time.perf_counter()
    del rc, fl, pv
    return {
        "preset": preset,
        "pages": n,
        "handed_over": pages,
        "build_s": round(t1 - t0, 3),
        "handoff_s": round(t2 - t1, 3),
        "fill_floor_s": round(f1 - f0, 4),
        "ratio_to_floor": round((t2 - t1) / (f1 - f0), 1),
        "state_bytes_per_page": round(mm.store.bytes_per_page, 3),
        "peak_rss_bytes_per_page": round(rss / n, 2),
        "findings": mm.nr_findings,
    }


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(one(sys.argv[2])))
        sys.exit(0)
    for preset in sys.argv[1:] or ["x86_64-4g", "x86_64-64g"]:
        out = subprocess.run([sys.executable, __file__, "--one", preset], capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr.strip())
