"""The live view: a Textual app that reads the source every ``interval_s`` and
redraws the frame with the same Rich drawing as ``--once``.

Reads run in a worker (on a thread), so keys answer while an instance is slow. A
failed read is a reading with an error, shown in the header; the last good data
stays on screen until the instance answers again. Building or drawing a frame that
fails for any other reason shows the error in the header and the next refresh tries
again: the view keeps running whatever the instances answer.
"""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from telemetry.top import plain
from telemetry.top.frame import FrameSettings, build_frame
from telemetry.top.model import SORT_KEYS, Frame, shown_rows
from telemetry.top.readings import History, Reading, Source

HELP = """\
yolo-telemetry top: keys

  s   sort the agents by the next column (name, state, last event, decisions/s,
      errors/s, tokens/s, cost, context)
  r   reverse the sort
  /   filter the agents by name (Enter applies, Esc clears)
  p   pause: keep this frame, stop reading
  i   pick an instance: all, then each one in turn
  ?   this help (Esc closes it)
  q   quit

States: active (an event in the last 30s), in tool (inside a tool call),
idle (quiet, or not active), stalled (AgentStalled fires, or quiet past its budget).
Handoff matrix: rows hand off to columns, per minute; < a bounce-back, ! a loop.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 84; height: auto; border: round $accent; padding: 1 2;
                          background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP)

    def action_close(self) -> None:
        self.dismiss(None)


class TopApp(App[None]):
    """``yolo-telemetry top`` on a terminal."""

    TITLE = "yolo-telemetry top"
    CSS = """
    #header { height: auto; padding: 0 1; background: $boost; }
    #body { padding: 0 1; }
    #filter { dock: bottom; display: none; }
    #filter.shown { display: block; }
    """
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("s", "sort", "sort"),
        Binding("r", "reverse", "reverse"),
        Binding("slash", "filter", "filter"),
        Binding("p", "pause", "pause"),
        Binding("i", "instance", "instance"),
        Binding("question_mark", "help", "help"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self, source: Source, interval_s: float = 2.0,
                 settings: FrameSettings | None = None, filter_text: str = "",
                 selected: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.interval_s = interval_s
        self.settings = settings or FrameSettings()
        self.history = History()
        self.frame: Frame | None = None
        self.sort, self.reverse = "name", False
        self.filter_text = filter_text
        self.selected = selected
        self.paused = False
        self.reads = 0  # completed reads, for tests and the curious
        self._reading = False
        self.problem: str | None = None  # why the last frame could not be drawn

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with VerticalScroll(id="body"):
            yield Static(id="agents")
            yield Static(id="handoffs")
            yield Static(id="workflows")
            yield Static(id="sparklines")
        yield Input(placeholder="filter agents by name: Enter applies, Esc clears", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#header", Static).update(f"reading {self.source.describe()} ...")
        self.run_worker(self._start, group="read")

    async def _start(self) -> None:
        try:
            self.history.add_all(await asyncio.to_thread(self.source.history))
        except Exception as error:  # a source bug is shown, not fatal
            self.problem = f"reading history failed: {error}"
        await self._read()
        self.set_interval(self.interval_s, self._tick)

    def _tick(self) -> None:
        # A slow instance makes a read outlast the interval: let it finish (it is
        # bounded by the timeout) rather than start another or cancel it.
        if not self.paused and not self._reading:
            self.run_worker(self._read, group="read")

    async def _read(self) -> None:
        self._reading = True
        try:
            readings = await asyncio.to_thread(self.source.read)
        except Exception as error:  # a source bug is shown, not fatal
            readings = [Reading(self.source.describe(), time.time(),
                                error=f"reading failed: {error}")]
        finally:
            self._reading = False
        self.history.add_all(readings)
        self.reads += 1
        self.redraw(rebuild=True)

    def redraw(self, rebuild: bool = False) -> None:
        """Draw the frame (a new one from the history when ``rebuild``)."""
        try:
            if rebuild or self.frame is None:
                self.frame = build_frame(self.history, time.time(), self.source.describe(),
                                         self.settings, self.selected)
            frame = self.frame
            self.query_one("#header", Static).update(plain.header(frame, self.paused))
            self.query_one("#agents", Static).update(
                plain.agents_table(frame, self.sort, self.reverse, self.filter_text))
            self.query_one("#handoffs", Static).update(plain.handoff_matrix(frame.handoffs))
            self.query_one("#workflows", Static).update(plain.workflows(frame))
            self.query_one("#sparklines", Static).update(plain.sparklines(frame))
            self.problem = None
        except Exception as error:  # shown; the next refresh tries again
            self.problem = f"could not draw the frame: {type(error).__name__}: {error}"
            self.query_one("#header", Static).update(Text(self.problem, style="bold red"))

    def shown_agents(self) -> list[str]:
        """The agent names the table shows, in order (what a test checks)."""
        if self.frame is None:
            return []
        return [row.name for row in shown_rows(self.frame.agents, self.sort, self.reverse,
                                                self.filter_text)]

    def action_sort(self) -> None:
        self.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        self.redraw()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.redraw()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.redraw()

    def action_instance(self) -> None:
        choices: list[str | None] = [None, *self.history.instances()]
        index = choices.index(self.selected) if self.selected in choices else 0
        self.selected = choices[(index + 1) % len(choices)]
        self.redraw(rebuild=True)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.filter_text
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        self.filter_text = ""
        self.set_focus(None)
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        event.input.remove_class("shown")
        self.set_focus(None)
        self.redraw()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
