"""mm/page_frag_cache.c (Linux 7.2, the 6.13+ layout): fragments carved out of a cached page.

A ``page_frag_cache`` holds an *encoded page* (the page's direct-map address | order in the
low 8 bits | the pfmemalloc bit 0x100), an ``offset`` counting up from 0 and a
``pagecnt_bias``. A refill allocates an order-3 compound page (order 0 as a fallback) and
pre-charges its refcount with PAGE_FRAG_CACHE_MAX_SIZE references the cache hands out by
decrementing the bias. When the page is exhausted, ``page_ref_sub_and_test(page, bias)``
returns the unused references: if that reaches 0 every fragment is back and the page is reused
in place at the ``__page_frag_alloc_align`` call site (upstream
``set_page_count(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)`` on a page that was just frozen; Zi Yan's
proposal ``page_ref_unfreeze(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)`` in the ``frag-unfreeze``
site table); a pfmemalloc page goes back with ``free_frozen_pages``.

The model also keeps, per page, how many fragments are live (the kernel does not), so that the
cache invariant "refcount - pagecnt_bias == fragments handed out and not yet freed" can be
checked after every page_frag operation. It counts fragment references only: a trace that
takes other references on a cache page (get_page, a speculative get) breaks the equation
until it drops them, and the check reports that.

Simplified: addresses are x86-64 direct-map addresses (PAGE_OFFSET + pfn << PAGE_SHIFT), no
real memory behind them; ``numa_mem_id()`` is the node of the current CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from buddysim.findings import Finding
from buddysim.mm import gfp as G
from buddysim.mm import page_alloc as pa
from buddysim.mm.page_store import PG_buddy, PG_pcp, PG_pfmemalloc
from buddysim.refcount.page_ref import DebugCheck
from buddysim.refcount.sites import PAGE_FRAG_CACHE_MAX_SIZE

if TYPE_CHECKING:
    from buddysim.machine import Machine

__all__ = [
    "PAGE_FRAG_CACHE_MAX_ORDER",
    "PAGE_FRAG_CACHE_MAX_SIZE",
    "PAGE_FRAG_CACHE_ORDER_MASK",
    "PAGE_FRAG_CACHE_PFMEMALLOC_BIT",
    "PAGE_OFFSET",
    "__page_frag_alloc_align",
    "__page_frag_cache_drain",
    "page_frag_alloc",
    "page_frag_alloc_align",
    "page_frag_cache",
    "page_frag_cache_drain",
    "page_frag_free",
    "validate_page_frag_cache",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: x86-64 direct map base (4-level paging, no KASLR)
PAGE_OFFSET = 0xFFFF888000000000
#: get_order(PAGE_FRAG_CACHE_MAX_SIZE)
PAGE_FRAG_CACHE_MAX_ORDER = 3
#: GENMASK(7, 0) since PAGE_SIZE < PAGE_FRAG_CACHE_MAX_SIZE
PAGE_FRAG_CACHE_ORDER_MASK = 0xFF
PAGE_FRAG_CACHE_PFMEMALLOC_BIT = PAGE_FRAG_CACHE_ORDER_MASK + 1

_alloc_pages = pa.__alloc_pages_noprof
_DRAIN_CHECK = DebugCheck("VM_BUG_ON_PAGE", "__page_frag_cache_drain", "page_ref_count(page) == 0")


@dataclass(slots=True)
class page_frag_cache:
    """``struct page_frag_cache``: ``encoded_page``, ``offset``, ``pagecnt_bias`` (and a name)."""

    name: str = "cpu0"
    encoded_page: int = 0
    offset: int = 0
    pagecnt_bias: int = 0


def page_address(pfn: int) -> int:
    return PAGE_OFFSET + (pfn << PAGE_SHIFT)


def virt_to_pfn(addr: int) -> int:
    return (addr - PAGE_OFFSET) >> PAGE_SHIFT


def encoded_page_create(page: int, order: int, pfmemalloc: bool) -> int:
    """``encoded_page_create()``: address | order | pfmemalloc bit."""
    return (
        page_address(page)
        | (order & PAGE_FRAG_CACHE_ORDER_MASK)
        | (PAGE_FRAG_CACHE_PFMEMALLOC_BIT if pfmemalloc else 0)
    )


def encoded_page_decode_order(encoded_page: int) -> int:
    return encoded_page & PAGE_FRAG_CACHE_ORDER_MASK


def encoded_page_decode_pfmemalloc(encoded_page: int) -> bool:
    return bool(encoded_page & PAGE_FRAG_CACHE_PFMEMALLOC_BIT)


def encoded_page_decode_page(encoded_page: int) -> int:
    """The pfn of the cached page."""
    return virt_to_pfn(encoded_page & ~(PAGE_SIZE - 1))


def __page_frag_cache_refill(mm: Machine, nc: page_frag_cache, gfp_mask: int) -> int | None:
    """``__page_frag_cache_refill()``: order-3 compound (no reclaim, no warn, no reserves), else order 0."""
    gfp = gfp_mask
    order = PAGE_FRAG_CACHE_MAX_ORDER
    nid = mm.cpu_to_node[mm.cpu]
    gfp_mask = (
        (gfp_mask & ~G.__GFP_DIRECT_RECLAIM)
        | G.__GFP_COMP
        | G.__GFP_NOWARN
        | G.__GFP_NORETRY
        | G.__GFP_NOMEMALLOC
    )
    page = _alloc_pages(mm, gfp_mask, PAGE_FRAG_CACHE_MAX_ORDER, nid)
    if page is None:
        page = _alloc_pages(mm, gfp, 0, nid)
        order = 0
    if page is None:
        nc.encoded_page = 0
        return None
    nc.encoded_page = encoded_page_create(page, order, bool(mm.store.flags[page] & PG_pfmemalloc))
    return page


def __page_frag_alloc_align(
    mm: Machine, nc: page_frag_cache, fragsz: int, gfp_mask: int, align_mask: int
) -> int | None:
    """``__page_frag_alloc_align()``: a fragment's address, or None.

    ``align_mask`` is ``~0`` for no alignment, ``-align`` otherwise.
    """
    encoded_page = nc.encoded_page
    page: int | None
    refill = not encoded_page
    while True:
        if refill:
            page = __page_frag_cache_refill(mm, nc, gfp_mask)
            if page is None:
                return None
            encoded_page = nc.encoded_page
            # Even if we own the page, we do not use atomic_set(): that would break
            # get_page_unless_zero() users.
            mm.refs.page_ref_add(page, PAGE_FRAG_CACHE_MAX_SIZE)
            nc.pagecnt_bias = PAGE_FRAG_CACHE_MAX_SIZE + 1
            nc.offset = 0
            mm.frag_live.setdefault(page, 0)
        size = PAGE_SIZE << encoded_page_decode_order(encoded_page)
        # __ALIGN_KERNEL_MASK(nc->offset, ~align_mask), unsigned int arithmetic
        offset = ((nc.offset + ~align_mask) & align_mask) & 0xFFFFFFFF
        if (offset + fragsz) & 0xFFFFFFFF > size:
            if fragsz > PAGE_SIZE:
                # The caller is trying to allocate a fragment with fragsz > PAGE_SIZE, which
                # is not supported; the cache page is kept.
                return None
            page = encoded_page_decode_page(encoded_page)
            if not mm.refs.page_ref_sub_and_test(page, nc.pagecnt_bias):
                refill = True  # fragments still in use: the page lives on
                continue
            if encoded_page_decode_pfmemalloc(encoded_page):
                mm.frag_live.pop(page, None)
                pa.free_frozen_pages(mm, page, encoded_page_decode_order(encoded_page))
                refill = True
                continue
            # OK, page count is 0, we can safely set it
            mm.site("__page_frag_alloc_align", page)
            _reused_in_place(mm, page)
            nc.pagecnt_bias = PAGE_FRAG_CACHE_MAX_SIZE + 1
            offset = 0
        break
    nc.pagecnt_bias -= 1
    nc.offset = (offset + fragsz) & 0xFFFFFFFF
    head = encoded_page_decode_page(encoded_page)
    mm.frag_live[head] = mm.frag_live.get(head, 0) + 1
    return page_address(head) + offset


def _reused_in_place(mm: Machine, page: int) -> None:
    """The model's check that a page reused in place is on no free list."""
    if mm.store.flags[page] & (PG_buddy | PG_pcp):
        mm.report(
            Finding(
                "page_frag",
                "__page_frag_alloc_align",
                "a page reused in place never enters a free list",
                mm.refs.name,
                page,
                mm.refs.atomic_read(page),
                message="page reused in place while on a free list",
            )
        )


def page_frag_alloc(mm: Machine, nc: page_frag_cache, fragsz: int, gfp_mask: int) -> int | None:
    """``page_frag_alloc()``: no alignment (``align_mask = ~0u``)."""
    return __page_frag_alloc_align(mm, nc, fragsz, gfp_mask, ~0)


def page_frag_alloc_align(
    mm: Machine, nc: page_frag_cache, fragsz: int, gfp_mask: int, align: int
) -> int | None:
    """``page_frag_alloc_align()``: ``WARN_ON_ONCE(!is_power_of_2(align))``, then ``-align``."""
    key = ("page_frag_alloc_align", "WARN_ON_ONCE(!is_power_of_2(align))")
    if (align <= 0 or align & (align - 1)) and key not in mm.refs._warned:
        mm.refs._warned.add(key)
        mm.report(
            Finding(
                "WARN_ON_ONCE",
                "page_frag_alloc_align",
                "WARN_ON_ONCE(!is_power_of_2(align))",
                mm.refs.name,
                message=f"align {align} is not a power of two",
            )
        )
    return __page_frag_alloc_align(mm, nc, fragsz, gfp_mask, -align)


def page_frag_free(mm: Machine, addr: int) -> bool:
    """``page_frag_free()``: drop the fragment's reference; the last one frees the page."""
    page = mm.store.compound_head(virt_to_pfn(addr))
    if page in mm.frag_live:
        mm.frag_live[page] -= 1
    if mm.refs.put_page_testzero(page):
        mm.frag_live.pop(page, None)
        pa.free_frozen_pages(mm, page, mm.store.compound_order(page))
        return True
    return False


def __page_frag_cache_drain(mm: Machine, page: int, count: int) -> bool:
    """``__page_frag_cache_drain()``: give back ``count`` references; free on the last."""
    refs = mm.refs
    refs.vm_check(_DRAIN_CHECK, refs.page_ref_count(page) == 0, page, refs.atomic_read(page))
    if refs.page_ref_sub_and_test(page, count):
        mm.frag_live.pop(page, None)
        pa.free_frozen_pages(mm, page, mm.store.compound_order(page))
        return True
    return False


def page_frag_cache_drain(mm: Machine, nc: page_frag_cache) -> None:
    """``page_frag_cache_drain()``: return the bias of the cached page and forget it."""
    if not nc.encoded_page:
        return
    __page_frag_cache_drain(mm, encoded_page_decode_page(nc.encoded_page), nc.pagecnt_bias)
    nc.encoded_page = 0


def validate_page_frag_cache(mm: Machine, caches: list[page_frag_cache]) -> list[Finding]:
    """refcount - pagecnt_bias == live fragments on each cached page; refcount == live
    fragments on pages no cache holds any more."""
    out: list[Finding] = []
    current = {encoded_page_decode_page(nc.encoded_page): nc for nc in caches if nc.encoded_page}
    for page, live in mm.frag_live.items():
        count = mm.refs.page_ref_count(page)
        nc = current.get(page)
        expect = live + (nc.pagecnt_bias if nc is not None else 0)
        if count != expect:
            where = f"cache {nc.name}" if nc is not None else "an exhausted page"
            out.append(
                Finding(
                    "invariant",
                    "validate_page_frag_cache",
                    "page_ref_count(page) - pagecnt_bias == live fragments",
                    mm.refs.name,
                    page,
                    mm.refs.atomic_read(page),
                    message=f"{where}: page_ref_count {count}, bias "
                    f"{nc.pagecnt_bias if nc is not None else 0}, live fragments {live}",
                    sites=mm.sites.name,
                    event=mm.event,
                )
            )
    return out
