"""Spatial augmentation for multi-person pose training (the seed's `augmentation_config`).

One affine per sample moves the image, the unlabelled-people mask and every person's keypoints
together (OpenCV warpAffine on pixel indices, the same frame as the keypoints):

    M = T(output centre + translation) . R(rotation) . S(scale / zoom) . F(flips) . T(-centre)

- "person_centric": the centre is the sample's person of interest (the converter duplicated each
  image once per such person) and the scale brings that person to `target_person_scale` of the
  output height;
- "standard": the centre is the image centre and the image is scaled to fit the output.
A left/right flip mirrors x, a top/bottom flip mirrors y; either one alone is a reflection, so
left and right joints trade names (both together are a 180 degree rotation: no swap). Zoom ratios
above 1 zoom out (the image gets smaller than the canvas), as the seed defines them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import cv2
import numpy as np

AUGMENTATION_MODES = ("person_centric", "standard")


class AugmentationConfigError(ValueError):
    """Augmentation parameters out of range."""


@dataclass(frozen=True)
class SpatialAugmentParams:
    flip_lr_prob: float = 0.5
    flip_tb_prob: float = 0.0
    rotate_deg_max: float = 40.0
    rotate_deg_min: float | None = -40.0
    zoom_prob: float = 0.0
    zoom_ratio_min: float = 1.0
    zoom_ratio_max: float = 1.0
    translate_max_x: float = 40.0
    translate_min_x: float = -40.0
    translate_max_y: float = 40.0
    translate_min_y: float = -40.0
    use_translate_ratio: bool = False
    translate_ratio_max: float = 0.2
    translate_ratio_min: float = -0.2
    target_person_scale: float = 0.6

    def __post_init__(self):
        for name in ("flip_lr_prob", "flip_tb_prob", "zoom_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise AugmentationConfigError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        if not 0 < self.zoom_ratio_min <= self.zoom_ratio_max:
            raise AugmentationConfigError(f"need 0 < zoom_ratio_min <= zoom_ratio_max, got "
                                          f"{self.zoom_ratio_min}, {self.zoom_ratio_max}")
        if not self.target_person_scale > 0:
            raise AugmentationConfigError(f"target_person_scale must be positive, got {self.target_person_scale}")
        low = -self.rotate_deg_max if self.rotate_deg_min is None else self.rotate_deg_min
        for lo, hi, what in ((low, self.rotate_deg_max, "rotate_deg"), (self.translate_min_x, self.translate_max_x,
                             "translate_x"), (self.translate_min_y, self.translate_max_y, "translate_y"),
                             (self.translate_ratio_min, self.translate_ratio_max, "translate_ratio")):
            if lo > hi:
                raise AugmentationConfigError(f"{what}: min {lo} is above max {hi}")

    @classmethod
    def from_dict(cls, data: dict | None) -> "SpatialAugmentParams":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AugmentationConfigError(f"unknown spatial_aug_params {unknown} (known: {sorted(known)})")
        return cls(**data)

    @classmethod
    def identity(cls) -> "SpatialAugmentParams":
        """No randomness: only the centring and scaling (for validation)."""
        return cls(flip_lr_prob=0, rotate_deg_max=0, rotate_deg_min=0, translate_max_x=0, translate_min_x=0,
                   translate_max_y=0, translate_min_y=0)


def left_right_permutation(joint_names: Sequence[str]) -> np.ndarray:
    """Index permutation that swaps every left_* joint with its right_* partner."""
    index = {name: i for i, name in enumerate(joint_names)}
    permutation = np.arange(len(joint_names))
    for name, i in index.items():
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if name.startswith(a):
                partner = b + name[len(a):]
                if partner not in index:
                    raise AugmentationConfigError(f"joint {name!r} has no {partner!r} to swap with on a flip")
                permutation[i] = index[partner]
    return permutation


@dataclass(frozen=True)
class SampledTransform:
    matrix: np.ndarray     # 2x3, source image pixels -> output pixels
    swap_left_right: bool


def sample_transform(rng: np.random.Generator, params: SpatialAugmentParams, image_hw: tuple[int, int],
                     output_hw: tuple[int, int], center=None, person_height: float | None = None,
                     mode: str = "person_centric") -> SampledTransform:
    """Draw one augmentation. `center` / `person_height`: the person of interest (person_centric)."""
    if mode not in AUGMENTATION_MODES:
        raise AugmentationConfigError(f"spatial_augmentation_mode must be one of {AUGMENTATION_MODES}, got {mode!r}")
    out_h, out_w = output_hw
    img_h, img_w = image_hw
    if mode == "person_centric":
        if center is None or person_height is None or not person_height > 0:
            raise AugmentationConfigError("person_centric augmentation needs the person's centre and a positive height")
        cx, cy = float(center[0]), float(center[1])
        scale = params.target_person_scale * out_h / person_height
    else:
        cx, cy = (img_w - 1) / 2.0, (img_h - 1) / 2.0
        scale = min(out_h / img_h, out_w / img_w)
    if rng.random() < params.zoom_prob:
        scale /= rng.uniform(params.zoom_ratio_min, params.zoom_ratio_max)
    low = -params.rotate_deg_max if params.rotate_deg_min is None else params.rotate_deg_min
    angle = np.radians(rng.uniform(low, params.rotate_deg_max))
    if params.use_translate_ratio:
        tx = rng.uniform(params.translate_ratio_min, params.translate_ratio_max) * out_w
        ty = rng.uniform(params.translate_ratio_min, params.translate_ratio_max) * out_h
    else:
        tx = rng.uniform(params.translate_min_x, params.translate_max_x)
        ty = rng.uniform(params.translate_min_y, params.translate_max_y)
    flip_x = rng.random() < params.flip_lr_prob
    flip_y = rng.random() < params.flip_tb_prob
    return build_transform((cx, cy), scale, angle, (tx, ty), flip_x, flip_y, output_hw)


def build_transform(center, scale: float, angle_rad: float, translation, flip_x: bool, flip_y: bool,
                    output_hw: tuple[int, int]) -> SampledTransform:
    out_h, out_w = output_hw
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    linear = scale * np.array([[cos, -sin], [sin, cos]]) @ np.diag([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0])
    target = np.array([(out_w - 1) / 2.0 + translation[0], (out_h - 1) / 2.0 + translation[1]])
    offset = target - linear @ np.asarray(center, dtype=np.float64)
    return SampledTransform(np.hstack([linear, offset[:, None]]), bool(flip_x) != bool(flip_y))


def apply_transform(transform: SampledTransform, image: np.ndarray, mask: np.ndarray | None, keypoints: np.ndarray,
                    output_hw: tuple[int, int], permutation: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Warp the image (linear), mask (nearest) and (P, J, 3) keypoints; joints that end up outside
    the output keep their label (the target encoders ignore what falls off the grid)."""
    out_h, out_w = output_hw
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3 or keypoints.shape[1] != len(permutation):
        raise AugmentationConfigError(f"keypoints must be (P, {len(permutation)}, 3), got {keypoints.shape}")
    warped = cv2.warpAffine(image, transform.matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    warped_mask = None
    if mask is not None:
        warped_mask = cv2.warpAffine(mask.astype(np.uint8), transform.matrix, (out_w, out_h),
                                     flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = keypoints.copy()
    out[..., :2] = keypoints[..., :2] @ transform.matrix[:, :2].T + transform.matrix[:, 2]
    out[keypoints[..., 2] <= 0] = 0.0
    if transform.swap_left_right:
        out = out[:, permutation]
    return warped, warped_mask, out
