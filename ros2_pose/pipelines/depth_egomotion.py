"""Monocular depth + visual odometry: the depth and pose networks on a stream of frames.

What the `depth_egomotion` node and `ros2-pose eval depth` both run. Per frame:
1. the image is resized to the networks' input size (intrinsics follow), lens distortion removed first;
2. the depth network gives depth at that size; it is resized back to the input image's size;
3. once the last `frames_per_sample` frames are buffered, the pose network gives the pose of every
   buffered frame relative to its target frame; the motion between the previous and the current
   frame, T_{c_prev c_now} (the current camera's pose in the previous camera), is read from them
   and integrated: T_odom_now = T_odom_prev @ T_{c_prev c_now}. The odom frame is the first camera
   pose after a (re)start. With ``odometry_baseline`` b > 1 (at most the window's sources), the
   motion is read across b frames of the window instead, T_odom_now = T_odom_(now-b) @
   T_{c_(now-b) c_now}: b times the parallax of consecutive frames for the network's error, at the
   cost of b interleaved chains (all anchored in the first window);
4. depth and translation are multiplied by one metric scale (see below).

Scale (a monocular network knows depth and motion only up to one common factor):
- ``scale_mode="fixed"``: ``metric_scale`` (1.0 for networks trained with metric supervision:
  supervised depth or ground-truth pose; for self-supervised networks calibrate it once).
- ``scale_mode="camera_height"``: the camera's height above the floor is known (``camera_height_m``).
  A plane is fitted (RANSAC) to the network's 3D points in the lower part of the image; when its
  normal is close to the camera's down axis (a roughly level camera seeing floor there), its distance
  from the camera is the height in network units and scale = known height / that distance. The median
  of the recent estimates is used; frames before the first estimate publish nothing.

Time: a stamp that goes backwards (a looped bag) or jumps more than ``max_time_gap_s`` restarts
odometry (buffer cleared, pose back to identity) and the result says why.

Pose network outputs follow ``models.depth_egomotion``: one 6-vector per source (rotation vector,
translation) = T_target_to_source, the target frame's pose in that source camera.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform

SCALE_MODES = ("fixed", "camera_height")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Sidecar file of a pose model folder: how its windows were built (written by `train depth`).
MOTION_FILE = "motion.yaml"


class EgoMotionInputError(ValueError):
    """An image, camera or stamp the pipeline cannot use (wrong shape, size, type)."""


class NonFiniteOutputError(RuntimeError):
    """A network returned NaN or Inf: nothing of this frame may be published."""


def transform_from_6dof(vector) -> np.ndarray:
    """(rotation vector in radians, translation) -> 4x4, as geometry.warping.se3_from_6dof."""
    vector = np.asarray(vector, np.float64).reshape(6)
    matrix = np.eye(4)
    matrix[:3, :3] = cv2.Rodrigues(vector[:3])[0]
    matrix[:3, 3] = vector[3:]
    return matrix


def window_camera_poses(pose_6dof: np.ndarray, target_index: int) -> np.ndarray:
    """(S, 6) pose-network outputs of a window of S+1 frames -> (S+1, 4, 4) T_{c_target c_k}: every
    frame's camera pose in the target camera (the target's is the identity)."""
    pose_6dof = np.asarray(pose_6dof, np.float64)
    count = len(pose_6dof) + 1
    if not 0 <= target_index < count:
        raise EgoMotionInputError(f"target_index {target_index} outside a window of {count} frames")
    sources = [k for k in range(count) if k != target_index]
    poses = np.tile(np.eye(4), (count, 1, 1))
    for k, vector in zip(sources, pose_6dof):
        poses[k] = np.linalg.inv(transform_from_6dof(vector))  # T_{c_k c_t} inverted: T_{c_t c_k}
    return poses


def motion_between(poses_in_target: np.ndarray, i: int, j: int) -> np.ndarray:
    """T_{c_i c_j} (camera j's pose in camera i) from window_camera_poses."""
    return np.linalg.inv(poses_in_target[i]) @ poses_in_target[j]


# ------------------------------------------------------------------------------------ scale
def fit_floor_plane(points: np.ndarray, down_axis=(0.0, 1.0, 0.0), max_tilt_deg: float = 10.0,
                    inlier_distance: float = 0.01, iterations: int = 100, min_inliers: int = 50,
                    min_support: float = 0.5, rng: np.random.Generator | None = None) -> tuple[np.ndarray, float] | None:
    """(unit normal n, offset d) of the plane n.p = d (d > 0, n pointing down from the camera)
    of the floor among (N, 3) camera points: the lowest level plane (normal within `max_tilt_deg` of
    `down_axis`) with at least `min_inliers` inliers and `min_support` times the inliers of the best
    supported one; None when there is none. `inlier_distance` is relative to the
    median point depth, so it works in any (unknown) scale.

    Written here because none of the project's libraries (OpenCV, scipy, kornia) fits a 3D plane
    with RANSAC and Open3D does not run on these machines."""
    points = np.asarray(points, np.float64)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < max(3, min_inliers):
        return None
    rng = rng or np.random.default_rng(0)
    down = np.asarray(down_axis, np.float64) / np.linalg.norm(down_axis)
    tolerance = inlier_distance * float(np.median(points[:, 2]))
    cos_limit = np.cos(np.radians(max_tilt_deg))
    candidates = []  # (inlier count, offset, inlier mask) of every level plane tried
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal /= norm
        if normal @ down < 0:
            normal = -normal
        if normal @ down < cos_limit:
            continue
        inliers = np.abs(points @ normal - normal @ a) < tolerance
        candidates.append((int(inliers.sum()), float(normal @ a), inliers))
    if not candidates:
        return None
    # Furniture tops are level planes too: of the well-supported planes, the floor is the lowest one
    # (the farthest below the camera).
    most = max(count for count, _, _ in candidates)
    supported = [c for c in candidates if c[0] >= max(min_inliers, min_support * most)]
    if not supported:
        return None
    best_count, _, best = max(supported, key=lambda c: c[1])
    # refine on the inliers: the smallest singular vector of the centred points is the normal
    inlier_points = points[best]
    centre = inlier_points.mean(axis=0)
    normal = np.linalg.svd(inlier_points - centre, full_matrices=False)[2][-1]
    if normal @ down < 0:
        normal = -normal
    if normal @ down < cos_limit:
        return None
    offset = float(normal @ centre)
    return (normal, offset) if offset > 0 else None


def camera_height_from_depth(depth: np.ndarray, camera: CameraModel, floor_rows: tuple[float, float] = (0.65, 1.0),
                             stride: int = 2, **plane_options) -> float | None:
    """The camera's height above the floor in the depth's units: the distance to the plane fitted to
    the points of the image rows in `floor_rows` (fractions of the height, bottom = 1), or None."""
    points = camera.depth_to_points(depth)
    top, bottom = (int(round(f * camera.height)) for f in floor_rows)
    region = points[top:bottom:stride, ::stride].reshape(-1, 3)
    plane = fit_floor_plane(region, **plane_options)
    return None if plane is None else plane[1]


# ------------------------------------------------------------------------------------ pipeline
@dataclass
class EgoMotionResult:
    """One frame's outcome. `depth` (input image size, metres) and `pose` are None with `status`
    saying why: "ok", "first_frame" (odometry starts here: pose is the identity), "filling_window"
    (depth only), "no_scale" (camera-height scale not known yet: nothing metric to publish)."""

    status: str
    depth: np.ndarray | None = None
    pose: RigidTransform | None = None          # T_odom_camera
    motion: RigidTransform | None = None        # T_{c_prev c_now}, metric
    scale: float | None = None
    reset_reason: str | None = None             # set when this frame restarted odometry
    elapsed_s: float = 0.0                      # stamp difference to the previous frame
    timings_ms: dict[str, float] = field(default_factory=dict)
    # When a window of 3+ frames first fills after a (re)start, the poses of the earlier frames that
    # got none ("filling_window"), oldest first: evaluation uses them, the node cannot go back in time.
    backfilled_poses: list[RigidTransform] = field(default_factory=list)
    # (vx, vy, vz, wx, wy, wz) in the current camera frame, metres and radians per second: the
    # motion over elapsed_s; None without a motion or without elapsed time
    twist: np.ndarray | None = None


def read_motion_sidecar(model_folder: str | Path | None) -> dict:
    """The pose model's motion.yaml (target_index, frames_per_sample, distances, metric) or {}."""
    if model_folder is None:
        return {}
    from ros2_pose.resources import resolve_inside

    folder = Path(model_folder)
    if not folder.is_dir():
        return {}
    path = resolve_inside(folder, MOTION_FILE)
    return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}


class DepthEgoMotionPipeline:
    """depth: runner with input `image` (1 x 3 x H x W, RGB in [0, 1]) and output `depth`; pose:
    runner with inputs `target` (1 x 3 x H x W) and `sources` (1 x S x 3 x H x W), output `pose`
    (1 x S x 6). `target_index`: the window position the pose network was trained to treat as the
    target (None: the middle, S+1 // 2, as training does)."""

    def __init__(self, depth, pose, target_index: int | None = None, scale_mode: str = "fixed",
                 metric_scale: float = 1.0, camera_height_m: float | None = None, max_time_gap_s: float = 0.5,
                 scale_window: int = 15, odometry_baseline: int = 1):
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
        if scale_mode == "fixed" and not (np.isfinite(metric_scale) and metric_scale > 0):
            raise ValueError(f"metric_scale must be a finite number > 0, got {metric_scale}")
        if scale_mode == "camera_height" and not (camera_height_m is not None and camera_height_m > 0):
            raise ValueError(f"scale_mode 'camera_height' needs camera_height_m > 0, got {camera_height_m}")
        if not max_time_gap_s > 0:
            raise ValueError(f"max_time_gap_s must be > 0, got {max_time_gap_s}")
        self.depth_runner, self.pose_runner = depth, pose
        image_shape = depth.example_inputs()["image"].shape
        sources_shape = pose.example_inputs()["sources"].shape
        self.height, self.width = int(image_shape[2]), int(image_shape[3])
        if tuple(sources_shape[-2:]) != (self.height, self.width):
            raise ValueError(f"depth network takes {self.width}x{self.height} images but the pose network "
                             f"{sources_shape[-1]}x{sources_shape[-2]}")
        self.num_sources = int(sources_shape[1])
        self.frames_per_sample = self.num_sources + 1
        self.target_index = self.frames_per_sample // 2 if target_index is None else int(target_index)
        if not 0 <= self.target_index < self.frames_per_sample:
            raise ValueError(f"target_index {target_index} outside 0..{self.frames_per_sample - 1}")
        if not 1 <= int(odometry_baseline) <= self.num_sources or int(odometry_baseline) != odometry_baseline:
            raise ValueError(f"odometry_baseline must be a whole number of frames in 1..{self.num_sources} (the "
                             f"pose network's sources), got {odometry_baseline}")
        self.odometry_baseline = int(odometry_baseline)
        self.scale_mode, self.metric_scale = scale_mode, float(metric_scale)
        self.camera_height_m = camera_height_m
        self.max_time_gap_ns = int(max_time_gap_s * 1e9)
        self.scale_estimates: deque[float] = deque(maxlen=scale_window)
        self.resets = 0
        self.reset(None)

    def reset(self, reason: str | None) -> None:
        """Forget the frame window and restart odometry at the identity on the next frame."""
        self.window: deque[np.ndarray] = deque(maxlen=self.frames_per_sample)
        self.pose = RigidTransform.identity()
        # odometry poses of the frames before this one, newest last (for odometry_baseline > 1)
        self.previous_poses: deque[RigidTransform] = deque(maxlen=self.num_sources)
        self.window_filled = False  # the first full window after a restart starts at the odom origin
        self.last_stamp_ns: int | None = None
        if reason is not None:
            self.resets += 1

    # -------------------------------------------------------------------------------- steps
    def prepare(self, image: np.ndarray, camera: CameraModel) -> tuple[np.ndarray, CameraModel]:
        """The network input (3 x H x W float32 in [0, 1]) and the camera of the undistorted image."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise EgoMotionInputError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
        if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
            raise EgoMotionInputError(f"image is {image.shape[1]}x{image.shape[0]} but the camera is "
                                      f"{camera.width}x{camera.height}")
        image, camera = camera.pinhole_view(image)
        resized = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(resized.transpose(2, 0, 1), np.float32) / 255.0, camera

    def network_depth(self, net_input: np.ndarray) -> np.ndarray:
        """H x W depth of the network (its own scale) for one prepared image."""
        return self.checked_depth(self.depth_runner.run({"image": net_input[None]})["depth"][0, 0])

    @staticmethod
    def checked_depth(depth: np.ndarray) -> np.ndarray:
        """The network's depth map, or NonFiniteOutputError (never published)."""
        if not np.isfinite(depth).all() or (depth <= 0).any():
            raise NonFiniteOutputError("the depth network returned non-finite or non-positive depth")
        return depth

    @staticmethod
    def metric_depth(depth: np.ndarray, scale: float, image_hw: tuple[int, int],
                     out: np.ndarray | None = None) -> np.ndarray:
        """The network's (checked) depth in metres at the image's resolution, float32, written into
        `out` (H x W float32, e.g. an outgoing message's buffer) when given.

        Finite by construction, so nothing downstream re-checks the full-size map: the scaled maximum
        is checked at network resolution, and bilinear interpolation stays within the input's range."""
        if not (np.isfinite(scale) and scale > 0 and float(depth.max()) * scale < _FLOAT32_MAX):
            raise NonFiniteOutputError(f"depth x scale {scale!r} is not a finite metric depth")
        size = (image_hw[1], image_hw[0])
        scaled = (depth * np.float32(scale)).astype(np.float32, copy=False)
        if out is None:
            return cv2.resize(scaled, size, interpolation=cv2.INTER_LINEAR)
        if out.shape != tuple(image_hw) or out.dtype != np.float32:
            raise ValueError(f"depth output buffer must be {image_hw} float32, got {out.shape} {out.dtype}")
        cv2.resize(scaled, size, dst=out, interpolation=cv2.INTER_LINEAR)
        return out

    def scale(self, depth: np.ndarray, camera: CameraModel) -> float | None:
        if self.scale_mode == "fixed":
            return self.metric_scale
        network_camera = camera.resized(self.width, self.height)
        height = camera_height_from_depth(depth, network_camera)
        if height is not None:
            self.scale_estimates.append(self.camera_height_m / height)
        return float(np.median(self.scale_estimates)) if self.scale_estimates else None

    def window_poses(self) -> np.ndarray:
        """T_{c_target c_k} of every frame of the full window, in network units."""
        frames = list(self.window)
        target = frames[self.target_index]
        sources = np.stack([f for k, f in enumerate(frames) if k != self.target_index])
        pose = self.pose_runner.run({"target": target[None], "sources": sources[None]})["pose"][0]
        if not np.isfinite(pose).all():
            raise NonFiniteOutputError("the pose network returned a non-finite motion")
        return window_camera_poses(pose, self.target_index)

    def check_time(self, stamp_ns: int) -> str | None:
        """Why this stamp restarts odometry (None: it follows the previous frame)."""
        if self.last_stamp_ns is None:
            return None
        if stamp_ns <= self.last_stamp_ns:
            return (f"time went backwards by {(self.last_stamp_ns - stamp_ns) / 1e9:.3f} s "
                    "(bag looped or clock reset)")
        if stamp_ns - self.last_stamp_ns > self.max_time_gap_ns:
            return (f"time jumped {(stamp_ns - self.last_stamp_ns) / 1e9:.3f} s "
                    f"(> max_time_gap_s {self.max_time_gap_ns / 1e9:g})")
        return None

    def process(self, image: np.ndarray, camera: CameraModel, stamp_ns: int,
                depth_out: np.ndarray | None = None) -> EgoMotionResult:
        """One frame. `depth_out`: an H x W float32 buffer the metric depth is written into (the
        node passes its outgoing Image's pixels, so the depth map is never copied); the result's
        `depth` is then that buffer."""
        timings = {}
        start = time.perf_counter()
        reset_reason = self.check_time(int(stamp_ns))
        if reset_reason is not None:
            self.reset(reset_reason)
        net_input, camera = self.prepare(image, camera)
        depth = self.network_depth(net_input)
        timings["depth"] = (time.perf_counter() - start) * 1e3
        scale = self.scale(depth, camera)
        elapsed = 0.0 if self.last_stamp_ns is None else (int(stamp_ns) - self.last_stamp_ns) / 1e9
        first = self.last_stamp_ns is None
        self.last_stamp_ns = int(stamp_ns)
        self.window.append(net_input)
        if scale is None:
            return EgoMotionResult("no_scale", reset_reason=reset_reason, elapsed_s=elapsed, timings_ms=timings)
        metric_depth = self.metric_depth(depth, scale, image.shape[:2], out=depth_out)
        if first:
            return EgoMotionResult("first_frame", metric_depth, self.pose, RigidTransform.identity(), scale,
                                   reset_reason, elapsed, timings)
        if len(self.window) < self.frames_per_sample:
            return EgoMotionResult("filling_window", metric_depth, None, None, scale, reset_reason, elapsed, timings)
        start = time.perf_counter()
        poses = self.window_poses()
        timings["pose"] = (time.perf_counter() - start) * 1e3
        last = len(poses) - 1
        backfilled = []
        if self.window_filled:
            baseline = self.odometry_baseline
            previous = self.pose
            step = self._metric(motion_between(poses, last - baseline, last), scale)
            self.pose = self.previous_poses[-baseline] @ step
            # the frame-to-frame motion (twist): the step itself when it joins consecutive frames
            motion = step if baseline == 1 else previous.inverse() @ self.pose
            self.previous_poses.append(self.pose)
        else:
            # frames 1..last-1 of this first window got no pose yet: odometry goes from the origin
            # (window frame 0) straight to now, and the skipped poses are handed back
            origin = self.pose
            backfilled = [origin @ self._metric(motion_between(poses, 0, k), scale) for k in range(1, last)]
            self.pose = origin @ self._metric(motion_between(poses, 0, last), scale)
            motion = (backfilled[-1] if backfilled else origin).inverse() @ self.pose
            self.previous_poses.extend([origin, *backfilled, self.pose])
            self.window_filled = True
        return EgoMotionResult("ok", metric_depth, self.pose, motion, scale, reset_reason, elapsed, timings,
                               backfilled, twist_from_motion(motion, elapsed))

    @staticmethod
    def _metric(motion: np.ndarray, scale: float) -> RigidTransform:
        motion = motion.copy()
        motion[:3, 3] *= scale
        return RigidTransform.from_matrix(motion)


def twist_from_motion(motion: RigidTransform, elapsed_s: float) -> np.ndarray | None:
    """(vx, vy, vz, wx, wy, wz) in the current camera frame from T_{c_prev c_now} over elapsed_s,
    or None when no time passed."""
    if not elapsed_s > 0:
        return None
    rotation_vector = cv2.Rodrigues(np.asarray(motion.rotation, np.float64))[0].ravel()
    # the translation is expressed in the previous camera; the twist lives in the current one
    linear = np.asarray(motion.rotation).T @ np.asarray(motion.translation, np.float64)
    return np.concatenate([linear, rotation_vector]) / elapsed_s
