"""``buddysim report``: replay a trace and write one self-contained HTML file with plots over time."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any

from buddysim import __version__
from buddysim.cli.base import Command
from buddysim.cli.common import (
    Progress,
    add_machine_options,
    add_trace_arguments,
    build_machine,
    check_output_path,
    nonneg_int,
    positive_int,
    trace_config,
    trace_models,
)
from buddysim.engine import EndOfTrace, Engine
from buddysim.errors import BadInput
from buddysim.findings import FindingError
from buddysim.lockstep import Feed, run_lockstep
from buddysim.report.html import render_report
from buddysim.report.series import (
    DATA_FILES,
    DEFAULT_MAX_POINTS,
    Sampler,
    check_data_dir,
    default_index_orders,
    report_data,
    write_data_dir,
)
from buddysim.trace import directed
from buddysim.trace.reader import TraceReader

__all__ = ["ReportCommand"]


def _orders_arg(text: str) -> list[int]:
    try:
        orders = sorted({int(x, 0) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of orders, got {text!r}") from None
    if not orders or orders[0] < 0:
        raise argparse.ArgumentTypeError(f"expected a comma list of orders >= 0, got {text!r}")
    return orders


def _max_points_arg(text: str) -> int:
    v = positive_int(text)
    if v < 16:
        raise argparse.ArgumentTypeError(f"expected at least 16 points, got {text!r}")
    return v


def _default_data_dir(output: str) -> str:
    root, ext = os.path.splitext(output)
    return (root if ext.lower() in (".html", ".htm") else output) + "-data"


class ReportCommand(Command):
    """Replay a trace and write a self-contained HTML report with plots over event time.

    One file (inline SVG and CSS, no script needed, no URL: it opens offline and can be attached
    to a mail): the run's header and verdict; per zone, over event time, free pages per order
    (stacked), nr_free per migratetype, the unusable-free-space and fragmentation indices
    (default orders PAGE_ALLOC_COSTLY_ORDER and pageblock_order), pcp pages per CPU, managed vs
    free; a pageblock map at the end and at each mark; findings as markers and a table. With
    several models (--refcount baseline,final) the same plots side by side and the first
    divergence marked. The numbers behind every plot go to --data-dir as CSV and JSON.
    The state is sampled every N events; N adapts (doubles) to keep at most --max-points points.
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        add_trace_arguments(parser)
        parser.add_argument(
            "-o", "--output", metavar="REPORT.html", required=True, help="the HTML file to write"
        )
        add_machine_options(parser, many_models=True)
        parser.add_argument(
            "--every",
            metavar="N",
            type=positive_int,
            default=1,
            help="sample every N events to start with (default 1); the interval doubles whenever "
            "more than --max-points samples are held",
        )
        parser.add_argument(
            "--max-points",
            metavar="P",
            type=_max_points_arg,
            default=DEFAULT_MAX_POINTS,
            help=f"most samples held per model (default {DEFAULT_MAX_POINTS}: a 10M-event trace keeps 2000-4000)",
        )
        parser.add_argument(
            "--index-orders",
            metavar="O[,O...]",
            type=_orders_arg,
            help="orders of the fragmentation-index plots (default PAGE_ALLOC_COSTLY_ORDER=3 and pageblock_order)",
        )
        parser.add_argument(
            "--data-dir",
            metavar="DIR",
            help="where the CSV/JSON data go (default: REPORT-data next to the HTML file)",
        )
        parser.add_argument(
            "--check-every",
            metavar="N",
            type=nonneg_int,
            default=100_000,
            help="run the whole-zone invariant sweeps every N events (0: only at the end; default 100000)",
        )
        parser.add_argument("--force", action="store_true", help="overwrite the HTML file and the data files")
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress line, no closing line")

    def run(self, args: argparse.Namespace) -> int:
        out = args.output
        if out == "-":
            raise BadInput("the report is a file: pass a path to -o", field="-o")
        check_output_path(out, args.force, (args.trace,))
        data_dir = args.data_dir or _default_data_dir(out)
        check_data_dir(data_dir, args.force)
        with TraceReader(args.trace) as reader:
            header = reader.header
            config = trace_config(args, header, args.trace)
            models, sites = trace_models(args, header, config)
            index_orders = args.index_orders or default_index_orders(config.pageblock_order)
            if index_orders[-1] > config.max_page_order:
                raise BadInput(
                    f"orders are 0..{config.max_page_order} (MAX_PAGE_ORDER), got {index_orders[-1]}",
                    field="--index-orders",
                )
            feed = Feed() if len(models) > 1 else None
            engines: list[Engine] = []
            samplers: list[Sampler] = []
            for m in models:
                mm = build_machine(config, args, refcount=m, sites=sites)
                e = Engine(
                    mm,
                    feed if feed is not None else reader,
                    strict=True,
                    check_every=args.check_every,
                    path=args.trace,
                )
                engines.append(e)
                samplers.append(Sampler(e, every=args.every, max_points=args.max_points))
            # traces imported from ftrace carry recorded-only ops: replay them directed
            glue = directed.install(engines, header) if directed.is_directed_source(header) else []
            t0 = time.perf_counter()
            try:
                divergence = self._drive(args, reader, engines, feed)
            except FindingError:
                divergence = None  # --fail-fast: the finding is recorded; stop here
            for g in glue:
                g.finish()
            for e, s in zip(engines, samplers, strict=True):
                if not (args.fail_fast and e.mm.nr_findings):
                    try:
                        e.finish()
                    except FindingError:
                        pass
                s.finish()
            elapsed = time.perf_counter() - t0
        data = report_data(
            samplers, trace=args.trace, header=dict(header), index_orders=index_orders, divergence=divergence
        )
        events = engines[0].index
        timing = {"seconds": elapsed, "events_per_second": events / elapsed if elapsed > 0 else 0}
        written = write_data_dir(data, data_dir)
        rel = [os.path.relpath(p, os.path.dirname(os.path.abspath(out))) for p in written]
        page = render_report(
            data, timing=timing, data_files=rel, command=_command_line(args), version=__version__
        )
        _write_atomically(out, page)
        if not args.quiet:
            size = os.path.getsize(out)
            runs = data["runs"][0]
            print(
                f"{out}: {size / 1024:,.0f} KiB, {len(runs['sample_events'])} points (every {data['every']} events) "
                f"of {events:,} events in {elapsed:.2f} s; data: {data_dir}/ ({len(DATA_FILES)} files); "
                f"verdict: {data['verdict']}"
            )
        return 1 if any(e.mm.nr_findings for e in engines) else 0

    def _drive(
        self, args: argparse.Namespace, reader: TraceReader, engines: list[Engine], feed: Feed | None
    ) -> dict[str, Any] | None:
        """Step every engine through the trace (in lockstep when several); the first divergence."""
        progress = Progress(enabled=not args.quiet and sys.stderr.isatty())
        try:
            if feed is None:
                engine = engines[0]
                while True:
                    try:
                        engine.step()
                    except EndOfTrace:
                        break
                    if not engine.index & 8191:
                        progress.update(engine.index)
                return None

            def tick(index: int) -> None:
                if not index & 8191:
                    progress.update(index)

            return run_lockstep(reader, engines, feed, on_step=tick, observe_after_divergence=False)
        finally:
            progress.close()


def _command_line(args: argparse.Namespace) -> str:
    """The command that made the page, rebuilt from the options that change its content."""
    parts = ["buddysim", "report", args.trace, "-o", args.output]
    for flag, value in (
        ("--refcount", args.refcount),
        ("--sites", args.sites),
        ("--config", args.config),
        ("--every", args.every if args.every != 1 else None),
        ("--max-points", args.max_points if args.max_points != DEFAULT_MAX_POINTS else None),
        ("--index-orders", ",".join(map(str, args.index_orders)) if args.index_orders else None),
        ("--data-dir", args.data_dir),
        ("--debug-vm", args.debug_vm if args.debug_vm != "bug" else None),
    ):
        if value is not None:
            parts += [flag, str(value)]
    if args.strict_setters:
        parts.append("--strict-setters")
    return " ".join(shlex.quote(p) for p in parts)


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise BadInput(f"cannot write the report: {e.strerror or e}", where=path) from None
