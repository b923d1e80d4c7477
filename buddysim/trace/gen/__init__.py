"""Seeded synthetic trace generators (``buddysim gen KIND``): the registry.

Each kind is a function ``generate(seed, *, config="tiny", **options)`` returning a
:class:`~buddysim.trace.gen.boot.GeneratedTrace` (the header dict and a lazy iterator of event
dicts), deterministic in its arguments: ``random.Random(seed)``, no clock, no global state, so the
same seed and options give a byte-identical file once written by the recorder. Options are
described by :class:`~buddysim.trace.gen.boot.Option` tuples that the CLI turns into flags; the
header's ``source`` is the exact command that regenerates the trace.

Kinds: ``boot``, ``churn``, ``fragmentation``, ``page_frag``, ``test-free-pages``, ``gup-pin``
(one module each), and ``default``: the small mixed trace shipped as ``traces/default.jsonl``
(handoff, churn, page_frag, test-free-pages, with exact ``check`` events), defined here since it
composes the others. No I/O here: the CLI (:mod:`buddysim.cli.gen`) writes.

>>> from buddysim.trace.gen import GENERATORS
>>> trace = GENERATORS["churn"].generate(7, events=50)
>>> trace.header["source"].split()[:5]
['buddysim', 'gen', 'churn', '--seed', '7']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from buddysim.config import Config
from buddysim.trace.gen import boot, churn, fragmentation, gup_pin, page_frag, test_free_pages
from buddysim.trace.gen.boot import (
    DEFAULT_CONFIG,
    Body,
    GeneratedTrace,
    Option,
    Session,
    checks,
    handoff_body,
    int_option,
    make_trace,
    resolve_options,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_OPTIONS",
    "GENERATORS",
    "GeneratedTrace",
    "GeneratorInfo",
    "Option",
    "generate_default",
    "get_generator",
]


@dataclass(frozen=True)
class GeneratorInfo:
    """One kind: its name, a one-line description, its options and its function."""

    name: str
    description: str
    options: tuple[Option, ...]
    generate: Callable[..., GeneratedTrace]


# ------------------------------------------------------------------------------- default
DEFAULT_OPTIONS: tuple[Option, ...] = (
    int_option("churn_events", 1500, "events of the churn section"),
    int_option("frags", 300, "fragments of the page_frag section (outside its pressure phase)"),
    int_option("pressure_frags", 100, "fragments of the page_frag pressure phase (0: no pressure phase)", 0),
    int_option("iterations", 40, "test-free-pages iterations per gfp pass"),
)


def _default_body(s: Session, o: dict[str, Any]) -> Body:
    def sub(options: tuple[Option, ...], given: dict[str, Any]) -> dict[str, Any]:
        return resolve_options("default", options, given, s.config)

    yield from handoff_body(s)
    yield from churn.churn_body(
        s,
        sub(churn.OPTIONS, {"events": o["churn_events"], "orders": "0:70,1:10,2:10,3:10", "drain": 0.004}),
    )
    yield from checks(s, per_zone=True, message="after churn")
    yield from page_frag.page_frag_body(
        s,
        sub(
            page_frag.OPTIONS,
            {
                "frags": o["frags"],
                "pressure": o["pressure_frags"] > 0,
                "pressure_frags": o["pressure_frags"] or 1,
            },
        ),
    )
    yield from test_free_pages.test_free_pages_body(
        s, sub(test_free_pages.OPTIONS, {"iterations": o["iterations"], "check_every": 20})
    )
    yield {"op": "mark", "label": "end"}
    yield from checks(s, per_zone=True, pcp=True, message="end")


def generate_default(
    seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any
) -> GeneratedTrace:
    """The mixed trace ``traces/default.jsonl`` is made of: a bit of every workload."""
    return make_trace("default", seed, config, DEFAULT_OPTIONS, options, _default_body)


# ------------------------------------------------------------------------------- registry
GENERATORS: dict[str, GeneratorInfo] = {
    info.name: info
    for info in (
        GeneratorInfo(
            "boot",
            "memblock_add/memblock_reserve of a config, memblock_free_all, buddyinfo checks",
            boot.OPTIONS,
            boot.generate,
        ),
        GeneratorInfo(
            "churn",
            "allocate/free churn of small orders over CPUs and migratetypes, lifetimes exponential",
            churn.OPTIONS,
            churn.generate,
        ),
        GeneratorInfo(
            "fragmentation",
            "long-lived kernel pages scattered among page cache pin pageblocks after reclaim",
            fragmentation.OPTIONS,
            fragmentation.generate,
        ),
        GeneratorInfo(
            "page_frag",
            "network-like page_frag traffic: packet sizes, out-of-order frees, pfmemalloc pages",
            page_frag.OPTIONS,
            page_frag.generate,
        ),
        GeneratorInfo(
            "test-free-pages",
            "lib/test_free_pages.c: __free_pages with a held reference, leak checks",
            test_free_pages.OPTIONS,
            test_free_pages.generate,
        ),
        GeneratorInfo(
            "gup-pin",
            "GUP pins with the 1024 bias; failed pins on freed pages (stale increments)",
            gup_pin.OPTIONS,
            gup_pin.generate,
        ),
        GeneratorInfo(
            "default",
            "the shipped default trace: handoff, churn, page_frag, test-free-pages, checks",
            DEFAULT_OPTIONS,
            generate_default,
        ),
    )
}


def get_generator(name: str) -> GeneratorInfo:
    """The kind ``name``; an unknown name is :class:`~buddysim.errors.BadInput` listing the kinds."""
    from buddysim.errors import BadInput

    try:
        return GENERATORS[name]
    except KeyError:
        raise BadInput(f"unknown generator {name!r}; expected one of: {', '.join(GENERATORS)}") from None
