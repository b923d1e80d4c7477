"""The ``page_frag`` generator: network-like fragment traffic on per-CPU page_frag caches.

Kernel behaviour exercised (mm/page_frag_cache.c, Linux 7.2): receive paths carve skb heads and
data out of a per-CPU ``struct page_frag_cache`` (``napi_alloc_frag`` / ``netdev_alloc_frag``
> ``page_frag_alloc[_align]``). A refill (``__page_frag_cache_refill``) takes an order-3
compound page (``__GFP_NORETRY|__GFP_NOMEMALLOC``, no direct reclaim), else order 0 with the
caller's gfp; the cache pre-charges ``PAGE_FRAG_CACHE_MAX_SIZE`` references and hands them out
through ``pagecnt_bias``. Fragments are freed out of order, when the packets are consumed
(``page_frag_free``, the last one frees the page). When a page is exhausted,
``page_ref_sub_and_test(page, bias)`` either finds every fragment back (the page is reused in
place at the ``__page_frag_alloc_align`` call site: ``set_page_count(page, 32769)`` on a page
that was just frozen) or leaves the page to its last fragment. ``page_frag_cache_drain`` gives
the bias back with fragments still alive.

Under memory pressure a socket that serves swap or NBD (``sk_memalloc_socks()``) adds
``__GFP_MEMALLOC``: once the zones are below the watermark that gfp may use, the order-0 refill
succeeds only through ``ALLOC_NO_WATERMARKS`` in ``__alloc_pages_slowpath``, and
``prep_new_page`` marks the page pfmemalloc; the cache records the bit and, when the page is
exhausted with every fragment back, returns it with ``free_frozen_pages`` instead of reusing it.
The generator creates that pressure on a shadow machine: page-cache-like
``GFP_HIGHUSER_MOVABLE`` blocks of decreasing order until even order 0 fails at the min
watermark, then ``GFP_ATOMIC`` pages until an atomic allocation fails too (repeated while the
pressure phase runs, since freed fragments give pages back), then fragments with
``GFP_ATOMIC|__GFP_NOWARN|__GFP_MEMALLOC``, then the pressure is released.

Packet sizes: 64-byte ACKs, small datagrams, anything up to a 1500-byte Ethernet frame, 2048-
and 4096-byte skb heads; a share of allocations is aligned to 64 bytes (SMP_CACHE_BYTES, as
``napi_alloc_frag_align`` does). Simplified: a cache named ``cpuN`` is used by whichever CPU the
trace last ran on (the format has no CPU on page_frag ops); no skb or socket accounting.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
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
    float_option,
    int_option,
    int_parser,
    make_trace,
)

__all__ = ["FRAG_GFP", "MEMALLOC_GFP", "OPTIONS", "PACKET_SIZES", "generate", "page_frag_body"]

#: The gfp of a receive-path fragment (``napi_alloc_frag``: GFP_ATOMIC | __GFP_NOWARN).
FRAG_GFP = "GFP_ATOMIC|__GFP_NOWARN"
#: ... and of one on a memalloc socket under pressure.
MEMALLOC_GFP = "GFP_ATOMIC|__GFP_NOWARN|__GFP_MEMALLOC"
#: Memory hogs of the pressure phase: page cache, then other atomic users.
_HOG_GFP = "GFP_HIGHUSER_MOVABLE"
_ATOMIC_GFP = "GFP_ATOMIC|__GFP_NOWARN"

#: (size, or an inclusive (low, high) range drawn uniformly; weight)
PACKET_SIZES: tuple[tuple[int | tuple[int, int], float], ...] = (
    (64, 25),  # TCP ACKs, control packets
    (128, 4),
    (256, 4),
    (576, 4),  # the classic minimum datagram
    ((65, 1499), 10),  # anything in between
    (1280, 3),  # IPv6 minimum MTU
    (1500, 35),  # full Ethernet frames
    (2048, 10),  # skb heads: NET_SKB_PAD + 1500 + skb_shared_info, rounded
    (4096, 5),  # page-sized heads (GRO, jumbo fragments)
)
_SIZE_CUM: list[float] = []
for _size, _w in PACKET_SIZES:
    _SIZE_CUM.append((_SIZE_CUM[-1] if _SIZE_CUM else 0.0) + _w)

OPTIONS: tuple[Option, ...] = (
    int_option("frags", 800, "fragments allocated outside the pressure phase (half before, half after)"),
    Option(
        "caches",
        0,
        "page_frag caches, one per CPU, named cpu0.. (0: one per CPU of the machine)",
        "int",
        parse=lambda flag, v, cfg: cfg.nr_cpus if v in (0, "0") else int_parser(1, 1024)(flag, v),
        needs_config=True,
    ),
    float_option(
        "hold", 24.0, "mean events a fragment is held before page_frag_free (exponential)", 0.0, 1e9
    ),
    float_option("align", 0.3, "fraction of allocations aligned to 64 bytes (page_frag_alloc_align)"),
    float_option("drain", 0.004, "probability per event of a page_frag_cache_drain of one cache"),
    bool_option("pressure", True, "add the memory-pressure phase with __GFP_MEMALLOC (pfmemalloc pages)"),
    int_option("pressure_frags", 250, "fragments allocated during the pressure phase", 0),
)


@dataclass
class _State:
    caches: list[str]
    clock: int = 0
    seq: int = 0
    #: (due, seq, fragment handle)
    queue: list[tuple[int, int, int]] = field(default_factory=list)
    #: caches that exist (an allocation was attempted on them), in first-use order
    used: list[str] = field(default_factory=list)
    #: pressure blocks: (handle, order)
    hog: list[tuple[int, int]] = field(default_factory=list)


def _size(s: Session) -> int:
    x = s.rng.random() * _SIZE_CUM[-1]
    i = 0
    while _SIZE_CUM[i] <= x:
        i += 1
    size = PACKET_SIZES[i][0]
    if isinstance(size, tuple):
        return s.rng.randint(*size)
    return size


def _free_one(st: _State) -> dict[str, Any]:
    _due, _seq, handle = heapq.heappop(st.queue)
    return {"op": "page_frag_free", "handle": handle}


def _squeeze(s: Session, st: _State, gfp: str, order: int) -> Body:
    """Allocate ``order`` blocks with ``gfp`` until one fails (the failed one has no handle)."""
    while True:
        handle = s.new_handle()
        cpu = s.rng.randrange(s.config.nr_cpus)
        value = yield {"op": "alloc_pages", "order": order, "gfp": gfp, "cpu": cpu, "handle": handle}
        if value is None:
            return
        st.hog.append((handle, order))


def _traffic(
    s: Session, o: dict[str, Any], st: _State, n_allocs: int, gfp: str, squeeze_every: int = 0
) -> Body:
    """``n_allocs`` fragment allocations, frees as they fall due, occasional cache drains."""
    rng = s.rng
    made = 0
    while made < n_allocs:
        st.clock += 1
        if st.queue and st.queue[0][0] <= st.clock:
            yield _free_one(st)
            continue
        if st.used and rng.random() < o["drain"]:
            yield {"op": "page_frag_cache_drain", "cache": rng.choice(st.used)}
            continue
        if squeeze_every and made % squeeze_every == 0:
            yield from _squeeze(s, st, _ATOMIC_GFP, 0)
        cache = rng.choice(st.caches)
        if cache not in st.used:
            st.used.append(cache)
        handle = s.new_handle()
        event: dict[str, Any] = {"op": "page_frag_alloc", "cache": cache, "size": _size(s)}
        if rng.random() < o["align"]:
            event["align"] = 64
        event["gfp"] = gfp
        event["handle"] = handle
        value = yield event
        made += 1
        if value is not None:
            st.seq += 1
            hold = math.ceil(rng.expovariate(1.0 / o["hold"])) if o["hold"] > 0 else 0
            heapq.heappush(st.queue, (st.clock + hold, st.seq, handle))


def page_frag_body(s: Session, o: dict[str, Any], *, label: str = "page_frag") -> Body:
    """The fragment traffic (no handoff); ends with every fragment freed and every cache drained."""
    rng = s.rng
    st = _State([f"cpu{i}" for i in range(o["caches"])])
    yield {"op": "mark", "label": label}
    first = o["frags"] // 2
    yield from _traffic(s, o, st, first, FRAG_GFP)
    if o["pressure"] and o["pressure_frags"]:
        yield {"op": "mark", "label": "memory-pressure"}
        for order in range(s.config.pageblock_order, -1, -1):
            yield from _squeeze(s, st, _HOG_GFP, order)
        yield from _squeeze(s, st, _ATOMIC_GFP, 0)
        yield {"op": "mark", "label": "pfmemalloc"}
        yield from _traffic(s, o, st, o["pressure_frags"], MEMALLOC_GFP, squeeze_every=8)
        yield {"op": "mark", "label": "pressure-release"}
        rng.shuffle(st.hog)
        for handle, order in st.hog:
            yield {
                "op": "__free_pages",
                "order": order,
                "handle": handle,
                "cpu": rng.randrange(s.config.nr_cpus),
            }
        st.hog.clear()
    yield from _traffic(s, o, st, o["frags"] - first, FRAG_GFP)
    yield {"op": "mark", "label": f"{label}-drain"}
    while st.queue:
        yield _free_one(st)
    for cache in st.used:
        yield {"op": "page_frag_cache_drain", "cache": cache}
    yield from all_freed(s, "every fragment freed, caches drained")


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """A page_frag trace: the handoff, fragment traffic, the pfmemalloc phase, the drain."""
    return make_trace("page_frag", seed, config, OPTIONS, options, after_handoff(page_frag_body))
