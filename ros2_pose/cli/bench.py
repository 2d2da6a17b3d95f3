"""`ros2-pose bench <target>`: benchmarks that print a table (modules in ros2_pose.benchmarks)."""
from ros2_pose.cli.targets import register_targets


def register(parser):
    register_targets(parser, "ros2_pose.benchmarks")
