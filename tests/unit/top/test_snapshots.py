"""Snapshots: frames built from recorded answers of the demo, drawn as ``--once`` draws
them, compared with the text committed in snapshots/.

The answers were recorded from ``yolo-telemetry demo --incident loop`` and
``--incident stall`` (fixtures/record.py), so the frames show what those incidents
look like: work passed to and fro with loops counted, and an agent gone silent.
Set YOLO_TELEMETRY_UPDATE_SNAPSHOTS=1 to rewrite a snapshot after a deliberate change
(and read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telemetry.top.frame import build_frame
from telemetry.top.model import Frame
from telemetry.top.plain import frame_text
from telemetry.top.readings import Reading
from tests.unit.top.recorded import history_of, recorded

SNAPSHOTS = Path(__file__).parent / "snapshots"
WIDTH = 120


def _frame(*readings: Reading, selected: str | None = None) -> Frame:
    now = max(reading.taken_at for reading in readings)
    return build_frame(history_of(*readings), now, "recorded", selected=selected)


def _frames() -> dict[str, Frame]:
    loop, stall = recorded("loop"), recorded("stall")
    lost = Reading("lost:9464", stall[-1].taken_at, error="/metrics: connection refused")
    return {"loop": _frame(*loop), "stall": _frame(*stall),
            "fleet": _frame(*loop, *stall, lost)}


FRAMES = _frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_the_frame_drawn_from_recorded_answers_is_the_snapshot(name: str) -> None:
    text = frame_text(FRAMES[name], WIDTH)
    snapshot = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("YOLO_TELEMETRY_UPDATE_SNAPSHOTS"):
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(text, encoding="utf-8")
    assert text == snapshot.read_text(encoding="utf-8")


def test_the_stall_frame_shows_the_silent_agent_stalled() -> None:
    frame = FRAMES["stall"]
    states = {row.name: row.state for row in frame.agents}
    assert states["analyst"] == "stalled"
    assert [row.name for row in frame.agents if row.state == "stalled"] == ["analyst"]
    analyst = next(row for row in frame.agents if row.name == "analyst")
    assert analyst.last_event_age_s is not None and analyst.last_event_age_s > 20
    assert [(a.name, a.labels) for a in frame.header.firing] == [
        ("AgentStalled", {"agent": "analyst"})]
    assert frame.header.status == "degraded"


def test_the_loop_frame_marks_the_loop_in_the_handoff_matrix() -> None:
    handoffs = FRAMES["loop"].handoffs
    looped = {(c.from_agent, c.to_agent) for c in handoffs.cells if c.loop}
    assert looped == {("analyst", "pm"), ("pm", "analyst")}
    assert all(c.bounce_back for c in handoffs.cells if c.loop)
    assert set(handoffs.loops) == {"analyst", "pm"}
    quiet = [c for c in handoffs.cells if (c.from_agent, c.to_agent) not in looped]
    assert quiet and not any(c.loop or c.bounce_back for c in quiet)
    names = {a.name for a in FRAMES["loop"].header.firing}
    assert {"HandoffLoop", "ToolCallRepeating"} <= names


def test_the_fleet_frame_has_a_row_per_instance_and_agent_and_shows_the_lost_one() -> None:
    frame = FRAMES["fleet"]
    assert {row.instance for row in frame.agents} == {"loop:9464", "stall:9464"}
    assert len(frame.agents) == 16
    lost = [i for i in frame.header.instances if i.status == "lost"]
    assert [i.name for i in lost] == ["lost:9464"]
    assert any("connection lost" in reason and "refused" in reason
               for reason in frame.header.reasons)
    text = frame_text(frame, WIDTH)
    assert "instances 2/3 up" in text


def test_picking_an_instance_shows_only_its_agents() -> None:
    loop, stall = recorded("loop"), recorded("stall")
    frame = _frame(*loop, *stall, selected="stall:9464")
    assert {row.instance for row in frame.agents} == {""}  # one instance: no column
    assert [row.name for row in frame.agents if row.state == "stalled"] == ["analyst"]
    assert frame.header.selected == "stall:9464"
    assert [i.name for i in frame.header.instances] == ["stall:9464"]
