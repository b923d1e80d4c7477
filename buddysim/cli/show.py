"""``buddysim show``: the state after a trace (or at an event or mark) in the kernel's own formats."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from buddysim.cli.base import Command
from buddysim.cli.common import (
    add_machine_options,
    add_trace_arguments,
    build_machine,
    trace_config,
    trace_models,
)
from buddysim.config import resolve_config
from buddysim.engine import Engine
from buddysim.errors import BadInput
from buddysim.machine import Machine
from buddysim.mm import vmstat
from buddysim.trace import directed
from buddysim.trace.reader import TraceReader

__all__ = ["FORMATS", "ShowCommand"]

FORMATS: dict[str, Callable[[Machine], str]] = {
    "buddyinfo": vmstat.frag_show,
    "pagetypeinfo": vmstat.pagetypeinfo_show,
    "zoneinfo": vmstat.zoneinfo_show,
    "kmem-f": vmstat.kmem_f,
    "extfrag": vmstat.extfrag_index,
    "unusable": vmstat.unusable_index,
}


class ShowCommand(Command):
    """Print the allocator state after a trace as /proc/buddyinfo, pagetypeinfo, zoneinfo, crash's
    kmem -f, the debugfs extfrag/unusable indices, or JSON (byte-compatible with the kernel's output).

    TRACE may also be a machine preset or config: the state right after the boot handoff.
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        add_trace_arguments(parser, "trace file, or a preset/config (state after boot)")
        parser.add_argument(
            "--format",
            choices=[*FORMATS, "json"],
            default="buddyinfo",
            help="output format (default buddyinfo)",
        )
        parser.add_argument("--at", metavar="N|LABEL", help="stop after event N, or at the mark LABEL")
        add_machine_options(parser)

    def run(self, args: argparse.Namespace) -> int:
        mm = self._machine(args)
        if args.format == "json":
            json.dump(vmstat.vmstat_json(mm), sys.stdout, sort_keys=True, separators=(",", ":"))
            sys.stdout.write("\n")
        else:
            sys.stdout.write(FORMATS[args.format](mm))
        return 0

    def _machine(self, args: argparse.Namespace) -> Machine:
        if not args.trace.endswith((".jsonl", ".jsonl.gz", ".jsonl.xz", ".gz", ".xz")) and args.trace != "-":
            config = resolve_config(args.trace)
            mm = build_machine(config, args, refcount=args.refcount)
            mm.boot()
            if args.at is not None:
                raise BadInput("--at needs a trace, not a machine config", field="--at")
            return mm
        with TraceReader(args.trace) as reader:
            header = reader.header
            config = trace_config(args, header, args.trace)
            model, sites = trace_models(args, header, config)
            if len(model) != 1:
                raise BadInput("show takes one refcount model", field="--refcount")
            mm = build_machine(config, args, refcount=model[0], sites=sites)
            engine = Engine(mm, reader, path=args.trace, check_every=0)
            # traces imported from ftrace carry recorded-only ops: replay them directed
            glue = directed.install([engine], header) if directed.is_directed_source(header) else []
            at = args.at
            if at is None:
                engine.run()
            elif at.isdigit():
                engine.run(until=int(at))
                if engine.index < int(at):
                    raise BadInput(f"the trace has only {engine.index} events", field="--at")
            else:
                engine.run(until=lambda e: at in e.marks)
                if at not in engine.marks:
                    raise BadInput(f"no mark {at!r} in the trace", field="--at")
            for g in glue:
                g.finish()
            if not mm.handoff_done:
                mm.boot()
        return mm
