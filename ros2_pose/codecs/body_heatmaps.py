"""BodyPoseNet confidence-map targets: one Gaussian channel per joint plus a background channel.

People come as (P, J, 3) [x, y, v] in *image* pixels (OpenCV centres, COCO visibility: 0 not
labelled, 1 occluded, 2 visible). Targets live on a grid `stride` times smaller (BodyPoseNet:
stride 8); `sigma` is in image pixels, as the seed's `heatmap_gaussian_sigma` (default 7). Where
several people's Gaussians overlap, a joint's channel takes their maximum (not the sum), so close
peaks stay separate maxima. The background channel is 1 - max over joints, so the J + 1 channels
of BodyPose-18 give the 19 channels the network predicts.

The loss mask is 0 where an unlabelled person stands (a person with no keypoints annotated, e.g.
COCO annotations with num_keypoints 0 or crowds): the network must not be taught that nobody is
there.
"""
from __future__ import annotations

import cv2
import numpy as np

from ros2_pose.codecs.heatmaps import HeatmapShapeError, encode_gaussian_heatmaps, image_to_heatmap_coordinates

DEFAULT_HEATMAP_SIGMA = 7.0


def _check_people(people, num_joints: int | None = None) -> np.ndarray:
    array = np.asarray(people, dtype=np.float64)
    if array.ndim == 2 and array.size == 0:
        array = array.reshape(0, num_joints or 0, 3)
    if array.ndim != 3 or array.shape[-1] != 3 or (num_joints is not None and array.shape[1] != num_joints):
        joints = num_joints if num_joints is not None else "J"
        raise HeatmapShapeError(f"people must have shape (P, {joints}, 3) [x, y, visibility], got {array.shape}")
    return array


def encode_body_heatmaps(people, height: int, width: int, stride: int = 8,
                         sigma: float = DEFAULT_HEATMAP_SIGMA, with_background: bool = True) -> np.ndarray:
    """(P, J, 3) people in image pixels -> (J + 1, height, width) float32 confidence maps
    (J without `with_background`). Joints with visibility 0 or outside the grid are left out."""
    people = _check_people(people)
    if stride <= 0:
        raise HeatmapShapeError(f"stride must be positive, got {stride}")
    if not sigma > 0:
        raise HeatmapShapeError(f"heatmap sigma must be positive (image pixels), got {sigma}")
    num_joints = people.shape[1]
    maps = np.zeros((num_joints, height, width), dtype=np.float32)
    if len(people):
        grid_xy = image_to_heatmap_coordinates(people[..., :2], stride)
        heatmaps, _ = encode_gaussian_heatmaps(grid_xy, height, width, sigma=sigma / stride,
                                               visibility=people[..., 2])
        maps = heatmaps.max(axis=0)
    if not with_background:
        return maps
    background = 1.0 - (maps.max(axis=0) if num_joints else np.zeros((height, width), np.float32))
    return np.concatenate([maps, np.clip(background, 0.0, 1.0)[None]], axis=0).astype(np.float32)


def unlabeled_people_mask(unlabeled: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """Image-size boolean mask of unlabelled people -> (height, width) float32 loss weights on the
    target grid: 1 where the loss counts, 0 where any part of a grid cell shows an unlabelled person."""
    if unlabeled is None:
        return np.ones((height, width), dtype=np.float32)
    mask = np.asarray(unlabeled)
    if mask.ndim != 2:
        raise HeatmapShapeError(f"unlabelled-people mask must be (H, W), got {mask.shape}")
    # INTER_AREA averages the pixels each cell covers; any coverage removes the cell from the loss.
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return (coverage <= 0.0).astype(np.float32)
