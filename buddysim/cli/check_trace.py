"""``buddysim check-trace FILE``: validate a trace without replaying it; counts per op."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from buddysim.cli.base import Command
from buddysim.cli.common import positive_int
from buddysim.errors import BadInput
from buddysim.trace.events import OPS
from buddysim.trace.reader import DEFAULT_MAX_ERRORS, TraceReader

__all__ = ["CheckTraceCommand"]


class CheckTraceCommand(Command):
    """Validate a trace file (header, every event line) without replaying it; count events per op."""

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help="trace (.jsonl, .jsonl.gz, .jsonl.xz; - for stdin)")
        parser.add_argument(
            "--continue-on-error",
            action="store_true",
            help="report every bad line instead of stopping at the first (exit 2 if any)",
        )
        parser.add_argument(
            "--max-errors",
            type=positive_int,
            default=DEFAULT_MAX_ERRORS,
            metavar="N",
            help=f"with --continue-on-error, print at most N bad lines (default {DEFAULT_MAX_ERRORS})",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")

    def run(self, args: argparse.Namespace) -> int:
        started = time.perf_counter()
        counts: Counter[str] = Counter()
        reader: TraceReader | None = None
        fatal: BadInput | None = None
        try:
            reader = TraceReader(
                args.file, continue_on_error=args.continue_on_error, max_errors=args.max_errors
            )
            with reader:
                for _, event in reader:
                    counts[event["op"]] += 1
        except BadInput as e:
            if not args.json:
                raise
            fatal = e
        elapsed = time.perf_counter() - started
        if args.json:
            return self._json(args, reader, counts, fatal, elapsed)
        assert reader is not None
        return self._text(args, reader, counts, elapsed)

    def _text(
        self, args: argparse.Namespace, reader: TraceReader, counts: Counter[str], elapsed: float
    ) -> int:
        console = Console()
        header = reader.header
        machine = header["machine"] if isinstance(header["machine"], str) else "(inline config)"
        console.print(
            f"[bold]{args.file}[/]: format version {header['version']}, machine {machine}, "
            f"refcount {header.get('refcount', '(default)')}, seed {header.get('seed')}",
            highlight=False,
        )
        table = Table(title="events per op", title_justify="left")
        table.add_column("op")
        table.add_column("events", justify="right")
        for op in OPS:
            if counts[op]:
                table.add_row(op, f"{counts[op]:,}")
        table.add_row("[bold]total[/]", f"[bold]{sum(counts.values()):,}[/]")
        console.print(table)
        total = sum(counts.values())
        rate = f", {total / elapsed:,.0f} events/s" if elapsed > 0 and total >= 100_000 else ""
        if reader.nr_bad_lines:
            for error in reader.errors:
                print(f"buddysim {self.name}: error: {error.render()}", file=sys.stderr)
            hidden = reader.nr_bad_lines - len(reader.errors)
            if hidden:
                print(f"buddysim {self.name}: ... and {hidden} more bad line(s)", file=sys.stderr)
            console.print(
                f"[red]invalid[/]: {reader.nr_bad_lines:,} bad line(s) of {reader.nr_lines:,}{rate}",
                highlight=False,
            )
            return 2
        console.print(f"[green]valid[/]: {reader.nr_lines:,} lines{rate}", highlight=False)
        return 0

    def _json(
        self,
        args: argparse.Namespace,
        reader: TraceReader | None,
        counts: Counter[str],
        fatal: BadInput | None,
        elapsed: float,
    ) -> int:
        errors: list[dict[str, Any]] = [e.as_dict() for e in reader.errors] if reader else []
        if fatal is not None:
            _, _, tail = (fatal.where or "").rpartition(":")
            line = int(tail) if tail.isdigit() else None
            errors.append({"line": line, "field": fatal.field, "message": fatal.message, "kind": "fatal"})
            print(f"buddysim {self.name}: error: {fatal}", file=sys.stderr)
        bad = (reader.nr_bad_lines if reader else 0) + (fatal is not None)
        out = {
            "schema_version": 1,
            "file": args.file,
            "valid": not bad,
            "header": reader.header if reader else None,
            "lines": reader.nr_lines if reader else 0,
            "events": sum(counts.values()),
            "ops": dict(counts),
            "bad_lines": reader.nr_bad_lines if reader else 0,
            "errors": errors,
            "seconds": round(elapsed, 3),
        }
        print(json.dumps(out, sort_keys=True, separators=(",", ":"), default=str))
        return 2 if bad else 0
