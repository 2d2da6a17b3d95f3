"""Evaluating monocular depth + visual odometry on bags with ground-truth depth and camera poses.

Every frame goes through `DepthEgoMotionPipeline.process` (what the node runs), in time order, so
the pose network's windows and the odometry chaining are the node's own. Scored (metric definitions
in ros2_pose.evaluation.depth_metrics):
- depth: abs-rel, sq-rel, RMSE, RMSE(log), delta < 1.25^k per image with per-image median scaling,
  ground truth capped to [min_depth, max_depth], averaged over images;
- ego-motion, per continuous segment of a sequence: the pipeline's chained camera poses against
  the ground-truth T_world_optical: ATE over every 5-frame snippet (least-squares scale per
  snippet) and RPE of consecutive frames (translation with one least-squares scale over all
  segments, and as-is for networks trained to be metric; rotation in degrees).
- trivial baselines on the same frames: a constant depth map; standing still (zero motion); going
  straight ahead at a constant speed (fitted by the same scale alignment), which sequences that
  mostly move forward reward without any motion being estimated.

Segments: the pipeline restarts (and a new segment begins) at every sequence boundary the frame
plan sees (bag, loop, time gap) and where the ground-truth camera jumps more than `max_step_m` or
`max_step_deg` between frames (simulated sequences written back to back have no time gap).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ros2_pose.data.builders.frames import BuildOptions, FramePlan
from ros2_pose.evaluation.depth_metrics import (DEPTH_METRICS, MetricInputError, evaluate_depth, relative_motion_errors,
                                                snippet_ate)
from ros2_pose.geometry.transforms import rotation_error_deg

SNIPPET_LENGTH = 5


def camera_jump(previous: np.ndarray, current: np.ndarray, max_step_m: float, max_step_deg: float) -> bool:
    """True when two consecutive ground-truth camera poses are too far apart to be one motion."""
    step = np.linalg.norm(current[:3, 3] - previous[:3, 3])
    return bool(step > max_step_m or rotation_error_deg(previous[:3, :3], current[:3, :3]) > max_step_deg)


@dataclass
class Segment:
    """Ground-truth and predicted camera poses of the frames of one continuous segment that got a pose."""
    gt: list[np.ndarray] = field(default_factory=list)
    pred: list[np.ndarray] = field(default_factory=list)
    waiting_gt: list[np.ndarray] = field(default_factory=list)  # frames whose pose may be backfilled


@dataclass
class DepthEgoMotionEvaluation:
    depth_scores: list[dict[str, float]] = field(default_factory=list)
    baseline_depth_scores: list[dict[str, float]] = field(default_factory=list)  # constant depth
    # without per-image median scaling: what a metric network (trained on metric ground truth)
    # publishes; in network units, and meaningless, for a self-supervised one
    unscaled_depth_scores: list[dict[str, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    frames: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    inference_ms: list[float] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        if not self.depth_scores:
            raise ValueError("no frame with ground-truth depth was scored: nothing to evaluate")
        out: dict[str, float] = {"frames": self.frames, "depth_images": len(self.depth_scores)}
        for name in DEPTH_METRICS:
            out[name] = float(np.mean([s[name] for s in self.depth_scores]))
        ratios = [s["scale_median"] for s in self.depth_scores]
        out["depth_scale_median"], out["depth_scale_std"] = float(np.median(ratios)), float(np.std(ratios))
        for name in ("abs_rel", "rmse", "a1"):
            if self.unscaled_depth_scores:
                out[f"{name}_unscaled"] = float(np.mean([s[name] for s in self.unscaled_depth_scores]))
        for name in ("abs_rel", "rmse_log", "a1"):
            if self.baseline_depth_scores:
                out[f"baseline_constant_depth_{name}"] = float(np.mean([s[name] for s in self.baseline_depth_scores]))
        snippets, unscaled_snippets, still_snippets, straight_snippets = [], [], [], []
        gt_motions, pred_motions = [], []
        still = np.tile(np.eye(4), (SNIPPET_LENGTH, 1, 1))
        straight = _straight_ahead(SNIPPET_LENGTH)
        for segment in self.segments:
            gt, pred = np.array(segment.gt), np.array(segment.pred)
            for start in range(len(gt) - SNIPPET_LENGTH + 1):
                gt_snippet, pred_snippet = gt[start:start + SNIPPET_LENGTH], pred[start:start + SNIPPET_LENGTH]
                snippets.append(snippet_ate(gt_snippet, pred_snippet))
                unscaled_snippets.append(snippet_ate(gt_snippet, pred_snippet, scaled=False))
                still_snippets.append(snippet_ate(gt_snippet, still))
                straight_snippets.append(snippet_ate(gt_snippet, straight))
            if len(gt) >= 2:
                gt_motions.append(np.linalg.inv(gt[:-1]) @ gt[1:])
                pred_motions.append(np.linalg.inv(pred[:-1]) @ pred[1:])
        out["segments"] = len(self.segments)
        out["ate_snippets"] = len(snippets)
        out["ate_mean"] = float(np.mean(snippets)) if snippets else float("nan")
        out["ate_std"] = float(np.std(snippets)) if snippets else float("nan")
        out["ate_mean_unscaled"] = float(np.mean(unscaled_snippets)) if unscaled_snippets else float("nan")
        out["baseline_zero_motion_ate_mean"] = float(np.mean(still_snippets)) if still_snippets else float("nan")
        out["baseline_straight_ate_mean"] = float(np.mean(straight_snippets)) if straight_snippets else float("nan")
        if gt_motions:
            gt_all, pred_all = np.concatenate(gt_motions), np.concatenate(pred_motions)
            aligned = relative_motion_errors(gt_all, pred_all, scale="global")
            metric = relative_motion_errors(gt_all, pred_all, scale="none")
            standing_still = relative_motion_errors(gt_all, np.tile(np.eye(4), (len(gt_all), 1, 1)), scale="none")
            straight_on = relative_motion_errors(gt_all, np.repeat(_straight_ahead(2)[1:], len(gt_all), axis=0),
                                                 scale="global")
            out.update({"rpe_translation_rmse": aligned["rpe_translation_rmse"],
                        "rpe_rotation_deg_rmse": aligned["rpe_rotation_deg_rmse"],
                        "rpe_scale": aligned["scale"], "rpe_pairs": aligned["pairs"],
                        "rpe_translation_rmse_unscaled": metric["rpe_translation_rmse"],
                        "baseline_zero_motion_rpe_translation_rmse": standing_still["rpe_translation_rmse"],
                        "baseline_zero_motion_rpe_rotation_deg_rmse": standing_still["rpe_rotation_deg_rmse"],
                        "baseline_straight_rpe_translation_rmse": straight_on["rpe_translation_rmse"]})
        out["median_inference_ms"] = float(np.median(self.inference_ms)) if self.inference_ms else float("nan")
        out.update({f"frames_{k}": v for k, v in sorted(self.statuses.items())})
        return out


def _straight_ahead(frames: int) -> np.ndarray:
    """Camera poses of a camera going straight along its optical axis, one unit per frame, never
    turning: the trivial predictor a pose network must beat on sequences that mostly move forward
    (its speed is fitted by the same least-squares scale as the network's)."""
    poses = np.tile(np.eye(4), (frames, 1, 1))
    poses[:, 2, 3] = np.arange(frames)
    return poses


def evaluate_bags(bags: Sequence[str | Path], pipeline, min_depth: float = 0.1, max_depth: float = 20.0,
                  max_frames: int | None = None, max_step_m: float = 0.5, max_step_deg: float = 30.0,
                  progress: Callable[[int, int], None] | None = None) -> DepthEgoMotionEvaluation:
    """Run `pipeline` (a DepthEgoMotionPipeline) over every frame of `bags` (image, camera_info,
    depth, TF world -> camera) and collect the scores (see the module docstring)."""
    options = BuildOptions(gt_source="tf", gt_target="camera", object_frame="camera_link", progress=progress)
    plan = FramePlan.scan(bags, streams=("depth",), options=options)
    if max_frames is not None:
        plan.frames = plan.frames[:max_frames]
    evaluation = DepthEgoMotionEvaluation()
    previous_sequence, previous_gt, segment = None, None, None
    for frame in plan.decoded_frames():
        gt_pose = np.asarray(frame.plan.T_camera_object, np.float64)
        boundary = (previous_sequence is None or frame.plan.sequence != previous_sequence
                    or camera_jump(previous_gt, gt_pose, max_step_m, max_step_deg))
        if boundary:
            pipeline.reset("sequence boundary" if previous_sequence is not None else None)
            segment = Segment()
            evaluation.segments.append(segment)
        previous_sequence, previous_gt = frame.plan.sequence, gt_pose
        result = pipeline.process(frame.image, frame.camera, frame.stamp_ns)
        evaluation.frames += 1
        evaluation.statuses[result.status] = evaluation.statuses.get(result.status, 0) + 1
        evaluation.inference_ms.append(sum(result.timings_ms.values()))
        if result.reset_reason is not None and not boundary:  # the pipeline saw a time jump itself
            segment = Segment()
            evaluation.segments.append(segment)
        if result.depth is not None and frame.depth is not None:
            try:
                evaluation.depth_scores.append(evaluate_depth(result.depth, frame.depth, min_depth, max_depth))
                evaluation.unscaled_depth_scores.append(
                    evaluate_depth(result.depth, frame.depth, min_depth, max_depth, median_scaling=False))
                evaluation.baseline_depth_scores.append(
                    evaluate_depth(np.ones(frame.depth.shape), frame.depth, min_depth, max_depth))
            except MetricInputError:  # no ground-truth pixel inside the caps in this image
                pass
        if result.pose is None:
            segment.waiting_gt.append(gt_pose)
            continue
        if result.backfilled_poses:  # poses of the last frames that waited for a full window
            waited = segment.waiting_gt[len(segment.waiting_gt) - len(result.backfilled_poses):]
            segment.gt.extend(waited)
            segment.pred.extend(p.as_matrix() for p in result.backfilled_poses)
        segment.waiting_gt.clear()
        segment.gt.append(gt_pose)
        segment.pred.append(result.pose.as_matrix())
    evaluation.segments = [s for s in evaluation.segments if s.gt]
    return evaluation


def write_json(metrics: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True))
