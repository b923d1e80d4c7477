"""Boot-log importer: a kernel boot log (dmesg) to a machine config and the boot figures.

Reads the memory section of an x86-64 boot log, the lines printed by arch/x86/kernel/e820.c
(``BIOS-e820:``, ``e820: update``/``remove``), mm/mm_init.c (``Zone ranges:``, ``Movable zone
start for each node``, ``Early memory node ranges``, ``Initmem setup node``, ``On node N, zone
Z: K pages in unavailable ranges``, and the pre-5.11 ``On node N totalpages`` / ``Z zone: N
pages, LIFO batch`` lines), mm/page_alloc.c (``Built N zonelists … Total pages: N``),
mm/mm_init.c ``mem_init_print_info`` (``Memory: …K/…K available (… reserved …)``), the NUMA
and per-cpu set-up lines, and with ``memblock=debug`` mm/memblock.c's operation lines
(``memblock_add``/``reserve``/``remove``/``phys_free``/``phys_alloc_range``) and ``MEMBLOCK
configuration:`` dump, which are replayed on :class:`~buddysim.mm.memblock.Memblock`.

Accepts logs with or without ``[timestamps]``, ``<N>`` log levels, ``dmesg -x`` / ``-T``
prefixes, printk caller ids, and syslog or journalctl prefixes; one or several nodes; with or
without memblock debug; kernels with deferred struct page init (whose "available" figure is
much smaller than present minus reserved).

:func:`import_dmesg` returns the machine config (TOML text that :func:`buddysim.config.load_config`
accepts, and the validated :class:`~buddysim.config.Config`); :func:`parse_boot_figures` the
figures ``buddysim boot --compare`` sets beside the simulation. Lines the importer recognises
but cannot parse are reported as ``file:line: what was expected``; only a log with nothing
usable raises :class:`~buddysim.errors.BadInput`.

Simplified: the memory map is what the log shows, so reservations are known only with
memblock=debug (otherwise only the initrd, NODE_DATA and crashkernel lines locate any); e820
updates are applied in log order whatever phase printed them; ``mem=``/``memmap=`` are taken
from the ``user:`` map when the kernel printed one; 32-bit (HighMem) logs are read but their
zones do not fit the x86-64 zone model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buddysim.config import (
    DEFAULT_DMA32_LIMIT,
    DEFAULT_DMA_LIMIT,
    E820_TYPES,
    PAGE_SHIFT,
    PAGE_SIZE,
    Config,
    config_from_dict,
    e820__range_remove,
    e820__range_update,
    e820__update_table,
    format_size,
    trim_bios_range,
)
from buddysim.errors import BadInput
from buddysim.mm.memblock import NUMA_NO_NODE, Memblock, memblock_region, numa_valid_node
from buddysim.mm.zone_geometry import (
    MAX_NR_ZONES,
    ZONE_MOVABLE,
    arch_zone_limits_init,
    calculate_node_totalpages,
    find_usable_zone_for_movable,
    free_area_init,
    zone_names,
)

__all__ = [
    "BootFigures",
    "BootLog",
    "DmesgImport",
    "ParseProblem",
    "ZoneFigures",
    "boot_figures",
    "boot_log_to_config",
    "import_dmesg",
    "parse_boot_figures",
    "parse_boot_log",
    "render_config_toml",
    "strip_prefix",
]

# --------------------------------------------------------------------------------------------
# line prefixes

_FACILITY = r"(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])"
_LEVEL = r"(?:emerg|alert|crit|err|warn|notice|info|debug)"
_PREFIXES = (
    # syslog "Mar  3 10:00:00 host kernel: " and journalctl short-iso "2024-03-03T10:00:00+0100 host kernel: "
    re.compile(
        r"^(?:[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d(?:\.\d+)?"
        r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
        r"\s+\S+\s+kernel(?:\[\d+\])?:\s?"
    ),
    re.compile(rf"^{_FACILITY}\s*:\s*{_LEVEL}\s*:\s"),  # dmesg -x
    re.compile(r"^<\d{1,3}>"),  # log level (dmesg -r, /dev/kmsg, console)
    re.compile(r"^\[\s*\d+\.\d+\]\s?"),  # [    0.000000]
    re.compile(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?"),  # dmesg -T
    re.compile(r"^\[\s*[TC]\d+\]\s?"),  # CONFIG_PRINTK_CALLER
    re.compile(r"^\s*\[\s*\d+:\s*[^\]\s][^\]]*:\d+\]\s?"),  # Android "[3:  Binder:9343_3:22875]"
    re.compile(r"^[\w.\-]+ kernel(?:\[\d+\])?: "),  # journalctl -o short-monotonic: "[ts] host kernel: "
)


def strip_prefix(line: str) -> str:
    """The kernel message of a log line: timestamps, levels and syslog headers removed.

    >>> strip_prefix("<6>[    0.000000] BIOS-e820: [mem 0x0-0x9fbff] usable")
    'BIOS-e820: [mem 0x0-0x9fbff] usable'
    >>> strip_prefix("Mar  3 10:00:00 host kernel: [    0.061487] Zone ranges:")
    'Zone ranges:'
    """
    line = line.rstrip("\r\n")
    changed = True
    while changed:
        changed = False
        for rx in _PREFIXES:
            m = rx.match(line)
            if m and m.end():
                line = line[m.end() :]
                changed = True
    return line


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A line the importer recognised but could not use: ``file:line: message``."""

    path: str
    line: int
    message: str

    def render(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class BootLog:
    """Everything read from a boot log (raw, before it becomes a config or figures)."""

    path: str
    kernel_version: str | None = None
    cmdline: str | None = None
    e820_bios: list[tuple[int, int, str]] = field(default_factory=list)
    e820_user: list[tuple[int, int, str]] = field(default_factory=list)
    e820_ops: list[tuple[str, int, int, str | None, str | None]] = field(default_factory=list)
    e820_ops_early: int | None = None  # ops before the last "last_pfn =" line (before e820__memblock_setup)
    last_pfn: list[int] = field(default_factory=list)
    zone_ranges: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    zone_ranges_damaged: bool = False  # an unparsable line inside the block
    movable_zone_start: dict[int, int] = field(default_factory=dict)  # nid -> pfn
    node_ranges: list[tuple[int, int, int]] = field(default_factory=list)  # (start_pfn, end_pfn, nid)
    initmem_nodes: dict[int, tuple[int, int]] = field(default_factory=dict)  # nid -> (start_pfn, end_pfn)
    node_data: dict[int, tuple[int, int]] = field(default_factory=dict)  # nid -> byte range
    srat: list[tuple[int, int, int]] = field(default_factory=list)  # (nid, start, end) bytes
    fake_node: tuple[int, int] | None = None
    unavailable: list[tuple[int, str, int]] = field(default_factory=list)  # (nid, zone, pages)
    zeroed_unavailable: int | None = None
    node_totalpages: dict[int, int] = field(default_factory=dict)
    zone_lines: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)
    nr_zonelists: int | None = None
    mobility_grouping: bool | None = None
    total_pages: int | None = None
    memory_available_kib: int | None = None
    memory_total_kib: int | None = None
    memory_breakdown_kib: dict[str, int] = field(default_factory=dict)
    deferred_init_ms: dict[int, int] = field(default_factory=dict)
    nr_cpu_ids: int | None = None
    nr_possible_cpus: int | None = None
    nr_cpus_brought_up: int | None = None
    ramdisk: tuple[int, int] | None = None
    crashkernel: tuple[int, int] | None = None
    memblock_debug: bool = False
    memblock_ops: int = 0
    memblock_dumps: int = 0
    memblock: Memblock | None = None
    reserve_callers: dict[int, str] = field(default_factory=dict)
    problems: list[ParseProblem] = field(default_factory=list)

    def problem(self, lineno: int, message: str) -> None:
        self.problems.append(ParseProblem(self.path, lineno, message))

    @property
    def e820(self) -> list[tuple[int, int, str]]:
        """The e820 map ``e820__memblock_setup`` saw: the ``user:`` map if printed, else BIOS + updates.

        Updates printed after the last ``last_pfn =`` line (max_pfn and max_low_pfn are computed
        just before ``e820__memblock_setup``) came later, from ``efi_mem_reserve`` and the like:
        they leave memblock.memory alone and reserve the range instead (:attr:`e820_late_reserved`).
        """
        if self.e820_user:
            return e820__update_table(self.e820_user)
        table = e820__update_table(self.e820_bios)
        cut = len(self.e820_ops) if self.e820_ops_early is None else self.e820_ops_early
        for op, start, end, old, new in self.e820_ops[:cut]:
            if op == "update" and old is not None and new is not None:
                table = e820__range_update(table, start, end - start, old, new)
            elif op == "remove":
                table = e820__range_remove(table, start, end - start, old)
        return table

    @property
    def e820_late_reserved(self) -> list[tuple[int, int]]:
        """Ranges turned from usable to another type after memblock was set up (reserved there)."""
        if self.e820_ops_early is None:
            return []
        return [
            (start, end)
            for op, start, end, old, new in self.e820_ops[self.e820_ops_early :]
            if op == "update" and old == "usable" and new != "usable"
        ]

    @property
    def kernelcore(self) -> str | None:
        return _cmdline_param(self.cmdline, "kernelcore")

    @property
    def movablecore(self) -> str | None:
        return _cmdline_param(self.cmdline, "movablecore")

    @property
    def has_memory_map(self) -> bool:
        return bool(
            self.node_ranges
            or (self.memblock is not None and self.memblock.memory.cnt)
            or any(t == "usable" for _, _, t in self.e820)
        )


def _cmdline_param(cmdline: str | None, key: str) -> str | None:
    if not cmdline:
        return None
    value = None
    for tok in cmdline.split():
        if tok.startswith(key + "="):
            value = tok[len(key) + 1 :]
    return value


# --------------------------------------------------------------------------------------------
# the parser

_HEX = r"(0x[0-9a-fA-F]+)"
_MEM = rf"\[mem {_HEX}-{_HEX}\]"
_RX = {
    "version": re.compile(r"^Linux version (\S+)"),
    "cmdline": re.compile(r"^(?:Kernel )?[Cc]ommand line: (.*)$"),
    "e820": re.compile(rf"^(BIOS-e820|user): {_MEM} (.+?)\s*$"),
    "e820_old": re.compile(r"^(BIOS-e820|user): ([0-9a-fA-F]{8,16}) - ([0-9a-fA-F]{8,16}) \((.+)\)\s*$"),
    "e820_update": re.compile(rf"^e820: update {_MEM} (.+?) ==> (.+?)\s*$"),
    "e820_remove": re.compile(rf"^e820: remove {_MEM}(?: (.+?))?\s*$"),
    "e820_update_old": re.compile(
        r"^e820 update range: ([0-9a-fA-F]+) - ([0-9a-fA-F]+) \((.+?)\) ==> \((.+?)\)\s*$"
    ),
    "e820_remove_old": re.compile(r"^e820 remove range: ([0-9a-fA-F]+) - ([0-9a-fA-F]+) \((.+?)\)\s*$"),
    "last_pfn": re.compile(r"^(?:e820: )?last_pfn = (0x[0-9a-fA-F]+) max_arch_pfn"),
    "zone": re.compile(rf"^\s*(\w+)\s+(?:{_MEM}|(empty)|{_HEX} -> {_HEX})\s*$"),
    "movable_node": re.compile(r"^\s*Node (\d+): (0x[0-9a-fA-F]+|\d+)\s*$"),
    "node_range": re.compile(rf"^\s*node\s+(\d+): {_MEM}\s*$"),
    "node_range_old": re.compile(r"^\s*(\d+): (0x[0-9a-fA-F]+) -> (0x[0-9a-fA-F]+)\s*$"),
    "initmem": re.compile(rf"^Initmem setup node (\d+) (?:{_MEM}|(as memoryless))\s*$"),
    "node_data": re.compile(rf"^NODE_DATA\((\d+)\) allocated {_MEM}"),
    "node_data_old": re.compile(rf"^\s*NODE_DATA {_MEM}"),
    "srat": re.compile(rf"SRAT: Node (\d+) PXM \d+ {_MEM}"),
    "fake_node": re.compile(rf"^Faking a node at {_MEM}"),
    "unavailable": re.compile(r"^On node (\d+), zone (\w+): (\d+) pages in unavailable ranges\s*$"),
    "zeroed": re.compile(r"^Zeroed struct page in unavailable ranges: (\d+)(?: pages)?\s*$"),
    "totalpages": re.compile(r"^On node (\d+) totalpages: (\d+)\s*$"),
    "zone_memmap": re.compile(r"^\s*(\w+) zone: (\d+) pages used for memmap\s*$"),
    "zone_reserved": re.compile(r"^\s*(\w+) zone: (\d+) pages reserved\s*$"),
    "zone_pages": re.compile(r"^\s*(\w+) zone: (\d+) pages, LIFO batch:(\d+)\s*$"),
    "zonelists": re.compile(
        r"^Built (\d+) zonelists?(?: in \w+ order)?, mobility grouping (on|off)\.\s+Total pages: (\d+)\s*$"
    ),
    "memory": re.compile(r"^Memory: (\d+)[kK]/(\d+)[kK] available \((.*)\)\s*$"),
    "deferred": re.compile(r"^node (\d+) deferred pages initialised in (\d+)ms"),
    "percpu": re.compile(r"^setup_percpu: NR_CPUS:\d+ nr_cpumask_bits:\d+ nr_cpu_ids:(\d+) nr_node_ids:\d+"),
    "allowing": re.compile(r"^(?:smpboot|SMP): Allowing (\d+) CPUs, (\d+) hotplug CPUs"),
    "brought_up": re.compile(r"^smp: Brought up (\d+) nodes?, (\d+) CPUs?"),
    "ramdisk": re.compile(rf"^RAMDISK: {_MEM}"),
    "ramdisk_old": re.compile(r"^RAMDISK: ([0-9a-fA-F]{8,16}) - ([0-9a-fA-F]{8,16})\s*$"),
    "crash_new": re.compile(r"^crashkernel reserved: (0x[0-9a-fA-F]+) - (0x[0-9a-fA-F]+)"),
    "crash_old": re.compile(r"^Reserving (\d+)MB of memory at (\d+)MB for crashkernel"),
    "mb_range": re.compile(
        rf"^(__memblock_reserve|memblock_reserve|memblock_add_node|memblock_add|memblock_remove"
        rf"|memblock_phys_free|memblock_free): \[{_HEX}-{_HEX}\]"
        r"(?: nid=(-?\d+))?(?: flags=(?:0x)?([0-9a-fA-F]+))?(?:\s+(\S+))?\s*$"
    ),
    "mb_alloc": re.compile(
        r"^(memblock_phys_alloc_range|memblock_phys_alloc_try_nid|memblock_alloc\w*): (\d+) bytes"
    ),
    "mb_dump_sizes": re.compile(rf"^\s*memory size = {_HEX} reserved size = {_HEX}\s*$"),
    "mb_dump_cnt": re.compile(r"^\s*(memory|reserved|physmem)\.cnt\s*=\s*(0x[0-9a-fA-F]+|\d+)\s*$"),
    "mb_dump_region": re.compile(
        rf"^\s*(memory|reserved|physmem)\[(?:0x[0-9a-fA-F]+|\d+)\]\s+\[{_HEX}-{_HEX}\],\s*{_HEX} bytes"
        r"(?: on node (\d+))?(?: flags: (0x[0-9a-fA-F]+|\d+))?\s*$"
    ),
}
_MB_OPS = {
    "__memblock_reserve",
    "memblock_reserve",
    "memblock_add_node",
    "memblock_add",
    "memblock_remove",
    "memblock_phys_free",
    "memblock_free",
}
_ZONE_NAMES = {"DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"}
_EXPECT = {
    "e820": "expected 'BIOS-e820: [mem 0xSTART-0xEND] TYPE'",
    "e820_update": "expected 'e820: update [mem 0xSTART-0xEND] OLDTYPE ==> NEWTYPE'",
    "e820_remove": "expected 'e820: remove [mem 0xSTART-0xEND] [TYPE]'",
    "zone": "expected '  ZONE [mem 0xSTART-0xEND]' or '  ZONE empty' under 'Zone ranges:'",
    "node_range": "expected '  node N: [mem 0xSTART-0xEND]' under 'Early memory node ranges'",
    "movable_node": "expected '  Node N: 0xADDRESS' under 'Movable zone start for each node'",
    "initmem": "expected 'Initmem setup node N [mem 0xSTART-0xEND]'",
    "unavailable": "expected 'On node N, zone ZONE: K pages in unavailable ranges'",
    "totalpages": "expected 'On node N totalpages: K'",
    "zonelists": "expected 'Built N zonelists, mobility grouping on|off.  Total pages: N'",
    "memory": "expected 'Memory: NK/NK available (… NK reserved …)'",
    "mb_range": "expected 'memblock_OP: [0xSTART-0xEND] caller' (memblock=debug)",
    "mb_dump": "expected ' memory[0xI]\\t[0xSTART-0xEND], 0xSIZE bytes [on node N] flags: 0xF' in the MEMBLOCK dump",
    "ramdisk": "expected 'RAMDISK: [mem 0xSTART-0xEND]'",
    "node_data": "expected 'NODE_DATA(N) allocated [mem 0xSTART-0xEND]'",
}


def _e820_type(text: str, log: BootLog, lineno: int) -> str:
    t = text.strip()
    if t in E820_TYPES or re.fullmatch(r"type \d+", t):
        return t
    m = re.fullmatch(r"persistent \(type (\d+)\)", t)
    if m:
        return f"type {m.group(1)}"
    log.problem(lineno, f"unknown e820 type {t!r}; treated as reserved")
    return "reserved"


class _Parser:
    def __init__(self, log: BootLog) -> None:
        self.log = log
        self.section: str | None = None  # zone_ranges | movable | node_ranges | mb_dump
        self.node_ctx: int = 0  # node of the pre-5.11 per-zone lines
        self.dump: dict[str, list[memblock_region]] | None = None
        self.mb = Memblock()

    # -- sections -------------------------------------------------------------------------

    def _section_line(self, n: int, msg: str) -> bool:
        """Handle a line of the current multi-line block; False ends the block."""
        log = self.log
        if self.section == "zone_ranges":
            m = _RX["zone"].match(msg)
            if m and m.group(1) in _ZONE_NAMES:
                name = m.group(1)
                if m.group(4):
                    log.zone_ranges[name] = None
                elif m.group(2):
                    log.zone_ranges[name] = (
                        int(m.group(2), 16) >> PAGE_SHIFT,
                        (int(m.group(3), 16) + 1) >> PAGE_SHIFT,
                    )
                else:
                    log.zone_ranges[name] = (int(m.group(5), 16), int(m.group(6), 16))
                return True
            if re.match(r"^\s*(?:DMA|DMA32|Normal|HighMem|Device)\s+(?:\[|0x|empty)", msg):
                log.problem(n, _EXPECT["zone"])
                log.zone_ranges_damaged = True
                return True
            return False
        if self.section == "movable":
            m = _RX["movable_node"].match(msg)
            if m:
                v = m.group(2)
                log.movable_zone_start[int(m.group(1))] = (
                    int(v, 16) >> PAGE_SHIFT if v.startswith("0x") else int(v)
                )
                return True
            if msg.strip().startswith("Node "):
                log.problem(n, _EXPECT["movable_node"])
                return True
            return False
        if self.section == "node_ranges":
            m = _RX["node_range"].match(msg)
            if m:
                log.node_ranges.append(
                    (
                        int(m.group(2), 16) >> PAGE_SHIFT,
                        (int(m.group(3), 16) + 1) >> PAGE_SHIFT,
                        int(m.group(1)),
                    )
                )
                return True
            m = _RX["node_range_old"].match(msg)
            if m:
                log.node_ranges.append((int(m.group(2), 16), int(m.group(3), 16), int(m.group(1))))
                return True
            if msg.strip().startswith("node "):
                log.problem(n, _EXPECT["node_range"])
                return True
            return False
        if self.section == "mb_dump":
            assert self.dump is not None
            m = _RX["mb_dump_region"].match(msg)
            if m:
                kind, start, last, size = (
                    m.group(1),
                    int(m.group(2), 16),
                    int(m.group(3), 16),
                    int(m.group(4), 16),
                )
                nid = int(m.group(5)) if m.group(5) is not None else NUMA_NO_NODE
                flags = int(m.group(6), 0) if m.group(6) else 0
                if size and kind in self.dump:
                    self.dump[kind].append(memblock_region(start, size, flags, nid))
                if size and last + 1 - start != size:
                    log.problem(
                        n, f"dump region size {size:#x} does not match [{start:#x}-{last:#x}]; size used"
                    )
                return True
            if _RX["mb_dump_sizes"].match(msg) or _RX["mb_dump_cnt"].match(msg):
                return True
            if re.match(r"^\s*(memory|reserved|physmem)[\[.]", msg) or "reserved size" in msg:
                log.problem(n, _EXPECT["mb_dump"])
                return True
            self._end_dump()
            return False
        return False

    def _end_dump(self) -> None:
        assert self.dump is not None
        # the dump is the authoritative state at that point: replace what the replay built
        for kind in ("memory", "reserved"):
            t = getattr(self.mb, kind)
            t.regions.clear()
            t.total_size = 0
            for r in self.dump[kind]:
                t._insert(r)
        self.log.memblock_dumps += 1
        self.dump = None
        self.section = None

    # -- one line -------------------------------------------------------------------------

    def line(self, n: int, raw: str) -> None:
        msg = strip_prefix(raw)
        if not msg.strip():
            return
        if self.section is not None and self._section_line(n, msg):
            return
        self.section = None
        log = self.log
        s = msg.strip()

        if s in ("Zone ranges:", "Zone PFN ranges:"):
            self.section = "zone_ranges"
            return
        if s.startswith("Movable zone start"):
            self.section = "movable"
            return
        if s.startswith("Early memory node ranges") or re.match(
            r"^early_node_map\[\d+\] active PFN ranges", s
        ):
            self.section = "node_ranges"
            return
        if s == "MEMBLOCK configuration:":
            log.memblock_debug = True
            self.dump = {"memory": [], "reserved": []}
            self.section = "mb_dump"
            return

        if "BIOS-e820:" in s or (s.startswith("user: ") and ("[mem" in s or " - " in s)):
            self._e820(n, s)
            return
        if s.startswith(("e820: update", "e820: remove", "e820 update range", "e820 remove range")):
            self._e820_op(n, s)
            return
        m = _RX["last_pfn"].match(s)
        if m:
            log.last_pfn.append(int(m.group(1), 16))
            log.e820_ops_early = len(log.e820_ops)
            return
        if s.startswith(("memblock_", "__memblock_")) and ":" in s:
            self._memblock(n, s)
            return
        if s.startswith("Initmem setup node"):
            m = _RX["initmem"].match(s)
            if not m:
                log.problem(n, _EXPECT["initmem"])
            elif m.group(2):
                nid = int(m.group(1))
                self.node_ctx = nid
                log.initmem_nodes[nid] = (
                    int(m.group(2), 16) >> PAGE_SHIFT,
                    (int(m.group(3), 16) + 1) >> PAGE_SHIFT,
                )
            else:
                self.node_ctx = int(m.group(1))
            return
        if "pages in unavailable ranges" in s:
            m = _RX["unavailable"].match(s)
            if m:
                log.unavailable.append((int(m.group(1)), m.group(2), int(m.group(3))))
            else:
                log.problem(n, _EXPECT["unavailable"])
            return
        if "totalpages:" in s and s.startswith("On node"):
            m = _RX["totalpages"].match(s)
            if m:
                self.node_ctx = int(m.group(1))
                log.node_totalpages[self.node_ctx] = int(m.group(2))
            else:
                log.problem(n, _EXPECT["totalpages"])
            return
        if " zone: " in s:
            for key, field_ in (
                ("zone_memmap", "memmap"),
                ("zone_reserved", "reserved"),
                ("zone_pages", "present"),
            ):
                m = _RX[key].match(s)
                if m and m.group(1) in _ZONE_NAMES:
                    d = log.zone_lines.setdefault((self.node_ctx, m.group(1)), {})
                    d[field_] = int(m.group(2))
                    if key == "zone_pages":
                        d["batch"] = int(m.group(3))
                    return
        if "zonelists" in s and "Total pages" in s:
            m = _RX["zonelists"].match(s)
            if m:
                log.nr_zonelists = int(m.group(1))
                log.mobility_grouping = m.group(2) == "on"
                log.total_pages = int(m.group(3))
            else:
                log.problem(n, _EXPECT["zonelists"])
            return
        if s.startswith("Memory:") and "available" in s:
            self._memory(n, s)
            return
        for key in (
            "version",
            "cmdline",
            "zeroed",
            "deferred",
            "percpu",
            "allowing",
            "brought_up",
            "node_data",
            "node_data_old",
            "fake_node",
            "crash_new",
            "crash_old",
        ):
            m = _RX[key].match(s)
            if m:
                self._simple(key, m)
                return
        m = _RX["srat"].search(s)
        if m:
            log.srat.append((int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16) + 1))
            return
        if s.startswith("RAMDISK:"):
            m = _RX["ramdisk"].match(s)
            m_old = _RX["ramdisk_old"].match(s)
            if m or m_old:
                # early_reserve_initrd reserves up to PAGE_ALIGN(end); the old format prints end exclusive
                start, end = (
                    (int(m.group(1), 16), int(m.group(2), 16) + 1)
                    if m
                    else (int(m_old.group(1), 16), int(m_old.group(2), 16))
                )  # type: ignore[union-attr]
                log.ramdisk = (start, -(-end // PAGE_SIZE) * PAGE_SIZE)
            else:
                log.problem(n, _EXPECT["ramdisk"])
            return
        if s.startswith("NODE_DATA("):
            if "on node" not in s and "allocated" in s:
                log.problem(n, _EXPECT["node_data"])
            return

    def _simple(self, key: str, m: re.Match[str]) -> None:
        log = self.log
        if key == "version":
            log.kernel_version = log.kernel_version or m.group(1)
        elif key == "cmdline":
            log.cmdline = log.cmdline or m.group(1).strip()
        elif key == "zeroed":
            log.zeroed_unavailable = int(m.group(1))
        elif key == "deferred":
            log.deferred_init_ms[int(m.group(1))] = int(m.group(2))
        elif key == "percpu":
            log.nr_cpu_ids = int(m.group(1))
        elif key == "allowing":
            log.nr_possible_cpus = int(m.group(1))
        elif key == "brought_up":
            log.nr_cpus_brought_up = int(m.group(2))
        elif key == "node_data":
            log.node_data[int(m.group(1))] = (int(m.group(2), 16), int(m.group(3), 16) + 1)
        elif key == "node_data_old":
            log.node_data[self.node_ctx] = (int(m.group(1), 16), int(m.group(2), 16) + 1)
        elif key == "fake_node":
            log.fake_node = (int(m.group(1), 16), int(m.group(2), 16) + 1)
        elif key == "crash_new":
            log.crashkernel = (int(m.group(1), 16), int(m.group(2), 16))
        elif key == "crash_old":
            log.crashkernel = (int(m.group(2)) << 20, (int(m.group(2)) + int(m.group(1))) << 20)

    def _e820(self, n: int, s: str) -> None:
        log = self.log
        m = _RX["e820"].search(s)
        if m:
            start, end = int(m.group(2), 16), int(m.group(3), 16) + 1
        else:
            m = _RX["e820_old"].search(s)
            if not m:
                log.problem(n, _EXPECT["e820"])
                return
            start, end = int(m.group(2), 16), int(m.group(3), 16)
        kind = _e820_type(m.group(4), log, n)
        if end <= start:
            log.problem(n, f"empty e820 entry [{start:#x}-{end:#x}); {_EXPECT['e820']}")
            return
        (log.e820_user if m.group(1) == "user" else log.e820_bios).append((start, end, kind))

    def _e820_op(self, n: int, s: str) -> None:
        log = self.log
        m = _RX["e820_update"].match(s)
        if m:
            log.e820_ops.append(
                (
                    "update",
                    int(m.group(1), 16),
                    int(m.group(2), 16) + 1,
                    _e820_type(m.group(3), log, n),
                    _e820_type(m.group(4), log, n),
                )
            )
            return
        m = _RX["e820_update_old"].match(s)
        if m:
            log.e820_ops.append(
                (
                    "update",
                    int(m.group(1), 16),
                    int(m.group(2), 16),
                    _e820_type(m.group(3), log, n),
                    _e820_type(m.group(4), log, n),
                )
            )
            return
        m = _RX["e820_remove"].match(s)
        if m:
            old = _e820_type(m.group(3), log, n) if m.group(3) else None
            log.e820_ops.append(("remove", int(m.group(1), 16), int(m.group(2), 16) + 1, old, None))
            return
        m = _RX["e820_remove_old"].match(s)
        if m:
            log.e820_ops.append(
                ("remove", int(m.group(1), 16), int(m.group(2), 16), _e820_type(m.group(3), log, n), None)
            )
            return
        if s.startswith("e820: update") and "==>" not in s:
            log.problem(n, _EXPECT["e820_update"])
        elif s.startswith("e820: remove"):
            log.problem(n, _EXPECT["e820_remove"])
        elif s.startswith("e820: update"):
            log.problem(n, _EXPECT["e820_update"])

    def _memblock(self, n: int, s: str) -> None:
        log = self.log
        op = s.split(":", 1)[0]
        if _RX["mb_alloc"].match(s):
            log.memblock_debug = True
            log.memblock_ops += 1
            return
        if op not in _MB_OPS:
            return  # memblock_free_all, memblock_alloc messages of other kinds: not operations we replay
        m = _RX["mb_range"].match(s)
        if not m:
            log.problem(n, _EXPECT["mb_range"])
            return
        log.memblock_debug = True
        log.memblock_ops += 1
        start, last = int(m.group(2), 16), int(m.group(3), 16)
        size = last + 1 - start
        if size <= 0:
            return
        nid = int(m.group(4)) if m.group(4) is not None else NUMA_NO_NODE
        caller = m.group(6)
        mb = self.mb
        if op == "memblock_add":
            mb.memblock_add(start, size)
        elif op == "memblock_add_node":
            mb.memblock_add_node(start, size, nid, int(m.group(5), 16) if m.group(5) else 0)
        elif op == "memblock_remove":
            mb.memblock_remove(start, size)
        elif op in ("memblock_reserve", "__memblock_reserve"):
            mb.memblock_reserve(start, size)
            if caller:
                log.reserve_callers.setdefault(start, caller.split("+")[0])
        else:  # memblock_phys_free, and memblock_free (its name before 5.16, same meaning)
            mb.memblock_phys_free(start, size)

    def _memory(self, n: int, s: str) -> None:
        log = self.log
        m = _RX["memory"].match(s)
        if not m:
            log.problem(n, _EXPECT["memory"])
            return
        log.memory_available_kib = int(m.group(1))
        log.memory_total_kib = int(m.group(2))
        for value, name in re.findall(r"(\d+)[kK] ([A-Za-z][\w-]*(?: [a-z][\w-]*)?)", m.group(3)):
            log.memory_breakdown_kib[name] = int(value)

    def finish(self) -> None:
        if self.dump is not None:
            self._end_dump()
        if self.log.memblock_debug:
            self.log.memblock = self.mb


def _read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInput("no such file", where=str(p)) from None
    except IsADirectoryError:
        raise BadInput("is a directory, expected a boot log", where=str(p)) from None
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror}", where=str(p)) from None
    if data[:2] == b"\x1f\x8b":
        raise BadInput("gzip-compressed; decompress it first (zcat)", where=str(p))
    text = data.decode("utf-8", errors="replace")
    yield from enumerate(text.splitlines(), 1)


def parse_boot_log(path: str | Path, lines: Iterable[tuple[int, str]] | None = None) -> BootLog:
    """Read a boot log. Never raises for content (see ``BootLog.problems``), only for I/O."""
    log = BootLog(path=str(path))
    parser = _Parser(log)
    for n, raw in lines if lines is not None else _read_lines(path):
        parser.line(n, raw)
    parser.finish()
    return log


# --------------------------------------------------------------------------------------------
# figures


@dataclass(frozen=True, slots=True)
class ZoneFigures:
    """One zone of one node as the log shows it.

    ``present`` is printed by pre-5.11 kernels (``DMA zone: 3997 pages, LIFO batch:0``,
    ``present_source="printed"``); otherwise it is derived from the printed zone ranges and
    memory ranges by the same arithmetic as ``calculate_node_totalpages``
    (``present_source="ranges"``).
    """

    nid: int
    zone: str
    start_pfn: int | None
    spanned: int | None
    present: int | None
    present_source: str
    unavailable: int = 0
    memmap_pages: int | None = None
    reserved_pages: int | None = None


@dataclass(frozen=True)
class BootFigures:
    """The figures of a boot log that ``buddysim boot --compare`` sets beside the simulation.

    Pages are 4 KiB pages, sizes in KiB as the kernel prints them. ``None`` means the log does
    not show the figure.
    """

    source: str
    kernel_version: str | None
    nodes: tuple[int, ...]
    zones: tuple[ZoneFigures, ...]
    node_present_pages: dict[int, int]
    node_totalpages_printed: dict[int, int]
    total_present_pages: int | None
    total_pages: int | None  # "Built N zonelists ... Total pages: N" (kernel-version dependent meaning)
    nr_zonelists: int | None
    mobility_grouping: bool | None
    unavailable_pages: int | None
    available_kib: int | None  # "Memory: A K/..." (nr_free_pages() at mem_init)
    physpages_kib: int | None  # "Memory: .../P K" (present pages)
    reserved_kib: int | None
    cma_reserved_kib: int | None
    memory_breakdown_kib: dict[str, int]
    deferred_page_init: bool | None
    memblock_debug: bool
    max_pfn: int | None
    movable_zone_start: dict[int, int]
    problems: tuple[ParseProblem, ...] = ()

    def zone(self, nid: int, zone: str) -> ZoneFigures | None:
        for z in self.zones:
            if z.nid == nid and z.zone == zone:
                return z
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys are strings, problems rendered)."""
        return {
            "source": self.source,
            "kernel_version": self.kernel_version,
            "nodes": list(self.nodes),
            "zones": [
                {
                    "nid": z.nid,
                    "zone": z.zone,
                    "start_pfn": z.start_pfn,
                    "spanned": z.spanned,
                    "present": z.present,
                    "present_source": z.present_source,
                    "unavailable": z.unavailable,
                    "memmap_pages": z.memmap_pages,
                    "reserved_pages": z.reserved_pages,
                }
                for z in self.zones
            ],
            "node_present_pages": {str(k): v for k, v in self.node_present_pages.items()},
            "node_totalpages_printed": {str(k): v for k, v in self.node_totalpages_printed.items()},
            "total_present_pages": self.total_present_pages,
            "total_pages": self.total_pages,
            "nr_zonelists": self.nr_zonelists,
            "mobility_grouping": self.mobility_grouping,
            "unavailable_pages": self.unavailable_pages,
            "available_kib": self.available_kib,
            "physpages_kib": self.physpages_kib,
            "reserved_kib": self.reserved_kib,
            "cma_reserved_kib": self.cma_reserved_kib,
            "memory_breakdown_kib": dict(self.memory_breakdown_kib),
            "deferred_page_init": self.deferred_page_init,
            "memblock_debug": self.memblock_debug,
            "max_pfn": self.max_pfn,
            "movable_zone_start": {str(k): v for k, v in self.movable_zone_start.items()},
            "problems": [p.render() for p in self.problems],
        }


def _arch_tables(log: BootLog) -> tuple[list[int], list[int]] | None:
    """``arch_zone_lowest/highest_possible_pfn`` as the log's ``Zone ranges:`` block prints them."""
    if not log.zone_ranges:
        return None
    lowest = [0] * MAX_NR_ZONES
    highest = [0] * MAX_NR_ZONES
    prev_end = None
    for i, name in enumerate(zone_names):
        if i == ZONE_MOVABLE:
            continue
        span = log.zone_ranges.get(name, "missing")
        if span == "missing" or span is None:
            start = prev_end if prev_end is not None else 0
            lowest[i] = highest[i] = start
        else:
            assert isinstance(span, tuple)
            lowest[i], highest[i] = span
            prev_end = span[1]
        if prev_end is None:
            prev_end = highest[i]
    # empty zones before the first populated one start where it starts
    first = next((lowest[i] for i in range(MAX_NR_ZONES) if highest[i] > lowest[i]), 0)
    for i in range(MAX_NR_ZONES):
        if i != ZONE_MOVABLE and highest[i] == lowest[i] and highest[i] < first:
            lowest[i] = highest[i] = first
    return lowest, highest


def _version(text: str | None) -> tuple[int, int]:
    """(major, minor) of a kernel release string; (99, 0) when unknown (assume a new kernel)."""
    m = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def _deferred(log: BootLog) -> bool | None:
    if log.deferred_init_ms:
        return True
    if log.memory_available_kib is None or log.memory_total_kib is None:
        return None
    reserved = log.memory_breakdown_kib.get("reserved")
    cma = log.memory_breakdown_kib.get("cma-reserved", 0)
    if reserved is None:
        return None
    expected = log.memory_total_kib - reserved - cma
    # without deferral nr_free_pages() at mem_init is about totalram; with it, a small fraction
    return log.memory_available_kib < expected // 2


def boot_figures(log: BootLog) -> BootFigures:
    """The figures of a parsed log (see :class:`BootFigures`)."""
    ranges = sorted(log.node_ranges)
    tables = _arch_tables(log)
    derived: dict[tuple[int, str], tuple[int, int, int]] = {}
    if ranges and tables:
        lowest, highest = tables
        movable_zone = find_usable_zone_for_movable(lowest, highest)
        for nid in sorted({n for _, _, n in ranges}):
            node = calculate_node_totalpages(
                nid, ranges, lowest, highest, log.movable_zone_start.get(nid, 0), movable_zone
            )
            for z in node.zones:
                if z.spanned:
                    derived[(nid, z.name)] = (z.start_pfn, z.spanned, z.present)
    unavailable: dict[tuple[int, str], int] = {}
    for nid, zone, pages in log.unavailable:
        unavailable[(nid, zone)] = unavailable.get((nid, zone), 0) + pages
    keys = sorted(
        set(derived) | set(log.zone_lines) | set(unavailable),
        key=lambda k: (k[0], zone_names.index(k[1]) if k[1] in zone_names else 99, k[1]),
    )
    zones = []
    before_managed = _version(log.kernel_version) < (3, 8)
    for key in keys:
        printed = log.zone_lines.get(key, {})
        d = derived.get(key)
        if "present" in printed and before_managed:
            # before 3.8 ("mm: introduce new field 'managed_pages'") the LIFO-batch line printed
            # present_pages after the memmap and dma_reserve deductions
            present = printed["present"] + printed.get("memmap", 0) + printed.get("reserved", 0)
            source = "printed+memmap"
        elif "present" in printed:
            present, source = printed["present"], "printed"
        elif d is not None:
            present, source = d[2], "ranges"
        else:
            present, source = None, "none"
        zones.append(
            ZoneFigures(
                nid=key[0],
                zone=key[1],
                start_pfn=d[0] if d else None,
                spanned=d[1] if d else None,
                present=present,
                present_source=source,
                unavailable=unavailable.get(key, 0),
                memmap_pages=printed.get("memmap"),
                reserved_pages=printed.get("reserved"),
            )
        )
    node_present: dict[int, int] = {}
    for z in zones:
        if z.present is not None:
            node_present[z.nid] = node_present.get(z.nid, 0) + z.present
    nodes = sorted({z.nid for z in zones} | {n for _, _, n in ranges} | set(log.node_totalpages))
    unavailable_total = sum(unavailable.values()) if unavailable else log.zeroed_unavailable
    return BootFigures(
        source=log.path,
        kernel_version=log.kernel_version,
        nodes=tuple(nodes),
        zones=tuple(zones),
        node_present_pages=node_present,
        node_totalpages_printed=dict(log.node_totalpages),
        total_present_pages=sum(node_present.values()) if node_present else None,
        total_pages=log.total_pages,
        nr_zonelists=log.nr_zonelists,
        mobility_grouping=log.mobility_grouping,
        unavailable_pages=unavailable_total,
        available_kib=log.memory_available_kib,
        physpages_kib=log.memory_total_kib,
        reserved_kib=log.memory_breakdown_kib.get("reserved"),
        cma_reserved_kib=log.memory_breakdown_kib.get("cma-reserved"),
        memory_breakdown_kib=dict(log.memory_breakdown_kib),
        deferred_page_init=_deferred(log),
        memblock_debug=log.memblock_debug,
        max_pfn=max(log.last_pfn) if log.last_pfn else (max(e for _, e, _ in ranges) if ranges else None),
        movable_zone_start=dict(log.movable_zone_start),
        problems=tuple(log.problems),
    )


def parse_boot_figures(path: str | Path) -> BootFigures:
    """Read the figures of a boot log; :class:`BadInput` if it holds none (not a boot log)."""
    log = parse_boot_log(path)
    fig = boot_figures(log)
    if not (fig.zones or fig.total_pages is not None or fig.available_kib is not None or log.has_memory_map):
        raise _nothing_usable(log)
    return fig


def _nothing_usable(log: BootLog) -> BadInput:
    extra = (
        f" ({len(log.problems)} unparsable lines, first: {log.problems[0].render()})" if log.problems else ""
    )
    return BadInput(
        "no memory map found: expected BIOS-e820 lines, an 'Early memory node ranges' block or "
        f"memblock=debug output{extra}",
        where=log.path,
    )


# --------------------------------------------------------------------------------------------
# the config


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-")
    return s or "imported"


def _zone_limits(
    log: BootLog, max_pfn: int, mem_pfn_ranges: list[tuple[int, int, int]], notes: list[str]
) -> dict[str, Any]:
    """``[zones]`` entries: only what differs from the x86-64 defaults."""
    out: dict[str, Any] = {}
    tables = _arch_tables(log)
    if tables is not None and log.zone_ranges_damaged:
        notes.append("the 'Zone ranges:' block has unparsable lines: x86-64 default zone limits used")
    elif tables is not None:
        lowest, highest = tables
        default = free_area_init(mem_pfn_ranges, arch_zone_limits_init(max_pfn))
        if (tuple(lowest), tuple(highest)) != (
            default.arch_zone_lowest_possible_pfn,
            default.arch_zone_highest_possible_pfn,
        ):
            dma = highest[0] << PAGE_SHIFT if "DMA" in log.zone_ranges else 0
            dma32 = highest[1] << PAGE_SHIFT if "DMA32" in log.zone_ranges else dma
            if dma != DEFAULT_DMA_LIMIT:
                out["dma"] = format_size(dma)
            if dma32 != DEFAULT_DMA32_LIMIT:
                out["dma32"] = format_size(dma32)
            notes.append("zone limits differ from the x86-64 defaults: taken from the 'Zone ranges:' block")
    if log.kernelcore:
        out["kernelcore"] = log.kernelcore
    if log.movablecore:
        out["movablecore"] = log.movablecore
    if log.movable_zone_start and not (log.kernelcore or log.movablecore):
        notes.append(
            "the log has a ZONE_MOVABLE but no kernelcore=/movablecore= on the command line "
            "(movable_node?): not reproduced"
        )
    return out


def boot_log_to_config(log: BootLog, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The machine config of a parsed log, as a TOML-ready dict, plus notes for the header.

    Memory comes from ``Early memory node ranges`` (memblock.memory with nodes) if printed, else
    from the memblock=debug state, else from the e820 map (with ``[[numa]]`` from SRAT lines).
    Reservations come from the memblock=debug state, else from the initrd / NODE_DATA /
    crashkernel lines (the only ones a plain log locates).
    """
    if not log.has_memory_map:
        raise _nothing_usable(log)
    notes: list[str] = []
    doc: dict[str, Any] = {}
    stem = Path(log.path).name.rsplit(".", 1)[0]
    doc["name"] = name or _slug(stem)
    memory: list[dict[str, Any]] = []
    e820: list[dict[str, Any]] = []
    numa: list[dict[str, Any]] = []
    mem_pfn_ranges: list[tuple[int, int, int]]
    if log.node_ranges:
        mem_pfn_ranges = sorted(log.node_ranges)
        memory = [
            {"start": hex(s << PAGE_SHIFT), "end": hex(e << PAGE_SHIFT), "nid": nid}
            for s, e, nid in mem_pfn_ranges
        ]
        notes.append("memory: the 'Early memory node ranges' block (memblock.memory after NUMA init)")
    elif log.memblock is not None and log.memblock.memory.cnt:
        mem_pfn_ranges = []
        for r in log.memblock.memory:
            s, e = -(-r.base // PAGE_SIZE), r.end // PAGE_SIZE
            if s < e:
                mem_pfn_ranges.append((s, e, r.nid if numa_valid_node(r.nid) else 0))
        memory = [
            {"start": hex(s << PAGE_SHIFT), "end": hex(e << PAGE_SHIFT), "nid": n}
            for s, e, n in mem_pfn_ranges
        ]
        notes.append("memory: memblock.memory as memblock=debug shows it (trimmed to whole pages)")
    else:
        table = log.e820
        e820 = [{"start": hex(s), "end": hex(e), "type": t} for s, e, t in table]
        spans = sorted(set(log.srat)) or [
            (nid, s << PAGE_SHIFT, e << PAGE_SHIFT) for nid, (s, e) in sorted(log.initmem_nodes.items())
        ]
        if len({nid for nid, _, _ in spans}) > 1:
            numa = [{"nid": nid, "start": hex(s), "end": hex(e)} for nid, s, e in spans]
        mem_pfn_ranges = []
        notes.append(
            "memory: the e820 map (BIOS-e820 lines with the e820 update/remove lines applied); "
            "no 'Early memory node ranges' block in the log"
        )
        if not numa and len(log.initmem_nodes) > 1:
            notes.append("several nodes but no SRAT spans: all memory put on node 0")
        for s, e, t in trim_bios_range(table):
            ps, pe = -(-s // PAGE_SIZE), e // PAGE_SIZE
            if t == "usable" and ps < pe:
                mem_pfn_ranges.append((ps, pe, 0))
    max_pfn = max(e for _, e, _ in mem_pfn_ranges) if mem_pfn_ranges else 0

    reserved: list[dict[str, Any]] = []
    mem_bytes = [(s << PAGE_SHIFT, e << PAGE_SHIFT) for s, e, _ in mem_pfn_ranges]
    dram_end = max_pfn << PAGE_SHIFT

    def _add_reserved(rname: str, start: int, end: int) -> None:
        if not any(start < me and ms < end for ms, me in mem_bytes):
            return
        end = min(end, dram_end)
        reserved.append({"name": rname, "start": hex(start), "end": hex(end)})

    if log.memblock is not None and log.memblock.reserved.cnt:
        dropped = 0
        for i, r in enumerate(log.memblock.reserved):
            before = len(reserved)
            _add_reserved(log.reserve_callers.get(r.base, f"memblock.reserved[{i}]"), r.base, r.end)
            dropped += len(reserved) == before
        notes.append(
            "reserved: memblock.reserved as memblock=debug shows it at the end of the log"
            + (f" ({dropped} regions outside memory left out)" if dropped else "")
        )
    else:
        if log.ramdisk:
            _add_reserved("initrd", *log.ramdisk)
        for nid, (s, e) in sorted(log.node_data.items()):
            _add_reserved(f"NODE_DATA({nid})", s, e)
        if log.crashkernel:
            _add_reserved("crashkernel", *log.crashkernel)
        for start, end in log.e820_late_reserved:
            _add_reserved("e820 update after memblock setup (efi_mem_reserve)", start, end)
        notes.append(
            "reserved: only what the log locates (initrd, NODE_DATA, crashkernel, late e820 updates); boot with "
            "memblock=debug for the full memblock.reserved"
        )
    reserved_kib = log.memory_breakdown_kib.get("reserved")
    if reserved_kib is not None:
        notes.append(f"the kernel reported {reserved_kib}K reserved in total")

    zones = _zone_limits(log, max_pfn, mem_pfn_ranges, notes) if mem_pfn_ranges else {}
    nr_cpus = log.nr_cpu_ids or log.nr_possible_cpus or log.nr_cpus_brought_up
    if nr_cpus is None:
        nr_cpus = 1
        notes.append("nr_cpus: not in the log (no setup_percpu / smpboot lines): 1")
    deferred = _deferred(log)
    nodes = sorted({n for _, _, n in mem_pfn_ranges} | {int(n["nid"]) for n in numa})
    present = sum(e - s for s, e, _ in mem_pfn_ranges)
    desc = f"imported from {Path(log.path).name}"
    if log.kernel_version:
        desc += f": Linux {log.kernel_version}"
    desc += f", {len(nodes)} node{'s' if len(nodes) != 1 else ''}, {present * PAGE_SIZE / (1 << 30):.2f} GiB"
    doc["description"] = desc
    doc["nr_cpus"] = nr_cpus
    doc["deferred_struct_page_init"] = bool(deferred)
    if zones:
        doc["zones"] = zones
    if memory:
        doc["memory"] = memory
    if e820:
        doc["e820"] = e820
    if numa:
        doc["numa"] = numa
    if reserved:
        doc["reserved"] = reserved
    return doc, notes


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def render_config_toml(doc: dict[str, Any], header: Iterable[str] = ()) -> str:
    """A machine-config dict as TOML (scalars, one sub-table, arrays of tables); comments first."""
    out = [f"# {h}" for h in header]
    if out:
        out.append("")
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in doc.items() if isinstance(v, list)}
    for k, v in doc.items():
        if k not in tables and k not in arrays:
            out.append(f"{k} = {_toml_value(v)}")
    for k, v in tables.items():
        out += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, items in arrays.items():
        for item in items:
            out += ["", f"[[{k}]]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class DmesgImport:
    """The result of :func:`import_dmesg`."""

    config: Config
    toml: str
    figures: BootFigures
    problems: tuple[ParseProblem, ...]
    notes: tuple[str, ...]


def import_dmesg(path: str | Path, name: str | None = None) -> DmesgImport:
    """Import a boot log: machine config (validated, and as TOML), figures and problems.

    Raises :class:`BadInput` when the log holds no memory map, or when what it holds does not
    make a valid machine (the message names the log and the config key).
    """
    log = parse_boot_log(path)
    doc, notes = boot_log_to_config(log, name)
    fig = boot_figures(log)
    header = [f"buddysim machine config imported from {Path(log.path).name} (buddysim import dmesg)"]
    if log.kernel_version:
        header.append(f"kernel: Linux {log.kernel_version}")
    if log.cmdline:
        header.append(f"command line: {log.cmdline}")
    header += notes
    figs = []
    if fig.total_present_pages is not None:
        figs.append(f"present {fig.total_present_pages} pages")
    if fig.total_pages is not None:
        figs.append(f"Total pages {fig.total_pages}")
    if fig.available_kib is not None:
        figs.append(f"available {fig.available_kib}K of {fig.physpages_kib}K")
    if figs:
        header.append("log figures: " + ", ".join(figs))
    if fig.deferred_page_init:
        header.append("deferred struct page init: yes (the log's 'available' figure excludes deferred pages)")
    text = render_config_toml(doc, header)
    try:
        config = config_from_dict(doc, source=f"{log.path} (imported config)", text=text)
    except BadInput as e:
        raise BadInput(
            f"the imported machine is not valid: {e.message}", where=log.path, field=e.field
        ) from None
    return DmesgImport(config, text, fig, tuple(log.problems), tuple(notes))
