"""``tokline dashboard``: a full-screen Textual app over the snapshot and the ledger.

Tabs: Overview, Daily, Models, Sessions/Projects, Quota.  Live: it follows the same feed
as the editors (``tokline watch --json``, a child process), and each new snapshot reloads
the tabs from a few SQL sums, never a rescan.  Textual is imported by this command only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from tokline.surfaces import dashboard_text
from tokline.surfaces.dashboard_data import DashData

TABS = (("overview", "1 Overview", dashboard_text.overview),
        ("daily", "2 Daily", dashboard_text.daily),
        ("models", "3 Models", dashboard_text.models),
        ("sessions", "4 Sessions", dashboard_text.sessions),
        ("quota", "5 Quota", dashboard_text.quota))
STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red", "dim": "dim", "bold": "bold"}
PLAIN_STYLES = {"dim": "dim", "bold": "bold", "crit": "bold"}

Loader = Callable[[str, "dict[str, Any] | None"], DashData]


def to_text(lines: list[dashboard_text.Line], color: bool) -> Text:
    styles = STYLES if color else PLAIN_STYLES
    text = Text(no_wrap=True, overflow="ellipsis")
    for number, line in enumerate(lines):
        if number:
            text.append("\n")
        for segment, style in line:
            text.append(segment, styles.get(style or "", ""))
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,enter", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 90%; padding: 1 2; border: round $accent;
                          background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(dashboard_text.HELP, id="help")


class Dashboard(App[None]):
    TITLE = "tokline"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"show_tab('{tab}')", label, show=False)
          for n, (tab, label, _) in enumerate(TABS, 1)),
        Binding("tab", "next_tab", "Next tab", priority=True),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("d", "period('d')", "Day"),
        Binding("w", "period('w')", "Week"),
        Binding("m", "period('m')", "Month"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    CSS = """
    TabPane { padding: 0 1; }
    VerticalScroll { height: 1fr; }
    """

    def __init__(self, loader: Loader, color: bool = True,
                 feed: Callable[[], Iterable[str]] | None = None,
                 refresher: Callable[[], None] | None = None,
                 exit_after_first_frame: bool = False) -> None:
        super().__init__()
        self.loader = loader
        self.color = color
        self.feed = feed
        self.refresher = refresher
        self.period = "d"
        self.data: DashData | None = None
        self.snapshot: dict[str, Any] | None = None
        self.updates = 0  # snapshots taken from the feed
        self.exit_after_first_frame = exit_after_first_frame

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with TabbedContent(id="tabs"):
            for tab, label, _ in TABS:
                with TabPane(label, id=tab), VerticalScroll(id=f"{tab}-scroll"):
                    yield Static(id=f"{tab}-body")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        if self.feed is not None:
            self.run_worker(self._follow, thread=True, exclusive=True, group="feed")
        if self.exit_after_first_frame:
            self.call_after_refresh(self.exit)

    def reload(self, snapshot: dict[str, Any] | None = None) -> None:
        if snapshot is not None:
            self.snapshot = snapshot
        self.data = self.loader(self.period, self.snapshot)
        self.redraw()

    def redraw(self) -> None:
        if self.data is None:
            return
        width = max(20, self.size.width - 4)
        for tab, _, draw in TABS:
            self.query_one(f"#{tab}-body", Static).update(
                to_text(draw(self.data, width), self.color))
        age = self.data.snapshot_age_s
        self.sub_title = f"as of {dashboard_text.duration(age)} ago" if age and age > 120 else ""

    def on_resize(self) -> None:
        self.redraw()

    def tab_text(self, tab: str) -> str:
        """What a tab shows, as plain text (for tests and the tmux check)."""
        return str(self.query_one(f"#{tab}-body", Static).render())

    def _follow(self) -> None:
        assert self.feed is not None
        for line in self.feed():
            try:
                snapshot = json.loads(line)
            except ValueError:
                continue
            if isinstance(snapshot, dict):
                self.updates += 1
                self.call_from_thread(self.reload, snapshot)

    def _close_feed(self) -> None:
        close = getattr(self.feed, "close", None)
        if close is not None:
            close()

    def on_unmount(self) -> None:
        self._close_feed()

    async def action_quit(self) -> None:
        self._close_feed()
        self.exit()

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_next_tab(self) -> None:
        tabs = [tab for tab, _, _ in TABS]
        current = self.query_one("#tabs", TabbedContent).active
        self.action_show_tab(tabs[(tabs.index(current) + 1) % len(tabs)])

    def action_scroll(self, lines: int) -> None:
        current = self.query_one("#tabs", TabbedContent).active
        scroller = self.query_one(f"#{current}-scroll", VerticalScroll)
        scroller.scroll_relative(y=lines, animate=False)

    def action_period(self, period: str) -> None:
        self.period = period
        self.reload()

    def action_refresh_now(self) -> None:
        if self.refresher is None:
            self.reload()
            return
        self.notify("refreshing…", timeout=2)
        self.run_worker(self._refresh, thread=True, exclusive=True, group="refresh")

    def _refresh(self) -> None:
        assert self.refresher is not None
        self.refresher()
        self.call_from_thread(self._reload_from_disk)

    def _reload_from_disk(self) -> None:
        self.snapshot = None  # the refresh just wrote a newer one than the feed's last
        self.reload()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
