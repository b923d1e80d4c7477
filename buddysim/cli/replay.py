"""``buddysim replay``: replay a trace against the model and report what it found."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console

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
from buddysim.engine import EndOfTrace, Engine, StepResult
from buddysim.findings import FindingError
from buddysim.lockstep import Feed, run_lockstep
from buddysim.report.summary import render_text, summary_data
from buddysim.trace import directed
from buddysim.trace.reader import DEFAULT_MAX_ERRORS, TraceReader

__all__ = ["ReplayCommand", "resolved_event"]


def resolved_event(engine: Engine, r: StepResult) -> dict[str, Any]:
    """The event as the engine performed it: handles resolved to pfns, observed results added."""
    ev = dict(r.event)
    op = r.op
    if op in ("alloc_pages", "alloc_frozen_pages"):
        ev["pfn"] = r.value
    elif op == "page_frag_alloc":
        if r.value is None:
            ev["pfn"] = None
        else:
            from buddysim.mm.page_frag_cache import PAGE_OFFSET

            off = r.value - PAGE_OFFSET  # type: ignore[operator]
            ev["pfn"] = off >> 12
            ev["offset"] = off & 0xFFF
    elif "handle" in ev and op not in ("page_frag_free",):
        rec = engine.handles.get(ev["handle"]) or engine.freed_handles.get(ev["handle"])
        if rec is not None:
            del ev["handle"]
            ev["pfn"] = rec[0]
    if op in ("folio_try_get",) and isinstance(r.value, bool):
        ev["ret"] = r.value
    if op == "page_ref" and isinstance(r.value, bool | int) and not isinstance(r.value, type(None)):
        v = r.value
        if isinstance(v, bool) or -(1 << 31) <= v < (1 << 31):
            ev["ret"] = v
    return ev


class ReplayCommand(Command):
    """Replay a trace (JSON Lines, docs/trace-format.md) against the allocator and refcount model.

    Prints the effective config, per-zone free blocks, an "nr_free_pages: N (verified)" line,
    findings grouped by kind and kernel function, and throughput. With several models
    (--refcount baseline,final) the same trace runs under each and the first event where their
    observable results differ (values returned, blocks freed, findings) is reported.
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        add_trace_arguments(parser)
        add_machine_options(parser, many_models=True)
        parser.add_argument(
            "--check-every",
            metavar="N",
            type=nonneg_int,
            default=100_000,
            help="run the whole-zone invariant sweeps every N events (0: only at the end; default 100000)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable report on stdout")
        parser.add_argument(
            "--record", metavar="OUT.jsonl", help="write the events as performed, pfns resolved"
        )
        parser.add_argument("--force", action="store_true", help="overwrite the --record file")
        parser.add_argument(
            "--continue-on-error",
            action="store_true",
            help="skip bad lines and trace anomalies and count them (the exit code is still 2 if any)",
        )
        parser.add_argument("--max-errors", metavar="N", type=positive_int, default=DEFAULT_MAX_ERRORS)
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        directed.add_replay_options(parser)

    def run(self, args: argparse.Namespace) -> int:
        if args.record:
            check_output_path(args.record, args.force, (args.trace,))
        with TraceReader(
            args.trace, continue_on_error=args.continue_on_error, max_errors=args.max_errors
        ) as reader:
            header = reader.header
            config = trace_config(args, header, args.trace)
            self._setup = directed.replay_setup(args, header)
            if self._setup.initial_state is not None and self._setup.initial_state.config and not args.config:
                config = self._setup.initial_state.config  # --initial-state BOOT.LOG: the captured machine
            models, sites = trace_models(args, header, config)
            feed = Feed() if len(models) > 1 else None
            engines = []
            for m in models:
                mm = build_machine(config, args, refcount=m, sites=sites)
                engines.append(
                    Engine(
                        mm,
                        feed if feed is not None else reader,
                        strict=not args.continue_on_error,
                        check_every=args.check_every,
                        path=args.trace,
                    )
                )
            directed.replay_attach(self._setup, engines, header)
            recorder = self._recorder(args, header, engines[0]) if args.record else None
            t0 = time.perf_counter()
            try:
                divergence = self._drive(args, reader, engines, feed, recorder)
            except FindingError:
                divergence = None  # --fail-fast: the finding is recorded; stop here
            finally:
                if recorder is not None:
                    recorder.close()
            elapsed = time.perf_counter() - t0
            directed.replay_finish(self._setup)
            for e in engines:
                if not (args.fail_fast and e.mm.nr_findings):
                    try:
                        e.finish()
                    except FindingError:
                        pass
            bad_lines = reader.nr_bad_lines
            errors = [err.render() for err in reader.errors]
        return self._report(args, header, engines, divergence, elapsed, bad_lines, errors)

    # ------------------------------------------------------------------ driving
    def _recorder(self, args: argparse.Namespace, header: dict[str, Any], engine: Engine) -> Any:
        from buddysim.trace.recorder import TraceRecorder, make_header

        mm = engine.mm
        h = make_header(
            header["machine"] if not args.config else args.config,
            refcount=mm.refs.name,
            sites=mm.sites.name,
            seed=header.get("seed"),
            source=f"buddysim replay --record of {args.trace}",
        )
        return TraceRecorder(args.record, h, validate=False)

    def _drive(
        self,
        args: argparse.Namespace,
        reader: TraceReader,
        engines: list[Engine],
        feed: Feed | None,
        recorder: Any,
    ) -> dict[str, Any] | None:
        progress = Progress(enabled=not args.quiet and not args.json and sys.stderr.isatty())
        observe = feed is not None or recorder is not None
        try:
            if feed is None:
                engine = engines[0]
                if not observe:
                    engine.run(tick=progress.update)
                    return None
                while True:
                    try:
                        r = engine.step_result(observe=True)
                    except EndOfTrace:
                        break
                    recorder.write(resolved_event(engine, r))
                    if not engine.index & 8191:
                        progress.update(engine.index)
                return None

            def record(results: list[StepResult]) -> None:
                if recorder is not None:
                    recorder.write(resolved_event(engines[0], results[0]))

            def tick(index: int) -> None:
                if not index & 8191:
                    progress.update(index)

            return run_lockstep(reader, engines, feed, record, tick)
        finally:
            progress.close()

    # ------------------------------------------------------------------ reporting
    def _report(
        self,
        args: argparse.Namespace,
        header: dict[str, Any],
        engines: list[Engine],
        divergence: dict[str, Any] | None,
        elapsed: float,
        bad_lines: int,
        errors: list[str],
    ) -> int:
        events = engines[0].index
        rate = events / elapsed if elapsed > 0 else 0.0
        reports = []
        for e in engines:
            extra = {
                "command": "replay",
                "trace": args.trace,
                "seed": header.get("seed"),
                "source": header.get("source"),
                "events": e.index,
                "anomalies": e.nr_anomalies,
                "anomaly_samples": [f"{args.trace}:{a.line}: {a.op}: {a.message}" for a in e.anomalies[:20]],
                "bad_lines": bad_lines,
                "bad_line_samples": errors,
                "marks": e.marks,
                "seconds": round(elapsed, 6),
                "events_per_second": round(rate),
            }
            reports.append(summary_data(e.mm, extra))
        directed.replay_reports(self._setup, engines, reports)
        if args.json:
            out: dict[str, Any] = (
                reports[0]
                if len(reports) == 1
                else {
                    "schema_version": 1,
                    "models": reports,
                    "divergence": divergence,
                }
            )
            if len(reports) == 1:
                out["divergence"] = divergence
            json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"), default=str)
            sys.stdout.write("\n")
        else:
            console = Console(width=None if sys.stdout.isatty() else 120)
            for data, e in zip(reports, engines, strict=True):
                lines = [
                    f"trace {args.trace}  events {e.index}  seed {header.get('seed')}  "
                    f"source {header.get('source') or '-'}",
                    f"{rate:,.0f} events/s ({elapsed:.2f} s)",
                ]
                if e.nr_anomalies:
                    lines.append(
                        f"{e.nr_anomalies} trace anomalies skipped, e.g. {data['anomaly_samples'][0]}"
                    )
                if bad_lines:
                    lines.append(f"{bad_lines} bad lines skipped, e.g. {errors[0] if errors else ''}")
                render_text(data, console, lines)
                directed.replay_render(data, console)
            if len(engines) > 1:
                if divergence is None:
                    console.print("models agree on every observable result")
                else:
                    console.print(
                        f"[bold]first divergence[/] at event {divergence['event']} "
                        f"({args.trace}:{divergence['line']}, {divergence['op']}):"
                    )
                    for name, obs in divergence["models"].items():
                        console.print(
                            f"  {name}: value={obs['value']} freed={obs['freed']} findings={obs['findings']}"
                        )
        if bad_lines or any(e.nr_anomalies for e in engines):
            return 2
        return 1 if any(e.mm.nr_findings for e in engines) else 0
