"""Alert definitions: one YAML entry yields a Prometheus rule and an in-process check.

An alert names a catalogue metric and says how to read it:

* ``value``: the gauge (or counter) itself, aggregated over ``by`` with ``aggregate``;
* ``age``: seconds since a timestamp gauge (PromQL ``time() - metric``); a timestamp
  of 0 means "none" (nothing in flight, never saved) and is left out;
* ``rate``: per-second increase of a counter over ``window`` (PromQL ``rate``);
* ``increase``: the increase of a counter over ``window`` (PromQL ``increase``);
* ``ratio``: rate of the metric (``match`` selects the numerator) over the rate of
  ``denominator`` (default: the same metric without ``match``), e.g. failed / all
  workflows;
* ``quantile``: ``histogram_quantile`` of a histogram over ``window``.

The result is compared with ``threshold``. ``and`` conditions (other series read
now) must also hold for the label set, ``unless`` conditions must not (an agent
inside a tool call is not idle); ``or`` adds readings of their own, so one alert
can have two budgets. A label set that keeps breaching for ``for`` fires.
:mod:`telemetry.alerting.rules` turns a definition into PromQL and
:mod:`telemetry.alerting.evaluator` evaluates the same definition from the
aggregator, so Prometheus and ``/health`` agree on what is wrong.

``alerts: null`` in the config means the built-in alerts
(:data:`telemetry.alerting.builtins.DEFAULT_ALERTS`); a list replaces them.
``alerting.disable`` removes alerts from that set by name and ``alerting.extra``
adds alerts to it (one named like a disabled alert replaces it).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from telemetry import catalogue as cat
from telemetry.alerting.templates import check_template
from telemetry.catalogue import Kind, MetricSpec

_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a Prometheus duration (``90s``, ``5m``, ``1h30m``)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or a number of seconds")
    if isinstance(value, int | float):
        if value < 0 or value != value:
            raise ValueError("expected a duration of zero or more seconds")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        match = _DURATION.match(text)
        if text and match and any(match.groups()):
            return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS,
                                                        strict=True) if n)
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
    raise ValueError("expected a duration such as 30s, 5m, 1h30m or a number of seconds")


def format_duration(seconds: float) -> str:
    """The Prometheus spelling of a duration (``300`` -> ``5m``, ``0`` -> ``0s``)."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000),
                       ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
LabelName = Annotated[str, Field(pattern=_NAME)]
#: Label matchers: a value, or a list of values any of which matches (PromQL ``=~"a|b"``).
LabelMatch = dict[LabelName, str | Annotated[list[str], Field(min_length=1)]]
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]

_COMPARE = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _known_metric(value: str | None) -> str | None:
    if value is not None:
        try:
            cat.lookup(value)
        except KeyError:
            raise ValueError(f"no metric {value!r} in the catalogue (use a canonical name "
                             f"like yolo.errors or a Prometheus one like "
                             f"yolo_errors_total)") from None
    return value


class Condition(BaseModel):
    """A current reading another series must match (``and``) or must not (``unless``).

    It is read now (kind ``value`` or ``age``), per the alert's ``by`` labels that its
    metric has; without ``threshold`` it only has to exist.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    kind: Literal["value", "age"] = "value"
    match: LabelMatch = {}
    aggregate: Literal["sum", "max", "min", "avg"] | None = None
    comparison: Comparison = ">"
    threshold: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str | None:
        return _known_metric(value)

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        _check_current(self.kind, self.spec, None)
        _check_labels("match", self.match, self.spec)
        return self

    @property
    def spec(self) -> MetricSpec:
        return cat.lookup(self.metric)

    def holds(self, value: float) -> bool:
        """Whether the condition's value passes (always, without a threshold)."""
        return self.threshold is None or _COMPARE[self.comparison](value, self.threshold)


class Reading(BaseModel):
    """What an alert reads and compares; see the module docstring for the kinds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    metric: str
    kind: Literal["value", "age", "rate", "increase", "ratio", "quantile"] = "value"
    #: Label matchers on ``metric`` (the numerator of a ratio).
    match: LabelMatch = {}
    #: Ratio only: the denominator's metric (default: ``metric``) and its matchers.
    denominator: str | None = None
    denominator_match: LabelMatch = {}
    #: Quantile only: which quantile, e.g. 0.95.
    quantile: float | None = Field(default=None, gt=0, lt=1)
    #: Value and age: how series with the same ``by`` labels combine (default: the worst,
    #: max for a value, min (the oldest) for a timestamp's age).
    aggregate: Literal["sum", "max", "min", "avg"] | None = None
    #: A histogram's rate or increase reads its observation count (default) or their sum
    #: (e.g. the tokens of ``yolo_llm_token_usage``).
    histogram_value: Literal["count", "sum"] = "count"
    window: Duration | None = None
    comparison: Comparison = ">"
    threshold: float
    #: Conditions every breaching label set must also meet, and must not meet.
    and_: tuple[Condition, ...] = Field(default=(), alias="and")
    unless: tuple[Condition, ...] = ()

    @field_validator("metric", "denominator")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return _known_metric(value)

    @model_validator(mode="after")
    def _consistent_reading(self) -> Reading:
        spec = self.spec
        _check_kind(self, spec)
        _check_labels("match", self.match, spec)
        if self.kind == "ratio":
            denominator = self.denominator_spec
            _check_labels("denominator_match", self.denominator_match, denominator)
            if denominator == spec and self.match == self.denominator_match:
                raise ValueError("ratio: numerator and denominator are the same series; set "
                                 "match (e.g. {outcome: failed}) or denominator")
        return self

    @property
    def spec(self) -> MetricSpec:
        return cat.lookup(self.metric)

    @property
    def denominator_spec(self) -> MetricSpec:
        return cat.lookup(self.denominator) if self.denominator else self.spec

    @property
    def window_s(self) -> float:
        return self.window or 0.0

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaches the threshold (NaN never does, as in PromQL)."""
        return _COMPARE[self.comparison](value, self.threshold)


class AlertDefinition(Reading):
    """One alert: a reading, optional ``or`` readings, and how it fires and reads."""

    name: str = Field(pattern=_NAME)
    for_: Duration = Field(default=0.0, alias="for")
    by: tuple[LabelName, ...] = ()
    #: Further readings; a label set breaching any of them fires (PromQL ``or``).
    or_: tuple[Reading, ...] = Field(default=(), alias="or")
    severity: Literal["warning", "critical"] = "warning"
    summary: str = Field(min_length=1)
    description: str = ""
    runbook_url: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlertDefinition:
        if len(set(self.by)) != len(self.by):
            raise ValueError("by: a label is listed twice")
        for reading in self.readings:
            _check_labels("by", dict.fromkeys(self.by, ""), reading.spec)
            if reading.kind == "ratio":
                _check_labels("by", dict.fromkeys(self.by, ""), reading.denominator_spec)
        for field in ("summary", "description"):
            check_template(getattr(self, field), self.by, field)
        return self

    @property
    def readings(self) -> tuple[Reading, ...]:
        """The alert's own reading, then its ``or`` readings."""
        return (self, *self.or_)

    @property
    def labels(self) -> dict[str, str]:
        """Labels every instance of this alert carries besides its ``by`` labels."""
        return {"alertname": self.name, "severity": self.severity}


def on_labels(by: tuple[str, ...], condition: Condition) -> tuple[str, ...]:
    """The ``by`` labels a condition is matched on: those its metric has."""
    return tuple(label for label in by if label in condition.spec.labels)


def _check_current(kind: str, spec: MetricSpec, window: float | None) -> None:
    """Checks for the kinds that read the current value."""
    if kind == "value" and spec.kind is Kind.HISTOGRAM:
        raise ValueError(f"kind value: {spec.name} is a histogram; use kind quantile")
    if kind == "age" and (spec.kind is not Kind.GAUGE or spec.unit != "s"):
        raise ValueError(f"kind age: {spec.name} is not a timestamp (a gauge in seconds)")
    if window is not None:
        raise ValueError(f"kind {kind} takes no window (it reads the current value)")


def _check_kind(reading: Reading, spec: MetricSpec) -> None:
    kind = reading.kind
    if kind in ("value", "age"):
        _check_current(kind, spec, reading.window)
    else:
        if not reading.window or reading.window <= 0:
            raise ValueError(f"kind {kind} needs a window (e.g. 5m)")
        if reading.aggregate is not None:
            raise ValueError(f"aggregate applies to kinds value and age only (kind {kind} "
                             f"sums rates)")
    if kind in ("rate", "increase", "ratio") and spec.kind is Kind.GAUGE:
        raise ValueError(f"kind {kind}: {spec.name} is a gauge; rates need a counter "
                         f"(or a histogram, whose observation count is used)")
    if reading.histogram_value == "sum" and (kind not in ("rate", "increase", "ratio")
                                             or spec.kind is not Kind.HISTOGRAM):
        raise ValueError("histogram_value sum applies to the rate, increase or ratio of a "
                         "histogram only")
    if kind == "ratio" and reading.denominator_spec.kind is Kind.GAUGE:
        raise ValueError(f"denominator: {reading.denominator_spec.name} is a gauge; "
                         f"a ratio of rates needs a counter")
    if kind != "ratio" and (reading.denominator or reading.denominator_match):
        raise ValueError("denominator applies to kind ratio only")
    if kind == "quantile":
        if spec.kind is not Kind.HISTOGRAM:
            raise ValueError(f"kind quantile: {spec.name} is not a histogram")
        if reading.quantile is None:
            raise ValueError("kind quantile needs quantile (e.g. 0.95)")
    elif reading.quantile is not None:
        raise ValueError("quantile applies to kind quantile only")


def _check_labels(field: str, labels: dict[str, Any], spec: MetricSpec) -> None:
    unknown = sorted(set(labels) - set(spec.labels))
    if unknown:
        have = ", ".join(spec.labels) or "none"
        raise ValueError(f"{field}: {spec.prometheus_name} has no label "
                         f"{', '.join(unknown)} (its labels: {have})")


class WebhookConfig(BaseModel):
    """Outbound notifications in Alertmanager's webhook format; off by default."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    url: str = Field(default="http://127.0.0.1:5001/alerts", pattern=r"^https?://\S+$")
    headers: dict[str, str] = {}
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: Attempts after the first failed one; then the notification is dropped and counted.
    max_retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=1.0, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)
    #: Notifications waiting to be sent; past this, new ones are dropped and counted.
    queue_size: int = Field(default=100, ge=1, le=10000)
    #: Re-send still-firing alerts this often (None: only on changes).
    repeat_interval_s: float | None = Field(default=14400.0, gt=0)
    send_resolved: bool = True


class AlertingConfig(BaseModel):
    """How alerts are evaluated in-process and which ones are in force."""

    model_config = ConfigDict(extra="forbid")

    #: Evaluate alerts in-process (/health, yolo_alerts_firing, webhook).
    enabled: bool = True
    evaluation_interval_s: float = Field(default=15.0, gt=0, le=3600)
    #: Samples of the aggregator kept for windows; bounds memory.
    max_samples: int = Field(default=1000, ge=2, le=100_000)
    #: Rows the history stores in all (a row: one label set an expression keeps, at
    #: one sample); past it, the oldest samples are dropped and counted. The built-in
    #: alerts keep a handful per agent and sample, however many series there are.
    max_history_rows: int = Field(default=100_000, ge=100, le=100_000_000)
    #: Names of alerts to turn off (built-in or listed).
    disable: list[str] = []
    #: Alerts added to the built-in ones (or to ``alerts`` when that is a list).
    extra: list[AlertDefinition] = []
    #: Labels the Prometheus rules keep besides ``by``, so each scraped
    #: orchestrator alerts on its own, as its in-process evaluator does.
    group_labels: list[Annotated[str, Field(pattern=_NAME)]] = ["job", "instance"]
    webhook: WebhookConfig = WebhookConfig()
