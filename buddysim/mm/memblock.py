"""The boot-time memory map: mm/memblock.c (Linux 7.2; the region logic is unchanged since 5.x).

``struct memblock`` holds two ``struct memblock_type`` region lists, ``memory`` (what RAM
exists, per node) and ``reserved`` (what early boot has taken). Each list is kept sorted by base
and minimal: ``memblock_add_range`` inserts only the parts of a new range not already covered and
then ``memblock_merge_regions`` joins neighbours with the same node and flags;
``memblock_remove_range`` splits regions at the range ends (``memblock_isolate_range``) and drops
what is inside. ``memblock_phys_alloc_range`` finds free space top-down (``bottom_up`` is false
by default) with ``__memblock_find_range_top_down`` and reserves it. ``for_each_free_mem_range``
walks memory minus reserved in ascending order per memory region, exactly as ``__next_mem_range``
does (the handoff's ``free_low_memory_core_early`` iterates it).

With ``debug`` set, every operation reports the line the kernel prints under ``memblock=debug``
(``memblock_reserve: [0x…-0x…] caller``) and :meth:`Memblock.memblock_dump_all` the
``MEMBLOCK configuration:`` dump. Pure model: no I/O.

Simplified: region arrays never run out, so ``memblock_double_array`` (which itself reserves
memory on big machines) is not modelled; no ``physmem`` type, no KHO scratch, no kmemleak or
``accept_memory``; ``MEMBLOCK_RSRV_KERN`` is not set on allocations (7.x tags them); the overlap
WARN_ONs of ``memblock_add_range`` (an existing region with another nid or flags) are silent;
``memblock.current_limit`` is only what :meth:`Memblock.memblock_set_current_limit` sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TYPE_CHECKING

from sortedcontainers import SortedKeyList

if TYPE_CHECKING:
    from buddysim.config import Config

__all__ = [
    "MAX_NUMNODES",
    "MEMBLOCK_ALLOC_ACCESSIBLE",
    "MEMBLOCK_ALLOC_ANYWHERE",
    "MEMBLOCK_DRIVER_MANAGED",
    "MEMBLOCK_HOTPLUG",
    "MEMBLOCK_MIRROR",
    "MEMBLOCK_NOMAP",
    "MEMBLOCK_NONE",
    "MEMBLOCK_RSRV_NOINIT",
    "NUMA_NO_NODE",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PFN_DOWN",
    "PFN_UP",
    "PHYS_ADDR_MAX",
    "SMP_CACHE_BYTES",
    "Memblock",
    "memblock_from_config",
    "memblock_region",
    "memblock_type",
    "numa_valid_node",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PHYS_ADDR_MAX = (1 << 64) - 1
SMP_CACHE_BYTES = 64
NUMA_NO_NODE = -1
MAX_NUMNODES = 1 << 10

# enum memblock_flags (include/linux/memblock.h)
MEMBLOCK_NONE = 0x0
MEMBLOCK_HOTPLUG = 0x1
MEMBLOCK_MIRROR = 0x2
MEMBLOCK_NOMAP = 0x4
MEMBLOCK_DRIVER_MANAGED = 0x8
MEMBLOCK_RSRV_NOINIT = 0x10

# the "end" arguments with special meaning (include/linux/memblock.h)
MEMBLOCK_ALLOC_ANYWHERE = PHYS_ADDR_MAX
MEMBLOCK_ALLOC_ACCESSIBLE = 0
MEMBLOCK_ALLOC_NOLEAKTRACE = 1


def PFN_UP(x: int) -> int:
    return (x + PAGE_SIZE - 1) >> PAGE_SHIFT


def PFN_DOWN(x: int) -> int:
    return x >> PAGE_SHIFT


def numa_valid_node(nid: int) -> bool:
    """``numa_valid_node()``: a real node id (not ``NUMA_NO_NODE`` nor ``MAX_NUMNODES``)."""
    return 0 <= nid < MAX_NUMNODES


def _pa(x: int) -> str:
    """``%pa``: a phys_addr_t as 0x plus 16 hex digits."""
    return f"0x{x:016x}"


def _hx(x: int) -> str:
    """The kernel's ``%#x``/``%#lx``: 0x0 for zero, unlike C's printf."""
    return f"{x:#x}"


@dataclass(frozen=True, slots=True)
class memblock_region:
    """``struct memblock_region``: ``[base, base + size)`` with flags and node id."""

    base: int
    size: int
    flags: int = MEMBLOCK_NONE
    nid: int = NUMA_NO_NODE

    @property
    def end(self) -> int:
        return self.base + self.size


class memblock_type:
    """``struct memblock_type``: a sorted, non-overlapping, minimal list of regions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.regions: SortedKeyList = SortedKeyList(key=lambda r: r.base)
        self.total_size = 0

    @property
    def cnt(self) -> int:
        """Number of regions (the kernel's ``cnt`` is 1 for an empty list: a dummy entry)."""
        return len(self.regions)

    def __len__(self) -> int:
        return len(self.regions)

    def __iter__(self) -> Iterator[memblock_region]:
        return iter(self.regions)

    def __getitem__(self, idx: int) -> memblock_region:
        return self.regions[idx]

    def __repr__(self) -> str:
        body = ", ".join(f"[{r.base:#x}-{r.end:#x}) nid={r.nid} flags={r.flags:#x}" for r in self.regions)
        return f"memblock_type({self.name!r}: {body})"

    def _insert(self, r: memblock_region) -> None:
        self.regions.add(r)
        self.total_size += r.size

    def _remove_at(self, idx: int) -> memblock_region:
        r = self.regions.pop(idx)
        self.total_size -= r.size
        return r

    def _first_overlap(self, base: int) -> int:
        """Index of the first region whose end is above ``base``."""
        i = self.regions.bisect_key_right(base) - 1
        if i >= 0 and self.regions[i].end > base:
            return i
        return i + 1


class Memblock:
    """``struct memblock``: ``memory`` and ``reserved`` plus the allocator direction.

    >>> mb = Memblock()
    >>> mb.memblock_add(0x1000, 0x9e000); mb.memblock_add(0x100000, 0x3ff00000)
    0
    0
    >>> mb.memblock_reserve(0x1000000, 0x2000000)
    0
    >>> [(hex(s), hex(e)) for s, e, _ in mb.for_each_free_mem_range()]
    [('0x1000', '0x9f000'), ('0x100000', '0x1000000'), ('0x3000000', '0x40000000')]

    ``debug`` receives each ``memblock=debug`` line (without the timestamp).
    """

    def __init__(self, debug: Callable[[str], None] | None = None) -> None:
        self.memory = memblock_type("memory")
        self.reserved = memblock_type("reserved")
        self.bottom_up = False
        self.current_limit = MEMBLOCK_ALLOC_ANYWHERE
        self.debug = debug

    def __repr__(self) -> str:
        return f"Memblock({self.memory!r}, {self.reserved!r})"

    def _dbg(self, line: str, caller: str | None) -> None:
        if self.debug is not None:
            self.debug(f"{line} {caller}" if caller else line)

    # -- region-list primitives ---------------------------------------------------------

    @staticmethod
    def memblock_cap_size(base: int, size: int) -> int:
        """Clamp ``size`` so that ``base + size`` does not pass ``PHYS_ADDR_MAX``."""
        return min(size, PHYS_ADDR_MAX - base)

    def memblock_add_range(self, type: memblock_type, base: int, size: int, nid: int, flags: int) -> int:
        """Add ``[base, base+size)``: only the uncovered parts are inserted, then neighbours merge.

        Parts that overlap existing regions keep those regions' nid and flags (the kernel
        WARNs if they differ; the model does not).
        """
        size = self.memblock_cap_size(base, size)
        if not size:
            return 0
        end = base + size
        idx = type._first_overlap(base)
        new: list[memblock_region] = []
        for r in type.regions.islice(idx):
            if r.base >= end:
                break
            if r.base > base:
                new.append(memblock_region(base, r.base - base, flags, nid))
            base = min(r.end, end)
        if base < end:
            new.append(memblock_region(base, end - base, flags, nid))
        if not new:
            return 0
        for r in new:
            type._insert(r)
        start_rgn = type.regions.index(new[0])
        end_rgn = type.regions.index(new[-1]) + 1
        self.memblock_merge_regions(type, start_rgn, end_rgn)
        return 0

    @staticmethod
    def memblock_merge_regions(type: memblock_type, start_rgn: int, end_rgn: int) -> None:
        """Merge neighbours in ``[start_rgn - 1, end_rgn]`` that touch and share nid and flags."""
        i = start_rgn - 1 if start_rgn else 0
        end_rgn = min(end_rgn, type.cnt - 1)
        while i < end_rgn:
            this, nxt = type.regions[i], type.regions[i + 1]
            if this.end != nxt.base or this.nid != nxt.nid or this.flags != nxt.flags:
                i += 1
                continue
            type._remove_at(i + 1)
            type._remove_at(i)
            type._insert(replace(this, size=this.size + nxt.size))
            end_rgn -= 1

    @staticmethod
    def memblock_isolate_range(type: memblock_type, base: int, size: int) -> tuple[int, int]:
        """Split regions at ``base`` and ``base+size``; return the index range of those inside."""
        size = Memblock.memblock_cap_size(base, size)
        if not size:
            return 0, 0
        end = base + size
        idx = type._first_overlap(base)
        hit = []
        for r in type.regions.islice(idx):
            if r.base >= end:
                break
            hit.append(r)
        for r in hit:
            if r.base < base or r.end > end:
                type.regions.remove(r)
                type.total_size -= r.size
                cuts = sorted({r.base, r.end, *(c for c in (base, end) if r.base < c < r.end)})
                for lo, hi in pairwise(cuts):
                    type._insert(replace(r, base=lo, size=hi - lo))
        lo_i = type._first_overlap(base)
        hi_i = lo_i
        while hi_i < type.cnt and type.regions[hi_i].base < end:
            hi_i += 1
        return lo_i, hi_i

    def memblock_remove_range(self, type: memblock_type, base: int, size: int) -> int:
        start_rgn, end_rgn = self.memblock_isolate_range(type, base, size)
        for i in range(end_rgn - 1, start_rgn - 1, -1):
            type._remove_at(i)
        return 0

    # -- the API ------------------------------------------------------------------------

    def memblock_add_node(
        self, base: int, size: int, nid: int, flags: int = MEMBLOCK_NONE, *, caller: str | None = None
    ) -> int:
        """``memblock_add_node()``: add RAM on node ``nid``."""
        self._dbg(
            f"memblock_add_node: [{_pa(base)}-{_pa(base + size - 1)}] nid={nid} flags={flags:x}", caller
        )
        return self.memblock_add_range(self.memory, base, size, nid, flags)

    def memblock_add(self, base: int, size: int, *, caller: str | None = None) -> int:
        """``memblock_add()``: add RAM without a node (``memblock_set_node`` assigns it later)."""
        self._dbg(f"memblock_add: [{_pa(base)}-{_pa(base + size - 1)}]", caller)
        return self.memblock_add_range(self.memory, base, size, NUMA_NO_NODE, MEMBLOCK_NONE)

    def memblock_remove(self, base: int, size: int, *, caller: str | None = None) -> int:
        """``memblock_remove()``: RAM that is not there after all."""
        self._dbg(f"memblock_remove: [{_pa(base)}-{_pa(base + size - 1)}]", caller)
        return self.memblock_remove_range(self.memory, base, size)

    def memblock_reserve(self, base: int, size: int, *, caller: str | None = None) -> int:
        """``memblock_reserve()``: keep ``[base, base+size)`` from the buddy allocator."""
        self._dbg(f"memblock_reserve: [{_pa(base)}-{_pa(base + size - 1)}]", caller)
        return self.memblock_add_range(self.reserved, base, size, NUMA_NO_NODE, MEMBLOCK_NONE)

    def memblock_phys_free(self, base: int, size: int, *, caller: str | None = None) -> int:
        """``memblock_phys_free()`` before the handoff: drop the range from ``reserved``."""
        self._dbg(f"memblock_phys_free: [{_pa(base)}-{_pa(base + size - 1)}]", caller)
        return self.memblock_remove_range(self.reserved, base, size)

    def memblock_set_node(self, base: int, size: int, type: memblock_type, nid: int) -> int:
        """``memblock_set_node()``: assign ``nid`` to the regions of ``type`` inside the range."""
        start_rgn, end_rgn = self.memblock_isolate_range(type, base, size)
        for i in range(start_rgn, end_rgn):
            r = type._remove_at(i)
            type._insert(replace(r, nid=nid))
        self.memblock_merge_regions(type, start_rgn, end_rgn)
        return 0

    def memblock_trim_memory(self, align: int) -> None:
        """``memblock_trim_memory()``: round every memory region inward to ``align``.

        As in the kernel, a region trimmed in place keeps ``memory.total_size`` unchanged (only
        regions removed outright are subtracted), so the dump's ``memory size`` can exceed the
        sum of the regions by the trimmed bytes.
        """
        for r in list(self.memory.regions):
            start = -(-r.base // align) * align
            end = r.end // align * align
            if start == r.base and end == r.end:
                continue
            self.memory.regions.remove(r)
            if start < end:
                self.memory.regions.add(replace(r, base=start, size=end - start))
            else:
                self.memory.total_size -= r.size

    def memblock_set_bottom_up(self, enable: bool) -> None:
        self.bottom_up = enable

    def memblock_set_current_limit(self, limit: int) -> None:
        self.current_limit = limit

    # -- iterators ------------------------------------------------------------------------

    def _should_skip_region(self, type: memblock_type, m: memblock_region, nid: int, flags: int) -> bool:
        if type is not self.memory:
            return False
        if numa_valid_node(nid) and nid != m.nid:
            return True
        if (flags & MEMBLOCK_MIRROR) and not (m.flags & MEMBLOCK_MIRROR):
            return True
        if not (flags & MEMBLOCK_NOMAP) and (m.flags & MEMBLOCK_NOMAP):
            return True
        return bool(not (flags & MEMBLOCK_DRIVER_MANAGED) and (m.flags & MEMBLOCK_DRIVER_MANAGED))

    def __next_mem_range(
        self, type_a: memblock_type, type_b: memblock_type, nid: int, flags: int
    ) -> Iterator[tuple[int, int, int]]:
        """``__next_mem_range()``: regions of ``type_a`` minus ``type_b``, ascending."""
        a = list(type_a.regions)
        b = list(type_b.regions)
        idx_b = 0
        for m in a:
            if self._should_skip_region(type_a, m, nid, flags):
                continue
            m_start, m_end = m.base, m.end
            while idx_b < len(b) + 1:
                r_start = b[idx_b - 1].end if idx_b else 0
                r_end = b[idx_b].base if idx_b < len(b) else PHYS_ADDR_MAX
                if r_start >= m_end:
                    break
                if m_start < r_end:
                    yield max(m_start, r_start), min(m_end, r_end), m.nid
                    if m_end <= r_end:
                        break  # the kernel advances idx_a
                idx_b += 1

    def __next_mem_range_rev(
        self, type_a: memblock_type, type_b: memblock_type, nid: int, flags: int
    ) -> Iterator[tuple[int, int, int]]:
        """``__next_mem_range_rev()``: the same ranges, descending."""
        a = list(type_a.regions)
        b = list(type_b.regions)
        idx_b = len(b)
        for m in reversed(a):
            if self._should_skip_region(type_a, m, nid, flags):
                continue
            m_start, m_end = m.base, m.end
            while idx_b >= 0:
                r_start = b[idx_b - 1].end if idx_b else 0
                r_end = b[idx_b].base if idx_b < len(b) else PHYS_ADDR_MAX
                if r_end <= m_start:
                    break
                if m_end > r_start:
                    yield max(m_start, r_start), min(m_end, r_end), m.nid
                    if m_start >= r_start:
                        break  # the kernel advances idx_a
                idx_b -= 1

    def for_each_free_mem_range(
        self, nid: int = NUMA_NO_NODE, flags: int = MEMBLOCK_NONE
    ) -> Iterator[tuple[int, int, int]]:
        """``for_each_free_mem_range``: ``(start, end, nid)`` byte ranges of memory minus reserved.

        Ascending; one or more ranges per memory region (ranges of adjacent memory regions are
        not joined, so chunking restarts at every region boundary, as in the kernel). A
        zero-length range is yielded where two reserved regions touch inside memory, as the
        kernel does.
        """
        return self.__next_mem_range(self.memory, self.reserved, nid, flags)

    def for_each_free_mem_range_reverse(
        self, nid: int = NUMA_NO_NODE, flags: int = MEMBLOCK_NONE
    ) -> Iterator[tuple[int, int, int]]:
        return self.__next_mem_range_rev(self.memory, self.reserved, nid, flags)

    def for_each_mem_pfn_range(self, nid: int = MAX_NUMNODES) -> Iterator[tuple[int, int, int]]:
        """``for_each_mem_pfn_range``: ``(start_pfn, end_pfn, nid)`` of each memory region.

        Regions without a whole page are skipped; ``nid`` filters unless it is not a valid node.
        """
        for r in list(self.memory.regions):
            if PFN_UP(r.base) >= PFN_DOWN(r.end):
                continue
            if not numa_valid_node(nid) or nid == r.nid:
                yield PFN_UP(r.base), PFN_DOWN(r.end), r.nid

    def for_each_reserved_mem_range(self) -> Iterator[tuple[int, int]]:
        for r in list(self.reserved.regions):
            yield r.base, r.end

    # -- allocation -----------------------------------------------------------------------

    def __memblock_find_range_top_down(
        self, start: int, end: int, size: int, align: int, nid: int, flags: int
    ) -> int:
        for this_start, this_end, _ in self.for_each_free_mem_range_reverse(nid, flags):
            this_start = min(max(this_start, start), end)
            this_end = min(max(this_end, start), end)
            if this_end < size:
                continue
            cand = (this_end - size) // align * align
            if cand >= this_start:
                return cand
        return 0

    def __memblock_find_range_bottom_up(
        self, start: int, end: int, size: int, align: int, nid: int, flags: int
    ) -> int:
        for this_start, this_end, _ in self.for_each_free_mem_range(nid, flags):
            this_start = min(max(this_start, start), end)
            this_end = min(max(this_end, start), end)
            cand = -(-this_start // align) * align
            if cand < this_end and this_end - cand >= size:
                return cand
        return 0

    def memblock_find_in_range_node(
        self, size: int, align: int, start: int, end: int, nid: int, flags: int = MEMBLOCK_NONE
    ) -> int:
        """Find (not reserve) ``size`` bytes aligned to ``align`` in ``[start, end)``; 0 if none."""
        if end in (MEMBLOCK_ALLOC_ACCESSIBLE, MEMBLOCK_ALLOC_NOLEAKTRACE):
            end = self.current_limit
        start = max(start, PAGE_SIZE)  # avoid allocating the first page
        end = max(start, end)
        if self.bottom_up:
            return self.__memblock_find_range_bottom_up(start, end, size, align, nid, flags)
        return self.__memblock_find_range_top_down(start, end, size, align, nid, flags)

    def memblock_alloc_range_nid(
        self, size: int, align: int, start: int, end: int, nid: int, exact_nid: bool = False
    ) -> int:
        """``memblock_alloc_range_nid()``: find on ``nid`` (then anywhere unless exact) and reserve."""
        if nid == MAX_NUMNODES:
            nid = NUMA_NO_NODE
        if not align:
            align = SMP_CACHE_BYTES
        found = self.memblock_find_in_range_node(size, align, start, end, nid)
        if found and not self.memblock_reserve(found, size, caller="memblock_alloc_range_nid"):
            return found
        if numa_valid_node(nid) and not exact_nid:
            found = self.memblock_find_in_range_node(size, align, start, end, NUMA_NO_NODE)
            if found and not self.memblock_reserve(found, size, caller="memblock_alloc_range_nid"):
                return found
        return 0

    def memblock_phys_alloc_range(
        self, size: int, align: int, start: int, end: int, *, caller: str | None = None
    ) -> int:
        """``memblock_phys_alloc_range()``: allocate and reserve; returns the address or 0."""
        self._dbg(
            f"memblock_phys_alloc_range: {size} bytes align={_hx(align)} from={_pa(start)} max_addr={_pa(end)}",
            caller,
        )
        return self.memblock_alloc_range_nid(size, align, start, end, NUMA_NO_NODE, False)

    def memblock_phys_alloc_try_nid(
        self, size: int, align: int, nid: int, *, caller: str | None = None
    ) -> int:
        """``memblock_phys_alloc_try_nid()``: anywhere accessible, preferring node ``nid``."""
        self._dbg(
            f"memblock_phys_alloc_try_nid: {size} bytes align={_hx(align)} nid={nid} "
            f"from={_pa(0)} max_addr={_pa(MEMBLOCK_ALLOC_ACCESSIBLE)}",
            caller,
        )
        return self.memblock_alloc_range_nid(size, align, 0, MEMBLOCK_ALLOC_ACCESSIBLE, nid, False)

    # -- queries ------------------------------------------------------------------------

    def memblock_start_of_DRAM(self) -> int:
        return self.memory.regions[0].base if self.memory.cnt else 0

    def memblock_end_of_DRAM(self) -> int:
        return self.memory.regions[-1].end if self.memory.cnt else 0

    def memblock_phys_mem_size(self) -> int:
        return self.memory.total_size

    def memblock_reserved_size(self) -> int:
        return self.reserved.total_size

    def memblock_is_memory(self, addr: int) -> bool:
        i = self.memory._first_overlap(addr)
        return i < self.memory.cnt and self.memory.regions[i].base <= addr

    def memblock_is_region_reserved(self, base: int, size: int) -> bool:
        """``memblock_is_region_reserved()``: does ``[base, base+size)`` overlap ``reserved``?"""
        size = self.memblock_cap_size(base, size)
        i = self.reserved._first_overlap(base)
        return i < self.reserved.cnt and self.reserved.regions[i].base < base + size

    # -- memblock=debug dump ------------------------------------------------------------

    @staticmethod
    def _memblock_dump(type: memblock_type) -> list[str]:
        lines = [f" {type.name}.cnt  = {_hx(max(type.cnt, 1))}"]
        regions = list(type.regions) or [memblock_region(0, 0, 0, MAX_NUMNODES)]  # the dummy entry
        for idx, r in enumerate(regions):
            node = f" on node {r.nid}" if numa_valid_node(r.nid) else ""
            lines.append(
                f" {type.name}[{_hx(idx)}]\t[{_pa(r.base)}-{_pa(r.base + r.size - 1 if r.size else 0)}], "
                f"{_pa(r.size)} bytes{node} flags: {_hx(r.flags)}"
            )
        return lines

    def __memblock_dump_all(self) -> list[str]:
        """The ``MEMBLOCK configuration:`` dump, as lines (without timestamps)."""
        return [
            "MEMBLOCK configuration:",
            f" memory size = {_pa(self.memory.total_size)} reserved size = {_pa(self.reserved.total_size)}",
            *self._memblock_dump(self.memory),
            *self._memblock_dump(self.reserved),
        ]

    def memblock_dump_lines(self) -> list[str]:
        """The ``MEMBLOCK configuration:`` dump, whether or not debug is on."""
        return self.__memblock_dump_all()

    def memblock_dump_all(self) -> None:
        """``memblock_dump_all()``: emit the dump through ``debug`` (only with memblock=debug)."""
        if self.debug is not None:
            for line in self.__memblock_dump_all():
                self.debug(line)


def memblock_from_config(
    config: Config, *, reserve: bool = True, debug: Callable[[str], None] | None = None
) -> Memblock:
    """Build ``memblock`` as x86-64 setup_arch leaves it at the handoff, from a machine config.

    ``[[e820]]``: ``e820__memblock_setup`` (``memblock_add`` per usable entry after
    ``trim_bios_range``, then ``memblock_trim_memory(PAGE_SIZE)``), then NUMA init
    (``memblock_set_node`` per ``[[numa]]`` span, or node 0 for everything, as
    ``dummy_numa_init`` does). ``[[memory]]``: ``memblock_add_node`` per range. Then, with
    ``reserve``, ``memblock_reserve`` per ``[[reserved]]`` entry in file order (the caller shown in
    debug lines is the entry's name), and a final ``memblock_dump_all``.
    """
    mb = Memblock(debug=debug)
    if config.e820:
        for start, end, kind in config.e820_table:
            if kind == "usable":
                mb.memblock_add(start, end - start, caller="e820__memblock_setup")
        mb.memblock_trim_memory(PAGE_SIZE)
        if config.numa:
            for node in config.numa:
                mb.memblock_set_node(node.start, node.limit - node.start, mb.memory, node.nid)
        else:
            mb.memblock_set_node(0, PHYS_ADDR_MAX, mb.memory, 0)
    else:
        for r in config.memory:
            mb.memblock_add_node(
                r.start, r.limit - r.start, r.nid, MEMBLOCK_NONE, caller="memblock_from_config"
            )
    if reserve:
        for rsv in config.reserved:
            mb.memblock_reserve(rsv.start, rsv.limit - rsv.start, caller=rsv.name)
        mb.memblock_dump_all()
    return mb
