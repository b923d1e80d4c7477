"""``buddysim litmus``: model-check refcount races under every model (docs/litmus.md)."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from buddysim.cli.base import Command
from buddysim.litmus.report import render, to_json
from buddysim.litmus.run import run_scenario
from buddysim.litmus.scenario import load_scenario

__all__ = ["LitmusCommand"]


def _models_arg(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more model names, comma-separated")
    return names


def _bound_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError("the bound must be between 1 and 10000 atomic steps")
    return n


class LitmusCommand(Command):
    """Explore every interleaving of litmus scenarios under refcount models; check the verdicts.

    Each scenario (TOML, see docs/litmus.md) is explored exhaustively under each model: every
    action is cut into the atomic steps the model's own code performs. Prints the verdict per
    invariant, states and schedules explored, time, and the shortest counterexample of each
    violation. Exit 0 when every verdict matches the scenario's expectation, 1 when one differs,
    2 on bad input.
    """

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("files", metavar="FILE", nargs="+", help="litmus scenario (.toml)")
        parser.add_argument(
            "--refcount",
            metavar="M[,M...]",
            type=_models_arg,
            help="models to explore: built-in or plug-in names, atomic_or, module:Class "
            "(default: the models the scenario names)",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        parser.add_argument(
            "--bound", type=_bound_arg, help="atomic steps one action may take before its branch is cut"
        )
        parser.add_argument("--no-por", action="store_true", help="explore without partial-order reduction")
        parser.add_argument(
            "--no-naive",
            action="store_true",
            help="skip the unreduced exploration that counts the naive interleavings",
        )
        parser.add_argument(
            "--witnesses", action="store_true", help="also print the shortest trace of each witness"
        )

    def run(self, args: argparse.Namespace) -> int:
        scenarios = [load_scenario(f) for f in args.files]  # bad input fails before any exploring
        results = [
            run_scenario(
                sc,
                args.refcount,
                naive=not args.no_naive,
                por=not args.no_por,
                bound=args.bound,
            )
            for sc in scenarios
        ]
        if args.json:
            print(json.dumps(to_json(results), sort_keys=True, separators=(",", ":")))
        else:
            render(results, Console(), witnesses=args.witnesses)
        return 0 if all(r.matches for r in results) else 1
