"""What the dolly demo says about each frame and about the whole replay (ROS-free).

A `ReplayFrame` is one image of the bag with what the live node published for it (matched by header
stamp: the node copies the image's stamp into its outputs) and the bag's ground truth. The metrics
are the Table-1 metrics of `ros2_pose.evaluation.dolly` (one implementation), computed from these
matched pairs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import transforms3d.euler

from ros2_pose.evaluation.dolly import DollyEvaluation, frame_record
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, rotation_error_deg

# A TF and a PoseStamped of the same frame are the same numbers sent twice; float64 -> message ->
# float64 round trips are exact, so this only absorbs quaternion normalisation.
TF_MATCH_TOLERANCE = 1e-6


@dataclass
class ReplayFrame:
    stamp_ns: int
    image: np.ndarray | None = None            # RGB, kept for the overlay
    camera: CameraModel | None = None
    truth: RigidTransform | None = None        # /ground_truth/pose
    truth_box: np.ndarray | None = None        # the dolly's box in /ground_truth/detections
    visible: bool | None = None                # None: the bag has no ground-truth detections
    processed: bool = False                    # the node answered (/dolly/detections arrived)
    box: np.ndarray | None = None              # /dolly/detections (None: nothing above threshold)
    score: float | None = None
    estimate: RigidTransform | None = None     # /dolly/pose
    tf_estimate: RigidTransform | None = None  # /tf <camera frame> -> dolly
    latency_ms: float = math.nan               # image received -> /dolly/detections received

    @property
    def status(self) -> str:
        if not self.processed:
            return "no answer (dropped)"
        if self.estimate is not None:
            return "ok"
        return "no pose" if self.box is not None else "no detection"

    def tf_matches_pose(self) -> bool:
        return (self.estimate is not None and self.tf_estimate is not None
                and self.estimate.allclose(self.tf_estimate, TF_MATCH_TOLERANCE, TF_MATCH_TOLERANCE))


def yaw_pitch_roll_deg(rotation: np.ndarray) -> np.ndarray:
    """Z-Y'-X'' Euler angles (R = Rz(yaw) Ry(pitch) Rx(roll)) in degrees, of a rotation expressed in
    the camera optical frame (so 'yaw' turns about the optical axis)."""
    return np.degrees(transforms3d.euler.mat2euler(np.asarray(rotation, np.float64), "rzyx"))


def _pose_text(pose: RigidTransform) -> str:
    x, y, z = pose.translation
    yaw, pitch, roll = yaw_pitch_roll_deg(pose.rotation)
    return f"xyz ({x:+6.3f} {y:+6.3f} {z:6.3f}) m ypr ({yaw:+7.1f} {pitch:+6.1f} {roll:+7.1f}) deg"


def frame_line(index: int, frame: ReplayFrame) -> str:
    """One line: stamp, estimate vs truth (x y z, yaw pitch roll), errors, or why there is no pose."""
    head = f"{index:4d} t={frame.stamp_ns / 1e9:.3f}s"
    est = _pose_text(frame.estimate) if frame.estimate is not None else f"{frame.status:<48s}"
    line = f"{head}  est {est}"
    if frame.truth is not None:
        line += f" | gt {_pose_text(frame.truth)}"
        if frame.estimate is not None:
            t_err = float(np.linalg.norm(frame.estimate.translation - frame.truth.translation))
            r_err = float(rotation_error_deg(frame.estimate.rotation, frame.truth.rotation))
            line += f" | err {t_err * 100:5.1f} cm {r_err:5.1f} deg"
        elif frame.visible is False:
            line += " | dolly not in view"
    if frame.processed and np.isfinite(frame.latency_ms):
        line += f" | {frame.latency_ms:5.1f} ms"
    return line


def evaluation_of(frames: Sequence[ReplayFrame]) -> DollyEvaluation:
    """The replay as a DollyEvaluation (frames with ground truth only); a frame the node never
    answered counts as a frame without a pose."""
    evaluation = DollyEvaluation()
    for frame in frames:
        if frame.truth is None:
            continue
        visible = True if frame.visible is None else frame.visible
        status = "ok" if frame.estimate is not None else frame.status.replace(" ", "_")
        latency = frame.latency_ms if frame.processed else math.nan
        evaluation.records.append(frame_record(frame.stamp_ns, frame.truth.as_matrix(), frame.estimate,
                                               visible, status, latency))
    return evaluation


def summary_lines(frames: Sequence[ReplayFrame], node_diagnostics: dict[str, str] | None = None) -> list[str]:
    """Counts that the table does not show: answered frames, poses, TF agreement, and the node's own
    diagnostics counters (received / processed / dropped, errors)."""
    answered = sum(f.processed for f in frames)
    posed = [f for f in frames if f.estimate is not None]
    tf_ok = sum(f.tf_matches_pose() for f in posed)
    tf_seen = sum(f.tf_estimate is not None for f in posed)
    lines = [f"frames replayed: {len(frames)}, answered by the node: {answered}, with a pose: {len(posed)}",
            f"TF <camera frame> -> dolly received for {tf_seen}/{len(posed)} poses, "
            f"equal to /dolly/pose for {tf_ok}"]
    if node_diagnostics:
        keys = ("frames_received", "frames_processed", "frames_dropped", "errors", "latency_median_ms",
                "latency_p95_ms", "last_error")
        lines.append("node diagnostics: " + ", ".join(f"{k}={node_diagnostics[k]}" for k in keys
                                                      if node_diagnostics.get(k)))
    return lines
