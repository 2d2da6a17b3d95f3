"""Every shipped training config (config/train/*.yaml) loads with its task's defaults: a misspelt or
retired key fails here rather than at the start of a long run."""
from pathlib import Path

import pytest

from ros2_pose.training.run import load_config
from ros2_pose.training.tasks import depth, dolly, dolly_detector, drone

CONFIGS = Path(__file__).resolve().parents[2] / "config" / "train"
# file-name prefix -> the defaults of the `ros2-pose train <task>` that reads it (longest prefix first)
TASK_DEFAULTS = {"dolly_detector": dolly_detector.DEFAULTS, "dolly_pose": dolly.DEFAULTS,
                 "drone_": drone.DEFAULTS, "depth_": depth.defaults()}


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_training_config_loads_with_its_task_defaults(name):
    prefix = next((p for p in TASK_DEFAULTS if name.startswith(p)), None)
    assert prefix, f"{name}: no training task for this file name (prefixes {sorted(TASK_DEFAULTS)})"
    config = load_config(CONFIGS / name, TASK_DEFAULTS[prefix])
    assert int(config["epochs"]) >= 1 and int(config["batch_size"]) >= 1
