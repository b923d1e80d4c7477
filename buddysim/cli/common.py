"""Options and helpers shared by the commands that build a machine (boot, replay, show, ...)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import Any

from buddysim.config import Config, config_from_dict, resolve_config
from buddysim.errors import BadInput
from buddysim.machine import Machine
from buddysim.refcount.page_ref import DebugVM
from buddysim.refcount.registry import ModelLookupError, get_model, get_site_table

__all__ = [
    "TRACE_HELP",
    "Progress",
    "add_machine_options",
    "add_trace_arguments",
    "build_machine",
    "check_output_path",
    "config_from_header",
    "model_list",
    "nonneg_int",
    "positive_int",
    "trace_config",
    "trace_models",
]


def positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


TRACE_HELP = "trace file (.jsonl, .jsonl.gz, .jsonl.xz; - for stdin)"


def add_trace_arguments(parser: argparse.ArgumentParser, trace_help: str = TRACE_HELP) -> None:
    """The TRACE positional and ``--config`` (a machine that overrides the trace header's)."""
    parser.add_argument("trace", metavar="TRACE", help=trace_help)
    parser.add_argument(
        "--config", metavar="X", help="machine preset or config file (overrides the trace header)"
    )


def add_machine_options(parser: argparse.ArgumentParser, *, many_models: bool = False) -> None:
    """--refcount, --sites, --debug-vm, --strict-setters, --fail-fast."""
    parser.add_argument(
        "--refcount",
        metavar="M[,M...]" if many_models else "M",
        help="refcount model (buddysim models): a name, a plug-in name or module:Class"
        + (
            "; a comma list runs every model on the same input and reports the first divergence"
            if many_models
            else ""
        ),
    )
    parser.add_argument(
        "--sites",
        metavar="M",
        help="call-site table: a table name (baseline, v1, v2, final, frag-unfreeze, inverted) or a "
        "model name (its own table); default: the model's",
    )
    parser.add_argument(
        "--debug-vm",
        choices=[d.value for d in DebugVM],
        default=DebugVM.BUG.value,
        help="CONFIG_DEBUG_VM: off (checks compiled out), warn (every check recorded, run goes on), "
        "bug (VM_BUG_ON stops the operation, VM_WARN_ON_ONCE once per site; default)",
    )
    parser.add_argument(
        "--strict-setters",
        action="store_true",
        help="report every raw set_page_count at a refcount call site (Zi Yan's proposed ban)",
    )
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first finding")


def model_list(spec: str | None, default: str) -> list[str]:
    """Validate a comma list of models (bad names: BadInput with the known ones)."""
    names = [n.strip() for n in (spec or default).split(",") if n.strip()]
    if not names:
        raise BadInput("--refcount: expected at least one model name")
    for n in names:
        get_model(n)
    return names


def config_from_header(machine: str | Mapping[str, Any], trace: str) -> Config:
    """The machine a trace header names: a preset or config path, or an inline config."""
    if isinstance(machine, str):
        try:
            return resolve_config(machine)
        except BadInput as e:
            raise BadInput(e.message, where=f"{trace}:1", field="header.machine") from None
    return config_from_dict(machine, source=f"{trace}: header.machine")


def trace_config(args: argparse.Namespace, header: Mapping[str, Any], trace: str) -> Config:
    """The machine of a run over a trace: ``--config``, else the one the header names."""
    return resolve_config(args.config) if args.config else config_from_header(header["machine"], trace)


def trace_models(
    args: argparse.Namespace, header: Mapping[str, Any], config: Config
) -> tuple[list[str], str | None]:
    """The refcount models of a run over a trace (``--refcount``, else the header's, else the
    config's) and its call-site table (``--sites``, else the header's; None: each model's own)."""
    models = model_list(args.refcount, header.get("refcount") or config.refcount)
    return models, args.sites if args.sites is not None else header.get("sites")


def build_machine(
    config: Config,
    args: argparse.Namespace,
    refcount: str | None = None,
    sites: str | None = None,
    **kw: Any,
) -> Machine:
    """A Machine from a config and the common options (explicit refcount/sites win)."""
    model = refcount or config.refcount
    site_spec = sites if sites is not None else args.sites
    if site_spec is not None:
        try:
            get_site_table(site_spec)
        except ModelLookupError:
            from buddysim.refcount.sites import SITE_TABLES

            raise BadInput(
                f"unknown call-site table {site_spec!r}; expected one of {', '.join(SITE_TABLES)} or a refcount model name",
                field="--sites",
            ) from None
    return Machine.from_config(
        config,
        refcount=model,
        sites=site_spec if site_spec is not None else config.sites,
        debug_vm=args.debug_vm,
        strict_setters=args.strict_setters,
        fail_fast=args.fail_fast,
        **kw,
    )


def check_output_path(path: str, force: bool, inputs: tuple[str, ...] = ()) -> None:
    """Refuse to overwrite an existing output file without --force, ever to replace something
    that is not a regular file (a device, a directory), or to write over one of the inputs."""
    if path == "-":
        return
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise BadInput("exists and is not a regular file; refusing to replace it", where=path)
        for i in inputs:
            if i != "-" and os.path.exists(i) and os.path.samefile(path, i):
                raise BadInput("is also an input of this command; refusing to write over it", where=path)
        if not force:
            raise BadInput("exists; pass --force to overwrite", where=path)
    parent = os.path.dirname(os.path.abspath(path))
    if path != "-" and not os.path.isdir(parent):
        raise BadInput(f"directory {parent} does not exist", where=path)


class Progress:
    """A transient progress line on stderr (TTY only), refreshed by the caller."""

    def __init__(self, enabled: bool) -> None:
        import sys

        self.enabled = enabled
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._file = sys.stderr

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        rate = n / (now - self._t0) if now > self._t0 else 0
        self._file.write(f"\r  {n:,} events  {rate:,.0f}/s ")
        self._file.flush()

    def close(self) -> None:
        if self.enabled:
            self._file.write("\r" + " " * 50 + "\r")
            self._file.flush()
