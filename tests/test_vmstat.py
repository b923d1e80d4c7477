"""Tests of buddysim.mm.vmstat: the /proc, debugfs and crash ``kmem -f`` renderers.

Three kinds of checks:

* golden files (tests/golden/vmstat/) for every format on two small deterministic machines
  (one node with three populated zones, two nodes), compared byte for byte. Regenerate with
  ``BUDDYSIM_REGEN_GOLDEN=1 python -m pytest tests/test_vmstat.py`` after an intended change;
  without it a difference fails. Golden files keep trailing spaces (the kernel prints them):
  tests/golden/vmstat/.gitattributes keeps git from treating them as whitespace errors;
* layout: one small parser per format reads both a real capture (../shared/data/real, when it
  exists) and our output, and the column positions, field order and arithmetic that hold in
  the real file must hold in ours;
* arithmetic worked by hand: the fragmentation and unusable indices of hand-made free areas
  (kernel-allocator.md §10, formats-and-metrics.md §3), the ``(verified)``/``(found M)``
  footer, the pagetypeinfo walk cap, the vm stats threshold.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from buddysim.machine import Machine, MachineLayout, ZoneSpan
from buddysim.mm import vmstat
from buddysim.mm.gfp import __GFP_DMA32, __GFP_RECLAIMABLE, GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from buddysim.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_TYPES, ZONE_DMA, ZONE_DMA32, ZONE_NORMAL

GOLDEN = Path(__file__).resolve().parent / "golden" / "vmstat"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="no ../shared/data/real captures")


def read_real(name: str) -> str:
    """A capture's text, without the "Lines: N" header of prometheus' ttar fixture files."""
    text = (REAL / name).read_text()
    return re.sub(r"\ALines: \d+\n", "", text)


REGEN = os.environ.get("BUDDYSIM_REGEN_GOLDEN") == "1"


# ---------------------------------------------------------------------------- machines


def _churn(mm: Machine) -> None:
    """A fixed allocation/free sequence touching every zone, several orders and migratetypes,
    and both CPUs' pcp lists (nothing random: the same calls every run)."""
    gfps = [GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL | __GFP_RECLAIMABLE, GFP_KERNEL | __GFP_DMA32]
    orders = [0, 1, 2, 3, 0, 0, 1, 4]
    held: list[tuple[int, int]] = []
    for i in range(48):
        order = 9 if i in (7, 30) else orders[i % len(orders)]
        pfn = mm.alloc(gfps[i % len(gfps)], order, cpu=i % 2)
        if pfn is not None:
            held.append((pfn, order))
    for pfn, order in held[::3]:
        mm.free(pfn, order, cpu=1)
    for pfn, order in held[1::5]:
        mm.free(pfn, order, cpu=0)


def uma_machine() -> Machine:
    """One node: DMA [0, 1024) with pfn 0 and the 640K-1M window reserved, DMA32 [1024, 2048),
    Normal [2048, 4096), an empty Movable zone; two CPUs."""
    mm = Machine.simple(
        4096,
        zones=[(ZONE_DMA, 1024), (ZONE_DMA32, 2048), (ZONE_NORMAL, 4096)],
        nr_cpus=2,
        reserved=[(0, 1), (160, 256)],
    )
    mm.boot()
    _churn(mm)
    return mm


def numa_machine() -> Machine:
    """Two nodes: node 0 has DMA and DMA32 (pfn 0 reserved), node 1 Normal; one CPU per node."""
    layout = MachineLayout(
        zones=(
            ZoneSpan(0, ZONE_DMA, 0, 1024, 1024),
            ZoneSpan(0, ZONE_DMA32, 1024, 1024, 1024),
            ZoneSpan(1, ZONE_NORMAL, 2048, 2048, 2048),
        ),
        memory=((0, 2048 << 12, 0), (2048 << 12, 4096 << 12, 1)),
        reserved=((0, 1 << 12),),
        nr_cpus=2,
        nr_nodes=2,
        cpu_nodes=(0, 1),
        name="numa-test",
    )
    mm = Machine(layout)
    mm.boot()
    _churn(mm)
    return mm


@pytest.fixture(scope="module")
def uma() -> Machine:
    return uma_machine()


@pytest.fixture(scope="module")
def numa() -> Machine:
    return numa_machine()


def _tiny_zone_machine() -> Machine:
    """One 1024-page DMA zone, booted: a place to put hand-made free-area counts."""
    mm = Machine.simple(1024, zones=[(ZONE_DMA, 1024)], nr_cpus=1)
    mm.boot()
    return mm


# ---------------------------------------------------------------------------- golden files

FORMATS = {
    "buddyinfo": vmstat.frag_show,
    "pagetypeinfo": vmstat.pagetypeinfo_show,
    "zoneinfo": vmstat.zoneinfo_show,
    "kmem_f": vmstat.kmem_f,
    "extfrag_index": vmstat.extfrag_index,
    "unusable_index": vmstat.unusable_index,
    "json": lambda mm: json.dumps(vmstat.vmstat_json(mm), sort_keys=True, separators=(",", ":")) + "\n",
}


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with tests/golden/vmstat/``name`` byte for byte (rewrite it first when
    BUDDYSIM_REGEN_GOLDEN=1)."""
    path = GOLDEN / name
    data = text.encode()
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} missing: run with BUDDYSIM_REGEN_GOLDEN=1 to create it"
    expected = path.read_bytes()
    if data != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.decode().splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"golden/{name}",
                "rendered",
            )
        )
        pytest.fail(f"{name} differs from its golden file (BUDDYSIM_REGEN_GOLDEN=1 to accept):\n{diff}")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("machine", ["uma", "numa"])
def test_golden(machine: str, fmt: str, request: pytest.FixtureRequest) -> None:
    mm = request.getfixturevalue(machine)
    name = f"{machine}.vmstat.json" if fmt == "json" else f"{machine}.{fmt}.txt"
    check_golden(name, FORMATS[fmt](mm))


def test_rendering_is_pure_and_deterministic() -> None:
    # same calls, same bytes; rendering twice changes nothing
    a, b = uma_machine(), uma_machine()
    for render in FORMATS.values():
        assert render(a) == render(b) == render(a)


# ---------------------------------------------------------------------------- parsers
# One parser per format, used on the real captures and on our output alike.


def _tokens(line: str) -> list[tuple[int, int, str]]:
    """Whitespace-separated tokens with their [start, end) columns."""
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", line)]


@dataclass
class BuddyRow:
    node: int
    zone: str
    counts: list[int]
    #: end column of every token: the layout, independent of the values' widths
    ends: list[int]
    trailing_space: bool


def parse_buddyinfo(text: str) -> list[BuddyRow]:
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"Node (\d+), zone +(\S+)((?: +\d+)+)( ?)", line)
        assert m, f"not a buddyinfo row: {line!r}"
        rows.append(
            BuddyRow(
                int(m[1]), m[2], [int(x) for x in m[3].split()], [e for _, e, _ in _tokens(line)], bool(m[4])
            )
        )
    return rows


@dataclass
class PagetypeSection:
    pageblock_order: int
    pages_per_block: int
    order_header_ends: list[int]
    #: (node, zone, type) -> free list lengths per order
    free: dict[tuple[int, str, str], list[int]] = field(default_factory=dict)
    free_row_ends: list[list[int]] = field(default_factory=list)
    block_types: list[str] = field(default_factory=list)
    block_header_ends: list[int] = field(default_factory=list)
    #: (node, zone) -> pageblocks per type
    blocks: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    block_row_ends: list[list[int]] = field(default_factory=list)


def parse_pagetypeinfo(text: str) -> list[PagetypeSection]:
    """Sections (one per node with memory): headers, free-list table, pageblock table."""
    sections: list[PagetypeSection] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        m = re.fullmatch(r"Page block order: (\d+)", line)
        assert m, f"expected the section header, got {line!r}"
        m2 = re.fullmatch(r"Pages per block:  (\d+)", lines[i + 1])
        assert m2, lines[i + 1]
        assert lines[i + 2] == ""
        hdr = lines[i + 3]
        assert hdr.startswith("Free pages count per migrate type at order ")
        sec = PagetypeSection(int(m[1]), int(m2[1]), [e for _, e, _ in _tokens(hdr)])
        sections.append(sec)
        i += 4
        while i < len(lines) and lines[i].startswith("Node "):
            row = lines[i]
            m = re.fullmatch(r"Node +(\d+), zone +(\S+), type +(\S+)((?: +>?\d+)+) ?", row)
            assert m, f"not a free-list row: {row!r}"
            counts = [int(x.lstrip(">")) for x in m[4].split()]
            sec.free[(int(m[1]), m[2], m[3])] = counts
            sec.free_row_ends.append([e for _, e, _ in _tokens(row)])
            i += 1
        assert lines[i] == "", f"expected a blank line, got {lines[i]!r}"
        hdr = lines[i + 1]
        assert hdr.startswith("Number of blocks type ")
        toks = _tokens(hdr)
        sec.block_types = [t for _, _, t in toks[4:]]
        sec.block_header_ends = [e for _, e, _ in toks]
        i += 2
        while i < len(lines) and lines[i].startswith("Node "):
            row = lines[i]
            m = re.fullmatch(r"Node (\d+), zone +(\S+)((?: +\d+)+) ?", row)
            assert m, f"not a block-count row: {row!r}"
            sec.blocks[(int(m[1]), m[2])] = [int(x) for x in m[3].split()]
            sec.block_row_ends.append([e for _, e, _ in _tokens(row)])
            i += 1
    return sections


@dataclass
class ZoneinfoEntry:
    key: str
    value: str
    indent: int
    value_col: int


@dataclass
class ZoneinfoZone:
    node: int
    zone: str
    entries: list[ZoneinfoEntry]

    def get(self, key: str) -> str:
        return next(e.value for e in self.entries if e.key == key)

    def keys(self) -> list[str]:
        return [e.key for e in self.entries]


def parse_zoneinfo(text: str) -> list[ZoneinfoZone]:
    """Zones and their ``key value`` lines; keys keep their colon ("count:", "protection:")."""
    zones: list[ZoneinfoZone] = []
    for line in text.splitlines():
        m = re.fullmatch(r"Node (\d+), zone +(\S+)", line)
        if m:
            zones.append(ZoneinfoZone(int(m[1]), m[2], []))
            continue
        assert zones, f"line before the first zone: {line!r}"
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if body.startswith("protection:"):
            value = body[len("protection:") :].strip()
            zones[-1].entries.append(ZoneinfoEntry("protection:", value, indent, line.index("(")))
        elif re.fullmatch(r"[a-z_ -]+", body):  # "per-node stats", "pagesets"
            zones[-1].entries.append(ZoneinfoEntry(body, "", indent, -1))
        else:
            m = re.fullmatch(r"(.*\S) +(-?\d+)", body)
            assert m, f"not a zoneinfo line: {line!r}"
            zones[-1].entries.append(ZoneinfoEntry(m[1], m[2], indent, line.rindex(m[2])))
    return zones


@dataclass
class KmemArea:
    order: int
    size: str
    address: str
    blocks: int
    pages: int
    ends: list[int]


@dataclass
class KmemZone:
    node: int
    idx: int
    name: str
    size: int
    free: int
    areas: list[KmemArea] = field(default_factory=list)


@dataclass
class KmemF:
    zones: list[KmemZone]
    nr_free_pages: int | None
    found: int | None  # None: "(verified)"
    zone_headers: list[str]


def parse_kmem_f(text: str) -> KmemF:
    """crash ``kmem -f``: NODE blocks, zone headers and rows, AREA rows, the footer."""
    zones: list[KmemZone] = []
    headers: list[str] = []
    node = 0
    nr_free = found = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == "NODE":
            node = int(lines[i + 1])
            i += 2
            continue
        if line.startswith("ZONE  NAME"):
            headers.append(line)
            m = re.fullmatch(r" *(\d+)   (\S+) +(\d+) +(\d+)  .*", lines[i + 1])
            assert m, f"not a zone row: {lines[i + 1]!r}"
            zones.append(KmemZone(node, int(m[1]), m[2], int(m[3]), int(m[4])))
            i += 2
            continue
        m = re.fullmatch(r" *(\d+) +(\d+k) +([0-9a-f]+) +(\d+) +(\d+)", line)
        if m:
            ends = [e for _, e, _ in _tokens(line)]
            zones[-1].areas.append(KmemArea(int(m[1]), m[2], m[3], int(m[4]), int(m[5]), ends))
        m = re.fullmatch(r"nr_free_pages: (\d+)  \((?:verified|found (\d+))\)", line)
        if m:
            nr_free = int(m[1])
            found = int(m[2]) if m[2] else None
        i += 1
    return KmemF(zones, nr_free, found, headers)


# ---------------------------------------------------------------------------- buddyinfo


def test_buddyinfo_rows(uma: Machine) -> None:
    text = vmstat.frag_show(uma)
    rows = parse_buddyinfo(text)
    # populated zones only, in zone order; nr_free per order; "%6lu " leaves a trailing space
    assert [(r.node, r.zone) for r in rows] == [(0, "DMA"), (0, "DMA32"), (0, "Normal")]
    for row, zone in zip(rows, uma.zones, strict=True):
        assert row.counts == [a.nr_free for a in zone.free_area]
        assert row.trailing_space
    assert all(line.endswith(" ") for line in text.splitlines())
    # the prefix is exactly "Node %d, zone %8s "
    assert text.startswith("Node 0, zone      DMA ")


@needs_real
@pytest.mark.parametrize("capture", ["procfs_buddyinfo.txt", "jc_proc_buddyinfo.txt"])
def test_buddyinfo_layout_matches_real(capture: str, uma: Machine) -> None:
    real = parse_buddyinfo(read_real(capture))
    ours = parse_buddyinfo(vmstat.frag_show(uma))
    # every column ends where the kernel's does ("Node %d, zone %8s " then "%6lu " x 11)
    layouts = {tuple(r.ends) for r in real}
    assert layouts == {tuple(r.ends) for r in ours}
    assert len(layouts) == 1
    # jc's capture kept the kernel's trailing space (prometheus' fixture stripped it)
    if capture.startswith("jc_"):
        assert all(r.trailing_space for r in real)


# ---------------------------------------------------------------------------- pagetypeinfo


def test_pagetypeinfo_agrees_with_buddyinfo(uma: Machine, numa: Machine) -> None:
    for mm in (uma, numa):
        sections = parse_pagetypeinfo(vmstat.pagetypeinfo_show(mm))
        buddy = {(r.node, r.zone): r.counts for r in parse_buddyinfo(vmstat.frag_show(mm))}
        # one section per node with memory, each with its own headers
        assert len(sections) == sum(any(z.present_pages for z in p.node_zones) for p in mm.node_data)
        for sec in sections:
            assert (sec.pageblock_order, sec.pages_per_block) == (9, 512)
            assert sec.block_types == ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"]
            for node, zone in sec.blocks:
                per_type = [sec.free[(node, zone, t)] for t in sec.block_types]
                # summed over the migratetype lists, the free-list lengths are buddyinfo's row
                assert [sum(col) for col in zip(*per_type, strict=True)] == buddy[(node, zone)]
                z = mm.node_data[node].node_zones[["DMA", "DMA32", "Normal", "Movable"].index(zone)]
                # every pageblock of the zone is counted once
                assert sum(sec.blocks[(node, zone)]) == -(-z.spanned_pages // 512)


def test_pagetypeinfo_no_mixed_blocks_table(uma: Machine) -> None:
    # "Number of mixed blocks" needs CONFIG_PAGE_OWNER with page_owner on; the model has neither
    assert "mixed" not in vmstat.pagetypeinfo_show(uma)


def test_pagetypeinfo_walk_cap() -> None:
    # pagetypeinfo_showfree_print stops at 100000 entries and prints ">" before the count
    mm = _tiny_zone_machine()
    zone = mm.zones[0]
    zone.free_area[0].free_list[MIGRATE_MOVABLE].update(dict.fromkeys(range(10**6, 10**6 + 100_001)))
    zone.free_area[1].free_list[MIGRATE_MOVABLE].update(dict.fromkeys(range(10**6, 10**6 + 99_999)))
    row = next(ln for ln in vmstat.pagetypeinfo_show(mm).splitlines() if "type      Movable" in ln)
    assert row.startswith("Node    0, zone      DMA, type      Movable >100000  99999      0 ")


@needs_real
def test_pagetypeinfo_layout_matches_real(uma: Machine) -> None:
    real_text = read_real("jc_proc_pagetypeinfo.txt")
    (real,) = parse_pagetypeinfo(real_text)
    (ours,) = parse_pagetypeinfo(vmstat.pagetypeinfo_show(uma))
    # the capture is one node of a 5-migratetype kernel (no CMA); its DMA and Normal rows sum
    # exactly to the buddyinfo taken with it (README: DMA32 churned between the two reads)
    buddy = {(r.node, r.zone): r.counts for r in parse_buddyinfo(read_real("jc_proc_buddyinfo.txt"))}
    for zone in ("DMA", "Normal"):
        per_type = [real.free[(0, zone, t)] for t in real.block_types]
        assert [sum(c) for c in zip(*per_type, strict=True)] == buddy[(0, zone)]
    assert (real.pageblock_order, real.pages_per_block) == (ours.pageblock_order, ours.pages_per_block)
    assert real.order_header_ends == ours.order_header_ends
    assert {tuple(e) for e in real.free_row_ends} == {tuple(e) for e in ours.free_row_ends}
    assert {tuple(e) for e in real.block_row_ends} == {tuple(e[:-1]) for e in ours.block_row_ends}
    # "%12s " per type name: the shared leading types sit in the same columns
    shared = real.block_types[:4]
    assert ours.block_types[:4] == shared
    assert real.block_header_ends[: 4 + 4] == ours.block_header_ends[: 4 + 4]
    # the literal header lines
    header = real_text.splitlines()[:4]
    assert vmstat.pagetypeinfo_show(uma).splitlines()[:4] == header


# ---------------------------------------------------------------------------- zoneinfo


def test_zoneinfo_structure(uma: Machine, numa: Machine) -> None:
    for mm in (uma, numa):
        zones = parse_zoneinfo(vmstat.zoneinfo_show(mm))
        # every zone of every node, populated or not
        assert [(z.node, z.zone) for z in zones] == [
            (p.node_id, z.name) for p in mm.node_data for z in p.node_zones
        ]
        first_seen: set[int] = set()
        for parsed, zone in zip(zones, (z for p in mm.node_data for z in p.node_zones), strict=True):
            keys = parsed.keys()
            populated = zone.present_pages > 0
            # per-node stats only on the node's first populated zone
            first = populated and parsed.node not in first_seen
            if populated:
                first_seen.add(parsed.node)
            assert ("per-node stats" in keys) == first
            assert keys[keys.index("pages free") :][:11] == [
                "pages free",
                "boost",
                "min",
                "low",
                "high",
                "promo",
                "spanned",
                "present",
                "managed",
                "cma",
                "protection:",
            ]
            if not populated:
                assert keys[-1] == "protection:"
                continue
            assert int(parsed.get("pages free")) == int(parsed.get("nr_free_pages")) == zone.NR_FREE_PAGES
            assert int(parsed.get("min")) == zone.wmark_pages(0)
            assert parsed.get("protection:") == "(" + ", ".join(map(str, zone.lowmem_reserve)) + ")"
            assert keys[-5:] == [
                "vm stats threshold:",
                "node_unreclaimable:",
                "start_pfn:",
                "reserved_highatomic:",
                "free_highatomic:",
            ]
            assert int(parsed.get("start_pfn:")) == zone.zone_start_pfn
            assert keys.count("cpu:") == mm.nr_cpus


def test_zoneinfo_pageset_lines_are_7_2(uma: Machine) -> None:
    # kernel-allocator.md §10.3: 7.2 pads the pcp labels to "high_max:" and adds high_min/high_max
    text = vmstat.zoneinfo_show(uma)
    pcp = uma.zones[2].per_cpu_pageset[1]
    block = (
        "\n    cpu: 1"
        f"\n              count:    {pcp.count}"
        f"\n              high:     {pcp.high}"
        f"\n              batch:    {pcp.batch}"
        f"\n              high_min: {pcp.high_min}"
        f"\n              high_max: {pcp.high_max}"
        "\n  vm stats threshold: "
    )
    assert block in text
    # "%-12s %lu": short names padded to 12 columns, long ones get one space
    assert "\n      nr_mlock     0\n" in text
    assert "\n      nr_free_pages_blocks " in text
    # unpopulated Movable: stops after protection, with the newline
    assert text.endswith(
        "Node 0, zone  Movable\n  pages free     0\n        boost    0\n"
        + "".join(
            f"        {k:<8s} 0\n"
            for k in ("min", "low", "high", "promo", "spanned", "present", "managed", "cma")
        )
        + "        protection: (0, 0, 0, 0)\n"
    )


@needs_real
@pytest.mark.parametrize("capture", ["procfs_zoneinfo.txt", "jc_proc_zoneinfo.txt"])
def test_zoneinfo_layout_matches_real(capture: str, uma: Machine) -> None:
    real = parse_zoneinfo(read_real(capture))
    ours = parse_zoneinfo(vmstat.zoneinfo_show(uma))
    assert [z.zone for z in real][:3] == [z.zone for z in ours][:3] == ["DMA", "DMA32", "Normal"]
    # the captures are from 5.x kernels: pcp lines had narrower padding then (count: / high:)
    old_pcp = {"count:", "high:", "batch:"}
    real_cols = {e.key: (e.indent, e.value_col) for z in real for e in z.entries if e.key not in old_pcp}
    our_cols = {e.key: (e.indent, e.value_col) for z in ours for e in z.entries if e.key not in old_pcp}
    shared = real_cols.keys() & our_cols.keys()
    assert {"pages free", "min", "managed", "protection:", "nr_free_pages", "nr_mlock", "numa_hit"} <= shared
    assert {"pagesets", "cpu:", "vm stats threshold:", "node_unreclaimable:", "start_pfn:"} <= shared
    for key in shared:
        assert real_cols[key] == our_cols[key], key
    # field order: the zone-level keys both versions print come in the same order (page-table
    # and kernel-stack counts moved from zone to node stats since 5.x, so node stats are left out)
    zone_level = shared - set(vmstat.NODE_STAT_ITEMS)
    for rz, oz in zip(real[:3], ours[:3], strict=True):
        rk = [k for k in dict.fromkeys(rz.keys()) if k in zone_level]
        ok = [k for k in dict.fromkeys(oz.keys()) if k in zone_level]
        assert rk == ok
    # unpopulated zones stop after protection in both
    assert real[-1].keys()[-1] == ours[-1].keys()[-1] == "protection:"
    # the vm stats threshold is calculate_normal_threshold() of each zone's managed pages and
    # CPU count, in the capture as in ours
    for zones in (real, ours):
        for z in zones:
            if "pagesets" not in z.keys():
                continue
            nr_cpus = z.keys().count("cpu:")
            managed = int(z.get("managed"))
            fake = SimpleNamespace(managed_pages=managed, mm=SimpleNamespace(nr_cpus=nr_cpus, PAGE_SHIFT=12))
            assert int(z.get("vm stats threshold:")) == vmstat.calculate_normal_threshold(fake)


def test_calculate_normal_threshold_by_hand() -> None:
    # 2 * fls(cpus) * (1 + fls(managed >> 15)), capped at 125
    def t(managed: int, cpus: int) -> int:
        fake = SimpleNamespace(managed_pages=managed, mm=SimpleNamespace(nr_cpus=cpus, PAGE_SHIFT=12))
        return vmstat.calculate_normal_threshold(fake)

    assert t(3956, 8) == 8  # mem 0: 2 * 4 * (1 + 0)
    assert t(742806, 8) == 48  # mem 22 (fls 5): 2 * 4 * 6
    assert t(758708, 2) == 24  # mem 23 (fls 5): 2 * 2 * 6
    assert t(1 << 30, 64) == 125  # 2 * 7 * (1 + 16) = 238, capped


# ---------------------------------------------------------------------------- kmem -f


def test_kmem_f_rows_and_footer(uma: Machine) -> None:
    parsed = parse_kmem_f(vmstat.kmem_f(uma))
    assert [(z.idx, z.name) for z in parsed.zones] == [
        (0, "DMA"),
        (1, "DMA32"),
        (2, "Normal"),
        (3, "Movable"),
    ]
    for kz, zone in zip(parsed.zones, uma.node_data[0].node_zones, strict=True):
        assert (kz.size, kz.free) == (zone.spanned_pages, zone.NR_FREE_PAGES)
        if not kz.free:
            assert kz.areas == []
            continue
        # one row per order and migratetype list, BLOCKS << order == PAGES, sum == FREE
        assert len(kz.areas) == 11 * MIGRATE_TYPES
        for row in kz.areas:
            assert row.blocks << row.order == row.pages
            assert row.size == f"{4 << row.order}k"
        assert sum(r.pages for r in kz.areas) == kz.free
    assert parsed.nr_free_pages == uma.nr_free_pages()
    assert parsed.found is None


def test_kmem_f_header_is_crash_64bit() -> None:
    # crash: zone_hdr, then mkstring(VADDR_PRLEN=16, CENTER|LJUST, "MEM_MAP"): 4 spaces left, 5 right
    text = vmstat.kmem_f(_tiny_zone_machine())
    assert text.startswith(
        "NODE\n  0\nZONE  NAME        SIZE    FREE      MEM_MAP       START_PADDR  START_MAPNR\n"
        # "%3d   %-9s %6ld  %6ld  ", mem_map centred, START_PADDR and START_MAPNR centred in 11
        # columns with the odd spare column on the left (RJUST): "0" -> 5 + 1 + 5
        "  0   DMA         1024    1024  ffffea0000000000       0            0     \n"
        "AREA    SIZE  FREE_AREA_STRUCT  BLOCKS  PAGES\n"
        "  0       4k  ffff88807ffd50c0       0      0\n"
    )
    assert text.endswith("\nnr_free_pages: 1024  (verified)\n")


def test_kmem_f_found_flips_when_a_counter_is_corrupted() -> None:
    mm = uma_machine()
    assert vmstat.kmem_f(mm).endswith(f"\nnr_free_pages: {mm.nr_free_pages()}  (verified)\n")
    listed = mm.nr_free_pages()
    mm.zones[2].NR_FREE_PAGES += 3  # the counter drifts; the lists do not
    assert vmstat.kmem_f(mm).endswith(f"\nnr_free_pages: {listed + 3}  (found {listed})\n")
    # a zone whose counter reads 0 is not walked by crash: its listed pages go uncounted
    dma32 = mm.zones[1]
    mm.zones[2].NR_FREE_PAGES -= 3
    hidden = dma32.NR_FREE_PAGES
    dma32.NR_FREE_PAGES = 0
    assert vmstat.kmem_f(mm).endswith(f"\nnr_free_pages: {listed - hidden}  (verified)\n")
    # a free block missing from the counter but on a list: found exceeds the counter
    dma32.NR_FREE_PAGES = hidden - 1
    assert vmstat.kmem_f(mm).endswith(f"\nnr_free_pages: {listed - 1}  (found {listed})\n")


def test_kmem_f_numa_separator(numa: Machine) -> None:
    text = vmstat.kmem_f(numa)
    # "\n" + 74 dashes + "\n", then "\nNODE\n %2d\n" for every node after the first
    assert "\n\n" + "-" * 74 + "\n\nNODE\n  1\nZONE  NAME" in text
    parsed = parse_kmem_f(text)
    assert [(z.node, z.name) for z in parsed.zones] == [
        (p.node_id, z.name) for p in numa.node_data for z in p.node_zones
    ]
    assert parsed.found is None and parsed.nr_free_pages == numa.nr_free_pages()


@needs_real
def test_kmem_f_layout_matches_real_crash(uma: Machine) -> None:
    real = parse_kmem_f(read_real("crash_kmem_f_i386_highmem.txt"))
    # README: BLOCKS << order == PAGES on every row, per zone sum == FREE, total (verified)
    for z in real.zones:
        for row in z.areas:
            assert row.blocks << row.order == row.pages
        assert sum(r.pages for r in z.areas) == z.free
    assert real.nr_free_pages == sum(z.free for z in real.zones) == 2267642 and real.found is None
    ours = parse_kmem_f(vmstat.kmem_f(uma))

    # AREA rows: "%3d ", " %7s  ", the 16-column FREE_AREA_STRUCT field, "%6d %6ld": every
    # column but the address (8 hex digits there, 16 here) ends at the same place
    def layout(rows: list[KmemArea]) -> set[tuple[int, ...]]:
        return {(r.ends[0], r.ends[1], r.ends[3], r.ends[4]) for r in rows}

    real_rows = [r for z in real.zones for r in z.areas]
    our_rows = [r for z in ours.zones for r in z.areas]
    assert len(layout(real_rows)) == 1
    assert layout(our_rows) == layout(real_rows)
    # the multi-list capture (one row per migratetype list) has the same row layout
    arm = parse_kmem_f(
        "\n".join(
            ln
            for ln in read_real("linux_mm_2013_crash_kmem_f_per_migratetype_arm32.txt").splitlines()
            if not ln.startswith(("#", "crash>", "NODE:", "  SIZE:", "          NR_FREE"))
        )
    )
    assert layout([r for z in arm.zones for r in z.areas]) == layout(real_rows)


# ---------------------------------------------------------------------------- fragmentation indices
# Hand-made free areas; the arithmetic is that of fill_contig_page_info, __fragmentation_index
# and unusable_free_index in mm/vmstat.c, worked out below.


def _fake_zone(nr_free: list[int]) -> SimpleNamespace:
    return SimpleNamespace(free_area=[SimpleNamespace(nr_free=n) for n in nr_free])


# nr_free = 3, 2, 1, 0, 1 at orders 0..4:
#   free_pages        = 3*1 + 2*2 + 1*4 + 0*8 + 1*16 = 27
#   free_blocks_total = 3 + 2 + 1 + 0 + 1 = 7
#   suitable(j)       = sum_{k>=j} n_k * 2^(k-j):
#       j=0: 27, j=1: 2 + 1*2 + 1*8 = 12, j=2: 1 + 1*4 = 5, j=3: 0 + 1*2 = 2, j=4: 1, j>=5: 0
# extfrag: suitable > 0 -> -1000 (orders 0..4); else 1000 - (1000 + 27000 // 2^j) // 7:
#       j=5: 27000//32 = 843,  1843//7 = 263 -> 737
#       j=6: 27000//64 = 421,  1421//7 = 203 -> 797
#       j=7: 27000//128 = 210, 1210//7 = 172 -> 828
#       j=8: 27000//256 = 105, 1105//7 = 157 -> 843
#       j=9: 27000//512 = 52,  1052//7 = 150 -> 850
#       j=10: 27000//1024 = 26, 1026//7 = 146 -> 854
# unusable: (27 - suitable(j) * 2^j) * 1000 // 27:
#       j=0: 0, j=1: 3000//27 = 111, j=2: 7000//27 = 259, j=3: 11000//27 = 407, j=4: 407,
#       j>=5: 27000//27 = 1000
HAND = [3, 2, 1, 0, 1, 0, 0, 0, 0, 0, 0]
HAND_EXTFRAG = [-1000] * 5 + [737, 797, 828, 843, 850, 854]
HAND_UNUSABLE = [0, 111, 259, 407, 407] + [1000] * 6

# one free order-0 page: free_pages 1, blocks 1, nothing suitable above order 0, so
#   j >= 1: 1000 - (1000 + 1000 // 2^j) // 1 = -(1000 // 2^j): -500, -250, -125, -62, -31,
#   -15, -7, -3, -1, 0. Not confined to [0, 1000]: the kernel returns these (unsigned arithmetic
#   truncated to int) and prints them "%2d.%03d" with C division: " 0.-500", " 0.-07".
ONE_PAGE_EXTFRAG = [-1000, -500, -250, -125, -62, -31, -15, -7, -3, -1, 0]


def test_indices_by_hand() -> None:
    zone = _fake_zone(HAND)
    assert vmstat.fill_contig_page_info(zone, 1) == vmstat.contig_page_info(27, 7, 12)
    assert [vmstat.fragmentation_index(zone, j) for j in range(11)] == HAND_EXTFRAG
    assert [vmstat.unusable_free_index(zone, j) for j in range(11)] == HAND_UNUSABLE
    one = _fake_zone([1] + [0] * 10)
    assert [vmstat.fragmentation_index(one, j) for j in range(11)] == ONE_PAGE_EXTFRAG
    assert [vmstat.unusable_free_index(one, j) for j in range(11)] == [0] + [1000] * 10
    # nothing free: fragmentation 0 (no blocks), unusable 1000 ("an allocation will fail")
    empty = _fake_zone([0] * 11)
    assert {vmstat.fragmentation_index(empty, j) for j in range(11)} == {0}
    assert {vmstat.unusable_free_index(empty, j) for j in range(11)} == {1000}
    # extfrag_for_order: the same ratio as unusable, in percent
    assert [vmstat.extfrag_for_order(zone, j) for j in range(6)] == [0, 11, 25, 40, 40, 100]


def test_indices_text_by_hand() -> None:
    mm = _tiny_zone_machine()
    for area, n in zip(mm.zones[0].free_area, HAND, strict=True):
        area.nr_free = n  # the indices read nr_free only, as the kernel does
    assert vmstat.extfrag_index(mm) == (
        "Node 0, zone      DMA -1.000 -1.000 -1.000 -1.000 -1.000  0.737  0.797  0.828  0.843  0.850  0.854 \n"
    )
    assert vmstat.unusable_index(mm) == (
        "Node 0, zone      DMA 0.000 0.111 0.259 0.407 0.407 1.000 1.000 1.000 1.000 1.000 1.000 \n"
    )
    for area, n in zip(mm.zones[0].free_area, [1] + [0] * 10, strict=True):
        area.nr_free = n
    assert vmstat.extfrag_index(mm) == (
        "Node 0, zone      DMA -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07  0.-03  0.-01  0.000 \n"
    )
    for area in mm.zones[0].free_area:
        area.nr_free = 0
    assert vmstat.extfrag_index(mm) == "Node 0, zone      DMA" + "  0.000" * 11 + " \n"
    assert vmstat.unusable_index(mm) == "Node 0, zone      DMA" + " 1.000" * 11 + " \n"


def test_indices_agree_with_spec_formula(uma: Machine) -> None:
    # formats-and-metrics.md §3, written independently with Python integers
    for zone in uma.zones:
        n = [a.nr_free for a in zone.free_area]
        free_pages = sum(c << k for k, c in enumerate(n))
        total = sum(n)
        for j in range(11):
            suitable = sum(c << (k - j) for k, c in enumerate(n) if k >= j)
            u = 1000 if free_pages == 0 else (free_pages - (suitable << j)) * 1000 // free_pages
            f = (
                0
                if total == 0
                else -1000
                if suitable
                else 1000 - (1000 + free_pages * 1000 // (1 << j)) // total
            )
            assert vmstat.unusable_free_index(zone, j) == u
            assert vmstat.fragmentation_index(zone, j) == f


# ---------------------------------------------------------------------------- JSON


def test_vmstat_json(uma: Machine) -> None:
    doc = vmstat.vmstat_json(uma)
    assert doc["schema_version"] == 1

    def keys_sorted(obj: object) -> bool:
        if isinstance(obj, dict):
            return list(obj) == sorted(obj) and all(keys_sorted(v) for v in obj.values())
        if isinstance(obj, list):
            return all(keys_sorted(v) for v in obj)
        return True

    assert keys_sorted(doc)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["verified"] and doc["nr_free_pages"] == uma.nr_free_pages()
    assert [(z["node"], z["zone"]) for z in doc["zones"]] == [
        (0, n) for n in ("DMA", "DMA32", "Normal", "Movable")
    ]
    for zj, zone in zip(doc["zones"], uma.node_data[0].node_zones, strict=True):
        per_mt = list(zj["free_lists"].values())
        assert [sum(col) for col in zip(*per_mt, strict=True)] == zj["nr_free"]
        assert zj["extfrag_index"] == [vmstat.fragmentation_index(zone, j) / 1000 for j in range(11)]
        assert zj["unusable_index"] == [vmstat.unusable_free_index(zone, j) / 1000 for j in range(11)]
        assert [p["count"] for p in zj["pcp"]] == [p.count for p in zone.per_cpu_pageset]
        assert zj["watermarks"]["min"] == zone.wmark_pages(0)
        assert zj["counters"]["nr_free_pages"] == zone.NR_FREE_PAGES
