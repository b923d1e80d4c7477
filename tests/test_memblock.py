"""mm/memblock.c model (buddysim/mm/memblock.py): region lists, allocation, iterators, debug lines.

Expected region lists are worked out by hand; the property test checks the model against an
independent oracle (a set of page numbers per list).
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from buddysim.config import load_preset
from buddysim.mm.memblock import (
    MEMBLOCK_ALLOC_ANYWHERE,
    MEMBLOCK_HOTPLUG,
    MEMBLOCK_NOMAP,
    NUMA_NO_NODE,
    Memblock,
    memblock_from_config,
)


def regions(t) -> list[tuple[int, int]]:
    return [(r.base, r.end) for r in t]


def test_add_merges_adjacent_and_overlapping() -> None:
    mb = Memblock()
    mb.memblock_add(0x1000, 0x1000)
    mb.memblock_add(0x3000, 0x1000)
    assert regions(mb.memory) == [(0x1000, 0x2000), (0x3000, 0x4000)]
    mb.memblock_add(0x2000, 0x1000)  # fills the gap: all three merge
    assert regions(mb.memory) == [(0x1000, 0x4000)]
    mb.memblock_add(0x800, 0x5000)  # overlaps on both sides
    assert regions(mb.memory) == [(0x800, 0x5800)]
    assert mb.memory.total_size == 0x5000


def test_add_node_keeps_nodes_apart_and_existing_parts_win() -> None:
    mb = Memblock()
    mb.memblock_add_node(0x0, 0x10000, 0)
    mb.memblock_add_node(0x10000, 0x10000, 1)  # adjacent, other node: not merged
    assert [(r.base, r.end, r.nid) for r in mb.memory] == [(0, 0x10000, 0), (0x10000, 0x20000, 1)]
    # overlapping add: only the uncovered part [0x20000, 0x28000) is inserted with nid 2
    mb.memblock_add_node(0x18000, 0x10000, 2)
    assert [(r.base, r.end, r.nid) for r in mb.memory] == [
        (0, 0x10000, 0),
        (0x10000, 0x20000, 1),
        (0x20000, 0x28000, 2),
    ]
    # flags keep regions apart too
    mb.memblock_add_node(0x28000, 0x8000, 2, MEMBLOCK_HOTPLUG)
    assert mb.memory.cnt == 4


def test_reserve_and_phys_free_split() -> None:
    mb = Memblock()
    mb.memblock_reserve(0x1000, 0x4000)
    mb.memblock_reserve(0x3000, 0x4000)
    assert regions(mb.reserved) == [(0x1000, 0x7000)]
    mb.memblock_phys_free(0x2000, 0x1000)  # a hole in the middle: memblock_isolate_range splits
    assert regions(mb.reserved) == [(0x1000, 0x2000), (0x3000, 0x7000)]
    mb.memblock_phys_free(0x0, 0x1800)  # the head of the first region
    assert regions(mb.reserved) == [(0x1800, 0x2000), (0x3000, 0x7000)]
    mb.memblock_phys_free(0x1000, 0x10000)  # everything
    assert regions(mb.reserved) == [] and mb.reserved.total_size == 0


def test_remove_memory() -> None:
    mb = Memblock()
    mb.memblock_add(0, 0x100000)
    mb.memblock_remove(0x40000, 0x10000)
    assert regions(mb.memory) == [(0, 0x40000), (0x50000, 0x100000)]
    assert mb.memblock_phys_mem_size() == 0xF0000
    assert mb.memblock_start_of_DRAM() == 0 and mb.memblock_end_of_DRAM() == 0x100000
    assert mb.memblock_is_memory(0x3FFFF) and not mb.memblock_is_memory(0x40000)


def test_set_node_splits_and_merges() -> None:
    mb = Memblock()
    mb.memblock_add(0x1000, 0x9E000)
    mb.memblock_add(0x100000, 0x7FF00000)
    mb.memblock_set_node(0, 0x40000000, mb.memory, 0)
    mb.memblock_set_node(0x40000000, 0x40000000, mb.memory, 1)
    assert [(r.base, r.end, r.nid) for r in mb.memory] == [
        (0x1000, 0x9F000, 0),
        (0x100000, 0x40000000, 0),
        (0x40000000, 0x80000000, 1),
    ]
    mb.memblock_set_node(0x40000000, 0x40000000, mb.memory, 0)  # back to node 0: merges
    assert [(r.base, r.end, r.nid) for r in mb.memory] == [(0x1000, 0x9F000, 0), (0x100000, 0x80000000, 0)]


def test_trim_memory_keeps_total_size_like_the_kernel() -> None:
    mb = Memblock()
    mb.memblock_add(0x1000, 0x9EC00)  # e820 usable [0x1000, 0x9fc00)
    mb.memblock_add(0x100800, 0x400)  # less than a page once aligned: removed
    mb.memblock_trim_memory(0x1000)
    assert regions(mb.memory) == [(0x1000, 0x9F000)]
    # memblock_trim_memory shrinks regions in place without touching total_size
    assert mb.memory.total_size == 0x9EC00


def test_free_ranges_ascending_per_region_and_per_node() -> None:
    mb = Memblock()
    mb.memblock_add_node(0x1000, 0x9E000, 0)
    mb.memblock_add_node(0x100000, 0x3FF00000, 0)
    mb.memblock_add_node(0x40000000, 0x40000000, 1)
    mb.memblock_reserve(0, 0x100000)
    mb.memblock_reserve(0x1000000, 0x2000000)
    mb.memblock_reserve(0x3FF00000, 0x200000)  # straddles the node boundary
    assert list(mb.for_each_free_mem_range()) == [
        (0x100000, 0x1000000, 0),
        (0x3000000, 0x3FF00000, 0),
        (0x40100000, 0x80000000, 1),
    ]
    assert list(mb.for_each_free_mem_range(nid=1)) == [(0x40100000, 0x80000000, 1)]
    assert list(mb.for_each_free_mem_range_reverse()) == list(reversed(list(mb.for_each_free_mem_range())))


def test_free_ranges_restart_at_region_boundaries_and_skip_nomap() -> None:
    mb = Memblock()
    mb.memblock_add_node(0, 0x10000, 0)
    mb.memblock_add_node(0x10000, 0x10000, 0, MEMBLOCK_HOTPLUG)  # adjacent, different flags
    mb.memblock_add_node(0x20000, 0x10000, 0, MEMBLOCK_NOMAP)
    assert list(mb.for_each_free_mem_range()) == [(0, 0x10000, 0), (0x10000, 0x20000, 0)]


def test_free_ranges_yield_empty_range_between_touching_reservations() -> None:
    # __next_mem_range yields the zero-length gap between two reserved regions that touch
    mb = Memblock()
    mb.memblock_add_node(0, 0x10000, 0)
    mb.memblock_add_range(mb.reserved, 0x2000, 0x1000, NUMA_NO_NODE, 0)
    mb.memblock_add_range(mb.reserved, 0x3000, 0x1000, NUMA_NO_NODE, MEMBLOCK_HOTPLUG)
    assert list(mb.for_each_free_mem_range()) == [(0, 0x2000, 0), (0x3000, 0x3000, 0), (0x4000, 0x10000, 0)]


def test_mem_pfn_ranges() -> None:
    mb = Memblock()
    mb.memblock_add_node(0x1000, 0x9EC00, 0)  # not page aligned: PFN_UP/PFN_DOWN
    mb.memblock_add_node(0x100800, 0x400, 0)  # no whole page: skipped
    mb.memblock_add_node(0x40000000, 0x1000, 1)
    assert list(mb.for_each_mem_pfn_range()) == [(1, 0x9F, 0), (0x40000, 0x40001, 1)]
    assert list(mb.for_each_mem_pfn_range(1)) == [(0x40000, 0x40001, 1)]


def _real_mode_machine(debug=None) -> Memblock:
    mb = Memblock(debug=debug)
    mb.memblock_add(0x1000, 0x9EC00, caller="e820__memblock_setup+0x6e/0xb0")
    mb.memblock_add(0x100000, 0x7FEE0000, caller="e820__memblock_setup+0x6e/0xb0")
    mb.memblock_trim_memory(0x1000)
    mb.memblock_reserve(0, 0x10000, caller="setup_arch+0x310/0xcc0")
    return mb


def test_phys_alloc_range_is_top_down_and_reserves() -> None:
    mb = _real_mode_machine()
    # the real-mode trampoline: 28672 bytes below 1 MiB -> the top of [0x10000, 0x9f000)
    assert mb.memblock_phys_alloc_range(28672, 0x1000, 0, 0x100000) == 0x98000
    assert regions(mb.reserved) == [(0, 0x10000), (0x98000, 0x9F000)]
    # aligned below the top of memory
    assert mb.memblock_phys_alloc_range(0x200000, 0x200000, 0, MEMBLOCK_ALLOC_ANYWHERE) == 0x7FC00000
    # nothing fits: 0, nothing reserved
    assert mb.memblock_phys_alloc_range(0x100000, 0x1000, 0, 0x100000) == 0
    assert mb.reserved.cnt == 3


def test_phys_alloc_never_returns_the_first_page_and_bottom_up() -> None:
    mb = Memblock()
    mb.memblock_add(0, 0x10000)
    mb.memblock_set_bottom_up(True)
    assert mb.memblock_phys_alloc_range(0x1000, 0x1000, 0, 0x10000) == 0x1000
    assert mb.memblock_phys_alloc_range(0x1000, 0x1000, 0, 0x10000) == 0x2000


def test_alloc_on_node_falls_back_unless_exact() -> None:
    mb = Memblock()
    mb.memblock_add_node(0, 0x100000, 0)
    mb.memblock_add_node(0x100000, 0x100000, 1)
    assert mb.memblock_alloc_range_nid(0x1000, 0x1000, 0, MEMBLOCK_ALLOC_ANYWHERE, 0) == 0xFF000
    mb.memblock_reserve(0x100000, 0x100000)  # node 1 full
    assert mb.memblock_alloc_range_nid(0x1000, 0x1000, 0, MEMBLOCK_ALLOC_ANYWHERE, 1, exact_nid=True) == 0
    assert mb.memblock_alloc_range_nid(0x1000, 0x1000, 0, MEMBLOCK_ALLOC_ANYWHERE, 1) == 0xFE000


def test_debug_lines() -> None:
    lines: list[str] = []
    mb = _real_mode_machine(lines.append)
    mb.memblock_phys_alloc_range(28672, 0x1000, 0, 0x100000, caller="reserve_real_mode+0x52/0x90")
    mb.memblock_phys_free(0x98000, 0x7000, caller="free_x+0x1/0x2")
    mb.memblock_add_node(0x80000000, 0x1000, 1, caller="f+0x0/0x1")
    mb.memblock_remove(0x80000000, 0x1000)
    assert lines == [
        "memblock_add: [0x0000000000001000-0x000000000009fbff] e820__memblock_setup+0x6e/0xb0",
        "memblock_add: [0x0000000000100000-0x000000007ffdffff] e820__memblock_setup+0x6e/0xb0",
        "memblock_reserve: [0x0000000000000000-0x000000000000ffff] setup_arch+0x310/0xcc0",
        "memblock_phys_alloc_range: 28672 bytes align=0x1000 from=0x0000000000000000 "
        "max_addr=0x0000000000100000 reserve_real_mode+0x52/0x90",
        "memblock_reserve: [0x0000000000098000-0x000000000009efff] memblock_alloc_range_nid",
        "memblock_phys_free: [0x0000000000098000-0x000000000009efff] free_x+0x1/0x2",
        "memblock_add_node: [0x0000000080000000-0x0000000080000fff] nid=1 flags=0 f+0x0/0x1",
        "memblock_remove: [0x0000000080000000-0x0000000080000fff]",
    ]


def test_dump() -> None:
    mb = _real_mode_machine()
    mb.memblock_set_node(0, 0x40000000, mb.memory, 0)
    assert mb.memblock_dump_lines() == [
        "MEMBLOCK configuration:",
        # the trimmed 0xc00 bytes stay in memory.total_size, as in the kernel
        " memory size = 0x000000007ff7ec00 reserved size = 0x0000000000010000",
        " memory.cnt  = 0x3",
        " memory[0x0]\t[0x0000000000001000-0x000000000009efff], 0x000000000009e000 bytes on node 0 flags: 0x0",
        " memory[0x1]\t[0x0000000000100000-0x000000003fffffff], 0x000000003ff00000 bytes on node 0 flags: 0x0",
        " memory[0x2]\t[0x0000000040000000-0x000000007ffdffff], 0x000000003ffe0000 bytes flags: 0x0",
        " reserved.cnt  = 0x1",
        " reserved[0x0]\t[0x0000000000000000-0x000000000000ffff], 0x0000000000010000 bytes flags: 0x0",
    ]
    # memblock_dump_all only prints with memblock=debug
    out: list[str] = []
    mb.memblock_dump_all()
    mb.debug = out.append
    mb.memblock_dump_all()
    assert out == mb.memblock_dump_lines()


def test_memblock_from_tiny() -> None:
    lines: list[str] = []
    mb = memblock_from_config(load_preset("tiny"), debug=lines.append)
    assert [(r.base, r.end, r.nid) for r in mb.memory] == [(0x1000, 0x9F000, 0), (0x100000, 0x1000000, 0)]
    # low 1M + kernel [2M, 4M) + percpu [10M, 12M) + memmap [12M, 14M) + NODE_DATA [0xfd5000, 16M)
    assert regions(mb.reserved) == [
        (0, 0x100000),
        (0x200000, 0x400000),
        (0xA00000, 0xE00000),
        (0xFD5000, 0x1000000),
    ]
    assert [(s, e) for s, e, _ in mb.for_each_free_mem_range()] == [
        (0x100000, 0x200000),
        (0x400000, 0xA00000),
        (0xE00000, 0xFD5000),
    ]
    # e820 usable [0, 0x9fc00) after trim_bios_range is [0x1000, 0x9fc00): added untrimmed
    assert lines[0] == "memblock_add: [0x0000000000001000-0x000000000009fbff] e820__memblock_setup"
    assert "MEMBLOCK configuration:" in lines
    assert "memblock_reserve: [0x0000000000200000-0x00000000003fffff] kernel" in lines


# ---------------------------------------------------------------------------------------------
# property test: the model against a set-of-pages oracle

PAGES = 64
op = st.tuples(
    st.sampled_from(["add", "remove", "reserve", "free", "set_node"]),
    st.integers(0, PAGES - 1),
    st.integers(1, 16),
    st.integers(0, 2),
)


@given(st.lists(op, max_size=40))
def test_region_lists_match_a_page_set_oracle(ops: list[tuple[str, int, int, int]]) -> None:
    mb = Memblock()
    memory: dict[int, int] = {}  # page -> nid
    reserved: set[int] = set()
    for kind, start, n, nid in ops:
        span = range(start, min(start + n, PAGES))
        base, size = start * 0x1000, len(span) * 0x1000
        if kind == "add":
            mb.memblock_add_node(base, size, nid)
            for p in span:
                memory.setdefault(p, nid)  # parts already present keep their node
        elif kind == "remove":
            mb.memblock_remove(base, size)
            for p in span:
                memory.pop(p, None)
        elif kind == "reserve":
            mb.memblock_reserve(base, size)
            reserved.update(span)
        elif kind == "free":
            mb.memblock_phys_free(base, size)
            reserved.difference_update(span)
        else:
            mb.memblock_set_node(base, size, mb.memory, nid)
            for p in span:
                if p in memory:
                    memory[p] = nid
    for t in (mb.memory, mb.reserved):
        rs = list(t)
        assert all(r.size > 0 for r in rs)
        for a, b in pairwise(rs):
            assert a.end <= b.base  # sorted, no overlap
            assert not (a.end == b.base and a.nid == b.nid and a.flags == b.flags)  # minimal
        assert t.total_size == sum(r.size for r in rs)
    assert {p: r.nid for r in mb.memory for p in range(r.base // 0x1000, r.end // 0x1000)} == memory
    assert {p for r in mb.reserved for p in range(r.base // 0x1000, r.end // 0x1000)} == reserved
    free = {p for s, e, _ in mb.for_each_free_mem_range() for p in range(s // 0x1000, e // 0x1000)}
    assert free == set(memory) - reserved
