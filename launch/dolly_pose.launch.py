"""The dolly pose pipeline (config/graphs/dolly.yaml): ros2 launch ros2_pose dolly_pose.launch.py"""
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("dolly")
