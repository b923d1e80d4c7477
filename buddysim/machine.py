"""The Machine: every piece of simulation state in one object (no module globals).

A Machine owns the page store, the refcount model and its call-site table, the nodes and
zones with their free areas and per-cpu pagesets, the findings, and the kernel's global knobs
(``min_free_kbytes``, ``watermark_scale_factor``, ...). The kernel functions in buddysim.mm
reach it through ``zone.mm`` or an explicit ``mm`` argument where the kernel uses globals.
It imports no I/O: readers, CLI and UI sit at the edges.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from buddysim.findings import Finding, FindingError
from buddysim.mm import mm_init
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import kernel_chain
from buddysim.mm.mmzone import (
    HPAGE_PMD_ORDER,
    MAX_NR_ZONES,
    MIGRATE_TYPES,
    NR_LOWORDER_PCP_LISTS,
    Zone,
    pglist_data,
)
from buddysim.mm.page_store import PageStore, PG_reserved
from buddysim.refcount.page_ref import DebugVM, PageRefModel
from buddysim.refcount.registry import ModelLookupError, get_model, get_site_table
from buddysim.refcount.sites import SiteTable, apply_site_range, site_function

if TYPE_CHECKING:
    from buddysim.config import Config
    from buddysim.mm.memblock import Memblock

__all__ = ["Machine", "MachineLayout", "ZoneSpan"]

# Names with two leading underscores cannot be written inside a class body (Python mangles
# them), so the kernel entry points are bound here once.
_alloc_pages = pa.__alloc_pages_noprof
_alloc_frozen_pages = pa.__alloc_frozen_pages_noprof
_free_pages = pa.__free_pages
from buddysim.mm.gfp import __GFP_THISNODE as _GFP_THISNODE  # noqa: E402


@dataclass(frozen=True, slots=True)
class ZoneSpan:
    """One zone of one node: what free_area_init computed (spans and present pages)."""

    nid: int
    zone_idx: int
    start_pfn: int
    spanned: int
    present: int


@dataclass(frozen=True)
class MachineLayout:
    """What a Machine is built from: zones, memblock memory and reserved ranges, CPUs, orders.

    ``memory`` and ``reserved`` are byte ranges ``(base, end)`` (memory with its nid), as
    memblock holds them; ``free_ranges`` (memory minus reserved, ascending) is what
    ``for_each_free_mem_range`` yields to the handoff.
    """

    zones: tuple[ZoneSpan, ...]
    memory: tuple[tuple[int, int, int], ...]
    reserved: tuple[tuple[int, int], ...] = ()
    nr_cpus: int = 1
    max_page_order: int = 10
    pageblock_order: int = 9
    nr_nodes: int = 1
    cpu_nodes: tuple[int, ...] = ()
    free_ranges: tuple[tuple[int, int], ...] | None = None
    min_free_kbytes: int | None = None
    deferred_struct_page_init: bool = False
    name: str = "machine"
    extra: dict[str, object] = field(default_factory=dict)

    def computed_free_ranges(self) -> list[tuple[int, int]]:
        """memblock.memory minus memblock.reserved, ascending, adjacent ranges kept apart."""
        if self.free_ranges is not None:
            return list(self.free_ranges)
        reserved = sorted(self.reserved)
        out: list[tuple[int, int]] = []
        for base, end, _nid in sorted(self.memory):
            cur = base
            for rb, re_ in reserved:
                if re_ <= cur or rb >= end:
                    continue
                if rb > cur:
                    out.append((cur, rb))
                cur = max(cur, re_)
            if cur < end:
                out.append((cur, end))
        return out


class Machine:
    """All state of one simulated machine; built from a :class:`MachineLayout`.

    Parameters: ``refcount`` (model name, ``module:Class`` or class), ``sites`` (site table
    or model name; default: the model's own), ``debug_vm``, ``check_pages`` (the
    ``check_pages_enabled`` static key), ``check_frozen`` (the frozen-on-entry check),
    ``fail_fast`` (stop at the first finding), ``thp`` (the order-9 pcp lists).
    """

    PAGE_SHIFT = 12
    PAGE_SIZE = 1 << PAGE_SHIFT

    def __init__(
        self,
        layout: MachineLayout,
        *,
        refcount: str | type[PageRefModel] = "baseline",
        sites: str | SiteTable | None = None,
        debug_vm: DebugVM | str = DebugVM.OFF,
        check_pages: bool = True,
        check_frozen: bool = True,
        fail_fast: bool = False,
        thp: bool = True,
        keep_findings: int = 100_000,
        strict_setters: bool = False,
        tracer: Callable[[str, dict[str, int | None]], None] | None = None,
    ) -> None:
        if layout.pageblock_order > layout.max_page_order:
            raise ValueError("pageblock_order must not exceed max_page_order")
        self.layout = layout
        self.MAX_PAGE_ORDER = layout.max_page_order
        self.NR_PAGE_ORDERS = layout.max_page_order + 1
        self.pageblock_order = layout.pageblock_order
        self.pageblock_nr_pages = 1 << layout.pageblock_order
        self.thp = thp and layout.max_page_order >= HPAGE_PMD_ORDER
        self.nr_cpus = layout.nr_cpus
        self.cpu = 0
        self.event: int | None = None
        self.tracer = tracer
        self.check_pages = check_pages
        self.check_frozen = check_frozen
        self.fail_fast = fail_fast
        self.keep_findings = keep_findings
        self.strict_setters = strict_setters
        #: live page_frag fragments per page (mm/page_frag_cache.py's invariant)
        self.frag_live: dict[int, int] = {}
        self.findings: list[Finding] = []
        self.finding_counts: Counter[tuple[str, str]] = Counter()
        self.nr_findings = 0
        # kernel knobs
        self.watermark_boost_factor = 15000
        self.watermark_scale_factor = 10
        self.percpu_pagelist_high_fraction = 0
        self.defrag_mode = False
        self.page_group_by_mobility_disabled = False
        #: vm.min_free_kbytes as written by the user (-1: never), see min_free_kbytes_sysctl_handler
        self.user_min_free_kbytes = -1
        self.min_free_kbytes = 1024
        self.totalram_pages = 0
        self.handoff_done = False
        self.available_at_mem_init = 0
        self.config: Config | None = None

        end_pfn = max((z.start_pfn + z.spanned for z in layout.zones), default=0)
        end_pfn = max(end_pfn, max((e >> self.PAGE_SHIFT for _, e, _ in layout.memory), default=0))
        self.max_low_pfn = end_pfn
        self.store = PageStore(max(end_pfn, 1), layout.pageblock_order)
        model_cls = get_model(refcount) if isinstance(refcount, str) else refcount
        try:
            self.refs: PageRefModel = model_cls(self.store, debug_vm=debug_vm, report=self.report)
        except Exception as e:  # a third-party model that cannot be built is bad input
            raise ModelLookupError(
                f"refcount model {model_cls.__name__} cannot be built: {type(e).__name__}: {e}"
            ) from e
        if sites is None:
            own = getattr(model_cls, "SITE_TABLE", None)
            sites = (
                own
                if isinstance(own, SiteTable)
                else get_site_table(refcount if isinstance(refcount, str) else model_cls.default_sites)
            )
        self.sites: SiteTable = get_site_table(sites) if isinstance(sites, str) else sites

        self._site_fns: dict[str, Callable[[int], object]] = {}
        nr_pcp_lists = NR_LOWORDER_PCP_LISTS + (2 if self.thp else 0)
        self.node_data: list[pglist_data] = []
        self.zones: list[Zone] = []
        cpu_nodes = list(layout.cpu_nodes) or [
            min(c * layout.nr_nodes // max(layout.nr_cpus, 1), layout.nr_nodes - 1)
            for c in range(layout.nr_cpus)
        ]
        self.cpu_to_node = cpu_nodes
        spans = {(z.nid, z.zone_idx): z for z in layout.zones}
        for nid in range(layout.nr_nodes):
            node_zones = []
            for zidx in range(MAX_NR_ZONES):
                span = spans.get((nid, zidx))
                zone = Zone(
                    self,
                    nid,
                    zidx,
                    span.start_pfn if span else 0,
                    span.spanned if span else 0,
                    span.present if span else 0,
                    self.NR_PAGE_ORDERS,
                    layout.nr_cpus,
                    nr_pcp_lists,
                )
                node_zones.append(zone)
                if span and span.spanned:
                    self.zones.append(zone)
            cpus = [c for c, n in enumerate(cpu_nodes) if n == nid]
            self.node_data.append(pglist_data(nid, node_zones, cpus))
        self.nr_online_nodes = layout.nr_nodes
        ordered = sorted(self.zones, key=lambda z: z.zone_start_pfn)
        self._zone_starts = [z.zone_start_pfn for z in ordered]
        self._zones_by_start = ordered
        self._zonelists: dict[tuple[int, bool, int], list[Zone]] = {}
        #: prepare_alloc_pages() per (gfp, nid): see page_alloc.prepare_alloc_pages
        self.alloc_context: dict[tuple[int, int], tuple[int, int, list[Zone], int]] = {}
        self.memory_pfn_ranges = [
            (-(-b >> self.PAGE_SHIFT), e >> self.PAGE_SHIFT, nid) for b, e, nid in layout.memory
        ]
        #: memblock (mm/memblock.c) when built from a config; trace memblock ops change it
        self.memblock: Memblock | None = None
        #: NODE_DATA(nid)->first_deferred_pfn for nodes with deferred struct page init
        self.first_deferred_pfn: dict[int, int] = (
            mm_init.first_deferred_pfns(self) if layout.deferred_struct_page_init else {}
        )
        mm_init.memmap_init(self)

    @property
    def reserved_pfn_ranges(self) -> list[tuple[int, int]]:
        """memblock.reserved as pfn ranges (rounded out), as memmap_init_reserved_pages marks them."""
        if self.memblock is not None:
            ranges = [(b, e) for b, e in self.memblock.for_each_reserved_mem_range()]
        else:
            ranges = list(self.layout.reserved)
        return [(b >> self.PAGE_SHIFT, -(-e >> self.PAGE_SHIFT)) for b, e in ranges]

    def free_mem_ranges(self, nid: int | None = None) -> list[tuple[int, int]]:
        """``for_each_free_mem_range``: memory minus reserved (bytes), ascending; one node's
        ranges when ``nid`` is given."""
        if self.memblock is not None:
            return [(s, e) for s, e, n in self.memblock.for_each_free_mem_range() if nid is None or n == nid]
        if nid is None:
            return self.layout.computed_free_ranges()
        mem = [(b, e) for b, e, n in self.layout.memory if n == nid]
        return [(s, e) for s, e in self.layout.computed_free_ranges() if any(b <= s < me for b, me in mem)]

    @classmethod
    def from_config(cls, config: Config, *, memblock: Memblock | None = None, **kw: Any) -> Machine:
        """A machine as x86-64 setup_arch leaves it at ``mm_core_init``: memblock from the config
        (``memblock_from_config``), zones from ``free_area_init`` (``zone_geometry``), memmap
        initialised. Keyword arguments go to :class:`Machine`; ``refcount`` and ``sites``
        default to the config's."""
        from buddysim.mm.memblock import memblock_from_config
        from buddysim.mm.zone_geometry import zone_geometry

        mb = memblock if memblock is not None else memblock_from_config(config)
        geo = zone_geometry(config, mb)
        spans = tuple(
            ZoneSpan(z.nid, z.zone_type, z.start_pfn, z.spanned, z.present)
            for z in geo.zones
            if z.spanned and z.zone_type < MAX_NR_ZONES
        )
        nids = sorted({nid for _b, _e, nid in config.memory_ranges}) or [0]
        layout = MachineLayout(
            zones=spans,
            memory=tuple((r.base, r.end, r.nid) for r in mb.memory),
            reserved=tuple((r.base, r.end) for r in mb.reserved),
            nr_cpus=config.nr_cpus,
            max_page_order=config.max_page_order,
            pageblock_order=config.pageblock_order,
            nr_nodes=max(nids) + 1,
            min_free_kbytes=config.min_free_kbytes,
            deferred_struct_page_init=config.deferred_struct_page_init,
            name=config.name,
        )
        kw.setdefault("refcount", config.refcount)
        if "sites" not in kw and config.sites is not None:
            kw["sites"] = config.sites
        mm = cls(layout, **kw)
        mm.memblock = mb
        mm.config = config
        return mm

    def __repr__(self) -> str:
        return (
            f"Machine({self.layout.name!r}, refcount={self.refs.name!r}, sites={self.sites.name!r}, "
            f"pages={self.store.end_pfn})"
        )

    # ------------------------------------------------------------------ boot
    def build_all_zonelists(self) -> None:
        """``build_all_zonelists()``: decide ``page_group_by_mobility_disabled``.

        ``vm_total_pages = nr_free_zone_pages(gfp_zone(GFP_HIGHUSER_MOVABLE))`` is taken before
        the handoff, when managed is still the present-pages estimate and watermarks are 0.
        """
        vm_total_pages = sum(z.present_pages for z in self.zones)
        disabled = vm_total_pages < self.pageblock_nr_pages * MIGRATE_TYPES
        self.page_group_by_mobility_disabled = disabled
        self.store.page_group_by_mobility_disabled = disabled
        self.alloc_context.clear()

    def boot(self) -> int:
        """build_all_zonelists(), memblock_free_all() over the layout's free ranges, then
        watermarks and pcp sizes (init_per_zone_wmark_min)."""
        self.build_all_zonelists()
        pages = mm_init.memblock_free_all(self, self.free_mem_ranges())
        self.handoff_done = True
        #: what mem_init_print_info() prints as "available": nr_free_pages() before deferred init
        self.available_at_mem_init = self.nr_free_pages()
        pa.init_per_zone_wmark_min(self)
        self.page_alloc_init_late()
        if self.layout.min_free_kbytes is not None:
            # a configured min_free_kbytes is a vm.min_free_kbytes write after boot
            pa.min_free_kbytes_sysctl_handler(self, self.layout.min_free_kbytes)
        return pages

    def page_alloc_init_late(self) -> int:
        """``page_alloc_init_late()``: run deferred init on every node, then watermarks again."""
        if not self.first_deferred_pfn:
            return 0
        n = sum(mm_init.deferred_init_memmap(self, nid) for nid in list(self.first_deferred_pfn))
        pa.init_per_zone_wmark_min(self)
        return n

    def early_page_initialised(self, pfn: int) -> bool:
        """``early_page_initialised(pfn, nid)``: false for pfns left to deferred init."""
        for nid, first in self.first_deferred_pfn.items():
            zone = self.node_data[nid].last_zone()
            if zone is not None and first <= pfn < zone.zone_end_pfn:
                return False
        return True

    def deferred_pages(self, zone: Zone) -> int:
        """Pages of ``zone`` not yet initialised by deferred init (0 once it has run)."""
        first = self.first_deferred_pfn.get(zone.node)
        if first is None or self.node_data[zone.node].last_zone() is not zone:
            return 0
        seg = self.store.flags_np[first : zone.zone_end_pfn]
        return int(np.count_nonzero(seg & PG_reserved)) - self._reserved_in(first, zone.zone_end_pfn)

    def _reserved_in(self, start: int, end: int) -> int:
        return sum(max(0, min(e, end) - max(s, start)) for s, e in self.reserved_pfn_ranges)

    def adjust_managed_page_count(self, zone: Zone, count: int) -> None:
        """``adjust_managed_page_count()``: managed and totalram, then lowmem reserves."""
        zone.managed_pages += count
        self.totalram_pages += count
        pa.setup_per_zone_lowmem_reserve(self)

    def zones_changed(self) -> None:
        """Zone spans changed (memory onlining): rebuild the pfn -> zone index and zonelists."""
        self.zones = [z for pgdat in self.node_data for z in pgdat.node_zones if z.spanned_pages]
        ordered = sorted(self.zones, key=lambda z: z.zone_start_pfn)
        self._zone_starts = [z.zone_start_pfn for z in ordered]
        self._zones_by_start = ordered
        self._zonelists.clear()
        self.alloc_context.clear()

    # ------------------------------------------------------------------ lookups
    def page_zone(self, pfn: int) -> Zone | None:
        """``page_zone(pfn_to_page(pfn))`` for a pfn in a zone span, else None."""
        i = bisect.bisect_right(self._zone_starts, pfn) - 1
        if i < 0:
            return None
        zone = self._zones_by_start[i]
        return zone if pfn < zone.zone_start_pfn + zone.spanned_pages else None

    def page_zone_checked(self, pfn: int) -> Zone:
        zone = self.page_zone(pfn)
        if zone is None:
            self.raise_finding(
                "bad-pfn",
                "page_zone",
                "pfn_valid(pfn) && zone_spans_pfn(zone, pfn)",
                pfn,
                None,
                message=f"pfn {pfn:#x} is in no zone",
            )
        return zone  # type: ignore[return-value]

    def zonelist(self, nid: int, gfp: int, highest_zoneidx: int) -> list[Zone]:
        """``node_zonelist(nid, gfp)`` filtered to ``idx <= highest_zoneidx``: own node's
        populated zones highest first, then other nodes by distance (``__GFP_THISNODE``: own only)."""
        thisnode = bool(gfp & _GFP_THISNODE)
        key = (nid, thisnode, highest_zoneidx)
        zl = self._zonelists.get(key)
        if zl is None:
            nodes = [nid] if thisnode else sorted(range(len(self.node_data)), key=lambda n: (abs(n - nid), n))
            zl = [
                z
                for n in nodes
                for z in reversed(self.node_data[n].node_zones[: highest_zoneidx + 1])
                if z.managed_pages or z.present_pages
            ]
            self._zonelists[key] = zl
        return zl

    # ------------------------------------------------------------------ refcount sites
    def site(self, name: str, pfn: int) -> None:
        """The kernel's refcount write at call site ``name`` on ``pfn``, per the site table."""
        if self.strict_setters:
            self._strict_setter(name, pfn, 1)
        fn = self._site_fns.get(name)
        if fn is None:
            fn = self._site_fns[name] = site_function(self.refs, self.sites, name)
        fn(pfn)

    def site_range(self, name: str, start: int, nr: int) -> None:
        if self.strict_setters:
            self._strict_setter(name, start, nr)
        apply_site_range(self.refs, self.sites, name, start, nr)

    def _strict_setter(self, name: str, pfn: int, nr: int) -> None:
        """``--strict-setters`` (Zi Yan's proposed ban): a raw ``set_page_count`` is a finding.

        Only ``init_page_count`` / ``folio_init_count``, the frozen setter and
        ``page_ref_unfreeze`` may write the word; a raw set on a frozen page is the worst case.
        """
        act = self.sites.action(name)
        if act.kind != "set":
            return
        n_frozen = int(self.refs.frozen_mask(self.store.refcount_np[pfn : pfn + nr]).sum())
        on_frozen = n_frozen > 0
        raw = self.refs.atomic_read(pfn)
        what = (
            "raw set_page_count on a frozen page" if on_frozen else "setter other than init / frozen setter"
        )
        self.report(
            Finding(
                "strict-setters",
                name,
                act.describe(),
                self.refs.name,
                pfn,
                raw,
                self.refs.raw_for_count(act.value),
                count=nr,
                message=f"{what} ({nr} page{'s' if nr > 1 else ''}, site table {self.sites.name})",
                chain=kernel_chain(3),
                event=self.event,
                sites=self.sites.name,
            )
        )

    # ------------------------------------------------------------------ findings
    def report(self, finding: Finding) -> None:
        """Record a finding with the current event number and kernel call chain."""
        if finding.event is None or not finding.chain:
            finding = finding.at_event(self.event, finding.chain or kernel_chain(2))
        if finding.sites is None:
            from dataclasses import replace

            finding = replace(finding, sites=self.sites.name)
        self.finding_counts[(finding.kind, finding.function)] += 1
        self.nr_findings += 1
        if len(self.findings) < self.keep_findings:
            self.findings.append(finding)
        if self.fail_fast:
            raise FindingError(finding)

    def raise_finding(
        self, kind: str, function: str, check: str, pfn: int | None, order: int | None, message: str = ""
    ) -> None:
        """Record a finding that must stop the operation in progress, and stop it."""
        raw = self.refs.atomic_read(pfn) if pfn is not None and 0 <= pfn < self.store.end_pfn else None
        f = Finding(
            kind,
            function,
            check,
            self.refs.name,
            pfn,
            raw,
            None,
            order,
            message=message,
            chain=kernel_chain(2),
            event=self.event,
            sites=self.sites.name,
        )
        self.report(f)
        raise FindingError(f)

    def unfrozen_pages(self, pfn: int, nr: int) -> tuple[int, int]:
        """(first unfrozen pfn or -1, how many) in ``[pfn, pfn+nr)`` under the active model:
        a memoryview run for small blocks (numpy's per-call cost dominates), numpy otherwise."""
        if nr <= 16:
            w = self.store.refcount
            if self.refs.all_frozen_raws(w[pfn : pfn + nr]):
                return -1, 0
            is_frozen = self.refs.is_frozen_raw
            bad = [p for p in range(pfn, pfn + nr) if not is_frozen(w[p])]
            return bad[0], len(bad)
        _ok, first, count = self.refs.all_frozen(pfn, nr)
        return first, count

    def range_frozen(self, pfn: int, nr: int) -> bool:
        """Are pages ``[pfn, pfn+nr)`` all frozen under the active model?"""
        return self.unfrozen_pages(pfn, nr)[1] == 0

    def check_frozen_entry(self, pfn: int, order: int, function: str) -> None:
        """The user's check: every page of a block entering a free list is frozen.

        Reports the first offending page's pfn and raw word, how many offend, the model, the
        site table and the kernel call chain.
        """
        if not self.check_frozen:
            return
        if not order and self.refs.is_frozen_raw(self.store.refcount[pfn]):
            return  # the common case, without building the range test
        nr = 1 << order
        first, count = self.unfrozen_pages(pfn, nr)
        if not count:
            return
        raw = self.store.refcount[first]
        self.report(
            Finding(
                kind="unfrozen-free-entry",
                function=function,
                check="every page entering a free list is frozen",
                model=self.refs.name,
                pfn=first,
                raw_before=raw,
                order=order,
                count=count,
                message=f"{count} of {nr} pages of the order-{order} block at {pfn:#x} are not frozen "
                f"under {self.refs.name} (sites {self.sites.name})",
                chain=kernel_chain(2),
                event=self.event,
                sites=self.sites.name,
            )
        )

    # ------------------------------------------------------------------ convenience API
    def _on(self, cpu: int | None) -> None:
        if cpu is not None:
            if not 0 <= cpu < self.nr_cpus:
                raise ValueError(f"cpu {cpu} out of range 0..{self.nr_cpus - 1}")
            self.cpu = cpu

    def alloc(
        self, gfp: int, order: int, *, cpu: int | None = None, nid: int | None = None, frozen: bool = False
    ) -> int | None:
        """``alloc_pages`` (or ``alloc_frozen_pages``) on ``cpu``; returns the pfn or None."""
        self._on(cpu)
        node = self.cpu_to_node[self.cpu] if nid is None else nid
        if frozen:
            return _alloc_frozen_pages(self, gfp, order, node)
        return _alloc_pages(self, gfp, order, node)

    def free(self, pfn: int, order: int, *, cpu: int | None = None, frozen: bool = False) -> None:
        """``__free_pages`` (or ``free_frozen_pages``) on ``cpu``."""
        self._on(cpu)
        if frozen:
            pa.free_frozen_pages(self, pfn, order)
        else:
            _free_pages(self, pfn, order)

    def put(self, pfn: int, *, cpu: int | None = None) -> bool:
        """``put_page`` on ``cpu``; true if it freed the folio."""
        self._on(cpu)
        return pa.put_page(self, pfn)

    def drain(self, cpu: int | None = None) -> None:
        """``drain_all_pages(NULL)`` (or one CPU's ``drain_local_pages``)."""
        pa.drain_all_pages(self, None, cpu)

    # ------------------------------------------------------------------ summaries
    def nr_free_pages(self) -> int:
        return sum(z.NR_FREE_PAGES for z in self.zones)

    def free_blocks(self) -> Iterable[tuple[Zone, int, int, int]]:
        for z in self.zones:
            for pfn, order, mt in z.iter_free_blocks():
                yield z, pfn, order, mt

    def free_pfns(self) -> set[int]:
        """Every pfn inside a free buddy block (for oracles and small tests)."""
        out: set[int] = set()
        for _z, pfn, order, _mt in self.free_blocks():
            out.update(range(pfn, pfn + (1 << order)))
        return out

    def pcp_pfns(self) -> set[int]:
        from buddysim.mm.page_alloc import pindex_to_order

        out: set[int] = set()
        for z in self.zones:
            for pcp in z.per_cpu_pageset:
                for pindex, lst in enumerate(pcp.lists):
                    o = pindex_to_order(pindex)
                    for pfn in lst:
                        out.update(range(pfn, pfn + (1 << o)))
        return out

    @staticmethod
    def simple(
        nr_pages: int,
        *,
        zones: Sequence[tuple[int, int]] | None = None,
        nr_cpus: int = 2,
        max_page_order: int = 10,
        pageblock_order: int = 9,
        reserved: Sequence[tuple[int, int]] = (),
        min_free_kbytes: int | None = None,
        **kw: object,
    ) -> Machine:
        """A one-node machine of ``nr_pages`` pages for tests: ``zones`` are ``(zone_idx,
        end_pfn)`` pairs (default: x86-64 limits clipped to the size); ``reserved`` pfn ranges.
        Memory starts at pfn 0; call :meth:`boot` to hand it to the buddy allocator.
        """
        from buddysim.mm.mmzone import ZONE_DMA, ZONE_DMA32, ZONE_NORMAL

        if zones is None:
            limits = [(ZONE_DMA, 4096), (ZONE_DMA32, 0x100000), (ZONE_NORMAL, 1 << 62)]
        else:
            limits = list(zones)
        spans = []
        start = 0
        for zidx, end in limits:
            end = min(end, nr_pages)
            if end > start:
                spans.append(ZoneSpan(0, zidx, start, end - start, end - start))
            start = max(start, end)
        layout = MachineLayout(
            zones=tuple(spans),
            memory=((0, nr_pages << Machine.PAGE_SHIFT, 0),),
            reserved=tuple((s << Machine.PAGE_SHIFT, e << Machine.PAGE_SHIFT) for s, e in reserved),
            nr_cpus=nr_cpus,
            max_page_order=max_page_order,
            pageblock_order=pageblock_order,
            min_free_kbytes=min_free_kbytes,
            name=f"simple-{nr_pages}",
        )
        return Machine(layout, **kw)  # type: ignore[arg-type]
