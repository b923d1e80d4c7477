"""The inverted encoding floated and rejected in the thread (Gladyshev, 6 Mar 2026).

Bit 31 *set* means live, so 0 means frozen: a memset of ``struct page``, ``__GFP_ZERO`` or
``set_page_count(page, 0)`` all leave a page frozen. Every read and every set must mask: a
live count n is stored as ``BIT | n``; getters strip the bit. "Hit zero" in dec-and-test is the
bare bit, and the CAS that claims the free swaps it for 0. Failed getters leave stale
increments below the bit; a getter that observes one at or above 2^30 CASes the word back to 0.

Not a kernel version: it exists to show that the plug-in interface carries a third encoding,
and to compare its safety with the posted one. Debug checks follow v4/v5 (final).
"""

from __future__ import annotations

import numpy as np

from buddysim.refcount.final import Final
from buddysim.refcount.page_ref import INT_MIN, wrap32

__all__ = ["PAGEREF_LIVE_BIT", "Inverted"]

PAGEREF_LIVE_BIT = INT_MIN
#: stale increments on a frozen (bit clear) word are reset at 2^30
_PAGEREF_STALE_LIMIT = 1 << 30


class Inverted(Final):
    """Bit 31 set = live, 0 = frozen; the encoding the thread rejected."""

    name = "inverted"
    kernel = "rejected proposal (Gladyshev, 6 Mar 2026); checks as v4/v5"
    description = "bit 31 set = live, 0 = frozen: memset/GFP_ZERO/set 0 leave pages frozen"
    default_sites = "inverted"
    ZERO = PAGEREF_LIVE_BIT  # "live with count 0": the abortable zero
    FROZEN = 0
    _returns_masked = True

    @staticmethod
    def is_frozen_raw(raw: int) -> bool:
        return raw >= 0

    @staticmethod
    def count_of_raw(raw: int) -> int:
        return raw - INT_MIN if raw < 0 else 0

    @staticmethod
    def frozen_mask(raw: np.ndarray) -> np.ndarray:
        return raw >= 0

    def zero_count_mask(self, raw: np.ndarray) -> np.ndarray:
        """Count 0: frozen (bit clear) or the abortable zero (the bare bit)."""
        return (raw >= 0) | (raw == PAGEREF_LIVE_BIT)

    def raw_for_count(self, v: int) -> int:
        """``set_page_count(page, v)`` stores ``BIT | v`` (0 stays 0: frozen)."""
        v = wrap32(v)
        return 0 if v == 0 else wrap32(PAGEREF_LIVE_BIT | (v & 0x7FFFFFFF))

    def page_count_is_frozen(self, count: int) -> bool:
        """On a raw word: frozen when the live bit is clear."""
        return count >= 0

    def set_page_count_frozen(self, page: int) -> None:
        """The frozen setter stores 0."""
        self.set_page_count(page, 0)

    def _over_limit(self, v: int) -> bool:
        return v >= _PAGEREF_STALE_LIMIT

    def page_ref_freeze(self, page: int, count: int) -> bool:
        """``atomic_cmpxchg(BIT | count -> 0) == BIT | count``."""
        expect = self.raw_for_count(count)
        ret = self.atomic_cmpxchg(page, expect, self.FROZEN) == expect
        self._trace("page_ref_freeze", page, count, int(ret))
        return ret

    def _check_and_test(self, function: str, page: int, nr: int, ret: bool, raw: int) -> None:
        # Final's check tests ``ret + nr`` for the bit; in this encoding that would always
        # "fire" (a small positive number is frozen), so the inverted model leaves it out.
        return
