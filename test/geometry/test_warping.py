"""Differentiable warping: the SE(3) generator agrees with the numpy geometry, backprojection and
projection agree with CameraModel, and ground-truth depth + pose warp a rendered frame into the next."""
import numpy as np
import pytest
import torch

from ros2_pose.geometry import warping
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import (RigidTransform, axis_angle_to_matrix, rigid_from_axis_angle_translation,
                                           rotation_error_deg)

W, H = 128, 96


def test_se3_from_6dof_matches_numpy_axis_angle_and_rigid_transform():
    rng = np.random.default_rng(0)
    params = np.concatenate([rng.normal(0, 0.8, (6, 3)), rng.normal(0, 2, (6, 3))], axis=1)
    params[0, :3] = 0.0              # zero rotation
    params[1, :3] = [1e-7, 0, 0]     # near-zero angle (kornia's first-order branch)
    params[2, :3] = [0, np.pi - 1e-3, 0]
    T = warping.se3_from_6dof(torch.from_numpy(params)).numpy()
    for p, matrix in zip(params, T):
        expected = rigid_from_axis_angle_translation(p[:3], p[3:]).as_matrix()
        np.testing.assert_allclose(matrix, expected, atol=1e-9)
        np.testing.assert_allclose(matrix[:3, :3], axis_angle_to_matrix(p[:3]), atol=1e-9)
    inverse = warping.invert_se3(torch.from_numpy(T)).numpy()
    for matrix, inv in zip(T, inverse):
        assert RigidTransform.from_matrix(inv).allclose(RigidTransform.from_matrix(matrix).inverse(), 1e-9, 1e-9)


def test_se3_gradient_is_finite_at_zero_motion():
    params = torch.zeros(3, 6, requires_grad=True)
    weights = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(1))
    (warping.se3_from_6dof(params) * weights).sum().backward()
    assert torch.all(torch.isfinite(params.grad)) and params.grad.abs().sum() > 0


def test_backproject_and_project_agree_with_camera_model():
    camera = CameraModel(np.array([[80.0, 0, 31.5], [0, 82.0, 23.5], [0, 0, 1]]), None, 64, 48)
    rng = np.random.default_rng(2)
    depth = rng.uniform(0.5, 4.0, (48, 64)).astype(np.float64)
    K = torch.tensor(camera.K)[None]
    points = warping.backproject_depth(torch.from_numpy(depth)[None, None], torch.linalg.inv(K))[0].numpy()
    np.testing.assert_allclose(points, camera.depth_to_points(depth), rtol=1e-5, atol=1e-5)
    T = rigid_from_axis_angle_translation([0.05, -0.1, 0.02], [0.1, -0.05, 0.2])
    pixels, z = warping.project_points(torch.from_numpy(points)[None], K, torch.from_numpy(T.as_matrix())[None])
    moved = T.apply(points.reshape(-1, 3))
    np.testing.assert_allclose(pixels[0].numpy().reshape(-1, 2), camera.project(moved), atol=1e-6)
    np.testing.assert_allclose(z[0].numpy().ravel(), moved[:, 2], atol=1e-9)


def test_identity_pose_reproduces_the_source_and_bad_inputs_are_refused():
    image = torch.rand(2, 3, 12, 16, generator=torch.Generator().manual_seed(3))
    depth = torch.full((2, 1, 12, 16), 2.0)
    depth[0, 0, 3, 4] = 0.0
    depth[1, 0, 5, 6] = float("nan")
    K = torch.tensor([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]]).expand(2, 3, 3)
    warped, valid = warping.warp_source_to_target(image, depth, torch.eye(4).expand(2, 4, 4), K)
    assert torch.all(torch.isfinite(warped))
    assert not valid[0, 0, 3, 4] and not valid[1, 0, 5, 6] and valid.sum() == 2 * 12 * 16 - 2
    torch.testing.assert_close(warped * valid, image * valid, atol=1e-5, rtol=0)
    # a camera moved 5 m backwards-and-through: points land behind it and are invalid
    behind = torch.eye(4).expand(2, 4, 4).clone()
    behind[:, 2, 3] = -5.0
    assert not warping.warp_source_to_target(image, depth, behind, K)[1].any()
    with pytest.raises(warping.WarpInputError, match="one channel"):
        warping.backproject_depth(depth.expand(2, 2, 12, 16), torch.linalg.inv(K))
    with pytest.raises(warping.WarpInputError, match="batch"):
        warping.warp_source_to_target(image, depth, torch.eye(4).expand(2, 4, 4), K[:1])
    with pytest.raises(warping.WarpInputError, match=r"\(N, 6\)"):
        warping.se3_from_6dof(torch.zeros(2, 7))


def _frames(indices, seed=5):
    from ros2_pose.sim import motion
    from ros2_pose.sim.tasks import frame_rng

    task = motion.MotionTask(W, H, config=motion.MotionConfig(sequence_length=16, texture_size=128))
    return [task.generate(frame_rng(seed, i), i) for i in indices]


def _to_tensor(frame):
    return torch.from_numpy(frame.rgb).permute(2, 0, 1).float()[None] / 255.0


@pytest.fixture(scope="module")
def rendered_pairs():
    return [_frames((i, i + 3)) for i in (0, 8)]  # frames 0.1 s apart in two rooms/places


def test_ground_truth_depth_and_pose_warp_the_source_into_the_target(rendered_pairs):
    for target, source in rendered_pairs:
        T_target_to_source = source.T_world_camera.inverse() @ target.T_world_camera
        moved = rotation_error_deg(np.eye(3), T_target_to_source.rotation), np.linalg.norm(T_target_to_source.translation)
        assert moved[0] > 0.3 or moved[1] > 0.02  # the frames really differ
        K = torch.tensor(target.camera.K, dtype=torch.float32)[None]
        depth = torch.from_numpy(target.depth)[None, None]

        def error(T):
            warped, valid = warping.warp_source_to_target(_to_tensor(source), depth,
                                                          torch.from_numpy(T.as_matrix()).float()[None], K)
            diff = (warped - _to_tensor(target)).abs().mean(1, keepdim=True)
            return float(diff[valid].mean()), float(valid.float().mean())

        good, coverage = error(T_target_to_source)
        still, _ = error(RigidTransform.identity())
        wrong_rotation = rigid_from_axis_angle_translation([0, 0.04, 0], [0, 0, 0]) @ T_target_to_source
        wrong, _ = error(wrong_rotation)
        assert coverage > 0.6
        assert good < 0.015, good  # residual: bilinear resampling and disocclusions (no depth test here)
        assert wrong > 3 * good and still > 3 * good, (good, wrong, still)
