"""`train depth` data loading and model.yaml: frame-distance selection (a mix or one), samples that
straddle a camera jump dropped, wrong datasets, missing --depth-from and init_from networks that do
not fit refused clearly."""
import json

import numpy as np
import pytest
import yaml

from ros2_pose.cli.main import main
from ros2_pose.deploy.model_spec import build_torch_model
from ros2_pose.sim.writer import render_bag
from ros2_pose.training.run import merge_config
from ros2_pose.training.tasks import depth as task


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("depth_task")
    bag = render_bag("motion", 12, root / "bag", seed=9, width=64, height=48, progress=False)
    assert main(["dataset", "build", "motion", "--bags", str(bag), "--out", str(root / "ds"), "--image-size", "32", "16",
                 "--frames-per-sample", "3", "--distances", "1", "2", "--split", "1,0,0", "--split-guard", "0"]) == 0
    return root / "ds"


def test_distances_select_samples_and_frames_resolve_from_shared_images(dataset):
    config = task.defaults()
    both, info = task.load_motion_split(dataset, "train", config)
    one, one_info = task.load_motion_split(dataset, "train", merge_config(config, {"distances": [2]}))
    assert info["distances"] == [1, 2] and one_info["distances"] == [2]
    assert len(one["frames"]) + one_info["dropped"]["other_distance"] == len(both["frames"])
    assert both["frames"].shape[1:] == (3, 16, 32, 3) and both["depths"].shape[1:] == (3, 16, 32)
    assert both["K"].shape[1:] == (3, 3, 3) and both["relative_poses"].shape[1:] == (2, 4, 4)
    # each window's frames are the dataset's, and each of the 12 frames is held once
    from ros2_pose.data.dataset import ArrayDataset

    windows = ArrayDataset(dataset, "train", fields=["frames", "depths"])
    for i in (0, len(windows) // 2, len(windows) - 1):
        np.testing.assert_array_equal(both["frames"][i], windows[i]["frames"])
        np.testing.assert_array_equal(both["depths"][i], windows[i]["depths"])
    assert len(both["frames"].source) <= 12 < len(both["frames"]) * 3
    # distance-2 windows move farther than distance-1 ones on the same smooth path
    step = lambda arrays: np.linalg.norm(arrays["relative_poses"][:, 1, :3, 3], axis=1).mean()
    only_one, _ = task.load_motion_split(dataset, "train", merge_config(config, {"distances": [1]}))
    assert step(one) > step(only_one)


def test_a_camera_jump_drops_the_sample(dataset):
    everything, _ = task.load_motion_split(dataset, "train", task.defaults())
    positions = np.concatenate([np.zeros((len(everything["frames"]), 1, 3)),
                                everything["relative_poses"][:, :, :3, 3]], axis=1)
    steps = np.linalg.norm(np.diff(positions, axis=1), axis=2).max(axis=1)
    threshold = float(np.median(steps))   # as if the larger half of the steps were jumps
    kept, info = task.load_motion_split(dataset, "train", merge_config(task.defaults(), {"max_step_m": threshold}))
    assert info["dropped"]["camera_jump"] == int((steps > threshold).sum()) > 0
    assert len(kept["frames"]) == int((steps <= threshold).sum()) > 0
    with pytest.raises(task.MotionDataError, match="no sample left"):
        task.load_motion_split(dataset, "train", merge_config(task.defaults(), {"max_step_m": 0.0, "distances": [2]}))


def test_model_yaml_rebuilds_both_networks():
    config = merge_config(task.defaults(), {"depth_model": {"channels": [4, 8], "num_scales": 2},
                                            "pose_model": {"channels": [4, 8], "head_width": 8, "fusion": "late"}})
    depth = build_torch_model(task.depth_model_config(config["depth_model"], 32, 16))
    pose = build_torch_model(task.pose_model_config(config, 2, 32, 16))
    assert type(depth).__name__ == "DepthNet" and pose.fusion == "late" and pose.num_sources == 2


def test_pose_from_depth_features_needs_a_depth_network(dataset, tmp_path):
    with pytest.raises(SystemExit, match="--depth-from"):
        main(["train", "depth", "--data", str(dataset), "--out", str(tmp_path / "run"),
              "--mode", "pose_from_depth_features"])
    with pytest.raises(FileNotFoundError, match="checkpoint_best.pt"):
        task.depth_weights_path(tmp_path)


def test_init_from_networks_that_do_not_fit_are_refused(dataset, tmp_path, capsys):
    from ros2_pose.deploy.model_spec import write_model_folder
    from ros2_pose.models.depth_egomotion import PoseNet

    config = merge_config(task.defaults(), {"pose_model": {"channels": [4, 8], "head_width": 8}})
    one_source = PoseNet(1, **config["pose_model"])
    write_model_folder(tmp_path / "pose_1", one_source, task.pose_model_config(config, 1, 32, 16), export=False)
    (tmp_path / "one.yaml").write_text("epochs: 1\ninit_from: {pose: ./pose_1}\n")
    assert main(["train", "depth", "--config", str(tmp_path / "one.yaml"), "--data", str(dataset),
                 "--out", str(tmp_path / "run")]) != 0
    assert "takes 1 source frame(s), but the dataset's samples have 2" in capsys.readouterr().err
    for bad, message in (("init_from: ./pose_1\n", "must be {depth"),
                         ("init_from: {depth: ./pose_1}\n", "not a DepthNet"),
                         ("init_from: {pose: ../elsewhere}\n", "outside"),
                         ("mode: pose_from_depth_features\ninit_from: {pose: ./pose_1}\n", "new pose head")):
        (tmp_path / "bad.yaml").write_text("epochs: 1\n" + bad)
        assert main(["train", "depth", "--config", str(tmp_path / "bad.yaml"), "--data", str(dataset),
                     "--out", str(tmp_path / "run_bad")]) != 0
        assert message in capsys.readouterr().err, bad
    # a dataset with nothing to validate on is one clear line too, not a traceback
    assert main(["train", "depth", "--data", str(dataset), "--out", str(tmp_path / "run_no_val")]) != 0
    assert "split 'val' has no sample left" in capsys.readouterr().err


def test_a_dataset_without_ground_truth_trains_self_supervised(dataset, tmp_path, capsys):
    # A robot's bag with images and camera_info only: no depth topic (renamed away here), no TF used.
    bag = dataset.parent / "bag"
    out = tmp_path / "unlabelled"
    assert main(["dataset", "build", "motion", "--bags", str(bag), "--out", str(out), "--gt-source", "none",
                 "--topic", "depth=/camera/not_recorded", "--image-size", "32", "16", "--frames-per-sample", "3",
                 "--distances", "1", "--split", "0.5,0.5,0", "--split-block", "3", "--split-guard", "0"]) == 0
    task_info = yaml.safe_load((out / "manifest.json").read_text())["parameters"]["task"]
    assert task_info["depth"] is False and task_info["ground_truth_pose"] is False
    arrays, info = task.load_motion_split(out, "train", task.defaults())
    assert set(arrays) == {"frames", "K"} and info["dropped"]["camera_jump"] == 0
    with pytest.raises(task.MotionDataError, match="no ground-truth depths"):
        task.load_motion_split(out, "train", merge_config(task.defaults(), {"mode": "supervised"}))
    (tmp_path / "tiny.yaml").write_text("epochs: 1\nbatch_size: 2\ndepth_model: {channels: [4, 8], num_scales: 1}\n"
                                        "pose_model: {channels: [4, 8], head_width: 8}\n")
    assert main(["train", "depth", "--config", str(tmp_path / "tiny.yaml"), "--data", str(out),
                 "--out", str(tmp_path / "run"), "--no-export"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "val_photometric_loss" in metrics and "val_abs_rel" not in metrics
    # the same bag with ground truth keeps both
    assert main(["dataset", "build", "motion", "--bags", str(bag), "--out", str(tmp_path / "labelled"),
                 "--image-size", "32", "16", "--split", "1,0,0", "--split-guard", "0"]) == 0
    labelled = yaml.safe_load((tmp_path / "labelled" / "manifest.json").read_text())["parameters"]["task"]
    assert labelled["depth"] is True and labelled["ground_truth_pose"] is True
    assert main(["dataset", "build", "drone", "--bags", str(bag), "--out", str(tmp_path / "d"), "--gt-source", "none"]) != 0
    assert "needs the drones' ground-truth poses" in capsys.readouterr().err


def test_several_datasets_train_together_when_they_match(dataset, tmp_path):
    bag = dataset.parent / "bag"
    build = ["dataset", "build", "motion", "--bags", str(bag), "--frames-per-sample", "3", "--split", "1,0,0",
             "--split-guard", "0"]
    assert main(build + ["--out", str(tmp_path / "near"), "--image-size", "32", "16", "--distances", "1"]) == 0
    first, first_info = task.load_motion_split(dataset, "train", task.defaults())
    second, _ = task.load_motion_split(tmp_path / "near", "train", task.defaults())
    both, info = task.load_motion_splits([str(dataset), str(tmp_path / "near")], "train", task.defaults())
    assert len(both["frames"]) == len(first["frames"]) + len(second["frames"]) and info["distances"] == [1, 2]
    np.testing.assert_array_equal(both["depths"][len(first["frames"]):], second["depths"])
    np.testing.assert_array_equal(both["relative_poses"][:len(first["frames"])], first["relative_poses"])
    # another image size, or a dataset without the other's ground truth, cannot be stacked with it
    assert main(build + ["--out", str(tmp_path / "big"), "--image-size", "64", "32", "--distances", "1"]) == 0
    with pytest.raises(task.MotionDataError, match="one --image-size"):
        task.load_motion_splits([str(dataset), str(tmp_path / "big")], "train", task.defaults())
    assert main(build + ["--out", str(tmp_path / "bare"), "--image-size", "32", "16", "--distances", "1",
                         "--gt-source", "none", "--topic", "depth=/camera/not_recorded"]) == 0
    with pytest.raises(task.MotionDataError, match="same ground truth"):
        task.load_motion_splits([str(dataset), str(tmp_path / "bare")], "train", task.defaults())
