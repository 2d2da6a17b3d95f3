"""Evaluating the dolly pipeline on held-out bags: the seed's Table 1 and Figures 6-7.

Every frame of the bags runs through `DollyPipeline.process` (detector, crop, pose network: what the
node runs) and is compared with the ground-truth T_camera_dolly. Table 1's metrics:
median |x|, |y|, |z| error (m), median rotation error (deg), AP (a pose is positive when its
translation error < 5 cm and rotation error < 5 deg; frames without a pose count as negatives), and
median inference time. Medians are over frames that produced a pose. Frames in which the dolly is not
visible at all are kept apart: a pose there is a false positive.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ros2_pose.data.builders.frames import BuildOptions, FramePlan
from ros2_pose.geometry.transforms import rotation_error_deg

AP_TRANSLATION_M = 0.05
AP_ROTATION_DEG = 5.0
DISTANCE_BINS_M = (0, 1, 2, 3, 4, 5, 6)


@dataclass
class FrameRecord:
    stamp_ns: int
    distance_m: float
    visible: bool
    status: str
    error_xyz_m: np.ndarray | None
    rotation_error_deg: float | None
    inference_ms: float


@dataclass
class DollyEvaluation:
    records: list[FrameRecord] = field(default_factory=list)

    def visible_records(self) -> list[FrameRecord]:
        return [r for r in self.records if r.visible]

    def metrics(self) -> dict[str, float]:
        visible = self.visible_records()
        if not visible:
            raise ValueError("no frame with the dolly in view: nothing to evaluate")
        posed = [r for r in visible if r.error_xyz_m is not None]
        errors = np.array([np.abs(r.error_xyz_m) for r in posed]).reshape(-1, 3)
        rotation = np.array([r.rotation_error_deg for r in posed], dtype=np.float64)
        positive = [r.error_xyz_m is not None and np.linalg.norm(r.error_xyz_m) < AP_TRANSLATION_M
                    and r.rotation_error_deg < AP_ROTATION_DEG for r in visible]
        hidden = [r for r in self.records if not r.visible]
        median = lambda values: float(np.median(values)) if len(values) else float("nan")
        return {
            "frames": len(self.records),
            "frames_dolly_visible": len(visible),
            "pose_rate": len(posed) / len(visible),
            "median_abs_x_m": median(errors[:, 0]),
            "median_abs_y_m": median(errors[:, 1]),
            "median_abs_z_m": median(errors[:, 2]),
            "median_translation_m": median(np.linalg.norm(errors, axis=1)),
            "median_rotation_deg": median(rotation),
            "ap": float(np.mean(positive)),
            # Frames with no timing (NaN: e.g. the demo's frames the node never answered) are left out.
            "median_inference_ms": median([r.inference_ms for r in self.records if np.isfinite(r.inference_ms)]),
            "frames_dolly_hidden": len(hidden),
            "false_pose_rate": (sum(r.error_xyz_m is not None or r.status == "ok" for r in hidden) / len(hidden)
                                if hidden else 0.0),
        }

    def by_distance(self) -> dict[str, dict[str, np.ndarray]]:
        """|x| error and rotation error of the posed frames per camera-distance interval."""
        out = {}
        posed = [r for r in self.visible_records() if r.error_xyz_m is not None]
        for lo, hi in zip(DISTANCE_BINS_M[:-1], DISTANCE_BINS_M[1:]):
            sel = [r for r in posed if lo <= r.distance_m < hi]
            out[f"{lo}-{hi} m"] = {"abs_x_m": np.array([abs(r.error_xyz_m[0]) for r in sel]),
                                   "rotation_deg": np.array([r.rotation_error_deg for r in sel])}
        return out


def evaluate_bags(bags: Sequence[str | Path], pipeline, max_frames: int | None = None,
                  progress: Callable[[int, int], None] | None = None, gt_source: str = "topic") -> DollyEvaluation:
    """Run `pipeline` on every synchronised frame of `bags` and compare with the ground truth."""
    options = BuildOptions(gt_source=gt_source, progress=progress)
    plan = FramePlan.scan(bags, streams=(), options=options, optional=("detections",))
    if max_frames is not None:
        plan.frames = plan.frames[:max_frames]
    evaluation = DollyEvaluation()
    for frame in plan.decoded_frames():
        T_true = frame.plan.T_camera_object
        if T_true is None:
            continue
        detections = frame.plan.light.get("detections")
        visible = True if detections is None else any(d.class_id == "dolly" for d in detections.detections)
        start = time.perf_counter()
        result = pipeline.process(frame.image, frame.camera)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        evaluation.records.append(frame_record(frame.stamp_ns, T_true, result.pose, visible, result.status,
                                               elapsed_ms))
    return evaluation


def frame_record(stamp_ns: int, T_true: np.ndarray, pose, visible: bool, status: str,
                 inference_ms: float) -> FrameRecord:
    """One frame's record from the ground truth T_camera_dolly (4 x 4) and the estimate
    (a RigidTransform, or None when the pipeline gave no pose). Used by `evaluate_bags` and by
    `ros2-pose demo dolly`, which matches poses received from the live node with the bag's truth."""
    T_true = np.asarray(T_true, dtype=np.float64)
    if T_true.shape != (4, 4) or not np.isfinite(T_true).all():
        raise ValueError(f"ground-truth pose must be a finite 4x4 matrix, got shape {T_true.shape}")
    error, rotation = None, None
    if pose is not None:
        error = np.asarray(pose.translation, dtype=np.float64) - T_true[:3, 3]
        rotation = float(rotation_error_deg(pose.rotation, T_true[:3, :3]))
    return FrameRecord(int(stamp_ns), float(np.linalg.norm(T_true[:3, 3])), bool(visible), status, error,
                       rotation, float(inference_ms))


def box_plots(evaluations: dict[str, DollyEvaluation], out_dir: str | Path) -> list[Path]:
    """The seed's Figures 6 and 7: |x| error and rotation error by distance interval, one panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, label, filename in (("abs_x_m", "absolute x error (m)", "dolly_abs_x_error_by_distance.png"),
                                 ("rotation_deg", "rotation error (deg)", "dolly_rotation_error_by_distance.png")):
        fig, axes = plt.subplots(1, len(evaluations), figsize=(5 * len(evaluations), 3.6), squeeze=False,
                                 sharey=True)
        for ax, (name, evaluation) in zip(axes[0], evaluations.items()):
            bins = evaluation.by_distance()
            ax.boxplot([b[key] if len(b[key]) else [np.nan] for b in bins.values()], showfliers=False)
            ax.set_xticks(range(1, len(bins) + 1), list(bins), rotation=30)
            ax.set_title(name)
            ax.set_xlabel("camera distance")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(label)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def table_1(metrics_by_model: dict[str, dict[str, float]]) -> str:
    """Markdown table in the layout of the seed's Table 1."""
    rows = [("Median x error (m)", "median_abs_x_m", "{:.3f}"), ("Median y error (m)", "median_abs_y_m", "{:.3f}"),
            ("Median z error (m)", "median_abs_z_m", "{:.3f}"),
            ("Median rotation error (deg)", "median_rotation_deg", "{:.2f}"),
            ("Average precision (5 cm, 5 deg)", "ap", "{:.3f}"), ("Frames with a pose", "pose_rate", "{:.3f}"),
            ("Median inference time (ms)", "median_inference_ms", "{:.1f}"),
            ("Frames evaluated (dolly visible)", "frames_dolly_visible", "{:d}")]
    names = list(metrics_by_model)
    lines = ["| Evaluation metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt.format(metrics_by_model[n][key]) for n in names) + " |")
    return "\n".join(lines)


def write_json(metrics: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True))
