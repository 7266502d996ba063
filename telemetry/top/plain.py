"""A frame as Rich renderables: what ``--once`` prints and the live app shows.

One drawing for both, so the snapshot test of ``--once`` text covers what the app
draws too. Colour marks what needs a look (stalled agents, bounce-backs and loops,
contexts over their thresholds, a lost connection); the words say it as well, so
the plain text without colour loses nothing.
"""

from __future__ import annotations

import io
import time

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from telemetry.top.model import AgentRow, Frame, Handoffs, shown_rows

_BLOCKS = "▁▂▃▄▅▆▇█"
_STATUS_STYLE = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red",
                 "lost": "bold red", "unknown": "dim"}
_STATE_STYLE = {"active": "green", "in tool": "cyan", "idle": "dim", "stalled": "bold red"}
_LEVEL_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h04m``, ``3d02h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def number(value: float | None, digits: int = 2) -> str:
    """A compact number: ``-``, ``0``, ``0.47``, ``12.3``, ``8.4k``, ``1.2M``."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    if abs(value) >= 100 or (digits == 0 and value == int(value)):
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def sparkline(values: list[float], width: int | None = None) -> str:
    shown = values[-width:] if width else values
    top = max(shown, default=0.0)
    if top <= 0:
        return _BLOCKS[0] * len(shown)
    return "".join(_BLOCKS[min(int(v / top * (len(_BLOCKS) - 1) + 0.5), len(_BLOCKS) - 1)]
                   for v in shown)


def context_bar(tokens: float | None, warning: float, critical: float, width: int = 8) -> Text:
    """The context against the critical threshold, the warning one marked ``|``."""
    if tokens is None:
        return Text("-")
    filled = min(int(tokens / critical * width + 0.5), width) if critical > 0 else 0
    mark = min(int(warning / critical * width), width - 1) if critical > 0 else width - 1
    level = "critical" if tokens >= critical else "warning" if tokens >= warning else "ok"
    cells = ["█" if i < filled else ("|" if i == mark else "·") for i in range(width)]
    return Text("".join(cells), style=_LEVEL_STYLE[level]) + Text(f" {number(tokens)}")


def header(frame: Frame, paused: bool = False) -> RenderableType:
    h = frame.header
    lost = [i for i in h.instances if i.status == "lost"]
    first = Text()
    first.append(h.service, style="bold")
    first.append(f"  {h.source}  ")
    first.append(f"instances {len(h.instances) - len(lost)}/{len(h.instances)} up",
                 style="bold red" if lost else "")
    if h.selected:
        first.append(f" (showing {h.selected})", style="bold cyan")
    if paused:
        first.append("  PAUSED", style="bold reverse")
    second = Text("status ")
    second.append(h.status.upper(), style=_STATUS_STYLE.get(h.status, ""))
    second.append(f"  mode {h.mode or '-'}  uptime {duration(h.uptime_s)}"
                  f"  events/s {number(h.events_per_s)}"
                  f"  at {time.strftime('%H:%M:%S UTC', time.gmtime(frame.taken_at))}")
    lines: list[RenderableType] = [first, second]
    for reason in h.reasons:
        style = "bold red" if "connection lost" in reason else "yellow"
        lines.append(Text(f"  ! {reason}", style=style))
    lines.append(_firing(frame))
    return Group(*lines)


def _firing(frame: Frame) -> Text:
    """Firing alerts, one entry per alert name with the label values it fires for."""
    if not frame.header.firing:
        return Text("  firing: none", style="dim")
    grouped: dict[str, list[str]] = {}
    critical = set()
    for alert in frame.header.firing:
        values = "/".join(v for _, v in sorted(alert.labels.items()))
        grouped.setdefault(alert.name, [])
        if values:
            grouped[alert.name].append(values)
        if alert.severity == "critical":
            critical.add(alert.name)
    text = Text("  firing: ", style="bold")
    for index, (name, values) in enumerate(grouped.items()):
        text.append("" if index == 0 else "; ")
        text.append(name, style="bold red" if name in critical else "yellow")
        if values:
            text.append(f" ({', '.join(values)})")
    return text


def agents_table(frame: Frame, sort: str = "name", reverse: bool = False,
                 filter_text: str = "") -> Table:
    rows = shown_rows(frame.agents, sort, reverse, filter_text)
    arrow = "▲" if reverse else "▼"
    title = f"agents ({len(rows)}/{len(frame.agents)}, sorted by {sort} {arrow}"
    title += f", filter '{filter_text}')" if filter_text else ")"
    table = Table(title=title, title_justify="left", expand=False, box=None,
                  padding=(0, 1, 0, 0), header_style="bold")
    several = len({row.instance for row in frame.agents}) > 1
    if several:
        table.add_column("instance", no_wrap=True)
    for name, justify in (("agent", "left"), ("state", "left"), ("last event", "right"),
                          ("in tool", "right"), ("dec/s", "right"), ("hand/s", "right"),
                          ("err/s", "right"), ("p95 dec", "right"), ("context", "left"),
                          ("tok/s", "right"), ("cost $", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*([row.instance] if several else []), *_agent_cells(row, frame))
    if not rows:
        table.add_row("(no agents)" if not frame.agents else "(none match the filter)")
    return table


def _agent_cells(row: AgentRow, frame: Frame) -> list[RenderableType]:
    return [row.name, Text(row.state, style=_STATE_STYLE.get(row.state, "")),
            duration(row.last_event_age_s), duration(row.in_tool_s),
            number(row.decisions_per_s), number(row.handoffs_per_s),
            Text(number(row.errors_per_s), style="red" if row.errors_per_s else ""),
            duration(row.decision_p95_s),
            context_bar(row.context_tokens, frame.context.warning_tokens,
                        frame.context.critical_tokens),
            number(row.tokens_per_s), f"{row.cost_usd:.2f}"]


def handoff_matrix(handoffs: Handoffs) -> RenderableType:
    """Rows hand off to columns; each cell is handoffs per minute over the window and,
    after ``/``, in all. A bounce-back (the reverse handoff happened in the window too)
    is marked ``<``, a handoff that closed a loop ``!``."""
    title = (f"handoffs: per minute over the last {duration(handoffs.window_s)} / in all "
             "(rows hand off to columns)")
    if not handoffs.cells:
        return Group(Text(title, style="bold"), Text("  (no handoffs yet)", style="dim"))
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("from \\ to", no_wrap=True)
    for agent in handoffs.agents:
        style = "bold red" if agent in handoffs.loops else ""
        table.add_column(Text(agent[:7], style=style), justify="right", no_wrap=True)
    cells = {(c.from_agent, c.to_agent): c for c in handoffs.cells}
    for source in handoffs.agents:
        row: list[RenderableType] = [source]
        for target in handoffs.agents:
            cell = cells.get((source, target))
            if cell is None:
                row.append(Text("·", style="dim"))
                continue
            mark = "!" if cell.loop else "<" if cell.bounce_back else ""
            style = "bold red" if cell.loop else "yellow" if cell.bounce_back else (
                "" if cell.per_minute else "dim")
            row.append(Text(f"{number(cell.per_minute, 1)}/{number(cell.total, 0)}{mark}",
                            style=style))
        table.add_row(*row)
    parts: list[RenderableType] = [Text(title, style="bold"), table]
    if handoffs.loops:
        loops = ", ".join(f"{agent} {number(count, 0)}"
                          for agent, count in sorted(handoffs.loops.items()))
        parts.append(Text(f"  loops back to: {loops}", style="bold red"))
    parts.append(Text("  < bounce-back (both ways)  ! closed a loop", style="dim"))
    return Group(*parts)


def workflows(frame: Frame) -> Text:
    w = frame.workflows
    text = Text("workflows  ", style="bold")
    text.append(f"in flight {number(w.in_flight, 0)}  started/min {number(w.started_per_min)}"
                f"  completed/min {number(w.completed_per_min)}  ")
    text.append(f"failed/min {number(w.failed_per_min)}",
                style="red" if w.failed_per_min else "")
    text.append(f"  oldest in flight {duration(w.oldest_in_flight_s)}")
    return text


def sparklines(frame: Frame, width: int = 60) -> Table:
    s = frame.sparklines
    span = duration(s.step_s * len(s.events_per_s))
    table = Table(title=f"last {span}", title_justify="left", box=None, padding=(0, 1),
                  show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for name, values, style in (("events/s", s.events_per_s, "green"),
                                ("errors/s", s.errors_per_s, "red"),
                                ("tokens/s", s.tokens_per_s, "cyan")):
        table.add_row(name, Text(sparkline(values, width), style=style),
                      f"now {number(values[-1] if values else None)}")
    return table


def render_frame(frame: Frame, sort: str = "name", reverse: bool = False,
                 filter_text: str = "", paused: bool = False) -> Group:
    return Group(header(frame, paused), Text(""), agents_table(frame, sort, reverse, filter_text),
                 Text(""), handoff_matrix(frame.handoffs), Text(""), workflows(frame),
                 Text(""), sparklines(frame))


def frame_text(frame: Frame, width: int = 120, color: bool = False, **view: object) -> str:
    """The frame as text, for ``--once`` and the snapshot tests."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system="standard" if color else None,
                      force_terminal=color, legacy_windows=False, highlight=False)
    console.print(render_frame(frame, **view))  # type: ignore[arg-type]
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"
