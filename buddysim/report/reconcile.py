"""The reconciliation report of a directed replay, and the ``--compare buddyinfo`` diff.

A directed replay (buddysim.trace.directed) sorts every recorded event into a class: applied as
written, explained by the capture window or a known tracepoint artefact, or unexplained (the
model's state disagrees with the trace). This module aggregates that once into plain data
(:func:`reconcile_data`), rendered as rich tables (:func:`render_reconcile`) or JSON: events by
class and category, the agreement rate of the model's own choice with the kernel's per order
and migratetype, what was still allocated at the end, the initial-state seeding, and, with a
captured /proc/buddyinfo, the model's final free blocks per zone and order beside it with the
difference (:func:`compare_buddyinfo`).

It also reads the two /proc files a capture comes with (:func:`parse_buddyinfo`,
:func:`parse_zoneinfo`; formats of spec/kernel-allocator.md §10.1 and §10.3, trailing spaces,
6.12 and 7.2 pagesets layouts), reporting unreadable lines as ``file:line: what was expected``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from buddysim.errors import BadInput

if TYPE_CHECKING:
    from buddysim.machine import Machine
    from buddysim.trace.directed import DirectedReplay

__all__ = [
    "BuddyinfoRow",
    "ZoneinfoZone",
    "compare_buddyinfo",
    "looks_like_buddyinfo",
    "looks_like_zoneinfo",
    "parse_buddyinfo",
    "parse_zoneinfo",
    "reconcile_data",
    "render_compare",
    "render_reconcile",
]

_BUDDYINFO = re.compile(r"^Node\s+(\d+),\s*zone\s+(\S+)((?:\s+\d+)+)\s*$")
_ZONEINFO_ZONE = re.compile(r"^Node\s+(\d+),\s*zone\s+(\S+)\s*$")
_ZONEINFO_KV = re.compile(r"^\s+(pages free|spanned|present|managed|nr_free_pages|start_pfn:)\s+(\d+)\s*$")
_ZONEINFO_CPU = re.compile(r"^\s+cpu:\s+(\d+)\s*$")
_ZONEINFO_COUNT = re.compile(r"^\s+count:\s+(\d+)\s*$")


# ---------------------------------------------------------------------------------- /proc parsers
@dataclass(frozen=True, slots=True)
class BuddyinfoRow:
    """One ``Node N, zone NAME c0 c1 ...`` row: free blocks per order."""

    nid: int
    zone: str
    counts: tuple[int, ...]
    line: int


@dataclass
class ZoneinfoZone:
    """What /proc/zoneinfo says about one zone (the fields a replay can use)."""

    nid: int
    zone: str
    line: int
    pages_free: int | None = None
    spanned: int | None = None
    present: int | None = None
    managed: int | None = None
    start_pfn: int | None = None
    #: pcp ``count`` per CPU (pages on that CPU's lists: not in ``pages free``)
    pcp_count: dict[int, int] = field(default_factory=dict)


def looks_like_buddyinfo(text: str) -> bool:
    return any(_BUDDYINFO.match(ln) for ln in text.splitlines()[:8])


def looks_like_zoneinfo(text: str) -> bool:
    return "pages free" in text and bool(re.search(r"^Node\s+\d+,\s*zone\s+\S+\s*$", text, re.M))


def parse_buddyinfo(text: str, path: str = "buddyinfo") -> list[BuddyinfoRow]:
    """Rows of a /proc/buddyinfo capture. Lines not starting with ``Node`` (comments, a capture
    tool's headers) are skipped; a ``Node`` line that is not a row raises :class:`BadInput`
    naming it (``file:line: expected ...``), as does a file without rows."""
    rows: list[BuddyinfoRow] = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s.startswith("Node"):
            continue
        m = _BUDDYINFO.match(line)
        if m is None:
            raise BadInput(
                f"expected a buddyinfo row 'Node N, zone NAME count count ...', got {s[:60]!r}",
                where=f"{path}:{n}",
            )
        rows.append(BuddyinfoRow(int(m[1]), m[2], tuple(int(x) for x in m[3].split()), n))
    if not rows:
        raise BadInput("no buddyinfo rows ('Node N, zone NAME count ...')", where=path)
    return rows


def parse_zoneinfo(text: str, path: str = "zoneinfo") -> list[ZoneinfoZone]:
    """Zones of a /proc/zoneinfo capture with pages free, sizes, start_pfn and pcp counts."""
    zones: list[ZoneinfoZone] = []
    cur: ZoneinfoZone | None = None
    cpu: int | None = None
    for n, line in enumerate(text.splitlines(), 1):
        m = _ZONEINFO_ZONE.match(line)
        if m:
            cur = ZoneinfoZone(int(m[1]), m[2], n)
            zones.append(cur)
            cpu = None
            continue
        if cur is None:
            continue
        m = _ZONEINFO_KV.match(line)
        if m:
            key = m[1].rstrip(":").replace(" ", "_")
            if key == "nr_free_pages":
                if cur.pages_free is None:
                    cur.pages_free = int(m[2])
                continue
            setattr(cur, key, int(m[2]))
            continue
        m = _ZONEINFO_CPU.match(line)
        if m:
            cpu = int(m[1])
            continue
        m = _ZONEINFO_COUNT.match(line)
        if m and cpu is not None:
            cur.pcp_count[cpu] = int(m[1])
    if not zones:
        raise BadInput("no zoneinfo zones ('Node N, zone NAME' then 'pages free N')", where=path)
    return zones


# ---------------------------------------------------------------------------------- compare
def compare_buddyinfo(mm: Machine, rows: Sequence[BuddyinfoRow]) -> dict[str, Any]:
    """The model's free blocks per zone and order beside a captured buddyinfo, with the difference.

    ``diff`` is model minus captured, per order; ``pages`` the same in pages. Zones on one side
    only are listed with the other side empty.
    """
    model = {(z.node, z.name): [a.nr_free for a in z.free_area] for z in mm.zones if z.present_pages}
    captured = {(r.nid, r.zone): list(r.counts) for r in rows}
    out = []
    for key in sorted(set(model) | set(captured), key=lambda k: (k[0], _zone_rank(k[1]))):
        m = model.get(key)
        c = captured.get(key)
        width = max(len(m or ()), len(c or ()))
        mm_ = (m or []) + [0] * (width - len(m or ()))
        cc = (c or []) + [0] * (width - len(c or ()))
        diff = [a - b for a, b in zip(mm_, cc, strict=True)]
        out.append(
            {
                "nid": key[0],
                "zone": key[1],
                "model": m,
                "captured": c,
                "diff": diff if m is not None and c is not None else None,
                "model_pages": sum(n << o for o, n in enumerate(m)) if m is not None else None,
                "captured_pages": sum(n << o for o, n in enumerate(c)) if c is not None else None,
            }
        )
    total_m = sum(z["model_pages"] or 0 for z in out)
    total_c = sum(z["captured_pages"] or 0 for z in out)
    return {"zones": out, "model_pages": total_m, "captured_pages": total_c, "diff_pages": total_m - total_c}


def _zone_rank(name: str) -> int:
    order = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")
    return order.index(name) if name in order else len(order)


# ---------------------------------------------------------------------------------- reconcile
def reconcile_data(d: DirectedReplay, compare: dict[str, Any] | None = None) -> dict[str, Any]:
    """One directed replay as plain data (JSON-able, sorted keys when dumped)."""
    from buddysim.trace.directed import CATEGORIES, CLASSES

    classes = []
    by_cat = dict.fromkeys(CATEGORIES, 0)
    for name, n in sorted(d.classes.items(), key=lambda kv: (CATEGORIES.index(CLASSES[kv[0]][0]), -kv[1])):
        cat, desc = CLASSES[name]
        by_cat[cat] += n
        classes.append({"class": name, "category": cat, "count": n, "description": desc})
    other = d.engine.index - sum(d.classes.values())
    rows = []
    tot = agree = 0
    for (order, mt), (n, a) in sorted(d.agreement.items()):
        rows.append({"order": order, "migratetype": mt, "allocations": n, "agree": a, "rate": _rate(a, n)})
        tot += n
        agree += a
    data: dict[str, Any] = {
        "schema_version": 1,
        "mode": {
            "refill": "trace (mm_page_alloc_zone_locked)" if d.explicit_refill else "model",
            "drain": "trace (mm_page_pcpu_drain)" if d.explicit_drain else "model",
        },
        "events": d.engine.index,
        "classified": sum(d.classes.values()),
        "other_events": other,
        "explained": by_cat["applied"] + by_cat["window"] + by_cat["artefact"],
        "unexplained": by_cat["divergence"],
        "by_category": by_cat,
        "classes": classes,
        "agreement": {
            "allocations": tot,
            "agree": agree,
            "rate": _rate(agree, tot),
            "by_order_migratetype": rows,
            "failed_allocations": d.failed["trace"],
            "failed_model_agrees": d.failed["agree"],
            "disagreements": dict(d.disagree.most_common()),
        },
        "still_allocated": {"blocks": len(d.live), "pages": sum(v[1] for v in d.live.values())},
        "notes": dict(sorted(d.notes.items())),
        "samples": list(d.samples),
        "initial_state": d.initial_report,
    }
    if compare is not None:
        data["compare"] = compare
    return data


def _rate(a: int, n: int) -> float | None:
    return round(a / n, 6) if n else None


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def render_reconcile(data: dict[str, Any], console: Console) -> None:
    """The reconciliation report as text: classes, agreement, still allocated, compare."""
    mode = data["mode"]
    console.print(
        f"[bold]directed replay[/]: {data['events']} events, {data['explained']} explained, "
        f"{data['unexplained']} unexplained (pcp refills: {mode['refill']}; drains: {mode['drain']})"
    )
    t = Table(title="events by class", show_edge=False)
    for col in ("category", "class", "events", "what"):
        t.add_column(col, justify="right" if col == "events" else "left")
    for row in data["classes"]:
        style = "red" if row["category"] == "divergence" else None
        t.add_row(row["category"], row["class"], str(row["count"]), row["description"], style=style)
    if data["other_events"]:
        t.add_row("applied", "other", str(data["other_events"]), "replayed by the engine as written")
    console.print(t)
    ag = data["agreement"]
    console.print(
        f"agreement: the model's own choice matched the kernel's pfn for {ag['agree']} of "
        f"{ag['allocations']} allocations ({_pct(ag['rate'])}); failed allocations {ag['failed_allocations']} "
        f"(model would fail too: {ag['failed_model_agrees']})"
    )
    if ag["by_order_migratetype"]:
        t = Table(show_edge=False)
        for col in ("order", "migratetype", "allocations", "agree", "rate"):
            t.add_column(col, justify="right" if col != "migratetype" else "left")
        for r in ag["by_order_migratetype"]:
            t.add_row(
                str(r["order"]), r["migratetype"], str(r["allocations"]), str(r["agree"]), _pct(r["rate"])
            )
        console.print(t)
    if ag["disagreements"]:
        console.print("disagreements: " + ", ".join(f"{k} {v}" for k, v in ag["disagreements"].items()))
    sa = data["still_allocated"]
    console.print(f"still allocated at the end of the capture: {sa['blocks']} blocks, {sa['pages']} pages")
    if data["notes"]:
        console.print("notes: " + ", ".join(f"{k} {v}" for k, v in data["notes"].items()))
    for s in data["samples"][:10]:
        console.print(f"  {s}", markup=False)
    init = data.get("initial_state")
    if init:
        for line in init.get("lines", []):
            console.print(f"initial state: {line}", markup=False)
    if data.get("compare") is not None:
        render_compare(data["compare"], console)


def render_compare(cmp: dict[str, Any], console: Console) -> None:
    """Model vs captured buddyinfo per zone: three rows (model, captured, diff) per zone."""
    zones = cmp["zones"]
    width = max((len(z["model"] or z["captured"] or []) for z in zones), default=11)
    t = Table(title="free blocks per order: model vs captured /proc/buddyinfo", show_edge=False)
    t.add_column("zone")
    t.add_column("")
    for o in range(width):
        t.add_column(str(o), justify="right")
    t.add_column("pages", justify="right")
    for z in zones:
        name = f"{z['nid']}/{z['zone']}"
        for label, key, pages in (
            ("model", "model", z["model_pages"]),
            ("captured", "captured", z["captured_pages"]),
            ("diff", "diff", None),
        ):
            vals = z[key]
            cells = [str(v) for v in vals] + [""] * (width - len(vals)) if vals is not None else ["-"] * width
            if key == "diff" and vals is not None:
                cells = [f"{v:+d}" if v else "0" for v in vals] + [""] * (width - len(vals))
                pages = (
                    z["model_pages"] - z["captured_pages"]
                    if z["model_pages"] is not None and z["captured_pages"] is not None
                    else None
                )
                pages_text = f"{pages:+d}" if pages is not None else "-"
            else:
                pages_text = str(pages) if pages is not None else "-"
            t.add_row(name if label == "model" else "", label, *cells, pages_text)
    console.print(t)
    console.print(
        f"free pages: model {cmp['model_pages']}, captured {cmp['captured_pages']}, "
        f"difference {cmp['diff_pages']:+d}"
    )
