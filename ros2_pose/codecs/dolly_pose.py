"""Targets and decoding of the dolly pose network's outputs (numpy only, no torch).

The network (ros2_pose.models.dolly_pose) predicts, per 128x128 crop:
- an allocentric rotation (relative to the ray through the crop's centre): a crop shows the dolly as
  seen along that ray, so the same appearance anywhere in the image means the same allocentric
  rotation; `camera_rotation_from_allocentric` turns it into the camera frame;
- where the dolly frame's origin projects in the crop, in crop pixels / 128 (`center_crop_target`);
- log(z * 128 / fx_crop): depth normalised by the crop's virtual focal length, close to the dolly's
  metric size whatever its distance (`depth_ratio_target`, lifted back by `translation_from_prediction`).

Kept apart from the network so that nodes and evaluation decode without importing torch.
"""
from __future__ import annotations

import numpy as np

CROP_SIZE = 128
MASK_SIZE = 32


def crop_ray_rotation(K_crop: np.ndarray) -> np.ndarray:
    """N x 3 x 3 rotations taking the optical axis (0, 0, 1) onto the ray through each crop's centre.

    The smallest such rotation (about the axis z x ray), so a centred crop gives the identity.
    """
    K_crop = np.asarray(K_crop, dtype=np.float64).reshape(-1, 3, 3)
    centre = (CROP_SIZE - 1) / 2.0
    rays = np.linalg.solve(K_crop, np.broadcast_to([centre, centre, 1.0], (len(K_crop), 3))[..., None])[..., 0]
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, rays)
    sin = np.linalg.norm(axis, axis=1)
    cos = rays @ z
    rotations = np.tile(np.eye(3), (len(rays), 1, 1))
    moving = sin > 1e-12
    k = axis[moving] / sin[moving, None]
    # Rodrigues: R = I + sin K + (1 - cos) K^2 for the unit axis k.
    K = np.zeros((len(k), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    rotations[moving] += sin[moving, None, None] * K + (1 - cos[moving, None, None]) * (K @ K)
    return rotations


def allocentric_from_camera_rotation(R_camera: np.ndarray, K_crop: np.ndarray) -> np.ndarray:
    """The network's rotation target: R_allo = R_ray^T @ R_camera."""
    R_ray = crop_ray_rotation(K_crop)
    return np.einsum("nji,njk->nik", R_ray, np.asarray(R_camera, dtype=np.float64).reshape(-1, 3, 3))


def camera_rotation_from_allocentric(R_allo: np.ndarray, K_crop: np.ndarray) -> np.ndarray:
    """The camera-frame rotation from the network's allocentric one: R_camera = R_ray @ R_allo."""
    return crop_ray_rotation(K_crop) @ np.asarray(R_allo, dtype=np.float64).reshape(-1, 3, 3)


def depth_ratio_target(translation_z: np.ndarray, fx_crop: np.ndarray) -> np.ndarray:
    """The `log_depth_ratio` target for a dolly at depth z seen through a crop of focal fx_crop."""
    return np.log(np.asarray(translation_z) * CROP_SIZE / np.asarray(fx_crop))


def translation_from_prediction(center_crop: np.ndarray, log_depth_ratio: np.ndarray,
                                K_crop: np.ndarray) -> np.ndarray:
    """Lift (centre in crop/128, log depth ratio) to a camera-frame translation (N x 3, metres).

    K_crop is the crop's virtual camera (N x 3 x 3 or 3 x 3): K_crop = A @ K for the image->crop
    affine A, so a pixel of the crop back-projects exactly like a pixel of the image.
    """
    center = np.asarray(center_crop, dtype=np.float64).reshape(-1, 2) * CROP_SIZE
    K_crop = np.broadcast_to(np.asarray(K_crop, dtype=np.float64), (center.shape[0], 3, 3))
    z = np.exp(np.asarray(log_depth_ratio, dtype=np.float64).reshape(-1)) * K_crop[:, 0, 0] / CROP_SIZE
    x = (center[:, 0] - K_crop[:, 0, 2]) / K_crop[:, 0, 0] * z
    y = (center[:, 1] - K_crop[:, 1, 2]) / K_crop[:, 1, 1] * z
    return np.stack([x, y, z], axis=1)


def center_crop_target(translation: np.ndarray, K_crop: np.ndarray) -> np.ndarray:
    """Where the camera-frame point `translation` (N x 3) projects in the crop, in crop pixels / 128."""
    t = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    K_crop = np.broadcast_to(np.asarray(K_crop, dtype=np.float64), (t.shape[0], 3, 3))
    uvw = np.einsum("nij,nj->ni", K_crop, t)
    return uvw[:, :2] / uvw[:, 2:3] / CROP_SIZE
