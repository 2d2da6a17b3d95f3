"""The drone pipeline: box -> square crop -> keypoint heatmaps -> decoded keypoints -> OpenCV PnP -> pose.

Shared by `ros2-pose train drone` (validation), `ros2-pose eval drone` and the `drone_pose` node, so
what is measured is what runs. Images are RGB uint8 (H x W x 3) with their `CameraModel`.

Crop stage (why): the dataset image is the whole camera frame, and a far Tello is a few pixels in
it; a heatmap net at 1/4 (or 1/2) resolution of the whole frame cannot place 10 keypoints on it. So
the network always sees a square crop around the drone's box (grown by `margin`, never smaller than
`min_box_px`), which puts every drone at roughly the same scale. Boxes come from, in order:
1. given detections (the node's optional `detections` input, e.g. a detector node or the simulator's
   /ground_truth/detections; `ros2-pose eval drone --gt-boxes`);
2. otherwise the network's own *coarse pass*: the whole image letterboxed into the same crop size,
   decoded, and the box around its confident keypoints (training mixes in whole-image samples for
   this, `crop.whole_image_fraction`). That finds one drone per network; it is weak for drones that
   are a couple of pixels in the letterbox, where a detector input is the better source.
   The box around keypoints is smaller than the drone's box (rotor blades and gear reach past the
   keypoints, and the letterbox misses the least confident ones), so it is scaled about its centre
   by the model's `coarse_box_scale` (drone.yaml), calibrated on validation frames at the end of
   training (`calibrate_coarse_box_scale`): the crop then frames the drone as in training.

Drone models: one network per drone model (see ros2_pose.training.drone); a model folder's
`drone.yaml` says which drone model and 3D keypoints it was trained for. When the drone model of a
box is unknown, every network is tried and the successful pose with the highest mean keypoint
confidence wins.

Failure is explicit: `DroneResult.status` is "ok", or "too_few_keypoints" (fewer than
`min_keypoints` keypoints reach `confidence_threshold`), "pnp_failed" (OpenCV found no valid pose:
degenerate, behind the camera, RANSAC without enough inliers) or "rejected_pose" (outside the depth
limits); `reason` says more. A result never carries a NaN pose.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ros2_pose.codecs.decoders import DECODERS, decode_heatmaps
from ros2_pose.codecs.heatmaps import heatmap_to_image_coordinates
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.geometry.pnp import METHODS, PnPResult, solve_pnp
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.resources import resolve_inside

DRONE_INFO_FILE = "drone.yaml"
STATUSES = ("ok", "too_few_keypoints", "pnp_failed", "rejected_pose")


class DroneModelInfoError(ValueError):
    """A model folder's drone.yaml is missing or does not describe a drone keypoint network."""


@dataclass(frozen=True)
class CropSettings:
    size: int = 128            # crop side in pixels (the network input)
    margin: float = 0.25       # box grown by this fraction of its side on each side
    min_box_px: float = 12.0   # boxes smaller than this (image pixels) are grown to it first

    def crop(self, box) -> RoiCrop:
        return crop_around_box(box, self.size, self.margin, self.min_box_px)


def crop_around_box(box, size: int, margin: float, min_box_px: float) -> RoiCrop:
    """The square network crop around `box`: sides grown to at least `min_box_px`, then by `margin`."""
    x_min, y_min, x_max, y_max = np.asarray(box, dtype=np.float64)
    if not np.all(np.isfinite([x_min, y_min, x_max, y_max])) or x_max < x_min or y_max < y_min:
        raise ValueError(f"box must be finite (x_min, y_min, x_max, y_max) with max >= min, got {box}")
    centre = np.array([(x_min + x_max) / 2, (y_min + y_max) / 2])
    half = np.maximum([(x_max - x_min) / 2, (y_max - y_min) / 2], min_box_px / 2)
    return RoiCrop.from_box((*(centre - half), *(centre + half)), size=size, margin=margin)


@dataclass(frozen=True)
class DroneModelInfo:
    """What a drone keypoint model folder's drone.yaml holds besides the network."""

    drone_model: str
    keypoint_names: tuple[str, ...]
    keypoints_3d: np.ndarray          # (K, 3) metres in the drone frame
    crop: CropSettings
    output_stride: int
    backbone: str = ""
    coarse_box_scale: float = 1.0     # coarse-pass keypoint box -> drone box (calibrate_coarse_box_scale)
    # (K, 2) crop pixels: the mean keypoint layout of the training crops, the image-blind baseline
    # a network has to beat (DronePosePipeline(keypoint_source="template")); None in older folders.
    keypoint_template: np.ndarray | None = None

    def to_yaml_dict(self) -> dict:
        data = {"drone_model": self.drone_model, "backbone": self.backbone, "keypoint_names": list(self.keypoint_names),
                "keypoints_3d": np.asarray(self.keypoints_3d, float).round(6).tolist(),
                "crop": {"size": self.crop.size, "margin": self.crop.margin, "min_box_px": self.crop.min_box_px},
                "output_stride": self.output_stride, "coarse_box_scale": round(float(self.coarse_box_scale), 4)}
        if self.keypoint_template is not None:
            data["keypoint_template"] = np.asarray(self.keypoint_template, float).round(3).tolist()
        return data

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / DRONE_INFO_FILE
        path.write_text(yaml.safe_dump(self.to_yaml_dict(), sort_keys=False))
        return path

    @classmethod
    def from_folder(cls, folder: str | Path) -> "DroneModelInfo":
        path = resolve_inside(folder, DRONE_INFO_FILE)
        if not path.is_file():
            raise DroneModelInfoError(f"{folder} has no {DRONE_INFO_FILE}: not a drone keypoint model folder "
                                      f"(train one with `ros2-pose train drone`)")
        data = yaml.safe_load(path.read_text()) or {}
        try:
            points = np.asarray(data["keypoints_3d"], dtype=np.float64)
            names = tuple(str(n) for n in data["keypoint_names"])
            crop = CropSettings(int(data["crop"]["size"]), float(data["crop"]["margin"]), float(data["crop"]["min_box_px"]))
            template = data.get("keypoint_template")
            template = None if template is None else np.asarray(template, dtype=np.float64)
            info = cls(str(data["drone_model"]), names, points, crop, int(data["output_stride"]), str(data.get("backbone", "")),
                       float(data.get("coarse_box_scale", 1.0)), template)
        except (KeyError, TypeError, ValueError) as exc:
            raise DroneModelInfoError(f"{path}: {type(exc).__name__}: {exc} (expected drone_model, keypoint_names, "
                                      f"keypoints_3d (K x 3), crop {{size, margin, min_box_px}}, output_stride)") from None
        if points.shape != (len(names), 3) or not np.all(np.isfinite(points)):
            raise DroneModelInfoError(f"{path}: keypoints_3d must be finite, {len(names)} x 3; got shape {points.shape}")
        if not (np.isfinite(info.coarse_box_scale) and 0.25 <= info.coarse_box_scale <= 8.0):
            raise DroneModelInfoError(f"{path}: coarse_box_scale must be in [0.25, 8], got {info.coarse_box_scale}")
        if template is not None and (template.shape != (len(names), 2) or not np.all(np.isfinite(template))):
            raise DroneModelInfoError(f"{path}: keypoint_template must be finite, {len(names)} x 2 crop pixels; "
                                      f"got shape {template.shape}")
        return info


@dataclass
class DroneResult:
    """One box's outcome. `pose` is T_camera_drone, or None with `status`/`reason` saying why."""

    status: str
    drone_model: str
    box: np.ndarray                                # image pixels (x_min, y_min, x_max, y_max)
    keypoints: np.ndarray                          # (K, 2) image pixels
    confidence: np.ndarray                         # (K,)
    pose: RigidTransform | None = None
    reason: str = ""
    reprojection_rmse_px: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return float(np.mean(self.confidence)) if len(self.confidence) else 0.0


@dataclass(frozen=True)
class PnPSettings:
    method: str = "sqpnp"
    # RANSAC by default: the networks often swap the four rotor keypoints (the aircraft is nearly
    # 4-fold symmetric), and RANSAC drops them; on the held-out set it more than doubles Proj5.
    ransac: bool = True
    ransac_reprojection_px: float = 3.0
    refine: bool = True
    confidence_threshold: float = 0.2
    min_keypoints: int = 4

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown PnP method {self.method!r}; expected one of {sorted(METHODS)}")
        if self.min_keypoints < 4:
            raise ValueError(f"min_keypoints must be >= 4 (a drone pose needs 4 non-degenerate points), got {self.min_keypoints}")


def scale_box(box, scale: float) -> np.ndarray:
    """(x_min, y_min, x_max, y_max) scaled about its centre."""
    box = np.asarray(box, np.float64)
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])


def calibrate_coarse_box_scale(pipeline: "DronePosePipeline", drone_model: str, images, boxes) -> float | None:
    """The median ratio of the true box's longer side to the coarse pass's (unscaled) keypoint box's
    over frames of `drone_model` (RGB images, true boxes in pixels), i.e. the `coarse_box_scale`
    that makes the coarse pass's crops frame the drone like the training crops; None when the
    coarse pass finds no drone in any frame."""
    ratios = []
    for image, true_box in zip(images, boxes):
        found = pipeline.keypoint_box(image, drone_model)
        true_side = float(np.max(np.asarray(true_box[2:]) - np.asarray(true_box[:2])))
        if found is None or true_side <= 0:
            continue
        found_side = float(np.max(found[2:] - found[:2]))
        if found_side > 0:
            ratios.append(true_side / found_side)
    return float(np.clip(np.median(ratios), 0.25, 8.0)) if ratios else None


def decode_crop_keypoints(heatmaps: np.ndarray, stride: int, decoder: str = "argmax_subpixel",
                          **decoder_options) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, h, w) heatmaps -> keypoints (N, K, 2) in crop pixels and confidences (N, K)."""
    xy, confidence = decode_heatmaps(np.asarray(heatmaps, np.float64), decoder, **decoder_options)
    return heatmap_to_image_coordinates(xy, stride), np.asarray(confidence, np.float64)


def solve_drone_pose(keypoints_image: np.ndarray, confidence: np.ndarray, keypoints_3d: np.ndarray,
                     camera, settings: PnPSettings) -> tuple[str, PnPResult | None, str]:
    """(status, PnP result or None, reason) for one drone's keypoints in image pixels."""
    confident = int(np.sum(np.asarray(confidence) >= settings.confidence_threshold))
    if confident < settings.min_keypoints:
        return ("too_few_keypoints", None, f"{confident} of {len(confidence)} keypoints reach confidence "
                f"{settings.confidence_threshold}; at least {settings.min_keypoints} are needed")
    result = solve_pnp(keypoints_3d, keypoints_image, camera, confidence=confidence,
                       confidence_threshold=settings.confidence_threshold, method=settings.method,
                       ransac=settings.ransac, ransac_reprojection_px=settings.ransac_reprojection_px,
                       refine=settings.refine, min_points=settings.min_keypoints)
    if not result.success:
        return "pnp_failed", result, result.reason
    return "ok", result, ""


def network_input(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32 in [0, 1], what the networks were trained on."""
    return np.ascontiguousarray(np.asarray(crops).transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


KEYPOINT_SOURCES = ("network", "template")


class DronePosePipeline:
    """`models`: (runner, DroneModelInfo) pairs, one per drone model; each runner takes `image`
    (N x 3 x S x S float) and returns `heatmaps` (N x K x S/stride x S/stride).

    `keypoint_source="template"` replaces the network's keypoints by the model's
    `keypoint_template` placed in the crop (confidence 1), everything else unchanged: the floor that
    ignores the image, for `ros2-pose eval drone --keypoints template`. It needs given boxes (a
    template has no coarse pass)."""

    def __init__(self, models, decoder: str = "argmax_subpixel", pnp: PnPSettings | None = None,
                 min_depth_m: float = 0.1, max_depth_m: float = 100.0, coarse_confidence: float = 0.2,
                 keypoint_source: str = "network"):
        self.models = {info.drone_model: (runner, info) for runner, info in models}
        if not self.models:
            raise ValueError("the drone pipeline needs at least one (runner, DroneModelInfo) pair")
        if decoder not in DECODERS:
            raise ValueError(f"unknown heatmap decoder {decoder!r}; expected one of {DECODERS}")
        if keypoint_source not in KEYPOINT_SOURCES:
            raise ValueError(f"unknown keypoint source {keypoint_source!r}; expected one of {KEYPOINT_SOURCES}")
        if keypoint_source == "template":
            missing = [name for name, (_, info) in self.models.items() if info.keypoint_template is None]
            if missing:
                raise DroneModelInfoError(f"no keypoint_template in the drone.yaml of {missing}: models trained before "
                                          "it was recorded; add it with ros2_pose.training.drone.keypoint_template")
        self.keypoint_source = keypoint_source
        self.decoder = decoder
        self.pnp = pnp or PnPSettings()
        self.min_depth_m, self.max_depth_m = float(min_depth_m), float(max_depth_m)
        self.coarse_confidence = float(coarse_confidence)

    @property
    def drone_models(self) -> list[str]:
        return list(self.models)

    def _keypoints(self, drone_model: str, image: np.ndarray, crop: RoiCrop) -> tuple[np.ndarray, np.ndarray]:
        runner, info = self.models[drone_model]
        if self.keypoint_source == "template":
            return crop.crop_to_image(info.keypoint_template), np.ones(len(info.keypoint_template))
        heatmaps = runner.run({"image": network_input(crop.apply(image)[None])})["heatmaps"]
        xy_crop, confidence = decode_crop_keypoints(heatmaps, info.output_stride, self.decoder)
        return crop.crop_to_image(xy_crop[0]), confidence[0]

    def locate(self, image: np.ndarray, drone_model: str) -> np.ndarray | None:
        """Coarse pass: the box around the confident keypoints of one network on the letterboxed
        image scaled by the model's `coarse_box_scale`, or None when fewer than min_keypoints are
        confident."""
        if self.keypoint_source == "template":
            raise ValueError("the keypoint template has no coarse pass: give the pipeline boxes "
                             "(detections, or `eval drone --gt-boxes`)")
        box = self.keypoint_box(image, drone_model)
        return None if box is None else scale_box(box, self.models[drone_model][1].coarse_box_scale)

    def keypoint_box(self, image: np.ndarray, drone_model: str) -> np.ndarray | None:
        """The coarse pass before its scale: the box around the confident keypoints of one network
        on the letterboxed image (what `calibrate_coarse_box_scale` measures)."""
        height, width = image.shape[:2]
        crop = RoiCrop.whole_image(width, height, self.models[drone_model][1].crop.size)
        return self.coarse_box(*self._keypoints(drone_model, image, crop))

    def coarse_box(self, keypoints_image: np.ndarray, confidence: np.ndarray) -> np.ndarray | None:
        """The box around the keypoints above `coarse_confidence`, None when fewer than
        min_keypoints are."""
        confident = confidence >= self.coarse_confidence
        if confident.sum() < self.pnp.min_keypoints:
            return None
        return np.concatenate([keypoints_image[confident].min(axis=0), keypoints_image[confident].max(axis=0)])

    def estimate(self, image: np.ndarray, camera: CameraModel, box, drone_model: str) -> DroneResult:
        """The pose of the drone in `box` with the network of `drone_model` (image already undistorted)."""
        if drone_model not in self.models:
            raise KeyError(f"no network for drone model {drone_model!r}; loaded: {self.drone_models}")
        info = self.models[drone_model][1]
        start = time.perf_counter()
        xy, confidence = self._keypoints(drone_model, image, info.crop.crop(box))
        timings = {"keypoints": (time.perf_counter() - start) * 1e3}
        start = time.perf_counter()
        status, result, reason = solve_drone_pose(xy, confidence, info.keypoints_3d, camera, self.pnp)
        timings["pnp"] = (time.perf_counter() - start) * 1e3
        box = np.asarray(box, np.float64)
        if status != "ok":
            return DroneResult(status, drone_model, box, xy, confidence, reason=reason, timings_ms=timings)
        depth = float(result.pose.translation[2])
        if not self.min_depth_m <= depth <= self.max_depth_m:
            return DroneResult("rejected_pose", drone_model, box, xy, confidence,
                               reason=f"depth {depth:.2f} m outside [{self.min_depth_m}, {self.max_depth_m}] m",
                               timings_ms=timings)
        return DroneResult("ok", drone_model, box, xy, confidence, result.pose,
                           reprojection_rmse_px=result.reprojection_rmse_px, timings_ms=timings)

    def estimate_any(self, image: np.ndarray, camera: CameraModel, box) -> DroneResult:
        """Every network on `box`; the successful result with the highest mean confidence (or the
        most confident failure when none succeeds)."""
        results = [self.estimate(image, camera, box, name) for name in self.models]
        return max(results, key=lambda r: (r.status == "ok", r.score))

    def process(self, image: np.ndarray, camera: CameraModel, detections=None) -> list[DroneResult]:
        """All drones of a frame. `detections`: (box, drone model or None) pairs; None runs each
        network's coarse pass to find its drone (see the module docstring)."""
        image, camera = camera.pinhole_view(image)
        if detections is None:
            detections = []
            for name in self.models:
                box = self.locate(image, name)
                if box is not None:
                    detections.append((box, name))
        results = []
        for box, drone_model in detections:
            if drone_model is not None and drone_model in self.models:
                results.append(self.estimate(image, camera, box, drone_model))
            else:
                results.append(self.estimate_any(image, camera, box))
        return results


def draw_results(image: np.ndarray, camera: CameraModel, results: list[DroneResult], axis_length_m: float = 0.1) -> np.ndarray:
    """A copy of the RGB image with each box, its keypoints and the drone's axes (x red, y green, z blue)."""
    canvas = np.ascontiguousarray(image.copy())
    for result in results:
        color = (0, 255, 0) if result.status == "ok" else (255, 160, 0)
        x0, y0, x1, y1 = (int(round(v)) for v in result.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), color, 1)
        cv2.putText(canvas, f"{result.drone_model} {result.status}", (x0, max(12, y0 - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
        for (x, y), c in zip(result.keypoints, result.confidence):
            cv2.circle(canvas, (int(round(x)), int(round(y))), 2, (255, 255, 0) if c >= 0.2 else (128, 128, 128), -1)
        if result.pose is not None:
            axes = np.array([[0, 0, 0], [axis_length_m, 0, 0], [0, axis_length_m, 0], [0, 0, axis_length_m]])
            points = camera.project(result.pose.apply(axes))
            if np.isfinite(points).all():
                origin = tuple(int(v) for v in points[0])
                for end, c in zip(points[1:], [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
                    cv2.line(canvas, origin, tuple(int(v) for v in end), c, 2, cv2.LINE_AA)
    return canvas
