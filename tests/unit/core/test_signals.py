"""YoloSignal's short dispatch path behaves exactly like blinker's send."""

from __future__ import annotations

import gc
import itertools

import blinker
import pytest

from telemetry import signals
from telemetry.signals import YoloSignal, _yolo_signal

_names = (f"yolo.test_signal_{n}" for n in itertools.count())


@pytest.fixture
def signal():
    name = next(_names)
    yield _yolo_signal(name)
    del blinker.default_namespace[name]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, sender, **fields):
        self.calls.append((sender, fields))
        return len(self.calls)


def test_contract_signals_are_yolo_signals_in_blinkers_namespace():
    for spec in signals.CONTRACT:
        assert type(blinker.signal(spec.name)) is YoloSignal
    assert signals.handoff_completed is blinker.signal("yolo.handoff_completed")


def test_sole_strong_receiver_gets_sender_fields_and_its_result_back(signal):
    receiver = Recorder()
    signal.connect(receiver, weak=False)
    assert signal.send("me", a=1) == [(receiver, 1)]
    assert receiver.calls == [("me", {"a": 1})]


def test_receive_fields_gets_the_keyword_arguments_as_one_dict(signal):
    got = []

    def receiver(sender, **fields):
        raise AssertionError("the short path should call receive_fields")

    receiver.receive_fields = lambda sender, fields: got.append((sender, fields)) or "done"
    signal.connect(receiver, weak=False)
    assert signal.send("me", a=1, b="x") == [(receiver, "done")]
    assert got == [("me", {"a": 1, "b": "x"})]


def test_a_second_receiver_is_called_too_and_removing_it_restores_the_short_path(signal):
    first, second = Recorder(), Recorder()
    signal.connect(first, weak=False)
    signal.connect(second, weak=False)
    results = signal.send(None, n=1)
    assert sorted(r for _, r in results) == [1, 1]
    signal.disconnect(second)
    assert signal.send(None, n=2) == [(first, 2)]
    assert len(second.calls) == 1


def test_a_receiver_offering_send_for_is_the_signals_send_while_it_is_the_only_one(signal):
    sent: list[tuple[str, dict]] = []

    def receiver(sender, **fields):
        sent.append(("receiver", fields))

    def send_for(of):
        assert of is signal

        def send(sender=None, /, **fields):
            sent.append(("its own send", fields))
            return [(receiver, None)]
        return send

    receiver.send_for = send_for
    signal.connect(receiver, weak=False)
    assert signal.send(None, a=1) == [(receiver, None)]
    other = Recorder()
    signal.connect(other, weak=False)  # two receivers: blinker's dispatch again
    signal.send(None, a=2)
    signal.disconnect(other)
    signal.send(None, a=3)
    signal.disconnect(receiver)
    assert signal.send(None, a=4) == []
    assert sent == [("its own send", {"a": 1}), ("receiver", {"a": 2}),
                    ("its own send", {"a": 3})]
    assert other.calls == [(None, {"a": 2})]


def test_muted_signal_calls_nobody(signal):
    receiver = Recorder()
    signal.connect(receiver, weak=False)
    with signal.muted():
        assert signal.send(None, a=1) == []
    assert receiver.calls == []


def test_receiver_for_one_sender_only_is_not_called_for_others(signal):
    receiver = Recorder()
    signal.connect(receiver, sender="orchestrator-a", weak=False)
    assert signal.send("orchestrator-b") == []
    assert signal.send("orchestrator-a", x=1) == [(receiver, 1)]


def test_coroutine_receiver_is_refused_as_blinker_does(signal):
    async def receiver(sender, **fields):
        return None

    signal.connect(receiver, weak=False)
    with pytest.raises(RuntimeError, match="coroutine"):
        signal.send(None)


def test_dead_weak_receiver_is_dropped_and_the_survivor_called_directly(signal):
    strong, weak = Recorder(), Recorder()
    signal.connect(strong, weak=False)
    signal.connect(weak)  # weakly, as blinker does by default
    del weak
    gc.collect()
    assert signal.send(None, a=1) == [(strong, 1)]
    assert signal.send(None, a=2) == [(strong, 2)]
    assert len(signal.receivers) == 1


def test_clearing_the_state_leaves_nobody_to_call(signal):
    receiver = Recorder()
    signal.connect(receiver, weak=False)
    signal._clear_state()  # blinker's way of disconnecting everything (tests use it)
    assert signal.send(None, a=1) == []
    assert receiver.calls == []


def test_plain_named_signal_created_first_is_upgraded_in_place():
    name = next(_names)
    early = blinker.signal(name)  # an orchestrator imported before telemetry
    receiver = Recorder()
    early.connect(receiver, weak=False)
    try:
        upgraded = _yolo_signal(name)
        assert upgraded is early and type(early) is YoloSignal
        assert early.send(None, a=1) == [(receiver, 1)]
    finally:
        del blinker.default_namespace[name]


def test_signal_of_another_class_is_left_alone():
    class Custom(blinker.NamedSignal):
        pass

    name = next(_names)
    custom = blinker.default_namespace[name] = Custom(name)
    try:
        assert _yolo_signal(name) is custom and type(custom) is Custom
    finally:
        del blinker.default_namespace[name]


def _in_child(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    from tests.support import ROOT

    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": path, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


_COUNTS_TWO_HANDOFFS = """
import blinker
early = blinker.signal("yolo.handoff_completed")  # an orchestrator imported first
from telemetry.aggregation.aggregator import Aggregator
from telemetry import catalogue as cat
agg = Aggregator(); agg.connect()
early.send(None, from_agent="a", to_agent="b", duration_s=0.1)
blinker.signal("yolo.handoff_completed").send(None, from_agent="a", to_agent="b",
                                              duration_s=0.1)
print(type(early).__name__, early is blinker.signal("yolo.handoff_completed"),
      int(agg.value(cat.HANDOFFS, ("a", "b"))))
"""


def test_a_signal_created_before_telemetry_is_upgraded_in_place() -> None:
    assert _in_child(_COUNTS_TWO_HANDOFFS) == "YoloSignal True 2"


def test_fast_signals_can_be_switched_off() -> None:
    """YOLO_TELEMETRY_FAST_SIGNALS=0: plain blinker signals, the same counts."""
    assert _in_child(_COUNTS_TWO_HANDOFFS,
                     YOLO_TELEMETRY_FAST_SIGNALS="0") == "NamedSignal True 2"
