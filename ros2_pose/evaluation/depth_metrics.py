"""Monocular depth and ego-motion metrics (numpy), as the KITTI literature reports them.

Depth (Eigen et al.; monodepth2's evaluation): per image, keep ground-truth pixels inside
[min_depth, max_depth], optionally scale the prediction by median(gt) / median(pred) (a monocular
network knows depth only up to scale), clip it to the same caps, then abs-rel, sq-rel, RMSE,
RMSE(log) and the accuracies delta < 1.25^k (k = 1, 2, 3); metrics are averaged over images.

Ego-motion:
- ATE over short snippets (SfMLearner): each snippet's positions expressed in its first camera,
  the prediction scaled by the least-squares factor sum(gt . pred) / sum(pred . pred), then the
  RMSE of the position differences. SfMLearner divides sqrt(sum of squared errors) by the snippet
  length; this uses the usual RMSE (sqrt of the mean), so numbers are sqrt(5)x SfMLearner's.
- RPE: the error transform inv(gt_rel) @ pred_rel of relative motions, its translation norm (after
  one least-squares scale over the whole set, or none for metric predictions) and rotation angle.

Poses are 4x4 matrices; a camera pose ``T_first_camera`` maps camera points into the first
camera's (or world) frame, as RigidTransform in ros2_pose.geometry.transforms.
"""
from __future__ import annotations

import cv2
import numpy as np

from ros2_pose.geometry.transforms import rotation_error_deg

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


class MetricInputError(ValueError):
    """Arrays given to a metric have the wrong shape or hold values it cannot score."""


# --------------------------------------------------------------------------------------------- depth
def depth_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven depth metrics of matching 1-D arrays of positive depths."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    if gt.shape != pred.shape or gt.ndim != 1 or gt.size == 0:
        raise MetricInputError(f"gt and pred must be equal-length non-empty 1-D arrays, got {gt.shape} and {pred.shape}")
    if np.any(~np.isfinite(gt) | (gt <= 0)) or np.any(~np.isfinite(pred) | (pred <= 0)):
        raise MetricInputError("depths must be finite and > 0 (mask unknown ground truth before scoring)")
    ratio = np.maximum(gt / pred, pred / gt)
    return {"abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
            "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
            "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
            "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
            "a1": float(np.mean(ratio < 1.25)), "a2": float(np.mean(ratio < 1.25 ** 2)),
            "a3": float(np.mean(ratio < 1.25 ** 3))}


def evaluate_depth(pred_depths, gt_depths, min_depth: float = 1e-3, max_depth: float = 80.0,
                   median_scaling: bool = True) -> dict[str, float]:
    """Mean depth metrics over images. pred_depths and gt_depths are N x H x W (or one H x W);
    a prediction of another size is resized to the ground truth's (bilinear), as monodepth2 does.
    Ground truth that is 0, NaN or outside [min_depth, max_depth] is not scored. Also returns
    ``scale_median`` / ``scale_std`` of the per-image median-scaling factors (1 without scaling)
    and ``images`` scored (images with no valid ground truth are skipped)."""
    if not 0 < min_depth < max_depth:
        raise MetricInputError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    pred_depths, gt_depths = np.asarray(pred_depths, np.float64), np.asarray(gt_depths, np.float64)
    if pred_depths.ndim == 2 and gt_depths.ndim == 2:
        pred_depths, gt_depths = pred_depths[None], gt_depths[None]
    if pred_depths.ndim != 3 or gt_depths.ndim != 3 or len(pred_depths) != len(gt_depths):
        raise MetricInputError(f"expected N x H x W predictions and ground truth, got {pred_depths.shape} and "
                               f"{gt_depths.shape}")
    totals, ratios = {name: 0.0 for name in DEPTH_METRICS}, []
    for pred, gt in zip(pred_depths, gt_depths):
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        with np.errstate(invalid="ignore"):
            mask = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
        if not mask.any():
            continue
        gt_valid, pred_valid = gt[mask], pred[mask]
        if np.any(~np.isfinite(pred_valid) | (pred_valid <= 0)):
            raise MetricInputError("predicted depth must be finite and > 0 wherever the ground truth is scored")
        ratio = float(np.median(gt_valid) / np.median(pred_valid)) if median_scaling else 1.0
        ratios.append(ratio)
        errors = depth_errors(gt_valid, np.clip(pred_valid * ratio, min_depth, max_depth))
        for name in DEPTH_METRICS:
            totals[name] += errors[name]
    if not ratios:
        raise MetricInputError(f"no ground-truth pixel inside ({min_depth}, {max_depth}) in any of "
                               f"{len(gt_depths)} images")
    result = {name: value / len(ratios) for name, value in totals.items()}
    result.update(scale_median=float(np.median(ratios)), scale_std=float(np.std(ratios)), images=len(ratios))
    return result


# --------------------------------------------------------------------------------------------- motion
def _check_poses(poses, name: str) -> np.ndarray:
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise MetricInputError(f"{name} must be N x 4 x 4 homogeneous matrices, got {poses.shape}")
    if not np.all(np.isfinite(poses)):
        raise MetricInputError(f"{name} contain non-finite values")
    return poses


def _invert(poses: np.ndarray) -> np.ndarray:
    inverse = np.zeros_like(poses)
    rotation_t = np.swapaxes(poses[:, :3, :3], 1, 2)
    inverse[:, :3, :3] = rotation_t
    inverse[:, :3, 3] = -(rotation_t @ poses[:, :3, 3:])[..., 0]
    inverse[:, 3, 3] = 1.0
    return inverse


def least_squares_scale(gt_translations, pred_translations) -> float:
    """The s minimising sum |gt - s pred|^2 over (..., 3) translations; 1 when pred is all zero
    (no scale can be recovered and every scale gives the same error)."""
    gt, pred = np.asarray(gt_translations, np.float64), np.asarray(pred_translations, np.float64)
    if gt.shape != pred.shape or gt.shape[-1:] != (3,):
        raise MetricInputError(f"translations must be matching (..., 3) arrays, got {gt.shape} and {pred.shape}")
    denominator = float(np.sum(pred * pred))
    return float(np.sum(gt * pred) / denominator) if denominator > 1e-18 else 1.0


def chain_relative_motions(motions) -> np.ndarray:
    """(N-1) x 4 x 4 camera motions T_{c_i c_{i+1}} (camera i+1's pose in camera i) -> N x 4 x 4
    poses of every camera in the first camera's frame (the first is the identity)."""
    motions = _check_poses(motions, "motions")
    poses = [np.eye(4)]
    for motion in motions:
        poses.append(poses[-1] @ motion)
    return np.stack(poses)


def snippet_ate(gt_poses, pred_poses, scaled: bool = True) -> float:
    """ATE of one snippet: positions in the snippet's first camera, prediction scaled by least
    squares (`scaled`; False scores a metric prediction as it is), RMSE of the position
    differences (metres of the ground truth)."""
    gt, pred = _check_poses(gt_poses, "gt_poses"), _check_poses(pred_poses, "pred_poses")
    if gt.shape != pred.shape or len(gt) < 2:
        raise MetricInputError(f"a snippet needs >= 2 matching poses, got {gt.shape} and {pred.shape}")
    gt_positions = (_invert(gt[:1]) @ gt)[:, :3, 3]
    pred_positions = (_invert(pred[:1]) @ pred)[:, :3, 3]
    scale = least_squares_scale(gt_positions, pred_positions) if scaled else 1.0
    return float(np.sqrt(np.mean(np.sum((gt_positions - scale * pred_positions) ** 2, axis=1))))


def ate_over_snippets(gt_poses, pred_poses, snippet_length: int = 5) -> dict[str, float]:
    """Mean and standard deviation of ``snippet_ate`` over every window of `snippet_length`
    consecutive poses of one sequence (N x 4 x 4 each, in any common frame)."""
    gt, pred = _check_poses(gt_poses, "gt_poses"), _check_poses(pred_poses, "pred_poses")
    if gt.shape != pred.shape:
        raise MetricInputError(f"gt and predicted trajectories differ in shape: {gt.shape} vs {pred.shape}")
    if snippet_length < 2 or len(gt) < snippet_length:
        raise MetricInputError(f"need snippet_length >= 2 and at least that many poses, got {snippet_length} "
                               f"and {len(gt)}")
    errors = np.array([snippet_ate(gt[i:i + snippet_length], pred[i:i + snippet_length])
                       for i in range(len(gt) - snippet_length + 1)])
    return {"ate_mean": float(errors.mean()), "ate_std": float(errors.std()), "snippets": int(len(errors))}


def relative_motion_errors(gt_motions, pred_motions, scale: str = "global") -> dict[str, float]:
    """RPE of matching relative motions (M x 4 x 4 each, e.g. T_{c_t c_{t+1}}).

    scale: "global" multiplies every predicted translation by one least-squares factor first
    (monocular predictions), "none" scores them as metric. Returns translation RMSE / mean (metres),
    rotation RMSE / mean (degrees) and the scale used."""
    gt, pred = _check_poses(gt_motions, "gt_motions"), _check_poses(pred_motions, "pred_motions")
    if gt.shape != pred.shape or len(gt) == 0:
        raise MetricInputError(f"need matching non-empty motions, got {gt.shape} and {pred.shape}")
    if scale not in ("global", "none"):
        raise MetricInputError(f"scale must be 'global' or 'none', got {scale!r}")
    factor = least_squares_scale(gt[:, :3, 3], pred[:, :3, 3]) if scale == "global" else 1.0
    pred = pred.copy()
    pred[:, :3, 3] *= factor
    error = _invert(gt) @ pred
    translation = np.linalg.norm(error[:, :3, 3], axis=1)
    rotation = np.asarray(rotation_error_deg(gt[:, :3, :3], pred[:, :3, :3])).reshape(-1)
    return {"rpe_translation_rmse": float(np.sqrt(np.mean(translation ** 2))),
            "rpe_translation_mean": float(translation.mean()),
            "rpe_rotation_deg_rmse": float(np.sqrt(np.mean(rotation ** 2))),
            "rpe_rotation_deg_mean": float(rotation.mean()), "scale": factor, "pairs": int(len(gt))}


def relative_pose_errors(gt_poses, pred_poses, delta: int = 1, scale: str = "global") -> dict[str, float]:
    """RPE along one trajectory (N x 4 x 4 camera poses): motions between poses `delta` apart."""
    gt, pred = _check_poses(gt_poses, "gt_poses"), _check_poses(pred_poses, "pred_poses")
    if gt.shape != pred.shape or delta < 1 or len(gt) <= delta:
        raise MetricInputError(f"need matching trajectories longer than delta={delta}, got {gt.shape} and {pred.shape}")
    gt_motion = _invert(gt[:-delta]) @ gt[delta:]
    pred_motion = _invert(pred[:-delta]) @ pred[delta:]
    return relative_motion_errors(gt_motion, pred_motion, scale)
