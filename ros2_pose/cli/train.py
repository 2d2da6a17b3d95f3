"""`ros2-pose train <task> --config <yaml>` (task modules in ros2_pose.training.tasks)."""
from ros2_pose.cli.targets import register_targets


def register(parser):
    register_targets(parser, "ros2_pose.training.tasks", metavar="<task>")
