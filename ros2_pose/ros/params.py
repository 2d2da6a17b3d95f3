"""ROS 2 parameter files (the YAML `ros2 launch --params-file` passes), read without rclpy.

The format, as rcl reads it::

    /**:                       # every node (wildcards: `/**` any number of names, `/*` exactly one)
      ros__parameters:
        use_gpu: false
    dolly_pose:                # the node /dolly_pose (a name without `/` is in the root namespace)
      ros__parameters:
        score_threshold: 0.5
        camera:                # nested maps flatten to dotted names: camera.width
          width: 640
    /robot/dolly_pose:         # fully qualified; the nested form `robot: {dolly_pose: {...}}` also works
      ros__parameters: {...}

Entries that match a node apply in file order, a later value replacing an earlier one (rclcpp's
rule). Written here rather than taken from `rclpy.parameter.parameter_dict_from_yaml_file`
because that helper only knows the `/**` wildcard, replaces nested groups instead of merging
them, and differs between Humble and Kilted.

Public API
----------
- `ParameterFileError(ValueError)`: unreadable file, no `ros__parameters`, values ROS parameters
  cannot hold (null, maps in lists, mixed-type lists), a value of the wrong type for a parameter.
- `load_params_file(path) -> list[tuple[str, dict]]`: (fully qualified node pattern, flat
  parameters) per entry, in file order.
- `node_name_matches(pattern, node_fqn) -> bool`.
- `node_parameters(source, node_fqn) -> dict`: the merged parameters a node gets from a file
  (`source` a path or `load_params_file`'s entries).
- `coerce_to_default_type(name, value, default)`: the value in the default's type (ints are
  accepted for float parameters and int lists for float lists, as `1` for `1.0` is a common slip);
  anything else that differs is a ParameterFileError naming the parameter and both types.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

PARAMETERS_KEY = "ros__parameters"


class ParameterFileError(ValueError):
    """A parameter file or value that cannot be used."""


def _flatten(params: dict, prefix: str, where: str, out: dict[str, Any]) -> None:
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, name + ".", where, out)
        else:
            out[name] = _check_value(name, value, where)


def _check_value(name: str, value: Any, where: str) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        if any(isinstance(v, (dict, list)) or v is None for v in value):
            raise ParameterFileError(f"{where}: parameter {name!r} is a list holding maps, lists or nulls; "
                                     "ROS parameters are lists of one scalar type")
        kinds = {type(v) for v in value}
        if kinds == {int, float}:
            return [float(v) for v in value]
        if len(kinds) > 1:
            raise ParameterFileError(f"{where}: parameter {name!r} mixes types {sorted(k.__name__ for k in kinds)} "
                                     "in one list")
        return value
    raise ParameterFileError(f"{where}: parameter {name!r} has value {value!r}; expected a bool, int, float, "
                             "string or a list of one of those")


def _collect(tree: Any, path: list[str], where: str, entries: list[tuple[str, dict]]) -> None:
    if not isinstance(tree, dict):
        raise ParameterFileError(f"{where}: {'/'.join(path) or 'the top level'} is not a map of node names "
                                 f"to '{PARAMETERS_KEY}'")
    for key, value in tree.items():
        if key == PARAMETERS_KEY:
            if not path:
                raise ParameterFileError(f"{where}: '{PARAMETERS_KEY}' must sit under a node name")
            if not isinstance(value, dict):
                raise ParameterFileError(f"{where}: '{PARAMETERS_KEY}' of {'/'.join(path)} is not a map")
            flat: dict[str, Any] = {}
            _flatten(value, "", where, flat)
            pattern = "/".join(p.strip("/") for p in path)
            entries.append(("/" + pattern, flat))
        else:
            _collect(value, [*path, str(key)], where, entries)


def load_params_file(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    path = Path(path)
    try:
        tree = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParameterFileError(f"cannot read parameter file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ParameterFileError(f"parameter file {path} is not valid YAML: {exc}") from exc
    entries: list[tuple[str, dict[str, Any]]] = []
    _collect(tree if tree is not None else {}, [], str(path), entries)
    if not entries:
        raise ParameterFileError(f"parameter file {path} has no '<node>: {PARAMETERS_KEY}:' entry")
    return entries


def _pattern_regex(pattern: str) -> re.Pattern:
    # rclcpp's translation: `/**` -> any number of `/name`, `/*` -> exactly one.
    regex = re.escape(pattern).replace(r"/\*\*", r"(/[^/]+)*").replace(r"/\*", r"(/[^/]+)")
    return re.compile(regex)


def node_name_matches(pattern: str, node_fqn: str) -> bool:
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    return _pattern_regex(pattern).fullmatch(node_fqn) is not None


def node_parameters(source: str | Path | list[tuple[str, dict[str, Any]]], node_fqn: str) -> dict[str, Any]:
    entries = load_params_file(source) if isinstance(source, (str, Path)) else source
    merged: dict[str, Any] = {}
    for pattern, params in entries:
        if node_name_matches(pattern, node_fqn):
            merged.update(params)
    return merged


def coerce_to_default_type(name: str, value: Any, default: Any) -> Any:
    def mismatch():
        return ParameterFileError(
            f"parameter {name!r}: got {value!r} ({type(value).__name__}), expected "
            f"{type(default).__name__} like the default {default!r}")

    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise mismatch()
        return value
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, list):
        if not isinstance(value, list):
            raise mismatch()
        if default and value:
            element = type(default[0])
            if element is float and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                return [float(v) for v in value]
            if any(type(v) is not element for v in value):
                raise mismatch()
        return value
    if type(value) is not type(default):
        raise mismatch()
    return value
