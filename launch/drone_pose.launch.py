"""The drone pose pipeline (config/graphs/drone.yaml): ros2 launch ros2_pose drone_pose.launch.py"""
from ros2_pose.graph.launch_description import generate_launch_description_for


def generate_launch_description():
    return generate_launch_description_for("drone")
