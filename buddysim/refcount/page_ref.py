"""The refcount model interface: ``include/linux/page_ref.h`` by its kernel names.

A refcount model owns the meaning of the raw 32-bit ``_refcount`` word of every page. It
implements the page_ref.h functions (and the ``folio_*`` twins, which act on the head page),
the few mm.h wrappers built on them (``get_page``, ``put_page_testzero``, ...), the debug
checks its kernel version wrote (``VM_BUG_ON*`` / ``VM_WARN_ON_ONCE*``), the page_ref
tracepoints, and a predicate "is this raw value frozen?". Pages are pfns; a folio is the pfn of
its head page. Every read or write of the word goes through the ``atomic_*`` primitives of this
class, which is where an interleaving explorer can cut an operation into its atomic steps.

Simplified: atomics are sequentially consistent (ordering variants such as ``_relaxed`` and
``_release`` are kept in the names only); tracepoints carry ``pfn``, ``val``, ``ret`` and
``count`` and leave ``flags``/``mapcount``/``mapping``/``mt`` to the recorder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

from buddysim.findings import Finding, VMBug

__all__ = [
    "GUP_PIN_COUNTING_BIAS",
    "INT_MAX",
    "INT_MIN",
    "PAGEREF_BIT",
    "DebugVM",
    "ListStorage",
    "PageRefModel",
    "PageRefTrace",
    "RefcountStorage",
    "u32",
    "wrap32",
]

INT_MAX = 0x7FFFFFFF
INT_MIN = -0x80000000
#: Bit 31 of the word, as a signed int32 (PAGEREF_LOCKED_BIT / PAGEREF_FROZEN_BIT = INT_MIN).
PAGEREF_BIT = INT_MIN
#: include/linux/mm.h: references taken by pin_user_pages() on a small folio.
GUP_PIN_COUNTING_BIAS = 1 << 10


def wrap32(v: int) -> int:
    """Two's-complement 32-bit wraparound, as ``atomic_t`` arithmetic does."""
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def u32(v: int) -> int:
    """The word as ``unsigned int``."""
    return v & 0xFFFFFFFF


class DebugVM(StrEnum):
    """CONFIG_DEBUG_VM as a switch.

    ``off``: the checks compile to nothing. ``bug``: CONFIG_DEBUG_VM=y: a ``VM_BUG_ON*`` stops
    the operation (raises :class:`VMBug`), a ``VM_WARN_ON_ONCE*`` is recorded once per site.
    ``warn``: every check is recorded and the run goes on (BUGs downgraded to warnings, each
    occurrence recorded; WARN_ONCE still once per site).
    """

    OFF = "off"
    WARN = "warn"
    BUG = "bug"


class PageRefTrace(NamedTuple):
    """One page_ref tracepoint (include/trace/events/page_ref.h), as the kernel names it.

    ``count`` is ``page_ref_count(page)`` after the operation; ``ret`` is None for the
    page_ref_mod_template events (page_ref_set, page_ref_mod, page_ref_unfreeze).
    """

    event: str
    pfn: int
    val: int
    ret: int | None
    count: int


class RefcountStorage(Protocol):
    """What a model needs from the page store: the word array and compound_head()."""

    refcount: memoryview

    def compound_head(self, pfn: int) -> int: ...


class ListStorage:
    """A minimal storage for models used without a machine (tests, litmus, the matrix).

    No compound pages: every page is its own head.
    """

    def __init__(self, nr_pages: int = 1, init: int = 0) -> None:
        self.refcount_np = np.full(nr_pages, init, dtype=np.int32)
        self.refcount = memoryview(self.refcount_np).cast("B").cast("i")

    def compound_head(self, pfn: int) -> int:
        return pfn


@dataclass(frozen=True, slots=True)
class DebugCheck:
    """A debug check as written in a kernel version: macro, function, condition text."""

    macro: str  # VM_BUG_ON, VM_BUG_ON_PAGE, VM_WARN_ON_ONCE_PAGE, VM_WARN_ON_ONCE_FOLIO, ...
    function: str
    text: str

    @property
    def is_bug(self) -> bool:
        return self.macro.startswith("VM_BUG_ON")


class PageRefModel:
    """Base class of every refcount model; subclasses implement page_ref.h of one version.

    Class attributes describe the version: ``name`` (CLI name), ``kernel`` (the kernel
    version or posting it models), ``description`` (one line), ``frozen_setter`` (the kernel
    name of the setter that puts a page in the frozen state, e.g. ``set_page_count_frozen``),
    ``speculative_get`` (the kernel name of the add-unless function), ``default_sites`` (the
    name of the call-site table this version ships with) and ``API`` (the page_ref.h / mm.h
    names this version has; a trace naming anything else is refused).

    Parameters: ``storage`` holds the raw words (a PageStore or a ListStorage);
    ``debug_vm`` selects CONFIG_DEBUG_VM behaviour; ``report`` receives findings (default:
    appended to ``self.findings``); ``trace`` receives :class:`PageRefTrace` records when set
    (CONFIG_DEBUG_PAGE_REF with the tracepoints enabled).
    """

    name: ClassVar[str] = "abstract"
    kernel: ClassVar[str] = ""
    description: ClassVar[str] = ""
    frozen_setter: ClassVar[str] = "set_page_count"
    speculative_get: ClassVar[str] = "page_ref_add_unless_zero"
    default_sites: ClassVar[str] = "baseline"
    API: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        storage: RefcountStorage | None = None,
        *,
        debug_vm: DebugVM | str = DebugVM.OFF,
        report: Callable[[Finding], None] | None = None,
        trace: Callable[[PageRefTrace], None] | None = None,
    ) -> None:
        self.storage: RefcountStorage = storage if storage is not None else ListStorage(1)
        self._w = self.storage.refcount
        self.debug_vm = DebugVM(debug_vm)
        self.findings: list[Finding] = []
        self.report: Callable[[Finding], None] = report or self.findings.append
        self.trace = trace
        self._warned: set[tuple[str, str]] = set()
        run = type(self)._RUN_TEST
        if run is not None and run[0] is type(self).is_frozen_raw:
            self.all_frozen_raws = run[1]  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(debug_vm={self.debug_vm.value!r})"

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def is_frozen_raw(raw: int) -> bool:
        """Is a page whose word holds ``raw`` frozen (owned by nobody, gets fail)?"""
        raise NotImplementedError

    @staticmethod
    def count_of_raw(raw: int) -> int:
        """What ``page_ref_count()`` reports for a word holding ``raw``."""
        raise NotImplementedError

    @staticmethod
    def frozen_mask(raw: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`is_frozen_raw` over an int32 array (for range checks)."""
        raise NotImplementedError

    #: ``(is_frozen_raw, test)``: a C-speed :meth:`all_frozen_raws` for one encoding, used only
    #: while the class's ``is_frozen_raw`` is that very function (a subclass with another
    #: encoding falls back to the per-word test)
    _RUN_TEST: ClassVar[tuple[Callable[[int], bool], Callable[[Sequence[int]], bool]] | None] = None

    def all_frozen_raws(self, raws: Sequence[int]) -> bool:
        """Is every raw word of a short run (a memoryview slice) frozen? Per word here."""
        return all(map(self.is_frozen_raw, raws))

    def zero_count_mask(self, raw: np.ndarray) -> np.ndarray:
        """Vectorised ``page_ref_count(page) == 0`` over an int32 array (bad-page checks).

        Generic (per element) here; the built-in encodings override it at C speed.
        """
        return np.fromiter((self.count_of_raw(int(r)) == 0 for r in raw), dtype=bool, count=len(raw))

    def raw_for_count(self, v: int) -> int:
        """The raw word ``set_page_count(page, v)`` stores (identity except in new encodings)."""
        return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # wrap32(v), inlined

    def frozen_raw(self) -> int:
        """The raw word this version's frozen setter stores."""
        raise NotImplementedError

    def all_frozen(self, start: int, nr: int) -> tuple[bool, int, int]:
        """Range test at C speed: are pages ``[start, start+nr)`` all frozen?

        Returns ``(ok, first_offending_pfn, how_many_offend)``.
        """
        arr = self.storage.refcount_np[start : start + nr]  # type: ignore[attr-defined]
        mask = self.frozen_mask(arr)
        if bool(mask.all()):
            return True, -1, 0
        bad = np.flatnonzero(~mask)
        return False, start + int(bad[0]), int(bad.size)

    def page_is_frozen(self, pfn: int) -> bool:
        """Model-neutral predicate on the raw word of ``pfn`` (not a kernel function)."""
        return self.is_frozen_raw(self._w[pfn])

    # ------------------------------------------------------------------ atomics
    # Every access to the word goes through these (linearizable, sequentially consistent).
    def atomic_read(self, pfn: int) -> int:
        return self._w[pfn]

    # wrap32() is inlined in the three primitives below: they run on every allocation and free
    def atomic_set(self, pfn: int, v: int) -> None:
        self._w[pfn] = ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000

    def atomic_add_return(self, pfn: int, nr: int) -> int:
        v = ((self._w[pfn] + nr + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        self._w[pfn] = v
        return v

    def atomic_cmpxchg(self, pfn: int, old: int, new: int) -> int:
        """Store ``new`` if the word equals ``old``; return the value found."""
        cur = self._w[pfn]
        if cur == ((old + 0x80000000) & 0xFFFFFFFF) - 0x80000000:
            self._w[pfn] = ((new + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return cur

    def atomic_try_cmpxchg(self, pfn: int, old: int, new: int) -> tuple[bool, int]:
        """``atomic_try_cmpxchg``: (succeeded, value found); a failure reloads ``old``."""
        cur = self.atomic_cmpxchg(pfn, old, new)
        return cur == wrap32(old), cur

    def atomic_add_unless(self, pfn: int, nr: int, u: int) -> bool:
        """``atomic_add_unless(v, nr, u)``: a read, then a CAS loop (one pass when alone)."""
        c = self.atomic_read(pfn)
        while True:
            if c == u:
                return False
            found = self.atomic_cmpxchg(pfn, c, c + nr)
            if found == c:
                return True
            c = found

    # ------------------------------------------------------------------ debug + trace
    def _vm_check(
        self,
        check: DebugCheck,
        cond: bool,
        pfn: int,
        raw_before: int | None,
        raw_after: int | None = None,
        message: str = "",
    ) -> None:
        """Evaluate one ``VM_BUG_ON*`` / ``VM_WARN_ON_ONCE*`` as CONFIG_DEBUG_VM would."""
        if not cond or self.debug_vm is DebugVM.OFF:
            return
        if not check.is_bug:
            key = (check.function, check.text)
            if key in self._warned:
                return
            self._warned.add(key)
        finding = Finding(
            kind=check.macro,
            function=check.function,
            check=f"{check.macro}({check.text})",
            model=self.name,
            pfn=pfn,
            raw_before=raw_before,
            raw_after=raw_after,
            message=message,
        )
        if check.is_bug and self.debug_vm is DebugVM.BUG:
            raise VMBug(finding)
        self.report(finding)

    def vm_check(
        self,
        check: DebugCheck,
        cond: bool,
        pfn: int,
        raw_before: int | None,
        raw_after: int | None = None,
        message: str = "",
    ) -> None:
        """A debug check written in another kernel file (mm/page_alloc.c, mm/internal.h),
        evaluated with this model's CONFIG_DEBUG_VM setting and reported like its own."""
        self._vm_check(check, cond, pfn, raw_before, raw_after, message)

    def _trace(self, event: str, pfn: int, val: int, ret: int | None = None) -> None:
        if self.trace is not None:
            self.trace(PageRefTrace(event, pfn, val, ret, self.page_ref_count(pfn)))

    # ------------------------------------------------------------------ page_ref.h
    # Readers
    def page_ref_count(self, page: int) -> int:
        raise NotImplementedError

    def folio_ref_count(self, folio: int) -> int:
        return self.page_ref_count(folio)

    def page_count(self, page: int) -> int:
        """``page_count(page)``: the (head) folio's count."""
        return self.folio_ref_count(self.storage.compound_head(page))

    # Setters
    def set_page_count(self, page: int, v: int) -> None:
        raise NotImplementedError

    def folio_set_count(self, folio: int, v: int) -> None:
        self.set_page_count(folio, v)

    def init_page_count(self, page: int) -> None:
        """``init_page_count(page)``: set up the count before the page is first released."""
        self.set_page_count(page, 1)

    def set_frozen(self, page: int) -> None:
        """This version's frozen setter (``frozen_setter`` gives its kernel name)."""
        raise NotImplementedError

    def frozen_setter_raw(self) -> int:
        """The raw word :meth:`set_frozen` stores (run once on a scratch word, then cached)."""
        cached: int | None = getattr(self, "_frozen_setter_raw", None)
        if cached is None:
            scratch = type(self)(ListStorage(1))
            scratch.set_frozen(0)
            cached = self._frozen_setter_raw = scratch.atomic_read(0)
        return cached

    # Plain modifiers
    def page_ref_add(self, page: int, nr: int) -> None:
        raise NotImplementedError

    def page_ref_sub(self, page: int, nr: int) -> None:
        raise NotImplementedError

    def page_ref_inc(self, page: int) -> None:
        raise NotImplementedError

    def page_ref_dec(self, page: int) -> None:
        raise NotImplementedError

    def folio_ref_add(self, folio: int, nr: int) -> None:
        self.page_ref_add(folio, nr)

    def folio_ref_sub(self, folio: int, nr: int) -> None:
        self.page_ref_sub(folio, nr)

    def folio_ref_inc(self, folio: int) -> None:
        self.page_ref_inc(folio)

    def folio_ref_dec(self, folio: int) -> None:
        self.page_ref_dec(folio)

    # Value-returning modifiers
    def page_ref_sub_return(self, page: int, nr: int) -> int:
        raise NotImplementedError

    def page_ref_inc_return(self, page: int) -> int:
        raise NotImplementedError

    def page_ref_dec_return(self, page: int) -> int:
        raise NotImplementedError

    def folio_ref_sub_return(self, folio: int, nr: int) -> int:
        return self.page_ref_sub_return(folio, nr)

    def folio_ref_inc_return(self, folio: int) -> int:
        return self.page_ref_inc_return(folio)

    def folio_ref_dec_return(self, folio: int) -> int:
        return self.page_ref_dec_return(folio)

    # And-test
    def page_ref_sub_and_test(self, page: int, nr: int) -> bool:
        raise NotImplementedError

    def page_ref_dec_and_test(self, page: int) -> bool:
        raise NotImplementedError

    def folio_ref_sub_and_test(self, folio: int, nr: int) -> bool:
        return self.page_ref_sub_and_test(folio, nr)

    def folio_ref_dec_and_test(self, folio: int) -> bool:
        return self.page_ref_dec_and_test(folio)

    # Speculative get: the version's add-unless, whatever its kernel name
    def page_ref_add_unless(self, page: int, nr: int) -> bool:
        """The version's speculative add, whatever its kernel name (``speculative_get``)."""
        result: bool = getattr(self, self.speculative_get)(page, nr)
        return result

    def folio_try_get(self, folio: int) -> bool:
        return self.page_ref_add_unless(folio, 1)

    def folio_ref_try_add(self, folio: int, count: int) -> bool:
        return self.page_ref_add_unless(folio, count)

    def get_page_unless_zero(self, page: int) -> bool:
        """include/linux/mm.h ``get_page_unless_zero()``: the speculative add of 1."""
        return self.page_ref_add_unless(page, 1)

    # Freeze / unfreeze
    def page_ref_freeze(self, page: int, count: int) -> bool:
        raise NotImplementedError

    def page_ref_unfreeze(self, page: int, count: int) -> None:
        raise NotImplementedError

    def folio_ref_freeze(self, folio: int, count: int) -> bool:
        return self.page_ref_freeze(folio, count)

    def folio_ref_unfreeze(self, folio: int, count: int) -> None:
        self.page_ref_unfreeze(folio, count)

    # ------------------------------------------------------------------ mm.h wrappers
    def page_ref_zero_or_close_to_overflow(self, page: int) -> bool:
        """``((unsigned int) page_ref_count(page) + 127u <= 127u)``."""
        return u32(self.page_ref_count(page) + 127) <= 127

    def folio_ref_zero_or_close_to_overflow(self, folio: int) -> bool:
        return u32(self.folio_ref_count(folio) + 127) <= 127

    _FOLIO_GET = DebugCheck("VM_BUG_ON_FOLIO", "folio_get", "folio_ref_zero_or_close_to_overflow(folio)")
    _PUT_TESTZERO = DebugCheck("VM_BUG_ON_PAGE", "put_page_testzero", "page_ref_count(page) == 0")

    def folio_get(self, folio: int) -> None:
        """mm.h ``folio_get()``: VM_BUG_ON_FOLIO on a zero or near-overflow count, then inc."""
        self._vm_check(
            self._FOLIO_GET, self.folio_ref_zero_or_close_to_overflow(folio), folio, self._w[folio]
        )
        self.folio_ref_inc(folio)

    def get_page(self, page: int) -> None:
        """mm.h ``get_page()``: ``folio_get(page_folio(page))`` (slab checks not modelled)."""
        self.folio_get(self.storage.compound_head(page))

    def put_page_testzero(self, page: int) -> bool:
        """mm.h ``put_page_testzero()``: VM_BUG_ON_PAGE on a zero count, then dec_and_test."""
        if self.debug_vm is not DebugVM.OFF:
            self._vm_check(self._PUT_TESTZERO, self.page_ref_count(page) == 0, page, self._w[page])
        return self.page_ref_dec_and_test(page)

    def folio_put_testzero(self, folio: int) -> bool:
        return self.put_page_testzero(folio)

    # ------------------------------------------------------------------ kernel-name dispatch
    def call(self, function: str, page: int, *args: int) -> int | bool | None:
        """Call a page_ref.h / mm.h function by its kernel name in this version.

        Raises ``KeyError`` for a name this version does not have (e.g.
        ``set_page_count_frozen`` under ``baseline``).
        """
        if function not in self.API:
            raise KeyError(function)
        result: int | bool | None = getattr(self, function)(page, *args)
        return result


#: The names every version shares (page_ref.h and the mm.h wrappers built on it).
COMMON_API: frozenset[str] = frozenset(
    {
        "page_ref_count",
        "folio_ref_count",
        "page_count",
        "set_page_count",
        "init_page_count",
        "page_ref_add",
        "page_ref_sub",
        "page_ref_inc",
        "page_ref_dec",
        "folio_ref_add",
        "folio_ref_sub",
        "folio_ref_inc",
        "folio_ref_dec",
        "page_ref_sub_return",
        "page_ref_inc_return",
        "page_ref_dec_return",
        "folio_ref_sub_return",
        "folio_ref_inc_return",
        "folio_ref_dec_return",
        "page_ref_sub_and_test",
        "page_ref_dec_and_test",
        "folio_ref_sub_and_test",
        "folio_ref_dec_and_test",
        "folio_try_get",
        "folio_ref_try_add",
        "get_page_unless_zero",
        "page_ref_freeze",
        "page_ref_unfreeze",
        "folio_ref_freeze",
        "folio_ref_unfreeze",
        "folio_get",
        "get_page",
        "put_page_testzero",
        "folio_put_testzero",
    }
)


def api_with(*extra: str, without: Iterable[str] = ()) -> frozenset[str]:
    """COMMON_API plus a version's own names, minus the ones it removed."""
    return (COMMON_API | frozenset(extra)) - frozenset(without)
