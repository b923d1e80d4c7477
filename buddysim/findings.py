"""Findings: what a run reports instead of crashing.

A finding is a small frozen record. The model creates them (debug checks, bad pages,
invariant violations, unfrozen pages entering a free list); the engine numbers them by
event; the edges (CLI, reports, UI) render them. Exit code 1 means "there were findings".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Finding", "FindingError", "VMBug", "fmt_raw"]


def fmt_raw(raw: int | None) -> str:
    """Render a raw 32-bit ``_refcount`` word as ``0xXXXXXXXX (signed)``."""
    if raw is None:
        return "-"
    return f"{raw & 0xFFFFFFFF:#010x} ({raw})"


@dataclass(frozen=True, slots=True)
class Finding:
    """One violated rule.

    ``kind`` is the family (``VM_BUG_ON``, ``VM_WARN_ON_ONCE``, ``unfrozen-free-entry``,
    ``bad_page``, ``invariant``, ...); ``function`` is the kernel function holding the check;
    ``check`` is the check as the kernel version wrote it.
    """

    kind: str
    function: str
    check: str
    model: str
    pfn: int | None = None
    raw_before: int | None = None
    raw_after: int | None = None
    order: int | None = None
    count: int = 1
    message: str = ""
    chain: tuple[str, ...] = ()
    sites: str | None = None
    event: int | None = None
    extra: tuple[tuple[str, object], ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (reports, --json, data files)."""
        return {
            "event": self.event,
            "kind": self.kind,
            "function": self.function,
            "check": self.check,
            "pfn": self.pfn,
            "order": self.order,
            "raw_before": self.raw_before,
            "raw_after": self.raw_after,
            "count": self.count,
            "model": self.model,
            "sites": self.sites,
            "chain": list(self.chain),
            "message": self.message,
        }

    def at_event(self, event: int | None, chain: tuple[str, ...] = ()) -> Finding:
        """The same finding, numbered by trace event and given its call chain."""
        return replace(self, event=event, chain=chain or self.chain)

    def describe(self) -> str:
        """One line for humans: where, what, which raw value."""
        where = f"event {self.event}: " if self.event is not None else ""
        pfn = f" pfn {self.pfn:#x}" if self.pfn is not None else ""
        order = f" order {self.order}" if self.order is not None else ""
        raw = ""
        if self.raw_before is not None or self.raw_after is not None:
            raw = f" raw {fmt_raw(self.raw_before)} -> {fmt_raw(self.raw_after)}"
        chain = f" via {' > '.join(self.chain)}" if self.chain else ""
        msg = f": {self.message}" if self.message else ""
        return (
            f"{where}{self.kind} in {self.function} [{self.check}]{pfn}{order}{raw}"
            f" model={self.model}{chain}{msg}"
        )


class FindingError(Exception):
    """Raised when a finding must stop the operation in progress (a BUG, or --fail-fast)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


class VMBug(FindingError):
    """A ``VM_BUG_ON*`` that fired with debug_vm=bug: the kernel would oops here."""
