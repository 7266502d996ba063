"""promtool, Prometheus' own parser and linter, accepts both formats of /metrics after
the worst label values, with an overflowing metric and a thousand series."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telemetry.aggregation.aggregator import Aggregator
from tests.conftest import FakeClock, send
from tests.support.backends import promtool_check_metrics
from tests.unit.exporters.prometheus.support import (
    HOSTILE,
    OPENMETRICS,
    TEXT,
    exporter_for,
    parse,
    samples_of,
    send_hostile,
)

pytestmark = pytest.mark.backend


@pytest.fixture
def crowded(clock: FakeClock) -> Iterator[Aggregator]:
    """Hostile names, 1,000 handoff series and an overflow series beside them."""
    aggregator = Aggregator(clock=clock, max_series=1_000)
    aggregator.connect()
    try:
        send_hostile()
        for i in range(1_100):
            send("handoff_completed", from_agent=f"agent-{i:04d}", to_agent="dev",
                 duration_s=i / 100)
        send("decision_made", agent="a", decision_type="d", duration_s=0.01)
        send("state_saved", duration_s=0.01, size_bytes=10)
        yield aggregator
    finally:
        aggregator.disconnect()


def test_promtool_lints_the_text_format_clean(crowded: Aggregator) -> None:
    body, _ = exporter_for(crowded).render(TEXT)
    ok, output = promtool_check_metrics(body.decode(), lint=True)
    assert ok, output
    assert 'from_agent="__overflow__"' in body.decode()


def test_promtool_parses_openmetrics(crowded: Aggregator) -> None:
    """promtool reads OpenMetrics with its classic parser (no exemplars: those are
    checked by prometheus_client's parser and by a real Prometheus in test_exemplars)."""
    body, _ = exporter_for(crowded).render(OPENMETRICS)
    text = body.decode()
    ok, output = promtool_check_metrics(text, lint=False)
    assert ok, output
    assert not promtool_check_metrics(text.replace("} 1.0\n", "} x\n", 1), lint=False)[0]
    found = samples_of(parse(body, True))
    agents = {dict(labels).get("from_agent") for name, labels in found
              if name == "yolo_handoffs_created"}
    assert len(agents) == 1_001 and {HOSTILE[0], "__overflow__"} <= agents  # + overflow
