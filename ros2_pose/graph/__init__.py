"""Node graphs as data: config/graphs/<graph>.yaml, started by `ros2 launch` or by `ros2-pose up`.

One YAML file per graph is the single description of which nodes run with which parameters.
`launch/<graph>.launch.py` (a real ROS 2 launch file, for machines with a ROS install) and
`ros2-pose up <graph>` (for machines without `ros2 launch`) both read it, so they start the same
nodes with the same parameter files, overrides and remappings.

Graph file format (`config/graphs/<graph>.yaml`)
------------------------------------------------
```yaml
description: what the graph does                     # optional
arguments:                                           # optional; launch arguments / `up --set`
  backend: {default: onnxruntime, description: "torch | onnxruntime | tensorrt"}
nodes:
  - executable: dolly_pose          # module ros2_pose/nodes/dolly_pose.py (= console script)
    name: dolly_pose                # ROS node name (unique in the graph with its namespace)
    namespace: /robot               # optional, absolute
    parameters:                     # applied in order, later entries win (as in launch)
      - dolly_pose.yaml             # a ROS 2 params file under config/ (may not leave config/)
      - {backend: $(arg backend), score_threshold: 0.5}   # inline overrides; `$(arg x)` is a
                                                          # graph argument, typed as YAML
    remappings: {image: /camera/image_raw}                # from: to
```
Parameter files are ordinary ROS 2 params files (`<node name or /**>: {ros__parameters: {...}}`),
checked when the graph loads (`ros2_pose.graph.spec.load_graph`): unknown keys, unknown
executables, missing or malformed parameter files and undeclared arguments are `GraphSpecError`s.

A new graph needs: the YAML above, its params files in config/, and a launch file
`launch/<graph>.launch.py`:
```python
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("<graph>")
```

Node module contract (every ros2_pose/nodes/<name>.py)
------------------------------------------------------
- `main()`: the console script `<name>` (setup.py generates one per module); it parses
  `--ros-args` from sys.argv via `rclpy.init()`.
- `NODE_CLASS`: the node's class, an `rclpy.node.Node` (or `rclpy.lifecycle.LifecycleNode`)
  subclass constructible as `NODE_CLASS(node_name=..., namespace=..., context=..., cli_args=[...])`,
  i.e. `def __init__(self, node_name="<default>", **node_kwargs)` forwarding both to
  `super().__init__(node_name, **node_kwargs)`. It must read parameters and create topics through
  `self` only (no global rclpy.init, no default context), so `ros2-pose up` can run several nodes
  in one process. The `cli_args` carry `--params-file`, `-p` and `-r` exactly as launch passes them.
- Lifecycle nodes declare a bool parameter `autostart` (LifecycleNodeBase: default true): when true the node
  configures and activates itself; when false `ros2-pose up` (or a lifecycle manager) drives
  configure + activate. Launch files built here set `autostart: true` for lifecycle nodes, since
  plain `launch_ros` Node actions drive no transitions.

Modules: `spec` (load/validate, ROS-free), `plan` (arguments and `--param` applied, the
`--ros-args` each node gets; ROS-free), `launch_description` (launch/launch_ros actions; imports
them only when called), `runner` and `lifecycle_client` (rclpy: in-process or one process per node).
"""
