"""``buddysim gen KIND --seed S [--config C] -o out.jsonl [kind options]``: write a synthetic trace.

The generators live in :mod:`buddysim.trace.gen` (a registry of kinds, each with its options);
this command turns their options into flags, checks them (bad values exit 2 with a one-line
message), refuses to overwrite an existing file without ``--force``, and writes the trace with
the recorder (validated, compact, stable key order) to a temporary file renamed into place at
the end, so an interrupted run leaves no half trace behind. ``-o -`` writes to standard output.
The same seed and options always give the same bytes; the header's ``source`` line is the
command that regenerates the file.
"""

from __future__ import annotations

import argparse
import os
import sys

from buddysim.cli.base import Command
from buddysim.cli.common import check_output_path
from buddysim.errors import BadInput
from buddysim.trace.events import EVENT_ADAPTER, HEADER_ADAPTER
from buddysim.trace.gen import DEFAULT_CONFIG, GENERATORS, get_generator
from buddysim.trace.recorder import TraceRecorder, dumps_event, dumps_header

__all__ = ["GenCommand", "seed_arg"]


def seed_arg(text: str) -> int:
    """argparse ``type=``: a seed, an integer 0..2^63-1 (decimal or 0x hex)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"expected a seed 0..2^63-1, got {value}")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("every kind")
    g.add_argument("--seed", type=seed_arg, default=1, metavar="S", help="random seed (default: 1)")
    g.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="C",
        help=f"machine: a preset name or a TOML config file (default: {DEFAULT_CONFIG})",
    )
    g.add_argument(
        "-o", "--output", metavar="FILE", help="trace to write (.jsonl, .jsonl.gz, .jsonl.xz; - for stdout)"
    )
    g.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    g.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return common


class GenCommand(Command):
    """Generate a seeded synthetic trace (buddysim gen --list shows the kinds)."""

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--list", action="store_true", help="list the generator kinds and exit")
        sub = parser.add_subparsers(dest="kind", metavar="KIND")
        common = _common()
        for info in GENERATORS.values():
            p = sub.add_parser(
                info.name, help=info.description, description=info.description, parents=[common]
            )
            if info.options:
                g = p.add_argument_group(f"{info.name} options")
                for option in info.options:
                    option.add_to(g)

    def run(self, args: argparse.Namespace) -> int:
        if args.list or args.kind is None:
            if args.kind is None and not args.list:
                raise BadInput("give a KIND; buddysim gen --list shows them")
            width = max(len(n) for n in GENERATORS)
            for info in GENERATORS.values():
                print(f"{info.name:<{width}}  {info.description}")
            return 0
        info = get_generator(args.kind)
        if not args.output:
            raise BadInput("-o/--output is required (-o - writes to standard output)", field="-o")
        out: str = args.output
        check_output_path(out, args.force)
        options = {o.name: getattr(args, o.name) for o in info.options}
        trace = info.generate(args.seed, config=args.config, **options)
        if out == "-":
            stream = sys.stdout
            HEADER_ADAPTER.validate_python(trace.header)
            stream.write(dumps_header(trace.header) + "\n")
            n = 0
            for event in trace.events:
                EVENT_ADAPTER.validate_python(dict(event))
                stream.write(dumps_event(event) + "\n")
                n += 1
            stream.flush()
            if not args.quiet:
                print(f"buddysim gen {info.name}: {n} events (seed {args.seed})", file=sys.stderr)
            return 0
        directory, name = os.path.split(out)
        tmp = os.path.join(directory, f".{os.getpid()}.tmp.{name}")
        try:
            with TraceRecorder(tmp, trace.header) as recorder:
                n = recorder.write_many(trace.events)
            os.replace(tmp, out)
        except OSError as e:
            raise BadInput(f"cannot write trace: {e.strerror or e}", where=out) from None
        except BadInput as e:  # the recorder could not open the temporary file
            raise BadInput(e.message.replace(tmp, out), where=out) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if not args.quiet:
            size = os.path.getsize(out)
            print(f"wrote {out}: {n} events, {size:,} bytes (buddysim gen {info.name}, seed {args.seed})")
        return 0
