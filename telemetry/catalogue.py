"""The metric catalogue: every metric yolo-telemetry produces, defined once.

Exporters, the Grafana dashboard, the alert rules and the docs all read this table;
nothing else spells a metric name. Each backend derives its own name from the
canonical OpenTelemetry-style one, so the three conventions can never drift apart:

========================  ===============================  ==================
canonical (OTLP)          Prometheus                       StatsD (prefix yolo)
========================  ===============================  ==================
yolo.handoffs             yolo_handoffs_total              yolo.handoffs
yolo.handoff.duration     yolo_handoff_duration_seconds    yolo.handoff.duration
========================  ===============================  ==================

Where an OpenTelemetry semantic convention defines a metric (the GenAI client
metrics), the spec declares it (:class:`OtlpConvention`): OTLP then sends the
convention's name and attribute names, and Prometheus and StatsD keep the project's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Prometheus suffixes for the UCUM units the catalogue uses. Units in braces
#: (``{agent}``) are annotations and add no suffix, as in the OTel-to-Prometheus spec.
_PROMETHEUS_UNIT_SUFFIX = {"s": "seconds", "By": "bytes", "%": "percent"}

DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)
WORKFLOW_BUCKETS: tuple[float, ...] = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
)
STATE_IO_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)


#: The buckets the OpenTelemetry GenAI conventions recommend for
#: ``gen_ai.client.operation.duration`` (seconds) ...
GENAI_DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
#: ... and for ``gen_ai.client.token.usage`` (tokens).
GENAI_TOKEN_BUCKETS: tuple[float, ...] = (
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
    4194304.0, 16777216.0, 67108864.0,
)


@dataclass(frozen=True)
class OtlpConvention:
    """How a semantic convention names a metric over OTLP: its ``name``, the attribute
    each label becomes (``attributes``, in label order) and attributes every point
    carries (``constant``)."""

    name: str
    attributes: tuple[str, ...]
    constant: tuple[tuple[str, str], ...] = ()


class Kind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, eq=False)
class MetricSpec:
    """One metric: what it measures and how every backend names it.

    Specs compare and hash by identity: each exists once, in this module, and the
    aggregator looks series up by spec on every event, where hashing every field
    would cost more than the update itself.
    """

    name: str
    kind: Kind
    unit: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    #: Self-metrics describe telemetry itself; dashboards group them apart.
    self_metric: bool = False
    #: The OTLP name and attributes of a semantic convention, when one defines it.
    otlp: OtlpConvention | None = None
    #: The Prometheus name without ``_total``, when the derived one would not read
    #: (a unit in braces adds no suffix, yet a cost must say its currency).
    prometheus_stem: str = ""

    def __post_init__(self) -> None:
        if self.otlp is not None and len(self.otlp.attributes) != len(self.labels):
            raise ValueError(f"{self.name}: one OTLP attribute per label")

    @property
    def prometheus_unit(self) -> str:
        """The unit as Prometheus spells it (``seconds``), "" for a unit it has no word for."""
        return _PROMETHEUS_UNIT_SUFFIX.get(self.unit, "")

    @property
    def prometheus_name(self) -> str:
        """The family name as exposed (counters carry ``_total``)."""
        base = self.prometheus_stem or self.name.replace(".", "_")
        suffix = self.prometheus_unit
        if suffix and not base.endswith("_" + suffix):
            base = f"{base}_{suffix}"
        if self.kind is Kind.COUNTER:
            base += "_total"
        return base

    @property
    def prometheus_family(self) -> str:
        """The name prometheus_client's metric families take (without ``_total``)."""
        name = self.prometheus_name
        return name.removesuffix("_total") if self.kind is Kind.COUNTER else name

    @property
    def otlp_name(self) -> str:
        return self.name if self.otlp is None else self.otlp.name

    @property
    def otlp_attributes(self) -> tuple[str, ...]:
        """The OTLP attribute name of each label (the label names themselves unless a
        convention renames them)."""
        return self.labels if self.otlp is None else self.otlp.attributes

    @property
    def otlp_constant_attributes(self) -> tuple[tuple[str, str], ...]:
        """Attributes every OTLP point of this metric carries (``gen_ai.operation.name``)."""
        return () if self.otlp is None else self.otlp.constant

    def statsd_name(self, prefix: str = "yolo") -> str:
        """The dotted StatsD name under ``prefix`` (``""`` for none)."""
        stem = self.name.removeprefix("yolo.")
        return f"{prefix}.{stem}" if prefix else stem


def _counter(name: str, unit: str, help: str, *labels: str,
             self_metric: bool = False) -> MetricSpec:
    return MetricSpec(name, Kind.COUNTER, unit, help, labels, self_metric=self_metric)


def _gauge(name: str, unit: str, help: str, *labels: str,
           self_metric: bool = False) -> MetricSpec:
    return MetricSpec(name, Kind.GAUGE, unit, help, labels, self_metric=self_metric)


def _histogram(name: str, help: str, buckets: tuple[float, ...], *labels: str,
               unit: str = "s", otlp: OtlpConvention | None = None) -> MetricSpec:
    return MetricSpec(name, Kind.HISTOGRAM, unit, help, labels, buckets, otlp=otlp)


HANDOFFS = _counter("yolo.handoffs", "{handoff}", "Completed handoffs between agents.",
                    "from_agent", "to_agent")
HANDOFF_DURATION = _histogram("yolo.handoff.duration", "Time a handoff took, start to completion.",
                              DURATION_BUCKETS, "from_agent", "to_agent")
DECISIONS = _counter("yolo.decisions", "{decision}", "Decisions made by agents.",
                     "agent", "decision_type")
DECISION_DURATION = _histogram("yolo.decision.duration", "Time an agent took to make a decision.",
                               DURATION_BUCKETS, "agent")
ERRORS = _counter("yolo.errors", "{error}", "Errors raised by agents.", "agent", "error_type")
SAFETY_BLOCKS = _counter("yolo.safety_blocks", "{block}",
                         "Actions stopped by a safety rule.", "agent", "rule")
AGENTS_ACTIVE = _gauge("yolo.agents.active", "{agent}", "Agents active right now.")
AGENT_ACTIVE_TIME = _counter("yolo.agent.active", "s",
                             "Time agents spent active, counted when they deactivate.", "agent")
CONTEXT_ITEMS = _gauge("yolo.context.items", "{item}", "Items in an agent's context.", "agent")
CONTEXT_TOKENS = _gauge("yolo.context.tokens", "{token}", "Tokens in an agent's context.", "agent")
CONTEXT_REFRESH_DURATION = _histogram("yolo.context.refresh.duration",
                                      "Time an agent's context refresh took.",
                                      DURATION_BUCKETS, "agent")
WORKFLOWS_STARTED = _counter("yolo.workflows.started", "{workflow}", "Workflows started.")
WORKFLOWS = _counter("yolo.workflows", "{workflow}", "Workflows finished, by outcome.", "outcome")
WORKFLOW_DURATION = _histogram("yolo.workflow.duration", "Workflow run time, by outcome.",
                               WORKFLOW_BUCKETS, "outcome")
STATE_SAVES = _counter("yolo.state.saves", "{save}", "Orchestrator state saves.")
STATE_SAVE_DURATION = _histogram("yolo.state.save.duration", "Time a state save took.",
                                 STATE_IO_BUCKETS)
STATE_LOAD_DURATION = _histogram("yolo.state.load.duration", "Time a state load took.",
                                 STATE_IO_BUCKETS)
STATE_FILE_SIZE = _gauge("yolo.state.file.size", "By", "Size of the last saved or loaded state.")
MODE = _gauge("yolo.mode", "1", "1 for the orchestrator's current mode, 0 for the others.", "mode")
OPERATION_DURATION = _histogram("yolo.operation.duration",
                                "Time of operations timed with telemetry.profiled().",
                                DURATION_BUCKETS, "operation")
PROCESS_MEMORY = _gauge("yolo.process.memory.resident", "By",
                        "Resident memory of the orchestrator process, sampled at collection.")
PROCESS_CPU = _gauge("yolo.process.cpu", "%",
                     "CPU use of the orchestrator process since the previous sample.")
# -- agent operations: LLM and tool calls, and what operators watch for stalls, loops
# and stuck workflows (timestamps in epoch seconds: ``time() - x`` is the age).
_CHAT = (("gen_ai.operation.name", "chat"),)
LLM_CALLS = _counter("yolo.llm.calls", "{call}", "LLM calls made by agents.", "agent", "model")
LLM_ERRORS = _counter("yolo.llm.errors", "{error}", "LLM calls that failed, by error type.",
                      "agent", "model", "error_type")
LLM_CALL_DURATION = _histogram(
    "yolo.llm.call.duration", "Time an LLM call took.", GENAI_DURATION_BUCKETS,
    "agent", "model",
    otlp=OtlpConvention("gen_ai.client.operation.duration",
                        ("gen_ai.agent.name", "gen_ai.request.model"), _CHAT))
LLM_TOKEN_USAGE = _histogram(
    "yolo.llm.token.usage", "Tokens per LLM call, by type (input, output, cached_input); "
    "the sum is the token total.", GENAI_TOKEN_BUCKETS, "agent", "model", "token_type",
    unit="{token}",
    otlp=OtlpConvention("gen_ai.client.token.usage",
                        ("gen_ai.agent.name", "gen_ai.request.model", "gen_ai.token.type"),
                        _CHAT))
LLM_COST = MetricSpec("yolo.llm.cost", Kind.COUNTER, "{USD}",
                      "Cost of LLM calls in US dollars (as sent, or from the price table).",
                      ("agent", "model"), prometheus_stem="yolo_llm_cost_usd")
TOOL_CALLS = _counter("yolo.tool.calls", "{call}", "Tool calls completed by agents.",
                      "agent", "tool")
TOOL_ERRORS = _counter("yolo.tool.errors", "{error}", "Tool calls that failed, by error type.",
                       "agent", "tool", "error_type")
TOOL_CALL_DURATION = _histogram("yolo.tool.call.duration", "Time a tool call took.",
                                DURATION_BUCKETS, "agent", "tool")
TOOL_CALL_REPEATS = _counter("yolo.tool.call.repeats", "{call}",
                             "Tool calls repeating the agent's previous identical calls "
                             "(same tool and call_key) at least operations.repeat_threshold "
                             "times in a row.", "agent", "tool")
HANDOFF_LOOPS = _counter("yolo.handoff.loops", "{loop}",
                         "Handoffs back to an agent the workflow left within its last "
                         "operations.loop_window handoffs, by the agent returned to.", "agent")
AGENT_LAST_EVENT = _gauge("yolo.agent.last_event.timestamp", "s",
                          "When each active agent last sent an event (epoch s).", "agent")
AGENT_TOOL_CALL_STARTED = _gauge("yolo.agent.tool_call.started.timestamp", "s",
                                 "When the oldest open tool call of an agent started "
                                 "(epoch s); only agents inside a tool call.", "agent")
WORKFLOWS_IN_FLIGHT = _gauge("yolo.workflows.in_flight", "{workflow}",
                             "Workflows started and not yet completed or failed.")
WORKFLOW_OLDEST_START = _gauge("yolo.workflow.oldest_start.timestamp", "s",
                               "When the oldest workflow in flight started (epoch s; "
                               "0 when none).")
MODE_TIME = MetricSpec("yolo.mode.time", Kind.COUNTER, "s",
                       "Time spent in each mode, the current one up to now.", ("mode",),
                       prometheus_stem="yolo_mode")
MODE_CHANGED = _gauge("yolo.mode.changed.timestamp", "s",
                      "When the current mode began (epoch s; process start until the "
                      "first change).")
STATE_LAST_SAVE = _gauge("yolo.state.last_save.timestamp", "s",
                         "When the state was last saved (epoch s; 0 before the first save).")

ALERTS_FIRING = _gauge("yolo.alerts.firing", "{alert}",
                       "Label sets of each alert firing in the in-process evaluator "
                       "(0 when none).",
                       "alertname", "severity")

EVENTS = _counter("yolo.telemetry.events", "{event}", "Signals received and accepted.",
                  "signal", self_metric=True)
INVALID_EVENTS = _counter("yolo.telemetry.invalid_events", "{event}",
                          "Signals dropped because a field was missing or invalid.",
                          "signal", "reason", self_metric=True)
EXPORTER_ERRORS = _counter("yolo.telemetry.exporter.errors", "{error}",
                           "Failed exports or flushes, by exporter.", "exporter",
                           self_metric=True)
DROPPED = _counter("yolo.telemetry.dropped", "{item}",
                   "Items telemetry dropped (full queues, dead backends, expired spans).",
                   "component", "reason", self_metric=True)
SPANS_EXPORTED = _counter("yolo.telemetry.spans.exported", "{span}",
                          "Spans in exports the OTLP collector accepted.", self_metric=True)
SERIES_OVERFLOW = _counter("yolo.telemetry.series_overflow", "{update}",
                           "Updates routed to the overflow series because a metric hit its "
                           "label-set limit.", "metric", self_metric=True)
HANDLER_TIME = _counter("yolo.telemetry.handler", "s",
                        "Estimated time spent handling signals (sampled).", self_metric=True)

#: Every metric, in the order exporters emit them.
CATALOGUE: tuple[MetricSpec, ...] = (
    HANDOFFS, HANDOFF_DURATION, DECISIONS, DECISION_DURATION, ERRORS, SAFETY_BLOCKS,
    AGENTS_ACTIVE, AGENT_ACTIVE_TIME, CONTEXT_ITEMS, CONTEXT_TOKENS, CONTEXT_REFRESH_DURATION,
    WORKFLOWS_STARTED, WORKFLOWS, WORKFLOW_DURATION, STATE_SAVES, STATE_SAVE_DURATION,
    STATE_LOAD_DURATION, STATE_FILE_SIZE, MODE, OPERATION_DURATION, PROCESS_MEMORY, PROCESS_CPU,
    LLM_CALLS, LLM_ERRORS, LLM_CALL_DURATION, LLM_TOKEN_USAGE, LLM_COST, TOOL_CALLS,
    TOOL_ERRORS, TOOL_CALL_DURATION, TOOL_CALL_REPEATS, HANDOFF_LOOPS, AGENT_LAST_EVENT,
    AGENT_TOOL_CALL_STARTED, WORKFLOWS_IN_FLIGHT, WORKFLOW_OLDEST_START, MODE_TIME,
    MODE_CHANGED, STATE_LAST_SAVE, ALERTS_FIRING,
    EVENTS, INVALID_EVENTS, EXPORTER_ERRORS, DROPPED, SPANS_EXPORTED, SERIES_OVERFLOW,
    HANDLER_TIME,
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
BY_PROMETHEUS_NAME: dict[str, MetricSpec] = {spec.prometheus_name: spec for spec in CATALOGUE}


def lookup(name: str) -> MetricSpec:
    """Find a metric by its canonical or its Prometheus name."""
    spec = BY_NAME.get(name) or BY_PROMETHEUS_NAME.get(name)
    if spec is None:
        raise KeyError(f"no metric {name!r} in the catalogue")
    return spec
