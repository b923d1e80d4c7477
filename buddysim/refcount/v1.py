"""v1 of the series (26 Feb 2026): "mm: implement page refcount locking via dedicated bit".

``PAGEREF_LOCKED_BIT`` (bit 31) marks a locked (frozen) page. The speculative get becomes an
optimistic ``atomic_add_return()`` followed by a test of the bit; a getter that sees the word
at or above ``_PAGEREF_LOCKED_LIMIT`` (0xC0000000) CASes it back to the bare bit in a loop.
``page_ref_{sub,dec}_and_test`` subtract, and when they reach 0 try ``cmpxchg(0 -> LOCKED)``:
only that CAS decides the free. No call site is converted: ``__free_pages_core`` and the
others still write plain 0, which under these semantics means "no owner, gettable".

Simplified / inferred (refcount.md §4.8 marks them n/k for v1): the masked getters and
``page_ref_freeze`` storing the bit are taken from v2; v1 added no debug checks; the RCU read
lock and ``page_count_writable()`` of v1's base tree are not modelled.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from buddysim.refcount.baseline import Baseline
from buddysim.refcount.page_ref import INT_MIN, PAGEREF_BIT, u32, wrap32

__all__ = ["PAGEREF_LOCKED_BIT", "V1", "_PAGEREF_LOCKED_LIMIT", "FrozenBitModel"]

PAGEREF_LOCKED_BIT = PAGEREF_BIT
#: ``((1 << 30) | PAGEREF_LOCKED_BIT)`` as unsigned: 0xC0000000
_PAGEREF_LOCKED_LIMIT = 0xC0000000


class FrozenBitModel(Baseline):
    """What every bit-31 version shares: masked getters and the abortable zero.

    ``ZERO`` is the raw word meaning "the count just hit zero" (0 here); ``FROZEN`` is the raw
    word a successful final put or a freeze stores (the bit).
    """

    ZERO: ClassVar[int] = 0
    FROZEN: ClassVar[int] = PAGEREF_BIT
    LIMIT: ClassVar[int] = _PAGEREF_LOCKED_LIMIT

    @staticmethod
    def is_frozen_raw(raw: int) -> bool:
        return raw < 0

    _RUN_TEST = (is_frozen_raw.__func__, lambda raws: not raws or max(raws) < 0)

    @staticmethod
    def count_of_raw(raw: int) -> int:
        return 0 if raw < 0 else raw

    @staticmethod
    def frozen_mask(raw: np.ndarray) -> np.ndarray:
        return raw < 0

    def frozen_raw(self) -> int:
        return self.FROZEN

    def zero_count_mask(self, raw: np.ndarray) -> np.ndarray:
        return raw <= 0

    def page_ref_count(self, page: int) -> int:
        """``v = atomic_read(); return v & PAGEREF_*_BIT ? 0 : v`` (getters report 0 when frozen)."""
        return self.count_of_raw(self.atomic_read(page))

    def _over_limit(self, v: int) -> bool:
        """Is ``v`` in the stale-increment band a getter must reset?"""
        return u32(v) >= self.LIMIT

    def _sub_and_test(self, function: str, page: int, nr: int) -> bool:
        """``ret = atomic_sub_and_test(nr); if (ret) ret = atomic_cmpxchg_relaxed(0 -> bit) == 0``.

        A true result means "you own the free"; false after reaching zero means a speculative
        getter resurrected the page between the two steps and now owns the put.
        """
        ret = self.atomic_add_return(page, -nr) == self.ZERO
        if ret:
            ret = self.atomic_cmpxchg(page, self.ZERO, self.FROZEN) == self.ZERO
        self._check_and_test(function, page, nr, ret, self._w[page])
        if self.trace is not None:
            self._trace("page_ref_mod_and_test", page, -nr, int(ret))
        return ret

    def _add_unless_bit(self, page: int, nr: int) -> bool:
        """The optimistic add: ``v = atomic_add_return(nr); ret = !(v & bit)``, then the reset."""
        v = self.atomic_add_return(page, nr)
        ret = not self.is_frozen_raw(v)
        self._reset_stale(page, v)
        self._trace("page_ref_mod_unless", page, nr, int(ret))
        return ret

    def _reset_stale(self, page: int, v: int) -> None:
        """v1/v2: ``while (v >= LIMIT) v = atomic_cmpxchg_relaxed(&ref, v, bit);``"""
        while self._over_limit(v):
            v = self.atomic_cmpxchg(page, v, self.FROZEN)


class V1(FrozenBitModel):
    """v1 [PATCH 1/1] (26 Feb 2026): locked bit, optimistic get, 0xC0000000 reset loop."""

    name = "v1"
    kernel = "series v1 [PATCH 1/1], 26 Feb 2026 (RCU + page_count_writable base)"
    description = "locked bit 31, optimistic add_return, reset loop >= 0xC0000000; no sites converted"
    default_sites = "v1"

    def page_ref_add_unless_zero(self, page: int, nr: int) -> bool:
        """v1 ``page_ref_add_unless_zero``: optimistic add, fail on the locked bit, reset loop."""
        return self._add_unless_bit(page, nr)


assert wrap32(_PAGEREF_LOCKED_LIMIT) == INT_MIN + (1 << 30)
