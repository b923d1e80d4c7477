"""Model variants that exist only to be model-checked: David Hildenbrand's ``atomic_or`` free.

David Hildenbrand asked on 4 Mar 2026 (refcount.md §5.4) why the freeing side of the series
claims the free with ``atomic_cmpxchg_relaxed(&ref, 0, FROZEN)`` instead of an unconditional
``atomic_or(FROZEN)``. :class:`AtomicOrFree` is the final (v4/v5) semantics with that one change:
once ``atomic_sub_and_test`` reaches 0, ``page_ref_{sub,dec}_and_test`` ORs in the bit and
reports "you own the free" unconditionally. Because a getter that raised the count from 0 can
no longer abort the free, the variant's getter does what David's framing assumes: it notices
that ``atomic_add_return`` returned exactly ``nr`` (it raised the count from 0) and backs off,
reporting failure and leaving its increment behind like any failed getter. A second getter that
lands on 1 cannot tell, which is the use-after-free of the §5.4 table.

Not a kernel version: a hypothetical, registered only for ``buddysim litmus`` (name
``atomic_or``; ``buddysim.litmus.variants:AtomicOrFree`` works wherever a model is named).
Simplified: as :class:`~buddysim.refcount.final.Final`; ``atomic_or`` is one linearizable RMW.
"""

from __future__ import annotations

from buddysim.refcount.final import Final
from buddysim.refcount.page_ref import PageRefModel, wrap32
from buddysim.refcount.registry import ModelLookupError, available_models, get_model

__all__ = ["LITMUS_VARIANTS", "AtomicOrFree", "resolve_model"]


class AtomicOrFree(Final):
    """final, but the free side does ``atomic_or(FROZEN)`` instead of the cmpxchg 0 -> F."""

    name = "atomic_or"
    kernel = "hypothetical variant (David Hildenbrand, 4 Mar 2026, refcount.md §5.4)"
    description = (
        "final with an unconditional atomic_or(F) after dec-and-test hits 0; a getter that "
        "raised the count from 0 backs off"
    )
    default_sites = "final"

    def atomic_or(self, pfn: int, mask: int) -> None:
        """``atomic_or(mask, v)``: one read-modify-write, no return value."""
        self._w[pfn] = wrap32(self._w[pfn] | mask)

    def _sub_and_test(self, function: str, page: int, nr: int) -> bool:
        """``ret = atomic_sub_and_test(nr); if (ret) atomic_or(FROZEN, &ref); return ret``."""
        ret = self.atomic_add_return(page, -nr) == self.ZERO
        if ret:
            self.atomic_or(page, self.FROZEN)
        self._trace("page_ref_mod_and_test", page, -nr, int(ret))
        return ret

    def _add_unless_bit(self, page: int, nr: int) -> bool:
        """Optimistic add; fail on the bit, and back off when the add raised the count from 0."""
        v = self.atomic_add_return(page, nr)
        ret = not self.is_frozen_raw(v) and wrap32(v - nr) != self.ZERO
        self._reset_stale(page, v)
        self._trace("page_ref_mod_unless", page, nr, int(ret))
        return ret


#: Models only ``buddysim litmus`` knows by name (checked before the refcount registry).
LITMUS_VARIANTS: dict[str, type[PageRefModel]] = {AtomicOrFree.name: AtomicOrFree}


def resolve_model(spec: str) -> type[PageRefModel]:
    """A litmus variant by name, else whatever the refcount registry resolves ``spec`` to.

    Raises :class:`~buddysim.refcount.registry.ModelLookupError` for an unknown name.
    """
    if spec in LITMUS_VARIANTS:
        return LITMUS_VARIANTS[spec]
    if ":" not in spec and spec not in available_models():
        names = [*available_models(), *LITMUS_VARIANTS]
        raise ModelLookupError(
            f"unknown refcount model {spec!r}; expected one of {', '.join(names)} or module:Class"
        )
    return get_model(spec)
