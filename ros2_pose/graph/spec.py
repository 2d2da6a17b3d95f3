"""Load and validate a node graph (`config/graphs/<graph>.yaml`); ROS-free (no rclpy, no launch).

The file format is documented in `ros2_pose.graph`. Everything a graph names is checked here, once,
so that `ros2 launch`, `ros2-pose up` and the tests all fail the same clear way on a bad graph:
unknown keys, executables that are not modules of `ros2_pose.nodes`, parameter files that leave
config/, are missing, or are not ROS 2 parameter YAML, and `$(arg ...)` references to undeclared
arguments.
"""
from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ros2_pose import resources

NODES_PACKAGE = "ros2_pose.nodes"
GRAPHS_FOLDER = "graphs"
_GRAPH_KEYS = {"description", "arguments", "nodes"}
_NODE_KEYS = {"executable", "name", "namespace", "parameters", "remappings"}
_ARGUMENT_KEYS = {"default", "description"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMESPACE = re.compile(r"^(/[A-Za-z_][A-Za-z0-9_]*)*/?$|^$")
_ARG_REFERENCE = re.compile(r"^\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)$")
_ROS_SCALARS = (bool, int, float, str)


class GraphSpecError(ValueError):
    """A graph file, or a parameter file it names, is not what the graph format expects."""


@dataclass(frozen=True)
class ArgumentSpec:
    """A graph argument: a launch argument for `ros2 launch`, `--set name=value` for `ros2-pose up`."""
    name: str
    default: str
    description: str = ""


@dataclass(frozen=True)
class NodeSpec:
    executable: str                       # module ros2_pose/nodes/<executable>.py == console script
    name: str                             # the ROS node name
    namespace: str = ""
    parameter_files: tuple[Path, ...] = ()  # absolute paths, all inside config/
    inline_parameters: dict[str, Any] = field(default_factory=dict)  # values may be `$(arg name)`
    remappings: dict[str, str] = field(default_factory=dict)

    @property
    def fully_qualified_name(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}" if self.namespace else f"/{self.name}"


@dataclass(frozen=True)
class GraphSpec:
    name: str
    path: Path
    description: str
    arguments: dict[str, ArgumentSpec]
    nodes: tuple[NodeSpec, ...]

    def node(self, name: str) -> NodeSpec:
        for node in self.nodes:
            if node.name == name:
                return node
        raise GraphSpecError(f"graph {self.name!r} has no node {name!r} "
                             f"(nodes: {', '.join(n.name for n in self.nodes)})")


def graphs_dir() -> Path:
    return resources.package_share() / "config" / GRAPHS_FOLDER


def available_graphs() -> list[str]:
    folder = graphs_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def graph_file(graph: str) -> Path:
    """config/graphs/<graph>.yaml; a clear error naming the graphs that exist otherwise."""
    if not _NAME.match(graph):
        raise GraphSpecError(f"graph name {graph!r} must be a plain name like 'transport_check'")
    try:
        return resources.config_file(f"{GRAPHS_FOLDER}/{graph}.yaml")
    except FileNotFoundError:
        raise GraphSpecError(f"no graph {graph!r} in {graphs_dir()} "
                             f"(available: {', '.join(available_graphs()) or 'none'})") from None


def load_graph(graph: str) -> GraphSpec:
    """Read and validate config/graphs/<graph>.yaml."""
    return load_graph_file(graph_file(graph))


def load_graph_file(path: Path) -> GraphSpec:
    """Read and validate a graph file (its parameter files are still looked up in config/)."""
    path = Path(path)
    graph = path.stem
    data = _read_yaml(path, what="graph file")
    where = f"graph file {path}"
    if not isinstance(data, dict):
        raise GraphSpecError(f"{where}: expected a mapping with 'nodes', got {type(data).__name__}")
    _check_keys(data, _GRAPH_KEYS, where)
    arguments = _parse_arguments(data.get("arguments") or {}, where)
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise GraphSpecError(f"{where}: 'nodes' must be a non-empty list of nodes")
    nodes = tuple(_parse_node(raw, i, arguments, where) for i, raw in enumerate(raw_nodes))
    seen: set[str] = set()
    for node in nodes:
        if node.fully_qualified_name in seen:
            raise GraphSpecError(f"{where}: two nodes are named {node.fully_qualified_name!r}")
        seen.add(node.fully_qualified_name)
    return GraphSpec(graph, path, str(data.get("description") or ""), arguments, nodes)


def node_module(executable: str) -> str:
    return f"{NODES_PACKAGE}.{executable}"


def available_executables() -> list[str]:
    spec = importlib.util.find_spec(NODES_PACKAGE)
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def parse_ros_params_file(path: Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameter file as {node name pattern: {flat.param.name: value}}.

    The format (rcl_yaml_param_parser): top-level keys are node names or wildcard patterns
    (`/**`, `/ns/*`), each holding exactly `ros__parameters:`, a mapping whose nested mappings
    flatten to dotted names; values are bool/int/float/str or homogeneous lists of those.
    """
    data = _read_yaml(path, what="parameter file")
    if not isinstance(data, dict) or not data:
        raise GraphSpecError(f"parameter file {path}: expected `<node name>: {{ros__parameters: {{...}}}}`"
                             f" sections, got {type(data).__name__}")
    sections = {}
    for node_key, body in data.items():
        where = f"parameter file {path}, section {node_key!r}"
        if not isinstance(node_key, str):
            raise GraphSpecError(f"{where}: node names must be strings")
        if body is not None and isinstance(body, dict) and set(body) == {"ros__parameters"}:
            params = body["ros__parameters"] or {}
            if not isinstance(params, dict):
                raise GraphSpecError(f"{where}: ros__parameters must be a mapping")
            sections[node_key] = _flatten_params(params, "", where)
        elif isinstance(body, dict) and all(isinstance(v, dict) for v in body.values()):
            # Namespaced layout: `/ns: {node: {ros__parameters: ...}}`.
            for sub_key, sub_body in parse_nested_namespace(node_key, body, path).items():
                sections[sub_key] = sub_body
        else:
            raise GraphSpecError(f"{where}: expected a single 'ros__parameters' mapping")
    return sections


def parse_nested_namespace(prefix: str, body: dict, path: Path) -> dict[str, dict[str, Any]]:
    """The nested form rcl also accepts: `ns: {node: {ros__parameters: ...}}` == `ns/node`."""
    sections = {}
    for key, sub in body.items():
        where = f"parameter file {path}, section {prefix}/{key}"
        if isinstance(sub, dict) and set(sub) == {"ros__parameters"}:
            sections[f"{prefix.rstrip('/')}/{key}"] = _flatten_params(sub["ros__parameters"] or {}, "", where)
        elif isinstance(sub, dict):
            sections.update(parse_nested_namespace(f"{prefix.rstrip('/')}/{key}", sub, path))
        else:
            raise GraphSpecError(f"{where}: expected a 'ros__parameters' mapping")
    return sections


def section_applies(pattern: str, fully_qualified_name: str) -> bool:
    """Whether a parameter-file section key applies to a node, with rcl's wildcards:
    `*` matches one name token, `**` any number of tokens; a key without a leading `/` is
    relative to the root, as in rcl."""
    key = pattern if pattern.startswith("/") else "/" + pattern
    regex = ""
    for token in key.strip("/").split("/"):
        if token == "**":
            regex += r"(/[^/]+)*"
        else:
            regex += "/" + re.escape(token).replace(r"\*", "[^/]+")
    return re.fullmatch(regex or "/", fully_qualified_name) is not None


def file_parameters_for(node: NodeSpec) -> dict[str, Any]:
    """What the node's parameter files set for it (later files and sections win, as in rcl)."""
    merged: dict[str, Any] = {}
    for path in node.parameter_files:
        for key, params in parse_ros_params_file(path).items():
            if section_applies(key, node.fully_qualified_name):
                merged.update(params)
    return merged


def resolve_arguments(graph: GraphSpec, values: dict[str, str]) -> dict[str, str]:
    """The graph's argument defaults with `values` (from `--set` or launch) applied."""
    unknown = sorted(set(values) - set(graph.arguments))
    if unknown:
        raise GraphSpecError(f"graph {graph.name!r} has no argument(s) {', '.join(unknown)} "
                             f"(arguments: {', '.join(graph.arguments) or 'none'})")
    resolved = {name: arg.default for name, arg in graph.arguments.items()}
    resolved.update({k: str(v) for k, v in values.items()})
    return resolved


def substitute_arguments(parameters: dict[str, Any], arguments: dict[str, str]) -> dict[str, Any]:
    """Inline parameters with `$(arg name)` replaced by the argument's value, typed as YAML types it
    (like launch_ros does for a substitution in a parameter dict: '30' -> 30, 'true' -> True)."""
    out = {}
    for key, value in parameters.items():
        match = _ARG_REFERENCE.match(value) if isinstance(value, str) else None
        out[key] = yaml.safe_load(arguments[match.group(1)]) if match else value
    return out


def ros_param_value(text: str) -> Any:
    """`--param node.name:=value` text typed like `ros2 run ... -p name:=value` (YAML rules)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GraphSpecError(f"parameter value {text!r} is not valid YAML: {exc}") from None
    _check_param_value(value, f"value {text!r}")
    return value


def format_param_value(value: Any) -> str:
    """A value as rcl's `-p name:=value` parser reads it back with the same type (JSON is YAML)."""
    return json.dumps(value)


def _parse_arguments(raw: Any, where: str) -> dict[str, ArgumentSpec]:
    if not isinstance(raw, dict):
        raise GraphSpecError(f"{where}: 'arguments' must be a mapping of name -> {{default, description}}")
    arguments = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise GraphSpecError(f"{where}: argument name {name!r} must be an identifier")
        if not isinstance(body, dict) or "default" not in body:
            raise GraphSpecError(f"{where}: argument {name!r} needs a 'default'")
        _check_keys(body, _ARGUMENT_KEYS, f"{where}, argument {name!r}")
        default = body["default"]
        text = default if isinstance(default, str) else format_param_value(default)
        arguments[name] = ArgumentSpec(name, text, str(body.get("description") or ""))
    return arguments


def _parse_node(raw: Any, index: int, arguments: dict[str, ArgumentSpec], where: str) -> NodeSpec:
    if not isinstance(raw, dict):
        raise GraphSpecError(f"{where}: node #{index} must be a mapping")
    where = f"{where}, node #{index} ({raw.get('name', '?')})"
    _check_keys(raw, _NODE_KEYS, where)
    for key in ("executable", "name"):
        if not isinstance(raw.get(key), str) or not _NAME.match(raw[key]):
            raise GraphSpecError(f"{where}: '{key}' must be a plain name, got {raw.get(key)!r}")
    executable = raw["executable"]
    if importlib.util.find_spec(node_module(executable)) is None:
        raise GraphSpecError(f"{where}: no node executable {executable!r} (a module in ros2_pose/nodes/;"
                             f" available: {', '.join(available_executables()) or 'none'})")
    namespace = raw.get("namespace") or ""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace) or (namespace and not namespace.startswith("/")):
        raise GraphSpecError(f"{where}: namespace {namespace!r} must be absolute, like '/camera'")
    files, inline = [], {}
    parameters = raw.get("parameters") or []
    if not isinstance(parameters, list):
        raise GraphSpecError(f"{where}: 'parameters' must be a list of config file names and mappings")
    for item in parameters:
        if isinstance(item, str):
            try:
                path = resources.config_file(item)
            except ValueError as exc:
                raise GraphSpecError(f"{where}: parameter file {item!r} leaves config/ ({exc})") from None
            except FileNotFoundError as exc:
                raise GraphSpecError(f"{where}: parameter file {item!r} not found ({exc})") from None
            parse_ros_params_file(path)  # fails here, naming the file, rather than at node start
            files.append(path)
        elif isinstance(item, dict):
            flat = _flatten_params(item, "", f"{where}, inline parameters")
            for key, value in flat.items():
                match = _ARG_REFERENCE.match(value) if isinstance(value, str) else None
                if match and match.group(1) not in arguments:
                    raise GraphSpecError(f"{where}: parameter {key!r} uses undeclared argument "
                                         f"{match.group(1)!r} (arguments: {', '.join(arguments) or 'none'})")
            inline.update(flat)
        else:
            raise GraphSpecError(f"{where}: parameters entry {item!r} must be a file name or a mapping")
    remappings = raw.get("remappings") or {}
    if not isinstance(remappings, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in remappings.items()):
        raise GraphSpecError(f"{where}: 'remappings' must map topic names to topic names, got {remappings!r}")
    return NodeSpec(executable, raw["name"], namespace, tuple(files), inline, dict(remappings))


def _flatten_params(params: dict, prefix: str, where: str) -> dict[str, Any]:
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not key:
            raise GraphSpecError(f"{where}: parameter name {key!r} must be a non-empty string")
        if isinstance(value, dict):
            flat.update(_flatten_params(value, name + ".", where))
        else:
            _check_param_value(value, f"{where}: parameter {name!r}")
            flat[name] = value
    return flat


def _check_param_value(value: Any, where: str) -> None:
    if isinstance(value, _ROS_SCALARS):
        return
    if isinstance(value, list) and value:
        # rcl's parser takes the list's type from its first item and rejects any other.
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        if len(kinds) == 1 and next(iter(kinds)) in _ROS_SCALARS:
            return
        raise GraphSpecError(f"{where}: list items must all be one type of bool/int/float/str, got {value!r}")
    raise GraphSpecError(f"{where}: {value!r} is not a ROS parameter value "
                         "(bool, int, float, str or a non-empty list of one of those)")


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(data) - allowed)
    if unknown:
        raise GraphSpecError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise GraphSpecError(f"{what} {path} is not valid YAML: {exc}") from None
