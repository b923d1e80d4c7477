"""Errors that mean "bad input" (exit 2): they carry a message fit for the user, no traceback."""

from __future__ import annotations

__all__ = ["BadInput"]


class BadInput(Exception):
    """Bad usage, config, trace or file: the CLI prints the message and exits 2.

    ``where`` is ``file:line`` (or a file name) when known; ``field`` the offending key.
    """

    def __init__(self, message: str, where: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.where = where
        self.field = field
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.where, self.field) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
