"""Evaluating the drone pipeline on held-out bags: the seed's (003) metrics per drone model.

Every frame's tracked drone (the keypoint object with instance id 1, the simulator's `drone` TF
frame) is run through `DronePosePipeline.estimate` with the network of its drone model (the seed
evaluates M2ED and Tello with their own networks), on the box of the network's coarse pass (what
the node does without a detector) or, with `gt_boxes`, on the ground-truth box (the keypoint + PnP
stages alone). A frame whose drone gets no box or no pose counts as incorrect in every rate.

Metrics (ros2_pose.evaluation.pose_metrics): NPE, AD (rad), ACC2/5, ADD2/5, Proj2/5, valid, count.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ros2_pose.data.builders.frames import BuildOptions, FramePlan
from ros2_pose.evaluation.pose_metrics import summarise_pose_metrics
from ros2_pose.geometry.transforms import RigidTransform

TRACKED_INSTANCE = 1
METRIC_KEYS = ("NPE", "AD", "ACC2", "ACC5", "ADD2", "ADD5", "Proj2", "Proj5")


def summarise_with_cameras(estimates, truths, model_points, cameras) -> dict[str, float]:
    """`summarise_pose_metrics` for samples that each have their own camera (random intrinsics,
    crops): each sample is summarised alone with its camera and the rows are combined as the
    seed defines them (NPE/AD means over valid estimates, rates over all samples)."""
    if not (len(estimates) == len(truths) == len(cameras)) or not truths:
        raise ValueError(f"need as many estimates, truths and cameras (and at least one), got "
                         f"{len(estimates)}, {len(truths)} and {len(cameras)}")
    rows = [summarise_pose_metrics([e], [t], model_points, c) for e, t, c in zip(estimates, truths, cameras)]
    valid = [r for r, e in zip(rows, estimates) if e is not None]
    out = {k: float(np.mean([r[k] for r in valid])) if valid else float("inf") for k in ("NPE", "AD")}
    for key in METRIC_KEYS[2:] + ("valid",):
        out[key] = float(np.mean([r[key] for r in rows]))
    out["count"] = len(rows)
    return out


@dataclass
class DroneFrameRecord:
    stamp_ns: int
    drone_model: str
    distance_m: float
    status: str
    truth: RigidTransform
    estimate: RigidTransform | None
    camera: object
    inference_ms: float


@dataclass
class DroneEvaluation:
    records: list[DroneFrameRecord] = field(default_factory=list)

    def metrics(self, keypoints_3d: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
        """{drone model: seed-003 row + status counts + median inference ms} for each evaluated model."""
        out = {}
        for name in sorted({r.drone_model for r in self.records}):
            records = [r for r in self.records if r.drone_model == name]
            row = summarise_with_cameras([r.estimate for r in records], [r.truth for r in records],
                                         keypoints_3d[name], [r.camera for r in records])
            statuses = {}
            for r in records:
                statuses[r.status] = statuses.get(r.status, 0) + 1
            row.update({f"frames_{k}": v for k, v in sorted(statuses.items())},
                       median_inference_ms=float(np.median([r.inference_ms for r in records])),
                       median_distance_m=float(np.median([r.distance_m for r in records])))
            out[name] = row
        return out


def _tracked_object(frame):
    for obj in frame.plan.light["keypoints"].objects:
        if obj.instance_id == TRACKED_INSTANCE:
            return obj
    return None


def evaluate_bags(bags: Sequence[str | Path], pipeline, gt_boxes: bool = False, max_frames: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> DroneEvaluation:
    """Run `pipeline` (a DronePosePipeline) on every frame of `bags` whose tracked drone has a
    network, and compare with the ground-truth T_camera_drone."""
    from ros2_pose.pipelines.drone import DroneResult

    options = BuildOptions(object_frame="drone", progress=progress)
    plan = FramePlan.scan(bags, streams=("keypoints",), options=options)
    if max_frames is not None:
        plan.frames = plan.frames[:max_frames]
    evaluation = DroneEvaluation()
    for frame in plan.decoded_frames():
        T_true, obj = frame.plan.T_camera_object, _tracked_object(frame)
        if T_true is None or obj is None or obj.class_id not in pipeline.drone_models:
            continue
        start = time.perf_counter()
        image, camera = frame.camera.pinhole_view(frame.image)
        if gt_boxes:
            box = np.array([obj.box.x_min, obj.box.y_min, obj.box.x_max, obj.box.y_max], np.float64)
        else:
            box = pipeline.locate(image, obj.class_id)
        if box is None:
            result = DroneResult("no_box", obj.class_id, np.zeros(4), np.zeros((0, 2)), np.zeros(0),
                                 reason="the coarse pass found no confident keypoints")
        else:
            result = pipeline.estimate(image, camera, box, obj.class_id)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        truth = RigidTransform(T_true[:3, :3], T_true[:3, 3])
        evaluation.records.append(DroneFrameRecord(frame.stamp_ns, obj.class_id, float(np.linalg.norm(T_true[:3, 3])),
                                                   result.status, truth, result.pose, camera, elapsed_ms))
    return evaluation


def metrics_table(metrics_by_model: dict[str, dict[str, float]]) -> str:
    """Markdown table in the layout of the seed's Tables 3-6 (one row per drone model)."""
    formats = {"NPE": "{:.3f}", "AD": "{:.3f}"}
    header = "| Drone | " + " | ".join(METRIC_KEYS) + " | posed % | frames |"
    lines = [header, "|---" * (len(METRIC_KEYS) + 3) + "|"]
    for name, row in metrics_by_model.items():
        cells = [formats.get(k, "{:.2f}").format(row[k]) for k in METRIC_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['valid']:.1f} | {row['count']} |")
    return "\n".join(lines)


def _json_safe(value):
    """NPE/AD are infinite when no frame got a pose; JSON has no infinity, so they become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def write_json(data: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(_json_safe(data), indent=2, sort_keys=True))
