"""``buddysim inspect``: the interactive zone inspector (Textual), or one "find pfn" answer in plain rich."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from buddysim.cli.base import Command
from buddysim.cli.common import (
    add_machine_options,
    build_machine,
    nonneg_int,
    positive_int,
    trace_config,
    trace_models,
)
from buddysim.config import Config, resolve_config
from buddysim.errors import BadInput
from buddysim.machine import Machine

if TYPE_CHECKING:
    from buddysim.tui.session import InspectSession


__all__ = ["InspectCommand", "load_session"]


def _pfn_arg(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a pfn (decimal or 0x...), got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a pfn >= 0, got {text!r}")
    return v


def _is_trace(source: str) -> bool:
    return source == "-" or (os.path.isfile(source) and not source.endswith(".toml"))


def load_session(args: argparse.Namespace) -> Any:
    """An :class:`~buddysim.tui.session.InspectSession` for the command's arguments."""
    from buddysim.tui.session import InspectSession

    source: str = args.source
    header: dict[str, Any] = {}
    events: list[tuple[int, dict[str, Any]]] = []
    if _is_trace(source):
        from buddysim.trace.reader import TraceReader

        with TraceReader(source) as reader:
            header = dict(reader.header)
            config: Config = trace_config(args, header, source)
            events = [(line, dict(ev)) for line, ev in reader]
    else:
        if args.config:
            raise BadInput("--config goes with a trace; give the config itself as the argument", where=source)
        config = resolve_config(source)
    models, sites = trace_models(args, header, config)
    if len(models) > 1:
        raise BadInput("inspect runs one refcount model at a time", field="--refcount")

    def make_machine() -> Machine:
        return build_machine(config, args, refcount=models[0], sites=sites)

    factory: Callable[[], Machine] = make_machine
    return InspectSession(
        factory,
        events,
        path=source,
        every=args.checkpoint_every,
        budget=args.checkpoint_mb << 20,
        source=str(header.get("source") or ""),
    )


class InspectCommand(Command):
    """Inspect zone state interactively: step through a trace, go back, find where a pfn is.

    TRACE is a trace file (.jsonl, .jsonl.gz, .jsonl.xz); a machine config or preset name instead
    shows the state right after the boot handoff. Panes: zones (spans, sizes, watermarks,
    lowmem_reserve), the selected zone's free area (order x migratetype), pcp pages per CPU, a
    page map of pageblocks (colour: migratetype, brightness: how much is free), the events
    around the cursor and the findings so far. Press ? inside for the keys.

    With --find PFN (and --at N) it prints where the pfn is after event N, in plain text or
    JSON, without starting the interactive UI. The UI needs Textual: pip install 'buddysim[tui]'.
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "source", metavar="TRACE|CONFIG", help="trace file, or a machine preset / config file"
        )
        add_machine_options(parser)
        parser.add_argument(
            "--config", metavar="X", help="machine preset or config file (overrides the trace header)"
        )
        parser.add_argument(
            "--checkpoint-every",
            metavar="N",
            type=positive_int,
            default=64,
            help="keep a snapshot every N events for stepping back (default 64; doubles when over budget)",
        )
        parser.add_argument(
            "--checkpoint-mb",
            metavar="MB",
            type=positive_int,
            default=512,
            help="memory budget of the snapshots (default 512)",
        )
        parser.add_argument("--zone", metavar="I", type=nonneg_int, help="zone to select first (index)")
        parser.add_argument(
            "--find", metavar="PFN", type=_pfn_arg, help="print where PFN is (no interactive UI)"
        )
        parser.add_argument(
            "--at",
            metavar="N",
            type=nonneg_int,
            default=None,
            help="after event N: where --find looks (default: the end), where the UI opens (default: 0)",
        )
        parser.add_argument("--json", action="store_true", help="with --find: JSON on stdout")

    def run(self, args: argparse.Namespace) -> int:
        if args.at is not None and not _is_trace(args.source):
            raise BadInput("--at needs a trace, not a machine config", field="--at")
        if args.find is None:
            try:
                from buddysim.tui.app import InspectApp
            except ImportError as e:
                raise BadInput(f"the inspector needs Textual ({e}); pip install 'buddysim[tui]'") from None
            session = load_session(args)
            if args.zone is not None and args.zone >= len(session.mm.zones):
                raise BadInput(f"zone index {args.zone}: the machine has {len(session.mm.zones)} zones")
            if args.at is not None:
                session.goto(_event_index(session, args.at))
            InspectApp(session, zone=args.zone).run()
            return 1 if session.mm.nr_findings else 0
        session = load_session(args)
        session.goto(session.total if args.at is None else _event_index(session, args.at))
        info = session.find(args.find)
        if args.json:
            out = {"schema_version": 1, "event": session.index, **info.as_dict()}
            json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"), default=str)
            sys.stdout.write("\n")
        else:
            console = Console(width=None if sys.stdout.isatty() else 120)
            console.print(Text(f"after event {session.index} of {session.total}", style="bold"))
            for i, line in enumerate(info.describe()):
                console.print(Text(line, style="bold" if i == 0 else ""))
        return 1 if session.mm.nr_findings else 0


def _event_index(session: InspectSession, at: int) -> int:
    """``--at N`` checked against the trace: past its last event is bad input, as in ``show``."""
    if at > session.total:
        raise BadInput(f"the trace has only {session.total} events", field="--at")
    return at
