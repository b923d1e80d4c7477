"""``buddysim boot --compare``: the simulated boot beside a real kernel boot log.

Figures compared (kernel meaning in brackets): present pages per zone (``calculate_node_totalpages``),
spanned pages and start pfn per zone, total present pages (``get_num_physpages``, the second
figure of ``Memory: A/P K available``), and the available memory (``nr_free_pages()`` at
``mem_init``, i.e. after ``memblock_free_all`` and before deferred init, which is why it is much
smaller on kernels with deferred struct page init). Exact figures match or do not; the
available memory also depends on reservations the log may not show, so its difference is
reported in KiB and percent.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from buddysim.machine import Machine
from buddysim.trace.importers.dmesg import parse_boot_figures

__all__ = ["compare_boot", "render_compare"]


def _row(name: str, sim: int | None, log: int | None, exact: bool = True) -> dict[str, Any]:
    if sim is None or log is None:
        verdict = "n/a"
    elif sim == log:
        verdict = "match"
    else:
        verdict = "differs" if exact else f"{(sim - log) / log * 100:+.2f}%" if log else "differs"
    return {
        "figure": name,
        "simulated": sim,
        "log": log,
        "diff": None if sim is None or log is None else sim - log,
        "verdict": verdict,
    }


def compare_boot(mm: Machine, log_path: str) -> dict[str, Any]:
    """Rows of (figure, simulated, log, difference, verdict) and the number that match."""
    fig = parse_boot_figures(log_path)
    rows = []
    for z in mm.zones:
        lz = fig.zone(z.node, z.name)
        if lz is None:
            rows.append(_row(f"node {z.node} {z.name} present", z.present_pages, None))
            continue
        rows.append(_row(f"node {z.node} {z.name} start_pfn", z.zone_start_pfn, lz.start_pfn))
        rows.append(_row(f"node {z.node} {z.name} spanned", z.spanned_pages, lz.spanned))
        rows.append(_row(f"node {z.node} {z.name} present", z.present_pages, lz.present))
    simulated_zones = {(z.node, z.name) for z in mm.zones}
    for lz in fig.zones:
        if (lz.nid, lz.zone) not in simulated_zones and lz.present:
            rows.append(_row(f"node {lz.nid} {lz.zone} present", None, lz.present))
    physpages = sum(z.present_pages for z in mm.zones)
    rows.append(_row("total present pages", physpages, fig.total_present_pages))
    if fig.physpages_kib is not None:
        rows.append(_row("Memory: physpages (KiB)", physpages * 4, fig.physpages_kib))
    rows.append(_row("Memory: available (KiB)", mm.available_at_mem_init * 4, fig.available_kib, exact=False))
    return {
        "log": log_path,
        "kernel_version": fig.kernel_version,
        "deferred_page_init_in_log": fig.deferred_page_init,
        "deferred_page_init_simulated": bool(mm.layout.deferred_struct_page_init),
        "rows": rows,
        "matching": sum(r["verdict"] == "match" for r in rows),
        "compared": sum(r["verdict"] != "n/a" for r in rows),
    }


def render_compare(data: dict[str, Any], console: Console) -> None:
    t = Table(
        title=f"compared with {data['log']} (kernel {data['kernel_version'] or '?'})", title_justify="left"
    )
    for col in ("figure", "simulated", "log", "difference", "verdict"):
        t.add_column(col, justify="right" if col != "figure" else "left")
    for r in data["rows"]:
        style = "green" if r["verdict"] == "match" else "yellow" if r["verdict"] == "n/a" else "red"
        t.add_row(
            r["figure"], _fmt(r["simulated"]), _fmt(r["log"]), _fmt(r["diff"]), f"[{style}]{r['verdict']}[/]"
        )
    console.print(t)
    console.print(f"{data['matching']} of {data['compared']} comparable figures match")


def _fmt(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"
