"""ros2_pose.ros.params: ROS 2 parameter files read the way rcl/rclcpp read them."""
import pytest

from ros2_pose.ros.params import (
    ParameterFileError,
    coerce_to_default_type,
    load_params_file,
    node_name_matches,
    node_parameters,
)

PARAMS = """
/**:
  ros__parameters:
    use_gpu: false
    threshold: 0.1
dolly_pose:
  ros__parameters:
    threshold: 0.5
    camera:
      width: 640
      height: 480
    classes: [dolly, cart]
/robot/*:
  ros__parameters:
    threshold: 0.7
robot:
  dolly_pose:
    ros__parameters:
      camera: {width: 320}
"""


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "nodes.yaml"
    path.write_text(PARAMS)
    return path


def test_entries_in_file_order_with_flattened_names(params_file):
    entries = load_params_file(params_file)
    assert [pattern for pattern, _ in entries] == ["/**", "/dolly_pose", "/robot/*", "/robot/dolly_pose"]
    assert entries[1][1] == {"threshold": 0.5, "camera.width": 640, "camera.height": 480,
                             "classes": ["dolly", "cart"]}


def test_node_gets_wildcard_then_specific_values(params_file):
    assert node_parameters(params_file, "/dolly_pose") == {
        "use_gpu": False, "threshold": 0.5, "camera.width": 640, "camera.height": 480,
        "classes": ["dolly", "cart"]}
    assert node_parameters(params_file, "/robot/dolly_pose") == {
        "use_gpu": False, "threshold": 0.7, "camera.width": 320}
    assert node_parameters(params_file, "/other") == {"use_gpu": False, "threshold": 0.1}


@pytest.mark.parametrize("pattern, name, matches", [
    ("/**", "/a", True), ("/**", "/ns/deep/a", True), ("/*", "/a", True), ("/*", "/ns/a", False),
    ("a", "/a", True), ("a", "/ns/a", False), ("/ns/*", "/ns/a", True), ("/ns/**/a", "/ns/x/y/a", True),
    ("/ns/**/a", "/ns/a", True), ("/a.b", "/aXb", False),
])
def test_node_name_matching(pattern, name, matches):
    assert node_name_matches(pattern, name) is matches


@pytest.mark.parametrize("text, message", [
    ("a: [1, 2", "not valid YAML"),
    ("a: {}\n", "no '<node>: ros__parameters:' entry"),
    ("a:\n  b: 1\n", "a/b is not a map of node names"),
    ("ros__parameters: {x: 1}\n", "must sit under a node name"),
    ("n:\n  ros__parameters: {x: null}\n", "'x' has value None"),
    ("n:\n  ros__parameters: {x: [1, a]}\n", "'x' mixes types"),
    ("n:\n  ros__parameters: {x: [[1]]}\n", "'x' is a list holding maps"),
    ("n:\n  ros__parameters: 3\n", "is not a map"),
])
def test_bad_files_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParameterFileError, match=message):
        load_params_file(path)


def test_missing_file_is_a_parameter_file_error(tmp_path):
    with pytest.raises(ParameterFileError, match="cannot read"):
        load_params_file(tmp_path / "absent.yaml")


def test_coercion_to_the_default_type():
    assert coerce_to_default_type("t", 1, 0.5) == 1.0 and isinstance(coerce_to_default_type("t", 1, 0.5), float)
    assert coerce_to_default_type("l", [1, 2.5], [0.0]) == [1.0, 2.5]
    assert coerce_to_default_type("s", [], ["a"]) == []
    with pytest.raises(ParameterFileError, match=r"'t': got 'high' \(str\), expected float like the default 0.5"):
        coerce_to_default_type("t", "high", 0.5)
    with pytest.raises(ParameterFileError, match="expected bool"):
        coerce_to_default_type("b", 1, True)
    with pytest.raises(ParameterFileError, match="expected int"):
        coerce_to_default_type("i", 1.5, 3)
    with pytest.raises(ParameterFileError, match="expected list"):
        coerce_to_default_type("l", ["a", 1], ["x"])
