"""The self-contained HTML report: one file, inline CSS and SVG, no script, no URL.

Renders the data :func:`buddysim.report.series.report_data` aggregated (STYLE.md §8: aggregate
once, render many) with the primitives of :mod:`buddysim.report.svg`. The page opens on an
offline machine and can be attached to a mailing-list reply: nothing is fetched (no CDN, no
font, no ``@import``, not even an ``xmlns`` URL), and every plot reads without JavaScript
(tooltips are SVG ``<title>`` elements). Sections carry stable ids: ``summary``, ``contents``,
``divergence`` (several models), ``zone-<nid>-<name>`` with ``-free-per-order``,
``-migratetype``, ``-fragmentation``, ``-unusable-heat``, ``-pcp`` and ``-managed`` blocks,
``pageblocks``, ``findings`` (with ``findings-table``) and ``data``.

With several models every block shows one chart per model side by side, on the same y scale,
with the first divergence drawn as a red line. Timing figures sit in ``class="timing"`` spans
(the only part of the page that differs between two runs of the same trace).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from buddysim.findings import fmt_raw
from buddysim.report import svg as S

__all__ = ["MAX_HTML_FINDINGS", "render_report"]

#: findings shown in the HTML table (findings.csv has all the machine kept)
MAX_HTML_FINDINGS = 200
#: marks labelled on the time charts (more are drawn unlabelled)
_MAX_MARK_LABELS = 8

_CSS = """
:root{--fg:#1d1d1f;--muted:#666;--line:#d0d0d0;--bg:#fff;--panel:#f6f6f8}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;padding:16px 24px 48px;max-width:1400px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 8px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top}th{background:var(--panel);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:600;color:#fff}
.verdict.clean{background:#1a9850}.verdict.findings{background:#d7191c}
nav ul{columns:3;list-style:none;padding:0;margin:4px 0}nav a{color:#2a5db0;text-decoration:none}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:10px 18px}
figure{margin:0}figcaption{font-size:12px;color:var(--muted)}
svg.chart,svg.map{max-width:100%;height:auto;display:block}
svg text{font:10px system-ui,sans-serif;fill:#333}svg text.axis-title{fill:var(--muted)}
svg text.vlabel{font-size:9px}svg text.ref{font-size:9px;fill:var(--muted)}
svg .plot{fill:none;stroke:#bbb}svg .grid{stroke:#eee}svg .axis{stroke:#999}
.note{color:var(--muted);font-size:12.5px}
.findings-table td{font-size:12.5px}.chain{max-width:420px}
.bar{display:inline-block;vertical-align:middle}
"""


# ---------------------------------------------------------------------------- helpers


def _ceil_nice(v: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5, 5 × 10^k)."""
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v:
            return float(m * mag)
    return float(10 * mag)


def _zone_id(z: dict[str, Any]) -> str:
    return f"zone-{z['node']}-{z['zone']}"


def _time_overlays(frame: S.Frame, run: dict[str, Any], data: dict[str, Any]) -> str:
    """Marks (grey dashed), the first divergence (red) and findings (red triangles)."""
    marks = run["marks"]
    out = [
        S.vlines(
            frame,
            [(ev, label) for label, ev in marks[:200]],
            S.MARK_COLOR,
            labels=len(marks) <= _MAX_MARK_LABELS,
        )
    ]
    div = data.get("divergence")
    if div is not None:
        out.append(
            S.vlines(frame, [(div["event"], "first divergence")], S.DIVERGENCE_COLOR, dash=None, width=1.6)
        )
    finds = {f["event"]: f for f in run["findings"]}
    items = []
    for ev, n in run["finding_events"]:
        f = finds.get(ev)
        desc = f"event {ev}" + (f": {f['kind']} in {f['function']}" if f else "")
        items.append((ev, n, desc))
    out.append(S.tick_markers(frame, items))
    return "".join(out)


def _chart(
    frame: S.Frame,
    body: str,
    title: str,
    *,
    legend_items: Sequence[tuple[str, str]] = (),
    dashed: Sequence[bool] = (),
    y_label: str = "pages",
    y_format: Any = S.fmt_num,
    y_ticks: Sequence[float] | None = None,
    extra_legend: str = "",
    extra_height: int = 0,
) -> str:
    leg, h = S.legend(legend_items, frame.left, frame.height + 4, frame.pw, dashed=dashed)
    total_h = frame.height + (h + 6 if legend_items else 0) + extra_height
    if extra_legend:
        leg += extra_legend
    axes = S.axes(frame, y_label=y_label, y_format=y_format, y_ticks=y_ticks)
    return S.svg(frame.width, total_h, axes + body + leg, title)


def _figures(cells: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="cols">'
        + "".join(f"<figure>{svg}<figcaption>{S.esc(cap)}</figcaption></figure>" for cap, svg in cells)
        + "</div>"
    )


def _block(block_id: str, title: str, note: str, figures: str) -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<div class="block" id="{S.esc(block_id)}"><h3>{S.esc(title)}</h3>{note_html}{figures}</div>'


def _zones_of(data: dict[str, Any]) -> list[tuple[int, str]]:
    keys: list[tuple[int, str]] = []
    for run in data["runs"]:
        for z in run["zones"]:
            k = (z["node"], z["zone"])
            if k not in keys:
                keys.append(k)
    return keys


def _zone(run: dict[str, Any], key: tuple[int, str]) -> dict[str, Any] | None:
    for z in run["zones"]:
        if (z["node"], z["zone"]) == key:
            return z
    return None


def _frame(data: dict[str, Any], y0: float, y1: float) -> S.Frame:
    return S.Frame(0, max(1, data["events"]), y0, y1)


# ---------------------------------------------------------------------------- zone charts


def _free_per_order(data: dict[str, Any], key: tuple[int, str]) -> str:
    runs = [(r, _zone(r, key)) for r in data["runs"]]
    ymax = 0
    for r, z in runs:
        if z is None:
            continue
        for i in range(len(r["sample_events"])):
            ymax = max(ymax, sum(layer[i] for layer in z["free_pages_per_order"]))
    frame = _frame(data, 0, _ceil_nice(ymax))
    cells = []
    for r, z in runs:
        if z is None:
            continue
        layers = z["free_pages_per_order"]
        names = [f"order {o}" for o in range(len(layers))]
        colors = [S.ORDER_COLORS[min(o, len(S.ORDER_COLORS) - 1)] for o in range(len(layers))]
        body = S.stacked_area(frame, r["sample_events"], layers, colors, names) + _time_overlays(
            frame, r, data
        )
        used = [(f"o{o}", colors[o]) for o in range(len(layers)) if any(layers[o])]
        cells.append(
            (r["model"], _chart(frame, body, f"{r['model']}: free pages per order", legend_items=used))
        )
    return _figures(cells)


def _per_migratetype(data: dict[str, Any], key: tuple[int, str]) -> str:
    runs = [(r, _zone(r, key)) for r in data["runs"]]
    mts = data["migratetypes"]
    ymax = max(
        (max(v) for _r, z in runs if z is not None for v in z["free_pages_per_migratetype"].values() if v),
        default=0,
    )
    frame = _frame(data, 0, _ceil_nice(ymax))
    cells = []
    for r, z in runs:
        if z is None:
            continue
        body, items = "", []
        for i, mt in enumerate(mts):
            ys = z["free_pages_per_migratetype"][mt]
            if any(ys):
                body += S.line(frame, r["sample_events"], ys, S.MIGRATETYPE_COLORS[i], mt)
                items.append((mt, S.MIGRATETYPE_COLORS[i]))
        body += _time_overlays(frame, r, data)
        cells.append(
            (r["model"], _chart(frame, body, f"{r['model']}: nr_free per migratetype", legend_items=items))
        )
    return _figures(cells)


def _fragmentation(data: dict[str, Any], key: tuple[int, str]) -> str:
    frame = _frame(data, -1, 1)
    cells = []
    for r in data["runs"]:
        z = _zone(r, key)
        if z is None:
            continue
        body, items, dashed = "", [], []
        body += S.hline(frame, 0.5, "#999999", "extfrag_threshold 500")
        for k, o in enumerate(data["index_orders"]):
            color = S.CPU_COLORS[k % len(S.CPU_COLORS)]
            u = [v / 1000 for v in z["unusable_index"][str(o)]]
            f = [v / 1000 for v in z["extfrag_index"][str(o)]]
            body += S.line(frame, r["sample_events"], u, color, f"unusable free space index, order {o}")
            body += S.line(frame, r["sample_events"], f, color, f"fragmentation index, order {o}", dash="4 2")
            items += [(f"unusable o{o}", color), (f"extfrag o{o}", color)]
            dashed += [False, True]
        body += _time_overlays(frame, r, data)
        cells.append(
            (
                r["model"],
                _chart(
                    frame,
                    body,
                    f"{r['model']}: fragmentation indices",
                    legend_items=items,
                    dashed=dashed,
                    y_label="index",
                    y_ticks=[-1, -0.5, 0, 0.5, 1],
                    y_format=lambda v: f"{v:g}",
                ),
            )
        )
    return _figures(cells)


def _unusable_heat(data: dict[str, Any], key: tuple[int, str]) -> str:
    cells = []
    frame = S.Frame(0, max(1, data["events"]), 0, 1, height=150)
    for r in data["runs"]:
        z = _zone(r, key)
        if z is None:
            continue
        rows = [[v / 1000 for v in per] for per in z["unusable_index_per_order"]]
        labels = [f"o{o}" for o in range(len(rows))]
        body = S.heat_strip(
            frame, r["sample_events"], rows, labels, name=f"{r['model']}: unusable free space index by order"
        )
        body += _time_overlays(frame, r, data)
        bar = S.gradient_bar(
            frame.left + 10, frame.height + 6, 160, "0", "1", "unusable share of free memory"
        )
        axes = S.axes(frame, y_label="order", y_ticks=[])
        cells.append(
            (
                r["model"],
                S.svg(frame.width, frame.height + 20, axes + body + bar, f"{r['model']}: unusable index"),
            )
        )
    return _figures(cells)


def _pcp(data: dict[str, Any], key: tuple[int, str]) -> str:
    runs = [(r, _zone(r, key)) for r in data["runs"]]
    ymax = max((max(c) for _r, z in runs if z is not None for c in z["pcp_pages_per_cpu"] if c), default=0)
    ncpu = data["nr_cpus"]
    cells = []
    for r, z in runs:
        if z is None:
            continue
        per_cpu = z["pcp_pages_per_cpu"]
        if ncpu <= len(S.CPU_COLORS):
            frame = _frame(data, 0, _ceil_nice(ymax))
            body, items = "", []
            for c, ys in enumerate(per_cpu):
                body += S.line(frame, r["sample_events"], ys, S.CPU_COLORS[c], f"cpu {c}")
                items.append((f"cpu{c}", S.CPU_COLORS[c]))
            body += _time_overlays(frame, r, data)
            cells.append(
                (r["model"], _chart(frame, body, f"{r['model']}: pcp pages per CPU", legend_items=items))
            )
        else:
            frame = S.Frame(0, max(1, data["events"]), 0, 1, height=150)
            rows = [[v / ymax if ymax else 0 for v in ys] for ys in per_cpu]
            body = S.heat_strip(frame, r["sample_events"], rows, [f"cpu{c}" for c in range(ncpu)])
            body += _time_overlays(frame, r, data)
            bar = S.gradient_bar(frame.left + 10, frame.height + 6, 160, "0", S.fmt_num(ymax), "pcp pages")
            axes = S.axes(frame, y_label="cpu", y_ticks=[])
            cells.append((r["model"], S.svg(frame.width, frame.height + 20, axes + body + bar, "pcp pages")))
    return _figures(cells)


def _managed(data: dict[str, Any], key: tuple[int, str]) -> str:
    runs = [(r, _zone(r, key)) for r in data["runs"]]
    ymax = max((max(z["managed"] + z["nr_free_pages"]) for _r, z in runs if z is not None), default=0)
    frame = _frame(data, 0, _ceil_nice(ymax))
    cells = []
    for r, z in runs:
        if z is None:
            continue
        xs = r["sample_events"]
        w = z["watermarks"]
        series = [
            ("managed", z["managed"], "#333333", None),
            ("nr_free_pages", z["nr_free_pages"], "#1f77b4", None),
            ("high wmark", w["high"], "#9467bd", "2 2"),
            ("low wmark", w["low"], "#8c564b", "2 2"),
            ("min wmark", w["min"], "#7f7f7f", "2 2"),
        ]
        body = "".join(
            S.line(frame, xs, ys, color, name, dash=dash, step=True) for name, ys, color, dash in series
        )
        body += _time_overlays(frame, r, data)
        items = [(name, color) for name, _ys, color, _d in series]
        cells.append(
            (
                r["model"],
                _chart(
                    frame,
                    body,
                    f"{r['model']}: managed vs free",
                    legend_items=items,
                    dashed=[d is not None for *_x, d in series],
                ),
            )
        )
    return _figures(cells)


# ---------------------------------------------------------------------------- pageblock maps

_MAP_WIDTH = 540


def _cell_color(mt: int, free: float, reserved: float) -> str:
    if reserved >= 0.999:
        return S.RESERVED_COLOR
    base = S.MIGRATETYPE_COLORS[mt] if 0 <= mt < len(S.MIGRATETYPE_COLORS) else "#000000"
    # quantised to 8 shades so equal cells merge: full colour = allocated, pale = free
    return S.mix(base, "#ffffff", round(free * 7) / 7 * 0.85)


def _map_svg(z: dict[str, Any], data: dict[str, Any], title: str) -> str:
    n = len(z["migratetype"])
    if n == 0:
        return S.svg(_MAP_WIDTH, 20, '<text x="0" y="14">no pageblocks</text>', title, css_class="map")
    cols = min(n, 64)
    cell = max(4, min(28, _MAP_WIDTH // cols))
    rows = -(-n // cols)
    per = z["pageblocks_per_cell"]
    nr_pb_pages = 1 << data["pageblock_order"]
    mts = data["migratetypes"]
    titled = n <= 1024
    groups: dict[str, list[str]] = {}
    out = []
    for c in range(n):
        x, y = (c % cols) * cell, (c // cols) * cell
        color = _cell_color(z["migratetype"][c], z["free_fraction"][c], z["reserved_fraction"][c])
        if titled:
            pfn = z["first_pfn"] + c * per * nr_pb_pages
            mt = z["migratetype"][c]
            tip = (
                f"pfn {pfn:#x}+{per * nr_pb_pages:#x}: {mts[mt]}"
                + (f" ({z['majority_share'][c]:.0%} of {per} pageblocks)" if per > 1 else "")
                + f", {z['free_fraction'][c]:.0%} free, {z['reserved_fraction'][c]:.0%} reserved"
            )
            out.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{color}">'
                f"<title>{S.esc(tip)}</title></rect>"
            )
        else:
            groups.setdefault(color, []).append(f"M{x} {y}h{cell - 1}v{cell - 1}h{1 - cell}z")
    for color, parts in sorted(groups.items()):
        out.append(f'<path d="{"".join(parts)}" fill="{color}"/>')
    return S.svg(cols * cell, rows * cell, "".join(out), title, css_class="map")


def _map_legend(data: dict[str, Any]) -> str:
    items = [(mt, S.MIGRATETYPE_COLORS[i]) for i, mt in enumerate(data["migratetypes"])]
    items.append(("reserved / hole", S.RESERVED_COLOR))
    leg, h = S.legend(items, 0, 2, _MAP_WIDTH)
    shades = "".join(
        f'<rect x="{70 + k * 16}" y="{h + 8}" width="15" height="10" fill="{S.mix(S.MIGRATETYPE_COLORS[1], "#ffffff", k / 7 * 0.85)}"/>'
        for k in range(8)
    )
    shades += (
        f'<text x="64" y="{h + 17}" text-anchor="end">allocated</text><text x="202" y="{h + 17}">free</text>'
    )
    return S.svg(_MAP_WIDTH, h + 24, leg + shades, "pageblock map legend", css_class="map")


def _pageblocks(data: dict[str, Any]) -> str:
    out = [
        '<section id="pageblocks"><h2>Pageblock map</h2>',
        '<p class="note">One cell per pageblock (',
        str(1 << data["pageblock_order"]),
        " pages), coloured by its migratetype and shaded by the share of its pages on the buddy free "
        "lists; zones with many pageblocks are binned (majority migratetype, pooled free share). "
        "At the end of the trace and at each <code>mark</code>.</p>",
        _map_legend(data),
    ]
    labels: list[tuple[str, int]] = []
    for run in data["runs"]:
        for m in run["pageblock_maps"]:
            if (m["label"], m["event"]) not in labels:
                labels.append((m["label"], m["event"]))
    # the end first, then the marks in trace order
    labels.sort(key=lambda le: (le[0] != "end" or le[1] != data["events"], le[1]))
    for k, (label, event) in enumerate(labels):
        out.append(f'<div class="block" id="pageblocks-{k}"><h3>{S.esc(label)} (event {event})</h3>')
        for key in _zones_of(data):
            cells = []
            for run in data["runs"]:
                m = next(
                    (m for m in run["pageblock_maps"] if (m["label"], m["event"]) == (label, event)), None
                )
                if m is None:
                    continue
                z = next((z for z in m["zones"] if (z["node"], z["zone"]) == key), None)
                if z is None:
                    continue
                counts = ", ".join(
                    f"{data['migratetypes'][i]} {n}"
                    for i, n in enumerate(z["pageblocks_per_migratetype"])
                    if n
                )
                per = z["pageblocks_per_cell"]
                cap = (
                    f"{run['model']}: node {key[0]} {key[1]}, {z['pageblocks']} pageblocks"
                    + (f" ({per} per cell)" if per > 1 else "")
                    + f"; {counts}; {z['free_pages']} pages free"
                )
                cells.append((cap, _map_svg(z, data, f"{run['model']} {key[1]} pageblocks at {label}")))
            if cells:
                out.append(_figures(cells))
        out.append("</div>")
    skipped = sum(max(0, len(r["marks"]) - (len(r["pageblock_maps"]) - 1)) for r in data["runs"])
    if skipped:
        out.append(
            f'<p class="note">{skipped} mark(s) not mapped (before the handoff, or past the first '
            "maps kept): see marks.csv.</p>"
        )
    out.append("</section>")
    return "".join(out)


# ---------------------------------------------------------------------------- findings


def _findings(data: dict[str, Any]) -> str:
    out = ['<section id="findings"><h2>Findings</h2>']
    ymax = max((max(r["nr_findings"]) for r in data["runs"] if r["nr_findings"]), default=0)
    frame = _frame(data, 0, _ceil_nice(ymax))
    cells = []
    for r in data["runs"]:
        body = S.line(
            frame, r["sample_events"], r["nr_findings"], S.FINDING_COLOR, "findings so far", step=True
        )
        body += _time_overlays(frame, r, data)
        cells.append(
            (
                f"{r['model']}: {r['nr_findings_total']} finding(s)",
                _chart(
                    frame,
                    body,
                    f"{r['model']}: findings over time",
                    y_label="findings",
                    y_ticks=[v for v in S.nice_ticks(frame.y0, frame.y1, 4) if float(v).is_integer()],
                ),
            )
        )
    out.append(_figures(cells))
    rows = [f for r in data["runs"] for f in r["findings"]]
    rows.sort(key=lambda f: f["event"] if f["event"] is not None else -1)
    total = sum(r["nr_findings_total"] for r in data["runs"])
    if not rows:
        out.append('<p id="findings-none">No findings: every check held.</p>')
    else:
        out.append(
            '<table id="findings-table" class="findings-table"><thead><tr><th class="num">event</th>'
            '<th>model</th><th>kind</th><th>function</th><th class="num">pfn</th><th class="num">order</th>'
            "<th>raw refcount (before → after)</th><th>call-site chain</th><th>check / message</th></tr></thead><tbody>"
        )
        for f in rows[:MAX_HTML_FINDINGS]:
            raw = fmt_raw(f["raw_before"]) + (
                f" → {fmt_raw(f['raw_after'])}" if f["raw_after"] is not None else ""
            )
            msg = f["check"] + (f": {f['message']}" if f["message"] else "")
            event = "-" if f["event"] is None else str(f["event"])
            pfn = "-" if f["pfn"] is None else f"{f['pfn']:#x}"
            order = "-" if f["order"] is None else str(f["order"])
            chain = " > ".join(f["chain"]) or "-"
            out.append(
                "<tr>"
                f'<td class="num">{S.esc(event)}</td>'
                f"<td>{S.esc(f['model'])}</td><td>{S.esc(f['kind'])}</td><td><code>{S.esc(f['function'])}</code></td>"
                f'<td class="num mono">{S.esc(pfn)}</td><td class="num">{S.esc(order)}</td>'
                f'<td class="mono">{S.esc(raw)}</td><td class="chain mono">{S.esc(chain)}</td>'
                f"<td>{S.esc(msg)}</td></tr>"
            )
        out.append("</tbody></table>")
        if total > min(len(rows), MAX_HTML_FINDINGS):
            out.append(
                f'<p class="note">Showing {min(len(rows), MAX_HTML_FINDINGS)} of {total} findings; '
                "findings.csv lists every finding the machine kept.</p>"
            )
    out.append("</section>")
    return "".join(out)


# ---------------------------------------------------------------------------- page


def _summary(data: dict[str, Any], timing: dict[str, Any]) -> str:
    runs = data["runs"]
    n = sum(r["nr_findings_total"] for r in runs)
    verdict = (
        '<span class="verdict clean">clean</span>'
        if data["verdict"] == "clean"
        else f'<span class="verdict findings">{n} finding(s)</span>'
    )
    models = "; ".join(
        f"{r['model']} ({r['kernel']}, sites {r['sites']}): "
        + ("clean" if r["verdict"] == "clean" else f"{r['nr_findings_total']} finding(s)")
        for r in runs
    )
    sampling = f"{len(runs[0]['sample_events'])} points, every {data['every']} events" + (
        f" (interval doubled {runs[0]['decimations']}× to stay under {data['max_points']} points)"
        if runs[0]["decimations"]
        else ""
    )
    rate = timing.get("events_per_second")
    rows = [
        ("trace", f"<code>{S.esc(data['trace'])}</code>"),
        ("seed / source", S.esc(f"{data['seed']} / {data['source'] or '-'}")),
        (
            "machine",
            S.esc(
                f"{data['machine']}: {data['nr_cpus']} CPUs, MAX_PAGE_ORDER {data['max_page_order']}, "
                f"pageblock_order {data['pageblock_order']}"
            ),
        ),
        ("models", S.esc(models)),
        ("events", S.esc(f"{data['events']:,}")),
        ("sampling", S.esc(sampling)),
        (
            "run time",
            f'<span class="timing">{timing.get("seconds", 0):.2f} s'
            + (f", {rate:,.0f} events/s" if rate else "")
            + "</span>",
        ),
        ("verdict", verdict),
    ]
    if data["divergence"] is not None:
        d = data["divergence"]
        rows.append(
            (
                "first divergence",
                f'<a href="#divergence">event {d["event"]} (line {d["line"]}, {S.esc(d["op"])})</a>',
            )
        )
    out = ['<header id="summary"><h1>buddysim report</h1><table class="meta">']
    out += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    # zone state at the end, per model: used share on the one gradient
    out.append(
        '<table class="zones"><thead><tr><th>model</th><th>zone</th><th class="num">managed</th>'
        '<th class="num">free at end</th><th class="num">pcp at end</th><th>in use</th></tr></thead><tbody>'
    )
    for r in runs:
        for z in r["zones"]:
            managed, free = z["managed"][-1], z["nr_free_pages"][-1]
            pcp = sum(c[-1] for c in z["pcp_pages_per_cpu"])
            used = 1 - free / managed if managed else 0.0
            bar = (
                f'<svg class="bar" viewBox="0 0 100 10" width="100" height="10" role="img" aria-label="in use">'
                f'<rect x="0" y="0" width="100" height="10" fill="#eeeeee"/>'
                f'<rect x="0" y="0" width="{used * 100:.1f}" height="10" fill="{S.gradient(used)}"/></svg>'
            )
            out.append(
                f"<tr><td>{S.esc(r['model'])}</td>"
                f'<td><a href="#{_zone_id(z)}">node {z["node"]} {S.esc(z["zone"])}</a></td>'
                f'<td class="num">{managed}</td><td class="num">{free}</td><td class="num">{pcp}</td>'
                f"<td>{bar} {used:.0%}</td></tr>"
            )
    out.append("</tbody></table></header>")
    return "".join(out)


def _contents(data: dict[str, Any]) -> str:
    links = []
    if len(data["runs"]) > 1:
        links.append(("divergence", "first divergence"))
    for key in _zones_of(data):
        links.append((f"zone-{key[0]}-{key[1]}", f"node {key[0]}, zone {key[1]}"))
    links += [("pageblocks", "pageblock map"), ("findings", "findings"), ("data", "data files")]
    items = "".join(f'<li><a href="#{S.esc(i)}">{S.esc(t)}</a></li>' for i, t in links)
    return f'<nav id="contents"><ul>{items}</ul></nav>'


def _divergence(data: dict[str, Any]) -> str:
    if len(data["runs"]) < 2:
        return ""
    d = data["divergence"]
    out = ['<section id="divergence"><h2>First divergence</h2>']
    if d is None:
        out.append(
            f"<p>The models ({S.esc(', '.join(data['models']))}) agree on every observable result "
            "(values returned, blocks freed, findings) of every event.</p>"
        )
    else:
        out.append(
            f"<p>At event <b>{d['event']}</b> (trace line {d['line']}, <code>{S.esc(d['op'])}</code>) the "
            "models' observable results differ; the red line on every chart marks it.</p>"
            "<table><thead><tr><th>model</th><th>value</th><th>blocks freed</th><th>findings</th></tr></thead><tbody>"
        )
        for name, obs in d["models"].items():
            out.append(
                f'<tr><td>{S.esc(name)}</td><td class="mono">{S.esc(obs["value"])}</td>'
                f'<td class="mono">{S.esc(obs["freed"])}</td>'
                f"<td>{S.esc('; '.join(obs['findings']) or '-')}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _zone_section(data: dict[str, Any], key: tuple[int, str]) -> str:
    zid = f"zone-{key[0]}-{key[1]}"
    orders = ", ".join(str(o) for o in data["index_orders"])
    blocks = [
        _block(
            f"{zid}-free-per-order",
            "Free pages per order",
            "Pages in free blocks of each order (blocks × 2<sup>order</sup>), stacked: the top is nr_free_pages.",
            _free_per_order(data, key),
        ),
        _block(
            f"{zid}-migratetype",
            "nr_free per migratetype",
            "Free pages on each migratetype's lists.",
            _per_migratetype(data, key),
        ),
        _block(
            f"{zid}-fragmentation",
            f"Fragmentation indices at order {orders}",
            "Unusable free space index (solid: share of free memory in blocks too small) and "
            "fragmentation index (dashed: near 0 a failure would be lack of memory, near 1 "
            "fragmentation; −1 the allocation would succeed), as /sys/kernel/debug/extfrag prints them ÷1000.",
            _fragmentation(data, key),
        ),
        _block(
            f"{zid}-unusable-heat",
            "Unusable free space index, every order",
            "Each row an order, each cell the worst value of its time slice.",
            _unusable_heat(data, key),
        ),
        _block(
            f"{zid}-pcp",
            "pcp pages per CPU",
            "Pages on each CPU's per-cpu lists (not counted as free).",
            _pcp(data, key),
        ),
        _block(
            f"{zid}-managed",
            "Managed vs free",
            "managed_pages, NR_FREE_PAGES and the watermarks.",
            _managed(data, key),
        ),
    ]
    return f'<section id="{S.esc(zid)}" class="zone"><h2>Node {key[0]}, zone {S.esc(key[1])}</h2>{"".join(blocks)}</section>'


def _data_section(data: dict[str, Any], data_files: Sequence[str], command: str) -> str:
    files = "".join(f"<li><code>{S.esc(f)}</code></li>" for f in data_files)
    return (
        '<section id="data"><h2>Data files</h2>'
        "<p>The numbers behind every plot (the same samples, every order and migratetype), as "
        "CSV and JSON:</p>"
        f"<ul>{files}</ul>"
        f"<p>Produced by <code>{S.esc(command)}</code>.</p></section>"
    )


def render_report(
    data: dict[str, Any],
    *,
    timing: dict[str, Any] | None = None,
    data_files: Sequence[str] = (),
    command: str = "buddysim report",
    version: str = "",
) -> str:
    """The whole page as one string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>buddysim report: {S.esc(data['trace'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        _summary(data, timing or {}),
        _contents(data),
        _divergence(data),
        *(_zone_section(data, key) for key in _zones_of(data)),
        _pageblocks(data),
        _findings(data),
        _data_section(data, data_files, command),
        f'<footer class="note">buddysim {S.esc(version)}: schema {data["schema_version"]}.</footer>',
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
