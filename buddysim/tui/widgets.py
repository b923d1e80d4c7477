"""The inspector's panes. Each consumes only the engine's view model (``EngineView``/``ZoneView``),
a :class:`~buddysim.report.pagemap.PageMap` or a :class:`~buddysim.report.find_pfn.PfnInfo`,
handed down by the app ("attributes down, messages up"); none reads the machine."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from buddysim.engine import EngineView, ZoneView
from buddysim.findings import Finding
from buddysim.mm.gfp import format_gfp
from buddysim.mm.mmzone import MIGRATE_TYPES, migratetype_names
from buddysim.report.find_pfn import PfnInfo
from buddysim.report.pagemap import MT_COLOURS, PageMap, pagemap_lines

__all__ = [
    "EventsPane",
    "FindResult",
    "FindingsPane",
    "FreeAreaTable",
    "HelpScreen",
    "PageMapView",
    "PcpPane",
    "PromptScreen",
    "ZonesTable",
    "format_event",
]

_ZONE_COLUMNS = ("node", "zone", "spanned", "present", "managed", "free", "min/low/high", "lowmem_reserve")


class _Table(DataTable[Any]):
    """A DataTable that touches only the cells whose text changed (each update re-renders rows)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._shown: dict[tuple[str, str], str] = {}

    def set_cell(self, row: str, column: str, value: str | Text) -> None:
        plain = value.plain if isinstance(value, Text) else value
        old = self._shown.get((row, column))
        if old == plain:
            return
        self._shown[(row, column)] = plain
        self.update_cell(row, column, value, update_width=old is None or len(plain) > len(old))


class ZonesTable(_Table):
    """Every zone: spans, sizes, free pages, watermarks, lowmem_reserve; the cursor is the selection."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, show_cursor=True, **kw)
        self._nr_rows = 0

    def on_mount(self) -> None:
        for col in _ZONE_COLUMNS:
            self.add_column(col, key=col)

    def show(self, view: EngineView, selected: int) -> None:
        for i, z in enumerate(view.zones):
            wm = f"{z.watermarks[0]}/{z.watermarks[1]}/{z.watermarks[2]}"
            cells = (
                str(z.nid),
                z.name,
                str(z.spanned),
                str(z.present),
                str(z.managed),
                str(z.nr_free_pages),
                wm,
                " ".join(str(r) for r in z.lowmem_reserve),
            )
            if i >= self._nr_rows:
                self.add_row(*cells, key=str(i))
                self._nr_rows += 1
                self._shown.update(((str(i), col), v) for col, v in zip(_ZONE_COLUMNS, cells, strict=True))
            else:
                for col, value in zip(_ZONE_COLUMNS, cells, strict=True):
                    self.set_cell(str(i), col, value)
        if self.cursor_row != selected:
            self.move_cursor(row=selected)


def _num(n: int, style: str = "") -> Text:
    return Text(str(n), style=style or ("" if n else "dim"), justify="right")


class FreeAreaTable(_Table):
    """``free_area[order].free_list[mt]`` of the selected zone: blocks per cell, pages per row."""

    def __init__(self, nr_orders: int, **kw: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, **kw)
        self.nr_orders = nr_orders

    def on_mount(self) -> None:
        self.add_column("type", key="type")
        for o in range(self.nr_orders):
            self.add_column(str(o), key=f"o{o}")
        self.add_column("pages", key="pages")
        for mt in range(MIGRATE_TYPES):
            self.add_row(migratetype_names[mt], *([_num(0)] * self.nr_orders), _num(0), key=f"mt{mt}")
        self.add_row("blocks", *([_num(0, "bold")] * self.nr_orders), _num(0, "bold"), key="total")
        for row in (*(f"mt{mt}" for mt in range(MIGRATE_TYPES)), "total"):
            for col in (*(f"o{o}" for o in range(self.nr_orders)), "pages"):
                self._shown[(row, col)] = "0"

    def cell_text(self, row: str, order: int | None) -> str:
        """What one cell shows (tests read it)."""
        value = self.get_cell(row, f"o{order}" if order is not None else "pages")
        return value.plain if isinstance(value, Text) else str(value)

    def show(self, zone: ZoneView) -> None:
        for mt in range(MIGRATE_TYPES):
            counts = zone.free_per_mt[mt]
            for o, n in enumerate(counts):
                self.set_cell(f"mt{mt}", f"o{o}", _num(n))
            pages = sum(n << o for o, n in enumerate(counts))
            self.set_cell(f"mt{mt}", "pages", _num(pages))
        for o, n in enumerate(zone.free_per_order):
            self.set_cell("total", f"o{o}", _num(n, "bold"))
        total = sum(n << o for o, n in enumerate(zone.free_per_order))
        self.set_cell("total", "pages", _num(total, "bold"))


class PcpPane(Static):
    """Pages on each CPU's per-cpu lists for the selected zone."""

    def show(self, zone: ZoneView) -> None:
        counts = zone.pcp_count
        text = Text()
        text.append(f"total {sum(counts)}\n", style="bold")
        for cpu, n in enumerate(counts):
            text.append(f"cpu{cpu:<3}", style="dim")
            text.append(f"{n:>6}", style="" if n else "dim")
            text.append("\n" if cpu % 2 else "  ")
        self.update(text, layout=False)  # same number of lines every time


class PageMapView(Widget):
    """The zone as a strip of pageblocks (Line API: ``render_line`` gives one precomputed Strip)."""

    DEFAULT_CSS = "PageMapView { height: 1fr; }"

    class Resized(Message):
        """The map's size changed: the app recomputes the cells for the new size."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._lines: list[list[Segment]] = []
        self.pagemap: PageMap | None = None

    def on_resize(self) -> None:
        self.post_message(self.Resized())

    @property
    def max_cells(self) -> int:
        """Two pageblock cells per character of the content area, less the legend line."""
        w, h = self.size.width, max(1, self.size.height - 1)
        return max(2, 2 * w * h)

    def show(self, pm: PageMap, highlight_pfn: int | None = None) -> None:
        self.pagemap = pm
        cell = pm.cell_of_pfn(highlight_pfn) if highlight_pfn is not None else None
        self._lines = pagemap_lines(pm, max(1, self.size.width), highlight=cell)
        per = f"{pm.blocks_per_cell} pageblocks" if pm.blocks_per_cell > 1 else "1 pageblock"
        self.border_subtitle = f"{pm.nr_pageblocks} pageblocks, 1 cell = {per}"
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == self.size.height - 1:
            return Strip(self._legend(width)).crop_extend(0, width, None)
        if y < len(self._lines):
            return Strip(self._lines[y]).crop_extend(0, width, None)
        return Strip.blank(width)

    @staticmethod
    def _legend(width: int) -> list[Segment]:
        segs: list[Segment] = []
        for mt, name in enumerate(migratetype_names):
            r, g, b = MT_COLOURS[mt]
            segs.append(Segment("█", Style(color=f"rgb({r},{g},{b})")))
            segs.append(Segment(f"{name[:4] if width < 70 else name} "))
        segs.append(Segment("bright=free", Style(dim=True)))
        return segs


def format_event(event: dict[str, Any]) -> str:
    """One event, compactly: ``alloc_pages order=0 gfp=GFP_KERNEL cpu=1 handle=3``."""
    parts = [str(event.get("op"))]
    for k, v in event.items():
        if k == "op":
            continue
        if k == "gfp" and isinstance(v, int):
            v = format_gfp(v)
        elif k == "pfn" and isinstance(v, int):
            v = f"{v:#x}"
        parts.append(f"{k}={v}")
    return " ".join(parts)


class EventsPane(Static):
    """The events around the cursor: the last applied one marked ``▶``."""

    def show(self, events: list[tuple[int, dict[str, Any]]], index: int, total: int, rows: int) -> None:
        rows = max(1, rows)
        before = rows // 2
        first = max(1, min(index - before, total - rows + 1))
        text = Text(no_wrap=True, overflow="ellipsis")
        if index == 0:
            text.append("▶      0  (initial state)\n", style="bold reverse")
            rows -= 1
            first = 1
        for i in range(first, min(total, first + rows - 1) + 1):
            line, ev = events[i - 1]
            current = i == index
            style = "bold reverse" if current else ("dim" if i > index else "")
            text.append(f"{'▶' if current else ' '}{i:>7} L{line:<5} {format_event(ev)}\n", style=style)
        if not total:
            text.append("no trace events: the state right after the boot handoff", style="dim")
        self.update(text, layout=False)  # a fixed-height pane: no relayout per step


class FindingsPane(Static):
    """The findings so far (newest last)."""

    def show(self, findings: tuple[Finding, ...], nr_findings: int, anomalies: int) -> None:
        text = Text(no_wrap=False)
        if not nr_findings:
            text.append("no findings so far", style="green")
        for f in findings:
            text.append(f.describe() + "\n", style="red")
        if anomalies:
            text.append(f"{anomalies} trace anomalies skipped\n", style="yellow")
        self.border_title = f"findings ({nr_findings})"
        self.update(text, layout=False)


class FindResult(Static):
    """The answer to "find pfn", docked at the bottom until dismissed."""

    def show(self, info: PfnInfo) -> None:
        lines = info.describe()
        colour = {"free": "green", "pcp": "cyan", "allocated": "yellow"}.get(info.state, "magenta")
        text = Text()
        text.append(lines[0] + "\n", style=f"bold {colour}")
        text.append("\n".join(lines[1:]))
        self.border_title = "find pfn (esc to close)"
        self.update(text)
        self.add_class("-visible")


class PromptScreen(ModalScreen[str | None]):
    """A one-line question (go to event, find pfn); dismisses with the text or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Static(self.question)
            yield Input(placeholder=self.placeholder)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key binding, with what it does."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("buddysim inspect: keys\n\n", style="bold")
        for keys, what in self.rows:
            text.append(f"{keys:<14}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nPage map: one cell per pageblock (binned on big zones), coloured by migratetype,\n")
        text.append("brighter the more of it is on the free lists; grey = hole, olive = reserved.")
        with Vertical(id="help"):
            yield Static(text)

    def action_close(self) -> None:
        self.dismiss(None)
