"""`ros2-pose up <graph>`: start config/graphs/<graph>.yaml without `ros2 launch`.

Default: every node in this one process on a MultiThreadedExecutor (messages between nodes stay in
the process); `--multi-process`: one process per node, as `ros2 launch <graph>.launch.py` does.
Both apply the same parameter files, overrides and remappings. SIGINT/SIGTERM stop the graph.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ros2_pose.graph.spec import GraphSpecError, available_graphs, load_graph
from ros2_pose.graph.plan import GraphPlan, parse_argument_values, parse_param_overrides, plan_graph


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("graph", help=f"graph name (config/graphs/*.yaml): {', '.join(available_graphs())}")
    parser.add_argument("--param", action="append", default=[], metavar="NODE.NAME:=VALUE",
                        help="override a node's parameter (YAML-typed value), e.g. image_source.rate_hz:=15")
    parser.add_argument("--set", action="append", default=[], metavar="ARG=VALUE",
                        help="set a graph argument (the launch file's arguments), e.g. rate_hz=15")
    parser.add_argument("--multi-process", action="store_true",
                        help="one process per node (like ros2 launch) instead of one process for all")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    parser.set_defaults(func=run)


def summary(plan: GraphPlan, multi_process: bool, started=None) -> str:
    """One screen: what runs, where, with which parameter files, overrides and remappings."""
    mode = "one process per node" if multi_process else f"one process (pid {os.getpid()}), MultiThreadedExecutor"
    lines = [f"graph {plan.graph.name}: {len(plan.nodes)} node(s), {mode}",
             f"  ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')} "
             f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')}"]
    if plan.arguments:
        lines.append("  arguments: " + ", ".join(f"{k}={v}" for k, v in plan.arguments.items()))
    states = {s.planned.name: s for s in started or []}
    for node in plan.nodes:
        s = states.get(node.name)
        where = f"pid {s.process.pid}" if s is not None and s.process is not None else "in-process"
        state = f"{s.state}{' lifecycle' if s.lifecycle else ''}" if s is not None else "planned"
        lines.append(f"  {node.spec.fully_qualified_name} ({node.executable}, {where}, {state})")
        if node.parameter_files:
            lines.append("      params: " + ", ".join(p.name for p in node.parameter_files))
        if node.overrides:
            lines.append("      overrides: " + ", ".join(f"{k}={v!r}" for k, v in node.overrides.items()))
        if node.spec.remappings:
            lines.append("      remap: " + ", ".join(f"{a} -> {b}" for a, b in node.spec.remappings.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        graph = load_graph(args.graph)
        plan = plan_graph(graph, parse_argument_values(args.set), parse_param_overrides(args.param, graph))
    except GraphSpecError as exc:
        print(f"ros2-pose up: {exc}", file=sys.stderr)
        return 2
    # rclpy is imported only now, so that graph errors above are quick and need no ROS install.
    from ros2_pose.graph.runner import GraphRunner

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    runner = GraphRunner(plan, multi_process=args.multi_process,
                         log=lambda text: print(f"ros2-pose up: {text}", file=sys.stderr))
    code = 0
    try:
        runner.start()
        print(summary(plan, args.multi_process, runner.started), flush=True)
        code = runner.wait(args.duration, stop)
    except Exception as exc:  # noqa: BLE001 - a node that fails to start: say which, exit non-zero
        print(f"ros2-pose up: failed to start graph {plan.graph.name}: {exc}", file=sys.stderr)
        code = 1
    finally:
        runner.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(f"ros2-pose up: graph {plan.graph.name} stopped", flush=True)
    return code
