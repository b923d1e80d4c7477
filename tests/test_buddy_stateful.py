"""Hypothesis state machines for the buddy allocator, checked against an independent oracle.

The oracle is written here, not borrowed from the product: a map ``pfn -> Live(order,
compound, frozen, refs)`` of every allocation the test holds, built only from what the
allocator returned and what the test did. After every step it is compared with the machine (every managed pfn is in
exactly one of: a free block, a pcp entry, a live allocation; the free and pcp counters add up;
the live pages read the refcounts the kernel promises) and the product's own ``validate_all``
must be silent. An allocation that fails is checked too: no allowed zone may have had both a
usable block and free pages above its min watermark plus lowmem_reserve.

Machines run under the "baseline" and the "final" refcount models, and a differential machine
drives one of each with the same operations and demands the same pfns, the same free lists
(order, migratetype, list order), the same pcp lists and the same refcount reads.

The last tests inject known bugs into the model and show which invariant catches each one.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import one_zone

from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_all
from buddysim.mm.gfp import (
    __GFP_COMP,
    __GFP_DMA,
    __GFP_DMA32,
    __GFP_HIGHMEM,
    __GFP_MOVABLE,
    __GFP_RECLAIMABLE,
    GFP_ATOMIC,
    GFP_DMA,
    GFP_DMA32,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_NOWAIT,
)
from buddysim.mm.internal import set_buddy_order, set_pageblock_migratetype
from buddysim.mm.mmzone import (
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
)
from buddysim.refcount.sites import SITE_TABLES, SiteAction

# names with two leading underscores are mangled inside class bodies: alias them
GFP_COMP = __GFP_COMP

# ---------------------------------------------------------------------------------- oracle helpers

GFPS = {
    "GFP_KERNEL": GFP_KERNEL,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE,
    "GFP_KERNEL|__GFP_RECLAIMABLE": GFP_KERNEL | __GFP_RECLAIMABLE,
    "GFP_ATOMIC": GFP_ATOMIC,
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_KERNEL|GFP_DMA": GFP_KERNEL | GFP_DMA,
    "GFP_KERNEL|GFP_DMA32": GFP_KERNEL | GFP_DMA32,
}


def highest_zoneidx(gfp: int) -> int:
    """GFP_ZONE_TABLE for the flags used here (spec §1.5), written out independently."""
    if gfp & __GFP_DMA:
        return ZONE_DMA
    if gfp & __GFP_DMA32:
        return ZONE_DMA32
    if gfp & __GFP_MOVABLE and gfp & __GFP_HIGHMEM:
        return ZONE_MOVABLE
    return ZONE_NORMAL


@dataclass
class Live:
    """One allocation the test holds: its order, its shape, the head's expected count."""

    order: int
    compound: bool  # __GFP_COMP with order > 0: a folio
    frozen: bool  # from alloc_frozen_pages: refcount stays frozen
    refs: int  # expected page_ref_count(head)


@dataclass(frozen=True)
class Config:
    """A small machine: zones as (zone_idx, end_pfn), orders, CPUs, a reserved head range."""

    zones: tuple[tuple[int, int], ...]
    max_page_order: int
    pageblock_order: int
    nr_cpus: int
    reserved: int

    @property
    def nr_pages(self) -> int:
        return self.zones[-1][1]


@st.composite
def configs(draw) -> Config:
    max_order = draw(st.integers(3, 5))
    pageblock_order = draw(st.integers(2, 3))
    nr_cpus = draw(st.integers(2, 4))
    idxs = draw(
        st.sampled_from(
            [(ZONE_DMA, ZONE_DMA32, ZONE_NORMAL), (ZONE_DMA, ZONE_NORMAL), (ZONE_DMA32, ZONE_NORMAL)]
        )
    )
    # zone sizes in units of 64 pages: every boundary is MAX_ORDER aligned (spec §1.3) for
    # max orders <= 6; at least 448 pages in all (smaller machines hit the pcp clamp corner
    # case tested in test_pcp.py)
    units = [draw(st.integers(1, 8)) for _ in idxs]
    units[-1] += max(0, 7 - sum(units))
    ends = list(itertools.accumulate(64 * u for u in units))
    reserved = draw(st.sampled_from([0, 1, 5]))
    return Config(tuple(zip(idxs, ends, strict=True)), max_order, pageblock_order, nr_cpus, reserved)


def build(cfg: Config, model: str) -> Machine:
    mm = Machine.simple(
        cfg.nr_pages,
        zones=list(cfg.zones),
        max_page_order=cfg.max_page_order,
        pageblock_order=cfg.pageblock_order,
        nr_cpus=cfg.nr_cpus,
        reserved=[(0, cfg.reserved)] if cfg.reserved else [],
        refcount=model,
        debug_vm="warn",
    )
    mm.boot()
    return mm


def free_lists(mm: Machine) -> list:
    return [
        (z.name, o, mt, list(lst))
        for z in mm.zones
        for o, area in enumerate(z.free_area)
        for mt, lst in enumerate(area.free_list)
        if lst
    ]


def pcp_lists(mm: Machine) -> list:
    return [
        (z.name, pcp.cpu, i, list(lst))
        for z in mm.zones
        for pcp in z.per_cpu_pageset
        for i, lst in enumerate(pcp.lists)
        if lst
    ]


# ---------------------------------------------------------------------------------- the machine


class BuddyMachine(RuleBasedStateMachine):
    """alloc / frozen alloc / free / put with extra refs / non-compound held free / drain."""

    MODELS: tuple[str, ...] = ("baseline",)

    blocks = Bundle("blocks")  # live allocations with one owner (refcount 1)
    frozen = Bundle("frozen")  # alloc_frozen_pages allocations (refcount frozen)
    shared = Bundle("shared")  # live allocations with one extra (get_page) reference

    def __init__(self) -> None:
        super().__init__()
        self.mms: list[Machine] = []
        self.live: dict[int, Live] = {}

    # -------------------------------------------------------------------- setup
    @initialize(cfg=configs())
    def boot(self, cfg: Config) -> None:
        self.cfg = cfg
        self.mms = [build(cfg, m) for m in self.MODELS]
        self.managed = set(range(cfg.reserved, cfg.nr_pages))
        self.zone_of = {}
        for end_prev, (_zidx, end) in zip([0, *[e for _, e in cfg.zones]], cfg.zones, strict=False):
            for p in range(end_prev, end):
                self.zone_of[p] = _zidx
        for mm in self.mms:
            # boot handed every non-reserved page to the buddy allocator
            assert mm.totalram_pages == len(self.managed)
            assert mm.free_pfns() == self.managed

    @property
    def mm(self) -> Machine:
        return self.mms[0]

    def allocated(self) -> set[int]:
        out: set[int] = set()
        for pfn, a in self.live.items():
            out.update(range(pfn, pfn + (1 << a.order)))
        return out

    def _same(self, results: list):
        assert all(r == results[0] for r in results), f"models disagree: {results}"
        return results[0]

    # -------------------------------------------------------------------- allocation
    def _check_new_block(self, pfn: int, order: int, gfp: int) -> None:
        nr = 1 << order
        assert pfn % nr == 0, f"order-{order} block at {pfn:#x} is not naturally aligned"
        block = set(range(pfn, pfn + nr))
        assert block <= self.managed, f"block at {pfn:#x} holds unmanaged pages"
        assert not block & self.allocated(), f"block at {pfn:#x} overlaps a live allocation"
        zones = {self.zone_of[p] for p in block}
        assert len(zones) == 1, f"block at {pfn:#x} spans zones {zones}"
        assert zones.pop() <= highest_zoneidx(gfp), f"block at {pfn:#x} above the gfp's highest zone"

    def _check_failure(self, mm: Machine, gfp: int, order: int) -> None:
        """A failed allocation: no allowed zone could have served it (spec §4.3, §4.8)."""
        if order > mm.MAX_PAGE_ORDER:
            return
        hi = highest_zoneidx(gfp)
        for z in mm.zones:
            if z.zone_idx > hi:
                continue
            usable = z.NR_FREE_PAGES - z.nr_free_highatomic - ((1 << order) - 1)
            block = any(
                z.free_area[o].free_list[mt]
                for o in range(order, mm.MAX_PAGE_ORDER + 1)
                for mt in range(MIGRATE_PCPTYPES)
            )
            assert not (block and usable > z.min_wmark_pages() + z.lowmem_reserve[hi]), (
                f"order-{order} allocation failed although zone {z.name} has {usable} usable free "
                f"pages (min {z.min_wmark_pages()}, reserve {z.lowmem_reserve[hi]}) and a block"
            )

    def _alloc(self, gfp_name: str, order: int, comp: bool, cpu: int, frozen: bool):
        gfp = GFPS[gfp_name] | (GFP_COMP if comp else 0)
        cpu %= self.cfg.nr_cpus
        pfn = self._same([mm.alloc(gfp, order, cpu=cpu, frozen=frozen) for mm in self.mms])
        if pfn is None:
            for mm in self.mms:
                self._check_failure(mm, gfp, order)
            return multiple()
        assert order <= self.mm.MAX_PAGE_ORDER, "order above MAX_PAGE_ORDER must fail"
        self._check_new_block(pfn, order, gfp)
        self.live[pfn] = Live(order, comp and order > 0, frozen, 0 if frozen else 1)
        return pfn

    orders = st.one_of(st.integers(0, 2), st.integers(0, 6))

    @rule(
        target=blocks,
        gfp=st.sampled_from(sorted(GFPS)),
        order=orders,
        comp=st.booleans(),
        cpu=st.integers(0, 3),
    )
    def alloc(self, gfp, order, comp, cpu):
        return self._alloc(gfp, order, comp, cpu, frozen=False)

    @rule(
        target=blocks,
        gfp=st.sampled_from(sorted(GFPS)),
        order=st.integers(0, 3),
        count=st.integers(4, 48),
        cpu=st.integers(0, 3),
    )
    def alloc_burst(self, gfp, order, count, cpu):
        """Many allocations in a row: drives the zones into fallbacks, reserves and failure."""
        got = []
        for _ in range(count):
            r = self._alloc(gfp, order, False, cpu, frozen=False)
            if isinstance(r, int):
                got.append(r)
        event("burst ended in a failure" if len(got) < count else "burst fully served")
        return multiple(*got)

    @rule(
        target=frozen,
        gfp=st.sampled_from(sorted(GFPS)),
        order=orders,
        comp=st.booleans(),
        cpu=st.integers(0, 3),
    )
    def alloc_frozen(self, gfp, order, comp, cpu):
        return self._alloc(gfp, order, comp, cpu, frozen=True)

    # -------------------------------------------------------------------- freeing
    @rule(pfn=consumes(blocks), use_put=st.booleans(), tail=st.integers(0, 63), cpu=st.integers(0, 3))
    def free(self, pfn, use_put, tail, cpu):
        """The sole owner lets go: ``put_page`` (on any page of a folio) or ``__free_pages``."""
        a = self.live.pop(pfn)
        cpu %= self.cfg.nr_cpus
        for mm in self.mms:
            if a.compound and use_put:
                assert mm.put(pfn + tail % (1 << a.order), cpu=cpu)
            elif a.order == 0 and use_put:
                assert mm.put(pfn, cpu=cpu)
            else:
                mm.free(pfn, a.order, cpu=cpu)

    @rule(pfn=consumes(frozen), cpu=st.integers(0, 3))
    def free_frozen(self, pfn, cpu):
        """``free_frozen_pages`` of a frozen allocation (the slab way)."""
        a = self.live.pop(pfn)
        for mm in self.mms:
            mm.free(pfn, a.order, cpu=cpu % self.cfg.nr_cpus, frozen=True)

    @rule(target=shared, pfn=consumes(blocks), tail=st.integers(0, 63))
    def get_ref(self, pfn, tail):
        """Someone else takes a reference: ``get_page`` on a folio page, or the speculative
        ``get_page_unless_zero`` on page[0] of a non-compound block."""
        a = self.live[pfn]
        for mm in self.mms:
            if a.compound:
                mm.refs.get_page(pfn + tail % (1 << a.order))
            else:
                assert mm.refs.get_page_unless_zero(pfn)
        a.refs += 1
        return pfn

    @rule(target=blocks, pfn=consumes(shared), tail=st.integers(0, 63), cpu=st.integers(0, 3))
    def drop_ref(self, pfn, tail, cpu):
        """The extra holder's ``put_page``: not the last reference, nothing is freed."""
        a = self.live[pfn]
        for mm in self.mms:
            page = pfn + tail % (1 << a.order) if a.compound else pfn
            assert not mm.put(page, cpu=cpu % self.cfg.nr_cpus)
        a.refs -= 1
        return pfn

    @rule(target=blocks, pfn=consumes(shared), use_put=st.booleans(), cpu=st.integers(0, 3))
    def owner_free_while_held(self, pfn, use_put, cpu):
        """The owner frees while the extra reference is held.

        Compound: nothing is freed, the other holder now owns the folio. Non-compound
        (``___free_pages``): every page but page[0] is freed now (page+2^o for o =
        order-1..0), page[0] stays with the other holder's reference (lib/test_free_pages.c).
        """
        a = self.live[pfn]
        cpu %= self.cfg.nr_cpus
        for mm in self.mms:
            if a.compound and use_put:
                assert not mm.put(pfn, cpu=cpu)
            else:
                mm.free(pfn, a.order, cpu=cpu)
        if not a.compound:
            a.order = 0
        a.refs -= 1
        return pfn

    @rule(cpu=st.one_of(st.none(), st.integers(0, 3)))
    def drain(self, cpu):
        """``drain_all_pages`` (None) or one CPU's ``drain_local_pages``."""
        for mm in self.mms:
            mm.drain(None if cpu is None else cpu % self.cfg.nr_cpus)
        if cpu is None:
            for mm in self.mms:
                assert mm.pcp_pfns() == set()
                assert all(pcp.count == 0 for z in mm.zones for pcp in z.per_cpu_pageset)

    @precondition(
        lambda self: any(pcp.count for mm in self.mms[:1] for z in mm.zones for pcp in z.per_cpu_pageset)
    )
    @rule(cpu=st.integers(0, 3))
    def drain_busy_cpu(self, cpu):
        """Drain the first CPU (from ``cpu`` on) that holds pcp pages; only when one does."""
        n = self.cfg.nr_cpus
        busy = [c for c in range(n) if any(z.per_cpu_pageset[c].count for z in self.mm.zones)]
        cpu = min(busy, key=lambda c: (c - cpu) % n)
        for mm in self.mms:
            before = {z.name: z.per_cpu_pageset[cpu].count for z in mm.zones}
            free_before = mm.nr_free_pages()
            mm.drain(cpu)
            assert all(z.per_cpu_pageset[cpu].count == 0 for z in mm.zones)
            assert mm.nr_free_pages() == free_before + sum(before.values())

    # -------------------------------------------------------------------- invariants
    @invariant()
    def models_agree(self):
        """Differential (STYLE.md §3): same free lists, pcp lists and refcount reads."""
        if len(self.mms) < 2:
            return
        a, b = self.mms
        assert free_lists(a) == free_lists(b)
        assert pcp_lists(a) == pcp_lists(b)
        for z1, z2 in zip(a.zones, b.zones, strict=True):
            assert [area.nr_free for area in z1.free_area] == [area.nr_free for area in z2.free_area]
            assert z1.NR_FREE_PAGES == z2.NR_FREE_PAGES
        for pfn, live in self.live.items():
            for p in range(pfn, pfn + (1 << live.order)):
                assert a.refs.page_ref_count(p) == b.refs.page_ref_count(p)

    @invariant()
    def partition_matches_oracle(self):
        if not self.mms:
            return
        allocated = self.allocated()
        for mm in self.mms:
            free = mm.free_pfns()
            pcp = mm.pcp_pfns()
            assert not free & pcp, f"pfns both free and on pcp: {sorted(free & pcp)[:8]}"
            assert not free & allocated, f"allocated pfns on free lists: {sorted(free & allocated)[:8]}"
            assert not pcp & allocated, f"allocated pfns on pcp lists: {sorted(pcp & allocated)[:8]}"
            union = free | pcp | allocated
            assert union == self.managed, (
                f"leaked {sorted(self.managed - union)[:8]}, invented {sorted(union - self.managed)[:8]}"
            )
            pcp_pages = sum(pcp.count for z in mm.zones for pcp in z.per_cpu_pageset)
            assert mm.nr_free_pages() + pcp_pages == len(self.managed) - len(allocated)
            for z in mm.zones:
                in_zone = sum(1 for p in allocated if z.zone_spans_pfn(p))
                assert z.NR_FREE_PAGES + z.pcp_pages() == z.managed_pages - in_zone

    @invariant()
    def refcounts_of_live_pages(self):
        for mm in self.mms:
            refs = mm.refs
            for pfn, a in self.live.items():
                assert refs.page_ref_count(pfn) == a.refs, (
                    f"order-{a.order} head {pfn:#x} reads {refs.page_ref_count(pfn)}, want {a.refs}"
                )
                assert refs.page_is_frozen(pfn) == a.frozen
                assert mm.store.compound_order(pfn) == (a.order if a.compound else 0)
                for p in range(pfn + 1, pfn + (1 << a.order)):
                    assert refs.page_ref_count(p) == 0, f"tail {p:#x} of {pfn:#x} has a count"
                    if a.compound:
                        assert mm.store.compound_head(p) == pfn

    @invariant()
    def product_invariants_hold(self):
        for mm in self.mms:
            found = validate_all(mm)
            assert found == [], "\n".join(f.describe() for f in found[:5])
            assert mm.findings == [], "\n".join(f.describe() for f in mm.findings[:5])


class BaselineMachine(BuddyMachine):
    MODELS = ("baseline",)


class FinalMachine(BuddyMachine):
    MODELS = ("final",)


class DifferentialMachine(BuddyMachine):
    MODELS = ("baseline", "final")


def _capped(max_examples: int, steps: int) -> settings:
    """The active profile, capped so the three machines stay within the suite's time budget
    (about 25 s for all three on two cores); the ``stress`` profile runs uncapped."""
    cur = settings()
    if os.environ.get("HYPOTHESIS_PROFILE") == "stress":
        max_examples, steps = cur.max_examples, cur.stateful_step_count
    return settings(
        cur,
        max_examples=min(cur.max_examples, max_examples),
        stateful_step_count=min(cur.stateful_step_count, steps),
        deadline=None,
        suppress_health_check=[*cur.suppress_health_check, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


TestBaselineMachine = BaselineMachine.TestCase
TestBaselineMachine.settings = _capped(100, 50)
TestFinalMachine = FinalMachine.TestCase
TestFinalMachine.settings = _capped(100, 50)
TestDifferentialMachine = DifferentialMachine.TestCase
TestDifferentialMachine.settings = _capped(50, 50)


# ---------------------------------------------------------------------------------- injected bugs
#
# Each test plants one known bug in the model, drives it, and asserts WHICH invariant reports
# it. Without the bug the same scenario is clean (checked first), so the finding is the bug's.


def _checks(mm: Machine) -> set[str]:
    return {f.check for f in validate_all(mm)}


def _isolation_scenario() -> tuple[Machine, int]:
    """32 pages, MAX order 3, pageblocks of 4: an order-2 block [0,4) allocated, its
    pageblock isolated (as start_isolate_page_range would: bit set, counter bumped), while its
    buddy [4,8) is a free MOVABLE order-2 block."""
    mm = one_zone(32, ZONE_DMA, max_page_order=3, pageblock_order=2, nr_cpus=1, min_free_kbytes=0)
    pfn = mm.alloc(GFP_HIGHUSER_MOVABLE, 2, cpu=0)
    assert pfn == 0
    set_pageblock_migratetype(mm.store, pfn, MIGRATE_ISOLATE)
    mm.zones[0].nr_isolate_pageblock += 1
    return mm, pfn


def test_isolation_scenario_is_clean_without_the_bug():
    mm, pfn = _isolation_scenario()
    mm.free(pfn, 2, cpu=0)
    zone = mm.zones[0]
    assert list(zone.free_area[2].free_list[MIGRATE_ISOLATE]) == [0]
    assert list(zone.free_area[2].free_list[MIGRATE_MOVABLE]) == [4]
    assert validate_all(mm) == []


def test_injected_merge_ignoring_migratetype_is_caught(monkeypatch):
    """Bug: __free_one_page merges across pageblocks whatever their types.

    The isolated block [0,4) merges with its MOVABLE buddy [4,8) into an order-3 block on the
    ISOLATE list, and the merge retags the buddy's pageblock as isolated. The 4 MOVABLE pages
    it swallowed were counted in NR_FREE_PAGES and isolated pages are not, so the counter
    (28) no longer matches the lists (24); and the isolate bits (2) no longer match
    nr_isolate_pageblock (1). Only the counters invariant (§11.6, §11.9) fires.
    """
    monkeypatch.setattr(pa, "migratetype_is_mergeable", lambda mt: True)
    mm, pfn = _isolation_scenario()
    mm.free(pfn, 2, cpu=0)
    zone = mm.zones[0]
    assert list(zone.free_area[3].free_list[MIGRATE_ISOLATE]) == [0]
    found = validate_all(mm)
    assert {f.check for f in found} == {"counters"}
    assert sorted(f.message for f in found) == [
        "node 0 zone DMA: NR_FREE_PAGES = 28, free lists hold 24",
        "node 0 zone DMA: nr_isolate_pageblock = 1, bits set: 2",
    ]


def test_injected_nr_free_skip_is_caught(monkeypatch):
    """Bug: __add_to_free_list forgets ``nr_free++``: the §11.5 check reports the order."""
    real = getattr(pa, "__add_to_free_list")

    def buggy(page, zone, order, migratetype, tail):
        real(page, zone, order, migratetype, tail)
        if order == 1:
            zone.free_area[order].nr_free -= 1

    mm = Machine.simple(
        64, zones=[(ZONE_DMA, 64)], max_page_order=3, pageblock_order=2, nr_cpus=1, min_free_kbytes=0
    )
    mm.boot()
    assert validate_all(mm) == []
    monkeypatch.setattr(pa, "__add_to_free_list", buggy)
    assert mm.alloc(GFP_KERNEL, 0, cpu=0) is not None  # the split leaves an order-1 remainder
    found = validate_all(mm)
    assert {f.check for f in found} == {"free_lists"}
    assert [f.order for f in found] == [1]
    assert "free_area[1].nr_free = 0, lists hold 1" in found[0].message


def test_injected_expand_wrong_order_is_caught(monkeypatch):
    """Bug: expand files each remainder one order too high (an off-by-one after ``high--``).

    The remainder at P+4 of an order-3 split claims 8 pages: it is misaligned for order 3 and
    overlaps the next block, so the alignment/head checks (§11.1, §11.3) and the partition
    (§11.2) fire, and the free-page counter no longer matches the lists (§11.6).
    """
    add = getattr(pa, "__add_to_free_list")

    def buggy_expand(zone, page, low, high, migratetype):
        size = 1 << high
        nr_added = 0
        while high > low:
            high -= 1
            size >>= 1
            add(page + size, zone, high + 1, migratetype, False)  # BUG: high + 1
            set_buddy_order(zone.mm.store, page + size, high + 1)
            nr_added += size
        return nr_added

    mm = Machine.simple(
        64, zones=[(ZONE_DMA, 64)], max_page_order=3, pageblock_order=2, nr_cpus=1, min_free_kbytes=0
    )
    mm.boot()
    monkeypatch.setattr(pa, "expand", buggy_expand)
    assert getattr(pa, "__rmqueue_smallest")(mm.zones[0], 0, MIGRATE_MOVABLE) == 0
    checks = _checks(mm)
    assert {"free_lists", "partition", "counters"} <= checks
    assert any(
        f.check == "free_lists" and f.pfn == 4 and "not aligned" in f.message for f in validate_all(mm)
    )


def test_injected_nr_free_bug_fails_the_state_machine(monkeypatch):
    """The stateful machine itself catches a planted bug (no shrinking: one failing run)."""
    real = getattr(pa, "__add_to_free_list")

    def buggy(page, zone, order, migratetype, tail):
        real(page, zone, order, migratetype, tail)
        if order == 0 and not tail:
            zone.free_area[0].nr_free += 1

    monkeypatch.setattr(pa, "__add_to_free_list", buggy)
    with pytest.raises(AssertionError, match=r"nr_free"):
        run_state_machine_as_test(
            BaselineMachine,
            settings=settings(
                max_examples=30,
                stateful_step_count=20,
                phases=[Phase.generate],
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            ),
        )


BOOT_WRITES_ONE = SITE_TABLES["final"].with_actions(
    "boot-writes-1",
    "a __free_pages_core that writes 1 instead of the frozen value",
    __free_pages_core=SiteAction("set", 1, "set_page_count(page, 1)"),
)


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_injected_site_bug_is_frozen_on_entry_finding(model):
    """A site table writing 1 at __free_pages_core: every boot page enters a free list unfrozen.

    With the bad-page checks off (check_pages=False) the pages reach the lists and the
    frozen-on-entry check reports each block at __free_one_page with raw 1 and the chain
    through __free_pages_core; validate_refcounts (§11.7) agrees afterwards.
    """
    mm = Machine.simple(
        256,
        zones=[(ZONE_DMA, 256)],
        max_page_order=4,
        pageblock_order=3,
        refcount=model,
        sites=BOOT_WRITES_ONE,
        check_pages=False,
    )
    pages = mm.boot()
    found = [f for f in mm.findings if f.kind == "unfrozen-free-entry"]
    assert found and len(found) == len(mm.findings)
    assert sum(f.count for f in found) == pages == 256
    assert {f.raw_before for f in found} == {1}
    assert all(f.function == "__free_one_page" and "__free_pages_core" in f.chain for f in found)
    assert all(f.model == model and f.sites == "boot-writes-1" for f in found)
    assert {f.check for f in validate_all(mm)} == {"refcounts"}


@pytest.mark.parametrize("model", ["baseline", "final"])
def test_injected_site_bug_with_page_checks_is_bad_page(model):
    """Same table with check_pages on: __free_pages_prepare rejects every chunk as a bad
    page ("nonzero _refcount"), so nothing reaches the buddy lists and nothing is free."""
    mm = one_zone(256, ZONE_DMA, max_page_order=4, pageblock_order=3, refcount=model, sites=BOOT_WRITES_ONE)
    assert {f.kind for f in mm.findings} == {"bad_page"}
    assert {f.check for f in mm.findings} == {"page dumped because: nonzero _refcount"}
    assert mm.nr_free_pages() == 0 and mm.free_pfns() == set()


def test_oracle_rejects_a_wrong_refcount_read():
    """The state machine's own refcount oracle is live: a head bumped behind its back fails."""
    state = BaselineMachine()
    cfg = Config(((ZONE_DMA, 256), (ZONE_NORMAL, 512)), 4, 3, 2, 0)
    state.boot(cfg)
    pfn = state.alloc("GFP_KERNEL", 1, True, 0)
    state.refcounts_of_live_pages()
    state.mm.refs.page_ref_inc(pfn)
    with pytest.raises(AssertionError, match="reads 2, want 1"):
        state.refcounts_of_live_pages()
    state.teardown()


def test_oracle_rejects_a_leaked_page():
    """...and its partition oracle: a pcp entry dropped from its list is a leak."""
    state = BaselineMachine()
    cfg = Config(((ZONE_DMA, 256), (ZONE_NORMAL, 512)), 4, 3, 2, 0)
    state.boot(cfg)
    pfn = state.alloc("GFP_HIGHUSER_MOVABLE", 0, False, 1)
    state.free(pfn, False, 0, 1)  # to the head of cpu 1's MOVABLE order-0 pcp list
    state.partition_matches_oracle()
    pcp = state.mm.page_zone(pfn).per_cpu_pageset[1]
    leaked, _ = pcp.lists[MIGRATE_MOVABLE].popitem(last=False)
    assert leaked == pfn
    pcp.count -= 1
    with pytest.raises(AssertionError, match=f"leaked \\[{leaked}\\]"):
        state.partition_matches_oracle()


def test_failure_oracle_rejects_a_spurious_failure():
    """The failure check is live: claiming failure while a zone has room is an error."""
    state = BaselineMachine()
    cfg = Config(((ZONE_DMA, 256), (ZONE_NORMAL, 512)), 4, 3, 2, 0)
    state.boot(cfg)
    with pytest.raises(AssertionError, match="failed although zone"):
        state._check_failure(state.mm, GFP_KERNEL, 0)
