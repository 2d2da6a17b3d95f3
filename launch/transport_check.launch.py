"""Synthetic frames from image_source to image_sink (config/graphs/transport_check.yaml)."""
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("transport_check")
