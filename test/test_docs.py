"""docs/NODES.md and docs/USAGE.md stay true to the code.

- Every node module in ros2_pose/nodes has a `## `<executable>`` section in NODES.md whose
  "### Parameters" table lists exactly the parameters the node declares: the `PARAMETERS` spec of
  LifecycleNodeBase nodes (with the same defaults), the `declare_parameter` calls of plain rclpy
  nodes (read from the source). LifecycleNodeBase.BASE_PARAMETERS are the "Common lifecycle
  parameters" table.
- Every `ros2-pose` verb in ros2_pose.cli.main.VERBS has a `## ros2-pose <verb>` section in
  USAGE.md; for the verbs installed here, every sub-verb/target has its own heading and every
  long flag appears in its command's section; every graph in config/graphs is in the `up` section.

So adding a parameter, flag, verb or node without documenting it fails here, naming what is missing.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NODES_DIR = ROOT / "ros2_pose" / "nodes"
_HEADING = re.compile(r"^(#{1,6}) (.*?)\s*$")
_TABLE_ROW = re.compile(r"^\|\s*`([A-Za-z_][\w.]*)`\s*\|\s*(.*?)\s*\|")


# ----------------------------------------------------------------------------- markdown helpers
def sections(text: str) -> list[tuple[int, str, str]]:
    """(level, heading, body) of every heading; the body runs to the next heading of the same or a
    higher level, so it includes sub-sections."""
    lines = text.splitlines()
    heads = [(i, len(m.group(1)), m.group(2)) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    result = []
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lvl, _ in heads[k + 1:] if lvl <= level), len(lines))
        result.append((level, title, "\n".join(lines[i + 1:end])))
    return result


def section(text: str, heading: str) -> str | None:
    for _, title, body in sections(text):
        if title == heading:
            return body
    return None


def parameter_rows(body: str) -> dict[str, str]:
    """`name` -> default cell of the table under the body's "### Parameters" heading (or of the
    whole body when it has none)."""
    table = section(body, "Parameters")
    rows = {}
    for line in (table if table is not None else body).splitlines():
        match = _TABLE_ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def doc_default(value) -> str:
    """How NODES.md writes a default: the JSON form in backticks (`true`, `"dolly"`, `[0, 0]`)."""
    return f"`{json.dumps(value)}`"


# ----------------------------------------------------------------------------- what the code declares
def node_modules() -> list[str]:
    return sorted(p.stem for p in NODES_DIR.glob("*.py") if not p.stem.startswith("_"))


def lifecycle_base_class(module_name: str):
    """The LifecycleNodeBase subclass defined in ros2_pose/nodes/<module_name>.py, or None."""
    from ros2_pose.ros.node_base import LifecycleNodeBase

    module = importlib.import_module(f"ros2_pose.nodes.{module_name}")
    classes = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, LifecycleNodeBase)
               and c is not LifecycleNodeBase and c.__module__ == module.__name__]
    return classes[0] if classes else None


def declared_in_source(module_name: str) -> dict[str, object]:
    """Parameters of a plain rclpy node from its `declare_parameter(name, default, ...)` calls:
    name -> default (a literal), or `...` where the default is computed. Names given as loop
    variables over a literal tuple of (name, default) pairs are resolved too."""
    tree = ast.parse((NODES_DIR / f"{module_name}.py").read_text())
    loop_values: dict[str, list] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
            try:
                items = ast.literal_eval(node.iter)
            except ValueError:
                continue
            for position, element in enumerate(node.target.elts):
                if isinstance(element, ast.Name):
                    loop_values[element.id] = [item[position] for item in items]
    declared: dict[str, object] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "declare_parameter" and node.args):
            continue
        name_arg = node.args[0]
        default_arg = node.args[1] if len(node.args) > 1 else None
        if isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str):
            try:
                default = ast.literal_eval(default_arg) if default_arg is not None else ...
            except ValueError:
                default = ...
            declared[name_arg.value] = default
        elif isinstance(name_arg, ast.Name) and name_arg.id in loop_values:
            defaults = (loop_values.get(default_arg.id) if isinstance(default_arg, ast.Name) else None)
            for i, name in enumerate(loop_values[name_arg.id]):
                declared[name] = defaults[i] if defaults is not None else ...
        else:
            raise AssertionError(f"ros2_pose/nodes/{module_name}.py declares a parameter whose name this "
                                 f"test cannot read (line {node.lineno}); use a string literal")
    return declared


def node_parameters(module_name: str) -> dict[str, object]:
    cls = lifecycle_base_class(module_name)
    if cls is not None:
        return {name: entry[0] for name, entry in cls.PARAMETERS.items()}
    return declared_in_source(module_name)


# ----------------------------------------------------------------------------- NODES.md
@pytest.fixture(scope="module")
def nodes_md() -> str:
    return (DOCS / "NODES.md").read_text()


def test_declared_in_source_reads_literal_and_loop_declarations(tmp_path, monkeypatch):
    source = ('class N:\n'
              '    def __init__(self):\n'
              '        self.declare_parameter("rate", 2.5)\n'
              '        self.declare_parameter("bags", bags or [""])\n'
              '        for name, default in (("qos", "sensor"), ("count", 0)):\n'
              '            self.declare_parameter(name, default)\n')
    (tmp_path / "fake_node.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "NODES_DIR", tmp_path)
    assert declared_in_source("fake_node") == {"rate": 2.5, "bags": ..., "qos": "sensor", "count": 0}


def test_common_lifecycle_parameters_are_documented_with_defaults(nodes_md):
    from ros2_pose.ros.node_base import LifecycleNodeBase

    body = section(nodes_md, "Common lifecycle parameters")
    assert body is not None, "docs/NODES.md has no '### Common lifecycle parameters' section"
    rows = parameter_rows(body)
    expected = {name: entry[0] for name, entry in LifecycleNodeBase.BASE_PARAMETERS.items()}
    assert set(rows) == set(expected), f"Common lifecycle parameters table {sorted(rows)} != BASE_PARAMETERS {sorted(expected)}"
    for name, default in expected.items():
        assert rows[name] == doc_default(default), f"{name}: NODES.md says {rows[name]}, code says {doc_default(default)}"


@pytest.mark.parametrize("module_name", node_modules())
def test_every_node_parameter_is_documented(nodes_md, module_name):
    pytest.importorskip("rclpy")
    body = section(nodes_md, f"`{module_name}`")
    assert body is not None, f"docs/NODES.md has no '## `{module_name}`' section for ros2_pose/nodes/{module_name}.py"
    rows = parameter_rows(body)
    declared = node_parameters(module_name)
    missing = sorted(set(declared) - set(rows))
    assert not missing, f"{module_name}: parameters {missing} are declared in the code but not in its NODES.md table"
    stale = sorted(set(rows) - set(declared))
    assert not stale, (f"{module_name}: NODES.md lists {stale}, which the node does not declare "
                       "(common lifecycle parameters belong in their own table)")
    for name, default in declared.items():
        if default is ...:
            continue  # computed default (e.g. `bags or [""]`): the prose explains it
        assert re.match(r"`[^`]*`", rows[name]) and re.match(r"`[^`]*`", rows[name]).group(0) == doc_default(default), \
            f"{module_name}.{name}: NODES.md default {rows[name]!r}, code default {doc_default(default)}"


# ----------------------------------------------------------------------------- USAGE.md
@pytest.fixture(scope="module")
def usage_md() -> str:
    return (DOCS / "USAGE.md").read_text()


def _commands(parser: argparse.ArgumentParser, path: str, out: dict[str, argparse.ArgumentParser]) -> None:
    out[path] = parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(sub is seen for seen in out.values()):
                    continue  # an alias (`bench pnp` = `bench bpnp`): documented under its first name
                _commands(sub, f"{path} {name}", out)


@pytest.fixture(scope="module")
def cli_commands() -> dict[str, argparse.ArgumentParser]:
    from ros2_pose.cli.main import build_parser

    commands: dict[str, argparse.ArgumentParser] = {}
    _commands(build_parser(), "ros2-pose", commands)
    return commands


def test_every_verb_has_a_section(usage_md):
    from ros2_pose.cli.main import VERBS

    headings = {title for _, title, _ in sections(usage_md)}
    missing = [verb for verb in VERBS if f"ros2-pose {verb}" not in headings]
    assert not missing, f"docs/USAGE.md has no '## ros2-pose <verb>' section for {missing}"


def test_every_sub_verb_and_flag_is_documented(usage_md, cli_commands):
    problems = []
    for path, parser in cli_commands.items():
        if path == "ros2-pose":
            continue
        body = section(usage_md, path)
        if body is None:
            problems.append(f"no heading '{path}'")
            continue
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help" \
                        and not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body):
                    problems.append(f"'{path}' section does not mention {flag}")
    assert not problems, "docs/USAGE.md is behind the CLI:\n  " + "\n  ".join(problems)


def test_every_graph_is_in_the_up_section(usage_md):
    from ros2_pose.graph.spec import available_graphs

    body = section(usage_md, "ros2-pose up")
    assert body is not None
    missing = [g for g in available_graphs() if f"`{g}`" not in body]
    assert not missing, f"graphs {missing} (config/graphs) are not listed in the 'ros2-pose up' section of docs/USAGE.md"


def test_section_and_flag_matching_can_fail():
    text = "## ros2-pose sim\n| `--frames FRAMES` | x |\n### ros2-pose sim sub\n--out-dir\n## ros2-pose play\n"
    assert "--frames" in section(text, "ros2-pose sim")
    assert section(text, "ros2-pose play") == ""
    sub = section(text, "ros2-pose sim sub")
    assert not re.search(r"(?<![\w-])--out(?![\w-])", sub)
    assert parameter_rows("### Parameters\n| `a` | `1` | x |\n### Topics\n| `b` | c | d |\n") == {"a": "`1`"}
