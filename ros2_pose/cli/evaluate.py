"""`ros2-pose eval <task>` (task modules in ros2_pose.evaluation.tasks)."""
from ros2_pose.cli.targets import register_targets


def register(parser):
    register_targets(parser, "ros2_pose.evaluation.tasks", metavar="<task>")
