"""The ``churn`` generator: steady allocate/free traffic of small orders on several CPUs.

Kernel behaviour exercised: the order-0..3 fast paths of mm/page_alloc.c, i.e. the per-cpu
page lists (``rmqueue_pcplist`` / ``free_frozen_page_commit``, batch refill and
``free_pcppages_bulk`` when a list passes its high mark), one list per migratetype fed by the gfp
mix (``GFP_HIGHUSER_MOVABLE``, ``GFP_KERNEL``, ``GFP_KERNEL|__GFP_RECLAIMABLE``:
``gfp_migratetype``), buddy split (``expand``) and merge (``__free_one_page``), and every way a
block goes back: ``__free_pages`` (a reference put, then the free), ``put_page`` / ``folio_put``
(whole folio; compound pages when ``__GFP_COMP``), ``get_page`` plus an extra ``put_page`` (a
refcount-2 lifetime: whichever put is last frees), ``alloc_frozen_pages`` +
``free_frozen_pages`` (refcount never leaves 0 / frozen), and ``drain_all_pages`` (all CPUs, or
one CPU's ``drain_local_pages``).

Lifetimes are exponential (mean ``--lifetime`` events); the live set is capped at
``--max-live-pages`` (default: a quarter of the pages the handoff frees), so allocations cannot
fail on the configured machine and the trace does not depend on placement: it runs without a
shadow machine and replays on any machine large enough. ``--events N`` is the number of events
of the churn itself; ``--drain-at-end`` appends the frees of everything still live, a
``drain_all_pages`` and a ``check`` that ``nr_free`` is back to its post-boot value (nothing
leaked).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from buddysim.config import PAGE_SHIFT, Config
from buddysim.errors import BadInput
from buddysim.mm.memblock import memblock_from_config
from buddysim.trace.gen.boot import (
    DEFAULT_CONFIG,
    Body,
    GeneratedTrace,
    Option,
    Session,
    after_handoff,
    all_freed,
    bool_option,
    cpus_option,
    cumulative,
    float_option,
    format_weights,
    int_option,
    int_parser,
    make_trace,
    parse_weights,
    pick,
)

__all__ = ["GFP_CLASSES", "OPTIONS", "churn_body", "generate", "parse_gfp_mix", "parse_orders"]

#: ``--gfp`` classes → the gfp an allocation of that class uses (its migratetype).
GFP_CLASSES: dict[str, str] = {
    "movable": "GFP_HIGHUSER_MOVABLE",
    "unmovable": "GFP_KERNEL",
    "reclaimable": "GFP_KERNEL|__GFP_RECLAIMABLE",
}


def parse_orders(flag: str, value: object, config: Config) -> dict[str, float]:
    """``--orders "0:70,1:10,2:10,3:10"``: order weights, orders 0..the machine's MAX_PAGE_ORDER."""

    def key(k: str) -> str:
        if not k.isdigit() or int(k) > config.max_page_order:
            raise BadInput(f"orders are 0..{config.max_page_order} (MAX_PAGE_ORDER), got {k!r}", field=flag)
        return str(int(k))

    return parse_weights(flag, value, key)


def parse_gfp_mix(flag: str, value: object) -> dict[str, float]:
    """``--gfp "movable:60,unmovable:30,reclaimable:10"``."""

    def key(k: str) -> str:
        if k not in GFP_CLASSES:
            raise BadInput(f"gfp classes are {', '.join(GFP_CLASSES)}; got {k!r}", field=flag)
        return k

    return parse_weights(flag, value, key)


def _max_live(flag: str, value: object, config: Config) -> int:
    if value in (0, "0"):
        mb = memblock_from_config(config)
        pages = sum(
            max(0, (end >> PAGE_SHIFT) - (-(-start >> PAGE_SHIFT)))
            for start, end, _nid in mb.for_each_free_mem_range()
        )
        return max(16, pages // 4)
    return int_parser(16, 1 << 40)(flag, value)


OPTIONS: tuple[Option, ...] = (
    int_option("events", 2000, "events of churn (the end phase comes on top)"),
    Option(
        "orders",
        {"0": 70.0, "1": 10.0, "2": 10.0, "3": 10.0},
        "order mix as ORDER:WEIGHT pairs",
        "str",
        metavar="MIX",
        parse=parse_orders,
        needs_config=True,
        text=format_weights,
    ),
    float_option("lifetime", 100.0, "mean lifetime of an allocation, in events (exponential)", 1.0, 1e9),
    cpus_option(),
    Option(
        "gfp",
        {"movable": 60.0, "unmovable": 30.0, "reclaimable": 10.0},
        "migratetype mix as CLASS:WEIGHT (movable, unmovable, reclaimable)",
        "str",
        metavar="MIX",
        parse=parse_gfp_mix,
        text=format_weights,
    ),
    float_option("comp", 0.5, "fraction of order > 0 allocations made compound (__GFP_COMP)"),
    float_option("extra_ref", 0.05, "fraction of allocations that take a get_page and an extra put_page"),
    float_option("frozen", 0.03, "fraction of allocations made with alloc_frozen_pages"),
    float_option("drain", 0.002, "probability per event of a drain_all_pages"),
    Option(
        "max_live_pages",
        0,
        "cap on live pages (0: a quarter of the pages memblock_free_all hands over)",
        "int",
        parse=_max_live,
        needs_config=True,
    ),
    bool_option("drain_at_end", True, "free everything at the end, drain the pcp lists, check nr_free"),
)


class _Block:
    """One live allocation: how it was made and how it will go back."""

    __slots__ = ("compound", "frozen", "handle", "order", "refs")

    def __init__(self, handle: int, order: int, compound: bool, frozen: bool, refs: int) -> None:
        self.handle = handle
        self.order = order
        self.compound = compound
        self.frozen = frozen
        self.refs = refs


def churn_body(s: Session, o: dict[str, Any], *, label: str = "churn") -> Body:
    """The churn itself (no handoff): ``o`` holds the resolved options of :data:`OPTIONS`."""
    rng = s.rng
    order_keys, order_cum = cumulative(o["orders"])
    gfp_keys, gfp_cum = cumulative(o["gfp"])
    mean_life = o["lifetime"]
    cpus = o["cpus"]
    budget = o["max_live_pages"]
    smallest = min(int(k) for k in order_keys)
    if 1 << smallest > budget:
        raise BadInput(f"no order of --orders fits in {budget} live pages", field="--max-live-pages")
    # (due event, sequence, handle, action): "free" the owner's release, "put" the extra ref
    heap: list[tuple[int, int, int, str]] = []
    live: dict[int, _Block] = {}
    live_pages = 0
    seq = 0
    pending: list[dict[str, Any]] = []  # events owed right after an allocation (get_page)
    next_order = int(pick(rng, order_keys, order_cum))

    def release(handle: int, action: str) -> dict[str, Any]:
        nonlocal live_pages
        b = live[handle]
        cpu = rng.randrange(cpus)
        b.refs -= 1
        if b.refs == 0:
            del live[handle]
            live_pages -= 1 << b.order
        if action == "put":
            return {"op": "put_page", "handle": handle, "cpu": cpu}
        if b.frozen:
            return {"op": "free_frozen_pages", "order": b.order, "handle": handle, "cpu": cpu}
        if b.order and not b.compound:
            return {"op": "__free_pages", "order": b.order, "handle": handle, "cpu": cpu}
        how = rng.random()
        if how < 0.5:
            return {"op": "__free_pages", "order": b.order, "handle": handle, "cpu": cpu}
        if how < 0.75:
            return {"op": "put_page", "handle": handle, "cpu": cpu}
        return {"op": "folio_put", "handle": handle, "cpu": cpu}

    yield {"op": "mark", "label": label}
    for now in range(o["events"]):
        if pending:
            yield pending.pop()
            continue
        if heap and (heap[0][0] <= now or live_pages + (1 << next_order) > budget):
            _due, _seq, handle, action = heapq.heappop(heap)
            yield release(handle, action)
            continue
        if rng.random() < o["drain"]:
            if rng.random() < 0.5:
                yield {"op": "drain_all_pages"}
            else:
                yield {"op": "drain_all_pages", "cpu": rng.randrange(cpus)}
            continue
        order = next_order
        next_order = int(pick(rng, order_keys, order_cum))
        if live_pages + (1 << order) > budget:  # nothing left to free and still too big
            order = smallest
        gfp = GFP_CLASSES[pick(rng, gfp_keys, gfp_cum)]
        compound = order > 0 and rng.random() < o["comp"]
        if compound:
            gfp += "|__GFP_COMP"
        frozen = rng.random() < o["frozen"]
        extra = not frozen and (order == 0 or compound) and rng.random() < o["extra_ref"]
        handle = s.new_handle()
        op = "alloc_frozen_pages" if frozen else "alloc_pages"
        value = yield {"op": op, "order": order, "gfp": gfp, "cpu": rng.randrange(cpus), "handle": handle}
        if value is None:  # only with a shadow: the allocation failed, nothing to free
            continue
        live[handle] = _Block(handle, order, compound, frozen, 2 if extra else 1)
        live_pages += 1 << order
        life = max(1, math.ceil(rng.expovariate(1.0 / mean_life)))
        seq += 1
        heapq.heappush(heap, (now + life, seq, handle, "free"))
        if extra:
            pending.append({"op": "get_page", "handle": handle})
            seq += 1
            heapq.heappush(heap, (now + 1 + rng.randrange(2 * life), seq, handle, "put"))
    if o["drain_at_end"]:
        yield {"op": "mark", "label": f"{label}-drain"}
        while pending:
            yield pending.pop()
        while heap:
            _due, _seq, handle, action = heapq.heappop(heap)
            yield release(handle, action)
        yield from all_freed(s, "every allocation freed")


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """A churn trace: the handoff, ``--events`` events of churn, optionally the drain at the end.

    Runs without a shadow machine (fast enough for million-event benchmark traces); the end
    check's ``nr_free`` comes from booting the configured machine once.
    """
    return make_trace("churn", seed, config, OPTIONS, options, after_handoff(churn_body), shadow=False)
