"""Upstream page_ref.h: "frozen means 0" (baseline B1 of refcount.md §4.0, = Linux 7.x API).

The speculative get ``page_ref_add_unless_zero()`` is ``atomic_add_unless(&_refcount, nr, 0)``,
a read and a CAS loop; a frozen, free or dead page holds 0; freeing is decided atomically by
``atomic_sub_and_test``.

Simplified: B0's RCU read lock and ``page_count_writable()`` (fake-head checks) are not
modelled (Kiryl Shutsemau's "mm: Drop fake head checks" removed them in B1).
"""

from __future__ import annotations

import numpy as np

from buddysim.refcount.page_ref import (
    DebugCheck,
    PageRefModel,
    api_with,
    wrap32,
)

__all__ = ["Baseline"]


class Baseline(PageRefModel):
    """Upstream include/linux/page_ref.h (mainline / mm-new, early 2026; Linux 7.x)."""

    name = "baseline"
    kernel = "Linux 7.2 (upstream page_ref.h; mm-new B1 of spring 2026)"
    description = "upstream: frozen means 0; add-unless-zero is a read + CAS loop"
    frozen_setter = "set_page_count"
    speculative_get = "page_ref_add_unless_zero"
    default_sites = "baseline"
    API = api_with("folio_set_count", "page_ref_add_unless_zero", "folio_ref_add_unless_zero")

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def is_frozen_raw(raw: int) -> bool:
        return raw == 0

    _RUN_TEST = (is_frozen_raw.__func__, lambda raws: not any(raws))

    @staticmethod
    def count_of_raw(raw: int) -> int:
        return raw

    @staticmethod
    def frozen_mask(raw: np.ndarray) -> np.ndarray:
        return raw == 0

    def frozen_raw(self) -> int:
        return 0

    def zero_count_mask(self, raw: np.ndarray) -> np.ndarray:
        return raw == 0

    # ------------------------------------------------------------------ readers / setters
    def page_ref_count(self, page: int) -> int:
        """``atomic_read(&page->_refcount)``."""
        return self.atomic_read(page)

    def set_page_count(self, page: int, v: int) -> None:
        """``atomic_set(&page->_refcount, v)``; tracepoint page_ref_set(v)."""
        self.atomic_set(page, self.raw_for_count(v))
        if self.trace is not None:
            self._trace("page_ref_set", page, v)

    def set_frozen(self, page: int) -> None:
        """Upstream has no frozen setter: call sites write ``set_page_count(page, 0)``."""
        self.set_page_count(page, 0)

    # ------------------------------------------------------------------ modifiers
    # Each patched version checks the page before (or after) the atomic op; the hooks below
    # are where they do it. Upstream checks nothing.
    def _check_modify(self, function: str, page: int) -> None:
        """Debug check a version runs before a plain modifier (none upstream)."""

    def _check_old(self, function: str, page: int, old: int, new: int) -> None:
        """Debug check a version runs on the old value of a value-returning modifier."""

    def _check_and_test(self, function: str, page: int, nr: int, ret: bool, raw: int) -> None:
        """Debug check a version runs in ``page_ref_{sub,dec}_and_test`` (none upstream)."""

    def _mod(self, function: str, page: int, nr: int) -> None:
        self._check_modify(function, page)
        self.atomic_add_return(page, nr)
        if self.trace is not None:
            self._trace("page_ref_mod", page, nr)

    def page_ref_add(self, page: int, nr: int) -> None:
        """``atomic_add(nr, &page->_refcount)``; tracepoint page_ref_mod(nr)."""
        self._mod("page_ref_add", page, nr)

    def page_ref_sub(self, page: int, nr: int) -> None:
        """``atomic_sub(nr, &page->_refcount)``; tracepoint page_ref_mod(-nr)."""
        self._mod("page_ref_sub", page, -nr)

    def page_ref_inc(self, page: int) -> None:
        self._mod("page_ref_inc", page, 1)

    def page_ref_dec(self, page: int) -> None:
        self._mod("page_ref_dec", page, -1)

    def _mod_return(self, function: str, page: int, nr: int) -> int:
        ret = self.atomic_add_return(page, nr)
        self._check_old(function, page, wrap32(ret - nr), ret)
        self._trace("page_ref_mod_and_return", page, nr, ret)
        return self.count_of_raw(ret) if self._returns_masked else ret

    #: whether the value-returning modifiers return the raw word (every known version does)
    _returns_masked = False

    def page_ref_sub_return(self, page: int, nr: int) -> int:
        """``atomic_sub_return(nr)`` (older trees; mainline keeps only the folio variant)."""
        return self._mod_return("page_ref_sub_return", page, -nr)

    def folio_ref_sub_return(self, folio: int, nr: int) -> int:
        return self._mod_return("folio_ref_sub_return", folio, -nr)

    def page_ref_inc_return(self, page: int) -> int:
        return self._mod_return("page_ref_inc_return", page, 1)

    def page_ref_dec_return(self, page: int) -> int:
        return self._mod_return("page_ref_dec_return", page, -1)

    # ------------------------------------------------------------------ and-test
    def _sub_and_test(self, function: str, page: int, nr: int) -> bool:
        """``ret = atomic_sub_and_test(nr)``; true iff the new value is 0."""
        ret = self.atomic_add_return(page, -nr) == 0
        self._check_and_test(function, page, nr, ret, self._w[page])
        if self.trace is not None:
            self._trace("page_ref_mod_and_test", page, -nr, int(ret))
        return ret

    def page_ref_sub_and_test(self, page: int, nr: int) -> bool:
        return self._sub_and_test("page_ref_sub_and_test", page, nr)

    def page_ref_dec_and_test(self, page: int) -> bool:
        return self._sub_and_test("page_ref_dec_and_test", page, 1)

    # ------------------------------------------------------------------ speculative get
    def page_ref_add_unless_zero(self, page: int, nr: int) -> bool:
        """``atomic_add_unless(&page->_refcount, nr, 0)``; tracepoint page_ref_mod_unless.

        The tracepoint passes the boolean result in the ``u`` slot (kernel quirk, kept).
        """
        ret = self.atomic_add_unless(page, nr, 0)
        self._trace("page_ref_mod_unless", page, nr, int(ret))
        return ret

    def folio_ref_add_unless_zero(self, folio: int, nr: int) -> bool:
        return self.page_ref_add_unless_zero(folio, nr)

    # ------------------------------------------------------------------ freeze / unfreeze
    def page_ref_freeze(self, page: int, count: int) -> bool:
        """``atomic_cmpxchg(&page->_refcount, count, 0) == count``."""
        ret = self.atomic_cmpxchg(page, count, self.frozen_raw()) == wrap32(count)
        self._trace("page_ref_freeze", page, count, int(ret))
        return ret

    _UNFREEZE_COUNT = DebugCheck("VM_BUG_ON_PAGE", "page_ref_unfreeze", "page_count(page) != 0")
    _UNFREEZE_ZERO = DebugCheck("VM_BUG_ON", "page_ref_unfreeze", "count == 0")

    def page_ref_unfreeze(self, page: int, count: int) -> None:
        """``VM_BUG_ON_PAGE(page_count(page) != 0)``; ``VM_BUG_ON(count == 0)``;
        ``atomic_set_release(&page->_refcount, count)`` (text unchanged in every version)."""
        raw = self._w[page]
        self._vm_check(self._UNFREEZE_COUNT, self.page_count(page) != 0, page, raw)
        self._vm_check(self._UNFREEZE_ZERO, count == 0, page, raw)
        self.atomic_set(page, self.raw_for_count(count))
        self._trace("page_ref_unfreeze", page, count)
