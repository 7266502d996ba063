"""Alert definitions: one YAML entry yields a Prometheus rule and an in-process check.

An alert names a catalogue metric and says how to read it:

* ``value``: the gauge (or counter) itself, aggregated over ``by`` with ``aggregate``;
* ``rate``: per-second increase of a counter over ``window`` (PromQL ``rate``);
* ``ratio``: rate of the metric (``match`` selects the numerator) over the rate of
  ``denominator`` (default: the same metric without ``match``), e.g. failed / all
  workflows;
* ``quantile``: ``histogram_quantile`` of a histogram over ``window``.

The result is compared with ``threshold``; a label set that keeps matching for
``for`` fires. :mod:`telemetry.alerting.rules` turns a definition into PromQL and
:mod:`telemetry.alerting.evaluator` evaluates the same definition from the aggregator, so
Prometheus and ``/health`` agree on what is wrong.

``alerts: null`` in the config means :data:`DEFAULT_ALERTS`; a list replaces them.
``alerting.extra`` adds alerts to whichever set is in force and
``alerting.disable`` removes alerts by name.
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
LabelMatch = dict[Annotated[str, Field(pattern=_NAME)], str]


class AlertDefinition(BaseModel):
    """One alert; see the module docstring for the kinds."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=_NAME)
    metric: str
    kind: Literal["value", "rate", "ratio", "quantile"] = "value"
    #: Equality label matchers on ``metric`` (the numerator of a ratio).
    match: LabelMatch = {}
    #: Ratio only: the denominator's metric (default: ``metric``) and its matchers.
    denominator: str | None = None
    denominator_match: LabelMatch = {}
    #: Quantile only: which quantile, e.g. 0.95.
    quantile: float | None = Field(default=None, gt=0, lt=1)
    #: Value only: how series with the same ``by`` labels combine (default max).
    aggregate: Literal["sum", "max", "min", "avg"] | None = None
    window: Duration | None = None
    comparison: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float
    for_: Duration = Field(default=0.0, alias="for")
    by: tuple[Annotated[str, Field(pattern=_NAME)], ...] = ()
    severity: Literal["warning", "critical"] = "warning"
    summary: str = Field(min_length=1)
    description: str = ""
    runbook_url: str | None = None

    @field_validator("metric", "denominator")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cat.lookup(value)
            except KeyError:
                raise ValueError(f"no metric {value!r} in the catalogue (use a canonical name "
                                 f"like yolo.errors or a Prometheus one like "
                                 f"yolo_errors_total)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AlertDefinition:
        spec = self.spec
        _check_kind(self, spec)
        _check_labels("match", self.match, spec)
        _check_labels("by", dict.fromkeys(self.by, ""), spec)
        if len(set(self.by)) != len(self.by):
            raise ValueError("by: a label is listed twice")
        if self.kind == "ratio":
            denominator = self.denominator_spec
            _check_labels("denominator_match", self.denominator_match, denominator)
            _check_labels("by", dict.fromkeys(self.by, ""), denominator)
            if denominator == spec and self.match == self.denominator_match:
                raise ValueError("ratio: numerator and denominator are the same series; set "
                                 "match (e.g. {outcome: failed}) or denominator")
        for field in ("summary", "description"):
            check_template(getattr(self, field), self.by, field)
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

    @property
    def labels(self) -> dict[str, str]:
        """Labels every instance of this alert carries besides its ``by`` labels."""
        return {"alertname": self.name, "severity": self.severity}

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaches the threshold (NaN never does, as in PromQL)."""
        return _COMPARE[self.comparison](value, self.threshold)


_COMPARE = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _check_kind(alert: AlertDefinition, spec: MetricSpec) -> None:
    kind = alert.kind
    if kind == "value":
        if spec.kind is Kind.HISTOGRAM:
            raise ValueError(f"kind value: {spec.name} is a histogram; use kind quantile")
        if alert.window is not None:
            raise ValueError("kind value takes no window (it reads the current value)")
    else:
        if not alert.window or alert.window <= 0:
            raise ValueError(f"kind {kind} needs a window (e.g. 5m)")
        if alert.aggregate is not None:
            raise ValueError(f"aggregate applies to kind value only (kind {kind} sums rates)")
    if kind in ("rate", "ratio") and spec.kind is Kind.GAUGE:
        raise ValueError(f"kind {kind}: {spec.name} is a gauge; rates need a counter "
                         f"(or a histogram, whose observation count is used)")
    if kind == "ratio" and alert.denominator_spec.kind is Kind.GAUGE:
        raise ValueError(f"denominator: {alert.denominator_spec.name} is a gauge; "
                         f"a ratio of rates needs a counter")
    if kind != "ratio" and (alert.denominator or alert.denominator_match):
        raise ValueError("denominator applies to kind ratio only")
    if kind == "quantile":
        if spec.kind is not Kind.HISTOGRAM:
            raise ValueError(f"kind quantile: {spec.name} is not a histogram")
        if alert.quantile is None:
            raise ValueError("kind quantile needs quantile (e.g. 0.95)")
    elif alert.quantile is not None:
        raise ValueError("quantile applies to kind quantile only")


def _check_labels(field: str, labels: dict[str, str], spec: MetricSpec) -> None:
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
    #: Names of alerts to turn off (built-in or listed).
    disable: list[str] = []
    #: Alerts added to the built-in ones (or to ``alerts`` when that is a list).
    extra: list[AlertDefinition] = []
    #: Labels the Prometheus rules keep besides ``by``, so each scraped
    #: orchestrator alerts on its own, as its in-process evaluator does.
    group_labels: list[Annotated[str, Field(pattern=_NAME)]] = ["job", "instance"]
    webhook: WebhookConfig = WebhookConfig()


def effective_alerts(alerts: list[AlertDefinition] | None,
                     alerting: AlertingConfig) -> tuple[AlertDefinition, ...]:
    """The alerts in force: ``alerts`` (None: the defaults) + extra - disable.

    Raises ValueError on duplicate names or a disabled name that no alert has.
    """
    chosen = list(DEFAULT_ALERTS if alerts is None else alerts) + list(alerting.extra)
    names = [alert.name for alert in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"alerts: more than one alert is named {', '.join(duplicates)}")
    unknown = sorted(set(alerting.disable) - set(names))
    if unknown:
        raise ValueError(f"alerting.disable: no alert named {', '.join(unknown)} "
                         f"(alerts: {', '.join(names) or 'none'})")
    return tuple(alert for alert in chosen if alert.name not in alerting.disable)


def _default(**fields: Any) -> AlertDefinition:
    return AlertDefinition.model_validate(fields)


#: The built-in alerts (documented in docs/monitoring.md, "Alerts").
DEFAULT_ALERTS: tuple[AlertDefinition, ...] = (
    _default(
        name="HighErrorRate", metric=cat.ERRORS.name, kind="rate", window="5m",
        threshold=0.1, **{"for": "5m"}, severity="critical",
        summary="Agents raise {{ $value | humanize }} errors/s",
        description="More than 0.1 agent errors per second over 5 minutes, for 5 minutes."),
    _default(
        name="ContextOverflow", metric=cat.CONTEXT_TOKENS.name, kind="value", aggregate="max",
        threshold=9000, **{"for": "1m"}, by=["agent"], severity="critical",
        summary="Agent {{ $labels.agent }} holds {{ $value | humanize }} context tokens",
        description="The agent's context has stayed above 9000 tokens for 1 minute; "
                    "it is close to the model's limit and needs a refresh."),
    _default(
        name="HandoffLatencyHigh", metric=cat.HANDOFF_DURATION.name, kind="quantile",
        quantile=0.95, window="5m", threshold=30, **{"for": "10m"}, severity="warning",
        summary="Handoff p95 latency is {{ $value | humanizeDuration }}",
        description="95% of handoffs over 5 minutes took up to this long; above 30s "
                    "for 10 minutes."),
    _default(
        name="WorkflowFailureRatio", metric=cat.WORKFLOWS.name, kind="ratio",
        match={"outcome": "failed"}, window="15m", threshold=0.2, **{"for": "10m"},
        severity="warning",
        summary="{{ $value | humanizePercentage }} of workflows fail",
        description="More than 20% of the workflows finished over 15 minutes failed, "
                    "for 10 minutes."),
    _default(
        name="SafetyBlockSurge", metric=cat.SAFETY_BLOCKS.name, kind="rate", window="5m",
        threshold=0.05, **{"for": "5m"}, severity="warning",
        summary="Safety rules block {{ $value | humanize }} actions/s",
        description="More than 3 actions a minute stopped by safety rules over 5 minutes, "
                    "for 5 minutes."),
    _default(
        name="StateSaveSlow", metric=cat.STATE_SAVE_DURATION.name, kind="quantile",
        quantile=0.95, window="10m", threshold=1.0, **{"for": "10m"}, severity="warning",
        summary="State save p95 is {{ $value | humanizeDuration }}",
        description="95% of state saves over 10 minutes took up to this long; above 1s "
                    "for 10 minutes."),
    _default(
        name="TelemetryExporterFailing", metric=cat.EXPORTER_ERRORS.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["exporter"], severity="warning",
        summary="Telemetry exporter {{ $labels.exporter }} is failing",
        description="The exporter has failed exports for 5 minutes; its backend is down "
                    "or misconfigured (see /health)."),
    _default(
        name="TelemetryInvalidEvents", metric=cat.INVALID_EVENTS.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["signal"], severity="warning",
        summary="Invalid {{ $labels.signal }} events are being dropped",
        description="The orchestrator keeps sending events with missing or invalid fields; "
                    "they are dropped and counted."),
    _default(
        name="TelemetryDroppingItems", metric=cat.DROPPED.name, kind="rate", window="5m",
        threshold=0, **{"for": "5m"}, by=["component"], severity="warning",
        summary="Telemetry {{ $labels.component }} is dropping items",
        description="A queue is full or a backend is unreachable; telemetry data is lost."),
    _default(
        name="TelemetrySeriesOverflow", metric=cat.SERIES_OVERFLOW.name, kind="rate",
        window="5m", threshold=0, **{"for": "5m"}, by=["metric"], severity="warning",
        summary="{{ $labels.metric }} hit its label-set limit",
        description="New label sets go to the __overflow__ series; a label has too many "
                    "values or limits.max_series_per_metric is too low."),
)
