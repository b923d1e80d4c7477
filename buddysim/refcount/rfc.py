"""The RFC of the series (19 Dec 2025): locked bit with a one-shot reset.

As v1, except the failure path: a getter that finds the bit set issues one
``atomic_cmpxchg_relaxed(&ref, v, PAGEREF_LOCKED_BIT)`` to wipe stale increments, with no
threshold and no loop ("best effort", RFC cover letter "Drawbacks"; Gladyshev's 13 Jan 2026
recap). Simplified: as v1 (masked getters and freeze-to-bit inferred).
"""

from __future__ import annotations

from buddysim.refcount.v1 import V1

__all__ = ["RFC"]


class RFC(V1):
    """RFC 2/2 (19 Dec 2025): optimistic get, one reset CAS after every failed add."""

    name = "rfc"
    kernel = "series RFC 2/2, 19 Dec 2025"
    description = "locked bit 31, optimistic add_return, one-shot reset CAS; no sites converted"
    default_sites = "v1"

    def _reset_stale(self, page: int, v: int) -> None:
        """``if (!ret) atomic_cmpxchg_relaxed(&ref, v, LOCKED)``: one attempt, any value."""
        if self.is_frozen_raw(v):
            self.atomic_cmpxchg(page, v, self.FROZEN)
