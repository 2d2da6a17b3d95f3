import numpy as np
import pytest
import torch

from ros2_pose.codecs.heatmaps import encode_gaussian_heatmaps
from ros2_pose.geometry.bpnp import bpnp, pose_to_rotation_translation, project_points_torch
from ros2_pose.losses.keypoints import DEFAULT_BETA, heatmap_loss, mixture_loss, pose_loss, reprojection_loss

POINTS = torch.tensor([[0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0], [0, -0.1, 0.02], [0, 0, 0.05], [0.05, 0.05, -0.03]],
                      dtype=torch.float64)
K = torch.tensor([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]], dtype=torch.float64)
POSE = torch.tensor([[0.2, -0.1, 0.3, 0.01, -0.02, 1.0]], dtype=torch.float64)


def ground_truth_keypoints():
    return project_points_torch(POINTS[None], *pose_to_rotation_translation(POSE), K[None])


def test_heatmap_losses_hand_computed():
    target = torch.zeros(1, 1, 2, 2)
    predicted = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])
    assert heatmap_loss(predicted, target, "l1").item() == pytest.approx(0.5)
    assert heatmap_loss(predicted, target, "mse").item() == pytest.approx(0.5)
    # KL of a one-hot target against uniform logits is log(4).
    one_hot = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert heatmap_loss(torch.zeros(1, 1, 2, 2), one_hot, "kl").item() == pytest.approx(np.log(4))
    weights = torch.tensor([[1.0, 0.0]])
    two = torch.cat([predicted, predicted * 100], dim=1)
    assert heatmap_loss(two, torch.zeros_like(two), "l1", weights).item() == pytest.approx(0.5)


def test_kl_loss_is_smallest_at_the_target():
    target = torch.from_numpy(encode_gaussian_heatmaps([[4.0, 5.0]], 10, 10, sigma=1.0)[0])
    good = torch.log(target.clamp_min(1e-9))
    shifted = torch.roll(good, 2, dims=-1)
    assert heatmap_loss(good, target, "kl") < 1e-6 < heatmap_loss(shifted, target, "kl")


def test_reprojection_terms_are_zero_at_the_truth_and_hand_computed_off_it():
    truth = ground_truth_keypoints()
    assert reprojection_loss(POSE, POINTS, K, truth).item() == pytest.approx(0.0, abs=1e-20)
    shifted = truth + torch.tensor([3.0, 4.0], dtype=torch.float64)  # 5 px at each of 6 points
    assert reprojection_loss(POSE, POINTS, K, shifted).item() == pytest.approx(6 * 25.0)


def test_mixture_and_pose_losses_train_the_keypoints_through_bpnp():
    truth = ground_truth_keypoints()
    predicted = (truth + torch.randn(truth.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).requires_grad_(True)
    pose = bpnp(predicted, POINTS, K)
    losses = pose_loss(predicted, pose, POINTS, K, truth)
    assert set(losses) == {"loss", "regularisation", "projection"}
    losses["loss"].backward()
    # One gradient step on the keypoints lowers l_proj: the loss is wired to the pose correctly.
    with torch.no_grad():
        stepped = predicted - 0.05 * predicted.grad
    assert reprojection_loss(bpnp(stepped, POINTS, K), POINTS, K, truth) < losses["projection"]

    heatmaps = torch.rand(1, 6, 8, 8, requires_grad=True)
    mixed = mixture_loss(heatmaps, torch.zeros(1, 6, 8, 8), pose.detach(), POINTS, K, truth)
    assert mixed["loss"].item() == pytest.approx(mixed["heatmap"].item() + DEFAULT_BETA * mixed["projection"].item())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="heatmap loss"):
        heatmap_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "huber")
    with pytest.raises(ValueError, match="B, K, H, W"):
        heatmap_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
