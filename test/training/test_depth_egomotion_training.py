"""Depth + ego-motion training on tiny rendered sequences (64x48): the self-supervised loss falls,
the supervised and frozen-depth-feature modes run through `fit` and keep what they must keep."""
import copy

import numpy as np
import pytest
import torch

from ros2_pose.training import depth_egomotion as de
from ros2_pose.training.run import TrainingRun, merge_config

W, H = 64, 48
TINY = [8, 16, 24, 32]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def arrays():
    from ros2_pose.sim import motion
    from ros2_pose.sim.tasks import frame_rng

    config = motion.MotionConfig(sequence_length=10, texture_size=64)
    task = motion.MotionTask(W, H, config=config)
    sequences = [[task.generate(frame_rng(3, s * 10 + i), s * 10 + i) for i in range(10)] for s in range(2)]
    train = de.arrays_from_sim_frames(sequences[:1], frames_per_sample=3, distance=2)
    val = de.arrays_from_sim_frames(sequences[1:], frames_per_sample=3, distance=2)
    return train, val


def _config(**overrides):
    base = {"epochs": 4, "batch_size": 3, "depth_model": {"channels": TINY, "num_scales": 2},
            "pose_model": {"channels": TINY, "head_width": 16}, "optimizer": {"lr": 2e-3, "weight_decay": 0.0},
            "eval": {"batch_size": 8}}
    return merge_config(merge_config(de.DEFAULTS, base), overrides)


def test_arrays_from_sim_frames_follow_the_motion_dataset_layout(arrays):
    train, _ = arrays
    assert train["frames"].shape == (6, 3, H, W, 3) and train["frames"].dtype == np.uint8
    assert train["depths"].shape == (6, 3, H, W) and train["K"].shape == (6, 3, 3, 3)
    assert train["relative_poses"].shape == (6, 2, 4, 4)
    batch = de.SampleBatcher(train, None)(np.array([0, 1]))
    assert batch["target"].shape == (2, 3, H, W) and batch["sources"].shape == (2, 2, 3, H, W)
    # the middle frame is the target; the ground truth maps target points into each source camera
    T = batch["T_target_to_sources"].numpy()
    rel = train["relative_poses"][0].astype(np.float64)
    np.testing.assert_allclose(T[0, 0], rel[0], atol=1e-5)                     # source 0 = frame 0
    np.testing.assert_allclose(T[0, 1], np.linalg.inv(rel[1]) @ rel[0], atol=1e-5)
    with pytest.raises(de.DepthEgoMotionDataError, match="target_index"):
        de.SampleBatcher(train, 3)


def test_augmented_batches_change_the_lighting_of_a_whole_window_only(arrays):
    train, _ = arrays
    plain = de.SampleBatcher(train, None)(np.array([0, 1]))
    lit = de.SampleBatcher(train, None, augment=1.5, generator=torch.Generator().manual_seed(0))(np.array([0, 1]))
    assert lit["target"].shape == plain["target"].shape and not torch.allclose(lit["target"], plain["target"])
    # the same gain on every frame of a window: target and sources brighten or darken together
    ratio = lambda frames: (frames.mean(dim=(-3, -2, -1)) + 1e-6)
    target_gain = ratio(lit["target"]) / ratio(plain["target"])
    source_gain = ratio(lit["sources"]) / ratio(plain["sources"])
    np.testing.assert_allclose(source_gain.numpy(), target_gain[:, None].expand_as(source_gain).numpy(), rtol=0.03)
    for key in ("K", "depth", "T_target_to_sources"):  # geometry is untouched
        assert torch.equal(lit[key], plain[key])
    with pytest.raises(ValueError, match="Generator"):
        de.SampleBatcher(train, None, augment=1.0)


def _mean_photometric_error(model, arrays, config):
    """Reprojection error over every validly warped pixel (auto-masking off: the masked mean of the
    training objective is taken over a set of pixels that changes as the networks learn)."""
    config = merge_config(config, {"loss": {"automask": False, "smoothness_weight": 0.0}})
    batcher = de.SampleBatcher(arrays, None)
    with torch.no_grad():
        return float(np.mean([de.training_loss(model, batcher(np.arange(i, i + 3)), config)[0].item()
                              for i in range(0, len(arrays["frames"]) - 2, 3)]))


def test_self_supervised_training_lowers_the_photometric_loss(arrays, tmp_path):
    train, val = arrays
    torch.manual_seed(0)
    # lr 1e-3: with He-initialised networks 3e-3 overshoots on 6 samples (ratio 0.87)
    config = _config(epochs=20, batch_size=2, optimizer={"lr": 1e-3})
    untrained = de.build_model(config, 2)
    before = _mean_photometric_error(untrained, train, config)
    run = TrainingRun(tmp_path / "run", config, monitor=de.MONITOR, mode=de.MONITOR_MODE)
    run.start(resume=False)
    torch.manual_seed(0)
    model = de.train_depth_egomotion(train, val, config, run, progress=lambda line: None)
    after = _mean_photometric_error(model, train, config)
    assert after < 0.85 * before, (before, after)  # 0.68-0.76 over three seeds; no learning: ~1
    assert len(run.history) == 20 and (tmp_path / "run" / "checkpoint_last.pt").is_file()
    row = run.history[-1]
    for key in ("val_photometric_loss", "val_abs_rel", "val_a1", "val_rpe_translation_rmse",
                "val_rpe_rotation_deg_rmse", "train_reprojection", "train_smoothness"):
        assert np.isfinite(row[key]), key
    # the checkpoint carries both networks and reloads as a DepthNet for the frozen-feature mode
    state = de.load_depth_state(run.last_checkpoint)
    rebuilt = de.build_model(_config(mode="pose_from_depth_features"), 2, state)
    torch.testing.assert_close(rebuilt.depth.state_dict(), model.depth.state_dict())


def test_supervised_mode_fits_depth_and_pose(arrays, tmp_path):
    train, val = arrays
    torch.manual_seed(1)
    config = _config(mode="supervised", pose_supervision="ground_truth", epochs=3)
    run = TrainingRun(tmp_path / "sup", config, monitor=de.MONITOR)
    run.start(resume=False)
    de.train_depth_egomotion(train, val, config, run, progress=lambda line: None)
    first, last = run.history[0], run.history[-1]
    assert last["train_depth"] < first["train_depth"] and np.isfinite(last["val_abs_rel"])
    missing = {k: v for k, v in train.items() if k != "depths"}
    with pytest.raises(de.DepthEgoMotionDataError, match="depths"):
        de.train_depth_egomotion(missing, val, config, TrainingRun(tmp_path / "x", config, monitor=de.MONITOR))


def test_a_collapsed_depth_network_is_reported(arrays):
    """A depth network that answers every image with one map (the flat-depth collapse) shows as
    depth_variation 0 in validation and a warning in the epoch's log line; a working one does not."""
    _, val = arrays
    torch.manual_seed(3)
    config = _config()
    model = de.build_model(config, 2)
    healthy = de.evaluate(model, val, config)
    assert healthy["depth_variation"] > 10 * de.COLLAPSED_DEPTH_VARIATION
    with torch.no_grad():
        for head in model.depth.heads:  # the head ignores its features: one disparity everywhere
            head.weight.zero_()
            head.bias.fill_(-2.0)
    collapsed = de.evaluate(model, val, config)
    assert collapsed["depth_variation"] < de.COLLAPSED_DEPTH_VARIATION
    line = de.describe_validation({f"val_{k}": v for k, v in collapsed.items()})
    assert "WARNING: depth collapsed" in line and "abs-rel" in line
    assert "WARNING" not in de.describe_validation({f"val_{k}": v for k, v in healthy.items()})


def test_supervised_pose_loss_is_l1_in_radians_and_metres():
    from ros2_pose.geometry.warping import se3_from_6dof

    truth = torch.tensor([[[0.0, 0.05, 0.0, 0.02, 0.0, 0.10], [0.01, -0.03, 0.0, -0.02, 0.01, -0.1]]])
    T_true = se3_from_6dof(truth.reshape(-1, 6)).view(1, 2, 4, 4)
    assert de.supervised_pose_loss(truth, T_true).item() == pytest.approx(0.0, abs=1e-6)
    # 0.02 rad too much yaw on one source, 3 cm of translation off on the other; mean over the two
    off = truth.clone()
    off[0, 0, 1] += 0.02
    off[0, 1, 3] -= 0.03
    assert de.supervised_pose_loss(off, T_true, rotation_weight=10.0).item() == pytest.approx((0.2 + 0.03) / 2, rel=1e-4)
    # the gradient does not vanish as the error does (unlike a squared rotation-matrix difference)
    near = truth.clone()
    near[0, 0, 1] += 1e-4
    near.requires_grad_(True)
    de.supervised_pose_loss(near, T_true).backward()
    assert near.grad[0, 0, 1].item() == pytest.approx(0.5, rel=1e-3)


def test_pose_from_depth_features_trains_only_the_head(arrays, tmp_path):
    train, val = arrays
    torch.manual_seed(2)
    depth_state = copy.deepcopy(de.DepthNet(TINY, num_scales=2).state_dict())
    config = _config(mode="pose_from_depth_features", epochs=2)
    run = TrainingRun(tmp_path / "frozen", config, monitor=de.MONITOR)
    run.start(resume=False)
    model = de.train_depth_egomotion(train, val, config, run, depth_state=depth_state, progress=lambda line: None)
    for name, value in model.pose.depth_encoder.state_dict().items():
        torch.testing.assert_close(value, depth_state[f"encoder.{name}"], msg=name)
    torch.testing.assert_close(model.depth.state_dict(), depth_state)
    assert np.isfinite(run.history[-1]["train_pose"]) and np.isfinite(run.history[-1]["val_rpe_rotation_deg_rmse"])
    with pytest.raises(ValueError, match="depth_state"):
        de.build_model(config, 2)
