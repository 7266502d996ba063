"""One trace across two processes: pm (process A) hands work to dev (process B).

Run it against any OTLP receiver (an OpenTelemetry Collector, Jaeger, rotel...)::

    python docs/examples/propagation.py --endpoint http://127.0.0.1:4318
    python docs/examples/propagation.py --endpoint http://127.0.0.1:4317 --protocol grpc

Process A runs the workflow. At the pm -> dev handoff it puts the W3C trace context
into the payload it sends to B (here a JSON line on B's stdin; in production a
queue message, an HTTP body, a file...). B passes the payload's trace fields to its
own ``agent_activated`` signal, so B's ``invoke_agent dev`` span is a child of A's
``handoff pm -> dev`` span: the receiver shows one trace with both processes in it.

Each process prints one JSON line: its instance id, the workflow id and the
``traceparent`` it sent (A) or received (B).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

import telemetry
from telemetry.tracing import propagation
from telemetry.tracing.traced import TracedOrchestrator


def telemetry_config(args: argparse.Namespace) -> dict:
    """OTLP only: no HTTP server, so both processes can run side by side."""
    return {
        "service_name": "yolo-example",
        "server": {"enabled": False},
        "exporters": {
            "prometheus": {"enabled": False},
            "otlp": {"enabled": True, "endpoint": args.endpoint, "protocol": args.protocol,
                     "interval_s": 60},
        },
    }


class PlanningProcess(TracedOrchestrator):
    """Process A: the workflow, pm's work, and the handoff to the dev process."""

    def run(self, args: argparse.Namespace, tel: telemetry.Telemetry) -> None:
        workflow_id = args.workflow_id or f"wf-{uuid.uuid4().hex[:12]}"
        with self.workflow(workflow_id, "cross-process"):
            with self.agent("pm"), self.decision("pm", "prioritise"):
                time.sleep(0.01)
            with self.handoff("pm", "dev") as handoff:
                payload = handoff.inject({"workflow_id": workflow_id, "story": "S-1"})
                worker = subprocess.run(
                    [sys.executable, __file__, "--endpoint", args.endpoint,
                     "--protocol", args.protocol, "worker"],
                    input=json.dumps(payload), capture_output=True, text=True, check=True,
                    timeout=60)
        print(json.dumps({"process": "A", "instance_id": tel.instance_id,
                          "workflow_id": workflow_id, "traceparent": payload["traceparent"]}))
        print(worker.stdout.strip())


class DevProcess(TracedOrchestrator):
    """Process B: continues the trace it received in the handoff payload."""

    def run(self, payload: dict, tel: telemetry.Telemetry) -> None:
        workflow_id = payload["workflow_id"]
        with self.agent("dev", workflow_id, **propagation.signal_fields(payload)), \
                self.decision("dev", "implement", workflow_id):
            time.sleep(0.01)
        print(json.dumps({"process": "B", "instance_id": tel.instance_id,
                          "workflow_id": workflow_id, "traceparent": payload["traceparent"]}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://127.0.0.1:4318")
    parser.add_argument("--protocol", default="http/protobuf", choices=["http/protobuf", "grpc"])
    parser.add_argument("--workflow-id", default=None)
    parser.add_argument("role", nargs="?", default="planner", choices=["planner", "worker"])
    args = parser.parse_args(argv)
    with telemetry.start(telemetry_config(args)) as tel:  # stop() flushes the spans
        if args.role == "worker":
            DevProcess().run(json.loads(sys.stdin.read()), tel)
        else:
            PlanningProcess().run(args, tel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
