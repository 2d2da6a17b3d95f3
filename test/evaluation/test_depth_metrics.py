"""Depth and ego-motion metrics on hand-computed cases."""
import numpy as np
import pytest

from ros2_pose.evaluation import depth_metrics as dm
from ros2_pose.geometry.transforms import rigid_from_axis_angle_translation


def test_depth_errors_match_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0, 10.0])
    pred = np.array([1.0, 2.5, 3.0, 10.0])
    e = dm.depth_errors(gt, pred)
    assert e["abs_rel"] == pytest.approx((0 + 0.5 / 2 + 1 / 4 + 0) / 4)
    assert e["sq_rel"] == pytest.approx((0 + 0.25 / 2 + 1 / 4 + 0) / 4)
    assert e["rmse"] == pytest.approx(np.sqrt((0.25 + 1) / 4))
    assert e["rmse_log"] == pytest.approx(np.sqrt((np.log(2 / 2.5) ** 2 + np.log(4 / 3) ** 2) / 4))
    # ratios 1, 1.25, 1.333, 1: 1.25 is not < 1.25
    assert e["a1"] == pytest.approx(0.5) and e["a2"] == 1.0 and e["a3"] == 1.0
    with pytest.raises(dm.MetricInputError, match="> 0"):
        dm.depth_errors(gt, np.array([1.0, 0.0, 1.0, 1.0]))


def test_median_scaling_makes_a_scaled_prediction_perfect_and_caps_apply():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 8.0, (3, 12, 16))
    gt[0, :2] = 0.0           # holes
    gt[1, 3, :] = np.nan
    gt[2, 5, :4] = 100.0      # beyond the cap: not scored
    pred = gt * np.array([0.1, 3.0, 0.5])[:, None, None]
    pred = np.nan_to_num(pred, nan=1.0)
    pred[2, 5, :4] = 1.0      # wrong where gt is beyond the cap: must not count
    metrics = dm.evaluate_depth(pred, gt, min_depth=0.1, max_depth=10.0)
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert metrics[name] == pytest.approx(0.0, abs=1e-9), name
    assert metrics["a1"] == 1.0 and metrics["images"] == 3
    assert metrics["scale_median"] == pytest.approx(2.0) and metrics["scale_std"] > 0
    unscaled = dm.evaluate_depth(pred, gt, min_depth=0.1, max_depth=10.0, median_scaling=False)
    assert unscaled["abs_rel"] > 0.5 and unscaled["scale_median"] == 1.0
    # a prediction at half resolution is resized to the ground truth
    half = dm.evaluate_depth(np.full((1, 6, 8), 2.0), np.full((1, 12, 16), 3.0), median_scaling=False)
    assert half["abs_rel"] == pytest.approx(1 / 3)
    with pytest.raises(dm.MetricInputError, match="no ground-truth pixel"):
        dm.evaluate_depth(np.ones((1, 4, 4)), np.zeros((1, 4, 4)))


def _trajectory(n=8, seed=1):
    rng = np.random.default_rng(seed)
    poses = [np.eye(4)]
    for _ in range(n - 1):
        step = rigid_from_axis_angle_translation(rng.normal(0, 0.05, 3), rng.normal(0, 0.3, 3)).as_matrix()
        poses.append(poses[-1] @ step)
    return np.stack(poses)


def _scaled(poses, scale):
    out = poses.copy()
    out[:, :3, 3] *= scale
    return out


def test_ate_of_a_scaled_trajectory_is_zero_after_alignment():
    gt = _trajectory()
    world = rigid_from_axis_angle_translation([0.3, -0.2, 1.0], [5, 1, -2]).as_matrix()
    pred = world @ _scaled(gt, 0.37)  # other scale, other world frame
    result = dm.ate_over_snippets(gt, pred, 5)
    assert result["ate_mean"] == pytest.approx(0.0, abs=1e-9) and result["snippets"] == 4
    # hand case: gt moves 1 m along x per frame, prediction stands still -> RMSE of (0,1,2,3,4) m
    gt_line = np.stack([np.eye(4)] * 5)
    gt_line[:, 0, 3] = np.arange(5)
    assert dm.snippet_ate(gt_line, np.stack([np.eye(4)] * 5)) == pytest.approx(np.sqrt(np.mean(np.arange(5) ** 2)))
    # a metric prediction of half the motion: aligned it is perfect, unscaled it misses half of every step
    half = _scaled(gt_line, 0.5)
    assert dm.snippet_ate(gt_line, half) == pytest.approx(0.0, abs=1e-9)
    assert dm.snippet_ate(gt_line, half, scaled=False) == pytest.approx(0.5 * np.sqrt(np.mean(np.arange(5) ** 2)))
    # least squares picks the best scale: half the motion in the prediction, then aligned
    noisy = gt_line.copy()
    noisy[:, 1, 3] = [0, 0.1, -0.1, 0.1, -0.1]
    assert dm.least_squares_scale(gt_line[:, :3, 3], noisy[:, :3, 3] * 0.5) == pytest.approx(2 * 30 / 30.04)
    with pytest.raises(dm.MetricInputError, match="non-finite"):
        dm.snippet_ate(gt_line, np.full((5, 4, 4), np.nan))


def test_rpe_and_chaining_of_relative_motions():
    gt = _trajectory(6)
    motions = np.linalg.inv(gt[:-1]) @ gt[1:]
    np.testing.assert_allclose(dm.chain_relative_motions(motions), gt, atol=1e-12)
    scaled = dm.relative_pose_errors(gt, _scaled(gt, 4.0))
    assert scaled["rpe_translation_rmse"] == pytest.approx(0, abs=1e-9) and scaled["scale"] == pytest.approx(0.25)
    assert dm.relative_pose_errors(gt, _scaled(gt, 4.0), scale="none")["rpe_translation_rmse"] > 0.1
    # a 2-degree rotation error on every motion, no translation error
    wrong = rigid_from_axis_angle_translation([0, np.radians(2), 0], [0, 0, 0]).as_matrix()
    result = dm.relative_motion_errors(motions, motions @ wrong, scale="none")
    assert result["rpe_rotation_deg_rmse"] == pytest.approx(2.0) and result["rpe_translation_rmse"] < 1e-12
    shifted = motions.copy()
    shifted[:, 2, 3] += 0.1
    assert dm.relative_motion_errors(motions, shifted, scale="none")["rpe_translation_mean"] == pytest.approx(0.1)
    with pytest.raises(dm.MetricInputError, match="scale"):
        dm.relative_motion_errors(motions, motions, scale="median")
