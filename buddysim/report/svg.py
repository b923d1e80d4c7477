"""SVG chart primitives for the HTML report: frames, axes, stacked areas, lines, markers, heat strips.

Everything here returns SVG text (no HTML page, no data gathering): the report assembles the
pieces (:mod:`buddysim.report.html`) from the plain series :mod:`buddysim.report.series` built.
The output is static inline SVG, readable without JavaScript and without network access; native
``<title>`` elements give hover tooltips. All text and attribute values go through :func:`esc`.

Size is kept in check by drawing at most one point per pixel column: a line shows, per column,
the min..max envelope of the samples falling into it (spikes survive); a stacked area shows the
last sample of each column (a real state, so the stack height is a real total); a heat strip
shows the maximum of each cell. Stacked areas are painted as nested cumulative areas (largest
first), so each layer needs only its top edge. Cells of equal colour are merged into one path.

Colours: one green→orange→red :func:`gradient` for every proportion (STYLE.md §8); categories
(orders, migratetypes, CPUs) use fixed palettes without pure green, orange or red.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "CPU_COLORS",
    "DIVERGENCE_COLOR",
    "FINDING_COLOR",
    "MIGRATETYPE_COLORS",
    "ORDER_COLORS",
    "Frame",
    "axes",
    "column_buckets",
    "esc",
    "fmt_num",
    "gradient",
    "gradient_bar",
    "heat_strip",
    "hline",
    "legend",
    "line",
    "mix",
    "nice_ticks",
    "stacked_area",
    "svg",
    "tick_markers",
    "vlines",
]

#: free pages per order 0..10 (viridis samples, dark = small orders)
ORDER_COLORS = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
    "#fde725",
    "#fde725",
)
#: Unmovable, Movable, Reclaimable, HighAtomic, CMA, Isolate
MIGRATETYPE_COLORS = ("#8c564b", "#1f77b4", "#9467bd", "#e377c2", "#17becf", "#7f7f7f")
CPU_COLORS = ("#1f77b4", "#8c564b", "#9467bd", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79")
FINDING_COLOR = "#d62728"
DIVERGENCE_COLOR = "#d62728"
MARK_COLOR = "#555555"
RESERVED_COLOR = "#3a3a3a"

_GREEN = (26, 152, 80)
_ORANGE = (253, 141, 60)
_RED = (215, 25, 28)


def esc(text: object) -> str:
    """Escape text for an SVG/HTML text node or a double-quoted attribute."""
    return escape(str(text), quote=True)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def mix(color: str, other: str, t: float) -> str:
    """``color`` moved a fraction ``t`` (0..1) of the way towards ``other``."""
    a, b = _rgb(color), _rgb(other)
    return _hex([x + (y - x) * t for x, y in zip(a, b, strict=True)])


def gradient(p: float) -> str:
    """The report's one proportion scale: 0 green, 0.5 orange, 1 red (clamped)."""
    p = 0.0 if p != p else max(0.0, min(1.0, p))  # NaN -> 0
    if p <= 0.5:
        lo, hi, t = _GREEN, _ORANGE, p / 0.5
    else:
        lo, hi, t = _ORANGE, _RED, (p - 0.5) / 0.5
    return _hex([x + (y - x) * t for x, y in zip(lo, hi, strict=True)])


def fmt_num(v: float) -> str:
    """Compact axis numbers: 950, 1.5k, 12k, 3.2M, 0.25."""
    a = abs(v)
    if a >= 1e9:
        s, d = v / 1e9, "G"
    elif a >= 1e6:
        s, d = v / 1e6, "M"
    elif a >= 1e4:
        s, d = v / 1e3, "k"
    elif a >= 1 or a == 0:
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    else:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    text = f"{s:.1f}".removesuffix(".0")
    return text + d


def _f(v: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0``."""
    return f"{v:.1f}".removesuffix(".0")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2, 5 × 10^k steps) covering ``[lo, hi]``."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


@dataclass(frozen=True)
class Frame:
    """The plot area of one chart: data ranges mapped to pixels (y grows upwards)."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int = 540
    height: int = 170
    left: int = 50
    right: int = 12
    top: int = 14
    bottom: int = 26

    @property
    def pw(self) -> int:
        return self.width - self.left - self.right

    @property
    def ph(self) -> int:
        return self.height - self.top - self.bottom

    def sx(self, x: float) -> float:
        span = self.x1 - self.x0 or 1
        return self.left + (x - self.x0) / span * self.pw

    def sy(self, y: float) -> float:
        span = self.y1 - self.y0 or 1
        y = max(self.y0, min(self.y1, y))
        return self.top + self.ph - (y - self.y0) / span * self.ph

    def column(self, x: float) -> int:
        """The pixel column (0..pw-1) a data x falls into."""
        span = self.x1 - self.x0 or 1
        return max(0, min(self.pw - 1, int((x - self.x0) / span * self.pw)))


def column_buckets(
    frame: Frame, xs: Sequence[float], columns: int | None = None
) -> list[tuple[int, int, int]]:
    """Group consecutive samples by pixel column: ``(column, first, last)`` sample indices."""
    out: list[tuple[int, int, int]] = []
    n = columns or frame.pw
    span = frame.x1 - frame.x0 or 1
    for i, x in enumerate(xs):
        c = max(0, min(n - 1, int((x - frame.x0) / span * n)))
        if out and out[-1][0] == c:
            out[-1] = (c, out[-1][1], i)
        else:
            out.append((c, i, i))
    return out


def _points(pts: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x},{y}" for x, y in _simplify(pts))


def _simplify(pts: Sequence[tuple[float, float]]) -> list[tuple[str, str]]:
    """Rounded coordinates without repeated points or the middle of horizontal/vertical runs
    (flat stretches and steps cost two points, not one per pixel)."""
    out: list[tuple[str, str]] = []
    for x, y in pts:
        p = (_f(x), _f(y))
        if out and out[-1] == p:
            continue
        if len(out) >= 2:
            a, b = out[-2], out[-1]
            if (a[1] == b[1] == p[1]) or (a[0] == b[0] == p[0]):
                out[-1] = p
                continue
        out.append(p)
    return out


def stacked_area(
    frame: Frame,
    xs: Sequence[float],
    layers: Sequence[Sequence[float]],
    colors: Sequence[str],
    names: Sequence[str],
) -> str:
    """Layers stacked bottom (first) to top; one sample per pixel column (the last)."""
    if not xs or not layers:
        return ""
    picks = [last for _c, _first, last in column_buckets(frame, xs)]
    px = [frame.sx(xs[i]) for i in picks]
    cum = [0.0] * len(picks)
    tops: list[list[float]] = []
    for layer in layers:
        cum = [c + layer[i] for c, i in zip(cum, picks, strict=True)]
        tops.append(cum)
    base = frame.sy(frame.y0)
    out = []
    for k in range(len(layers) - 1, -1, -1):
        if not any(layers[k][i] for i in picks):
            continue
        edge = [(x, frame.sy(y)) for x, y in zip(px, tops[k], strict=True)]
        if len(edge) == 1:
            edge.append((edge[0][0] + 1, edge[0][1]))
        pts = [(edge[0][0], base), *edge, (edge[-1][0], base)]
        out.append(
            f'<polygon points="{_points(pts)}" fill="{esc(colors[k])}"><title>{esc(names[k])}</title></polygon>'
        )
    return "".join(out)


def line(
    frame: Frame,
    xs: Sequence[float],
    ys: Sequence[float],
    color: str,
    name: str,
    *,
    dash: str | None = None,
    width: float = 1.4,
    step: bool = False,
) -> str:
    """A series as a polyline; per pixel column, the min..max envelope of its samples.

    ``step``: draw as a staircase (the value holds until the next sample).
    """
    if not xs:
        return ""
    pts: list[tuple[float, float]] = []
    for _c, first, last in column_buckets(frame, xs):
        x = frame.sx(xs[last])
        if first == last:
            y = frame.sy(ys[first])
            if step and pts:
                pts.append((x, pts[-1][1]))
            pts.append((x, y))
            continue
        chunk = ys[first : last + 1]
        lo, hi = frame.sy(min(chunk)), frame.sy(max(chunk))
        if step and pts:
            pts.append((frame.sx(xs[first]), pts[-1][1]))
        # enter at the first value, sweep the envelope, leave at the last
        pts.extend([(x, frame.sy(chunk[0])), (x, lo), (x, hi), (x, frame.sy(chunk[-1]))])
    if len(pts) == 1:
        pts.append((pts[0][0] + 1, pts[0][1]))
    dash_attr = f' stroke-dasharray="{esc(dash)}"' if dash else ""
    return (
        f'<polyline points="{_points(pts)}" fill="none" stroke="{esc(color)}" stroke-width="{width}"'
        f'{dash_attr} stroke-linejoin="round"><title>{esc(name)}</title></polyline>'
    )


def hline(frame: Frame, y: float, color: str, label: str, *, dash: str = "4 3") -> str:
    """A horizontal reference line (a threshold) with its label at the right end."""
    py = frame.sy(y)
    x0, x1 = frame.left, frame.left + frame.pw
    return (
        f'<line x1="{x0}" y1="{_f(py)}" x2="{x1}" y2="{_f(py)}" stroke="{esc(color)}" stroke-dasharray="{dash}">'
        f"<title>{esc(label)}</title></line>"
        f'<text x="{x1 - 2}" y="{_f(py - 3)}" text-anchor="end" class="ref">{esc(label)}</text>'
    )


def vlines(
    frame: Frame,
    items: Sequence[tuple[float, str]],
    color: str,
    *,
    dash: str | None = "3 3",
    labels: bool = True,
    width: float = 1.0,
) -> str:
    """Vertical lines at event ``x`` (marks, the first divergence), labelled at the top."""
    out = []
    top, bottom = frame.top, frame.top + frame.ph
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    for x, label in items:
        if not frame.x0 <= x <= frame.x1:
            continue
        px = _f(frame.sx(x))
        out.append(
            f'<line x1="{px}" y1="{top}" x2="{px}" y2="{bottom}" stroke="{esc(color)}" stroke-width="{width}"'
            f"{dash_attr}><title>{esc(label)}</title></line>"
        )
        if labels:
            out.append(
                f'<text x="{px}" y="{top - 3}" text-anchor="middle" class="vlabel" style="fill:{esc(color)}">'
                f"{esc(label)}</text>"
            )
    return "".join(out)


def tick_markers(frame: Frame, items: Sequence[tuple[float, int, str]], color: str = FINDING_COLOR) -> str:
    """Small triangles under the plot at event ``x`` (findings), merged per pixel column.

    ``items``: ``(x, count, description)``; a merged marker's tooltip sums the counts and
    shows the first descriptions.
    """
    cols: dict[int, list[tuple[float, int, str]]] = {}
    for it in items:
        if frame.x0 <= it[0] <= frame.x1:
            cols.setdefault(frame.column(it[0]), []).append(it)
    y = frame.top + frame.ph
    out = []
    for _c, group in sorted(cols.items()):
        px = frame.sx(group[0][0])
        n = sum(g[1] for g in group)
        desc = "; ".join(g[2] for g in group[:3]) + (" …" if len(group) > 3 else "")
        pts = _points([(px, y + 1), (px - 3.5, y + 7), (px + 3.5, y + 7)])
        out.append(
            f'<polygon points="{pts}" fill="{esc(color)}" class="finding">'
            f"<title>{esc(f'{n} finding(s): {desc}')}</title></polygon>"
        )
    return "".join(out)


def axes(
    frame: Frame,
    *,
    y_format: Callable[[float], str] = fmt_num,
    x_label: str = "event",
    y_label: str = "",
    y_ticks: Sequence[float] | None = None,
) -> str:
    """Plot border, grid lines, tick labels and axis titles."""
    x0, t, w, h = frame.left, frame.top, frame.pw, frame.ph
    out = [f'<rect x="{x0}" y="{t}" width="{w}" height="{h}" class="plot"/>']
    for v in y_ticks if y_ticks is not None else nice_ticks(frame.y0, frame.y1, 4):
        py = _f(frame.sy(v))
        out.append(f'<line x1="{x0}" y1="{py}" x2="{x0 + w}" y2="{py}" class="grid"/>')
        out.append(f'<text x="{x0 - 4}" y="{py}" dy="0.32em" text-anchor="end">{esc(y_format(v))}</text>')
    for v in nice_ticks(frame.x0, frame.x1, 5):
        px = _f(frame.sx(v))
        out.append(f'<line x1="{px}" y1="{t + h}" x2="{px}" y2="{t + h + 3}" class="axis"/>')
        out.append(f'<text x="{px}" y="{t + h + 15}" text-anchor="middle">{esc(fmt_num(v))}</text>')
    out.append(
        f'<text x="{x0 + w}" y="{frame.height - 1}" text-anchor="end" class="axis-title">{esc(x_label)}</text>'
    )
    if y_label:
        out.append(f'<text x="2" y="{t - 4}" class="axis-title">{esc(y_label)}</text>')
    return "".join(out)


def legend(
    items: Sequence[tuple[str, str]], x: int, y: int, width: int, *, dashed: Sequence[bool] = ()
) -> tuple[str, int]:
    """Swatches with names, wrapped into rows within ``width``; returns (svg, height used)."""
    out = []
    cx, cy, row_h = x, y, 14
    for i, (name, color) in enumerate(items):
        w = 18 + 6.2 * len(name) + 10
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + row_h
        if i < len(dashed) and dashed[i]:
            out.append(
                f'<line x1="{_f(cx)}" y1="{cy + 5}" x2="{_f(cx + 12)}" y2="{cy + 5}" stroke="{esc(color)}" '
                'stroke-width="2" stroke-dasharray="3 2"/>'
            )
        else:
            out.append(f'<rect x="{_f(cx)}" y="{cy}" width="12" height="10" fill="{esc(color)}"/>')
        out.append(f'<text x="{_f(cx + 16)}" y="{cy + 9}">{esc(name)}</text>')
        cx += w
    return "".join(out), (cy - y + row_h) if items else 0


def heat_strip(
    frame: Frame,
    xs: Sequence[float],
    rows: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    columns: int = 120,
    levels: int = 20,
    name: str = "",
) -> str:
    """Rows (bottom row first) × time columns, each cell the max of its samples on :func:`gradient`.

    Cells of one colour level are merged into one path; the row labels go on the left.
    """
    if not xs or not rows:
        return ""
    buckets = column_buckets(frame, xs, columns)
    cw = frame.pw / columns
    rh = frame.ph / len(rows)
    paths: dict[int, list[str]] = {}
    span = (vmax - vmin) or 1
    for r, values in enumerate(rows):
        y = frame.top + frame.ph - (r + 1) * rh
        runs: list[list[int]] = []  # [level, first column, last column]: equal neighbours merged
        for c, first, last in buckets:
            v = max(values[first : last + 1])
            lvl = max(0, min(levels - 1, round((v - vmin) / span * (levels - 1))))
            if runs and runs[-1][0] == lvl:
                runs[-1][2] = c
            else:
                runs.append([lvl, c, c])
        for i, (lvl, c0, c1) in enumerate(runs):
            c_end = runs[i + 1][1] if i + 1 < len(runs) else c1 + 1  # fill up to the next run
            x, w = frame.left + c0 * cw, (c_end - c0) * cw
            paths.setdefault(lvl, []).append(f"M{_f(x)} {_f(y)}h{_f(w + 0.3)}v{_f(rh + 0.3)}h{_f(-w - 0.3)}z")
    out = []
    for lvl in sorted(paths):
        out.append(f'<path d="{"".join(paths[lvl])}" fill="{gradient(lvl / (levels - 1))}"/>')
    step = max(1, math.ceil(len(rows) * 10 / frame.ph))
    for r, label in enumerate(row_labels):
        if r % step:
            continue
        y = frame.top + frame.ph - (r + 0.5) * rh
        out.append(
            f'<text x="{frame.left - 4}" y="{_f(y)}" dy="0.32em" text-anchor="end">{esc(label)}</text>'
        )
    title = f"<title>{esc(name)}</title>" if name else ""
    return f"<g>{title}{''.join(out)}</g>"


def gradient_bar(x: int, y: int, width: int, label_lo: str, label_hi: str, title: str) -> str:
    """A small legend of :func:`gradient` from ``label_lo`` (green) to ``label_hi`` (red)."""
    n = 20
    w = width / n
    cells = "".join(
        f'<rect x="{_f(x + i * w)}" y="{y}" width="{_f(w + 0.3)}" height="8" fill="{gradient(i / (n - 1))}"/>'
        for i in range(n)
    )
    return (
        f"<g>{cells}"
        f'<text x="{x - 4}" y="{y + 8}" text-anchor="end">{esc(label_lo)}</text>'
        f'<text x="{x + width + 4}" y="{y + 8}">{esc(label_hi)}</text>'
        f'<text x="{x + width + 10 + 6 * len(label_hi)}" y="{y + 8}" class="axis-title">{esc(title)}</text></g>'
    )


def svg(width: int, height: int, body: str, title: str, *, css_class: str = "chart") -> str:
    """An inline ``<svg>`` with a title (its accessible name and tooltip).

    No ``xmlns``: the HTML parser puts inline ``<svg>`` in the SVG namespace by itself, and the
    report must not contain a single URL.
    """
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" class="{esc(css_class)}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{body}</svg>"
    )
