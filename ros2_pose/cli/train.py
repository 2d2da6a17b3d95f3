"""`ros2-pose train <task> --config <yaml>` (task modules in ros2_pose.training.tasks)."""
from ros2_pose.cli.targets import register_targets


def register(parser):
    from ros2_pose.data.dataset import DatasetError
    from ros2_pose.deploy.model_spec import ModelConfigError
    from ros2_pose.training.run import ConfigError

    register_targets(parser, "ros2_pose.training.tasks", metavar="<task>",
                     errors=(ConfigError, DatasetError, ModelConfigError, FileNotFoundError))
