"""v4/v5 of the series (Jun 2026), as in linux-mm/linux-mm @ ae6cb930: the "final" semantics.

Frozen is bit 31 (``PAGEREF_FROZEN_BIT``); getters report 0 for a frozen page; the frozen
setter ``set_page_count_frozen()`` stores the bit; every modifier first runs
``VM_WARN_ON_ONCE_PAGE(__page_is_frozen(page), page)`` on the raw word; value-returning ones
test the old value; ``page_ref_{sub,dec}_and_test`` carry
``VM_WARN_ON_ONCE_PAGE(__page_count_is_frozen(ret + nr))`` after the subtraction, where ``ret``
is the boolean result, so it cannot fire for a sane ``nr`` (modelled as written, refcount.md
§7 item 10). The speculative get is ``page_ref_add_unless_frozen`` with a try_cmpxchg reset
loop; ``folio_set_count()`` is gone, ``folio_init_count()`` sets the head to 1.
"""

from __future__ import annotations

from buddysim.refcount.page_ref import PAGEREF_BIT, DebugCheck, DebugVM, api_with, wrap32
from buddysim.refcount.v3 import V3

__all__ = ["Final"]


class Final(V3):
    """v4/v5 (ae6cb930): bit-storing frozen setter, raw-value VM_WARN_ON_ONCE checks."""

    name = "final"
    kernel = "series v4/v5, Jun 2026 (mm-CI ae6cb930)"
    description = (
        "frozen bit 31; set_page_count_frozen stores the bit; VM_WARN_ON_ONCE on modifying "
        "a frozen page; _unless_frozen with try_cmpxchg reset"
    )
    frozen_setter = "set_page_count_frozen"
    default_sites = "final"
    API = api_with(
        "page_ref_add_unless_frozen",
        "folio_ref_add_unless_frozen",
        "set_page_count_frozen",
        "folio_init_count",
        without=("folio_set_count",),
    )

    def page_count_is_frozen(self, count: int) -> bool:
        """``__page_count_is_frozen(count)``: ``count & PAGEREF_FROZEN_BIT``."""
        return bool(count & PAGEREF_BIT)

    def __page_is_frozen(self, page: int) -> bool:
        """``__page_is_frozen(page)``: the predicate on the raw ``atomic_read``."""
        return self.page_count_is_frozen(self.atomic_read(page))

    def set_page_count_frozen(self, page: int) -> None:
        """``set_page_count(page, PAGEREF_FROZEN_BIT)``: the tracepoint logs v = INT_MIN."""
        self.set_page_count(page, PAGEREF_BIT)

    def set_frozen(self, page: int) -> None:
        self.set_page_count_frozen(page)

    def folio_init_count(self, folio: int) -> None:
        """``folio_init_count(folio)``: the head's count set to 1 (replaces folio_set_count)."""
        self.init_page_count(folio)

    def _check_modify(self, function: str, page: int) -> None:
        """``VM_WARN_ON_ONCE_PAGE(__page_is_frozen(page), page)`` before the atomic op."""
        if self.debug_vm is DebugVM.OFF or not self.__page_is_frozen(page):
            return  # the check object is built only when the check fires
        self._vm_check(
            DebugCheck("VM_WARN_ON_ONCE_PAGE", function, "__page_is_frozen(page)"), True, page, self._w[page]
        )

    def _check_old(self, function: str, page: int, old: int, new: int) -> None:
        """``VM_WARN_ON_ONCE_{PAGE,FOLIO}(__page_count_is_frozen(ret -/+ n))``."""
        if self.debug_vm is DebugVM.OFF or not self.page_count_is_frozen(old):
            return
        macro = "VM_WARN_ON_ONCE_FOLIO" if function.startswith("folio_") else "VM_WARN_ON_ONCE_PAGE"
        self._vm_check(DebugCheck(macro, function, "__page_count_is_frozen(old)"), True, page, old, new)

    def _check_and_test(self, function: str, page: int, nr: int, ret: bool, raw: int) -> None:
        """``VM_WARN_ON_ONCE_PAGE(__page_count_is_frozen(ret + nr))`` with boolean ``ret``."""
        if self.debug_vm is DebugVM.OFF or not self.page_count_is_frozen(wrap32(int(ret) + nr)):
            return
        self._vm_check(
            DebugCheck("VM_WARN_ON_ONCE_PAGE", function, "__page_count_is_frozen(ret + nr)"),
            True,
            page,
            None,
            raw,
        )
