"""The bookkeeping of the LangGraph adapter: which langchain run belongs to which graph
run and agent, and which signals each callback means. Imports no framework.

langchain reports every runnable as a run with a parent, so the adapter keeps the runs it
is following in one dict (run id -> :class:`Run`), each pointing at its graph run (a
:class:`GraphRun`, our workflow) and at the agent whose work it is. What counts:

* a **graph run** is a root LangGraph invocation (``invoke``/``stream``): a workflow,
  ``workflow_id`` its run id. An interrupt ends it; the resume is a new one.
* an **agent** is a node of that root graph (a run tagged ``graph:step:N`` whose name is
  its ``langgraph_node``), activated for each node run. Nodes of a subgraph are part of
  the top-level node that runs the subgraph; ``skip_nodes`` (the tool node, by default)
  are no agents: their work counts for the agent that ran before them.
* a **handoff** is an agent node starting after another finished in an earlier step of
  the same graph run (an edge, a conditional edge or ``Command(goto=...)``). Parallel
  branches hand off from the node that finished last; an agent running again after
  itself is no handoff.
* a graph run started inside an OpenTelemetry span (a traced request) sends that
  span's ``traceparent``, so our spans join its trace.
* the **mode** is ``paused`` while some thread waits on an interrupt and no graph runs,
  ``active`` otherwise; nothing is sent until the first interrupt.

Every method runs inside a framework callback under :attr:`GraphTracker.lock`, taken
with ``with`` (released whatever is raised, an interrupt included) and re-entrant (a
signal handler or finalizer that runs a graph on the same thread never blocks); the
signals are sent after it is released, so a receiver can never deadlock the tracker.
Memory is bounded: runs, graph runs and waiting threads are capped (:data:`MAX_RUNS`,
:data:`MAX_GRAPHS`, :data:`MAX_WAITING`); past a cap a run is not followed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

from telemetry.adapters.base import AdapterEmitter, active_trace_fields, call_key

log = logging.getLogger("telemetry.adapters")

MAX_RUNS = 100_000
MAX_GRAPHS = 10_000
MAX_WAITING = 10_000

#: What a failed run was: a real error, an interrupt, or other control flow
#: (LangGraph's ``GraphBubbleUp``: a ``Command`` to a parent graph, a drain).
ERROR, INTERRUPT, BUBBLE = "error", "interrupt", "bubble"

Signal = tuple[str, dict[str, Any]]


class GraphRun:
    """One root graph invocation: a workflow, and the handoff source for its next node."""

    __slots__ = ("agent", "done", "done_step", "error_reported", "interrupted", "name",
                 "older", "open", "started", "thread", "workflow_id")

    def __init__(self, workflow_id: str, name: str, thread: str | None) -> None:
        self.workflow_id = workflow_id
        self.name = name
        self.thread = thread
        self.started = time.perf_counter()
        self.open = True
        self.agent: str | None = None           # the agent that started last
        self.done: tuple[str, float] | None = None   # latest finished agent, its end
        self.done_step = -1
        self.older: tuple[str, float] | None = None  # latest finished at an earlier step
        self.interrupted = False
        self.error_reported = False

    def source(self, step: int) -> tuple[str, float] | None:
        """The agent a node starting at ``step`` takes over from."""
        return self.done if self.done_step < step else self.older

    def finished(self, agent: str, step: int, now: float) -> None:
        if step > self.done_step:
            self.older, self.done_step = self.done, step
        if step >= self.done_step:
            self.done = (agent, now)


class Run:
    """A langchain run inside a graph run: a node, an LLM or tool call, anything nested."""

    __slots__ = ("agent", "graph", "kind", "model", "node", "provider", "started", "step",
                 "tool_key", "tool_name")

    def __init__(self, graph: GraphRun, agent: str | None, kind: str = "chain") -> None:
        self.graph = graph
        self.agent = agent
        self.kind = kind
        self.node: str | None = None  # set on a top-level agent node run
        self.step = 0
        self.started = time.perf_counter()
        self.model = self.provider = self.tool_name = self.tool_key = None


def node_step(name: str | None, tags: Collection[str] | None,
              metadata: Mapping[str, Any] | None) -> int | None:
    """The step of a LangGraph node run, None for any other run."""
    if not metadata or not tags or name is None or metadata.get("langgraph_node") != name:
        return None
    step = metadata.get("langgraph_step")
    return step if isinstance(step, int) and f"graph:step:{step}" in tags else None


def is_root_graph(metadata: Mapping[str, Any] | None) -> bool:
    """Whether a run with no followed parent is a LangGraph graph's own run."""
    return (metadata is not None and metadata.get("ls_integration") == "langgraph"
            and "langgraph_node" not in metadata)


class GraphTracker:
    """Follows graph runs and turns callbacks into signals; see the module doc."""

    def __init__(self, emitter: AdapterEmitter, *, skip_nodes: Collection[str] = (),
                 track_mode: bool = True) -> None:
        self.emitter = emitter
        self.skip_nodes = frozenset(skip_nodes)
        self.track_mode = track_mode
        self.enabled = True
        self.lock = threading.RLock()
        self.runs: dict[Any, Run] = {}
        self.graphs: dict[Any, GraphRun] = {}
        self.waiting: dict[str, None] = {}   # threads paused on an interrupt, oldest first
        self.roots: dict[Any, tuple] = {}     # root runs that may turn out graph runs
        self.mode: str | None = None          # the mode last sent
        self._overflow_logged = False

    # -- sending -------------------------------------------------------------------

    def _send(self, signals: list[Signal]) -> None:
        send = self.emitter.send
        for name, fields in signals:
            send(name, **fields)

    # -- chains: graph runs and nodes ----------------------------------------------

    def chain_start(self, run_id: Any, parent_id: Any, name: str | None,
                    tags: Collection[str] | None, metadata: Mapping[str, Any] | None,
                    ) -> None:
        out: list[Signal] = []
        with self.lock:
            parent = self.runs.get(parent_id) if parent_id is not None else None
            step = node_step(name, tags, metadata)
            if parent is None and parent_id is not None and step is not None:
                parent = self._late_root(parent_id, metadata, out)
            if parent is None:
                if is_root_graph(metadata):
                    self._start_graph(run_id, name or "LangGraph", metadata, out)
                elif parent_id is None:
                    self._remember_root(run_id, name, metadata)
            elif self._room():
                run = self.runs[run_id] = Run(parent.graph, parent.agent)
                if step is not None and parent.kind == "graph":
                    self._node_started(run, name, step, out)  # type: ignore[arg-type]
        self._send(out)

    def _remember_root(self, run_id: Any, name: str | None,
                       metadata: Mapping[str, Any] | None) -> None:
        """A root run that may turn out a graph run (see :meth:`_late_root`); the oldest
        is forgotten past the cap (a run the framework never ended)."""
        if len(self.roots) >= MAX_GRAPHS:
            del self.roots[next(iter(self.roots))]
        self.roots[run_id] = (name, metadata, time.perf_counter(), time.time())

    def _late_root(self, root_id: Any, node_metadata: Mapping[str, Any] | None,
                   out: list[Signal]) -> Run | None:
        """A node whose graph run was not recognised when it started (LangGraph before
        1.1.5 marks no graph run): the graph run starts now, timed from its own start
        when it was a root."""
        name, metadata, started = "LangGraph", node_metadata, None
        root = self.roots.pop(root_id, None)
        if root is not None:
            name, metadata, started = root[0] or name, root[1] or node_metadata, root[2:]
        self._start_graph(root_id, name, metadata, out, started)
        return self.runs.get(root_id)

    def _start_graph(self, run_id: Any, name: str, metadata: Mapping[str, Any] | None,
                     out: list[Signal], started: tuple[float, float] | None = None) -> None:
        if len(self.graphs) >= MAX_GRAPHS or not self._room():
            return
        thread = metadata.get("thread_id") if metadata else None
        graph = GraphRun(str(run_id), name, None if thread is None else str(thread))
        fields: dict[str, Any] = {"workflow_id": graph.workflow_id, "workflow_type": name,
                                  **active_trace_fields()}
        if started is not None:
            graph.started, fields["timestamp"] = started
        self.graphs[run_id] = graph
        self.runs[run_id] = Run(graph, None, "graph")
        if graph.thread is not None:
            self.waiting.pop(graph.thread, None)
        out.append(("yolo.workflow_started", fields))
        self._mode(out)

    def _node_started(self, run: Run, node: str, step: int, out: list[Signal]) -> None:
        graph = run.graph
        if node in self.skip_nodes:
            run.agent = graph.agent
            return
        run.agent = run.node = node
        run.step = step
        graph.agent = node
        wf = graph.workflow_id
        source = graph.source(step)
        if source is not None and source[0] != node:
            out.append(("yolo.handoff_completed", {
                "from_agent": source[0], "to_agent": node, "workflow_id": wf,
                "duration_s": max(run.started - source[1], 0.0)}))
        out.append(("yolo.agent_activated", {"agent": node, "workflow_id": wf}))

    def chain_end(self, run_id: Any, interrupted: bool = False) -> None:
        self._chain_done(run_id, None, INTERRUPT if interrupted else None)

    def chain_error(self, run_id: Any, error_type: str, kind: str) -> None:
        self._chain_done(run_id, error_type, kind)

    def _chain_done(self, run_id: Any, error_type: str | None, kind: str | None) -> None:
        out: list[Signal] = []
        with self.lock:
            run = self.runs.pop(run_id, None)
            if run is None:
                self.roots.pop(run_id, None)
                return
            if run.kind == "graph":
                self._graph_done(run_id, run.graph, error_type, kind, out)
            elif run.node is not None:
                self._node_done(run, error_type, kind, out)
        self._send(out)

    def _node_done(self, run: Run, error_type: str | None, kind: str | None,
                   out: list[Signal]) -> None:
        graph, agent = run.graph, run.node
        assert agent is not None
        wf = graph.workflow_id
        if kind == INTERRUPT:
            graph.interrupted = True
        elif kind == ERROR:
            graph.error_reported = True
            out.append(("yolo.error_occurred",
                        {"agent": agent, "error_type": error_type, "workflow_id": wf}))
        graph.finished(agent, run.step, time.perf_counter())
        out.append(("yolo.agent_deactivated", {"agent": agent, "workflow_id": wf}))

    def _graph_done(self, run_id: Any, graph: GraphRun, error_type: str | None,
                    kind: str | None, out: list[Signal]) -> None:
        self.graphs.pop(run_id, None)
        graph.open = False
        duration = time.perf_counter() - graph.started
        wf = graph.workflow_id
        if kind == ERROR:
            if not graph.error_reported and graph.agent is not None:
                out.append(("yolo.error_occurred", {"agent": graph.agent,
                                                    "error_type": error_type,
                                                    "workflow_id": wf}))
            out.append(("yolo.workflow_failed", {"workflow_id": wf, "duration_s": duration,
                                                 "error_type": error_type}))
        else:
            out.append(("yolo.workflow_completed", {"workflow_id": wf, "duration_s": duration}))
        if (kind == INTERRUPT or graph.interrupted) and graph.thread is not None:
            self._wait(graph.thread)
        self._mode(out)

    # -- interrupts and the mode ---------------------------------------------------

    def interrupted(self, run_id: Any) -> None:
        """LangGraph's own interrupt event for the graph run ``run_id``."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is not None:
                run.graph.interrupted = True

    def resumed(self, run_id: Any) -> None:
        """LangGraph's own resume event: the thread no longer waits (already so when the
        graph run started here)."""
        out: list[Signal] = []
        with self.lock:
            run = self.runs.get(run_id)
            if run is not None and run.graph.thread is not None:
                self.waiting.pop(run.graph.thread, None)
                self._mode(out)
        self._send(out)

    def _wait(self, thread: str) -> None:
        if len(self.waiting) >= MAX_WAITING:
            del self.waiting[next(iter(self.waiting))]
        self.waiting[thread] = None

    def _mode(self, out: list[Signal]) -> None:
        if not self.track_mode:
            return
        mode = "paused" if self.waiting and not self.graphs else "active"
        if mode != self.mode and (self.mode is not None or mode == "paused"):
            self.mode = mode
            out.append(("yolo.mode_changed", {"mode": mode}))

    # -- LLM and tool calls --------------------------------------------------------

    def llm_start(self, run_id: Any, parent_id: Any, model: str | None,
                  provider: str | None) -> None:
        with self.lock:
            parent = self.runs.get(parent_id) if parent_id is not None else None
            if parent is None or parent.agent is None or not self._room():
                return
            run = self.runs[run_id] = Run(parent.graph, parent.agent, "llm")
            run.model, run.provider = model, provider

    def llm_end(self, run_id: Any, model: str | None, input_tokens: int, output_tokens: int,
                cached_input_tokens: int | None, error_type: str | None = None) -> None:
        with self.lock:
            run = self.runs.pop(run_id, None)
        if run is None or run.kind != "llm":
            return
        fields: dict[str, Any] = {
            "agent": run.agent, "model": run.model or model or "unknown",
            "duration_s": time.perf_counter() - run.started, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "workflow_id": run.graph.workflow_id}
        if run.provider:
            fields["provider"] = run.provider
        if cached_input_tokens:
            fields["cached_input_tokens"] = cached_input_tokens
        if error_type is not None:
            fields["error_type"] = error_type
        self.emitter.send("yolo.llm_called", **fields)

    def tool_start(self, run_id: Any, parent_id: Any, tool: str, tool_input: str) -> None:
        with self.lock:
            parent = self.runs.get(parent_id) if parent_id is not None else None
            if parent is None or parent.agent is None or not self._room():
                return
            run = self.runs[run_id] = Run(parent.graph, parent.agent, "tool")
            run.tool_name, run.tool_key = tool, call_key(tool_input)
        self.emitter.send("yolo.tool_started", agent=run.agent, tool=tool,
                          call_key=run.tool_key, workflow_id=run.graph.workflow_id)

    def tool_end(self, run_id: Any, error_type: str | None = None) -> None:
        with self.lock:
            run = self.runs.pop(run_id, None)
        if run is None or run.kind != "tool":
            return
        fields: dict[str, Any] = {
            "agent": run.agent, "tool": run.tool_name, "call_key": run.tool_key,
            "duration_s": time.perf_counter() - run.started,
            "workflow_id": run.graph.workflow_id}
        if error_type is not None:
            fields["error_type"] = error_type
        self.emitter.send("yolo.tool_completed", **fields)

    def other_start(self, run_id: Any, parent_id: Any) -> None:
        """A retriever or other run inside a graph run: followed so that what runs inside
        it counts for its agent; it sends nothing itself."""
        with self.lock:
            parent = self.runs.get(parent_id) if parent_id is not None else None
            if parent is not None and self._room():
                self.runs[run_id] = Run(parent.graph, parent.agent, "other")

    def other_end(self, run_id: Any) -> None:
        """A retriever or other run ended: forget it."""
        with self.lock:
            self.runs.pop(run_id, None)

    # -- bounds --------------------------------------------------------------------

    def _room(self) -> bool:
        """Whether one more run may be followed; sweeps runs of finished graph runs
        (left by a run the framework never ended) when the cap is reached."""
        if len(self.runs) < MAX_RUNS:
            return True
        for run_id in [rid for rid, run in self.runs.items() if not run.graph.open]:
            del self.runs[run_id]
        if len(self.runs) < MAX_RUNS:
            return True
        if not self._overflow_logged:
            self._overflow_logged = True
            log.warning("telemetry adapter for langgraph follows %d runs; newer ones are "
                        "not reported", MAX_RUNS)
        return False
