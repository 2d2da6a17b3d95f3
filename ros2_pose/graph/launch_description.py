"""A `launch.LaunchDescription` built from config/graphs/<graph>.yaml, for `ros2 launch`.

Every launch/<graph>.launch.py is the five lines shown in `ros2_pose.graph`; the nodes, parameter
files, overrides and remappings come from the same YAML `ros2-pose up` reads. `launch` and
`launch_ros` are imported inside the function, so this module imports on machines without them.
"""
from __future__ import annotations

import re

from ros2_pose.graph.spec import load_graph

PACKAGE = "ros2_pose"
_ARG_REFERENCE = re.compile(r"^\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)$")


def generate_launch_description_for(graph_name: str, *, output: str = "screen"):
    """The graph as DeclareLaunchArgument actions (its `arguments`) and launch_ros Node actions."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    graph = load_graph(graph_name)
    actions = [DeclareLaunchArgument(arg.name, default_value=arg.default, description=arg.description)
               for arg in graph.arguments.values()]
    for node in graph.nodes:
        inline = {}
        for key, value in node.inline_parameters.items():
            match = _ARG_REFERENCE.match(value) if isinstance(value, str) else None
            inline[key] = LaunchConfiguration(match.group(1)) if match else value
        # Plain launch_ros Node actions drive no lifecycle transitions, so lifecycle nodes start
        # themselves. First in the list = lowest precedence: a params file or inline entry saying
        # `autostart: false` (for an external lifecycle manager) still wins. Nodes that do not
        # declare `autostart` ignore it (rclpy drops undeclared overrides).
        parameters = [{"autostart": True}, *(str(path) for path in node.parameter_files)]
        if inline:
            parameters.append(inline)
        actions.append(Node(
            package=PACKAGE,
            executable=node.executable,
            name=node.name,
            namespace=node.namespace or "",
            parameters=parameters,
            remappings=list(node.remappings.items()),
            output=output,
        ))
    return LaunchDescription(actions)
