"""Every launch/*.launch.py names real, installed node executables and loadable parameter files.

Launch files are parsed with `ast` (no `launch` import needed). A launch file built with
`generate_launch_description_for("<graph>")` is checked through its graph YAML; one that lists
`launch_ros.actions.Node(executable=...)` itself is checked through those literal names.
Where `launch_ros` is importable (a ROS 2 install), each file's `generate_launch_description()`
is also run for real.
"""
import ast
import importlib
import importlib.metadata
import importlib.util
import runpy
from pathlib import Path

import pytest

from ros2_pose import resources
from ros2_pose.graph.spec import available_graphs, file_parameters_for, load_graph, parse_ros_params_file

LAUNCH_FILES = sorted(resources.launch_dir().glob("*.launch.py"))


def launch_ids():
    return [p.name for p in LAUNCH_FILES]


def console_scripts() -> dict[str, str]:
    """name -> 'module:function' of the ros2_pose distribution's console scripts."""
    dist = importlib.metadata.distribution("ros2_pose")
    return {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}


def launch_file_contents(path: Path) -> tuple[list[str], list[str]]:
    """(graphs passed to generate_launch_description_for, literal Node executables) of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions, f"{path.name} has no generate_launch_description()"
    graphs, executables = [], []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        if name == "generate_launch_description_for":
            assert call.args and isinstance(call.args[0], ast.Constant), \
                f"{path.name}: generate_launch_description_for needs a literal graph name"
            graphs.append(call.args[0].value)
        for keyword in call.keywords:
            if keyword.arg == "executable" and isinstance(keyword.value, ast.Constant):
                executables.append(keyword.value.value)
    assert graphs or executables, f"{path.name} starts no node that this test can see"
    return graphs, executables


def check_executable(name: str, scripts: dict[str, str]) -> None:
    assert name in scripts, (f"{name!r} is not a console script of ros2_pose (re-run scripts/setup.sh "
                             f"after adding ros2_pose/nodes/{name}.py)")
    module_name, _, function = scripts[name].partition(":")
    assert module_name == f"ros2_pose.nodes.{name}" and function == "main", scripts[name]
    module = importlib.import_module(module_name)
    assert callable(getattr(module, "main", None)), f"{module_name} has no main()"
    assert isinstance(getattr(module, "NODE_CLASS", None), type), f"{module_name} has no NODE_CLASS"


def test_there_are_launch_files():
    assert LAUNCH_FILES, f"no launch files in {resources.launch_dir()}"


def test_every_graph_has_a_launch_file():
    launched = {g for path in LAUNCH_FILES for g in launch_file_contents(path)[0]}
    assert set(available_graphs()) <= launched, f"graphs without launch file: {set(available_graphs()) - launched}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=launch_ids())
def test_launch_file_nodes_and_parameters(path):
    scripts = console_scripts()
    graphs, executables = launch_file_contents(path)
    for executable in executables:
        check_executable(executable, scripts)
    for graph_name in graphs:
        graph = load_graph(graph_name)  # validates files, keys, arguments
        for node in graph.nodes:
            check_executable(node.executable, scripts)
            for params_file in node.parameter_files:
                assert params_file.is_file()
                sections = parse_ros_params_file(params_file)
                assert sections, f"{params_file} is empty"
            if node.parameter_files:
                # A params file with no section for the node (a renamed node) would silently not apply.
                assert file_parameters_for(node), (
                    f"none of {[p.name for p in node.parameter_files]} has a section for {node.fully_qualified_name}")


def launch_ros_importable() -> bool:
    # `import launch` alone can succeed here: the repository's launch/ folder is a namespace package.
    try:
        from launch import LaunchDescription  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("launch_ros") is not None


@pytest.mark.skipif(not launch_ros_importable(),
                    reason="launch/launch_ros are not installed (no ROS 2 install; not on PyPI)")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=launch_ids())
def test_generate_launch_description_builds(path):
    from launch import LaunchDescription
    from launch_ros.actions import Node

    description = runpy.run_path(str(path))["generate_launch_description"]()
    assert isinstance(description, LaunchDescription)
    nodes = [e for e in description.entities if isinstance(e, Node)]
    graphs, executables = launch_file_contents(path)
    expected = sum(len(load_graph(g).nodes) for g in graphs) or len(executables)
    assert len(nodes) == expected
