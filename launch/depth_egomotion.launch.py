"""Monocular depth + visual odometry (config/graphs/depth.yaml): ros2 launch ros2_pose depth_egomotion.launch.py"""
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("depth")
