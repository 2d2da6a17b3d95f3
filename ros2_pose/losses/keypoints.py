"""Keypoint and end-to-end pose losses of BPnP as the seed (003) trains them.

With x* the ground-truth keypoints (B, N, 2), x the predicted keypoints (decoded from heatmaps),
y = PnP(x) the pose solved from them (ros2_pose.geometry.bpnp), z the object's 3D points and K the
intrinsics, pi(z | y, K) their projection:
- l_h: heatmap loss, L1 (the seed's best), MSE or KL, mean over batch and keypoints;
- l_proj = || pi(z | y, K) - x* ||^2   (squared pixels, summed over points, mean over the batch);
- l_reg  = || x - pi(z | y, K) ||^2    (keeps the predicted keypoints consistent with their pose);
- l_m = l_h + beta * l_proj  (mixture; beta = 1e-5 after the seed's search from 1e-3 to 1e-9);
- l_p = l_reg + l_proj       (pose loss: no heatmap supervision at all).
Every function returns a dict with "loss" (the total to back-propagate) and its named parts.
"""
from __future__ import annotations

import torch

from ros2_pose.geometry.bpnp import pose_to_rotation_translation, project_points_torch

HEATMAP_LOSSES = ("l1", "mse", "kl")
DEFAULT_BETA = 1e-5


def heatmap_loss(predicted: torch.Tensor, target: torch.Tensor, kind: str = "l1",
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """l_h between (B, K, H, W) heatmaps; `weights` (B, K) masks unlabelled keypoints.

    "l1"/"mse": mean per-pixel error against the Gaussian targets. "kl": `predicted` are logits,
    softmax over each map; KL(target || softmax(predicted)) with the target normalised to sum 1.
    """
    if kind not in HEATMAP_LOSSES:
        raise ValueError(f"heatmap loss must be one of {HEATMAP_LOSSES}, got {kind!r}")
    if predicted.shape != target.shape or predicted.ndim != 4:
        raise ValueError(f"heatmaps must both be (B, K, H, W); got {tuple(predicted.shape)} and {tuple(target.shape)}")
    if kind == "l1":
        per_map = (predicted - target).abs().mean(dim=(-2, -1))
    elif kind == "mse":
        per_map = (predicted - target).pow(2).mean(dim=(-2, -1))
    else:
        log_q = torch.log_softmax(predicted.flatten(-2), dim=-1)
        p = target.flatten(-2).clamp_min(0)
        p = p / p.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        per_map = (torch.xlogy(p, p) - p * log_q).sum(dim=-1)
    if weights is None:
        return per_map.mean()
    if weights.shape != per_map.shape:
        raise ValueError(f"weights must have shape {tuple(per_map.shape)}, got {tuple(weights.shape)}")
    return (per_map * weights).sum() / weights.sum().clamp_min(1.0)


def _projected(pose: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    rotation, translation = pose_to_rotation_translation(pose)
    batch = len(pose)
    return project_points_torch(points_3d.expand(batch, *points_3d.shape[-2:]), rotation, translation,
                                K.expand(batch, 3, 3))


def reprojection_loss(pose: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor,
                      keypoints_2d: torch.Tensor) -> torch.Tensor:
    """|| pi(z | y, K) - keypoints ||^2 summed over points and coordinates, mean over the batch.
    As l_proj, keypoints are the ground truth x*; as l_reg, they are the predicted x."""
    return (_projected(pose, points_3d, K) - keypoints_2d).pow(2).sum(dim=(-2, -1)).mean()


def mixture_loss(predicted_heatmaps, target_heatmaps, pose, points_3d, K, ground_truth_keypoints,
                 beta: float = DEFAULT_BETA, kind: str = "l1", weights=None) -> dict[str, torch.Tensor]:
    """l_m = l_h + beta * l_proj."""
    l_h = heatmap_loss(predicted_heatmaps, target_heatmaps, kind, weights)
    l_proj = reprojection_loss(pose, points_3d, K, ground_truth_keypoints)
    return {"loss": l_h + beta * l_proj, "heatmap": l_h, "projection": l_proj}


def pose_loss(predicted_keypoints, pose, points_3d, K, ground_truth_keypoints) -> dict[str, torch.Tensor]:
    """l_p = l_reg + l_proj, with l_reg = ||x - pi(z|y,K)||^2 on the predicted keypoints x."""
    l_reg = reprojection_loss(pose, points_3d, K, predicted_keypoints)
    l_proj = reprojection_loss(pose, points_3d, K, ground_truth_keypoints)
    return {"loss": l_reg + l_proj, "regularisation": l_reg, "projection": l_proj}
