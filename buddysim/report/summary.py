"""The end-of-run summary: effective config, zones, free blocks per order, findings.

Aggregates once from a Machine (and an Engine when there is one) into plain data
(:func:`summary_data`), rendered as rich tables (:func:`render_text`) or JSON. The
``nr_free_pages`` line counts the pages on the free lists and checks them against the zone
counters: ``nr_free_pages: N  (verified)`` or ``(found M)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from buddysim.findings import Finding, fmt_raw
from buddysim.machine import Machine
from buddysim.mm.mmzone import migratetype_names

__all__ = ["counted_free_pages", "findings_by_kind", "render_text", "summary_data"]


def counted_free_pages(mm: Machine) -> int:
    """Free pages counted from the lists (non-isolated), independent of NR_FREE_PAGES."""
    n = 0
    for z in mm.zones:
        for order, area in enumerate(z.free_area):
            for mt, lst in enumerate(area.free_list):
                if migratetype_names[mt] != "Isolate":
                    n += len(lst) << order
    return n


def findings_by_kind(mm: Machine) -> list[dict[str, Any]]:
    """One row per (kind, function): how many, and the first occurrence kept."""
    first: dict[tuple[str, str], Finding] = {}
    pages: dict[tuple[str, str], int] = {}
    for f in mm.findings:
        key = (f.kind, f.function)
        first.setdefault(key, f)
        pages[key] = pages.get(key, 0) + f.count
    rows = []
    for key, n in sorted(mm.finding_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        f = first.get(key)
        rows.append(
            {
                "kind": key[0],
                "function": key[1],
                "count": n,
                "pages": pages.get(key, 0),
                "first": f.as_dict() if f is not None else None,
            }
        )
    return rows


def summary_data(mm: Machine, extra: dict[str, Any] | None = None, max_findings: int = 50) -> dict[str, Any]:
    counted = counted_free_pages(mm)
    counters = mm.nr_free_pages()
    data: dict[str, Any] = {
        "schema_version": 1,
        "machine": mm.layout.name,
        "refcount": mm.refs.name,
        "kernel": mm.refs.kernel,
        "sites": mm.sites.name,
        "debug_vm": mm.refs.debug_vm.value,
        "totalram_pages": mm.totalram_pages,
        "min_free_kbytes": mm.min_free_kbytes,
        "zones": [
            {
                "node": z.node,
                "zone": z.name,
                "start_pfn": z.zone_start_pfn,
                "spanned": z.spanned_pages,
                "present": z.present_pages,
                "managed": z.managed_pages,
                "nr_free_pages": z.NR_FREE_PAGES,
                "free_blocks_per_order": [a.nr_free for a in z.free_area],
                "pcp_pages": z.pcp_pages(),
                "watermarks": {
                    "min": z._watermark[0],
                    "low": z._watermark[1],
                    "high": z._watermark[2],
                    "promo": z._watermark[3],
                },
            }
            for z in mm.zones
        ],
        "nr_free_pages": counters,
        "nr_free_pages_counted": counted,
        "verified": counted == counters,
        "nr_findings": mm.nr_findings,
        "findings_by_kind": findings_by_kind(mm),
        "findings": [f.as_dict() for f in mm.findings[:max_findings]],
    }
    if extra:
        data.update(extra)
    return data


def _zone_table(data: dict[str, Any]) -> Table:
    t = Table(title="zones", title_justify="left")
    for col in ("node", "zone", "start_pfn", "spanned", "present", "managed", "free", "pcp", "min/low/high"):
        t.add_column(col, justify="right")
    for z in data["zones"]:
        w = z["watermarks"]
        t.add_row(
            str(z["node"]),
            z["zone"],
            f"{z['start_pfn']:#x}",
            str(z["spanned"]),
            str(z["present"]),
            str(z["managed"]),
            str(z["nr_free_pages"]),
            str(z["pcp_pages"]),
            f"{w['min']}/{w['low']}/{w['high']}",
        )
    return t


def _order_table(data: dict[str, Any]) -> Table:
    orders = len(data["zones"][0]["free_blocks_per_order"]) if data["zones"] else 0
    t = Table(title="free blocks per order", title_justify="left")
    t.add_column("zone", justify="left")
    for o in range(orders):
        t.add_column(str(o), justify="right")
    for z in data["zones"]:
        t.add_row(f"{z['node']} {z['zone']}", *(str(n) for n in z["free_blocks_per_order"]))
    return t


def _findings_table(rows: Sequence[dict[str, Any]]) -> Table:
    t = Table(title="findings by kind and kernel function (first occurrence)", title_justify="left")
    t.add_column("kind / function", overflow="fold")
    t.add_column("count", justify="right")
    t.add_column("first occurrence", overflow="fold")
    for r in rows:
        f = r["first"] or {}
        where = [
            f"event {f['event']}" if f.get("event") is not None else "boot",
            f"pfn {f['pfn']:#x}" if f.get("pfn") is not None else "",
            f"order {f['order']}" if f.get("order") is not None else "",
            f"raw {fmt_raw(f.get('raw_before'))}" if f.get("raw_before") is not None else "",
        ]
        chain = " > ".join(f.get("chain", []))
        text = (
            " ".join(x for x in where if x) + (f"\nvia {chain}" if chain else "") + f"\n{f.get('check', '')}"
        )
        if f.get("message"):
            text += f"\n{f['message']}"
        t.add_row(f"{r['kind']}\n{r['function']}", f"{r['count']}\n({r['pages']} pages)", text)
    return t


def render_text(data: dict[str, Any], console: Console, header_lines: Sequence[str] = ()) -> None:
    """Print the summary: effective config first, zones, the verified line, findings."""
    lines = [
        f"machine {data['machine']}  refcount {data['refcount']} ({data['kernel']})  "
        f"sites {data['sites']}  debug_vm {data['debug_vm']}",
        *header_lines,
    ]
    console.print(Text("\n".join(lines), style="bold"))
    console.print(_zone_table(data))
    console.print(_order_table(data))
    verdict = "verified" if data["verified"] else f"found {data['nr_free_pages_counted']}"
    console.print(f"nr_free_pages: {data['nr_free_pages']}  ({verdict})")
    if data["findings_by_kind"]:
        console.print(Group(_findings_table(data["findings_by_kind"])))
        console.print(Text(f"{data['nr_findings']} finding(s)", style="bold red"))
    else:
        console.print(Text("no findings", style="bold green"))
