"""v3 of the series (4 Jun 2026).

v3 renamed the speculative get to ``page_ref_add_unless_frozen`` (Linus's request (a)) and
turned the reset into an ``atomic_try_cmpxchg_relaxed`` loop; its frozen setter still stored 0.
Its debug checks were "never firing" (v4 changelog): modelled as the corrected predicate
``count & PAGEREF_FROZEN_BIT`` applied to the masked ``page_count()``, which is never negative.

Inferred (refcount.md §4.7/§4.8: v3 bodies are not known): the check text and the function
name of the setter (``set_page_count_as_frozen``, renamed only in v4).
"""

from __future__ import annotations

from buddysim.refcount.page_ref import PAGEREF_BIT, api_with
from buddysim.refcount.v2 import V2

__all__ = ["V3"]


class V3(V2):
    """v3: `_unless_frozen` name, try_cmpxchg reset, setter still stores 0, checks never fire."""

    name = "v3"
    kernel = "series v3 1/2 + 2/2, 4 Jun 2026 (bodies inferred)"
    description = "as v2 renamed _unless_frozen; checks test a masked value and never fire"
    speculative_get = "page_ref_add_unless_frozen"
    default_sites = "v2"
    API = api_with(
        "folio_set_count",
        "page_ref_add_unless_frozen",
        "folio_ref_add_unless_frozen",
        "set_page_count_as_frozen",
    )

    def page_count_is_frozen(self, count: int) -> bool:
        """``count & PAGEREF_FROZEN_BIT``, here always applied to a masked (>= 0) value."""
        return bool(count & PAGEREF_BIT)

    def _check_old(self, function: str, page: int, old: int, new: int) -> None:
        """The v3 check on the old value, applied (like every v3 check) to a masked count."""
        super()._check_old(function, page, self.count_of_raw(old), new)

    def _reset_stale(self, page: int, v: int) -> None:
        """``while (v >= LIMIT) if (atomic_try_cmpxchg_relaxed(&ref, &v, bit)) break;``"""
        while self._over_limit(v):
            ok, v = self.atomic_try_cmpxchg(page, v, self.FROZEN)
            if ok:
                break

    def page_ref_add_unless_frozen(self, page: int, nr: int) -> bool:
        return self._add_unless_bit(page, nr)

    def folio_ref_add_unless_frozen(self, folio: int, nr: int) -> bool:
        return self.page_ref_add_unless_frozen(folio, nr)
