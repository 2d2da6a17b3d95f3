import numpy as np
import pytest

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.pnp import PnPInputError, solve_pnp
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix, rotation_error_deg
from ros2_pose.sim.drone import MODELS

CAMERA = CameraModel([[600.0, 0, 320.0], [0, 610.0, 240.0], [0, 0, 1]], width=640, height=480)
DRONE_POINTS = MODELS["drone_large"].keypoints()  # (10, 3) metres
TRUE_POSE = RigidTransform(axis_angle_to_matrix([0.3, -0.5, 0.2]), [0.1, -0.05, 1.5])


def project(points, pose=TRUE_POSE, camera=CAMERA):
    return camera.project(pose.apply(points))


def assert_pose_close(result, pose, rotation_deg, translation_m):
    assert result.success, result.reason
    assert rotation_error_deg(result.pose.rotation, pose.rotation) < rotation_deg
    assert np.linalg.norm(result.pose.translation - pose.translation) < translation_m


@pytest.mark.parametrize("method", ["sqpnp", "epnp", "iterative"])
def test_exact_projections_give_the_pose(method):
    result = solve_pnp(DRONE_POINTS, project(DRONE_POINTS), CAMERA, method=method)
    assert_pose_close(result, TRUE_POSE, 1e-6, 1e-6)
    assert result.reprojection_rmse_px < 1e-6 and result.inliers.tolist() == list(range(10))


def test_distorted_camera_and_plain_K_are_both_accepted():
    distorted = CameraModel(CAMERA.K, D=[-0.2, 0.05, 0.001, -0.001, 0.0], width=640, height=480)
    assert_pose_close(solve_pnp(DRONE_POINTS, project(DRONE_POINTS, camera=distorted), distorted), TRUE_POSE, 1e-6, 1e-6)
    assert_pose_close(solve_pnp(DRONE_POINTS, project(DRONE_POINTS), CAMERA.K), TRUE_POSE, 1e-6, 1e-6)


def test_noisy_keypoints_give_a_close_pose():
    rng = np.random.default_rng(0)
    noisy = project(DRONE_POINTS) + rng.normal(0, 0.5, (10, 2))
    result = solve_pnp(DRONE_POINTS, noisy, CAMERA)
    assert_pose_close(result, TRUE_POSE, 2.0, 0.03)
    assert 0.1 < result.reprojection_rmse_px < 1.0


def test_ransac_rejects_planted_outliers():
    rng = np.random.default_rng(1)
    points = np.concatenate([DRONE_POINTS, rng.uniform(-0.15, 0.15, (10, 3))])  # 20 correspondences
    pixels = project(points) + rng.normal(0, 0.2, (20, 2))
    outliers = np.array([2, 7, 13])
    pixels[outliers] += [[60, -40], [-80, 25], [35, 90]]
    plain = solve_pnp(points, pixels, CAMERA)
    robust = solve_pnp(points, pixels, CAMERA, ransac=True, ransac_reprojection_px=2.0)
    assert set(robust.inliers.tolist()) == set(range(20)) - set(outliers.tolist())
    assert_pose_close(robust, TRUE_POSE, 0.5, 0.01)
    assert rotation_error_deg(plain.pose.rotation, TRUE_POSE.rotation) > 1.0  # the outliers do hurt without RANSAC


def test_low_confidence_keypoints_are_dropped_and_too_few_fail_with_a_reason():
    pixels = project(DRONE_POINTS)
    pixels[0] += 50  # wrong, but flagged by low confidence
    confidence = np.array([0.1] + [0.9] * 9)
    result = solve_pnp(DRONE_POINTS, pixels, CAMERA, confidence=confidence, confidence_threshold=0.5)
    assert_pose_close(result, TRUE_POSE, 1e-6, 1e-6)
    assert 0 not in result.inliers
    confidence[:7] = 0.1
    failed = solve_pnp(DRONE_POINTS, pixels, CAMERA, confidence=confidence, confidence_threshold=0.5)
    assert not failed.success and failed.pose is None
    assert "3 keypoints with confidence >= 0.5" in failed.reason and "at least 4" in failed.reason
    with pytest.raises(ValueError, match="no pose"):
        failed.rotation_vector


def test_degenerate_configurations_fail_without_nan():
    line = np.stack([np.linspace(0, 0.3, 6), np.zeros(6), np.zeros(6)], axis=1)
    result = solve_pnp(line, project(line), CAMERA)
    assert not result.success and "collinear" in result.reason
    # Non-finite image points are dropped (not fatal) and counted against the minimum.
    pixels = project(DRONE_POINTS)
    pixels[:7] = np.nan
    result = solve_pnp(DRONE_POINTS, pixels, CAMERA)
    assert not result.success and "3 keypoints" in result.reason


def test_a_pose_behind_the_camera_is_refused():
    # Pixels of the drone placed *behind* the camera (pinhole maths with z < 0), and the iterative
    # solver started there: LM fits them exactly, and only the depth check can catch it.
    behind = RigidTransform(axis_angle_to_matrix([0.2, 0.1, 0.0]), [0.05, 0.0, -1.5])
    points = behind.apply(DRONE_POINTS)
    pixels = points[:, :2] / points[:, 2:] * [CAMERA.fx, CAMERA.fy] + [CAMERA.cx, CAMERA.cy]
    result = solve_pnp(DRONE_POINTS, pixels, CAMERA, method="iterative", initial_pose=behind)
    assert not result.success and "behind the camera" in result.reason and result.pose is None


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(PnPInputError, match=r"\(N, 3\)"):
        solve_pnp(np.zeros((5, 2)), np.zeros((5, 2)), CAMERA)
    with pytest.raises(PnPInputError, match="match object_points"):
        solve_pnp(DRONE_POINTS, np.zeros((4, 2)), CAMERA)
    with pytest.raises(PnPInputError, match="unknown PnP method"):
        solve_pnp(DRONE_POINTS, project(DRONE_POINTS), CAMERA, method="p4p")
    with pytest.raises(PnPInputError, match="3x3 K"):
        solve_pnp(DRONE_POINTS, project(DRONE_POINTS), np.eye(2))
