"""Multi-person body pose (config/graphs/bpnet.yaml): ros2 launch ros2_pose bpnet.launch.py"""
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("bpnet")
