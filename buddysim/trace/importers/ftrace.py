"""ftrace importer: kmem and page_ref tracepoint text (ftrace, trace-cmd, perf) to a buddysim trace.

Reads the text a kernel developer already has: ``/sys/kernel/tracing/trace`` and ``trace_pipe``,
``trace-cmd report`` and ``perf script`` output, for the kmem page events of
include/trace/events/kmem.h (``mm_page_alloc``, ``mm_page_free``, ``mm_page_free_batched``,
``mm_page_alloc_zone_locked``, ``mm_page_pcpu_drain``, ``mm_page_alloc_extfrag`` and the old
names ``mm_page_free_direct`` and ``mm_pagevec_free``) and the page_ref events of
include/trace/events/page_ref.h (CONFIG_DEBUG_PAGE_REF). Every variant of
spec/formats-and-metrics.md §1 is accepted: with or without the header block; a latency-flag
column of 5, 4 or no characters; ``<...>``, ``<idle>`` and task names with spaces or dashes; the
``record-tgid`` column; decimal (``pfn=%lu``, up to about 5.17) or hex (``pfn=0x%lx``) pfns;
symbolic or hex ``gfp_flags`` (old kernels' names such as ``__GFP_WAIT`` are translated, unknown
ones dropped and counted); ``page=(null)``, ``page= (null)`` and ``pfn=0`` failed allocations;
vendor extra ``key=value`` fields (``nr_free=``); the old ``cpu=`` field of the events-kmem.rst
formats; events embedded as ``/* event: ... */`` comments in function_graph output;
``<stack trace>`` and `` => func`` lines; ``CPU:N [LOST M EVENTS]`` markers (kept as ``mark``
events, since the model cannot follow what it did not see).

Mapping (docs/trace-format.md): ``mm_page_alloc`` → ``alloc_pages`` with the observed ``pfn``
(``null`` for a failure), ``mm_page_free``/``mm_page_free_direct`` → ``__free_pages``, page_ref
events → ``page_ref`` with the page_ref.h function that emits them (``page_ref_mod`` with
``val=+n`` is ``page_ref_add``, ``page_ref_mod_and_test`` is ``page_ref_sub_and_test``, ...),
and the recorded-only ops ``mm_page_alloc_zone_locked``, ``mm_page_pcpu_drain``,
``mm_page_alloc_extfrag`` and ``mm_page_free_batched`` (also for ``mm_pagevec_free``), which
only directed replay applies. Every event keeps its CPU. Unknown events are counted and skipped;
a line that is not trace output, or a known event whose fields cannot be read, is reported as
``file:line: what was expected`` and skipped.

Large inputs stream in constant memory (events go to a temporary file while the header, which
depends on the highest pfn and CPU seen, is decided at the end); ``.gz`` and ``.xz`` inputs are
recognised by their magic bytes. :func:`import_ftrace` writes a trace file;
:class:`FtraceParser` turns lines into event dicts for callers that want them in memory.

Simplified: timestamps, task names, pids, ``page=`` pointers, page_ref ``flags``/``mapcount``/
``mapping`` and the ``count`` after a page_ref op are not carried into the trace (the format has
no field for them); ``mm_page_alloc``'s ``migratetype=`` is checked against ``gfp_flags`` (a
mismatch is counted) but not stored, since the replay derives it from the gfp mask as the
kernel does; migratetype numbers are read with the 7.2 distro enum (CMA 4, Isolate 5); hex gfp
masks are taken with the 7.2 bit layout (the same since 4.10 for the bits that choose zone and
migratetype); latency-format (``options/latency-format``) output is not read.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import lzma
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

from buddysim.errors import BadInput
from buddysim.mm.gfp import GFP_NAMES, format_gfp, gfp_migratetype
from buddysim.mm.mmzone import migratetype_names
from buddysim.trace.importers.dmesg import ParseProblem

__all__ = [
    "KNOWN_EVENTS",
    "FtraceImport",
    "FtraceParser",
    "ImportStats",
    "choose_machine",
    "dumps_event_fast",
    "import_ftrace",
    "open_text",
    "parse_gfp_lenient",
]

# ---------------------------------------------------------------------------------- line shapes
# ftrace / trace-cmd: "comm-pid [(tgid)] [cpu] [flags] secs.usecs: event: fields" (trace_output.c,
# trace_print_context). The comm is lazy so that "kworker/u16:2-87" and "my task-1-42" split at
# the last "-pid" before the CPU column; flags are 4 or 5 characters or absent (2.6-era).
_FTRACE = re.compile(
    r"\s*(?P<comm>.*?)-(?P<pid>\d+)\s+"
    r"(?:\(\s*(?:\d+|-+)\)\s+)?"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?:[^\s:\[\]]{4,5}\s+)?"
    r"(?P<ts>\d+(?:\.\d+)?):\s+"
    r"(?P<event>[A-Za-z_][\w:]*):\s*(?P<rest>.*)"
)
# perf script: "comm pid[/tid] [cpu] secs.usecs: [period] system:event: fields"
_PERF = re.compile(
    r"\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)(?:/\d+)?\s+"
    r"\[(?P<cpu>\d+)\]\s+"
    r"(?P<ts>\d+\.\d+):\s+"
    r"(?:\d+\s+)?"
    r"(?P<event>[A-Za-z_]\w*:[A-Za-z_]\w*):\s*(?P<rest>.*)"
)
# function_graph: "[abstime |] cpu) [comm-pid |] [duration |] /* event: fields */"
_FGRAPH = re.compile(
    r"\s*(?:\d+\.\d+\s*\|\s*)?(?P<cpu>\d+)\)[^/]*/\*\s*(?P<event>[A-Za-z_][\w:]*):\s*(?P<rest>.*?)\s*\*/\s*$"
)
# "CPU:2 [LOST 1234 EVENTS]" (ftrace, trace-cmd)
_LOST = re.compile(r"\s*CPU:?\s*(?P<cpu>\d+)\s*\[(?:LOST (?P<n>\d+) EVENTS|(?P<m>\d+) EVENTS DROPPED)\]")
# trace-cmd report preamble, the 2.6-era column header without '#'
_PREAMBLE = re.compile(
    r"\s*(?:cpus=\d+|version\s*=\s*\d+|CPU\s*\d+ is empty|CPU\d+ data recorded|(?:TASK|K)-PID\s)"
)
# any other line with a trace prefix (function tracer "func <-parent", trace_printk without a colon)
_PREFIX = re.compile(r"\s*.*?-\d+\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[\d+\]\s")
_KV = re.compile(r"([A-Za-z_]\w*)=(\S*)")
# The upstream TP_printk layouts, matched whole: the fast path (any other layout, vendor fields
# included, goes through the generic key=value reader).
_P = r"page=(\S*) pfn=(0x[0-9a-fA-F]+|\d+) order=(\d+)"
_FAST = {
    "mm_page_alloc": re.compile(_P + r" migratetype=(\d) gfp_flags=(\S*)\s*$"),
    "mm_page_free": re.compile(_P + r"\s*$"),
    "mm_page_free_direct": re.compile(_P + r"\s*$"),
    "mm_page_alloc_zone_locked": re.compile(_P + r" migratetype=(\d) percpu_refill=([01])\s*$"),
    "mm_page_pcpu_drain": re.compile(_P + r" migratetype=(\d)\s*$"),
}

_NULL_PAGES = frozenset({"", "(null)", "(nil)", "0", "0x0", "00000000", "0000000000000000", "NULL"})
_VMEMMAP_BASE = 0xFFFFEA0000000000  # x86-64 vmemmap_base without KASLR; struct page is 64 bytes
_PFN_LIMIT = 1 << 40
_MAX_ORDER = 10
_NR_CPUS = 8192
_INT_MIN, _INT_LIMIT = -(1 << 31), 1 << 31

#: gfp names of older kernels, as their show_gfp_flags() printed them, in 7.2 terms
OLD_GFP_NAMES: dict[str, int] = {
    "__GFP_WAIT": GFP_NAMES["__GFP_DIRECT_RECLAIM"],  # before 4.4 ("mm, page_alloc: distinguish ...")
    "__GFP_REPEAT": GFP_NAMES["__GFP_RETRY_MAYFAIL"],  # renamed in 4.13
    "GFP_TEMPORARY": GFP_NAMES["GFP_KERNEL"] | GFP_NAMES["__GFP_RECLAIMABLE"],  # removed in 4.14
    "GFP_IOFS": GFP_NAMES["__GFP_IO"] | GFP_NAMES["__GFP_FS"],
    "GFP_THISNODE": GFP_NAMES["__GFP_THISNODE"] | GFP_NAMES["__GFP_NOWARN"] | GFP_NAMES["__GFP_NORETRY"],
    "GFP_HIGHUSER_MOVABLE": GFP_NAMES["GFP_HIGHUSER_MOVABLE"],
    # bits that are gone and that change nothing the allocator model looks at
    "__GFP_COLD": 0,
    "__GFP_NOTRACK": 0,
    "__GFP_NOTRACK_FALSE_POSITIVE": 0,
    "__GFP_NO_KSWAPD": 0,
    "__GFP_OTHER_NODE": 0,
    "__GFP_NOACCOUNT": 0,
    "__GFP_KMEMCG": 0,
    "__GFP_ATOMIC": 0,
}


class _Bad(Exception):
    """A known event whose fields cannot be read (becomes ``file:line: message``)."""


# ---------------------------------------------------------------------------------- gfp
_gfp_cache: dict[str, tuple[int, tuple[str, ...], int]] = {}


def parse_gfp_lenient(text: str) -> tuple[int, tuple[str, ...], int]:
    """``gfp_flags=`` as any kernel printed it: (7.2 mask, unknown names dropped, old names translated).

    >>> parse_gfp_lenient("GFP_KERNEL|__GFP_COLD|__GFP_BOGUS")[1]
    ('__GFP_BOGUS',)
    """
    hit = _gfp_cache.get(text)
    if hit is not None:
        return hit
    mask = 0
    unknown: list[str] = []
    translated = 0
    s = text.strip()
    if s and s != "none":
        for token in s.split("|"):
            token = token.strip()
            m = GFP_NAMES.get(token)
            if m is not None:
                mask |= m
                continue
            m = OLD_GFP_NAMES.get(token)
            if m is not None:
                mask |= m
                translated += 1
                continue
            try:
                value = int(token, 16) if token[:2] in ("0x", "0X") else int(token, 10)
            except ValueError:
                unknown.append(token)
                continue
            if 0 <= value < 1 << 32:
                mask |= value
            else:
                unknown.append(token)
    hit = (mask, tuple(unknown), translated)
    if len(_gfp_cache) < 4096:
        _gfp_cache[text] = hit
    return hit


# ---------------------------------------------------------------------------------- field readers
def _int(fields: dict[str, str], key: str, what: str = "an integer") -> int:
    v = fields.get(key)
    if v is None:
        raise _Bad(f"expected {key}=<{what}>")
    try:
        return int(v, 0)
    except ValueError:
        pass
    try:
        return int(v, 16) if v[:2] in ("0x", "0X") else int(v, 10)  # decimal with leading zeros
    except ValueError:
        raise _Bad(f"expected {key}=<{what}>, got {v!r}") from None


def _pfn(fields: dict[str, str]) -> int:
    if "pfn" not in fields:
        page = fields.get("page", "")
        # 2.6-era formats and raw (unhashed) pointers: pfn = (page - vmemmap_base) / sizeof(struct page)
        try:
            addr = int(page, 16)
        except ValueError:
            addr = 0
        if _VMEMMAP_BASE <= addr < _VMEMMAP_BASE + (_PFN_LIMIT << 6) and not addr & 63:
            return (addr - _VMEMMAP_BASE) >> 6
        raise _Bad("expected pfn=<decimal or 0x hex>")
    pfn = _int(fields, "pfn", "decimal or 0x hex")
    if not 0 <= pfn < _PFN_LIMIT:
        raise _Bad(f"pfn {pfn:#x} is outside 0..2^40")
    return pfn


def _order(fields: dict[str, str], key: str = "order") -> int:
    order = _int(fields, key)
    if not 0 <= order <= _MAX_ORDER:
        raise _Bad(f"{key}={order} is outside 0..{_MAX_ORDER} (x86-64 MAX_PAGE_ORDER)")
    return order


def _mt(fields: dict[str, str], key: str = "migratetype") -> str:
    mt = _int(fields, key)
    if not 0 <= mt < len(migratetype_names):
        raise _Bad(f"{key}={mt} is not a migratetype (0..{len(migratetype_names) - 1})")
    return migratetype_names[mt]


def _i32(value: int, key: str) -> int:
    if not _INT_MIN <= value < _INT_LIMIT:
        raise _Bad(f"{key}={value} does not fit an int")
    return value


# ---------------------------------------------------------------------------------- statistics
@dataclass
class ImportStats:
    """What an import saw: lines by kind, events by name, problems, extents."""

    path: str = "<ftrace>"
    lines: int = 0
    events_written: int = 0
    #: known events read, by tracepoint name (as printed, old names kept)
    events: Counter[str] = field(default_factory=Counter)
    #: other events, by name (counted and skipped)
    unknown_events: Counter[str] = field(default_factory=Counter)
    #: lines per producer: ftrace (trace, trace_pipe, trace-cmd report), perf, funcgraph
    formats: Counter[str] = field(default_factory=Counter)
    comment_lines: int = 0
    stack_lines: int = 0
    #: function-tracer and other non-event trace lines
    other_lines: int = 0
    malformed: int = 0
    problems: list[ParseProblem] = field(default_factory=list)
    lost_events: int = 0
    lost_markers: int = 0
    failed_allocs: int = 0
    #: mm_page_alloc lines whose migratetype= is not gfp_migratetype(gfp_flags)
    migratetype_mismatch: int = 0
    gfp_unknown: Counter[str] = field(default_factory=Counter)
    gfp_translated: int = 0
    max_cpu: int = -1
    #: one past the highest pfn any event names (pfn + 2^order)
    pfn_end: int = 0
    keep_problems: int = 1000

    def problem(self, line: int, message: str) -> None:
        self.malformed += 1
        if len(self.problems) < self.keep_problems:
            self.problems.append(ParseProblem(self.path, line, message))

    def meta(self) -> dict[str, Any]:
        """The header's ``meta``: what the trace holds, for directed replay and humans."""
        return {
            "importer": "ftrace",
            "input": os.path.basename(self.path),
            "lines": self.lines,
            "formats": dict(sorted(self.formats.items())),
            "events": dict(sorted(self.events.items())),
            "unknown_events": dict(self.unknown_events.most_common(50)),
            "malformed_lines": self.malformed,
            "lost_events": self.lost_events,
            "failed_allocs": self.failed_allocs,
            "max_cpu": self.max_cpu,
            "pfn_end": self.pfn_end,
        }


# ---------------------------------------------------------------------------------- the parser
Handler = Callable[[dict[str, str], int, int], dict[str, Any]]


class FtraceParser:
    """Turns trace lines into buddysim events (dicts in the recorder's key order).

    >>> p = FtraceParser()
    >>> p.feed(1, "  bash-1234 [003] .....  12.5: mm_page_free: page=0000000012345678 pfn=0x1a2b3 order=0")
    {'op': '__free_pages', 'order': 0, 'pfn': 107187, 'cpu': 3}
    """

    def __init__(self, path: str = "<ftrace>", keep_problems: int = 1000) -> None:
        self.stats = ImportStats(path=path, keep_problems=keep_problems)
        self._handlers: dict[str, Handler] = {
            "mm_page_alloc": self._alloc,
            "mm_page_free": self._free,
            "mm_page_free_direct": self._free,
            "mm_page_free_batched": self._batched,
            "mm_pagevec_free": self._batched,
            "mm_page_alloc_zone_locked": self._zone_locked,
            "mm_page_pcpu_drain": self._drain,
            "mm_page_alloc_extfrag": self._extfrag,
        }
        for name in KNOWN_PAGE_REF:
            self._handlers[name] = functools.partial(self._page_ref, name)

    # ------------------------------------------------------------------ lines
    def feed(self, lineno: int, line: str) -> dict[str, Any] | None:
        """One line (with or without its newline): the event it holds, or None."""
        st = self.stats
        st.lines += 1
        m = _FTRACE.match(line)
        if m is not None:
            st.formats["ftrace"] += 1
            return self._event(lineno, m["event"], m["rest"], int(m["cpu"]))
        s = line.strip()
        if not s:
            return None
        c = s[0]
        if c == "#":
            st.comment_lines += 1
            return None
        if c == "=" and s.startswith("=>"):
            st.stack_lines += 1
            return None
        if "<stack trace>" in s or "<user stack trace>" in s:
            st.stack_lines += 1
            return None
        m = _PERF.match(line)
        if m is not None:
            st.formats["perf"] += 1
            return self._event(lineno, m["event"], m["rest"], int(m["cpu"]))
        if "/*" in s:
            m = _FGRAPH.match(line)
            if m is not None:
                st.formats["funcgraph"] += 1
                return self._event(lineno, m["event"], m["rest"], int(m["cpu"]))
        m = _LOST.match(line)
        if m is not None:
            n = int(m["n"] or m["m"])
            cpu = int(m["cpu"])
            st.lost_events += n
            st.lost_markers += 1
            label = f"ftrace: CPU {cpu} lost {n} events (line {lineno})"
            return {"op": "mark", "label": label[:200]}
        if _PREAMBLE.match(line):
            st.comment_lines += 1
            return None
        if _PREFIX.match(line) or (c.isdigit() and ")" in s[:8]):
            st.other_lines += 1  # function / function_graph entries, trace_printk without "name:"
            return None
        st.problem(
            lineno,
            "expected an ftrace line 'comm-pid [cpu] flags secs.usecs: event: fields' (or perf script "
            f"'comm pid [cpu] secs.usecs: kmem:event: fields'), got {s[:60]!r}",
        )
        return None

    def _event(self, lineno: int, event: str, rest: str, cpu: int) -> dict[str, Any] | None:
        st = self.stats
        if ":" in event:
            event = event.rsplit(":", 1)[1]
        handler = self._handlers.get(event)
        if handler is None:
            st.unknown_events[event] += 1
            return None
        fast = _FAST.get(event)
        if fast is not None and cpu < _NR_CPUS:
            m = fast.match(rest)
            if m is not None:
                ev = self._fast(event, m.groups(), cpu)
                if ev is not None:
                    st.events[event] += 1
                    if cpu > st.max_cpu:
                        st.max_cpu = cpu
                    return ev
        if "= (" in rest:
            rest = rest.replace("= (", "=(")  # "page= (null)"
        fields = dict(_KV.findall(rest))
        if "cpu" in fields:  # events-kmem.rst era: the pcp's CPU as a field
            try:
                cpu = int(fields["cpu"])
            except ValueError:
                pass
        if cpu >= _NR_CPUS:
            st.problem(lineno, f"{event}: cpu {cpu} is outside 0..{_NR_CPUS - 1}")
            return None
        try:
            ev = handler(fields, cpu, lineno)
        except _Bad as e:
            st.problem(lineno, f"{event}: {e}")
            return None
        st.events[event] += 1
        if cpu > st.max_cpu:
            st.max_cpu = cpu
        return ev

    def _fast(self, event: str, g: tuple[str, ...], cpu: int) -> dict[str, Any] | None:
        """An upstream-layout line (``_FAST``); None when a value is out of range (the generic
        path then says which)."""
        pv = g[1]
        pfn = int(pv, 16) if pv[1:2] == "x" else int(pv)
        order = int(g[2])
        if order > _MAX_ORDER or pfn >= _PFN_LIMIT:
            return None
        st = self.stats
        if event == "mm_page_alloc":
            mask, unknown, translated = parse_gfp_lenient(g[4])
            if unknown or translated:
                return None
            if int(g[3]) != gfp_migratetype(mask):
                st.migratetype_mismatch += 1
            if pfn == 0 and g[0] in _NULL_PAGES:
                st.failed_allocs += 1
                return {"op": "alloc_pages", "order": order, "gfp": format_gfp(mask), "cpu": cpu, "pfn": None}
            ev: dict[str, Any] = {
                "op": "alloc_pages",
                "order": order,
                "gfp": format_gfp(mask),
                "cpu": cpu,
                "pfn": pfn,
            }
        elif event == "mm_page_alloc_zone_locked" or event == "mm_page_pcpu_drain":
            mt = int(g[3])
            if mt >= len(migratetype_names):
                return None
            if event == "mm_page_pcpu_drain":
                ev = {
                    "op": event,
                    "pfn": pfn,
                    "order": order,
                    "migratetype": migratetype_names[mt],
                    "cpu": cpu,
                }
            else:
                ev = {
                    "op": event,
                    "pfn": pfn,
                    "order": order,
                    "migratetype": migratetype_names[mt],
                    "percpu_refill": g[4] == "1",
                    "cpu": cpu,
                }
        else:
            ev = {"op": "__free_pages", "order": order, "pfn": pfn, "cpu": cpu}
        end = pfn + (1 << order)
        if end > st.pfn_end:
            st.pfn_end = end
        return ev

    def _extent(self, pfn: int, order: int) -> None:
        end = pfn + (1 << order)
        if end > self.stats.pfn_end:
            self.stats.pfn_end = end

    # ------------------------------------------------------------------ kmem
    def _alloc(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        order = _order(fields)
        pfn: int | None = _pfn(fields)
        gfp_text = fields.get("gfp_flags")
        if gfp_text is None:
            raise _Bad("expected gfp_flags=<flags or 0x hex>")
        mask, unknown, translated = parse_gfp_lenient(gfp_text)
        st = self.stats
        if unknown:
            st.gfp_unknown.update(unknown)
        st.gfp_translated += translated
        if pfn == 0 and fields.get("page", "") in _NULL_PAGES:
            pfn = None  # page == NULL: the kernel stores -1UL and prints pfn 0
            st.failed_allocs += 1
        elif pfn is not None:
            self._extent(pfn, order)
        if "migratetype" in fields:
            mt = _int(fields, "migratetype")
            if mt != gfp_migratetype(mask):
                st.migratetype_mismatch += 1
        return {"op": "alloc_pages", "order": order, "gfp": format_gfp(mask), "cpu": cpu, "pfn": pfn}

    def _free(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        order = _order(fields)
        self._extent(pfn, order)
        return {"op": "__free_pages", "order": order, "pfn": pfn, "cpu": cpu}

    def _batched(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        order = _order(fields) if "order" in fields else 0
        self._extent(pfn, order)
        ev: dict[str, Any] = {"op": "mm_page_free_batched", "pfn": pfn}
        if order:
            ev["order"] = order
        ev["cpu"] = cpu
        return ev

    def _zone_locked(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        order = _order(fields)
        self._extent(pfn, order)
        return {
            "op": "mm_page_alloc_zone_locked",
            "pfn": pfn,
            "order": order,
            "migratetype": _mt(fields),
            "percpu_refill": bool(_int(fields, "percpu_refill")) if "percpu_refill" in fields else False,
            "cpu": cpu,
        }

    def _drain(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        order = _order(fields)
        self._extent(pfn, order)
        return {
            "op": "mm_page_pcpu_drain",
            "pfn": pfn,
            "order": order,
            "migratetype": _mt(fields),
            "cpu": cpu,
        }

    def _extfrag(self, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        alloc_order = _order(fields, "alloc_order")
        self._extent(pfn, alloc_order)
        ev: dict[str, Any] = {
            "op": "mm_page_alloc_extfrag",
            "pfn": pfn,
            "alloc_order": alloc_order,
            "fallback_order": _order(fields, "fallback_order"),
            "alloc_migratetype": _mt(fields, "alloc_migratetype"),
            "fallback_migratetype": _mt(fields, "fallback_migratetype"),
        }
        if "change_ownership" in fields:
            ev["change_ownership"] = bool(_int(fields, "change_ownership"))
        ev["cpu"] = cpu
        return ev

    # ------------------------------------------------------------------ page_ref
    def _page_ref(self, name: str, fields: dict[str, str], cpu: int, lineno: int) -> dict[str, Any]:
        pfn = _pfn(fields)
        self._extent(pfn, 0)
        val = _i32(_int(fields, "val"), "val")
        ev: dict[str, Any] = {"op": "page_ref"}
        if name == "page_ref_set":
            ev.update(fn="set_page_count", pfn=pfn, v=val)
        elif name == "page_ref_mod":
            if val >= 0:
                ev.update(fn="page_ref_add", pfn=pfn, nr=val)
            else:
                ev.update(fn="page_ref_sub", pfn=pfn, nr=_i32(-val, "val"))
        elif name == "page_ref_unfreeze":
            ev.update(fn="page_ref_unfreeze", pfn=pfn, count=val)
        else:
            ret = _i32(_int(fields, "ret"), "ret")
            if name == "page_ref_mod_and_test":
                ev.update(fn="page_ref_sub_and_test", pfn=pfn, nr=_i32(-val, "val"), ret=bool(ret))
            elif name == "page_ref_mod_and_return":
                if val == 1:
                    ev.update(fn="page_ref_inc_return", pfn=pfn, ret=ret)
                elif val == -1:
                    ev.update(fn="page_ref_dec_return", pfn=pfn, ret=ret)
                else:
                    ev.update(fn="page_ref_sub_return", pfn=pfn, nr=_i32(-val, "val"), ret=ret)
            elif name == "page_ref_mod_unless":
                ev.update(fn="page_ref_add_unless_zero", pfn=pfn, nr=val, ret=bool(ret))
            else:  # page_ref_freeze
                ev.update(fn="page_ref_freeze", pfn=pfn, count=val, ret=bool(ret))
        return ev

    def parse(self, lines: Iterable[str], start: int = 1) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, event)`` for every event in ``lines``."""
        for lineno, line in enumerate(lines, start):
            ev = self.feed(lineno, line)
            if ev is not None:
                yield lineno, ev


KNOWN_PAGE_REF = (
    "page_ref_set",
    "page_ref_mod",
    "page_ref_mod_and_test",
    "page_ref_mod_and_return",
    "page_ref_mod_unless",
    "page_ref_freeze",
    "page_ref_unfreeze",
)
#: every tracepoint the importer reads
KNOWN_EVENTS = (
    "mm_page_alloc",
    "mm_page_free",
    "mm_page_free_direct",
    "mm_page_free_batched",
    "mm_pagevec_free",
    "mm_page_alloc_zone_locked",
    "mm_page_pcpu_drain",
    "mm_page_alloc_extfrag",
    *KNOWN_PAGE_REF,
)

# ---------------------------------------------------------------------------------- output
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps_event_fast(ev: dict[str, Any]) -> str:
    """One event line as :func:`buddysim.trace.recorder.dumps_event` writes it (same bytes), with
    f-strings for the ops an import writes by the million."""
    op = ev["op"]
    if op == "alloc_pages" and len(ev) == 5:
        pfn = ev["pfn"]
        return (
            f'{{"op":"alloc_pages","order":{ev["order"]},"gfp":"{ev["gfp"]}","cpu":{ev["cpu"]},'
            f'"pfn":{"null" if pfn is None else pfn}}}'
        )
    if op == "__free_pages":
        return f'{{"op":"__free_pages","order":{ev["order"]},"pfn":{ev["pfn"]},"cpu":{ev["cpu"]}}}'
    if op == "mm_page_alloc_zone_locked":
        return (
            f'{{"op":"mm_page_alloc_zone_locked","pfn":{ev["pfn"]},"order":{ev["order"]},'
            f'"migratetype":"{ev["migratetype"]}","percpu_refill":{"true" if ev["percpu_refill"] else "false"},'
            f'"cpu":{ev["cpu"]}}}'
        )
    if op == "mm_page_pcpu_drain":
        return (
            f'{{"op":"mm_page_pcpu_drain","pfn":{ev["pfn"]},"order":{ev["order"]},'
            f'"migratetype":"{ev["migratetype"]}","cpu":{ev["cpu"]}}}'
        )
    return _encode(ev)


# ---------------------------------------------------------------------------------- files
_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"


def open_text(path: str) -> tuple[IO[str], IO[bytes] | None, int]:
    """Open ftrace text (plain, .gz or .xz by magic; ``-`` = stdin): (text, raw file, size)."""
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"), None, 0
    try:
        raw = open(path, "rb")
        size = os.fstat(raw.fileno()).st_size
        magic = raw.read(6)
        raw.seek(0)
    except FileNotFoundError:
        raise BadInput("no such file", where=path) from None
    except IsADirectoryError:
        raise BadInput("is a directory, expected ftrace text", where=path) from None
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror or e}", where=path) from None
    binary: IO[bytes] = raw
    if magic.startswith(_GZIP_MAGIC):
        binary = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    elif magic.startswith(_XZ_MAGIC):
        binary = cast(IO[bytes], lzma.LZMAFile(raw, mode="rb"))
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline=""), raw, size


class _Progress:
    """A transient percentage line on stderr (TTY only), checked every 64k lines."""

    def __init__(self, enabled: bool, raw: IO[bytes] | None, size: int) -> None:
        self.enabled = enabled and raw is not None and size > 0
        self.raw = raw
        self.size = size
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, lines: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.25:
            return
        self.last = now
        try:
            pos = self.raw.tell()  # type: ignore[union-attr]
        except (OSError, ValueError):
            return
        rate = lines / (now - self.t0) if now > self.t0 else 0
        sys.stderr.write(
            f"\r  import ftrace: {100 * pos / self.size:5.1f}%  {lines:,} lines  {rate:,.0f} lines/s "
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()


# ---------------------------------------------------------------------------------- the machine
def choose_machine(spec: str | None, stats: ImportStats) -> tuple[str | dict[str, Any], Any, list[str]]:
    """The header's machine: ``--config`` (preset or file), else the smallest x86-64 preset that
    holds every pfn seen. Raises ``nr_cpus`` (inline config) when the trace names more CPUs.

    Returns (header machine, Config, warnings).
    """
    from buddysim.config import config_from_dict, list_presets, load_preset, resolve_config

    notes: list[str] = []
    if spec is not None:
        config = resolve_config(spec)
        machine: str | dict[str, Any] = spec if spec in list_presets() else config.model_dump(mode="json")
    else:
        candidates = []
        for name in list_presets():
            if name.startswith("x86_64-"):
                cfg = load_preset(name)
                candidates.append((cfg.max_pfn, name, cfg))
        candidates.sort()
        fit = [c for c in candidates if c[0] >= stats.pfn_end]
        _end, name, config = fit[0] if fit else candidates[-1]
        machine = name
        notes.append(
            f"no --config given: using preset {name} ({config.max_pfn} pages); give the captured "
            "machine's config (buddysim import dmesg BOOT.LOG -o machine.toml) for a faithful replay"
        )
    if stats.pfn_end > config.max_pfn:
        notes.append(
            f"the trace names pfns up to {stats.pfn_end - 1:#x}, beyond the machine's memory "
            f"(max_pfn {config.max_pfn:#x}): directed replay counts those as pages it never saw"
        )
    if stats.max_cpu >= config.nr_cpus:
        notes.append(
            f"the trace names CPU {stats.max_cpu} but machine {config.name} has {config.nr_cpus}: "
            f"nr_cpus raised to {stats.max_cpu + 1} (inline machine config in the header)"
        )
        doc = config.model_dump(mode="json")
        doc["nr_cpus"] = stats.max_cpu + 1
        config = config_from_dict(doc, source="ftrace import: machine with nr_cpus raised")
        machine = config.model_dump(mode="json")
    return machine, config, notes


# ---------------------------------------------------------------------------------- import
@dataclass(frozen=True)
class FtraceImport:
    """The result of :func:`import_ftrace`."""

    stats: ImportStats
    header: dict[str, Any]
    notes: tuple[str, ...]
    seconds: float


def _open_output(path: str) -> tuple[IO[bytes], IO[bytes] | None]:
    if path == "-":
        return sys.stdout.buffer, None
    try:
        raw = open(path, "wb")
    except OSError as e:
        raise BadInput(f"cannot write: {e.strerror or e}", where=path) from None
    if path.endswith(".gz"):
        return cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)), raw
    if path.endswith(".xz"):
        return cast(IO[bytes], lzma.LZMAFile(raw, mode="wb")), raw
    return raw, None


def import_ftrace(
    path: str,
    output: str,
    *,
    config: str | None = None,
    progress: bool = False,
    keep_problems: int = 1000,
) -> FtraceImport:
    """Import ftrace/trace-cmd/perf text at ``path`` into the buddysim trace ``output``.

    ``config`` is a preset name or a machine TOML file (default: the smallest x86-64 preset that
    holds the pfns seen, with a warning). Raises :class:`BadInput` when the input cannot be read
    or holds no kmem/page_ref event at all; malformed lines are in ``stats.problems``.
    """
    from buddysim.trace.recorder import dumps_header, make_header

    if config is not None:
        from buddysim.config import resolve_config

        resolve_config(config)  # fail before reading a large input
    t0 = time.perf_counter()
    text, raw, size = open_text(path)
    parser = FtraceParser(path, keep_problems=keep_problems)
    bar = _Progress(progress, raw, size)
    dumps = dumps_event_fast
    written = 0
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        buf: list[str] = []
        try:
            feed = parser.feed
            for lineno, line in enumerate(text, 1):
                ev = feed(lineno, line)
                if ev is not None:
                    buf.append(dumps(ev))
                    if len(buf) >= 4096:
                        tmp.write(("\n".join(buf) + "\n").encode())
                        written += len(buf)
                        buf.clear()
                if not lineno & 0xFFFF:
                    bar.update(lineno)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise BadInput(f"cannot read (corrupt compressed stream?): {e}", where=path) from None
        finally:
            bar.close()
            if text is not None and path != "-":
                text.close()
            if raw is not None:
                raw.close()
        if buf:
            tmp.write(("\n".join(buf) + "\n").encode())
            written += len(buf)
        stats = parser.stats
        stats.events_written = written
        if not stats.events:
            kinds = ", ".join(f"{k} ({n})" for k, n in stats.unknown_events.most_common(5))
            raise BadInput(
                "no kmem or page_ref page events found"
                + (f"; other events: {kinds}" if kinds else "")
                + " (enable them with: trace-cmd record -e kmem:mm_page_alloc -e kmem:mm_page_free ...)",
                where=path,
            )
        machine, _cfg, notes = choose_machine(config, stats)
        header = make_header(machine, source=f"ftrace: {os.path.basename(path)}", meta=stats.meta())
        out, out_raw = _open_output(output)
        try:
            out.write(dumps_header(header).encode() + b"\n")
            tmp.seek(0)
            shutil.copyfileobj(tmp, out, 1 << 20)
        finally:
            if output != "-":
                out.close()
                if out_raw is not None:
                    out_raw.close()
            else:
                out.flush()
    return FtraceImport(stats, dict(header), tuple(notes), time.perf_counter() - t0)
