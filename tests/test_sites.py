"""Call-site tables (refcount.md §5.1): what each version writes at each allocator site.

Expected actions and words are written from §5.1 (Zi Yan's rule confirmed by Gorbunov: every
``set_page_count(.., 0)`` becomes the frozen setter, every ``set_page_count(.., 1)`` becomes
``init_page_count()``; ``page_frag_cache`` not converted; Zi Yan's ``page_ref_unfreeze``
proposal as the separate ``frag-unfreeze`` table) and §4.2 (what each frozen setter stores).
"""

from __future__ import annotations

import numpy as np
import pytest

from buddysim.findings import VMBug
from buddysim.refcount.baseline import Baseline
from buddysim.refcount.final import Final
from buddysim.refcount.inverted import Inverted
from buddysim.refcount.page_ref import INT_MIN, ListStorage, PageRefModel, PageRefTrace
from buddysim.refcount.rfc import RFC
from buddysim.refcount.sites import (
    PAGE_FRAG_CACHE_MAX_SIZE,
    SITE_TABLES,
    SITES,
    SiteAction,
    SiteTable,
    apply_site,
    apply_site_range,
)
from buddysim.refcount.v1 import V1
from buddysim.refcount.v2 import V2
from buddysim.refcount.v3 import V3

F = -0x80000000
MODELS: list[type[PageRefModel]] = [Baseline, RFC, V1, V2, V3, Final, Inverted]

SITE_ORDER = (
    "__free_pages_core",
    "set_page_refcounted",
    "__init_single_page",
    "init_cma_reserved_pageblock",
    "__init_zone_device_page",
    "hugetlb_folio_init_tail_vmemmap",
    "free_zone_device_folio",
    "__page_frag_alloc_align",
)

_SET0 = "set_page_count(page, 0)"
_FRAG_SET = "set_page_count(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
#: §5.1, table by table, in SITE_ORDER
EXPECTED_CODE = {
    "baseline": (
        _SET0,
        "set_page_count(page, 1)",
        "init_page_count(page)",
        _SET0,
        _SET0,
        _SET0,
        "folio_set_count(folio, 1)",
        _FRAG_SET,
    ),
    "v1": (
        _SET0,
        "set_page_count(page, 1)",
        "init_page_count(page)",
        _SET0,
        _SET0,
        _SET0,
        "folio_set_count(folio, 1)",
        _FRAG_SET,
    ),
    "v2": (
        "set_page_count_as_frozen(page)",
        "init_page_count(page)",
        "init_page_count(page)",
        "set_page_count_as_frozen(page)",
        "set_page_count_as_frozen(page)",
        "set_page_count_as_frozen(page)",
        "init_page_count(&folio->page)",
        _FRAG_SET,
    ),
    "final": (
        "set_page_count_frozen(page)",
        "init_page_count(page)",
        "init_page_count(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "folio_init_count(folio)",
        _FRAG_SET,
    ),
    "frag-unfreeze": (
        "set_page_count_frozen(page)",
        "init_page_count(page)",
        "init_page_count(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "folio_init_count(folio)",
        "page_ref_unfreeze(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)",
    ),
    "inverted": (
        "set_page_count_frozen(page)",
        "init_page_count(page)",
        "init_page_count(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "set_page_count_frozen(page)",
        "folio_init_count(folio)",
        _FRAG_SET,
    ),
}


def test_sites_and_tables() -> None:
    assert tuple(SITES) == SITE_ORDER
    assert list(SITE_TABLES) == list(EXPECTED_CODE)
    assert PAGE_FRAG_CACHE_MAX_SIZE == 32768


@pytest.mark.parametrize("table", list(EXPECTED_CODE))
def test_table_contents(table: str) -> None:
    t = SITE_TABLES[table]
    assert t.name == table
    assert tuple(t.action(s).describe() for s in SITE_ORDER) == EXPECTED_CODE[table]


# What apply_site leaves, each model with its own default table, from a page holding 7:
#   site rows in SITE_ORDER; "frozen?" = page_is_frozen afterwards for the 0/frozen writes.
#            baseline  rfc  v1   v2   v3   final  inverted
WORDS = {
    "__free_pages_core": (0, 0, 0, 0, 0, F, 0),
    "set_page_refcounted": (1, 1, 1, 1, 1, 1, F + 1),
    "__init_single_page": (1, 1, 1, 1, 1, 1, F + 1),
    "init_cma_reserved_pageblock": (0, 0, 0, 0, 0, F, 0),
    "__init_zone_device_page": (0, 0, 0, 0, 0, F, 0),
    "hugetlb_folio_init_tail_vmemmap": (0, 0, 0, 0, 0, F, 0),
    "free_zone_device_folio": (1, 1, 1, 1, 1, 1, F + 1),
    "__page_frag_alloc_align": (32769, 32769, 32769, 32769, 32769, 32769, F + 32769),
}
#: §5.5: whether the page is frozen after __free_pages_core. Only v4+ (and upstream, where 0 is
#: frozen, and the inverted encoding, where it is harmless) close David's permanent-zero hole.
FROZEN_AFTER_FREE_PAGES_CORE = (True, False, False, False, False, True, True)


@pytest.mark.parametrize("site", SITE_ORDER)
@pytest.mark.parametrize("i", range(len(MODELS)), ids=[m.name for m in MODELS])
def test_apply_site_with_default_table(i: int, site: str) -> None:
    cls = MODELS[i]
    m = cls(ListStorage(1, 7), debug_vm="warn")
    act = apply_site(m, SITE_TABLES[cls.default_sites], site, 0)
    assert act is SITE_TABLES[cls.default_sites].action(site)
    assert m.atomic_read(0) == WORDS[site][i]
    assert m.findings == []
    if site == "__free_pages_core":
        assert m.page_is_frozen(0) is FROZEN_AFTER_FREE_PAGES_CORE[i]


@pytest.mark.parametrize(
    ("cls", "table"),
    [(Baseline, "baseline"), (V1, "v1"), (V2, "v2"), (V3, "v2")],
    ids=["baseline", "v1", "v2", "v3"],
)
def test_free_pages_core_leaves_zero_before_v4(cls: type[PageRefModel], table: str) -> None:
    m = cls(ListStorage(1, F + 9))
    apply_site(m, SITE_TABLES[table], "__free_pages_core", 0)
    assert m.atomic_read(0) == 0


def test_free_pages_core_leaves_frozen_bit_under_final() -> None:
    m = Final(ListStorage(1, 1))
    apply_site(m, SITE_TABLES["final"], "__free_pages_core", 0)
    assert m.atomic_read(0) == F and m.page_is_frozen(0)


def test_final_semantics_on_unconverted_sites_leave_a_gettable_zero() -> None:
    """--refcount final --sites baseline: 0 is not frozen under final (§5.5's hole)."""
    m = Final(ListStorage(1, 1))
    apply_site(m, SITE_TABLES["baseline"], "__free_pages_core", 0)
    assert m.atomic_read(0) == 0
    assert not m.page_is_frozen(0)
    assert m.get_page_unless_zero(0) is True  # the PFN walker's get succeeds


def test_set_and_init_actions_are_model_independent() -> None:
    """set(v)/init store v's encoding under any model and any table."""
    for cls in MODELS:
        for t in SITE_TABLES.values():
            m = cls(ListStorage(1, 3))
            apply_site(m, t, "__init_single_page", 0)
            assert m.page_ref_count(0) == 1, (cls.name, t.name)


def test_frag_unfreeze_table_uses_page_ref_unfreeze() -> None:
    t = SITE_TABLES["frag-unfreeze"]
    assert t.action("__page_frag_alloc_align") == SiteAction(
        "unfreeze", 32769, "page_ref_unfreeze(page, PAGE_FRAG_CACHE_MAX_SIZE + 1)"
    )
    events: list[PageRefTrace] = []
    m = Final(ListStorage(1, F + 1), debug_vm="bug", trace=events.append)  # frozen, stale increment
    apply_site(m, t, "__page_frag_alloc_align", 0)
    assert m.atomic_read(0) == 32769
    assert events == [PageRefTrace("page_ref_unfreeze", 0, 32769, None, 32769)]
    # unfreeze checks the page is frozen; set_page_count (the final table) does not
    live = Final(ListStorage(1, 2), debug_vm="bug")
    with pytest.raises(VMBug) as e:
        apply_site(live, t, "__page_frag_alloc_align", 0)
    assert (e.value.finding.kind, e.value.finding.function) == ("VM_BUG_ON_PAGE", "page_ref_unfreeze")
    assert live.atomic_read(0) == 2
    apply_site(live, SITE_TABLES["final"], "__page_frag_alloc_align", 0)
    assert live.atomic_read(0) == 32769


def test_unknown_site() -> None:
    with pytest.raises(KeyError, match="unknown refcount call site 'nosuch'"):
        apply_site(Final(), SITE_TABLES["final"], "nosuch", 0)
    with pytest.raises(KeyError, match="unknown refcount call site 'nosuch'"):
        SITE_TABLES["final"].with_actions("x", "x", nosuch=SiteAction("set", 0))


def test_site_table_must_cover_every_site() -> None:
    with pytest.raises(ValueError, match="lacks sites"):
        SiteTable("partial", "", {"__free_pages_core": SiteAction("set", 0)})


def test_with_actions_leaves_the_original_alone() -> None:
    t = SITE_TABLES["final"].with_actions("mine", "d", __free_pages_core=SiteAction("set", 0, "x"))
    assert t.action("__free_pages_core").describe() == "x"
    assert SITE_TABLES["final"].action("__free_pages_core").describe() == "set_page_count_frozen(page)"


# ------------------------------------------------------------------------------ ranges
#: a mixed start array: live, zero, frozen, stale, over the limit, inverted-live values
START = np.array([7, 0, 1, F, F + 5, -0x40000000, -1, 3, F + 1, 2], dtype=np.int32)
RANGE = (1, 8)  # pfns 1..8; pfn 0 and pfn 9 must stay untouched


def _run(cls: type[PageRefModel], table: SiteTable, site: str, ranged: bool, trace: bool):
    st = ListStorage(len(START))
    st.refcount_np[:] = START
    events: list[PageRefTrace] = []
    m = cls(st, debug_vm="warn", trace=events.append if trace else None)
    start, nr = RANGE
    if ranged:
        apply_site_range(m, table, site, start, nr)
    else:
        for pfn in range(start, start + nr):
            apply_site(m, table, site, pfn)
    return st.refcount_np.copy(), events, [(f.kind, f.pfn) for f in m.findings]


@pytest.mark.parametrize("table", list(SITE_TABLES))
@pytest.mark.parametrize("cls", MODELS, ids=[m.name for m in MODELS])
@pytest.mark.parametrize("trace", [False, True], ids=["notrace", "trace"])
def test_apply_site_range_equals_per_page(cls: type[PageRefModel], table: str, trace: bool) -> None:
    t = SITE_TABLES[table]
    for site in SITE_ORDER:
        want_words, want_events, want_findings = _run(cls, t, site, ranged=False, trace=trace)
        got_words, got_events, got_findings = _run(cls, t, site, ranged=True, trace=trace)
        assert np.array_equal(got_words, want_words), site
        assert got_words[0] == START[0] and got_words[-1] == START[-1], site
        assert got_events == want_events, site
        assert got_findings == want_findings, site
        if trace:
            start, nr = RANGE
            assert [e.pfn for e in got_events] == list(range(start, start + nr)), site
            kind = t.action(site).kind
            name = "page_ref_unfreeze" if kind == "unfreeze" else "page_ref_set"
            assert {e.event for e in got_events} == {name}, site


def test_apply_site_range_trace_events_spelled_out() -> None:
    events: list[PageRefTrace] = []
    m = Final(ListStorage(4, 1), trace=events.append)
    apply_site_range(m, SITE_TABLES["final"], "__free_pages_core", 1, 2)
    # set_page_count_frozen: page_ref_set with v = INT_MIN, count 0
    assert events == [
        PageRefTrace("page_ref_set", 1, INT_MIN, None, 0),
        PageRefTrace("page_ref_set", 2, INT_MIN, None, 0),
    ]
    assert list(m.storage.refcount_np) == [1, F, F, 1]
    events.clear()
    inv = Inverted(ListStorage(3), trace=events.append)
    apply_site_range(inv, SITE_TABLES["inverted"], "set_page_refcounted", 0, 3)
    # init_page_count: the kernel value 1 is logged, the inverted word is F|1
    assert events == [PageRefTrace("page_ref_set", p, 1, None, 1) for p in range(3)]
    assert list(inv.storage.refcount_np) == [F + 1] * 3


def test_apply_site_range_fast_path_words() -> None:
    """Without tracing the range is written at C speed; spelled-out words per model."""
    for cls, table, want in [
        (Baseline, "baseline", 0),
        (V2, "v2", 0),
        (Final, "final", F),
        (Inverted, "inverted", 0),
    ]:
        m = cls(ListStorage(6, 5))
        apply_site_range(m, SITE_TABLES[table], "hugetlb_folio_init_tail_vmemmap", 1, 4)
        assert list(m.storage.refcount_np) == [5, want, want, want, want, 5], cls.name
