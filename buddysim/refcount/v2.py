"""v2 of the series, exactly as posted (20 Apr 2026).

1/2 "mm: drop page refcount zero state semantics" and 2/2 "mm: implement page refcount
locking via dedicated bit", as applied by mm-CI (linux-mm/linux-mm @ 03e0599d). The bit is
``PAGEREF_FROZEN_BIT``; call sites that wrote 0 now call ``set_page_count_as_frozen()``, which
still **stores 0** (fixed in v4); every modifier asserts
``VM_BUG_ON(__page_count_is_frozen(page_count(page)))`` with the posted predicate
``count > 0 && !(count & PAGEREF_FROZEN_BIT)``, which is true for live counts: the check
fires on every ``get_page()`` of a live page and never on a frozen one (refcount.md §6).
The speculative get keeps the name ``page_ref_add_unless_zero``.
"""

from __future__ import annotations

from buddysim.refcount.page_ref import PAGEREF_BIT, DebugCheck, DebugVM, api_with
from buddysim.refcount.v1 import FrozenBitModel

__all__ = ["PAGEREF_FROZEN_BIT", "V2", "_PAGEREF_FROZEN_LIMIT"]

PAGEREF_FROZEN_BIT = PAGEREF_BIT
_PAGEREF_FROZEN_LIMIT = 0xC0000000


class V2(FrozenBitModel):
    """v2 2/2 as posted: inverted debug predicate, frozen setter storing 0."""

    name = "v2"
    kernel = "series v2 1/2 + 2/2, 20 Apr 2026 (mm-CI 03e0599d)"
    description = (
        "frozen bit 31; set_page_count_as_frozen stores 0; posted __page_count_is_frozen "
        "is inverted (BUGs on live pages)"
    )
    frozen_setter = "set_page_count_as_frozen"
    default_sites = "v2"
    LIMIT = _PAGEREF_FROZEN_LIMIT
    API = api_with(
        "folio_set_count",
        "page_ref_add_unless_zero",
        "folio_ref_add_unless_zero",
        "set_page_count_as_frozen",
    )

    #: the check macro the version's modifiers use
    CHECK_MACRO = "VM_BUG_ON"
    PREDICATE_TEXT = "__page_count_is_frozen(page_count(page))"

    @staticmethod
    def __page_count_is_frozen(count: int) -> bool:
        """As posted: ``count > 0 && !(count & PAGEREF_FROZEN_BIT)`` (true for live counts)."""
        return count > 0 and not (count & PAGEREF_FROZEN_BIT)

    def page_count_is_frozen(self, count: int) -> bool:
        """``__page_count_is_frozen(count)`` of this version."""
        return self.__page_count_is_frozen(count)

    def set_page_count_as_frozen(self, page: int) -> None:
        """v2's frozen setter: ``set_page_count(page, 0)``: the page is NOT frozen afterwards."""
        self.set_page_count(page, 0)

    def set_frozen(self, page: int) -> None:
        self.set_page_count_as_frozen(page)

    def _check_modify(self, function: str, page: int) -> None:
        """``VM_BUG_ON(__page_count_is_frozen(page_count(page)))`` before the atomic op."""
        if self.debug_vm is DebugVM.OFF or not self.page_count_is_frozen(self.page_count(page)):
            return  # the check object is built only when the check fires
        self._vm_check(DebugCheck(self.CHECK_MACRO, function, self.PREDICATE_TEXT), True, page, self._w[page])

    def _check_old(self, function: str, page: int, old: int, new: int) -> None:
        """``VM_BUG_ON(__page_count_is_frozen(ret -/+ n))``: the test on the old value."""
        if self.debug_vm is DebugVM.OFF or not self.page_count_is_frozen(old):
            return
        self._vm_check(
            DebugCheck(self.CHECK_MACRO, function, "__page_count_is_frozen(old)"), True, page, old, new
        )

    def page_ref_add_unless_zero(self, page: int, nr: int) -> bool:
        """v2: optimistic ``atomic_add_return``, fail on the bit, ``atomic_cmpxchg`` reset loop."""
        return self._add_unless_bit(page, nr)
