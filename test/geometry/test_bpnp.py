import numpy as np
import pytest
import torch

from ros2_pose.geometry.bpnp import (BPnPError, axis_angle_to_matrix_torch, bpnp, epnp, pose_to_rotation_translation,
                                     project_points_torch, solve_pose_batch)
from ros2_pose.geometry.transforms import axis_angle_to_matrix
from ros2_pose.sim.drone import MODELS

POINTS = torch.tensor(MODELS["drone_large"].keypoints()[:6])  # few points keep gradcheck fast
K = torch.tensor([[300.0, 0, 80], [0, 310.0, 60], [0, 0, 1]], dtype=torch.float64)
POSES = torch.tensor([[0.3, -0.4, 0.2, 0.05, -0.02, 1.2], [0.1, 0.2, -0.3, -0.05, 0.03, 0.9]], dtype=torch.float64)


def keypoints_for(poses, noise=0.0, seed=0):
    rotation, translation = pose_to_rotation_translation(poses)
    pixels = project_points_torch(POINTS.expand(len(poses), -1, -1), rotation, translation, K)
    return pixels + noise * torch.randn(pixels.shape, dtype=pixels.dtype, generator=torch.Generator().manual_seed(seed))


def gradcheck(function, *tensors):
    inputs = tuple(t.detach().clone().requires_grad_(True) for t in tensors)
    return torch.autograd.gradcheck(function, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_torch_rodrigues_matches_opencv_and_is_smooth_at_zero():
    vectors = torch.tensor([[0.3, -0.5, 0.2], [1e-6, 0.0, -2e-6], [0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = np.stack([axis_angle_to_matrix(v) for v in vectors.numpy()])
    np.testing.assert_allclose(axis_angle_to_matrix_torch(vectors).numpy(), expected, atol=1e-12)
    at_zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda v: axis_angle_to_matrix_torch(v), (at_zero,))


def test_forward_is_the_least_squares_pose():
    np.testing.assert_allclose(bpnp(keypoints_for(POSES), POINTS, K).numpy(), POSES.numpy(), atol=1e-9)
    noisy = keypoints_for(POSES, noise=0.5)
    pose = solve_pose_batch(noisy, POINTS, K).requires_grad_(True)
    rotation, translation = pose_to_rotation_translation(pose)
    objective = (project_points_torch(POINTS.expand(2, -1, -1), rotation, translation, K) - noisy).pow(2).sum()
    (gradient,) = torch.autograd.grad(objective, pose)
    assert gradient.abs().max() < 1e-8  # a stationary point: what the implicit function theorem needs


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_exact_bpnp_gradients_match_finite_differences(noise):
    assert gradcheck(lambda x, z, k: bpnp(x, z, k, "exact"), keypoints_for(POSES[:1], noise), POINTS, K)


def test_faster_bpnp_is_exact_without_residuals_and_approximate_with_them():
    assert gradcheck(lambda x, z, k: bpnp(x, z, k, "faster"), keypoints_for(POSES[:1]), POINTS, K)
    noisy = keypoints_for(POSES[:1], noise=1.0).requires_grad_(True)
    gradients = [torch.autograd.grad(bpnp(noisy, POINTS, K, variant).sum(), noisy)[0] for variant in ("exact", "faster")]
    relative = (gradients[0] - gradients[1]).norm() / gradients[0].norm()
    assert 1e-6 < relative < 0.2  # the dropped terms are small but not zero


def test_float32_inputs_and_shared_or_batched_points_and_K():
    x = keypoints_for(POSES).float().requires_grad_(True)
    pose = bpnp(x, POINTS.float().expand(2, -1, -1), K.float().expand(2, -1, -1))
    assert pose.dtype == torch.float32
    pose.sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()


def test_epnp_recovers_the_pose_and_gradients_match_finite_differences():
    rotation, translation = epnp(keypoints_for(POSES), POINTS, K, refine_steps=0)
    expected_rotation, expected_translation = pose_to_rotation_translation(POSES)
    assert torch.allclose(rotation, expected_rotation, atol=1e-8) and torch.allclose(translation, expected_translation, atol=1e-8)

    def flat(x, z, k):
        r, t = epnp(x, z, k, refine_steps=1)
        return torch.cat([r.reshape(len(r), -1), t], dim=-1)

    assert gradcheck(flat, keypoints_for(POSES[:1], noise=0.3), POINTS, K)


def test_refined_epnp_and_bpnp_agree_on_pose_and_gradient():
    # Unrolled Gauss-Newton converges to BPnP's minimiser, so its autograd gradient must equal
    # BPnP's implicit-function gradient: two independent derivations checking each other.
    x = keypoints_for(POSES[:1], noise=0.3).requires_grad_(True)
    translation_bpnp = bpnp(x, POINTS, K)[:, 3:]
    (grad_bpnp,) = torch.autograd.grad(translation_bpnp.sum(), x)
    _, translation_epnp = epnp(x, POINTS, K, refine_steps=6)
    (grad_epnp,) = torch.autograd.grad(translation_epnp.sum(), x)
    assert torch.allclose(translation_bpnp, translation_epnp, atol=1e-9)
    assert torch.allclose(grad_bpnp, grad_epnp, atol=1e-8)


def test_failures_raise_clear_errors_instead_of_nan():
    collinear = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0]], dtype=torch.float64)
    with pytest.raises(BPnPError, match="batch item 0: degenerate"):
        bpnp(torch.rand(1, 4, 2, dtype=torch.float64) * 100, collinear, K)
    # The batch checks name the item at fault, whatever its place in the batch.
    bad_pixels = keypoints_for(POSES)
    bad_pixels[1, 2, 0] = float("nan")
    with pytest.raises(BPnPError, match="batch item 1: non-finite"):
        bpnp(bad_pixels, POINTS, K)
    on_a_line = keypoints_for(torch.cat([POSES, POSES]))
    on_a_line[2, :, 1] = 240.0
    with pytest.raises(BPnPError, match="batch item 2: degenerate.*image points"):
        bpnp(on_a_line, POINTS, K)
    with pytest.raises(ValueError, match="points_3d must have shape"):
        bpnp(keypoints_for(POSES), POINTS[:5], K)
    with pytest.raises(ValueError, match="variant"):
        bpnp(keypoints_for(POSES), POINTS, K, variant="fastest")
    with pytest.raises(ValueError, match="planar"):
        epnp(torch.rand(1, 4, 2, dtype=torch.float64), torch.cat([torch.rand(4, 2, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64)], 1), K)


def test_analytic_projection_jacobian_matches_autograd():
    from ros2_pose.geometry.bpnp import _projection_jacobian

    pose = torch.tensor([[0.3, -0.4, 0.2, 0.05, -0.02, 1.2], [0.0, 0.0, 0.0, 0.1, 0.0, 2.0]], dtype=torch.float64)
    for b in range(2):
        expected = torch.autograd.functional.jacobian(
            lambda p: project_points_torch(POINTS[None], *pose_to_rotation_translation(p[None]), K[None]).reshape(-1), pose[b])
        assert torch.allclose(_projection_jacobian(pose, POINTS.expand(2, -1, -1), K.expand(2, 3, 3))[b], expected, atol=1e-9)


def test_initial_pose_starts_the_iterative_solver():
    noisy = keypoints_for(POSES, noise=0.3)
    from_guess = bpnp(noisy, POINTS, K, initial_pose=POSES + 0.01)
    assert torch.allclose(from_guess, bpnp(noisy, POINTS, K), atol=1e-9)
