"""Helpers shared by the allocator tests (imported as ``support``; pytest puts tests/ on the path)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from buddysim.machine import Machine
from buddysim.mm.mmzone import ZONE_DMA, ZONE_DMA32
from buddysim.trace.recorder import make_header, write_trace


class Recorder:
    """A tracer: ``Machine(tracer=...)`` calls it with (event name, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def __call__(self, name: str, fields: dict) -> None:
        self.events.append((name, dict(fields)))

    def take(self, *names: str) -> list[tuple[str, dict]]:
        """The events recorded so far (only ``names`` if given), and forget them all."""
        out = [e for e in self.events if not names or e[0] in names]
        self.events.clear()
        return out


def one_zone(nr_pages: int, zone_idx: int, **kw: Any) -> Machine:
    """A booted machine of ``nr_pages`` pages in one zone (``Machine.simple`` options by keyword:
    the hand-worked tests spell out orders, CPUs and min_free_kbytes)."""
    mm = Machine.simple(nr_pages, zones=[(zone_idx, nr_pages)], **kw)
    mm.boot()
    return mm


def one_gib(**kw: Any) -> Machine:
    """A booted 1 GiB machine: DMA [0,4096) with pfn 0 reserved, DMA32 [4096, 262144), managed
    4095 and 258048; watermarks (test_watermarks.py) DMA low 19, DMA32 low 1265; four CPUs."""
    mm = Machine.simple(
        1 << 18, zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 1 << 18)], reserved=[(0, 1)], nr_cpus=4, **kw
    )
    mm.boot()
    return mm


GFPS = (
    "GFP_KERNEL",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_KERNEL|__GFP_RECLAIMABLE",
    "GFP_ATOMIC",
    "GFP_KERNEL|__GFP_COMP",
)


def synthetic_trace(path: Path, n: int = 1500, seed: int = 3) -> None:
    """Allocations and frees by handle on tiny's two CPUs (never more than ~600 pages live)."""
    rng = random.Random(seed)
    events: list[dict] = []
    live: list[tuple[int, int]] = []
    handle = 0
    for _ in range(n):
        if live and (rng.random() < 0.47 or len(live) > 100):
            h, order = live.pop(rng.randrange(len(live)))
            events.append({"op": "__free_pages", "handle": h, "order": order, "cpu": rng.randrange(2)})
        else:
            handle += 1
            order = rng.choice((0, 0, 0, 0, 1, 2, 3, 4))
            events.append(
                {
                    "op": "alloc_pages",
                    "order": order,
                    "gfp": rng.choice(GFPS),
                    "cpu": rng.randrange(2),
                    "handle": handle,
                }
            )
            live.append((handle, order))
    write_trace(str(path), make_header("tiny", source="test synthetic"), events)
