"""``buddysim import FORMAT ...``: turn real kernel output into buddysim inputs.

One sub-subcommand per format: ``dmesg`` (a boot log to a machine config) and ``ftrace`` (kmem
and page_ref events to a trace), each an :class:`Importer`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from buddysim.cli.base import Command
from buddysim.errors import BadInput

__all__ = ["DmesgImporter", "FtraceImporter", "ImportCommand", "Importer"]

MAX_PROBLEMS_SHOWN = 20


class Importer:
    """One ``buddysim import`` format: its own arguments and run (returns the exit code)."""

    name = ""
    help = ""

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def _write_output(path: str | None, text: str, force: bool) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    out = Path(path)
    if out.exists() and not force:
        raise BadInput("exists; use --force to overwrite it", where=str(out))
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot write: {e.strerror}", where=str(out)) from None


class DmesgImporter(Importer):
    """A kernel boot log (dmesg, journalctl -k, syslog) to a machine config (TOML)."""

    name = "dmesg"
    help = "a kernel boot log to a machine config (and the boot figures for boot --compare)"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("log", metavar="BOOT.LOG", help="the boot log (with or without timestamps)")
        parser.add_argument(
            "-o", "--output", metavar="MACHINE.TOML", help="write the machine config here (default: stdout)"
        )
        parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
        parser.add_argument("--name", help="the machine's name (default: from the log's file name)")
        parser.add_argument(
            "--figures",
            action="store_true",
            help="print the log's boot figures (present pages per zone, Total pages, Memory: line) as JSON "
            "on stdout instead of the config",
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")

    def run(self, args: argparse.Namespace) -> int:
        from buddysim.trace.importers.dmesg import import_dmesg

        result = import_dmesg(args.log, name=args.name)
        for p in result.problems[:MAX_PROBLEMS_SHOWN]:
            print(f"buddysim import: warning: {p.render()}", file=sys.stderr)
        if len(result.problems) > MAX_PROBLEMS_SHOWN:
            print(
                f"buddysim import: warning: ... and {len(result.problems) - MAX_PROBLEMS_SHOWN} more "
                "unparsable lines",
                file=sys.stderr,
            )
        if args.figures:
            doc = {"schema_version": 1, "figures": result.figures.to_dict()}
            print(json.dumps(doc, sort_keys=True, separators=(",", ":")))
            if args.output:
                _write_output(args.output, result.toml, args.force)
        else:
            _write_output(args.output, result.toml, args.force)
        if not args.quiet:
            cfg = result.config
            pages = sum(e - s for s, e, _ in cfg.memory_ranges) // 4096
            where = args.output if args.output and args.output != "-" else "stdout"
            print(
                f"buddysim import: {args.log}: {len(cfg.nodes)} node(s), {pages} pages "
                f"({pages * 4096 / (1 << 30):.2f} GiB), {len(cfg.reserved)} reserved range(s), "
                f"nr_cpus {cfg.nr_cpus}; config written to {where}",
                file=sys.stderr,
            )
        return 0


class FtraceImporter(Importer):
    """kmem and page_ref events (ftrace trace/trace_pipe, trace-cmd report, perf script) to a trace.

    The trace carries every event's pfn and CPU; replay it with `buddysim replay` (directed
    replay is automatic for ftrace imports). Unknown events are counted and skipped; malformed
    lines are reported as FILE:LINE: what was expected. .gz and .xz inputs are read directly.
    """

    name = "ftrace"
    help = "kmem/page_ref tracepoint text (ftrace, trace-cmd report, perf script) to a buddysim trace"

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "text", metavar="TRACE.txt", help="the trace text (.gz/.xz read directly; - for stdin)"
        )
        parser.add_argument(
            "-o", "--output", metavar="OUT.jsonl", help="the buddysim trace (default: stdout)"
        )
        parser.add_argument("--force", action="store_true", help="overwrite an existing --output file")
        parser.add_argument(
            "--config",
            metavar="X",
            help="the captured machine: a preset name or a machine TOML (buddysim import dmesg); default: "
            "the smallest x86-64 preset holding every pfn seen, with a warning",
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="no summary or progress on stderr")

    def run(self, args: argparse.Namespace) -> int:
        from buddysim.trace.importers.ftrace import import_ftrace

        output = args.output or "-"
        if output != "-" and Path(output).exists() and not args.force:
            raise BadInput("exists; use --force to overwrite it", where=output)
        result = import_ftrace(
            args.text, output, config=args.config, progress=not args.quiet and sys.stderr.isatty()
        )
        st = result.stats
        for p in st.problems[:MAX_PROBLEMS_SHOWN]:
            print(f"buddysim import: warning: {p.render()}", file=sys.stderr)
        if st.malformed > MAX_PROBLEMS_SHOWN:
            print(
                f"buddysim import: warning: ... and {st.malformed - MAX_PROBLEMS_SHOWN} more malformed lines",
                file=sys.stderr,
            )
        for note in result.notes:
            print(f"buddysim import: warning: {note}", file=sys.stderr)
        if st.gfp_unknown:
            names = ", ".join(f"{k} ({n})" for k, n in st.gfp_unknown.most_common(10))
            print(f"buddysim import: warning: unknown gfp flag names dropped: {names}", file=sys.stderr)
        if not args.quiet:
            where = output if output != "-" else "stdout"
            events = ", ".join(f"{k} {n}" for k, n in sorted(st.events.items()))
            unknown = sum(st.unknown_events.values())
            rate = st.lines / result.seconds if result.seconds > 0 else 0.0
            print(
                f"buddysim import: {args.text}: {st.lines} lines, {st.events_written} events written to "
                f"{where} ({events}); {unknown} unknown events skipped, {st.malformed} malformed lines, "
                f"{st.lost_events} events lost by the tracer; {rate:,.0f} lines/s",
                file=sys.stderr,
            )
        return 0


IMPORTERS: tuple[type[Importer], ...] = (DmesgImporter, FtraceImporter)


class ImportCommand(Command):
    """Import real kernel output: `import dmesg BOOT.LOG -o machine.toml`."""

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="import_format", metavar="FORMAT", required=True)
        for cls in IMPORTERS:
            imp = cls()
            p = sub.add_parser(imp.name, help=imp.help, description=cls.__doc__)
            imp.prepare_parser(p)
            p.set_defaults(_importer=imp)

    def run(self, args: argparse.Namespace) -> int:
        importer: Importer = args._importer
        return importer.run(args)
