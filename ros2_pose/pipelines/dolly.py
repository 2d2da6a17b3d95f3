"""The dolly pipeline: detect -> ROI crop (128x128, black padding) -> pose network -> 6DoF pose.

Both networks run through `ros2_pose.deploy.runner` (torch, ONNX Runtime or TensorRT); this module
holds everything around them, so the node, `ros2-pose eval dolly`, the demo and the benchmark share
one implementation. Input images are RGB uint8 (H x W x 3) with their `CameraModel`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.geometry.transforms import RigidTransform, matrix_from_rotation_6d
from ros2_pose.codecs.center_heatmap import decode_best_box
from ros2_pose.codecs.dolly_pose import CROP_SIZE, camera_rotation_from_allocentric, translation_from_prediction

DETECTOR_INPUT_SIZE = 160


@dataclass
class DollyResult:
    """One frame's outcome. `pose` is T_camera_dolly, or None with `status` saying why."""

    status: str                                   # "ok", "no_detection", "low_score", "rejected_pose"
    box: np.ndarray | None = None                 # image pixels (x_min, y_min, x_max, y_max)
    score: float = 0.0
    pose: RigidTransform | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class DollyPipeline:
    """detector: runner with input `image` (N x 3 x 160 x 160 float) and outputs heatmap_logits,
    size, offset; pose: runner with inputs `crop` (N x 3 x 128 x 128 float), `box` (N x 4) and
    outputs rotation_6d, center_crop, log_depth_ratio (mask_logits is not needed here)."""

    def __init__(self, detector, pose, score_threshold: float = 0.5, min_depth_m: float = 0.1,
                 max_depth_m: float = 15.0, min_box_pixels: float = 4.0):
        self.detector = detector
        self.pose = pose
        self.score_threshold = float(score_threshold)
        self.min_depth_m = float(min_depth_m)
        self.max_depth_m = float(max_depth_m)
        self.min_box_pixels = float(min_box_pixels)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The best dolly box in image pixels and its score."""
        height, width = image.shape[:2]
        letterbox = RoiCrop.whole_image(width, height, DETECTOR_INPUT_SIZE)
        net_input = letterbox.apply(image)[None].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out = self.detector.run({"image": net_input})
        boxes, scores = decode_best_box(out["heatmap_logits"], out["size"], out["offset"], DETECTOR_INPUT_SIZE)
        corners = letterbox.crop_to_image(boxes[0].reshape(2, 2))
        box = np.array([corners[0, 0], corners[0, 1], corners[1, 0], corners[1, 1]])
        # Clip to the image: the network never sees beyond it, and the crop needs a real box.
        box = np.clip(box, [-0.5, -0.5, -0.5, -0.5], [width - 0.5, height - 0.5, width - 0.5, height - 0.5])
        return box, float(scores[0])

    def pose_inputs(self, image: np.ndarray, camera: CameraModel, box: np.ndarray) -> tuple[dict, np.ndarray]:
        """The pose network's inputs for `box` (the 128x128 crop and the normalised box) and the
        crop's virtual camera K_crop, which `decode_pose` needs to lift the answer to metres."""
        crop = RoiCrop.from_box(box, size=CROP_SIZE)
        crop_input = crop.apply(image)[None].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        box_input = crop.normalized_box(camera.width, camera.height)[None].astype(np.float32)
        return {"crop": crop_input, "box": box_input}, crop.crop_camera(camera).K

    def decode_pose(self, out: dict, K_crop: np.ndarray) -> RigidTransform | None:
        """T_camera_dolly from the pose network's outputs, or None when they are not a pose
        (non-finite, degenerate rotation, depth outside the limits)."""
        values = [out["rotation_6d"], out["center_crop"], out["log_depth_ratio"]]
        if not all(np.isfinite(v).all() for v in values):
            return None
        translation = translation_from_prediction(out["center_crop"], out["log_depth_ratio"], K_crop)[0]
        if not np.isfinite(translation).all():  # exp() of a huge log depth ratio overflows
            return None
        try:
            rotation = camera_rotation_from_allocentric(matrix_from_rotation_6d(out["rotation_6d"][0]), K_crop)[0]
            pose = RigidTransform(rotation, translation)
        except ValueError:
            return None
        if not (self.min_depth_m <= translation[2] <= self.max_depth_m):
            return None
        return pose

    def estimate(self, image: np.ndarray, camera: CameraModel, box: np.ndarray) -> RigidTransform | None:
        """T_camera_dolly from the crop of `box`, or None when the network's answer is not a pose."""
        inputs, K_crop = self.pose_inputs(image, camera, box)
        return self.decode_pose(self.pose.run(inputs), K_crop)

    def process(self, image: np.ndarray, camera: CameraModel) -> DollyResult:
        timings = {}
        start = time.perf_counter()
        image, camera = camera.pinhole_view(image)
        box, score = self.detect(image)
        timings["detect"] = (time.perf_counter() - start) * 1e3
        too_small = min(box[2] - box[0], box[3] - box[1]) < self.min_box_pixels
        if score < self.score_threshold or too_small:
            return DollyResult("low_score" if not too_small else "no_detection", box, score, None, timings)
        start = time.perf_counter()
        pose = self.estimate(image, camera, box)
        timings["pose"] = (time.perf_counter() - start) * 1e3
        if pose is None:
            return DollyResult("rejected_pose", box, score, None, timings)
        return DollyResult("ok", box, score, pose, timings)


def draw_result(image: np.ndarray, camera: CameraModel, result: DollyResult, axis_length_m: float = 0.3) -> np.ndarray:
    """A copy of the RGB image with the box, the score and the dolly's axes (x red, y green, z blue)."""
    canvas = np.ascontiguousarray(image.copy())
    if result.box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in result.box)
        color = (0, 255, 0) if result.status == "ok" else (255, 160, 0)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 2)
        cv2.putText(canvas, f"{result.status} {result.score:.2f}", (x0, max(12, y0 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    if result.pose is not None:
        axes = np.array([[0, 0, 0], [axis_length_m, 0, 0], [0, axis_length_m, 0], [0, 0, axis_length_m]])
        points = camera.project(result.pose.apply(axes))
        if np.isfinite(points).all():
            origin = tuple(int(v) for v in points[0])
            for end, color in zip(points[1:], [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
                cv2.line(canvas, origin, tuple(int(v) for v in end), color, 2, cv2.LINE_AA)
    return canvas
