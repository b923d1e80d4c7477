"""mm/page_frag_cache.c (Linux 7.2) on every refcount model: the tests of issue 6.

Reference: kernel-allocator.md §7 and the 7.2 source (linux-mm/linux-mm @ df924641,
mm/page_frag_cache.c; torvalds/linux include/linux/page_frag_cache.h); refcount.md §5.1 (row
page_frag_cache), §5.3, §5.10 and §7 item 4 (Zi Yan's page_ref_unfreeze proposal).

Every expected value is worked by hand in the comments. The numbers that recur:

* PAGE_FRAG_CACHE_MAX_SIZE = 32768; a refill does ``page_ref_add(page, 32768)`` on a page
  allocated with count 1, so count = 1 + 32768 = 32769, and ``pagecnt_bias = 32768 + 1 = 32769``;
* every fragment decrements the bias by one, so after n fragments bias = 32769 - n while the
  count stays 32769: count - bias = n = live fragments;
* an order-3 page holds 4096 << 3 = 32768 bytes, an order-0 page 4096;
* F = 0x80000000 = INT_MIN, the frozen bit of the rfc..final models.

The models whose site tables still write plain 0 at ``__free_pages_core`` (rfc, v1, v2, v3:
refcount.md §5.5) report ``unfrozen-free-entry`` for boot pages and compound tail pages in
allocator paths that are not page_frag's business; :func:`frag_findings` leaves those out and
keeps every other finding (and any that names a page_frag head page).
"""

from __future__ import annotations

import random
from collections.abc import Collection

import pytest

from buddysim.findings import Finding, VMBug
from buddysim.machine import Machine
from buddysim.mm import gfp as G
from buddysim.mm import page_alloc as pa
from buddysim.mm import page_frag_cache as pfc
from buddysim.mm.mmzone import ZONE_NORMAL
from buddysim.mm.page_store import PG_buddy, PG_pcp, PG_pfmemalloc
from buddysim.refcount.page_ref import DebugVM

MODELS = ("baseline", "rfc", "v1", "v2", "v3", "final", "inverted")
#: models whose own site tables leave boot pages / compound tails at plain 0, which they do
#: not treat as frozen (refcount.md §5.5, §5.9)
UNCONVERTED = {"rfc", "v1", "v2", "v3"}
#: every model with CONFIG_DEBUG_VM off and on (BUG), except v2+bug, whose first refill BUGs
#: (test_v2_inverted_predicate_bugs_on_the_refill_page_ref_add shows that on its own)
CASES = [(m, "off") for m in MODELS] + [(m, "bug") for m in MODELS if m != "v2"]

F = -0x80000000  # PAGEREF_{LOCKED,FROZEN}_BIT as a signed 32-bit word
MAX = 32768  # PAGE_FRAG_CACHE_MAX_SIZE
BIAS0 = MAX + 1  # 32769
PAGE = 4096
ORDER3_BYTES = PAGE << 3  # 32768
ATOMIC = G.GFP_ATOMIC
NR_PAGES = 1024

#: raw word of a page whose count reached zero through page_ref_{sub,dec}_and_test:
#: baseline 0; bit models CAS 0 -> F; inverted CASes its "zero" (the bare live bit) -> 0
FROZEN_RAW = {"baseline": 0, "rfc": F, "v1": F, "v2": F, "v3": F, "final": F, "inverted": 0}
#: raw word after a failed get_page_unless_zero on that frozen page (refcount.md §4.5, §5.10)
STALE_RAW = {
    "baseline": 0,  # atomic_add_unless(.., 0) reads 0 and writes nothing
    "rfc": F,  # F + 1, then the RFC's one-shot reset CAS(F + 1 -> F)
    "v1": F + 1,  # F + 1 < 0xC0000000: below the reset limit, the stale increment stays
    "v2": F + 1,
    "v3": F + 1,
    "final": F + 1,
    "inverted": 1,  # frozen is 0 there: 0 + 1 = 1, live bit still clear, so still frozen
}


# ------------------------------------------------------------------ helpers
class Spy:
    """Records what the cache asks of the allocator and the refcount call sites."""

    def __init__(self) -> None:
        self.allocs: list[tuple[int, int, int | None]] = []  # (gfp, order, pfn)
        self.frees: list[tuple[int, int]] = []  # free_frozen_pages(page, order)
        self.sites: list[tuple[str, int]] = []  # mm.site("__page_frag_alloc_align", pfn)
        self.trace: list[tuple[str, int | None, int | None]] = []  # kmem tracepoints

    def tracer(self, name: str, fields: dict[str, int | None]) -> None:
        self.trace.append((name, fields.get("pfn"), fields.get("order")))

    def page_frees(self, pfn: int) -> list[tuple[int | None, int | None]]:
        """mm_page_free events for ``pfn``: the page entered a pcp list or the buddy."""
        return [(p, o) for n, p, o in self.trace if n == "mm_page_free" and p == pfn]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    s = Spy()
    real_alloc = pfc._alloc_pages
    real_free = pa.free_frozen_pages

    def alloc(mm: Machine, gfp: int, order: int, nid: int) -> int | None:
        page = real_alloc(mm, gfp, order, nid)
        s.allocs.append((gfp, order, page))
        return page

    def free(mm: Machine, page: int, order: int) -> None:
        s.frees.append((page, order))
        real_free(mm, page, order)

    monkeypatch.setattr(pfc, "_alloc_pages", alloc)
    monkeypatch.setattr(pa, "free_frozen_pages", free)
    return s


def boot(
    model: str,
    debug_vm: str = "off",
    *,
    sites: str | None = None,
    strict: bool = False,
    spy: Spy | None = None,
    nr_pages: int = NR_PAGES,
) -> tuple[Machine, int]:
    """A booted one-zone, one-CPU machine; also the number of findings boot left."""
    mm = Machine.simple(
        nr_pages,
        zones=[(ZONE_NORMAL, nr_pages)],
        nr_cpus=1,
        refcount=model,
        sites=sites,
        debug_vm=debug_vm,
        strict_setters=strict,
    )
    mm.boot()
    if spy is not None:
        mm.tracer = spy.tracer
        real_site = mm.site

        def site(name: str, pfn: int) -> None:
            if name == "__page_frag_alloc_align":
                spy.sites.append((name, pfn))
            real_site(name, pfn)

        mm.site = site  # type: ignore[method-assign]
    return mm, len(mm.findings)


def frag_findings(mm: Machine, since: int, heads: Collection[int] = ()) -> list[Finding]:
    """Findings since ``since``, minus what the unconverted models report anyway: unfrozen
    blocks put back by an allocation's split (``expand``, ``rmqueue_bulk``), and free-path
    blocks whose first unfrozen page is not a page_frag head (compound tails at plain 0)."""

    def noise(f: Finding) -> bool:
        if f.kind != "unfrozen-free-entry" or not unconverted(mm):
            return False
        return "__alloc_frozen_pages_noprof" in f.chain or f.pfn not in heads

    return [f for f in mm.findings[since:] if not noise(f)]


def unconverted(mm: Machine) -> bool:
    """Does this model + site table leave boot pages at a word the model does not call frozen?"""
    act = mm.sites.action("__free_pages_core")
    raw = mm.refs.frozen_setter_raw() if act.kind == "frozen" else mm.refs.raw_for_count(act.value)
    return not mm.refs.is_frozen_raw(raw)


def head(nc: pfc.page_frag_cache) -> int:
    return pfc.encoded_page_decode_page(nc.encoded_page)


def base(pfn: int) -> int:
    return pfc.PAGE_OFFSET + (pfn << 12)


def count(mm: Machine, pfn: int) -> int:
    return mm.refs.page_ref_count(pfn)


def valid(mm: Machine, *caches: pfc.page_frag_cache) -> None:
    assert pfc.validate_page_frag_cache(mm, list(caches)) == []


def on_free_list(mm: Machine, pfn: int) -> bool:
    return pfn in mm.free_pfns() or pfn in mm.pcp_pfns() or bool(mm.store.flags[pfn] & (PG_buddy | PG_pcp))


def alloc_n(
    mm: Machine, nc: pfc.page_frag_cache, n: int, size: int, gfp: int = ATOMIC, check: bool = True
) -> list[int]:
    out = []
    for _ in range(n):
        addr = pfc.page_frag_alloc(mm, nc, size, gfp)
        assert addr is not None
        out.append(addr)
        if check:
            valid(mm, nc)
    return out


def exhaust_memory(mm: Machine, memalloc: bool = True) -> list[int]:
    """Allocate order-0 pages with GFP_ATOMIC down to its reserve, then (``memalloc``) the rest
    with __GFP_MEMALLOC, which ignores the watermarks."""
    held = []
    for gfp in (ATOMIC, ATOMIC | G.__GFP_MEMALLOC) if memalloc else (ATOMIC,):
        while (p := mm.alloc(gfp, 0)) is not None:
            held.append(p)
    return held


# ------------------------------------------------------------------ refill
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_refill_takes_an_order3_compound_page_with_the_kernels_gfp(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    nc = pfc.page_frag_cache("rx")
    addr = pfc.page_frag_alloc(mm, nc, 100, G.GFP_KERNEL)
    # one refill, order 3, with gfp = (gfp & ~__GFP_DIRECT_RECLAIM) | __GFP_COMP | __GFP_NOWARN
    # | __GFP_NORETRY | __GFP_NOMEMALLOC; GFP_KERNEL loses direct reclaim
    want = (G.GFP_KERNEL & ~G.__GFP_DIRECT_RECLAIM) | G.__GFP_COMP | G.__GFP_NOWARN
    want |= G.__GFP_NORETRY | G.__GFP_NOMEMALLOC
    assert len(spy.allocs) == 1
    gfp, order, page = spy.allocs[0]
    assert (gfp, order) == (want, 3) and not gfp & G.__GFP_DIRECT_RECLAIM
    assert page == head(nc) and mm.store.compound_order(page) == 3
    # encoded page: address | order 3, no pfmemalloc bit (0x100)
    assert nc.encoded_page == base(page) | 3
    assert not pfc.encoded_page_decode_pfmemalloc(nc.encoded_page)
    # count 1 + 32768 = 32769; bias 32769 - 1 = 32768; the fragment is at offset 0
    assert count(mm, page) == 32769 and mm.refs.atomic_read(page) == mm.refs.raw_for_count(32769)
    assert nc.pagecnt_bias == 32768 and nc.offset == 100
    assert addr == base(page)
    valid(mm, nc)
    assert frag_findings(mm, n0) == []


def test_v2_inverted_predicate_bugs_on_the_refill_page_ref_add():
    """refcount.md §5.10/§6: v2's VM_BUG_ON(__page_count_is_frozen(page_count(page))) is true
    for a live count, so the refill's page_ref_add(page, 32768) on the fresh page (count 1)
    BUGs with CONFIG_DEBUG_VM."""
    mm, _ = boot("v2", "bug")
    nc = pfc.page_frag_cache("rx")
    with pytest.raises(VMBug) as ei:
        pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    f = ei.value.finding
    assert (f.kind, f.function) == ("VM_BUG_ON", "page_ref_add")
    assert f.check == "VM_BUG_ON(__page_count_is_frozen(page_count(page)))"
    assert f.raw_before == 1 and f.pfn == head(nc)
    # the oops stopped the refill before the add: the page still has its allocation count
    assert mm.refs.atomic_read(head(nc)) == 1
    # with debug_vm=warn the check is recorded and the refill goes on (1 + 32768)
    mm, n0 = boot("v2", "warn")
    nc = pfc.page_frag_cache("rx")
    assert pfc.page_frag_alloc(mm, nc, 100, ATOMIC) == base(head(nc))
    assert count(mm, head(nc)) == 32769
    got = [(f.kind, f.function) for f in frag_findings(mm, n0)]
    assert got == [("VM_BUG_ON", "page_ref_add")]
    # the fixed predicate of v3/final does not fire on the same add
    for model in ("v3", "final"):
        mm, n0 = boot(model, "bug")
        nc = pfc.page_frag_cache("rx")
        assert pfc.page_frag_alloc(mm, nc, 100, ATOMIC) is not None
        assert frag_findings(mm, n0) == []


# ------------------------------------------------------------------ exhausted, fragments alive
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_exhausted_page_with_live_fragments_lives_on_until_its_last_free(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    nc = pfc.page_frag_cache("rx")
    frags = alloc_n(mm, nc, 8, PAGE)
    a = head(nc)
    # 8 x 4096 = 32768 fills the order-3 page: offsets 0, 4096, ..., 28672
    assert frags == [base(a) + i * PAGE for i in range(8)]
    assert nc.offset == ORDER3_BYTES and nc.pagecnt_bias == 32769 - 8 == 32761
    assert count(mm, a) == 32769
    # 9th: 32768 + 4096 > 32768 -> page_ref_sub_and_test(page, 32761): 32769 - 32761 = 8, not
    # zero -> refill; the old page keeps one reference per live fragment
    nxt = pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC)
    b = head(nc)
    assert b != a and nxt == base(b)
    assert count(mm, a) == 8 and mm.frag_live[a] == 8
    assert count(mm, b) == 32769 and nc.pagecnt_bias == 32768 and nc.offset == PAGE
    assert [o for _g, o, _p in spy.allocs] == [3, 3]  # two order-3 refills
    assert spy.sites == []  # no reuse in place
    assert not on_free_list(mm, a) and spy.page_frees(a) == []
    valid(mm, nc)
    # free A's fragments out of order: 8 -> 7 -> ... -> 1, still allocated
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    for i, k in enumerate(order[:-1]):
        assert pfc.page_frag_free(mm, frags[k]) is False
        assert count(mm, a) == 8 - (i + 1)
        assert spy.frees == [] and not on_free_list(mm, a)
        valid(mm, nc)
    # the last one: put_page_testzero 1 -> 0 -> free_frozen_pages(A, compound_order 3)
    assert pfc.page_frag_free(mm, frags[order[-1]]) is True
    assert spy.frees == [(a, 3)] and spy.page_frees(a) == [(a, 3)]
    assert mm.refs.atomic_read(a) == FROZEN_RAW[model] and mm.refs.page_is_frozen(a)
    assert a in mm.pcp_pfns()  # order 3 <= PAGE_ALLOC_COSTLY_ORDER: pcp-able
    assert a not in mm.frag_live
    valid(mm, nc)
    found = frag_findings(mm, n0, {a, b})
    assert found == []
    if model in UNCONVERTED:
        # the head was frozen by the CAS, but its 7 tails sit at plain 0 (refcount.md §5.9)
        tails = [f for f in mm.findings[n0:] if f.kind == "unfrozen-free-entry" and f.pfn == a + 1]
        assert [(f.order, f.count) for f in tails] == [(3, 7)]


# ------------------------------------------------------------------ all freed: reuse in place
@pytest.mark.parametrize("sites", [None, "frag-unfreeze"])
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_all_fragments_freed_then_the_page_is_reused_in_place(model, debug_vm, sites, spy):
    mm, n0 = boot(model, debug_vm, sites=sites, spy=spy)
    nc = pfc.page_frag_cache("rx")
    frags = alloc_n(mm, nc, 8, PAGE)
    a = head(nc)
    for k in (5, 2, 7, 0, 1, 6, 3, 4):
        assert pfc.page_frag_free(mm, frags[k]) is False
        valid(mm, nc)
    # 32769 - 8 = 32761 = bias: no fragment alive; the cache still owns every reference
    assert count(mm, a) == 32761 == nc.pagecnt_bias and mm.frag_live[a] == 0
    # 9th: 32768 + 100 > 32768 -> sub_and_test(32761) reaches 0 -> not pfmemalloc -> reuse
    addr = pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    assert head(nc) == a and addr == base(a)  # same pfn, offset back to 0
    assert spy.sites == [("__page_frag_alloc_align", a)]
    # set_page_count / page_ref_unfreeze(page, 32768 + 1), then the fragment: bias 32769 - 1
    assert count(mm, a) == 32769 and mm.refs.atomic_read(a) == mm.refs.raw_for_count(32769)
    assert nc.pagecnt_bias == 32768 and nc.offset == 100
    assert count(mm, a) - nc.pagecnt_bias == 1 == mm.frag_live[a]
    # never went through the allocator: one refill only, no free, no free list
    assert len(spy.allocs) == 1 and spy.frees == [] and spy.page_frees(a) == []
    assert not on_free_list(mm, a)
    valid(mm, nc)
    assert frag_findings(mm, n0, {a}) == []
    want = {"baseline": 32769, "inverted": F + 32769}.get(model, 32769)  # inverted: BIT | 32769
    assert mm.refs.atomic_read(a) == want


@pytest.mark.parametrize("sites", ["baseline", "final", "frag-unfreeze"])
@pytest.mark.parametrize("model", MODELS)
def test_strict_setters_flag_the_raw_set_on_the_frozen_page(model, sites):
    """Zi Yan's ban: set_page_count(page, 32769) on the page page_ref_sub_and_test just froze
    is reported under the baseline and final tables; page_ref_unfreeze (frag-unfreeze) is not."""
    mm, _ = boot(model, sites=sites, strict=True)
    nc = pfc.page_frag_cache("rx")

    def strict() -> list[Finding]:
        return [
            f for f in mm.findings if f.kind == "strict-setters" and f.function == "__page_frag_alloc_align"
        ]

    for addr in alloc_n(mm, nc, 8, PAGE):
        pfc.page_frag_free(mm, addr)
    a = head(nc)
    assert strict() == []  # the refill's page_ref_add is no setter
    pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    assert head(nc) == a and count(mm, a) == 32769
    got = strict()
    if sites == "frag-unfreeze":
        assert got == []
        return
    assert len(got) == 1
    f = got[0]
    assert f.pfn == a and f.check == "set_page_count(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
    assert f.raw_before == FROZEN_RAW[model]  # the word the reuse overwrote
    assert f.raw_after == mm.refs.raw_for_count(32769)
    assert f.message.startswith("raw set_page_count on a frozen page") and f.sites == sites


@pytest.mark.parametrize("model", MODELS)
def test_page_ref_unfreeze_checks_what_set_page_count_assumes(model):
    """Why Zi Yan's conversion is more than a rename: at the reuse site page_ref_unfreeze
    asserts the page is frozen (VM_BUG_ON_PAGE(page_count(page) != 0)); set_page_count
    overwrites a live count silently. Shown on a live page (count 1) handed to the site."""
    for sites, bugs in (("final", False), ("baseline", False), ("frag-unfreeze", True)):
        mm, n0 = boot(model, "bug", sites=sites)
        p = mm.alloc(G.GFP_KERNEL, 0)
        assert p is not None and count(mm, p) == 1
        if not bugs:
            mm.site("__page_frag_alloc_align", p)  # 1 -> 32769, no check anywhere
            assert count(mm, p) == 32769 and frag_findings(mm, n0) == []
            continue
        with pytest.raises(VMBug) as ei:
            mm.site("__page_frag_alloc_align", p)
        f = ei.value.finding
        assert (f.function, f.check) == ("page_ref_unfreeze", "VM_BUG_ON_PAGE(page_count(page) != 0)")
        assert count(mm, p) == 1  # the BUG stopped the store


# ------------------------------------------------------------------ pfmemalloc
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_pfmemalloc_page_from_memory_pressure_goes_back_through_free_frozen_pages(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    held = exhaust_memory(mm, memalloc=False)
    # GFP_ATOMIC stops at its reserve (min 64 -> 64 - 64/2 = 32 -> 32 - 32/4 = 24 with
    # ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK): 992 taken, 1 left in the buddy (1 <= 24 fails the
    # watermark test) and 31 on the pcp list, which the watermark test does not count
    assert len(held) == NR_PAGES - 32 and mm.nr_free_pages() == 1 and len(mm.pcp_pfns()) == 31
    spy.allocs.clear()
    nc = pfc.page_frag_cache("swap-over-nfs")
    gfp = ATOMIC | G.__GFP_MEMALLOC
    a1 = pfc.page_frag_alloc(mm, nc, 2048, gfp)
    p = head(nc)
    # order 3 carries __GFP_NOMEMALLOC and fails below the watermark; order 0 with the caller's
    # __GFP_MEMALLOC gets ALLOC_NO_WATERMARKS in the slow path: prep_new_page marks it pfmemalloc
    assert [(g & G.__GFP_NOMEMALLOC != 0, o, pg is not None) for g, o, pg in spy.allocs] == [
        (True, 3, False),
        (False, 0, True),
    ]
    assert spy.allocs[1][0] == gfp
    assert mm.store.flags[p] & PG_pfmemalloc
    assert nc.encoded_page == base(p) | 0 | 0x100  # order 0, PAGE_FRAG_CACHE_PFMEMALLOC_BIT
    # 0 + 2048 then 2048 + 2048 = 4096, not > 4096: both fit
    assert a1 == base(p)
    a2 = pfc.page_frag_alloc(mm, nc, 2048, gfp)
    assert a2 == base(p) + 2048 and nc.pagecnt_bias == 32769 - 2 == 32767
    for a in (a2, a1):
        assert pfc.page_frag_free(mm, a) is False
    assert count(mm, p) == 32767 == nc.pagecnt_bias
    valid(mm, nc)
    n_allocs = len(spy.allocs)
    # 4096 + 2048 > 4096 -> sub_and_test(32767) = 0 -> pfmemalloc: free_frozen_pages(p, 0)
    a3 = pfc.page_frag_alloc(mm, nc, 2048, gfp)
    assert spy.frees == [(p, 0)] and spy.page_frees(p) == [(p, 0)]
    assert spy.sites == []  # not reused in place
    assert len(spy.allocs) == n_allocs + 2  # a full refill: order 3 (fails), then order 0
    q = head(nc)
    assert a3 == base(q) and nc.pagecnt_bias == 32768 and count(mm, q) == 32769
    valid(mm, nc)
    assert frag_findings(mm, n0, {p, q}) == []


@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_pfmemalloc_flag_set_by_hand_on_an_order3_page(model, debug_vm, spy, monkeypatch):
    """Focused: the first refill's page is marked PG_pfmemalloc as if it came from the reserves."""
    mm, n0 = boot(model, debug_vm, spy=spy)
    recording = pfc._alloc_pages
    marked: list[int] = []

    def alloc(m: Machine, gfp: int, order: int, nid: int) -> int | None:
        page = recording(m, gfp, order, nid)
        if page is not None and not marked:
            m.store.flags[page] |= PG_pfmemalloc
            marked.append(page)
        return page

    monkeypatch.setattr(pfc, "_alloc_pages", alloc)
    nc = pfc.page_frag_cache("rx")
    frags = alloc_n(mm, nc, 8, PAGE)
    a = head(nc)
    assert marked == [a] and nc.encoded_page == base(a) | 3 | 0x100
    for addr in frags:
        pfc.page_frag_free(mm, addr)
    assert count(mm, a) == 32761 == nc.pagecnt_bias
    pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC)
    # exhausted and every fragment back: pfmemalloc -> free_frozen_pages(A, 3), then refill
    assert spy.frees == [(a, 3)] and spy.page_frees(a) == [(a, 3)] and spy.sites == []
    assert len(spy.allocs) == 2
    b = head(nc)
    # prep_new_page clears PG_pfmemalloc on a normal allocation: the new page has no bit
    # (it may be A again, straight back from the pcp list)
    assert nc.encoded_page == base(b) | 3
    assert count(mm, b) == 32769 and nc.pagecnt_bias == 32768
    valid(mm, nc)
    assert frag_findings(mm, n0, {a, b}) == []


@pytest.mark.parametrize("model", MODELS)
def test_pfmemalloc_page_with_live_fragments_is_left_to_its_last_free(model, spy):
    """The pfmemalloc test comes after page_ref_sub_and_test: a still-referenced pfmemalloc page
    is not freed by the cache."""
    mm, n0 = boot(model, spy=spy)
    nc = pfc.page_frag_cache("rx")
    frags = alloc_n(mm, nc, 8, PAGE)
    a = head(nc)
    nc.encoded_page |= pfc.PAGE_FRAG_CACHE_PFMEMALLOC_BIT
    pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC)  # 32769 - 32761 = 8 left: goto refill
    assert head(nc) != a and spy.frees == [] and count(mm, a) == 8
    for addr in frags:
        pfc.page_frag_free(mm, addr)
    assert spy.frees == [(a, 3)]  # page_frag_free's put_page_testzero, not the pfmemalloc path
    valid(mm, nc)
    assert frag_findings(mm, n0, {a}) == []


# ------------------------------------------------------------------ drain
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_drain_with_live_fragments_returns_the_bias_and_the_last_free_frees(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    nc = pfc.page_frag_cache("rx")
    pfc.page_frag_cache_drain(mm, nc)  # encoded_page == 0: nothing to do
    assert spy.frees == [] and nc.encoded_page == 0
    frags = alloc_n(mm, nc, 3, 1000)
    a = head(nc)
    assert nc.pagecnt_bias == 32769 - 3 == 32766
    pfc.page_frag_cache_drain(mm, nc)
    # __page_frag_cache_drain(page, 32766): 32769 - 32766 = 3 = live fragments, not freed
    assert nc.encoded_page == 0 and count(mm, a) == 3 and spy.frees == []
    assert not on_free_list(mm, a)
    valid(mm, nc)
    # the cache refills a new page (A is still allocated)
    b_addr = pfc.page_frag_alloc(mm, nc, 1000, ATOMIC)
    b = head(nc)
    assert b != a and b_addr == base(b)
    for i, addr in enumerate((frags[1], frags[2])):
        assert pfc.page_frag_free(mm, addr) is False and count(mm, a) == 2 - i
        valid(mm, nc)
    assert pfc.page_frag_free(mm, frags[0]) is True  # 1 -> 0
    assert spy.frees == [(a, 3)] and spy.page_frees(a) == [(a, 3)]
    assert mm.refs.atomic_read(a) == FROZEN_RAW[model]
    # drain with no live fragment: 32768 - 32768 = 0 at the drain itself
    pfc.page_frag_free(mm, b_addr)
    assert count(mm, b) == nc.pagecnt_bias == 32768
    pfc.page_frag_cache_drain(mm, nc)
    assert spy.frees == [(a, 3), (b, 3)] and mm.refs.atomic_read(b) == FROZEN_RAW[model]
    valid(mm, nc)
    assert frag_findings(mm, n0, {a, b}) == []


@pytest.mark.parametrize("model", MODELS)
def test_drain_bugs_on_a_page_whose_count_is_already_zero(model):
    """__page_frag_cache_drain: VM_BUG_ON_PAGE(page_ref_count(page) == 0, page)."""
    mm, _ = boot(model)
    nc = pfc.page_frag_cache("rx")
    pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    a = head(nc)
    mm.refs.debug_vm = DebugVM.BUG
    mm.refs.atomic_set(a, mm.refs.frozen_raw())  # injected: the page is frozen under the cache
    with pytest.raises(VMBug) as ei:
        pfc.page_frag_cache_drain(mm, nc)
    f = ei.value.finding
    assert (f.kind, f.function, f.pfn) == ("VM_BUG_ON_PAGE", "__page_frag_cache_drain", a)
    assert f.raw_before == FROZEN_RAW[model]


# ------------------------------------------------------------------ order-3 refill fails
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_order3_refill_failing_falls_back_to_order0(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    held = exhaust_memory(mm)
    assert len(held) == NR_PAGES and mm.alloc(ATOMIC | G.__GFP_MEMALLOC, 0) is None
    # free every even pfn: each has its odd buddy still allocated, so nothing merges
    for p in held:
        if p % 2 == 0:
            mm.free(p, 0)
    zone = mm.zones[0]
    assert all(area.nr_free == 0 for area in zone.free_area[1:])
    # 512 freed = 448 in the buddy + 64 on the pcp list: far above the watermarks
    assert mm.nr_free_pages() == 448 and len(mm.pcp_pfns()) == 64
    spy.allocs.clear()
    nc = pfc.page_frag_cache("rx")
    first = pfc.page_frag_alloc(mm, nc, 1024, ATOMIC)
    p = head(nc)
    # order 3 (kernel gfp) finds no block >= order 3; order 0 with the caller's gfp succeeds
    assert [(o, pg is None) for _g, o, pg in spy.allocs] == [(3, True), (0, False)]
    assert spy.allocs[1][0] == ATOMIC
    assert nc.encoded_page == base(p) | 0  # order 0 in the low bits, no pfmemalloc
    assert mm.store.compound_order(p) == 0 and not mm.store.flags[p] & PG_pfmemalloc
    assert first == base(p) and count(mm, p) == 32769 and nc.pagecnt_bias == 32768
    # the cache is PAGE_SIZE = 4096 << 0: 4 x 1024 fill it exactly
    frags = [first, *alloc_n(mm, nc, 3, 1024)]
    assert frags == [base(p) + i * 1024 for i in range(4)] and nc.offset == PAGE
    for addr in frags:
        pfc.page_frag_free(mm, addr)
    # 4096 + 1024 > 4096: sub_and_test(32769 - 4 = 32765) = 0 -> reuse the order-0 page in place
    again = pfc.page_frag_alloc(mm, nc, 1024, ATOMIC)
    assert again == base(p) and spy.sites == [("__page_frag_alloc_align", p)]
    assert len(spy.allocs) == 2 and spy.frees == []
    # 8192 > PAGE_SIZE on the order-0 page: 1024 + 8192 > 4096 -> NULL, page kept
    assert pfc.page_frag_alloc(mm, nc, 8192, ATOMIC) is None and head(nc) == p
    valid(mm, nc)
    assert frag_findings(mm, n0, {p}) == []


# ------------------------------------------------------------------ alignment
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_alignment_is_the_kernels_align_kernel_mask(model, debug_vm):
    mm, n0 = boot(model, debug_vm)
    nc = pfc.page_frag_cache("rx")
    assert pfc.page_frag_alloc(mm, nc, 10, ATOMIC) is not None
    a = head(nc)
    b = base(a)
    # offset = __ALIGN_KERNEL_MASK(nc->offset, ~align_mask) = (x + (align - 1)) & ~(align - 1)
    cases = [
        (64, b + 64, 74),  # (10 + 63) & ~63 = 73 & ~63 = 64; 64 + 10 = 74
        (256, b + 256, 266),  # (74 + 255) & ~255 = 329 & ~255 = 256
        (4096, b + 4096, 4106),  # (266 + 4095) & ~4095 = 4361 & ~4095 = 4096
        (64, b + 4160, 4170),  # (4106 + 63) & ~63 = 4169 & ~63 = 4160
        (1, b + 4170, 4180),  # align 1: mask 0, offset unchanged
    ]
    for align, addr, off in cases:
        assert pfc.page_frag_alloc_align(mm, nc, 10, ATOMIC, align) == addr
        assert nc.offset == off
        valid(mm, nc)
    assert pfc.page_frag_alloc(mm, nc, 10, ATOMIC) == b + 4180  # ~0u: no alignment
    # 1 + 5 aligned + 1 = 7 fragments: bias 32769 - 7 = 32762
    assert nc.pagecnt_bias == 32762 and count(mm, a) == 32769
    # align 4096 near the end: (28673 + 4095) & ~4095 = 32768; 32768 + 10 > 32768 ->
    # exhausted with fragments alive -> refill; the new page starts at offset 0
    nc.offset = 28673
    addr = pfc.page_frag_alloc_align(mm, nc, 10, ATOMIC, 4096)
    assert head(nc) != a and addr == base(head(nc)) and nc.offset == 10
    assert count(mm, a) == 7
    assert frag_findings(mm, n0) == []


@pytest.mark.parametrize("model", MODELS)
def test_non_power_of_two_align_warns_and_computes_as_the_kernel(model):
    mm, n0 = boot(model)
    nc = pfc.page_frag_cache("rx")
    pfc.page_frag_alloc(mm, nc, 1, ATOMIC)
    b = base(head(nc))
    # align 48: align_mask = -48, mask = 47 = 0b101111;
    # (1 + 47) & ~47 = 0b110000 & ~0b101111 = 0b010000 = 16: not a multiple of 48
    assert pfc.page_frag_alloc_align(mm, nc, 1, ATOMIC, 48) == b + 16
    warns = [f for f in frag_findings(mm, n0) if f.kind == "WARN_ON_ONCE"]
    assert len(warns) == 1
    assert warns[0].function == "page_frag_alloc_align"
    assert warns[0].check == "WARN_ON_ONCE(!is_power_of_2(align))"
    # align 0 (is_power_of_2(0) is false): align_mask 0, mask 0xffffffff, so the offset is
    # (x + 0xffffffff) & 0 = 0: the fragment lands on offset 0 again, overlapping the first
    assert pfc.page_frag_alloc_align(mm, nc, 1, ATOMIC, 0) == b
    assert nc.offset == 1
    valid(mm, nc)


def test_non_power_of_two_align_warns_only_once():
    mm, n0 = boot("final")
    nc = pfc.page_frag_cache("rx")
    for _ in range(3):
        pfc.page_frag_alloc_align(mm, nc, 1, ATOMIC, 48)
    assert len([f for f in mm.findings[n0:] if f.kind == "WARN_ON_ONCE"]) == 1


# ------------------------------------------------------------------ fragsz > PAGE_SIZE
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_fragsz_over_page_size_on_an_exhausted_page_returns_null_and_keeps_the_page(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    nc = pfc.page_frag_cache("rx")
    # 8192 > PAGE_SIZE is fine while it fits: 4 x 8192 = 32768
    frags = alloc_n(mm, nc, 4, 8192)
    a = head(nc)
    assert frags == [base(a) + i * 8192 for i in range(4)]
    state = (nc.encoded_page, nc.offset, nc.pagecnt_bias, mm.refs.atomic_read(a))
    assert state[1:] == (32768, 32769 - 4, mm.refs.raw_for_count(32769))
    # 32768 + 8192 > 32768 and 8192 > 4096: NULL, nothing touched (no sub_and_test, no refill)
    assert pfc.page_frag_alloc(mm, nc, 8192, ATOMIC) is None
    assert (nc.encoded_page, nc.offset, nc.pagecnt_bias, mm.refs.atomic_read(a)) == state
    assert len(spy.allocs) == 1 and spy.frees == []
    valid(mm, nc)
    # PAGE_SIZE itself takes the exhausted path: 4 left -> refill
    assert pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC) is not None and head(nc) != a
    # fragsz larger than the whole order-3 page, on an empty cache: the refill happens first,
    # then 0 + 40000 > 32768 and 40000 > 4096 -> NULL; the fresh page stays cached, unused
    nc2 = pfc.page_frag_cache("tx")
    assert pfc.page_frag_alloc(mm, nc2, 40000, ATOMIC) is None
    c = head(nc2)
    assert nc2.encoded_page == base(c) | 3 and nc2.pagecnt_bias == 32769 == count(mm, c)
    valid(mm, nc, nc2)
    assert frag_findings(mm, n0) == []


def test_offset_plus_fragsz_wraps_as_unsigned_int():
    mm, _ = boot("baseline")
    nc = pfc.page_frag_cache("rx")
    pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC)
    b = base(head(nc))
    # kernel: offset 4096; (4096 + 0xfffff000) mod 2^32 = 0, not > 32768: served at offset
    # 4096, and nc->offset = (4096 + 0xfffff000) mod 2^32 = 0
    assert pfc.page_frag_alloc(mm, nc, (1 << 32) - PAGE, ATOMIC) == b + PAGE
    assert nc.offset == 0


# ------------------------------------------------------------------ the invariant
@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_invariant_holds_after_every_operation(model, debug_vm, spy):
    mm, n0 = boot(model, debug_vm, spy=spy)
    rng = random.Random(6)
    caches = [pfc.page_frag_cache("cpu0"), pfc.page_frag_cache("cpu1")]
    live: list[int] = []
    for step in range(600):
        r = rng.random()
        # a NIC ring: at most 6 fragments in flight, freed mostly oldest first
        if (r < 0.5 or not live) and len(live) < 6:
            nc = rng.choice(caches)
            size = rng.choice((64, 128, 256, 1500, 2048, 4096))
            if rng.random() < 0.3:
                addr = pfc.page_frag_alloc_align(mm, nc, size, ATOMIC, rng.choice((64, 256, 4096)))
            else:
                addr = pfc.page_frag_alloc(mm, nc, size, ATOMIC)
            assert addr is not None
            live.append(addr)
        elif r < 0.98:
            pfc.page_frag_free(mm, live.pop(rng.randrange(min(len(live), 4))))
        else:
            pfc.page_frag_cache_drain(mm, rng.choice(caches))
        assert pfc.validate_page_frag_cache(mm, caches) == [], step
        assert sum(mm.frag_live.values()) == len(live)
    for addr in live:
        pfc.page_frag_free(mm, addr)
    for nc in caches:
        pfc.page_frag_cache_drain(mm, nc)
    assert mm.frag_live == {}  # every page went back through free_frozen_pages
    assert len(spy.sites) >= 3  # the workload exercised reuse in place ...
    assert len(spy.frees) >= 3  # ... and pages freed by a drain or a last fragment
    valid(mm, *caches)
    mm.drain()
    assert mm.nr_free_pages() == NR_PAGES  # nothing leaked
    assert frag_findings(mm, n0, {p for p, _o in spy.frees}) == []


@pytest.mark.parametrize("model", MODELS)
def test_invariant_check_catches_injected_violations(model):
    mm, _ = boot(model)
    nc = pfc.page_frag_cache("rx")
    frags = alloc_n(mm, nc, 2, 100)
    a = head(nc)
    # a reference taken behind the cache's back: 32769 + 1 - 32767 = 3 != 2 live
    mm.refs.page_ref_inc(a)
    got = pfc.validate_page_frag_cache(mm, [nc])
    assert [(f.kind, f.function, f.pfn) for f in got] == [("invariant", "validate_page_frag_cache", a)]
    assert got[0].message == "cache rx: page_ref_count 32770, bias 32767, live fragments 2"
    mm.refs.page_ref_dec(a)
    valid(mm, nc)
    # a lost bias: 32769 - 32766 = 3 != 2
    nc.pagecnt_bias -= 1
    assert len(pfc.validate_page_frag_cache(mm, [nc])) == 1
    nc.pagecnt_bias += 1
    valid(mm, nc)
    # an exhausted (drained) page: count must equal the live fragments, 2
    pfc.page_frag_cache_drain(mm, nc)
    valid(mm, nc)
    mm.refs.page_ref_dec(a)  # 2 -> 1 with 2 fragments still out
    got = pfc.validate_page_frag_cache(mm, [nc])
    assert [f.message for f in got] == ["an exhausted page: page_ref_count 1, bias 0, live fragments 2"]
    mm.refs.page_ref_inc(a)
    for addr in frags:
        pfc.page_frag_free(mm, addr)
    valid(mm, nc)


@pytest.mark.parametrize("model", MODELS)
def test_reuse_of_a_page_on_a_free_list_is_reported(model):
    """The model's own check in the reuse path: a page reused in place is on no free list."""
    mm, n0 = boot(model)
    nc = pfc.page_frag_cache("rx")
    for addr in alloc_n(mm, nc, 8, PAGE):
        pfc.page_frag_free(mm, addr)
    a = head(nc)
    mm.store.flags[a] |= PG_pcp  # injected: pretend the page sits on a pcp list
    pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    got = [(f.kind, f.function, f.pfn) for f in frag_findings(mm, n0)]
    assert got == [("page_frag", "__page_frag_alloc_align", a)]
    mm.store.flags[a] &= ~PG_pcp & 0xFFFF


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_frag_page_freed_by_put_page_is_forgotten(model):
    mm, _ = boot(model)
    nc = pfc.page_frag_cache("rx")
    addr = pfc.page_frag_alloc(mm, nc, PAGE, ATOMIC)
    a = head(nc)
    mm.refs.get_page(a)  # skb_frag_ref: 32769 + 1
    pfc.page_frag_cache_drain(mm, nc)  # 32770 - 32768 = 2
    pfc.page_frag_free(mm, addr)  # 2 -> 1: frag_live[a] = 0, entry kept
    assert pa.put_page(mm, a) is True  # skb_frag_unref: 1 -> 0, freed
    valid(mm, nc)
    # the pfn comes back as an ordinary compound page (from the pcp list): count 1
    assert mm.alloc(G.GFP_KERNEL | G.__GFP_COMP, 3) == a
    valid(mm, nc)


# ------------------------------------------------------------------ refcount.md §5.10
def _all_freed(mm: Machine, nc: pfc.page_frag_cache) -> int:
    """8 x 4096 on one order-3 page, all freed: count 32769 - 8 = 32761 = bias."""
    for addr in alloc_n(mm, nc, 8, PAGE):
        pfc.page_frag_free(mm, addr)
    a = head(nc)
    assert count(mm, a) == nc.pagecnt_bias == 32761
    return a


@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_stale_getter_lands_between_the_freeze_and_the_reuse(model, debug_vm):
    """§5.10 order 1, step by step: T0 sub_and_test -> 0 (frozen); T1 get_page_unless_zero fails
    (a stale increment under the bit models); T0's reuse write wipes it: T1 got nothing."""
    outcomes = {}
    for sites in ("baseline", "final", "frag-unfreeze"):
        mm, n0 = boot(model, debug_vm, sites=sites)
        nc = pfc.page_frag_cache("rx")
        a = _all_freed(mm, nc)
        refs = mm.refs
        # T0: the exhausted-page path, first half
        assert refs.page_ref_sub_and_test(a, nc.pagecnt_bias) is True  # 32761 - 32761 = 0
        assert refs.atomic_read(a) == FROZEN_RAW[model]
        # T1: a stale speculative getter (e.g. a PFN walker)
        assert refs.get_page_unless_zero(a) is False
        assert refs.atomic_read(a) == STALE_RAW[model]
        assert refs.page_count(a) == 0 and refs.page_is_frozen(a)  # masked: reads as 0
        # T0: second half, the reuse call site. page_ref_unfreeze's VM_BUG_ON_PAGE(page_count
        # != 0) passes on F + 1 because page_count masks the frozen word (no VMBug with bug)
        mm.site("__page_frag_alloc_align", a)
        nc.pagecnt_bias = BIAS0
        nc.offset = 0
        # 32768 + 1: the store discarded F and T1's stale +1
        assert refs.atomic_read(a) == refs.raw_for_count(32769) and count(mm, a) == 32769
        # the cache carries on: one fragment at offset 0, bias 32769 - 1
        assert pfc.page_frag_alloc(mm, nc, 100, ATOMIC) == base(a) and nc.pagecnt_bias == 32768
        valid(mm, nc)
        assert frag_findings(mm, n0, {a}) == []
        outcomes[sites] = (refs.atomic_read(a), nc.pagecnt_bias)
    # set_page_count (baseline, final tables) and page_ref_unfreeze (frag-unfreeze) agree
    assert len(set(outcomes.values())) == 1


@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_stale_getter_inside_the_real_reuse_path(model, debug_vm):
    """The same interleaving through the real __page_frag_alloc_align: T1's add is run at the
    reuse call site, after page_ref_sub_and_test and before the write."""
    for sites in ("baseline", "final", "frag-unfreeze"):
        mm, n0 = boot(model, debug_vm, sites=sites)
        nc = pfc.page_frag_cache("rx")
        a = _all_freed(mm, nc)
        seen = _getter_at_the_reuse_site(mm)
        assert pfc.page_frag_alloc(mm, nc, 100, ATOMIC) == base(a)
        assert seen == [(FROZEN_RAW[model], False, STALE_RAW[model])]
        assert count(mm, a) == 32769 and nc.pagecnt_bias == 32768
        valid(mm, nc)
        assert frag_findings(mm, n0, {a}) == []


def _getter_at_the_reuse_site(mm: Machine) -> list[tuple[int, bool, int]]:
    """Run T1's get_page_unless_zero at the reuse call site, before its write; record
    (word before, result, word after)."""
    real_site = mm.site
    seen: list[tuple[int, bool, int]] = []

    def site(name: str, pfn: int) -> None:
        before = mm.refs.atomic_read(pfn)
        seen.append((before, mm.refs.get_page_unless_zero(pfn), mm.refs.atomic_read(pfn)))
        real_site(name, pfn)

    mm.site = site  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize(("model", "debug_vm"), CASES)
def test_getter_after_the_reuse_legitimately_succeeds(model, debug_vm):
    """§5.10 order 2: T1's add lands after the reuse write: 32769 + 1 = 32770, a real reference,
    exactly as in the baseline; T1's put gives it back."""
    for sites in ("baseline", "final", "frag-unfreeze"):
        mm, n0 = boot(model, debug_vm, sites=sites)
        nc = pfc.page_frag_cache("rx")
        a = _all_freed(mm, nc)
        assert pfc.page_frag_alloc(mm, nc, 100, ATOMIC) == base(a)  # reuse; bias 32768
        assert mm.refs.get_page_unless_zero(a) is True
        assert count(mm, a) == 32770 and mm.refs.atomic_read(a) == mm.refs.raw_for_count(32770)
        # T1's reference is no fragment: 32770 - 32768 = 2 != 1 live, until T1 puts it
        assert len(pfc.validate_page_frag_cache(mm, [nc])) == 1
        assert mm.refs.put_page_testzero(a) is False and count(mm, a) == 32769
        valid(mm, nc)
        assert frag_findings(mm, n0, {a}) == []


@pytest.mark.parametrize("model", [m for m in MODELS if m != "baseline"])
def test_getter_between_subtract_and_cas_aborts_the_reuse(model, spy):
    """§5.3 order A on the frag page (bit models only; impossible in the baseline, whose
    atomic_sub_and_test decides atomically): T1's get lands between the subtraction (-> 0) and
    the CAS (0 -> frozen): the CAS fails, sub_and_test is false, the cache refills and leaves
    the page to T1, whose put frees it."""
    mm, n0 = boot(model, spy=spy)
    nc = pfc.page_frag_cache("rx")
    a = _all_freed(mm, nc)
    refs = mm.refs
    real_cmpxchg = refs.atomic_cmpxchg
    seen: list[tuple[int, bool]] = []

    def cmpxchg(pfn: int, old: int, new: int) -> int:
        refs.atomic_cmpxchg = real_cmpxchg  # type: ignore[method-assign]
        seen.append((refs.atomic_read(pfn), refs.get_page_unless_zero(pfn)))
        return real_cmpxchg(pfn, old, new)

    refs.atomic_cmpxchg = cmpxchg  # type: ignore[method-assign]
    pfc.page_frag_alloc(mm, nc, 100, ATOMIC)
    zero = refs.raw_for_count(0) if model != "inverted" else F  # the abortable zero
    assert seen == [(zero, True)]
    assert head(nc) != a and spy.sites == [] and spy.frees == []
    assert count(mm, a) == 1  # T1's reference, nothing else
    assert pa.put_page(mm, a) is True  # 1 -> 0 -> CAS -> frozen: T1 frees
    assert spy.frees == [(a, 3)] and mm.refs.atomic_read(a) == FROZEN_RAW[model]
    assert frag_findings(mm, n0, {a}) == []


def test_frozen_and_stale_words_per_model_are_what_the_spec_says():
    """The tables above, checked against refcount.md §3.3/§4.5 once more by hand."""
    assert F == -(2**31) and F + 1 == -2147483647
    # RFC's one-shot reset brings F + 1 back to F; v1..final keep F + 1 (below 0xC0000000)
    assert (F + 1) & 0xFFFFFFFF == 0x80000001 < 0xC0000000
    # inverted: a live count n is BIT | n; 32769 -> 0x80008001
    assert (F + 32769) & 0xFFFFFFFF == 0x80008001
    mm, _ = boot("inverted")
    assert mm.refs.raw_for_count(32769) == F + 32769
