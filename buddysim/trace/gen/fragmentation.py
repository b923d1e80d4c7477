"""The ``fragmentation`` generator: long-lived unmovable allocations scattered among movable ones.

Kernel behaviour exercised: grouping pages by mobility (mm/page_alloc.c). Every pageblock starts
MOVABLE; an unmovable or reclaimable request that finds no page of its own type falls back
(``__rmqueue_claim``: take over a whole pageblock when enough of it is free,
``try_to_claim_block``; otherwise ``__rmqueue_steal``: take just the block it needs out of a
MOVABLE pageblock). On a machine full of page cache there is no free pageblock to claim, so
kernel allocations made while reclaim frees page-cache pages here and there land in those holes,
one or a few per pageblock. When the page cache is later reclaimed, memory is mostly free but the
scattered kernel pages pin their pageblocks: no pageblock-order (THP) block can form, which is
what ``/proc/pagetypeinfo``, ``extfrag_index`` and ``unusable_index`` show.

Phases (marks): ``before`` (per-zone buddyinfo checks of the fresh machine); ``fill`` (page-cache
folios, ``GFP_HIGHUSER_MOVABLE``, orders of ``--orders``, up to ``--fill`` of free memory);
``interleave`` (``--unmovable`` long-lived ``GFP_KERNEL`` or ``GFP_KERNEL|__GFP_RECLAIMABLE``
order-0 allocations, each after ``--turnover`` page-cache pages were reclaimed, with periodic
``drain_all_pages`` so the holes reach the buddy lists, memory refilled after each); ``after``
(all page cache reclaimed, pcp drained, per-zone buddyinfo checks of the fragmented machine);
``probe`` (``--probes`` pageblock-order ``GFP_TRANSHUGE_LIGHT`` attempts, freed again when one
succeeds); with ``--release`` the kernel allocations are freed too and ``nr_free`` is checked.
The generator runs on a shadow of the configured machine, so the fill level and every check are
exact for that machine.
"""

from __future__ import annotations

from typing import Any

from buddysim.config import Config
from buddysim.trace.gen.boot import (
    DEFAULT_CONFIG,
    Body,
    GeneratedTrace,
    Option,
    Session,
    after_handoff,
    all_freed,
    bool_option,
    checks,
    cpus_option,
    cumulative,
    float_option,
    format_weights,
    int_option,
    make_trace,
    pick,
)
from buddysim.trace.gen.churn import parse_orders

__all__ = ["OPTIONS", "fragmentation_body", "generate"]

_MOVABLE_GFP = "GFP_HIGHUSER_MOVABLE"
_THP_GFP = "GFP_TRANSHUGE_LIGHT"

OPTIONS: tuple[Option, ...] = (
    float_option("fill", 0.8, "fraction of the free pages the page cache fills", 0.05, 0.98),
    Option(
        "orders",
        {"0": 60.0, "1": 15.0, "2": 15.0, "3": 10.0},
        "page-cache folio orders as ORDER:WEIGHT pairs",
        "str",
        metavar="MIX",
        parse=parse_orders,
        needs_config=True,
        text=format_weights,
    ),
    int_option("unmovable", 96, "long-lived kernel allocations made while the page cache turns over", 0),
    float_option("reclaimable", 0.25, "fraction of them that are reclaimable (__GFP_RECLAIMABLE)"),
    int_option("turnover", 3, "page-cache folios reclaimed before each kernel allocation", 0, 1 << 20),
    int_option("probes", 4, "pageblock-order GFP_TRANSHUGE_LIGHT attempts on the fragmented machine", 0),
    bool_option("release", True, "free the kernel allocations at the end and check nr_free"),
    cpus_option(),
)


def fragmentation_body(s: Session, o: dict[str, Any]) -> Body:
    """The phases above (no handoff); needs a shadow machine."""
    rng = s.rng
    cpus = o["cpus"]
    keys, cum = cumulative(o["orders"])
    movable: list[tuple[int, int]] = []  # (handle, order)
    pinned: list[int] = []
    used = 0

    def fill(target: int) -> Body:
        nonlocal used
        while used < target:
            order = int(pick(rng, keys, cum))
            gfp = _MOVABLE_GFP + "|__GFP_COMP" if order else _MOVABLE_GFP
            handle = s.new_handle()
            value = yield {
                "op": "alloc_pages",
                "order": order,
                "gfp": gfp,
                "cpu": rng.randrange(cpus),
                "handle": handle,
            }
            if value is None:
                return
            movable.append((handle, order))
            used += 1 << order

    def reclaim(i: int) -> dict[str, Any]:
        nonlocal used
        handle, order = movable.pop(i)
        used -= 1 << order
        op = "folio_put" if order else "put_page"
        return {"op": op, "handle": handle, "cpu": rng.randrange(cpus)}

    yield {"op": "mark", "label": "before"}
    yield from checks(s, per_zone=True, message="before")
    target = int(o["fill"] * s.nr_free())
    yield {"op": "mark", "label": "fill"}
    yield from fill(target)
    yield {"op": "mark", "label": "interleave"}
    for i in range(o["unmovable"]):
        for _ in range(min(o["turnover"], len(movable))):
            yield reclaim(rng.randrange(len(movable)))
        if i % 8 == 7:
            yield {"op": "drain_all_pages"}
        gfp = "GFP_KERNEL|__GFP_RECLAIMABLE" if rng.random() < o["reclaimable"] else "GFP_KERNEL"
        handle = s.new_handle()
        value = yield {
            "op": "alloc_pages",
            "order": 0,
            "gfp": gfp,
            "cpu": rng.randrange(cpus),
            "handle": handle,
        }
        if value is not None:
            pinned.append(handle)
        yield from fill(target)
    while movable:
        yield reclaim(rng.randrange(len(movable)))
    yield {"op": "drain_all_pages"}
    yield {"op": "mark", "label": "after"}
    yield from checks(s, per_zone=True, message="after")
    if o["probes"]:
        yield {"op": "mark", "label": "probe"}
        order = s.config.pageblock_order
        for _ in range(o["probes"]):
            handle = s.new_handle()
            value = yield {
                "op": "alloc_pages",
                "order": order,
                "gfp": _THP_GFP,
                "cpu": rng.randrange(cpus),
                "handle": handle,
            }
            if value is not None:
                yield {"op": "folio_put", "handle": handle, "cpu": rng.randrange(cpus)}
    if o["release"]:
        yield {"op": "mark", "label": "release"}
        rng.shuffle(pinned)
        for handle in pinned:
            yield {"op": "__free_pages", "order": 0, "handle": handle, "cpu": rng.randrange(cpus)}
        yield from all_freed(s, "every allocation freed")


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """A fragmentation trace: page cache, scattered kernel allocations, reclaim, THP probes."""
    return make_trace("fragmentation", seed, config, OPTIONS, options, after_handoff(fragmentation_body))
