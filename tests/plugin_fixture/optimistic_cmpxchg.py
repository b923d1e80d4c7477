"""A buddysim refcount plug-in: Linus Torvalds's optimistic-cmpxchg try-get (refcount.md §2.4).

Upstream semantics (a frozen page holds 0), except the speculative get: instead of reading
the counter and then CASing, it guesses that the count is 1 and lets a failed cmpxchg
report the real value ("optimistic cmpxchg assuming count==1", 1 Mar 2026).
"""

from __future__ import annotations

from buddysim.refcount.baseline import Baseline
from buddysim.refcount.sites import SITE_TABLES

__all__ = ["OptimisticCmpxchg"]


class OptimisticCmpxchg(Baseline):
    """Upstream page_ref.h with Linus's optimistic-cmpxchg ``page_ref_add_unless_zero()``."""

    name = "optimistic-cmpxchg"
    kernel = "Linus Torvalds, 1 Mar 2026 (tested alternative on top of upstream, not merged)"
    description = "upstream: frozen means 0; try-get is a cmpxchg loop that starts from a guess of 1"
    # Inherited from Baseline: the encoding (is_frozen_raw, count_of_raw, frozen_mask,
    # frozen_raw), the frozen setter set_page_count(page, 0), speculative_get =
    # "page_ref_add_unless_zero" and the API set. Optional: the call-site table.
    SITE_TABLE = SITE_TABLES["baseline"].with_actions(
        "optimistic-cmpxchg", "upstream call sites (the alternative changes only the try-get)"
    )

    def page_ref_add_unless_zero(self, page: int, nr: int) -> bool:
        """``old = 1; while (!try_cmpxchg(&ref, &old, old + nr)) if (!old) fail;``"""
        old = 1
        while True:
            found = self.atomic_cmpxchg(page, old, old + nr)
            if found == old:
                ret = True
                break
            old = found  # a failed try_cmpxchg refreshes old with the current value
            if old == 0:
                ret = False
                break
        self._trace("page_ref_mod_unless", page, nr, int(ret))
        return ret
