"""Call-site tables: what each kernel version writes to ``_refcount`` at each allocator site.

The allocator never writes a refcount itself: at each place where the kernel does, it calls
``apply_site(model, table, site, pfn)`` with the kernel function's name, and the table says
what that version's source does there (``set_page_count(page, 0)``, ``set_page_count_frozen``,
``init_page_count``, ...). The action is carried out through the *semantic* model, so a table
can be combined with any model: ``--refcount final --sites baseline`` runs the final semantics
on an unconverted kernel. Conversions follow refcount.md §5.1 (Zi Yan's rule, confirmed by
Gorbunov: every ``set_page_count(.., 0)`` becomes the frozen setter, every
``set_page_count(.., 1)`` becomes ``init_page_count()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from buddysim.refcount.page_ref import PageRefModel

__all__ = [
    "PAGE_FRAG_CACHE_MAX_SIZE",
    "SITES",
    "SITE_TABLES",
    "SiteAction",
    "SiteTable",
    "apply_site",
    "apply_site_range",
    "site_function",
]

#: include/linux/page_frag_cache.h: __ALIGN_MASK(32768, ~PAGE_MASK) with 4 KiB pages
PAGE_FRAG_CACHE_MAX_SIZE = 32768

ActionKind = Literal["set", "frozen", "init", "folio_init", "unfreeze"]


@dataclass(frozen=True, slots=True)
class SiteAction:
    """One refcount write at one call site. ``code`` is the kernel text of that version."""

    kind: ActionKind
    value: int = 0
    code: str = ""

    def describe(self) -> str:
        return self.code or f"{self.kind}({self.value})"


def _set(v: int) -> SiteAction:
    return SiteAction("set", v, f"set_page_count(page, {v})")


def _frozen(name: str) -> SiteAction:
    return SiteAction("frozen", 0, f"{name}(page)")


INIT = SiteAction("init", 1, "init_page_count(page)")
FOLIO_SET_1 = SiteAction("set", 1, "folio_set_count(folio, 1)")
FOLIO_INIT = SiteAction("folio_init", 1, "folio_init_count(folio)")
FRAG_REUSE_SET = SiteAction(
    "set", PAGE_FRAG_CACHE_MAX_SIZE + 1, "set_page_count(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
)
FRAG_REUSE_UNFREEZE = SiteAction(
    "unfreeze", PAGE_FRAG_CACHE_MAX_SIZE + 1, "page_ref_unfreeze(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
)

#: Every call site, by kernel function, with what it is for.
SITES: Mapping[str, str] = MappingProxyType(
    {
        "__free_pages_core": "mm/page_alloc.c: every page handed over by memblock or hotplug "
        "(then __free_pages_ok without a put)",
        "set_page_refcounted": "mm/internal.h: allocation makes the head page count 1",
        "__init_single_page": "mm/mm_init.c: memmap init of every struct page",
        "init_cma_reserved_pageblock": "mm/mm_init.c: CMA pageblock, set to 0 then "
        "set_page_refcounted + __free_pages",
        "__init_zone_device_page": "mm/mm_init.c: ZONE_DEVICE private/coherent/p2pdma pages",
        "hugetlb_folio_init_tail_vmemmap": "mm/hugetlb.c: tail pages of a bootmem gigantic page",
        "free_zone_device_folio": "mm/memremap.c: GENERIC/FS_DAX folio reset after free",
        "__page_frag_alloc_align": "mm/page_frag_cache.c: reuse of an exhausted, now-frozen page in place",
    }
)


@dataclass(frozen=True)
class SiteTable:
    """What one kernel version writes at every site of :data:`SITES`."""

    name: str
    description: str
    actions: Mapping[str, SiteAction]

    def __post_init__(self) -> None:
        missing = set(SITES) - set(self.actions)
        if missing:
            raise ValueError(f"site table {self.name!r} lacks sites: {sorted(missing)}")

    def action(self, site: str) -> SiteAction:
        try:
            return self.actions[site]
        except KeyError:
            raise KeyError(f"unknown refcount call site {site!r}") from None

    def with_actions(self, name: str, description: str, **changes: SiteAction) -> SiteTable:
        actions = dict(self.actions)
        for site, act in changes.items():
            if site not in SITES:
                raise KeyError(f"unknown refcount call site {site!r}")
            actions[site] = act
        return SiteTable(name, description, MappingProxyType(actions))


_UNCONVERTED = SiteTable(
    "baseline",
    "upstream Linux 7.2: frozen pages written as plain 0",
    MappingProxyType(
        {
            "__free_pages_core": _set(0),
            "set_page_refcounted": _set(1),
            "__init_single_page": INIT,
            "init_cma_reserved_pageblock": _set(0),
            "__init_zone_device_page": _set(0),
            "hugetlb_folio_init_tail_vmemmap": _set(0),
            "free_zone_device_folio": FOLIO_SET_1,
            "__page_frag_alloc_align": FRAG_REUSE_SET,
        }
    ),
)

_V1 = _UNCONVERTED.with_actions("v1", "RFC and v1: no call site converted (still plain 0)")

_V2 = _UNCONVERTED.with_actions(
    "v2",
    "v2/v3: set_page_count(.., 0) -> set_page_count_as_frozen (which stores 0), "
    "set_page_count(.., 1) -> init_page_count",
    __free_pages_core=_frozen("set_page_count_as_frozen"),
    set_page_refcounted=INIT,
    init_cma_reserved_pageblock=_frozen("set_page_count_as_frozen"),
    __init_zone_device_page=_frozen("set_page_count_as_frozen"),
    hugetlb_folio_init_tail_vmemmap=_frozen("set_page_count_as_frozen"),
    free_zone_device_folio=SiteAction("init", 1, "init_page_count(&folio->page)"),
)

_FINAL = _UNCONVERTED.with_actions(
    "final",
    "v4/v5: set_page_count(.., 0) -> set_page_count_frozen, 1 -> init_page_count / "
    "folio_init_count; page_frag_cache reuse left as set_page_count (deferred)",
    __free_pages_core=_frozen("set_page_count_frozen"),
    set_page_refcounted=INIT,
    init_cma_reserved_pageblock=_frozen("set_page_count_frozen"),
    __init_zone_device_page=_frozen("set_page_count_frozen"),
    hugetlb_folio_init_tail_vmemmap=_frozen("set_page_count_frozen"),
    free_zone_device_folio=FOLIO_INIT,
)

_FRAG_UNFREEZE = _FINAL.with_actions(
    "frag-unfreeze",
    "final plus Zi Yan's proposal: page_frag_cache reuse via page_ref_unfreeze",
    __page_frag_alloc_align=FRAG_REUSE_UNFREEZE,
)

_INVERTED = _FINAL.with_actions(
    "inverted", "final's conversions, for the inverted encoding (the frozen setter stores 0)"
)

#: Built-in site tables by name. Each model's ``default_sites`` names one of these.
SITE_TABLES: Mapping[str, SiteTable] = MappingProxyType(
    {t.name: t for t in (_UNCONVERTED, _V1, _V2, _FINAL, _FRAG_UNFREEZE, _INVERTED)}
)


def site_function(model: PageRefModel, table: SiteTable, site: str) -> Callable[[int], object]:
    """The model function (bound, with its argument) that ``table`` calls at ``site``."""
    act = table.action(site)
    kind, value = act.kind, act.value
    if kind == "set":
        return lambda pfn: model.set_page_count(pfn, value)
    if kind == "frozen":
        return model.set_frozen
    if kind in ("init", "folio_init"):  # folio_init_count(): the head set to 1
        return model.init_page_count
    return lambda pfn: model.page_ref_unfreeze(pfn, value)


def apply_site(model: PageRefModel, table: SiteTable, site: str, pfn: int) -> SiteAction:
    """Carry out what ``table`` says the kernel writes at ``site`` on page ``pfn``."""
    site_function(model, table, site)(pfn)
    return table.action(site)


def apply_site_range(model: PageRefModel, table: SiteTable, site: str, start: int, nr: int) -> SiteAction:
    """:func:`apply_site` on every page of ``[start, start+nr)`` at C speed.

    Setters (set / frozen / init) have no debug checks in any version, so a range write is
    exactly their per-page effect; with tracing on, or for ``unfreeze`` (which checks), it
    falls back to the per-page calls.
    """
    act = table.action(site)
    if model.trace is not None or act.kind == "unfreeze":
        for pfn in range(start, start + nr):
            apply_site(model, table, site, pfn)
        return act
    raw = model.frozen_setter_raw() if act.kind == "frozen" else model.raw_for_count(act.value)
    model.storage.refcount_np[start : start + nr] = raw  # type: ignore[attr-defined]
    return act
