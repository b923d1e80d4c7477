"""``buddysim inspect``: a Textual app over an :class:`~buddysim.tui.session.InspectSession`.

The app owns no simulation state: each action moves the session (step, back, jump, next
finding), then sets the ``cursor`` reactive, whose watcher hands the engine's view model, the
selected zone's :class:`~buddysim.report.pagemap.PageMap` and the last "find pfn" answer down to
the panes. Play mode is a timer that calls ``session.step`` (the engine never sleeps). Below
100x32 the screen gets the ``narrow`` class and shows one page of panes at a time (``v``); from
170 columns on, ``wide`` puts the zones and the free area side by side.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.widgets import Footer, Static

from buddysim.report.find_pfn import PfnInfo
from buddysim.tui.session import InspectSession
from buddysim.tui.widgets import (
    EventsPane,
    FindingsPane,
    FindResult,
    FreeAreaTable,
    HelpScreen,
    PageMapView,
    PcpPane,
    PromptScreen,
    ZonesTable,
    format_event,
)

__all__ = ["NARROW_HEIGHT", "NARROW_WIDTH", "WIDE_WIDTH", "InspectApp"]

NARROW_WIDTH = 100
WIDE_WIDTH = 170
NARROW_HEIGHT = 32
_PAGES = ("page-state", "page-map", "page-log")
_SPEEDS = (1, 10, 100, 1000, 10000)


class InspectApp(App[None]):
    """Step through a trace on a simulated machine and look at its zones from every side."""

    CSS_PATH = "inspect.tcss"
    TITLE = "buddysim inspect"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n,right", "step(1)", "Step"),
        Binding("p,left", "step(-1)", "Back"),
        Binding("right_square_bracket", "step(100)", "+100", show=False),
        Binding("left_square_bracket", "step(-100)", "-100", show=False),
        Binding("space", "play", "Play"),
        Binding("g", "goto", "Go to"),
        Binding("m", "next_mark", "Mark", show=False),
        Binding("f", "next_finding", "Finding"),
        Binding("F", "prev_finding", "Prev finding", show=False),
        Binding("z", "zone(1)", "Zone"),
        Binding("Z", "zone(-1)", "Prev zone", show=False),
        Binding("o", "node", "Node", show=False),
        Binding("slash", "find_pfn", "Find pfn"),
        Binding("v", "page", "Pane", show=False),
        Binding("plus", "speed(1)", "Faster", show=False),
        Binding("minus", "speed(-1)", "Slower", show=False),
        Binding("escape", "close_find", "Close", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    #: what ``?`` lists (keys as typed)
    HELP: ClassVar[list[tuple[str, str]]] = [
        ("n  →", "step one event forward"),
        ("p  ←", "step one event back (restores a checkpoint, replays the rest)"),
        ("]  [", "100 events forward / back"),
        ("space", "run / pause (+ and - change events per tick)"),
        ("g", "go to event N, or to a mark by its label"),
        ("m", "go to the next mark"),
        ("f  F", "next / previous event that recorded a finding"),
        ("z  Z", "next / previous zone"),
        ("o", "first zone of the next node"),
        ("/", "find pfn: free list, pcp list, free block or allocating event"),
        ("esc", "close the find-pfn answer"),
        ("v", "next page of panes (small terminals)"),
        ("?", "this help"),
        ("q", "quit"),
    ]

    # var, not reactive: the watchers repaint exactly the panes that change (a reactive on the
    # App would repaint the whole screen on every step)
    cursor: var[int] = var(0, always_update=True, init=False)
    zone_index: var[int] = var(0, always_update=True, init=False)

    def __init__(
        self, session: InspectSession, *, zone: int | None = None, play_interval: float = 0.05
    ) -> None:
        super().__init__()
        self.session = session
        self.playing = False
        self.speed = 0
        self.page = 0
        self.found: PfnInfo | None = None
        self.busy = False
        self.play_interval = play_interval
        zones = session.view().zones
        # default: the zone with the most managed pages (Normal on a big machine)
        self._initial_zone = (
            zone if zone is not None else max(range(len(zones)), key=lambda i: zones[i].managed)
        )

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Vertical(id="pages"):
            with Horizontal(id="page-state", classes="page -current"):
                yield ZonesTable(id="zones", classes="pane")
                yield FreeAreaTable(self.session.mm.NR_PAGE_ORDERS, id="freearea", classes="pane")
            with Horizontal(id="page-map", classes="page"):
                yield PcpPane(id="pcp", classes="pane")
                yield PageMapView(id="pagemap", classes="pane")
            with Horizontal(id="page-log", classes="page"):
                yield EventsPane(id="events", classes="pane")
                yield FindingsPane(id="findings", classes="pane")
        yield FindResult(id="find-result", classes="pane")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for widget_id, title in (
            ("zones", "zones"),
            ("freearea", "free area: blocks per order x migratetype"),
            ("pcp", "pcp pages per CPU"),
            ("pagemap", "page map"),
            ("events", "events"),
            ("findings", "findings"),
        ):
            self.query_one(f"#{widget_id}").border_title = title
        for table in self.query("DataTable"):
            table.can_focus = False
        self._apply_size(self.size.width, self.size.height)
        self._timer = self.set_interval(self.play_interval, self._tick, pause=True)
        self.zone_index = self._initial_zone

    def on_resize(self, event: events.Resize) -> None:
        self._apply_size(event.size.width, event.size.height)
        self.call_after_refresh(self.refresh_views)

    def _apply_size(self, width: int, height: int) -> None:
        narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        self.screen.set_class(narrow, "narrow")
        self.screen.set_class(not narrow and width >= WIDE_WIDTH, "wide")

    @on(PageMapView.Resized)
    def _map_resized(self) -> None:
        self.call_after_refresh(self._show_map)

    # ------------------------------------------------------------------ views
    def watch_cursor(self, _index: int) -> None:
        self.refresh_views()

    def watch_zone_index(self, _index: int) -> None:
        self.refresh_views()

    def refresh_views(self) -> None:
        """Hand the current view model down to every pane."""
        if self.busy or not self.is_mounted:
            return
        s = self.session
        view = s.view()
        zi = min(self.zone_index, len(view.zones) - 1)
        zone = view.zones[zi]
        self.query_one(ZonesTable).show(view, zi)
        self.query_one(FreeAreaTable).show(zone)
        self.query_one(FreeAreaTable).border_title = f"free area, node {zone.nid} {zone.name}"
        self.query_one(PcpPane).show(zone)
        self.query_one(PcpPane).border_title = f"pcp pages, {zone.name}"
        events_pane = self.query_one(EventsPane)
        events_pane.show(s.events, s.index, s.total, events_pane.size.height or 10)
        self.query_one(FindingsPane).show(view.findings_tail, view.nr_findings, view.anomalies)
        if self.found is not None:
            self.found = s.find(self.found.pfn)
            self.query_one(FindResult).show(self.found)
        self._show_map()
        self._show_status()

    def _show_map(self) -> None:
        if self.busy:
            return
        pane = self.query_one(PageMapView)
        zi = min(self.zone_index, len(self.session.mm.zones) - 1)
        pm = self.session.pagemap(zi, pane.max_cells)
        pane.border_title = f"page map: node {pm.nid} {pm.zone}"
        highlight = self.found.pfn if self.found is not None else None
        pane.show(pm, highlight)

    def _show_status(self) -> None:
        s = self.session
        view = s.view()
        zone = view.zones[min(self.zone_index, len(view.zones) - 1)]
        ev = s.event_at(s.index)
        what = f"L{ev[0]} {format_event(ev[1])}" if ev else "initial state (after the boot handoff)"
        play = f"▶ x{_SPEEDS[self.speed]}" if self.playing else "⏸"
        page = f"  pane {self.page + 1}/3 [v]" if self.screen.has_class("narrow") else ""
        msg = f"  ! {s.error}" if s.error else ""
        self.query_one("#status", Static).update(
            Text(
                f"{play} event {s.index}/{s.total}  {what}  |  node {zone.nid} {zone.name}  |  "
                f"{view.refcount}/{view.sites}{page}{msg}",
                no_wrap=True,
                overflow="ellipsis",
            ),
            layout=False,
        )

    # ------------------------------------------------------------------ moving
    def _moved(self) -> None:
        self.cursor = self.session.index

    def _goto(self, target: int) -> None:
        s = self.session
        if self.busy:
            return
        if target < s.index and s.rebuild_on_back:
            self._goto_in_thread(target)
            return
        s.goto(target)
        self._moved()

    @work(thread=True, exclusive=True)
    def _goto_in_thread(self, target: int) -> None:
        self.busy = True
        self.call_from_thread(self.notify, "no room for checkpoints: rebuilding the machine and replaying")
        try:
            self.session.goto(target)
        finally:
            self.busy = False
        self.call_from_thread(self._moved)

    def action_step(self, n: int) -> None:
        self._goto(self.session.index + n)

    def action_play(self) -> None:
        self.playing = not self.playing
        if self.playing and self.session.index >= self.session.total:
            self.playing = False
            self.notify("at the end of the trace")
        if self.playing:
            self._timer.resume()
        else:
            self._timer.pause()
        self._show_status()

    def action_speed(self, delta: int) -> None:
        self.speed = max(0, min(len(_SPEEDS) - 1, self.speed + delta))
        self._show_status()

    def _tick(self) -> None:
        if self.busy:
            return
        s = self.session
        s.step(_SPEEDS[self.speed])
        if s.index >= s.total or s.error:
            self.playing = False
            self._timer.pause()
        self._moved()

    def action_goto(self) -> None:
        marks = ", ".join(list(self.session.marks)[:5])
        hint = f" (marks: {marks})" if marks else ""
        self.push_screen(
            PromptScreen(f"go to event (0..{self.session.total}) or mark{hint}"), self._goto_answer
        )

    def _goto_answer(self, text: str | None) -> None:
        if not text:
            return
        if text in self.session.marks:
            self._goto(self.session.marks[text])
            return
        try:
            target = int(text, 0)
        except ValueError:
            self.notify(f"not an event number or a mark: {text!r}", severity="error")
            return
        self._goto(target)

    def action_next_mark(self) -> None:
        later = sorted(i for i in self.session.marks.values() if i > self.session.index)
        if not later:
            self.notify("no mark after this event")
            return
        self._goto(later[0])

    def action_next_finding(self) -> None:
        if self.busy:
            return
        f = self.session.next_finding()
        if f is None:
            self.notify(f"no finding after event {self.session.index}")
        self._moved()

    def action_prev_finding(self) -> None:
        if self.busy:
            return
        earlier = [f.event for f in self.session.mm.findings if f.event and f.event < self.session.index]
        if not earlier:
            self.notify("no finding before this event")
            return
        self._goto(max(earlier))

    # ------------------------------------------------------------------ selection
    def action_zone(self, delta: int) -> None:
        self.zone_index = (self.zone_index + delta) % len(self.session.mm.zones)

    def action_node(self) -> None:
        zones = self.session.mm.zones
        nid = zones[self.zone_index].node
        nodes = sorted({z.node for z in zones})
        nxt = nodes[(nodes.index(nid) + 1) % len(nodes)]
        self.zone_index = next(i for i, z in enumerate(zones) if z.node == nxt)

    def action_page(self) -> None:
        self.page = (self.page + 1) % len(_PAGES)
        for i, pid in enumerate(_PAGES):
            self.query_one(f"#{pid}").set_class(i == self.page, "-current")
        self.call_after_refresh(self.refresh_views)

    # ------------------------------------------------------------------ find pfn
    def action_find_pfn(self) -> None:
        self.push_screen(PromptScreen("find pfn (decimal or 0x...)", "0x1000"), self._find_answer)

    def _find_answer(self, text: str | None) -> None:
        if not text:
            return
        try:
            pfn = int(text, 0)
        except ValueError:
            self.notify(f"not a pfn: {text!r}", severity="error")
            return
        self.find(pfn)

    def find(self, pfn: int) -> PfnInfo:
        """Answer "where is pfn X" and show it (and select its zone)."""
        info = self.session.find(pfn)
        self.found = info
        if info.zone is not None:
            for i, z in enumerate(self.session.mm.zones):
                if z.node == info.nid and z.name == info.zone and z.zone_spans_pfn(pfn):
                    self.zone_index = i
                    break
        self.query_one(FindResult).show(info)
        self.refresh_views()
        return info

    def action_close_find(self) -> None:
        self.found = None
        self.query_one(FindResult).remove_class("-visible")
        self._show_map()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP))

    # ------------------------------------------------------------------ for tests and callers
    def pane_text(self, widget_id: str) -> str:
        """The plain text a Static pane shows."""
        widget: Any = self.query_one(f"#{widget_id}")
        content = widget.render()
        return str(getattr(content, "plain", content))
