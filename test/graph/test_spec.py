"""Graph files: what loads, and the clear errors for what does not (no ROS needed)."""
import textwrap

import pytest

from ros2_pose.graph.plan import parse_argument_values, parse_param_overrides, plan_graph
from ros2_pose.graph.spec import (GraphSpecError, available_graphs, load_graph, load_graph_file,
                                  parse_ros_params_file, section_applies)


def write_graph(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load_text(tmp_path, text):
    return load_graph_file(write_graph(tmp_path, text))


def test_transport_check_loads_with_files_arguments_and_remappings():
    graph = load_graph("transport_check")
    assert "transport_check" in available_graphs()
    source = graph.node("image_source")
    assert source.parameter_files[0].name == "transport_check.yaml"
    assert source.inline_parameters["rate_hz"] == "$(arg rate_hz)"
    assert source.remappings == {"image": "/camera/image_raw"}
    assert set(graph.arguments) == {"rate_hz", "qos"}


def test_plan_applies_arguments_then_param_overrides_in_ros_args_order():
    graph = load_graph("transport_check")
    plan = plan_graph(graph, parse_argument_values(["rate_hz=12"]),
                      parse_param_overrides(["image_source.qos:=sensor", "image_sink.stop_after:=5"], graph))
    source, sink = plan.nodes
    assert source.overrides == {"rate_hz": 12, "qos": "sensor"}
    args = source.ros_arguments()
    # files first, then -p overrides, then remaps: rcl applies them in order, later wins.
    assert args[:3] == ["--ros-args", "-r", "__node:=image_source"]
    assert args.index("--params-file") < args.index("-p")
    assert "rate_hz:=12" in args and 'qos:="sensor"' in args and "image:=/camera/image_raw" in args
    assert "stop_after:=5" in sink.ros_arguments(with_name=False)
    assert "__node:=image_sink" not in sink.ros_arguments(with_name=False)


@pytest.mark.parametrize("items, message", [
    (["nobody.rate:=1"], "has no node 'nobody'"),
    (["image_source"], "expected <node>.<parameter>:=<value>"),
    (["image_source.rate_hz:={a: 1}"], "not a ROS parameter value"),
])
def test_bad_param_overrides(items, message):
    with pytest.raises(GraphSpecError, match=message):
        parse_param_overrides(items, load_graph("transport_check"))


def test_unknown_argument_is_refused():
    with pytest.raises(GraphSpecError, match="no argument.*bogus.*arguments: rate_hz, qos"):
        plan_graph(load_graph("transport_check"), {"bogus": "1"})


def test_missing_graph_names_available_ones():
    with pytest.raises(GraphSpecError, match="no graph 'nope'.*transport_check"):
        load_graph("nope")
    with pytest.raises(GraphSpecError, match="plain name"):
        load_graph("../etc/passwd")


NODE = """
nodes:
  - executable: image_source
    name: src
    {extra}
"""


@pytest.mark.parametrize("extra, message", [
    ("colour: red", r"unknown key\(s\) colour"),
    ("parameters: [../setup.py]", "leaves config/"),
    ("parameters: [/etc/hosts]", "leaves config/"),
    ("parameters: [does_not_exist.yaml]", "not found"),
    ("parameters: [{rate_hz: $(arg missing)}]", "undeclared argument 'missing'"),
    ("parameters: [{rate_hz: [1, a]}]", "list items must all be one type"),
    ("namespace: relative", "must be absolute"),
    ("remappings: [image]", "'remappings' must map"),
])
def test_bad_node_entries(tmp_path, extra, message):
    with pytest.raises(GraphSpecError, match=message):
        load_text(tmp_path, NODE.format(extra=extra))


def test_unknown_executable_lists_available(tmp_path):
    with pytest.raises(GraphSpecError, match="no node executable 'no_such_node'.*image_sink, image_source"):
        load_text(tmp_path, "nodes: [{executable: no_such_node, name: x}]")


@pytest.mark.parametrize("text, message", [
    ("nodes: []", "non-empty list"),
    ("nodes: [{executable: image_source, name: a}, {executable: image_sink, name: a}]", "two nodes"),
    ("nodez: []", r"unknown key\(s\) nodez"),
    ("arguments: {x: {description: no default}}\nnodes: [{executable: image_source, name: a}]",
     "needs a 'default'"),
    ("nodes: [: bad", "not valid YAML"),
])
def test_bad_graph_files(tmp_path, text, message):
    with pytest.raises(GraphSpecError, match=message):
        load_text(tmp_path, text)


@pytest.mark.parametrize("text, message", [
    ("node: {parameters: {a: 1}}", "expected a 'ros__parameters' mapping"),
    ("- a\n- b", "expected `<node name>"),
    ("node: {ros__parameters: {a: {b: [1, 2.5]}}}", "list items must all be one type"),
    ("node: {ros__parameters: {a: null}}", "not a ROS parameter value"),
])
def test_bad_params_files(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(GraphSpecError, match=message):
        parse_ros_params_file(path)


def test_params_file_nested_names_and_wildcards(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**: {ros__parameters: {a: {b: 1}}}\nrobot: {cam: {ros__parameters: {c: [x, y]}}}\n")
    sections = parse_ros_params_file(path)
    assert sections == {"/**": {"a.b": 1}, "robot/cam": {"c": ["x", "y"]}}
    assert section_applies("/**", "/robot/cam") and section_applies("robot/cam", "/robot/cam")
    assert section_applies("/*/cam", "/robot/cam") and not section_applies("/*/cam", "/cam")
    assert section_applies("cam", "/cam") and not section_applies("cam", "/robot/cam")
