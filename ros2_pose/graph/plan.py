"""What `ros2-pose up` starts: a graph with its arguments and command-line overrides applied; ROS-free.

Each node becomes a `PlannedNode` whose `ros_arguments()` are exactly what `ros2 launch` would give
the node's process (`--ros-args -r __node:=... --params-file ... -p ... -r from:=to`), so in-process
composition (as node-local `cli_args`) and `--multi-process` both apply the same parameter files,
overrides and remappings with rcl's own rules and order (later entries win).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros2_pose.graph.spec import (GraphSpec, GraphSpecError, NodeSpec, format_param_value,
                                  resolve_arguments, ros_param_value, substitute_arguments)


@dataclass(frozen=True)
class PlannedNode:
    spec: NodeSpec
    parameter_files: tuple[Path, ...]
    overrides: dict[str, Any] = field(default_factory=dict)  # inline (arguments applied) + --param

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def executable(self) -> str:
        return self.spec.executable

    def ros_arguments(self, *, with_name: bool = True) -> list[str]:
        """`--ros-args ...` for this node; `with_name=False` leaves out the node name and namespace
        remaps (in-process, those go to the Node constructor instead)."""
        args = ["--ros-args"]
        if with_name:
            args += ["-r", f"__node:={self.spec.name}"]
            if self.spec.namespace:
                args += ["-r", f"__ns:={self.spec.namespace}"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for name, value in self.overrides.items():
            args += ["-p", f"{name}:={format_param_value(value)}"]
        for source, target in self.spec.remappings.items():
            args += ["-r", f"{source}:={target}"]
        return args


@dataclass(frozen=True)
class GraphPlan:
    graph: GraphSpec
    arguments: dict[str, str]
    nodes: tuple[PlannedNode, ...]


def parse_param_overrides(items: list[str], graph: GraphSpec) -> dict[str, dict[str, Any]]:
    """`node.param.name:=value` items (from `--param`) as {node name: {param.name: value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        lhs, sep, value = item.partition(":=")
        node_name, dot, param = lhs.partition(".")
        if not sep or not dot or not node_name or not param:
            raise GraphSpecError(f"--param {item!r}: expected <node>.<parameter>:=<value>, "
                                 "e.g. image_source.rate_hz:=15")
        graph.node(node_name)  # clear error naming the graph's nodes
        overrides.setdefault(node_name, {})[param] = ros_param_value(value)
    return overrides


def parse_argument_values(items: list[str]) -> dict[str, str]:
    """`name=value` items (from `--set`) as {name: value}."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise GraphSpecError(f"--set {item!r}: expected <argument>=<value>, e.g. rate_hz=15")
        values[name] = value
    return values


def plan_graph(graph: GraphSpec, argument_values: dict[str, str] | None = None,
               param_overrides: dict[str, dict[str, Any]] | None = None) -> GraphPlan:
    arguments = resolve_arguments(graph, argument_values or {})
    param_overrides = param_overrides or {}
    for node_name in param_overrides:
        graph.node(node_name)
    nodes = []
    for node in graph.nodes:
        overrides = substitute_arguments(node.inline_parameters, arguments)
        overrides.update(param_overrides.get(node.name, {}))
        nodes.append(PlannedNode(node, node.parameter_files, overrides))
    return GraphPlan(graph, arguments, tuple(nodes))
