"""The litmus oracle: what the page *really* is, and the invariants every interleaving must keep.

Besides the raw word, the explorer carries ghost state the kernel does not have: the page's
allocator state (``reserved`` before ``__free_pages_core`` hands it over, ``free`` in the buddy,
``allocated``), its allocation *epoch* (bumped by every allocation, including page_frag's reuse
in place), the type it was allocated as (which destructor is right), how often it was freed in
this epoch, which epoch the mapping holds, and per thread the references it believes it holds
(``refs``, tagged with the epoch they were taken in, -1 when taken on a free page) and whether
it owns the page frozen (a successful freeze, a frozen allocation, a non-freeing put that
returned true).

Invariants (refcount.md §8, docs/litmus.md):

* ``one_free_per_epoch``: at most one free (a freeing put, ``free_frozen_pages`` or
  ``__free_pages_core``) per allocation epoch;
* ``no_double_free``: nothing frees a page that is already free;
* ``no_stale_ref``: no thread holds a reference when the page is freed or handed to a new owner,
  passes re-validation with a reference from another epoch, or ends holding a reference to a
  page that was freed or re-allocated since it took it;
* ``frozen_persists``: while the page is free, the model says its word is frozen;
* ``count_non_negative``: ``page_ref_count()`` never reports a negative count;
* ``destructor_type``: the destructor a freeing put runs is the page's type;
* ``no_leak`` (final states only): an allocated page's count equals what its holders hold, and
  an allocated page still has a holder;
* ``no_vm_bug``: no ``VM_BUG_ON*`` fired (only with ``debug_vm = "bug"``).

Simplified: the mapping is one slot holding an epoch; re-validation succeeds when the page is
allocated and the slot holds its current epoch. References held by code outside the scenario
are a constant ``external_refs``.
"""

from __future__ import annotations

from typing import NamedTuple

from buddysim.refcount.page_ref import PageRefModel

from .stepper import Leaf, fmt_word

__all__ = [
    "ALLOCATED",
    "BOUNDED",
    "DONE",
    "FREE",
    "OOPS",
    "RESERVED",
    "RUNNING",
    "PageGhost",
    "State",
    "ThreadGhost",
    "Violation",
    "alloc_page",
    "free_page",
    "revalidate",
    "state_violations",
    "terminal_violations",
]

RESERVED, FREE, ALLOCATED = "reserved", "free", "allocated"
RUNNING, DONE, OOPS, BOUNDED = 0, 1, 2, 3


class PageGhost(NamedTuple):
    """The allocator's view of the page: state, allocation epoch, type, frees this epoch."""

    status: str
    epoch: int
    ptype: str
    frees: int


class ThreadGhost(NamedTuple):
    """One thread: program counter, leaves of its current action, references, frozen hold."""

    pc: int
    log: tuple[Leaf, ...]
    refs: int
    tag: int
    hold: bool
    status: int


class State(NamedTuple):
    """A node of the state graph (hashable): word, page, mapping slot, threads."""

    raw: int
    page: PageGhost
    mapped: int
    threads: tuple[ThreadGhost, ...]


class Violation(NamedTuple):
    invariant: str
    message: str


def _holders(threads: tuple[ThreadGhost, ...], names: tuple[str, ...], skip: int = -1) -> list[str]:
    out = []
    for i, t in enumerate(threads):
        if i == skip:
            continue
        if t.refs:
            out.append(f"{names[i]} ({t.refs} ref{'s' if t.refs != 1 else ''}, {_epoch(t.tag)})")
        elif t.hold:
            out.append(f"{names[i]} (owns it frozen)")
    return out


def _still(held: list[str]) -> str:
    return f"{', '.join(held)} still {'holds' if len(held) == 1 else 'hold'}"


def _epoch(tag: int) -> str:
    return "taken on a free page" if tag < 0 else f"epoch {tag}"


def free_page(
    page: PageGhost,
    threads: tuple[ThreadGhost, ...],
    names: tuple[str, ...],
    by: str,
    destructor: str | None,
) -> tuple[PageGhost, list[Violation]]:
    """The page goes back to the allocator; ``destructor`` is the type whose destructor runs."""
    v: list[Violation] = []
    if page.status == FREE:
        v.append(Violation("no_double_free", f"{by} frees the page, which is already free"))
    frees = page.frees + 1
    if frees > 1:
        v.append(Violation("one_free_per_epoch", f"free #{frees} of allocation epoch {page.epoch} (by {by})"))
    if destructor is not None and destructor != page.ptype:
        v.append(
            Violation(
                "destructor_type", f"{by} runs the {destructor} destructor on a page of type {page.ptype}"
            )
        )
    held = _holders(threads, names)
    if held:
        v.append(Violation("no_stale_ref", f"{by} frees the page while {_still(held)} it"))
    return PageGhost(FREE, page.epoch, page.ptype, frees), v


def alloc_page(
    page: PageGhost,
    threads: tuple[ThreadGhost, ...],
    names: tuple[str, ...],
    by: str,
    ptype: str,
) -> tuple[PageGhost, list[Violation]]:
    """A new allocation epoch starts: ``by`` owns the page as ``ptype``."""
    v: list[Violation] = []
    held = _holders(threads, names)
    if held:
        v.append(
            Violation(
                "no_stale_ref",
                f"{by} is handed the page while {_still(held)} a reference to it",
            )
        )
    return PageGhost(ALLOCATED, page.epoch + 1, ptype, 0), v


def revalidate(page: PageGhost, mapped: int, t: ThreadGhost, name: str) -> tuple[bool, list[Violation]]:
    """Is the page still where the thread found it (allocated, and the mapping holds this epoch)?"""
    ok = page.status == ALLOCATED and mapped == page.epoch
    v: list[Violation] = []
    if ok and t.refs and t.tag != page.epoch:
        v.append(
            Violation(
                "no_stale_ref",
                f"{name} passes re-validation with a reference {_epoch(t.tag)}, the page is now "
                f"epoch {page.epoch}",
            )
        )
    return ok, v


def state_violations(model: type[PageRefModel] | PageRefModel, s: State) -> list[Violation]:
    """Invariants that hold in every state: frozen while free, count never negative."""
    v: list[Violation] = []
    if s.page.status == FREE and not model.is_frozen_raw(s.raw):
        v.append(
            Violation("frozen_persists", f"the page is free but its word {fmt_word(s.raw)} is not frozen")
        )
    c = model.count_of_raw(s.raw)
    if c < 0:
        v.append(Violation("count_non_negative", f"page_ref_count() reads {c}"))
    return v


def terminal_violations(
    model: type[PageRefModel] | PageRefModel, s: State, names: tuple[str, ...], external_refs: int
) -> list[Violation]:
    """Invariants of a final state: nobody keeps a stale reference, nothing leaks."""
    v: list[Violation] = []
    page = s.page
    for i, t in enumerate(s.threads):
        if t.refs and (page.status != ALLOCATED or t.tag != page.epoch):
            where = "a free page" if page.status != ALLOCATED else f"epoch {page.epoch}"
            v.append(
                Violation(
                    "no_stale_ref",
                    f"{names[i]} ends holding {t.refs} reference(s) {_epoch(t.tag)} to {where}",
                )
            )
    if page.status == ALLOCATED:
        holders = [t for t in s.threads if t.hold]
        held = sum(t.refs for t in s.threads) + external_refs
        if holders:
            if not model.is_frozen_raw(s.raw):
                v.append(Violation("no_leak", f"the page is owned frozen but its word is {fmt_word(s.raw)}"))
        elif held <= 0:
            v.append(
                Violation("no_leak", f"the page is still allocated (epoch {page.epoch}) and nobody holds it")
            )
        else:
            c = model.count_of_raw(s.raw)
            if c != held:
                v.append(
                    Violation(
                        "no_leak",
                        f"page_ref_count() reads {c} but the holders hold {held} reference(s)",
                    )
                )
    return v
