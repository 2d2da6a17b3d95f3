"""Differentiable view synthesis for self-supervised depth and ego-motion (torch, batched).

The three layers of the seed's "HuangYing's layer", each a function here:
- SE(3) generator: 6 numbers per sample -> 4x4 rigid transform (``se3_from_6dof``);
- transform 3D grid: target depth -> target-frame points (``backproject_depth``) -> source frame;
- pinhole projection: source-frame points -> source pixels (``project_points``), then the source
  image is resampled there (``warp_source_to_target``) to synthesise the target view.

Conventions (docs/DESIGN.md): optical frame z forward, x right, y down; pixel centres at integer
coordinates (OpenCV). ``T_target_to_source`` maps target-frame points into the source frame
(``p_source = R p_target + t``), i.e. the source camera's ``T_source_target``; with
``RigidTransform`` poses of the two cameras in a world frame it is
``T_world_source.inverse() @ T_world_target``.

The 6-DoF vector is (rotation vector, translation): the Rodrigues vector OpenCV's rvec and
``geometry.transforms.axis_angle_to_matrix`` use, and a translation applied after the rotation
(the monodepth2 parameterisation, not the SE(3) exponential's coupled translation), so a pose
head's output reads directly as ``rigid_from_axis_angle_translation(w, t)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as functional
from kornia.geometry.conversions import (axis_angle_to_rotation_matrix, convert_points_to_homogeneous,
                                         normalize_pixel_coordinates)
from kornia.geometry import create_meshgrid

#: Points closer than this (metres, in the source camera) cannot be projected meaningfully.
MIN_PROJECTION_DEPTH = 1e-3


class WarpInputError(ValueError):
    """A tensor given to the warping layers has the wrong shape or values."""


def _check_shape(tensor: torch.Tensor, name: str, expected: str, ndim: int, tail: tuple = ()) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise WarpInputError(f"{name} must be a torch.Tensor ({expected}), got {type(tensor).__name__}")
    if tensor.ndim != ndim or (tail and tuple(tensor.shape[-len(tail):]) != tail):
        raise WarpInputError(f"{name} must have shape {expected}, got {tuple(tensor.shape)}")


def se3_from_6dof(axis_angle_translation: torch.Tensor) -> torch.Tensor:
    """N x 6 (rotation vector in radians, translation) -> N x 4 x 4 rigid transforms.

    kornia's Rodrigues formula switches to its first-order form near zero angle, so the gradient
    stays finite at the zero motion a freshly initialised pose head outputs.
    """
    _check_shape(axis_angle_translation, "axis_angle_translation", "(N, 6)", 2, (6,))
    n = axis_angle_translation.shape[0]
    rotation = axis_angle_to_rotation_matrix(axis_angle_translation[:, :3])
    top = torch.cat([rotation, axis_angle_translation[:, 3:, None]], dim=2)
    bottom = torch.zeros(n, 1, 4, dtype=top.dtype, device=top.device)
    bottom[:, 0, 3] = 1.0
    return torch.cat([top, bottom], dim=1)


def invert_se3(transform: torch.Tensor) -> torch.Tensor:
    """Inverse of N x 4 x 4 rigid transforms (R^T, -R^T t): exact and cheaper than a general inverse."""
    _check_shape(transform, "transform", "(N, 4, 4)", 3, (4, 4))
    rotation_t = transform[:, :3, :3].transpose(1, 2)
    translation = -rotation_t @ transform[:, :3, 3:]
    inverse = torch.zeros_like(transform)
    inverse[:, :3, :3] = rotation_t
    inverse[:, :3, 3:] = translation
    inverse[:, 3, 3] = 1.0
    return inverse


def _check_intrinsics(K: torch.Tensor, name: str, batch: int) -> None:
    _check_shape(K, name, "(N, 3, 3)", 3, (3, 3))
    if K.shape[0] != batch:
        raise WarpInputError(f"{name} has batch {K.shape[0]}, the images have {batch}")


def backproject_depth(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W z-depth and N x 3 x 3 inverse intrinsics -> N x H x W x 3 points in the camera.

    A point is ``depth * K^-1 (u, v, 1)`` with u the column and v the row (integer pixel centres).
    Depth is used as given (holes included): callers mask unknown depth.
    """
    _check_shape(depth, "depth", "(N, 1, H, W)", 4)
    if depth.shape[1] != 1:
        raise WarpInputError(f"depth must have one channel (N, 1, H, W), got {tuple(depth.shape)}")
    _check_intrinsics(K_inv, "K_inv", depth.shape[0])
    height, width = depth.shape[-2:]
    pixels = create_meshgrid(height, width, normalized_coordinates=False, device=depth.device, dtype=depth.dtype)
    rays = convert_points_to_homogeneous(pixels) @ K_inv[:, None].transpose(-1, -2)  # N x H x W x 3
    return rays * depth[:, 0, :, :, None]


def project_points(points: torch.Tensor, K: torch.Tensor, T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move N x H x W x 3 points by T (N x 4 x 4) and project them with K (N x 3 x 3).

    Returns (pixels N x H x W x 2 as (u, v), z N x H x W of the moved points). Where z is below
    ``MIN_PROJECTION_DEPTH`` (behind or at the camera) the division uses that minimum so pixels and
    gradients stay finite; such pixels are meaningless and ``z`` tells the caller to mask them.
    """
    _check_shape(points, "points", "(N, H, W, 3)", 4, (3,))
    batch = points.shape[0]
    _check_intrinsics(K, "K", batch)
    _check_shape(T, "T", "(N, 4, 4)", 3, (4, 4))
    if T.shape[0] != batch:
        raise WarpInputError(f"T has batch {T.shape[0]}, the points have {batch}")
    rotation = T[:, None, None, :3, :3]
    translation = T[:, None, None, :3, 3]
    moved = (rotation @ points[..., None])[..., 0] + translation
    z = moved[..., 2]
    camera = (K[:, None, None] @ (moved / z.clamp(min=MIN_PROJECTION_DEPTH)[..., None])[..., None])[..., 0]
    return camera[..., :2], z


def warp_source_to_target(source_image: torch.Tensor, target_depth: torch.Tensor, T_target_to_source: torch.Tensor,
                          K: torch.Tensor, padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from the source image, the target's depth and the relative pose.

    source_image N x C x H x W, target_depth N x 1 x H x W (metres, 0 or NaN where unknown),
    T_target_to_source N x 4 x 4, K N x 3 x 3 (both images share the camera). Returns
    (warped N x C x H x W, valid N x 1 x H x W bool): valid where the target depth is known and
    positive, the point lies in front of the source camera and projects inside the source frame.
    Sampling is bilinear ``grid_sample`` on kornia's pixel normalisation (align_corners=True, the
    integer-pixel-centre convention); invalid pixels hold border samples, never NaN.
    """
    _check_shape(source_image, "source_image", "(N, C, H, W)", 4)
    _check_shape(target_depth, "target_depth", "(N, 1, H, W)", 4)
    if target_depth.shape[0] != source_image.shape[0] or target_depth.shape[-2:] != source_image.shape[-2:]:
        raise WarpInputError(f"target_depth {tuple(target_depth.shape)} must match source_image "
                             f"{tuple(source_image.shape)} in batch, height and width")
    _check_intrinsics(K, "K", source_image.shape[0])
    if padding_mode not in ("border", "zeros", "reflection"):
        raise WarpInputError(f"padding_mode must be 'border', 'zeros' or 'reflection', got {padding_mode!r}")
    height, width = source_image.shape[-2:]
    depth_known = torch.isfinite(target_depth) & (target_depth > 0)
    # Holes get a stand-in depth of 1 so the arithmetic (and its gradient) stays finite; masked below.
    safe_depth = torch.where(depth_known, target_depth, torch.ones_like(target_depth))
    points = backproject_depth(safe_depth, torch.linalg.inv(K))
    pixels, z = project_points(points, K, T_target_to_source)
    grid = normalize_pixel_coordinates(pixels, height, width)
    warped = functional.grid_sample(source_image, grid, mode="bilinear", padding_mode=padding_mode,
                                    align_corners=True)
    u, v = pixels[..., 0], pixels[..., 1]
    inside = (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1) & (z > MIN_PROJECTION_DEPTH)
    valid = depth_known & inside[:, None]
    return warped, valid
