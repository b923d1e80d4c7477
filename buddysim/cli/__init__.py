"""The ``buddysim`` command line: one Command class per subcommand.

Exit codes (also in ``--help``): 0 ran clean; 1 findings (invariant violations, debug-check
hits); 2 bad usage or bad input (config, trace, file). Bad input never shows a traceback; an
internal error prints one line, and its traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from buddysim import __version__
from buddysim.cli.base import Command
from buddysim.cli.boot import BootCommand
from buddysim.cli.check_trace import CheckTraceCommand
from buddysim.cli.gen import GenCommand
from buddysim.cli.import_ import ImportCommand
from buddysim.cli.inspect import InspectCommand
from buddysim.cli.litmus import LitmusCommand
from buddysim.cli.models import ModelsCommand
from buddysim.cli.replay import ReplayCommand
from buddysim.cli.report import ReportCommand
from buddysim.cli.show import ShowCommand
from buddysim.errors import BadInput
from buddysim.refcount.registry import ModelLookupError

__all__ = ["EXIT_BAD_INPUT", "EXIT_CLEAN", "EXIT_FINDINGS", "main"]

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2

EPILOG = """\
exit codes:
  0  ran clean: every invariant held, no debug check fired
  1  findings: invariant violations, debug-check hits, bad pages (or a litmus verdict that
     differs from the scenario's expectation)
  2  bad usage or bad input: arguments, config, trace or file errors (file:line: field: what
     was expected), or an I/O error (unreadable input, output that cannot be written)
  3  internal error (a bug in buddysim; --debug shows the traceback)
"""

COMMANDS: tuple[type[Command], ...] = (
    ReplayCommand,
    ReportCommand,
    ShowCommand,
    BootCommand,
    ModelsCommand,
    CheckTraceCommand,
    LitmusCommand,
    ImportCommand,
    GenCommand,
    InspectCommand,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buddysim",
        description="Simulate the Linux buddy page allocator on a pluggable page-refcount model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"buddysim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cls in COMMANDS:
        cmd = cls()
        p = sub.add_parser(
            cmd.name,
            help=cmd.summary,
            description=cmd.__doc__,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.prepare_parser(p)
        p.set_defaults(_command=cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (``__main__`` passes it to ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help/--version exit 0, usage errors exit 2
        return int(e.code) if isinstance(e.code, int) else EXIT_BAD_INPUT
    cmd: Command | None = getattr(args, "_command", None)
    if cmd is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return cmd.run(args)
    except (BadInput, ModelLookupError) as e:
        print(f"buddysim {cmd.name}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("buddysim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN
    except MemoryError:
        print(
            f"buddysim {cmd.name}: error: not enough memory for this machine's page state "
            "(7 bytes per page of its span); use a smaller or less sparse machine",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except OSError as e:  # an I/O error at the edges (disk full, unreadable file): bad environment
        where = f"{e.filename}: " if e.filename else ""
        print(f"buddysim {cmd.name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:
        if args.debug:
            raise
        print(
            f"buddysim {cmd.name}: internal error: {type(e).__name__}: {e} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 3
