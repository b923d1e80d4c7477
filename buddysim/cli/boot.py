"""``buddysim boot``: the boot-time memblock handoff of a machine config, and what it finds."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Console

from buddysim.cli.base import Command
from buddysim.cli.common import add_machine_options, build_machine, check_output_path
from buddysim.config import resolve_config
from buddysim.report.summary import render_text, summary_data

__all__ = ["BootCommand"]


class BootCommand(Command):
    """Hand a machine's memory from memblock to the buddy allocator (memblock_free_all) and check it.

    CONFIG is a preset name (buddysim/presets: tiny, x86_64-1g, x86_64-4g, x86_64-64g,
    x86_64-1t, numa-2node) or a machine config file (configs/*.toml). Every page entering a
    free list must be frozen under the refcount model: under v1 and v2 as posted, every boot
    page enters at raw 0, "no owner, gettable".
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("config", metavar="CONFIG", help="preset name or machine config file")
        add_machine_options(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")
        parser.add_argument(
            "--emit-trace", metavar="OUT.jsonl", help="write the equivalent boot trace (replayable)"
        )
        parser.add_argument("--force", action="store_true", help="overwrite --emit-trace's file")
        parser.add_argument(
            "--compare", metavar="BOOT.LOG", help="set the simulated figures beside a real kernel boot log"
        )

    def run(self, args: argparse.Namespace) -> int:
        config = resolve_config(args.config)
        if args.emit_trace:
            check_output_path(args.emit_trace, args.force)
        mm = build_machine(config, args, refcount=args.refcount)
        t0 = time.perf_counter()
        pages = mm.boot()
        elapsed = time.perf_counter() - t0
        extra = {
            "command": "boot",
            "config": args.config,
            "handoff_pages": pages,
            "handoff_seconds": round(elapsed, 6),
            "bytes_per_page": round(mm.store.bytes_per_page, 3),
        }
        if args.compare:
            from buddysim.report.compare import compare_boot

            extra["compare"] = compare_boot(mm, args.compare)
        if args.emit_trace:
            from buddysim.trace.gen import GENERATORS
            from buddysim.trace.recorder import write_trace

            # the boot generator's trace (memblock events, memblock_free_all, per-zone checks),
            # with this run's refcount model and site table in the header
            trace = GENERATORS["boot"].generate(1, config=args.config)
            header = {**trace.header, "refcount": mm.refs.name, "sites": mm.sites.name}
            extra["emitted_events"] = write_trace(args.emit_trace, header, trace.events)
        data = summary_data(mm, extra)
        if args.json:
            json.dump(data, sys.stdout, sort_keys=True, separators=(",", ":"))
            sys.stdout.write("\n")
        else:
            console = Console(width=None if sys.stdout.isatty() else 120)
            render_text(
                data,
                console,
                [
                    f"memblock_free_all: {pages} pages handed over in {elapsed:.3f} s "
                    f"({mm.store.bytes_per_page:.2f} bytes of page state per page)"
                ],
            )
            if args.compare:
                from buddysim.report.compare import render_compare

                render_compare(extra["compare"], console)
        return 1 if mm.nr_findings else 0
