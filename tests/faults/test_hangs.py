"""Telemetry never hangs its host: interrupts, signal handlers and finalizers that land
inside a send, and ``stop()`` called from any of them.

Each scenario runs in a child interpreter with a deadline (tests/faults/scenario.py),
so a deadlock fails the test with every thread's stack instead of hanging the suite.
"""

from __future__ import annotations

import pytest

from tests.faults.scenario import run_scenario

#: Interrupts injected at random points of a send loop.
INTERRUPTS = 1200


def test_interrupts_at_random_points_of_a_send_never_leave_a_lock_held() -> None:
    """``_thread.interrupt_main`` raises KeyboardInterrupt wherever the main thread is,
    most often inside the aggregator or the tracer. After each one the next send, a
    collect from another thread and finally stop() must complete, and every event is
    either counted or was the one interrupted."""
    results = run_scenario(f"""
        import random, threading, time, _thread
        from opentelemetry.sdk.trace import TracerProvider
        import telemetry
        from telemetry import catalogue as cat
        from telemetry.config import TracingConfig
        from telemetry.tracing.tracer import SignalTracer
        from telemetry.signals import decision_made, handoff_completed, agent_activated

        tel = telemetry.start({{"server": {{"enabled": False}}}})
        agg = tel.aggregator
        provider = TracerProvider(shutdown_on_exit=False)
        tracer = SignalTracer(provider.get_tracer("t"), agg, TracingConfig())
        tracer.attach()
        injected = caught = 0
        attempted = completed = 0  # handoffs: a send that was interrupted is in between
        # Set by the main thread once it is inside its try block again: an interrupt
        # is only ever injected where the scenario can catch it.
        sending = threading.Event()

        def inject():
            global injected
            rng = random.Random(7)
            for _ in range({INTERRUPTS}):
                if not sending.wait(20):
                    return
                sending.clear()
                time.sleep(rng.uniform(0, 0.0004))
                injected += 1
                _thread.interrupt_main()

        def collect_elsewhere():
            worker = threading.Thread(target=agg.collect, daemon=True)
            worker.start()
            worker.join(5)
            assert not worker.is_alive(), "collect() blocked after an interrupt"

        def handoff():
            global attempted, completed
            attempted += 1
            handoff_completed.send(None, from_agent="pm", to_agent="dev", duration_s=0.25,
                                   workflow_id="wf")
            completed += 1

        injector = threading.Thread(target=inject, daemon=True)
        injector.start()
        while caught < {INTERRUPTS}:
            try:
                sending.set()
                while True:
                    handoff()
                    decision_made.send(None, agent="pm", decision_type="plan",
                                       duration_s=0.1, workflow_id="wf")
                    agent_activated.send(None, agent="pm", workflow_id="wf")
            except KeyboardInterrupt:
                caught += 1
                assert not agg._guard.held_here() and not tracer._guard.held_here()
                handoff()  # the next send completes
                collect_elsewhere()
        recorded = agg.value(cat.HANDOFFS, ("pm", "dev"))
        tracer.close()
        started = time.monotonic()
        tel.stop(5)
        report(injected=injected, caught=caught, attempted=attempted, completed=completed,
               recorded=recorded, state=tel.state, stop_s=time.monotonic() - started)
    """, deadline_s=120)
    assert results["caught"] == results["injected"] == INTERRUPTS
    assert results["state"] == "stopped" and results["stop_s"] < 5
    # Every handoff send that returned was recorded; an interrupted one may be or not.
    assert results["completed"] <= results["recorded"] <= results["attempted"]
    assert results["attempted"] - results["completed"] <= INTERRUPTS


@pytest.mark.parametrize("exporter", ["prometheus", "statsd", "otlp"])
def test_stop_from_a_sigterm_handler_during_sends(exporter: str) -> None:
    """The handler calls stop() while the main thread is sending, usually inside the
    aggregator's lock; stop finishes, the final flush carries every event recorded."""
    results = run_scenario(f"""
        import os, random, signal, threading, time
        import telemetry
        from telemetry import catalogue as cat
        from telemetry.signals import handoff_completed
        from tests.support.statsd_fakes import UdpSink
        from tests.support.http_sink import Collector
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest)

        exporter = {exporter!r}
        rng = random.Random(11)
        rounds = []
        for round_ in range(12):
            config = {{"server": {{"enabled": exporter == "prometheus", "port": 0}},
                       "exporters": {{"prometheus": {{"enabled": exporter == "prometheus"}}}}}}
            sink = collector = None
            if exporter == "statsd":
                sink = UdpSink()
                config["exporters"]["statsd"] = {{"enabled": True, "port": sink.port,
                                                  "flush_interval_s": 3600}}
            if exporter == "otlp":
                collector = Collector("/v1/metrics")
                config["exporters"]["otlp"] = {{"enabled": True, "protocol": "http/protobuf",
                                                "endpoint": collector.url.rsplit("/v1", 1)[0],
                                                "interval_s": 3600, "traces": False}}
            tel = telemetry.start(config)
            signal.signal(signal.SIGTERM, lambda *_: tel.stop(5))
            killer = threading.Timer(rng.uniform(0.02, 0.1),
                                     lambda: os.kill(os.getpid(), signal.SIGTERM))
            killer.start()
            sent = 0
            started = time.monotonic()
            while tel.state != "stopped" and time.monotonic() - started < 30:
                handoff_completed.send(None, from_agent="pm", to_agent="dev", duration_s=0.25)
                sent += 1
            recorded = tel.aggregator.value(cat.HANDOFFS, ("pm", "dev"))
            delivered = None
            if sink is not None:
                delivered = sum(float(line.split(":")[1].split("|")[0]) for line in sink.lines()
                                if line.startswith("yolo.handoffs") and line.endswith("|c"))
                sink.close()
            if collector is not None:
                delivered = 0
                for body in collector.bodies:
                    request = ExportMetricsServiceRequest.FromString(body)
                    for rm in request.resource_metrics:
                        for sm in rm.scope_metrics:
                            for metric in sm.metrics:
                                if metric.name == "yolo.handoffs":
                                    delivered = max(delivered, sum(
                                        p.as_double or p.as_int for p in metric.sum.data_points))
                collector.close()
            rounds.append(dict(sent=sent, recorded=recorded, delivered=delivered,
                               state=tel.state))
        report(rounds=rounds)
    """, deadline_s=150)
    for found in results["rounds"]:
        assert found["state"] == "stopped", found
        # The send the signal landed in is recorded, unless the handler ran before
        # blinker handed the event over: then that send came after the stop.
        assert found["sent"] - 1 <= found["recorded"] <= found["sent"], found
        if exporter != "prometheus":
            assert found["delivered"] == found["recorded"], found


def test_a_finalizer_that_sends_during_a_send_is_recorded_after_it() -> None:
    """Garbage cycles whose finalizers send are freed by collections that run at
    allocations inside the aggregator's and the tracer's locks (the thresholds and
    the padding make sure some do). A finalizer that sends must neither block nor be
    lost; one that calls stop() stops telemetry right after the interrupted event."""
    results = run_scenario("""
        import gc
        from opentelemetry.sdk.trace import TracerProvider
        import telemetry
        from telemetry import catalogue as cat
        from telemetry.config import TracingConfig
        from telemetry.tracing.tracer import SignalTracer
        from telemetry.signals import agent_activated, handoff_completed, safety_blocked

        tel = telemetry.start({"server": {"enabled": False}})
        agg = tel.aggregator
        provider = TracerProvider(shutdown_on_exit=False)
        tracer = SignalTracer(provider.get_tracer("t"), agg, TracingConfig())
        tracer.attach()
        counts = {"finalized": 0, "in_aggregator": 0, "in_tracer": 0}

        def held(lock):  # by this thread: the only one sending here
            return lock._is_owned() if hasattr(lock, "_is_owned") else lock.locked()

        class Sends:
            def __init__(self):
                self.cycle = self
            def __del__(self):
                in_aggregator, in_tracer = held(agg._lock), held(tracer._lock)
                safety_blocked.send(None, agent="gc", rule="finalizer")
                counts["finalized"] += 1
                counts["in_aggregator"] += in_aggregator
                counts["in_tracer"] += in_tracer

        def garbage(kind, number):
            holder = [kind() for _ in range(2)]
            gc.collect(0)  # they reach the next generation, then become garbage there
            holder.clear()
            return [[] for _ in range(number % 5)]  # moves the next collection around

        gc.set_threshold(3, 0, 100000)
        sent = 0
        for number in range(3000):
            pad = garbage(Sends, number)
            handoff_completed.send(None, from_agent=f"a{number % 300}", to_agent="dev",
                                   duration_s=0.25, workflow_id="wf")
            agent_activated.send(None, agent="pm", workflow_id="wf")
            sent += 1
        gc.set_threshold(700, 10, 10)
        gc.collect()
        blocks = agg.value(cat.SAFETY_BLOCKS, ("gc", "finalizer"))
        handoffs = sum(agg.value(cat.HANDOFFS, (f"a{n}", "dev")) for n in range(300))

        class Stops:
            def __init__(self):
                self.cycle = self
            def __del__(self):
                tel.stop(5)

        gc.set_threshold(3, 0, 100000)
        number = 0
        while tel.state != "stopped" and number < 1000:
            pad = garbage(Stops, number)
            handoff_completed.send(None, from_agent="pm", to_agent="dev", duration_s=0.25)
            number += 1
        gc.set_threshold(700, 10, 10)
        tracer.close()
        report(sent=sent, handoffs=handoffs, blocks=blocks, state=tel.state, **counts)
    """, deadline_s=90)
    assert results["in_aggregator"] > 0, "no finalizer ran inside the aggregator's lock"
    assert results["in_tracer"] > 0, "no finalizer ran inside the tracer's lock"
    assert results["handoffs"] == results["sent"]
    assert results["blocks"] == results["finalized"] == 2 * results["sent"]
    assert results["state"] == "stopped"


def test_stop_from_another_thread_while_a_send_is_in_progress() -> None:
    results = run_scenario("""
        import threading, time
        import telemetry
        from telemetry import catalogue as cat
        from telemetry.signals import handoff_completed

        tel = telemetry.start({"server": {"enabled": False}})
        sending = threading.Event()
        def send_forever():
            while tel.state != "stopped":
                handoff_completed.send(None, from_agent="a", to_agent="b", duration_s=0.1)
                sending.set()
        sender = threading.Thread(target=send_forever, daemon=True)
        sender.start()
        assert sending.wait(10)
        started = time.monotonic()
        tel.stop(5)
        stop_s = time.monotonic() - started
        sender.join(10)
        report(stop_s=stop_s, sender_done=not sender.is_alive(), state=tel.state)
    """, deadline_s=60)
    assert results["state"] == "stopped" and results["sender_done"]
    assert results["stop_s"] < 5


#: Retained memory allowed after 1,000 distinct one-MiB names: the caches hold capped
#: names only (max_series label sets of max_label_length characters, a few MiB).
MEMORY_BOUND_MIB = 16


def test_memory_stays_bounded_under_a_thousand_one_mib_names() -> None:
    """The names differ only past the label cap, so they fold into one series each;
    no cache may keep the senders' original strings."""
    results = run_scenario(f"""
        import gc, tracemalloc
        from opentelemetry.sdk.trace import TracerProvider
        from telemetry.aggregation.aggregator import Aggregator
        from telemetry.config import TracingConfig
        from telemetry.tracing.tracer import SignalTracer
        from telemetry.signals import (agent_activated, agent_deactivated, context_updated,
                                       decision_made, handoff_completed)

        agg = Aggregator()
        agg.connect()
        provider = TracerProvider(shutdown_on_exit=False)
        tracer = SignalTracer(provider.get_tracer("t"), agg, TracingConfig())
        tracer.attach()
        handoff_completed.send(None, from_agent="warm", to_agent="up", duration_s=0.1)
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        bound = {MEMORY_BOUND_MIB} * 2**20
        peak_retained = 0
        for number in range(1000):
            name = "n" * 2**20 + str(number)
            handoff_completed.send(None, from_agent=name, to_agent="dev", duration_s=0.1)
            decision_made.send(None, agent=name, decision_type=name, duration_s=0.1)
            context_updated.send(None, agent=name, items=1, tokens=2)
            agent_activated.send(None, agent=name, workflow_id=name)
            if number % 2:
                agent_deactivated.send(None, agent=name, workflow_id=name)
            del name
            retained = tracemalloc.get_traced_memory()[0] - baseline
            peak_retained = max(peak_retained, retained)
            if retained > bound:
                break
        report(retained_mib=peak_retained / 2**20, events=agg.snapshot()[1].events_total)
    """, deadline_s=240)
    assert results["retained_mib"] < MEMORY_BOUND_MIB, results
    assert results["events"] >= 4500 + 1, results


def test_stop_from_atexit_after_an_interrupted_send_flushes_what_was_counted() -> None:
    """The program is interrupted inside a send, never calls stop() and ends with
    SystemExit: the ``atexit`` stop still runs, bounded, and flushes every event the
    aggregator counted to StatsD."""
    from tests.support.statsd_fakes import UdpSink

    sink = UdpSink()
    try:
        results = run_scenario(f"""
            import atexit, threading, time, _thread
            import telemetry
            from telemetry import catalogue as cat
            from telemetry.signals import handoff_completed

            # Registered first, so it runs last: after the stop telemetry registered.
            atexit.register(lambda: report(counted=tel.aggregator.value(
                cat.HANDOFFS, ("pm", "dev")), state=tel.state))
            tel = telemetry.start({{"server": {{"enabled": False}}, "exporters": {{
                "prometheus": {{"enabled": False}},
                "statsd": {{"enabled": True, "port": {sink.port}, "flush_interval_s": 3600}}}}}})
            threading.Timer(0.05, _thread.interrupt_main).start()
            try:
                while True:
                    handoff_completed.send(None, from_agent="pm", to_agent="dev",
                                           duration_s=0.25)
            except KeyboardInterrupt:
                raise SystemExit(0)
        """, deadline_s=60)
        lines = sink.lines()
    finally:
        sink.close()
    delivered = sum(float(line.split(":")[1].split("|")[0]) for line in lines
                    if line.startswith("yolo.handoffs") and line.endswith("|c"))
    assert results["state"] == "stopped"
    assert delivered == results["counted"] > 0
