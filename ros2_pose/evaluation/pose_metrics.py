"""6DoF pose metrics of the seed (003, UAVA drones), over a set of estimates.

Per sample, with ground truth (R, t), estimate (R', t'), model points P (the 3D keypoints), camera K:
- NPE (normalised position error) = || t - t' ||_2 / || t ||_2.
- AD (angular distance) = the angle of R^T R' (the rotation aligning the estimated drone body frame
  with the true one), in radians: atan2(|sin|, cos) form of arccos((trace(R^T R') - 1) / 2).
- ACC_k: correct when AD <= k degrees AND || t - t' || <= k cm  (k = 2, 5).
- ADD = mean_p || (R p + t) - (R' p + t') ||; correct when ADD <= k % of the model diagonal
  (the diagonal of P's bounding box), k = 2, 5.
- Proj = mean_p || pi(R p + t) - pi(R' p + t') ||_2 in pixels; correct when <= k px, k = 2, 5.
`summarise_pose_metrics` reports the means of NPE and AD over the valid estimates and the ACC/ADD/
Proj rates in percent over ALL samples: a failed estimate (None) counts as incorrect everywhere.
"""
from __future__ import annotations

import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, rotation_error_deg

THRESHOLDS = (2, 5)


def normalised_position_error(estimate: RigidTransform, truth: RigidTransform) -> float:
    norm = np.linalg.norm(truth.translation)
    if norm == 0:
        raise ValueError("NPE is undefined for a ground-truth position at the camera centre")
    return float(np.linalg.norm(truth.translation - estimate.translation) / norm)


def angular_distance(estimate: RigidTransform, truth: RigidTransform) -> float:
    """Radians."""
    return float(np.radians(rotation_error_deg(truth.rotation, estimate.rotation)))


def average_distance(estimate: RigidTransform, truth: RigidTransform, model_points) -> float:
    """ADD in the model points' unit (metres)."""
    points = np.asarray(model_points, dtype=np.float64)
    return float(np.mean(np.linalg.norm(truth.apply(points) - estimate.apply(points), axis=1)))


def projection_distance(estimate: RigidTransform, truth: RigidTransform, model_points, camera: CameraModel) -> float:
    """Mean pixel distance of the model points projected with both poses; inf if any is behind the camera."""
    points = np.asarray(model_points, dtype=np.float64)
    a, b = camera.project(truth.apply(points)), camera.project(estimate.apply(points))
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    return float(np.mean(np.linalg.norm(a - b, axis=1)))


def model_diagonal(model_points) -> float:
    points = np.asarray(model_points, dtype=np.float64)
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


def summarise_pose_metrics(estimates, truths, model_points, camera: CameraModel) -> dict[str, float]:
    """Seed-003 table row: NPE, AD (means over valid estimates), ACC2/5, ADD2/5, Proj2/5 (percent of
    all samples), plus `valid` (percent with an estimate) and `count`."""
    if len(estimates) != len(truths) or len(truths) == 0:
        raise ValueError(f"need as many estimates as ground truths (and at least one), got {len(estimates)} and {len(truths)}")
    diagonal = model_diagonal(model_points)
    npe, ad = [], []
    hits = {f"{name}{k}": 0 for name in ("ACC", "ADD", "Proj") for k in THRESHOLDS}
    for estimate, truth in zip(estimates, truths):
        if estimate is None:
            continue
        npe.append(normalised_position_error(estimate, truth))
        ad.append(angular_distance(estimate, truth))
        rotation_deg = np.degrees(ad[-1])
        translation_cm = 100.0 * np.linalg.norm(truth.translation - estimate.translation)
        add = average_distance(estimate, truth, model_points)
        proj = projection_distance(estimate, truth, model_points, camera)
        for k in THRESHOLDS:
            hits[f"ACC{k}"] += rotation_deg <= k and translation_cm <= k
            hits[f"ADD{k}"] += add <= k / 100.0 * diagonal
            hits[f"Proj{k}"] += proj <= k
    count = len(truths)
    summary = {"NPE": float(np.mean(npe)) if npe else float("inf"), "AD": float(np.mean(ad)) if ad else float("inf")}
    summary.update({name: 100.0 * value / count for name, value in hits.items()})
    summary.update(valid=100.0 * len(npe) / count, count=count)
    return summary
