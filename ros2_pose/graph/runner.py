"""Run a planned graph without `ros2 launch`: all nodes in one process, or one process per node.

ROS glue (imports rclpy). In-process, every node module's `NODE_CLASS` is constructed with
`node_name`, `namespace`, `context` and `cli_args` = the same `--ros-args --params-file ... -p ...
-r from:=to` that launch would pass its process (node-local arguments), and all nodes share one
MultiThreadedExecutor, so messages between them never leave the process. `multi_process=True`
starts each node's console script with those arguments instead, as launch would.

Lifecycle nodes (`rclpy.lifecycle.LifecycleNode` subclasses) whose `autostart` parameter is not
true are configured and activated by the runner: directly in-process, through the node's
`change_state` service across processes.
"""
from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.node import Node

from ros2_pose.graph.plan import GraphPlan, PlannedNode
from ros2_pose.graph.spec import node_module

LOCALHOST_ENV = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
STOP_TIMEOUT_S = 5.0
LIFECYCLE_TIMEOUT_S = 10.0


class GraphStartError(RuntimeError):
    """A node of the graph could not be started (bad NODE_CLASS, failed transition, died early)."""


def node_class(executable: str) -> type:
    """`NODE_CLASS` of ros2_pose/nodes/<executable>.py, checked against the composition contract."""
    module = importlib.import_module(node_module(executable))
    cls = getattr(module, "NODE_CLASS", None)
    if not isinstance(cls, type) or not issubclass(cls, Node):
        raise GraphStartError(f"{module.__name__} has no NODE_CLASS (an rclpy Node subclass taking "
                              "node_name=..., **node_kwargs), so it cannot run in-process")
    return cls


def is_lifecycle(cls: type) -> bool:
    return issubclass(cls, LifecycleNode)


def node_command(executable: str) -> list[str]:
    """The node's console script (beside this Python first, as an editable install puts it), or
    the module's main() run by this Python where the script is not installed."""
    script = shutil.which(executable, path=os.path.dirname(sys.executable)) or shutil.which(executable)
    if script:
        return [script]
    return [sys.executable, "-c", f"from {node_module(executable)} import main; main()"]


def init_context() -> Context:
    """A fresh rclpy context whose signal handling is left to the caller (`ros2-pose up` stops
    the graph itself, in order)."""
    context = Context()
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # Humble: no signal_handler_options
        rclpy.init(args=[], context=context)
    return context


@dataclass
class StartedNode:
    planned: PlannedNode
    lifecycle: bool
    node: object = None                      # in-process: the Node
    process: subprocess.Popen | None = None  # multi-process: the node's process
    state: str = "running"


class GraphRunner:
    def __init__(self, plan: GraphPlan, *, multi_process: bool = False, log: Callable[[str], None] = print):
        self.plan = plan
        self.multi_process = multi_process
        self.log = log
        self.started: list[StartedNode] = []
        self.context: Context | None = None
        self.executor: MultiThreadedExecutor | None = None
        self._spin_thread: threading.Thread | None = None
        self._spin_error: BaseException | None = None
        self._helper = None
        self._stopped = False

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        for key, value in LOCALHOST_ENV.items():
            os.environ.setdefault(key, value)
        classes = {p.executable: node_class(p.executable) for p in self.plan.nodes}
        self.context = init_context()
        self.executor = MultiThreadedExecutor(context=self.context)
        try:
            for planned in self.plan.nodes:
                lifecycle = is_lifecycle(classes[planned.executable])
                if self.multi_process:
                    process = subprocess.Popen(node_command(planned.executable) + planned.ros_arguments())
                    self.started.append(StartedNode(planned, lifecycle, process=process))
                else:
                    node = classes[planned.executable](**self._node_kwargs(planned))
                    self.executor.add_node(node)
                    self.started.append(StartedNode(planned, lifecycle, node=node))
            self._spin_thread = threading.Thread(target=self._spin, name="graph-executor", daemon=True)
            self._spin_thread.start()
            for started in self.started:
                if started.lifecycle:
                    self._bring_up(started)
        except BaseException:
            self.stop()
            raise

    def _node_kwargs(self, planned: PlannedNode) -> dict:
        kwargs = {"node_name": planned.name, "context": self.context,
                  "cli_args": planned.ros_arguments(with_name=False)}
        if planned.spec.namespace:
            kwargs["namespace"] = planned.spec.namespace
        return kwargs

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported by wait(), which stops the graph
            # A signal that shuts the context down while the executor builds its wait set raises
            # RCLError instead of ExternalShutdownException: a requested stop, not a failure.
            if self.context.ok():
                self._spin_error = exc

    def _bring_up(self, started: StartedNode) -> None:
        if self.multi_process:
            from ros2_pose.graph.lifecycle_client import LifecycleClient
            if self._helper is None:
                self._helper = LifecycleClient(self.context, self.executor)
            name = started.planned.spec.fully_qualified_name
            if self._helper.autostart(name, LIFECYCLE_TIMEOUT_S):
                started.state = "autostart"
                return
            self._helper.configure_and_activate(name, LIFECYCLE_TIMEOUT_S)
        else:
            node = started.node
            if node.has_parameter("autostart") and node.get_parameter("autostart").value is True:
                started.state = "autostart"
                return
            for transition in (node.trigger_configure, node.trigger_activate):
                result = transition()
                if result.name != "SUCCESS":
                    raise GraphStartError(f"node {started.planned.name}: {transition.__name__} "
                                          f"returned {result.name}")
        started.state = "active"

    # --- run -----------------------------------------------------------------------------------
    def wait(self, duration: float | None = None, stop: threading.Event | None = None) -> int:
        """Block until `duration` seconds passed, `stop` is set, or something died; the exit code."""
        deadline = None if duration is None else time.monotonic() + duration
        stop = stop or threading.Event()
        while not stop.wait(0.1):
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            if self._spin_error is not None:
                self.log(f"executor failed: {self._spin_error!r}")
                return 1
            for started in self.started:
                if started.process is not None and started.process.poll() is not None:
                    self.log(f"node {started.planned.name} exited with code {started.process.returncode}")
                    return 1
        return 0

    # --- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop nodes in reverse start order: SIGINT to processes (then SIGTERM, SIGKILL after
        STOP_TIMEOUT_S each), destroy in-process nodes, shut the context down. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for started in reversed(self.started):
            process = started.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
        for started in reversed(self.started):
            process = started.process
            if process is None:
                continue
            for escalate in (signal.SIGTERM, signal.SIGKILL):
                try:
                    process.wait(STOP_TIMEOUT_S)
                    break
                except subprocess.TimeoutExpired:
                    self.log(f"node {started.planned.name} did not stop; sending {escalate.name}")
                    process.send_signal(escalate)
            process.wait()
        if self._helper is not None:
            self._helper.destroy()
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=STOP_TIMEOUT_S)
        for started in reversed(self.started):
            if started.node is not None:
                if started.lifecycle:
                    try:
                        started.node.trigger_shutdown()
                    except Exception as exc:  # noqa: BLE001 - keep stopping the others
                        self.log(f"node {started.planned.name}: shutdown transition failed: {exc!r}")
                started.node.destroy_node()
        if self.context is not None:
            rclpy.try_shutdown(context=self.context)
        if self._spin_thread is not None:
            self._spin_thread.join(STOP_TIMEOUT_S)
