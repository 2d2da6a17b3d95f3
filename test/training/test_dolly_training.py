"""Tiny, fast runs of the dolly training loop on synthetic arrays: the loop learns, logs and resumes."""
import csv

import numpy as np
import pytest
import torch

from ros2_pose.geometry.transforms import axis_angle_to_matrix
from ros2_pose.training.dolly import train_detector, train_pose_network
from ros2_pose.training.run import ConfigError, TrainingRun, merge_config
from ros2_pose.training.tasks import dolly as dolly_task
from ros2_pose.training.tasks import dolly_detector as detector_task


def pose_arrays(n, seed):
    rng = np.random.default_rng(seed)
    crop = np.zeros((n, 128, 128, 3), np.uint8)
    rotation = np.zeros((n, 3, 3), np.float32)
    for i in range(n):
        angle = rng.uniform(-1.0, 1.0)
        rotation[i] = axis_angle_to_matrix([0.0, angle, 0.0])
        # The image shows the yaw as the position of a bright bar, so it is learnable.
        column = int(64 + angle * 50)
        crop[i, 40:90, column - 4:column + 4] = 255
    K = np.tile(np.array([[500, 0, 320], [0, 500, 240], [0, 0, 1]], np.float32), (n, 1, 1))
    crop_matrix = np.tile(np.array([[0.5, 0, -96], [0, 0.5, -56]], np.float32), (n, 1, 1))
    translation = np.tile(np.array([0.0, 0.1, 2.0], np.float32), (n, 1))
    mask = np.zeros((n, 64, 64), np.uint8)
    mask[:, 20:45, 20:45] = 1
    return {"crop": crop, "box_norm": np.tile(np.float32([0.3, 0.3, 0.6, 0.6]), (n, 1)), "crop_matrix": crop_matrix,
            "K": K, "rotation": rotation, "translation": translation, "mask": mask}


def small_config(defaults, **over):
    config = merge_config(defaults, {"epochs": 3, "batch_size": 16, "augment": 0.0, **over})
    return config


def test_pose_training_learns_logs_and_resumes(tmp_path):
    torch.manual_seed(0)
    config = small_config(dolly_task.DEFAULTS, model={"width": [4, 8, 8, 8]},
                          optimizer={"lr": 3e-3, "weight_decay": 0.0})
    train, val = pose_arrays(64, 0), pose_arrays(32, 1)
    run = TrainingRun(tmp_path / "run", config, monitor="val_ap", mode="max")
    assert run.start(resume=False) is None
    train_pose_network(train, val, config, run, progress=lambda line: None)
    rows = list(csv.DictReader(open(tmp_path / "run" / "curves.csv")))
    assert len(rows) == 3
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    # seed 003 Table 1's per-batch phases, timed by the shared loop
    for row in rows:
        phases = [float(row[f"seconds_{p}"]) for p in ("forward", "backward", "optimizer", "validation")]
        assert all(p > 0 for p in phases) and sum(phases[:3]) * 2 < float(row["epoch_seconds"])
    state = torch.load(run.last_checkpoint, weights_only=True)
    assert state["epoch"] == 2 and "model" in state
    # A resumed run must keep the schedule it started with: a changed epoch count is refused up front.
    run2 = TrainingRun(tmp_path / "run", dict(config, epochs=4), monitor="val_ap", mode="max")
    resumed = run2.start(resume=True)
    assert resumed["epoch"] == 2 and len(run2.history) == 3
    with pytest.raises(ValueError, match="cannot resume"):
        train_pose_network(train, val, dict(config, epochs=4), run2, resume_state=resumed, progress=lambda line: None)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    config = small_config(dolly_task.DEFAULTS, model={"width": [4, 4, 4, 4]})
    train, val = pose_arrays(32, 0), pose_arrays(16, 1)

    def train_once(folder, stop_after=None):
        torch.manual_seed(0)
        run = TrainingRun(folder, config, monitor="val_ap", mode="max")
        state = run.start(resume=stop_after is None and (folder / "checkpoint_last.pt").exists())

        def progress(line):
            if stop_after is not None and line.startswith(f"epoch {stop_after}/"):
                raise KeyboardInterrupt
        try:
            return train_pose_network(train, val, config, run, resume_state=state, progress=progress)
        except KeyboardInterrupt:
            return None

    straight = train_once(tmp_path / "straight")
    assert train_once(tmp_path / "interrupted", stop_after=2) is None
    resumed = train_once(tmp_path / "interrupted")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_existing_run_is_not_overwritten(tmp_path):
    config = small_config(dolly_task.DEFAULTS)
    run = TrainingRun(tmp_path, config)
    run.start(resume=False)
    run.log_epoch({"epoch": 0, "val_loss": 1.0}, {"model": {}})
    with pytest.raises(FileExistsError):
        TrainingRun(tmp_path, config).start(resume=False)


def test_diverged_training_is_reported(tmp_path):
    run = TrainingRun(tmp_path, {})
    run.start(resume=False)
    with pytest.raises(FloatingPointError):
        run.log_epoch({"epoch": 0, "val_loss": float("nan")}, {})


def test_unknown_config_keys_are_errors():
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        merge_config(dolly_task.DEFAULTS, {"epoch": 3})


def test_detector_training_runs_and_finds_boxes(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 48
    images = np.zeros((n, 64, 64, 3), np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    for i in range(n):
        x, y = rng.integers(4, 40, 2)
        images[i, y:y + 20, x:x + 20] = 220
        boxes[i] = np.array([x - 0.5, y - 0.5, x + 19.5, y + 19.5]) / 64
    arrays = {"det_image": images, "det_box": boxes, "det_valid": np.ones(n, bool)}
    config = small_config(detector_task.DEFAULTS, epochs=4, model={"width": 8, "input_size": 64},
                          optimizer={"lr": 5e-3, "weight_decay": 0.0})
    run = TrainingRun(tmp_path, config, monitor="val_median_iou", mode="max")
    run.start(resume=False)
    train_detector(arrays, arrays, config, run, progress=lambda line: None)
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    assert (tmp_path / "checkpoint_best.pt").is_file()
