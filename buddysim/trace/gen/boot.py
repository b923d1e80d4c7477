"""The ``boot`` generator (mm/memblock.c, mm/mm_init.c), and what every generator shares.

Kernel behaviour exercised by ``boot``: x86-64 ``setup_arch`` registers RAM with
``memblock_add_node`` (``e820__memblock_setup`` for a BIOS map) and carves out the boot-time
reservations with ``memblock_reserve`` (kernel image, the low 1 MiB, NODE_DATA, the memmap,
per-cpu areas); ``mm_core_init`` > ``memblock_free_all()`` then hands memblock.memory minus
memblock.reserved to the buddy allocator in naturally aligned chunks (``__free_pages_memory``),
every page through ``__free_pages_core`` and the call site that freezes it. The trace asserts
the result: per zone, the free blocks per order (the buddyinfo row) and ``nr_free``.

Shared by every generator (the other modules import it from here, so that the package
``__init__`` can stay a plain registry):

* :class:`Option`: one per-kind option (``--events N``), with the parsing and the canonical
  spelling the trace header's ``source`` line repeats, so ``source`` is the exact command that
  regenerates the file.
* :class:`GeneratedTrace`: the header dict and the lazy iterator of event dicts.
* :class:`Session`: one generation run: ``random.Random(seed)`` (never the global generator, never
  the clock), handle numbering, the machine config and, for generators that need to see the
  allocator, a *shadow* machine that replays every event as it is generated (baseline refcount
  model, strict, fail-fast). Generator bodies are coroutines: ``value = yield event`` hands an
  event out and receives what the shadow's engine returned for it (the pfn of an allocation, the
  address of a fragment, the result of a ``page_ref`` call; ``None`` for a failed allocation,
  whose handle is then dropped from the written event). The shadow is what makes ``check``
  events exact and lets ``page_frag`` push the machine to its min watermark; generators whose
  traces must not depend on placement (``churn``) run without it.

No I/O here apart from reading the machine config (a preset from the package, or a TOML file);
the CLI writes the trace.
"""

from __future__ import annotations

import argparse
import bisect
import random
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from buddysim.config import Config, list_presets, load_preset, resolve_config
from buddysim.engine import Engine
from buddysim.errors import BadInput
from buddysim.machine import Machine
from buddysim.mm.gfp import parse_gfp
from buddysim.mm.memblock import memblock_from_config
from buddysim.trace.recorder import make_header

__all__ = [
    "ALLOC_OPS",
    "ASSUMED",
    "DEFAULT_CONFIG",
    "OPTIONS",
    "Body",
    "GeneratedTrace",
    "Option",
    "Session",
    "Weights",
    "after_handoff",
    "all_freed",
    "bool_option",
    "boot_body",
    "check_events",
    "checks",
    "cpus_option",
    "cumulative",
    "float_option",
    "float_parser",
    "format_weights",
    "generate",
    "handoff_body",
    "int_option",
    "int_parser",
    "make_trace",
    "parse_weights",
    "pick",
    "resolve_machine",
    "resolve_options",
]

#: The machine a trace is generated for unless ``--config`` says otherwise.
DEFAULT_CONFIG = "tiny"

#: Ops that create a block (their ``handle`` is dropped when the allocation fails).
ALLOC_OPS = frozenset({"alloc_pages", "alloc_frozen_pages", "page_frag_alloc"})

#: What a body generator yields, receives and returns.
Body = Generator[dict[str, Any], object, None]

#: ``{key: weight}`` in the order given.
Weights = dict[str, float]


class _Assumed:
    """The value a body receives when there is no shadow: "assume it worked"."""

    def __repr__(self) -> str:
        return "ASSUMED"


#: Sent back to a body for every event when the session has no shadow machine.
ASSUMED: object = _Assumed()


# ------------------------------------------------------------------------------------ options
def _range_text(lo: float, hi: float, what: str) -> str:
    if hi >= 1 << 40:
        return f"{what} >= {lo:g}"
    return f"{what} {lo:g}..{hi:g}"


def int_parser(lo: int, hi: int) -> Callable[[str, object], int]:
    """A parser for an integer option in ``[lo, hi]`` (command-line text or int)."""
    expected = "expected " + _range_text(lo, hi, "an integer")

    def parse(flag: str, raw: object) -> int:
        value = raw
        if isinstance(raw, str):
            try:
                value = int(raw.strip(), 0)
            except ValueError:
                raise BadInput(f"{expected}, got {raw!r}", field=flag) from None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise BadInput(f"{expected}, got {raw!r}", field=flag)
        return value

    return parse


def float_parser(lo: float, hi: float) -> Callable[[str, object], float]:
    """A parser for a real option in ``[lo, hi]`` (command-line text or number)."""
    expected = "expected " + _range_text(lo, hi, "a number")

    def parse(flag: str, raw: object) -> float:
        value = raw
        if isinstance(raw, str):
            try:
                value = float(raw)
            except ValueError:
                raise BadInput(f"{expected}, got {raw!r}", field=flag) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise BadInput(f"{expected}, got {raw!r}", field=flag)
        return float(value)

    return parse


def _boolean(flag: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise BadInput(f"expected true or false, got {value!r}", field=flag)


def parse_weights(flag: str, value: object, keys: Callable[[str], str]) -> Weights:
    """``"0:70,1:10"`` (or a mapping) → ``{"0": 70.0, "1": 10.0}``; ``keys`` checks/normalises a key.

    Weights are non-negative numbers, at least one positive; a key may appear once.
    """
    items: list[tuple[object, object]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, weight = part.partition(":")
            if not sep:
                raise BadInput(f"expected KEY:WEIGHT pairs separated by commas, got {part!r}", field=flag)
            items.append((key.strip(), weight.strip()))
    else:
        raise BadInput(f"expected KEY:WEIGHT pairs like '0:70,1:30', got {value!r}", field=flag)
    out: Weights = {}
    for key, weight in items:
        k = keys(str(key))
        if k in out:
            raise BadInput(f"{k!r} is given twice", field=flag)
        try:
            w = float(weight)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadInput(f"weight of {k!r} must be a number, got {weight!r}", field=flag) from None
        if not w >= 0 or w == float("inf"):
            raise BadInput(f"weight of {k!r} must be a finite number >= 0, got {weight!r}", field=flag)
        out[k] = w
    if not any(out.values()):
        raise BadInput("expected at least one positive weight", field=flag)
    return out


def cumulative(weights: Mapping[str, float]) -> tuple[list[str], list[float]]:
    """The keys with a positive weight and their running totals, for :func:`pick`."""
    keys = [k for k, w in weights.items() if w > 0]
    cum: list[float] = []
    total = 0.0
    for k in keys:
        total += weights[k]
        cum.append(total)
    return keys, cum


def pick(rng: random.Random, keys: list[str], cum: list[float]) -> str:
    """A key drawn with probability proportional to its weight (one ``rng.random()``)."""
    return keys[bisect.bisect_right(cum, rng.random() * cum[-1])]


def format_weights(weights: Mapping[str, float]) -> str:
    """The canonical spelling: ``0:70,1:10`` (integral weights without ``.0``)."""
    return ",".join(f"{k}:{w:g}" for k, w in weights.items())


@dataclass(frozen=True)
class Option:
    """One option of a generator kind: ``--events N`` on the command line, ``events=N`` in Python.

    ``parse(flag, value)`` accepts the command-line text or a Python value and returns the
    canonical value (raising :class:`BadInput` naming the flag); ``text(value)`` spells it back for
    the header's ``source`` line; ``kind`` is ``"int"``, ``"float"``, ``"str"`` or ``"bool"``
    (``--flag`` / ``--no-flag``). ``parse`` may need the machine config (``"--cpus"`` is at most
    its ``nr_cpus``): it then takes ``(flag, value, config)``.
    """

    name: str
    default: Any
    help: str
    kind: str = "int"
    metavar: str = "N"
    parse: Callable[..., Any] | None = None
    needs_config: bool = False
    text: Callable[[Any], str] = str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def value(self, raw: object, config: Config) -> Any:
        parse = self.parse
        if parse is None:
            parse = {
                "int": int_parser(0, 1 << 40),
                "float": float_parser(0.0, float("inf")),
                "bool": _boolean,
            }.get(self.kind, lambda _flag, v: v)
        return parse(self.flag, raw, config) if self.needs_config else parse(self.flag, raw)

    def spell(self, value: Any) -> list[str]:
        """The command-line words that give ``value``."""
        if self.kind == "bool":
            return [self.flag if value else "--no-" + self.flag[2:]]
        return [self.flag, self.text(value)]

    def add_to(self, parser: argparse._ActionsContainer) -> None:
        """Add this option to an argparse (sub)parser; values are checked by the generator."""
        if self.kind == "bool":
            parser.add_argument(
                self.flag,
                dest=self.name,
                action=argparse.BooleanOptionalAction,
                default=self.default,
                help=f"{self.help} (default: {'on' if self.default else 'off'})",
            )
        else:
            parser.add_argument(
                self.flag,
                dest=self.name,
                metavar=self.metavar,
                default=self.default,
                help=f"{self.help} (default: {self.text(self.default)})",
            )


def int_option(name: str, default: int, help: str, lo: int = 1, hi: int = 1 << 40, **kw: Any) -> Option:
    return Option(name, default, help, "int", parse=int_parser(lo, hi), **kw)


def float_option(name: str, default: float, help: str, lo: float = 0.0, hi: float = 1.0) -> Option:
    return Option(
        name, default, help, "float", metavar="X", parse=float_parser(lo, hi), text=lambda v: f"{v:g}"
    )


def bool_option(name: str, default: bool, help: str) -> Option:
    return Option(name, default, help, "bool")


def resolve_options(
    kind: str, options: tuple[Option, ...], given: Mapping[str, Any], config: Config
) -> dict[str, Any]:
    """Defaults filled in, every value parsed; an unknown name is :class:`BadInput`."""
    known = {o.name: o for o in options}
    unknown = [k for k in given if k not in known]
    if unknown:
        names = ", ".join(o.flag for o in options) or "none"
        raise BadInput(f"gen {kind}: unknown option {unknown[0]!r}; options: {names}")
    return {o.name: o.value(given.get(o.name, o.default), config) for o in options}


# ------------------------------------------------------------------------------------ machine
def resolve_machine(config: str | Config) -> tuple[Config, str | dict[str, Any], str]:
    """``(config, header machine, --config text)`` for a preset name, a TOML path or a Config.

    A preset is named in the header (``"machine": "tiny"``); a file or a :class:`Config` is
    written inline, so the trace does not depend on a file next to it (the ``source`` line of a
    trace made from an in-memory :class:`Config` names it by its ``name`` only).
    """
    if isinstance(config, Config):
        return config, config.model_dump(mode="json", exclude_defaults=True), config.name
    if config in list_presets():
        return load_preset(config), config, config
    cfg = resolve_config(config)
    return cfg, cfg.model_dump(mode="json", exclude_defaults=True), config


def _cpu_count(flag: str, value: object, config: Config) -> int:
    n = int_parser(1, 8192)(flag, value)
    if n > config.nr_cpus:
        raise BadInput(f"the machine {config.name!r} has {config.nr_cpus} CPUs, got {n}", field=flag)
    return n


def cpus_option(help: str = "CPUs 0..N-1 to spread the work over (0: every CPU of the machine)") -> Option:
    """``--cpus N``: default 0 means every CPU of the machine."""
    return Option(
        "cpus",
        0,
        help,
        "int",
        parse=lambda flag, v, cfg: cfg.nr_cpus if v in (0, "0") else _cpu_count(flag, v, cfg),
        needs_config=True,
    )


class _Feed:
    """An iterator the shadow engine reads: one event is pushed before each step."""

    def __init__(self) -> None:
        self.queue: deque[tuple[int, dict[str, Any]]] = deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        if not self.queue:
            raise StopIteration
        return self.queue.popleft()


class GeneratedTrace(NamedTuple):
    """A generated trace: the header, then the events (lazy: generated as they are consumed)."""

    header: dict[str, Any]
    events: Iterator[dict[str, Any]]


@dataclass
class Session:
    """One generation run: seeded rng, handles, the machine config, an optional shadow machine."""

    seed: int
    config: Config
    shadow: bool = True
    rng: random.Random = field(init=False)
    machine: Machine | None = field(init=False, default=None)
    engine: Engine | None = field(init=False, default=None)
    nr_events: int = field(init=False, default=0)
    _handle: int = field(init=False, default=0)
    _feed: _Feed = field(init=False, default_factory=_Feed)
    _boot_machine: Machine | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if self.shadow:
            self.machine = Machine.from_config(self.config, refcount="baseline", sites=None, fail_fast=True)
            self.engine = Engine(self.machine, self._feed, strict=True, path="<generator shadow>")

    def new_handle(self) -> int:
        """The next unused handle (1, 2, 3, ...)."""
        self._handle += 1
        return self._handle

    def apply(self, event: dict[str, Any]) -> object:
        """Apply ``event`` to the shadow (if any) and return what the operation returned."""
        self.nr_events += 1
        if self.engine is None:
            return ASSUMED
        if "gfp" in event:
            event = {**event, "gfp": parse_gfp(event["gfp"])}
        self._feed.queue.append((self.nr_events + 1, event))
        return self.engine.step_result().value

    def run(self, body: Body) -> Iterator[dict[str, Any]]:
        """Drive ``body``: apply each event it yields, send the result back, hand the event out."""
        try:
            event = next(body)
            while True:
                value = self.apply(event)
                if value is None and event["op"] in ALLOC_OPS and "handle" in event:
                    event = {k: v for k, v in event.items() if k != "handle"}
                yield event
                event = body.send(value)
        except StopIteration:
            return

    # -- what the shadow knows ---------------------------------------------------------
    def _mm(self) -> Machine:
        if self.machine is None:
            raise RuntimeError("this generator needs a shadow machine (Session(shadow=True))")
        return self.machine

    def nr_free(self) -> int:
        """NR_FREE_PAGES over every zone of the shadow machine now."""
        return self._mm().nr_free_pages()

    def boot_machine(self) -> Machine:
        """The configured machine right after the handoff (a throwaway one, built once)."""
        if self._boot_machine is None:
            mm = Machine.from_config(self.config, refcount="baseline", sites=None)
            mm.boot()
            self._boot_machine = mm
        return self._boot_machine

    def boot_nr_free(self) -> int:
        """NR_FREE_PAGES right after the handoff."""
        return self.boot_machine().nr_free_pages()


def check_events(
    s: Session,
    *,
    per_zone: bool = False,
    pcp: bool = False,
    message: str | None = None,
    machine: Machine | None = None,
) -> list[dict[str, Any]]:
    """``check`` events asserting the shadow's state now (or ``machine``'s): total ``nr_free``
    (and ``pcp_count``), or with ``per_zone`` the buddyinfo row and ``nr_free`` of every zone."""
    mm = machine if machine is not None else s._mm()
    out: list[dict[str, Any]] = []
    many_nodes = len({z.node for z in mm.zones}) > 1
    if per_zone:
        for z in mm.zones:
            ev: dict[str, Any] = {"op": "check", "zone": z.name}
            if many_nodes:
                ev["nid"] = z.node
            ev["free_per_order"] = [area.nr_free for area in z.free_area]
            ev["nr_free"] = z.NR_FREE_PAGES
            if pcp:
                ev["pcp_count"] = sum(p.count for p in z.per_cpu_pageset)
            if message:
                ev["message"] = message
            out.append(ev)
        return out
    ev = {"op": "check", "nr_free": mm.nr_free_pages()}
    if pcp:
        ev["pcp_count"] = sum(p.count for z in mm.zones for p in z.per_cpu_pageset)
    if message:
        ev["message"] = message
    return [ev]


def checks(
    s: Session,
    *,
    per_zone: bool = False,
    pcp: bool = False,
    message: str | None = None,
    machine: Machine | None = None,
) -> Body:
    """:func:`check_events` as a body (``yield from checks(s, ...)``)."""
    # not ``yield from`` the list: a list iterator has no send(), and the driver sends results
    events = check_events(s, per_zone=per_zone, pcp=pcp, message=message, machine=machine)
    for event in events:  # noqa: UP028
        yield event


def handoff_body(s: Session) -> Body:
    """The handoff every trace starts with: ``memblock_free_all``, a mark, and the buddyinfo
    rows of every zone it must produce."""
    yield {"op": "memblock_free_all"}
    yield {"op": "mark", "label": "boot"}
    yield from checks(s, per_zone=True, message="after memblock_free_all", machine=s.boot_machine())


def after_handoff(
    body: Callable[[Session, dict[str, Any]], Body],
) -> Callable[[Session, dict[str, Any]], Body]:
    """A workload generator's body: :func:`handoff_body`, then ``body(session, options)``."""

    def run(s: Session, o: dict[str, Any]) -> Body:
        yield from handoff_body(s)
        yield from body(s, o)

    return run


def all_freed(s: Session, message: str) -> Body:
    """The end of a workload that gave everything back: drain the pcp lists, then check that
    the free page count is the booted machine's."""
    yield {"op": "drain_all_pages"}
    yield {"op": "check", "nr_free": s.boot_nr_free(), "message": message}


def boot_body(s: Session) -> Body:
    """memblock as setup_arch leaves it (``memblock_add`` per memory region with its node,
    ``memblock_reserve`` per reservation in the config's order), then the handoff."""
    mb = memblock_from_config(s.config, reserve=False)
    for r in mb.memory:
        yield {"op": "memblock_add", "base": r.base, "size": r.size, "nid": r.nid}
    for rsv in s.config.reserved:
        yield {"op": "memblock_reserve", "base": rsv.start, "size": rsv.limit - rsv.start}
    yield from handoff_body(s)


def make_trace(
    kind: str,
    seed: int,
    config: str | Config,
    options: tuple[Option, ...],
    given: Mapping[str, Any],
    body: Callable[[Session, dict[str, Any]], Body],
    *,
    shadow: bool = True,
) -> GeneratedTrace:
    """Validate ``given`` options (eagerly: bad input fails before anything is written), build
    the header (``source`` is the exact regenerating command, ``meta`` the effective options)
    and the lazy event stream."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
        raise BadInput(f"expected an integer 0..2^63-1, got {seed!r}", field="--seed")
    cfg, machine, config_text = resolve_machine(config)
    opts = resolve_options(kind, options, given, cfg)
    words = ["buddysim", "gen", kind, "--seed", str(seed), "--config", config_text]
    for o in options:
        words += o.spell(opts[o.name])
    meta = {"generator": kind, "options": {o.name: _jsonable(opts[o.name]) for o in options}}
    header = dict(make_header(machine, seed=seed, source=" ".join(words), meta=meta))
    session = Session(seed, cfg, shadow=shadow)
    return GeneratedTrace(header, session.run(body(session, opts)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return format_weights(value)
    return value


# ------------------------------------------------------------------------------------ boot
#: ``boot`` has no options of its own (the machine is ``--config``).
OPTIONS: tuple[Option, ...] = ()


def generate(seed: int = 1, *, config: str | Config = DEFAULT_CONFIG, **options: Any) -> GeneratedTrace:
    """The boot of ``config``: memblock_add / memblock_reserve, memblock_free_all, checks.

    >>> trace = generate(1)
    >>> [e["op"] for e in trace.events][:2]
    ['memblock_add', 'memblock_add']
    """
    return make_trace("boot", seed, config, OPTIONS, options, lambda s, _o: boot_body(s))
