"""evaluation.depth's bookkeeping with hand-made trajectories: a prediction off by one global scale
scores zero ATE/RPE after alignment, a rotated one shows its rotation, camera jumps split segments."""
import numpy as np
import pytest

from ros2_pose.evaluation.depth import DepthEgoMotionEvaluation, Segment, camera_jump
from ros2_pose.pipelines.depth_egomotion import transform_from_6dof

STEP = transform_from_6dof([0.0, 0.02, 0.0, 0.03, 0.0, 0.1])


def _trajectory(n, step=STEP):
    poses = [np.eye(4)]
    for _ in range(n - 1):
        poses.append(poses[-1] @ step)
    return poses


def _evaluation(gt, pred):
    evaluation = DepthEgoMotionEvaluation(depth_scores=[{"abs_rel": 0.1, "sq_rel": 0.2, "rmse": 0.3, "rmse_log": 0.4,
                                                          "a1": 0.5, "a2": 0.6, "a3": 0.7, "scale_median": 2.0}],
                                          segments=[Segment(gt=gt, pred=pred)], frames=len(gt))
    return evaluation.metrics()


def test_scale_only_errors_vanish_after_alignment():
    gt = _trajectory(8)
    pred = [p.copy() for p in gt]
    for p in pred:
        p[:3, 3] *= 0.5
    metrics = _evaluation(gt, pred)
    assert metrics["ate_snippets"] == 4 and metrics["rpe_pairs"] == 7
    assert metrics["ate_mean"] == pytest.approx(0, abs=1e-9)
    assert metrics["rpe_translation_rmse"] == pytest.approx(0, abs=1e-9)
    assert metrics["rpe_scale"] == pytest.approx(2.0)
    assert metrics["rpe_translation_rmse_unscaled"] == pytest.approx(0.5 * np.linalg.norm(STEP[:3, 3]))
    # unscaled, the half-size trajectory is scored as published (a metric network's numbers)
    first = np.array(gt[:5])[:, :3, 3]
    assert metrics["ate_mean_unscaled"] == pytest.approx(0.5 * np.sqrt(np.mean(np.sum(first ** 2, axis=1))), rel=1e-6)
    assert metrics["abs_rel"] == 0.1 and metrics["depth_scale_median"] == 2.0


def test_a_wrong_rotation_shows_in_rpe_and_ate():
    gt = _trajectory(6)
    pred = _trajectory(6, transform_from_6dof([0.0, 0.05, 0.0, 0.03, 0.0, 0.1]))
    metrics = _evaluation(gt, pred)
    assert metrics["rpe_rotation_deg_rmse"] == pytest.approx(np.degrees(0.03), rel=1e-6)
    assert metrics["ate_mean"] > 1e-3


def test_camera_jumps_and_empty_evaluations():
    assert not camera_jump(np.eye(4), STEP, 0.5, 30.0)
    assert camera_jump(np.eye(4), transform_from_6dof([0, 0, 0, 2.0, 0, 0]), 0.5, 30.0)
    assert camera_jump(np.eye(4), transform_from_6dof([0, 1.0, 0, 0, 0, 0]), 0.5, 30.0)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        DepthEgoMotionEvaluation().metrics()


def test_trivial_baselines_are_scored_beside_the_networks():
    gt = _trajectory(7)
    evaluation = DepthEgoMotionEvaluation(
        depth_scores=[{"abs_rel": 0.1, "sq_rel": 0.2, "rmse": 0.3, "rmse_log": 0.4, "a1": 0.5, "a2": 0.6, "a3": 0.7,
                       "scale_median": 2.0}],
        baseline_depth_scores=[{"abs_rel": 0.3, "rmse_log": 0.5, "a1": 0.4}], segments=[Segment(gt=gt, pred=gt)],
        frames=len(gt))
    metrics = evaluation.metrics()
    assert metrics["baseline_constant_depth_abs_rel"] == 0.3 and metrics["baseline_constant_depth_a1"] == 0.4
    assert metrics["ate_mean"] == pytest.approx(0, abs=1e-9)
    # standing still: the error is the ground-truth motion itself
    step = np.linalg.norm(STEP[:3, 3])
    assert metrics["baseline_zero_motion_rpe_translation_rmse"] == pytest.approx(step)
    assert metrics["baseline_zero_motion_rpe_rotation_deg_rmse"] == pytest.approx(np.degrees(0.02), rel=1e-6)
    first = np.array(gt[:5])[:, :3, 3]
    expected_ate = np.sqrt(np.mean(np.sum(first ** 2, axis=1)))  # positions in the first camera of a snippet
    assert metrics["baseline_zero_motion_ate_mean"] == pytest.approx(expected_ate, rel=1e-6)


def test_the_straight_ahead_baseline_is_perfect_on_a_straight_sequence_only():
    forward = transform_from_6dof([0.0, 0.0, 0.0, 0.0, 0.0, 0.07])
    straight = _evaluation(_trajectory(7, forward), _trajectory(7, forward))
    assert straight["baseline_straight_ate_mean"] == pytest.approx(0, abs=1e-9)
    assert straight["baseline_straight_rpe_translation_rmse"] == pytest.approx(0, abs=1e-9)
    turning = _evaluation(_trajectory(7), _trajectory(7))   # STEP turns and moves sideways
    assert turning["baseline_straight_ate_mean"] > 1e-3
    assert turning["baseline_straight_rpe_translation_rmse"] == pytest.approx(0.03, rel=1e-6)  # its sideways part
