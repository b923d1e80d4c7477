"""The Command base class: name from the class, help from its docstring."""

from __future__ import annotations

import argparse
import re

__all__ = ["Command"]


class Command:
    """Base of every subcommand: ``prepare_parser`` adds options, ``run`` returns the exit code."""

    @property
    def name(self) -> str:
        base = type(self).__name__.removesuffix("Command")
        return re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()

    @property
    def summary(self) -> str:
        return (type(self).__doc__ or "").strip().splitlines()[0]

    def prepare_parser(self, parser: argparse.ArgumentParser) -> None:
        """Add this subcommand's arguments."""

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError
