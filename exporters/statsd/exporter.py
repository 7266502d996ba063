"""StatsD exporter: periodic, batched push of counter deltas, gauges and timers.

Nothing runs per event. Every ``flush_interval_s`` the exporter reads
:meth:`Aggregator.copy_series` (columns: no object per series) and
:meth:`Aggregator.take_timer_samples` and sends:

* **counters** as the delta since the last *delivered* value of each series (a
  StatsD server adds up what it receives and resets at its own flush). A series
  whose value went backwards was purged and re-created: it restarts from 0.
* **gauges** whose value changed since the last delivered one (all of them with
  ``send_all_gauges``).
* **timers** from the aggregator's per-interval reservoirs (at most
  ``reservoir_size`` observations per series and interval), in milliseconds, with
  sample rates whose inverses add up to the true count on the server
  (:func:`exporters.statsd.format.timer_rates`).

Lines are packed into datagrams of at most ``max_packet_bytes``
(:mod:`exporters.statsd.format`); over UDP they are paced to ``max_datagrams_per_s``
in bursts of 16, since a burst of hundreds of datagrams overflows a daemon's
receive buffer (measured against the Etsy daemon on loopback: 471 of 989
datagrams received unpaced, all 989 at 10 000/s).

A failed send never raises: it is counted in ``yolo.telemetry.exporter.errors``
and /health, counter deltas and gauges stay pending (last-sent values only move
for datagrams that were delivered) and undelivered timer lines are carried, up
to ``max_pending_lines``.

The ``statsd`` PyPI client is not used: its UDP client swallows every socket error
(failures could not be counted, nor deltas kept), it sends with an unconnected
``sendto`` so a refusing server is never noticed, its pipeline lets a line longer
than the limit through, and it has no tags. A plain socket with our own packer
does all of that in a few lines (:mod:`exporters.statsd.transport`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from exporters import Exporter, ExporterConfig, PeriodicWorker
from exporters.statsd.format import (
    COUNTER,
    MERGING_FLAVORS,
    TIMER,
    LineHead,
    Packing,
    format_number,
    gauge_lines,
    is_finite,
    line_head,
    pack,
)
from exporters.statsd.timers import TimerBacklog, timer_tails, timer_text
from exporters.statsd.transport import Transport, make_transport
from telemetry import catalogue as cat
from telemetry.catalogue import Kind

COMPONENT = "statsd"
#: Counters and gauges: what a flush reads with Aggregator.collect.
_PLAIN_SPECS = tuple(spec for spec in cat.CATALOGUE if spec.kind is not Kind.HISTOGRAM)
#: Datagrams sent back to back before pacing checks the rate.
PACING_BURST = 16


class StatsdConfig(ExporterConfig):
    #: Infinite or NaN intervals pass ``gt=0`` and then break the flush timer.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = "127.0.0.1"
    #: Strict: YAML's ``true`` would otherwise become port 1.
    port: int = Field(default=8125, ge=1, le=65535, strict=True)
    protocol: Literal["udp", "tcp"] = "udp"
    prefix: str = "yolo"
    flavor: Literal["etsy", "dogstatsd", "telegraf"] = "etsy"
    flush_interval_s: float = Field(default=10.0, gt=0)
    max_packet_bytes: int = Field(default=1432, ge=64, le=65507)
    #: Send every gauge on every flush, not only those that changed.
    send_all_gauges: bool = False
    #: Timer observations kept per series and flush interval; beyond it, sampled.
    reservoir_size: int = Field(default=256, ge=1, le=100_000)
    #: Undelivered timer values carried to the next flush while the server is down.
    max_pending_lines: int = Field(default=10_000, ge=0)
    #: etsy and telegraf: one line per timer series carries many values
    #: (``name:12|ms:15|ms``), which both servers read as separate observations.
    merge_timer_values: bool = True
    #: Bound on one connect or send; a flush is also bounded by flush_interval_s.
    timeout_s: float = Field(default=2.0, gt=0)
    #: TCP only: longest wait between reconnect attempts (doubling from 0.5 s).
    max_backoff_s: float = Field(default=60.0, gt=0)
    #: UDP only: pace a flush's datagrams to at most this rate (0: no pacing). UDP
    #: has no flow control; an unpaced burst overflows a daemon's receive buffer.
    max_datagrams_per_s: float = Field(default=10_000.0, ge=0)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not all(c.isascii() and (c.isalnum() or c in "_.-") for c in value):
            raise ValueError("expected letters, digits, '_', '-' and '.' only (or empty)")
        return value.strip(".")


@dataclass
class _SeriesState:
    head: LineHead
    sent: float | None = None  # last delivered value (counters: cumulative; gauges: value)
    seen: int = 0  # flush generation that last saw the series


class StatsdExporter(Exporter):
    """Pushes the aggregates to a StatsD server on a timer (see the module doc)."""

    name = "statsd"
    Config = StatsdConfig

    def __init__(self, config: StatsdConfig, aggregator: Any, telemetry: Any) -> None:
        super().__init__(config, aggregator, telemetry)
        self._lock = threading.Lock()
        self._series: dict[tuple, _SeriesState] = {}
        #: Timer values waiting to be sent, "value|ms[|@rate][tags]" by line head.
        self._pending_timers = TimerBacklog()
        self._generation = 0
        self._transport: Transport | None = None
        self._worker: PeriodicWorker | None = None
        self._stopped = False
        self.lines_sent = 0
        self.datagrams_sent = 0

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        self.aggregator.enable_timer_reservoirs(cfg.reservoir_size)
        self._transport = self._new_transport()
        self._worker = PeriodicWorker("telemetry-statsd", cfg.flush_interval_s,
                                      lambda: self.flush(cfg.flush_interval_s),
                                      self.status, self.aggregator)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the timer, then send what is pending within ``timeout_s``."""
        if self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        if self._worker is not None:
            self._worker.stop(timeout_s / 2)
        if self._lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            try:
                self._flush(deadline, final=True)
            except Exception as error:  # stopping must finish whatever happens
                self.status.failed(error, self.aggregator)
            finally:
                self._lock.release()
        if self._transport is not None:
            self._transport.close()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send what is pending now; True when every line was delivered."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            return False
        try:
            return self._flush(deadline, final=False)
        except Exception as error:  # a bug here must not kill the timer or the caller
            self.status.failed(error, self.aggregator)
            return False
        finally:
            self._lock.release()

    def health(self) -> dict[str, Any]:
        cfg = self.config
        document = self.status.as_dict()
        document.update({
            "address": f"{cfg.protocol}://{cfg.host}:{cfg.port}",
            "flavor": cfg.flavor,
            "lines_sent": self.lines_sent,
            "datagrams_sent": self.datagrams_sent,
            "pending_timer_lines": len(self._pending_timers),
        })
        return document

    # -- one flush ------------------------------------------------------------

    def _new_transport(self) -> Transport:
        cfg = self.config
        return make_transport(cfg.protocol, cfg.host, cfg.port, cfg.timeout_s, cfg.max_backoff_s)

    def _flush(self, deadline: float, final: bool) -> bool:
        if self._transport is None:  # flushed without start()
            self._transport = self._new_transport()
        late = self._transport.pending_error()
        if late is not None:
            self.status.failed(late, self.aggregator)
        batch = self._build()
        packing = pack(batch.groups, self.config.max_packet_bytes)
        done: set[int] = set(packing.too_long)  # groups handled: delivered or undeliverable
        if packing.too_long:
            too_long = sum(len(batch.groups[index]) for index in packing.too_long)
            self.aggregator.count_dropped(COMPONENT, "too_long", too_long)
        error: OSError | None = None
        waiting = bool(packing.datagrams) and not final and not self._transport.ready()
        if packing.datagrams and not waiting:
            error = self._send(packing, done, deadline)
        undelivered = self._settle(batch, done)
        if error is not None:
            self.status.failed(error, self.aggregator)
        elif packing.datagrams and not waiting:
            self.status.succeeded()
        if final and undelivered:
            self.aggregator.count_dropped(COMPONENT, "send_failed", undelivered)
        return error is None and not waiting

    def _build(self) -> _Batch:
        """This flush's lines, in groups, and what each group records once delivered."""
        flavor, all_gauges = self.config.flavor, self.config.send_all_gauges
        # Histograms are sent from their reservoirs alone: their buckets are not read.
        copies = self.aggregator.copy_series(_PLAIN_SPECS)
        self._generation += 1
        batch = _Batch()
        invalid = 0
        for copy in copies:
            spec = copy.spec
            kind = spec.kind.value
            for labels, value in zip(copy.labels, copy.values, strict=True):
                state = self._state(spec, labels)
                if not is_finite(value):
                    invalid += 1
                elif kind == "counter":
                    base = state.sent or 0.0
                    if value < base:  # purged and re-created: it restarted from 0
                        base = state.sent = 0.0
                    if value != base:
                        batch.add([state.head.line(format_number(value - base), COUNTER)],
                                  (state, value))
                elif all_gauges or state.sent != value:
                    batch.add(gauge_lines(state.head, value, flavor), (state, value))
        if invalid:
            self.aggregator.count_dropped(COMPONENT, "invalid_value", invalid)
        self._add_timer_lines()
        # Series not seen this flush are forgotten (a timer series without values
        # this interval too: its line head is made again when it has some).
        self._series = {key: st for key, st in self._series.items()
                        if st.seen == self._generation}
        batch.first_timer = len(batch.groups)
        merge = self.config.merge_timer_values and flavor in MERGING_FLAVORS
        for line, values in self._pending_timers.lines(merge, self.config.max_packet_bytes):
            batch.groups.append([line])
            batch.timer_values.append(values)
        return batch

    def _state(self, spec: Any, labels: tuple[str, ...]) -> _SeriesState:
        key = (spec, labels)
        state = self._series.get(key)
        if state is None:
            head = line_head(self.config.flavor, spec.statsd_name(self.config.prefix),
                             spec.labels, labels)
            state = self._series[key] = _SeriesState(head)
        state.seen = self._generation
        return state

    def _add_timer_lines(self) -> None:
        """Format this interval's reservoirs as timer lines, after the carried ones."""
        for taken in self.aggregator.take_timer_samples():
            head = self._state(taken.spec, taken.labels).head
            count = len(taken.values)
            templates = timer_tails(count, taken.count, _Templates(head))
            scale = 1000.0 if taken.spec.unit == "s" else 1.0
            self._pending_timers.add(head.before, timer_text(taken.values, scale, templates),
                                     count)

    def _send(self, packing: Packing, done: set[int], deadline: float) -> OSError | None:
        """Send datagrams in order until one fails; mark the groups that went out."""
        assert self._transport is not None
        rate = self.config.max_datagrams_per_s if self.config.protocol == "udp" else 0.0
        started = time.monotonic()
        datagrams = packing.datagrams
        for first in range(0, len(datagrams), PACING_BURST):
            if rate and first:
                wait = min(started + first / rate, deadline) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # the exporter's own thread: no one else waits
            burst = datagrams[first:first + PACING_BURST]
            sent, error = self._transport.send_burst([d.payload for d in burst], deadline)
            for datagram in burst[:sent]:
                done.update(datagram.groups)
                self.lines_sent += datagram.lines
            self.datagrams_sent += sent
            if error is not None:
                return error
        return None

    def _settle(self, batch: _Batch, done: set[int]) -> int:
        """Advance last-sent values of delivered groups and carry undelivered timer
        lines (the newest, up to ``max_pending_lines``); return lines not delivered."""
        undelivered = 0
        for index, (state, value) in batch.commits.items():
            if index in done:
                state.sent = value
            else:
                undelivered += len(batch.groups[index])
        lines = range(batch.first_timer, batch.first_timer + len(batch.timer_values))
        if all(index in done for index in lines):  # the usual case: all delivered
            self._pending_timers.clear()
            return undelivered
        pending, kept, offset = list(self._pending_timers.values()), [], 0
        for index, values in zip(lines, batch.timer_values, strict=True):
            if index not in done:
                kept.extend(pending[offset:offset + values])
            offset += values
        overflow = max(len(kept) - self.config.max_pending_lines, 0)
        if overflow:
            self.aggregator.count_dropped(COMPONENT, "backlog_full", overflow)
            kept = kept[overflow:]
        self._pending_timers.replace(kept)
        return undelivered + len(kept)


class _Templates(dict[str | None, str]):
    """A series' timer value templates by rate, ``%.3f|ms|@rate`` and its tags (for
    :func:`~exporters.statsd.timers.timer_text`), made on first use."""

    def __init__(self, head: LineHead) -> None:
        super().__init__()
        self.head = head

    def __missing__(self, rate: str | None) -> str:
        template = self[rate] = "%.3f" + self.head.tail(TIMER, rate).replace("%", "%%")
        return template


@dataclass
class _Batch:
    groups: list[list[str]] = field(default_factory=list)
    #: group index -> (series state, value to record as sent once delivered)
    commits: dict[int, tuple[_SeriesState, float]] = field(default_factory=dict)
    first_timer: int = 0  # groups from here on are the pending timer lines, in order
    timer_values: list[int] = field(default_factory=list)  # values on each timer line

    def add(self, lines: list[str], commit: tuple[_SeriesState, float]) -> None:
        self.commits[len(self.groups)] = commit
        self.groups.append(lines)
