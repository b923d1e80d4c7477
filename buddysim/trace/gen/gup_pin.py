"""The ``gup-pin`` generator: FOLL_PIN references with the 1024 bias, and stale pins on freed pages.

Kernel behaviour exercised (mm/gup.c, include/linux/mm.h): ``pin_user_pages*()`` marks a small
folio pinned by adding ``GUP_PIN_COUNTING_BIAS`` (1024) to its refcount, so
``folio_maybe_dma_pinned()`` can tell a pin from ordinary references; a large folio takes one
reference plus ``_pincount`` (not modelled, the trace adds 1). The fast path (``gup_fast``,
no locks) grabs speculatively with ``folio_ref_try_add(folio, refs)``, which must fail on a
page that has just been freed; the slow path under the page-table lock adds unconditionally
(``page_ref_add`` / ``folio_ref_add``). ``unpin_user_page`` takes the bias back
(``page_ref_sub``). Pages are user pages (``GFP_HIGHUSER_MOVABLE``; order-2 folios with
``__GFP_COMP``); the owner unmaps and frees a page (``put_page`` / ``folio_put``) only when it
holds no pins, and a fresh page replaces it.

The refcount-model difference this trace shows (spec/refcount.md §5.7): a fast-path pin that
races with the free and lands on the freed page fails in every model, but under the frozen-bit
models (v1 .. final) its ``atomic_add_return`` has already added 1024 to the frozen word, and the
increment stays there (a *stale increment*) until the page is reallocated (``init_page_count``
overwrites it) or the word reaches the 2^30 reset threshold, which at 1024 per attempt takes
2^20 failed pins. Under the baseline the attempt sees 0 and adds nothing.
``--stale-pins N`` ends the trace with N failed pins on one freed page (the page with handle
``"stale"``), so the final word is ``0x80000000 + N*1024`` under ``final`` (modulo the reset) and 0
under ``baseline``; every ``check`` in the trace asserts ``page_ref_count`` values, which the two
models agree on.
"""

from __future__ import annotations

from collections.abc import Callable
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
    cpus_option,
    cumulative,
    float_option,
    int_option,
    make_trace,
    pick,
)

__all__ = ["GUP_PIN_COUNTING_BIAS", "OPTIONS", "STALE_HANDLE", "generate", "gup_pin_body"]

#: include/linux/mm.h
GUP_PIN_COUNTING_BIAS = 1024
#: The handle of the page ``--stale-pins`` hammers.
STALE_HANDLE = "stale"
_USER_GFP = "GFP_HIGHUSER_MOVABLE"
_LARGE_ORDER = 2

OPTIONS: tuple[Option, ...] = (
    int_option("events", 1200, "steps of pin / unpin / unmap traffic (the end phase comes on top)"),
    int_option("pages", 24, "user pages mapped at any time"),
    float_option("large", 0.25, "fraction of pages that are order-2 folios (pinned with 1 + _pincount)"),
    int_option("max_pins", 4, "pins one page may hold at once"),
    float_option("stale", 0.5, "fraction of unmaps raced by 1-3 fast-path pins that land on the freed page"),
    int_option(
        "stale_pins", 0, "failed pins on one freed page at the end (2^20 reach the reset threshold)", 0
    ),
    cpus_option(),
)


#: what one step of the traffic does, with its weight
_ACTIONS, _ACTION_CUM = cumulative({"pin": 40, "unpin": 30, "unmap": 20, "check": 6, "drain": 4})


class _Page:
    __slots__ = ("handle", "large", "pins")

    def __init__(self, handle: int | str, large: bool) -> None:
        self.handle = handle
        self.large = large
        self.pins = 0

    @property
    def bias(self) -> int:
        return 1 if self.large else GUP_PIN_COUNTING_BIAS


_ELIGIBLE: dict[str, Callable[[_Page, int], bool]] = {
    "pin": lambda p, limit: p.pins < limit,
    "unpin": lambda p, _limit: p.pins > 0,
    "unmap": lambda p, _limit: p.pins == 0,
    "check": lambda _p, _limit: True,
    "drain": lambda _p, _limit: True,
}


def _map(s: Session, o: dict[str, Any], handle: int | str | None = None) -> tuple[_Page, dict[str, Any]]:
    """A fresh user page (a fault): its record and its allocation event."""
    large = s.rng.random() < o["large"]
    page = _Page(s.new_handle() if handle is None else handle, large)
    order = _LARGE_ORDER if large else 0
    gfp = _USER_GFP + "|__GFP_COMP" if large else _USER_GFP
    cpu = s.rng.randrange(o["cpus"])
    return page, {"op": "alloc_pages", "order": order, "gfp": gfp, "cpu": cpu, "handle": page.handle}


def _try_pin(page: _Page) -> dict[str, Any]:
    """gup_fast: ``folio_ref_try_add(folio, refs)``."""
    return {"op": "page_ref", "fn": "folio_ref_try_add", "handle": page.handle, "count": page.bias}


def _unmap(s: Session, o: dict[str, Any], page: _Page) -> Body:
    """The owner drops its reference (the last one: the page is freed), maybe raced by gup_fast."""
    cpu = s.rng.randrange(o["cpus"])
    op = "folio_put" if page.large else "put_page"
    yield {"op": op, "handle": page.handle, "cpu": cpu}
    if s.rng.random() < o["stale"]:
        for _ in range(s.rng.randint(1, 3)):
            yield _try_pin(page)
        yield {"op": "check", "handle": page.handle, "count": 0, "message": "a failed pin adds no reference"}


def gup_pin_body(s: Session, o: dict[str, Any], *, label: str = "gup-pin") -> Body:
    """Pin traffic (no handoff); ends with every pin dropped and every page freed."""
    rng = s.rng
    yield {"op": "mark", "label": label}
    pages: list[_Page] = []
    for _ in range(o["pages"]):
        page, event = _map(s, o, None)
        value = yield event
        if value is not None:
            pages.append(page)
    for _ in range(o["events"]):
        if not pages:
            break
        action = pick(rng, _ACTIONS, _ACTION_CUM)
        candidates = [p for p in pages if _ELIGIBLE[action](p, o["max_pins"])]
        if not candidates:  # every page pinned to the limit, or none pinned: the other one
            action = "unpin" if action in ("pin", "unmap") else "pin"
            candidates = [p for p in pages if _ELIGIBLE[action](p, o["max_pins"])]
        page = rng.choice(candidates)
        if action == "pin":
            page.pins += 1
            if rng.random() < 0.6:
                yield _try_pin(page)
            else:
                fn = "folio_ref_add" if page.large else "page_ref_add"
                yield {"op": "page_ref", "fn": fn, "handle": page.handle, "nr": page.bias}
        elif action == "unpin":
            page.pins -= 1
            fn = "folio_ref_sub" if page.large else "page_ref_sub"
            yield {"op": "page_ref", "fn": fn, "handle": page.handle, "nr": page.bias}
        elif action == "unmap":
            pages.remove(page)
            yield from _unmap(s, o, page)
            new, event = _map(s, o)
            value = yield event
            if value is not None:
                pages.append(new)
        elif action == "check":
            count = 1 + page.pins * page.bias
            yield {"op": "check", "handle": page.handle, "count": count, "message": f"{page.pins} pins"}
        else:
            yield {"op": "drain_all_pages"}
    yield {"op": "mark", "label": f"{label}-unpin"}
    for page in pages:
        fn = "folio_ref_sub" if page.large else "page_ref_sub"
        for _ in range(page.pins):
            yield {"op": "page_ref", "fn": fn, "handle": page.handle, "nr": page.bias}
        page.pins = 0
        yield from _unmap(s, o, page)
    yield from all_freed(s, "every pin dropped, every page freed")
    if o["stale_pins"]:
        yield {"op": "mark", "label": "stale-pins"}
        yield {"op": "alloc_pages", "order": 0, "gfp": _USER_GFP, "cpu": 0, "handle": STALE_HANDLE}
        yield {"op": "put_page", "handle": STALE_HANDLE, "cpu": 0}
        for _ in range(o["stale_pins"]):
            yield {
                "op": "page_ref",
                "fn": "folio_ref_try_add",
                "handle": STALE_HANDLE,
                "count": GUP_PIN_COUNTING_BIAS,
            }
        yield {
            "op": "check",
            "handle": STALE_HANDLE,
            "count": 0,
            "message": f"{o['stale_pins']} failed pins add no reference",
        }


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """A gup-pin trace: the handoff, pin traffic with raced unmaps, optionally ``--stale-pins``."""
    return make_trace("gup-pin", seed, config, OPTIONS, options, after_handoff(gup_pin_body))
