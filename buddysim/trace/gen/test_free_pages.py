"""The ``test-free-pages`` generator: lib/test_free_pages.c, the speculative-reference scenario.

Kernel behaviour exercised: ``__free_pages()`` on a block somebody else still holds a
reference to. lib/test_free_pages.c allocates an order-3 block, takes a reference ("simulate
page cache getting a speculative reference"), calls ``__free_pages(page, 3)`` and then
``put_page(page)``, a million times, first with ``GFP_KERNEL`` and then with
``GFP_KERNEL | __GFP_COMP``. Without ``__GFP_COMP`` the put in ``___free_pages`` is not the last,
so it frees everything but page[0] (``page + 2^o`` for o = order-1 .. 0,
spec/kernel-allocator.md) and page[0] goes when the speculative holder puts it; with
``__GFP_COMP`` the whole folio waits for that put. Without the loop over the tail blocks the
tail pages would leak: the module (Matthew Wilcox, 2020) exists to catch that leak.

The generator repeats the scenario ``--iterations`` times per gfp pass on several CPUs, with the
orders of ``--orders`` (order 3 by default, as the module) and the reference taken by
``get_page`` (as the module does) or speculatively by ``folio_try_get`` /
``get_page_unless_zero`` (the page cache's way: it fails on a free page, succeeds here). Every
``--check-every`` iterations, and after each pass, ``drain_all_pages`` empties the pcp lists and a
``check`` asserts that ``nr_free`` is back to its value at the start: nothing leaked.
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
    bool_option,
    checks,
    cpus_option,
    cumulative,
    format_weights,
    int_option,
    make_trace,
    pick,
)
from buddysim.trace.gen.churn import parse_orders

__all__ = ["GETTERS", "OPTIONS", "generate", "test_free_pages_body"]

#: How the extra reference is taken: the module's get_page, or a speculative getter.
GETTERS: tuple[str, ...] = ("get_page", "folio_try_get", "get_page_unless_zero")

OPTIONS: tuple[Option, ...] = (
    int_option("iterations", 150, "scenario repetitions per gfp pass"),
    Option(
        "orders",
        {"3": 1.0},
        "orders as ORDER:WEIGHT pairs (the module uses order 3)",
        "str",
        metavar="MIX",
        parse=parse_orders,
        needs_config=True,
        text=format_weights,
    ),
    cpus_option(),
    bool_option("comp", True, "add the GFP_KERNEL|__GFP_COMP pass after the GFP_KERNEL one"),
    bool_option("speculative", True, "take the reference with folio_try_get / get_page_unless_zero too"),
    int_option("check_every", 50, "drain and check nr_free every N iterations"),
)


def _getter(s: Session, o: dict[str, Any], handle: int) -> dict[str, Any]:
    name = s.rng.choice(GETTERS) if o["speculative"] else "get_page"
    if name == "get_page_unless_zero":
        return {"op": "page_ref", "fn": "get_page_unless_zero", "handle": handle}
    return {"op": name, "handle": handle}


def test_free_pages_body(s: Session, o: dict[str, Any], *, label: str = "test_free_pages") -> Body:
    """The scenario (no handoff); needs a shadow for the starting ``nr_free``."""
    rng = s.rng
    keys, cum = cumulative(o["orders"])
    cpus = o["cpus"]
    yield {"op": "mark", "label": label}
    yield {"op": "drain_all_pages"}
    start = s.nr_free()
    yield from checks(s, message="start")
    passes = ["GFP_KERNEL", "GFP_KERNEL|__GFP_COMP"] if o["comp"] else ["GFP_KERNEL"]
    for gfp in passes:
        yield {"op": "mark", "label": f"{label} {gfp}"}
        for i in range(o["iterations"]):
            order = int(pick(rng, keys, cum))
            cpu = rng.randrange(cpus)
            handle = s.new_handle()
            value = yield {"op": "alloc_pages", "order": order, "gfp": gfp, "cpu": cpu, "handle": handle}
            if value is not None:
                yield _getter(s, o, handle)
                yield {"op": "__free_pages", "order": order, "handle": handle, "cpu": cpu}
                yield {"op": "put_page", "handle": handle, "cpu": rng.randrange(cpus)}
            if (i + 1) % o["check_every"] == 0 or i + 1 == o["iterations"]:
                yield {"op": "drain_all_pages"}
                yield {"op": "check", "nr_free": start, "message": f"{gfp}: no leak after {i + 1}"}


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """The lib/test_free_pages.c scenario with leak checks."""
    return make_trace("test-free-pages", seed, config, OPTIONS, options, after_handoff(test_free_pages_body))
