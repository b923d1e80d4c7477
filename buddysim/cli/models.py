"""``buddysim models``: every refcount model, its kernel version, and (``--matrix``) its behaviour."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from buddysim.cli.base import Command
from buddysim.refcount.matrix import OPERATIONS, VALUE_CLASSES, matrix
from buddysim.refcount.registry import available_models, broken_plugins, get_model, get_site_table
from buddysim.refcount.sites import SITE_TABLES, SITES

__all__ = ["ModelsCommand"]


class ModelsCommand(Command):
    """List the refcount models (and site tables); --matrix shows what each function does."""

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--matrix",
            metavar="M[,M...]",
            nargs="?",
            const="all",
            help="run every page_ref function on every class of raw value (refcount.md §3.3) "
            "under each named model (default: all) with CONFIG_DEBUG_VM on",
        )
        parser.add_argument("--sites", action="store_true", help="also list the call-site tables")
        parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    def run(self, args: argparse.Namespace) -> int:
        models = available_models()
        if args.matrix and args.matrix != "all":
            for name in args.matrix.split(","):
                get_model(name)  # refuse a bad name before printing anything
        if args.json:
            return self._json(args, models)
        console = Console()
        table = Table(title="refcount models", title_justify="left")
        for col in ("name", "kernel version", "description", "sites"):
            table.add_column(col)
        for name, cls in models.items():
            table.add_row(name, cls.kernel, cls.description, get_site_table(name).name)
        console.print(table)
        broken = broken_plugins()
        if broken:
            err = Console(stderr=True)
            for name, why in broken.items():
                err.print(f"[yellow]warning:[/] plug-in {name!r} left out: {why}")
        if args.sites:
            self._print_sites(console)
        if args.matrix:
            names = list(models) if args.matrix == "all" else args.matrix.split(",")
            for name in names:
                self._print_matrix(console, name)
        return 0

    def _print_sites(self, console: Console) -> None:
        table = Table(title="call-site tables (--sites)", title_justify="left")
        table.add_column("site")
        for name in SITE_TABLES:
            table.add_column(name)
        for site in SITES:
            table.add_row(site, *(t.action(site).describe() for t in SITE_TABLES.values()))
        console.print(table)

    def _print_matrix(self, console: Console, name: str) -> None:
        cls = get_model(name)
        table = Table(
            title=f"{name}: return -> raw word after  (!check fired, BUG = operation stopped)",
            title_justify="left",
        )
        table.add_column("function")
        for label, _ in VALUE_CLASSES:
            table.add_column(label)
        for (label, _), row in zip(OPERATIONS, matrix(cls), strict=True):
            table.add_row(label, *(c.render() for c in row))
        console.print(table)

    def _json(self, args: argparse.Namespace, models: dict) -> int:
        out: dict = {
            "schema_version": 1,
            "models": {
                n: {"kernel": c.kernel, "description": c.description, "sites": get_site_table(n).name}
                for n, c in models.items()
            },
        }
        broken = broken_plugins()
        if broken:
            out["broken_plugins"] = broken
        if args.sites:
            out["site_tables"] = {
                t.name: {s: t.action(s).describe() for s in SITES} for t in SITE_TABLES.values()
            }
        if args.matrix:
            names = list(models) if args.matrix == "all" else args.matrix.split(",")
            out["matrix"] = {
                name: {
                    label: {
                        vlabel: {
                            "result": c.result,
                            "raw_after": c.raw_after,
                            "checks": list(c.checks),
                            "bug": c.bug,
                        }
                        for (vlabel, _), c in zip(VALUE_CLASSES, row, strict=True)
                    }
                    for (label, _), row in zip(OPERATIONS, matrix(get_model(name)), strict=True)
                }
                for name in names
            }
        print(json.dumps(out, sort_keys=True, separators=(",", ":")))
        return 0
