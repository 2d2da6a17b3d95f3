"""Rigid transforms, quaternion conventions and rotation representations (ROS-free).

Conventions (docs/DESIGN.md):
- ``RigidTransform(rotation, translation)`` maps points of the child frame into the parent frame:
  ``p_parent = R @ p_child + t``. ``T_a_c = T_a_b @ T_b_c``.
- ROS messages carry quaternions as (x, y, z, w); transforms3d uses (w, x, y, z). This module is
  the one place where the two meet; every quaternion returned here has w >= 0.
"""
from __future__ import annotations

import functools
import math

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import transforms3d.quaternions as t3d_quaternions

if TYPE_CHECKING:  # torch is imported lazily: the geometry core must not pay for it.
    import torch

#: Largest |R^T R - I| entry and |det R - 1| accepted as a rotation. Float32 network outputs
#: that went through Gram-Schmidt are orthonormal to ~1e-6; anything worse is a bug upstream.
ROTATION_TOLERANCE = 1e-5
#: Quaternions shorter than this cannot be normalised into a meaningful rotation.
_MIN_QUATERNION_NORM = 1e-9
#: Gram-Schmidt needs two independent columns; shorter/more collinear vectors are rejected.
_MIN_GRAM_SCHMIDT_NORM = 1e-9


def _as_float_array(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


def check_rotation_matrix(rotation, tolerance: float = ROTATION_TOLERANCE, name: str = "rotation") -> np.ndarray:
    """Return ``rotation`` as a float64 3x3 array, or raise ValueError if it is not a rotation."""
    matrix = _as_float_array(rotation, (3, 3), name)
    orthogonality_error = float(np.max(np.abs(matrix.T @ matrix - np.eye(3))))
    if orthogonality_error > tolerance:
        raise ValueError(
            f"{name} is not orthonormal: max |R^T R - I| = {orthogonality_error:.3g} > {tolerance:g}"
        )
    determinant = float(np.linalg.det(matrix))
    if abs(determinant - 1.0) > tolerance:
        raise ValueError(f"{name} must have determinant +1 (a proper rotation), got {determinant:.6g}")
    return matrix


# --------------------------------------------------------------------------------------------
# Quaternions: the one conversion between ROS (x, y, z, w) and transforms3d (w, x, y, z)
# --------------------------------------------------------------------------------------------

def quat_xyzw_to_wxyz(quat_xyzw) -> np.ndarray:
    """Reorder a quaternion (or an (..., 4) batch) from ROS (x, y, z, w) to (w, x, y, z)."""
    quat = np.asarray(quat_xyzw, dtype=np.float64)
    if quat.shape[-1:] != (4,):
        raise ValueError(f"quaternion must have 4 components (x, y, z, w), got shape {quat.shape}")
    return quat[..., [3, 0, 1, 2]]


def quat_wxyz_to_xyzw(quat_wxyz) -> np.ndarray:
    """Reorder a quaternion (or an (..., 4) batch) from (w, x, y, z) to ROS (x, y, z, w)."""
    quat = np.asarray(quat_wxyz, dtype=np.float64)
    if quat.shape[-1:] != (4,):
        raise ValueError(f"quaternion must have 4 components (w, x, y, z), got shape {quat.shape}")
    return quat[..., [1, 2, 3, 0]]


def quat_xyzw_from_matrix(rotation) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a 3x3 rotation matrix."""
    return _quat_xyzw_of_valid_rotation(check_rotation_matrix(rotation))


def _quat_xyzw_of_valid_rotation(matrix: np.ndarray) -> np.ndarray:
    """`quat_xyzw_from_matrix` for a float64 matrix already checked to be a rotation.

    Shepperd's closed form on Python floats, written out because it runs for every published pose:
    transforms3d's mat2quat solves a 4x4 eigenproblem (~40 us warm, ~0.3 ms with the caches cold
    between two network runs). The largest of w, x, y, z is taken from the diagonal, so no division
    is ill-conditioned. For a rotation checked to ROTATION_TOLERANCE both give the same quaternion
    to ~1e-6 (test_transforms compares them)."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = matrix.tolist()
    trace = r00 + r11 + r22
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s
    elif r00 >= r11 and r00 >= r22:
        s = 2.0 * math.sqrt(1.0 + r00 - r11 - r22)
        w, x, y, z = (r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s
    elif r11 >= r22:
        s = 2.0 * math.sqrt(1.0 + r11 - r00 - r22)
        w, x, y, z = (r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s
    else:
        s = 2.0 * math.sqrt(1.0 + r22 - r00 - r11)
        w, x, y, z = (r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if w < 0.0:  # q and -q are the same rotation; pick one so outputs are comparable
        norm = -norm
    return np.array([x / norm, y / norm, z / norm, w / norm])


def matrix_from_quat_xyzw(quat_xyzw) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); the quaternion is normalised first.

    Raises ValueError for non-finite or (near) zero-norm quaternions: transforms3d silently returns
    the identity for those, which would turn a broken message into a plausible pose.
    """
    quat = _as_float_array(quat_xyzw, (4,), "quaternion (x, y, z, w)")
    norm = float(np.linalg.norm(quat))
    if norm < _MIN_QUATERNION_NORM:
        raise ValueError(f"quaternion (x, y, z, w) {quat.tolist()} has zero norm; expected a unit quaternion")
    return t3d_quaternions.quat2mat(quat_xyzw_to_wxyz(quat / norm))


# --------------------------------------------------------------------------------------------
# Rigid transforms
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class RigidTransform:
    """A proper rigid transform mapping child-frame points into the parent frame.

    ``p_parent = rotation @ p_child + translation``. Immutable: arrays are read-only float64 copies.
    """

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self):
        rotation = check_rotation_matrix(self.rotation).copy()
        translation = _as_float_array(self.translation, (3,), "translation").copy()
        rotation.setflags(write=False)
        translation.setflags(write=False)
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @classmethod
    def identity(cls) -> "RigidTransform":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_matrix(cls, matrix) -> "RigidTransform":
        """From a 4x4 homogeneous matrix whose last row must be (0, 0, 0, 1)."""
        homogeneous = _as_float_array(matrix, (4, 4), "homogeneous matrix")
        if not np.allclose(homogeneous[3], [0.0, 0.0, 0.0, 1.0], atol=ROTATION_TOLERANCE):
            raise ValueError(f"last row of a rigid 4x4 matrix must be (0, 0, 0, 1), got {homogeneous[3].tolist()}")
        return cls(homogeneous[:3, :3], homogeneous[:3, 3])

    @classmethod
    def from_quat_xyzw(cls, quat_xyzw, translation) -> "RigidTransform":
        return cls(matrix_from_quat_xyzw(quat_xyzw), translation)

    def as_matrix(self) -> np.ndarray:
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.translation
        return matrix

    @functools.cached_property
    def quat_xyzw(self) -> np.ndarray:
        """(x, y, z, w), computed once per transform: a node publishes the same pose as a
        PoseStamped and as TF, and the conversion (an eigen-decomposition) is most of a message's
        cost. The rotation was validated at construction (so not again here); the cached array is
        read-only."""
        quat = _quat_xyzw_of_valid_rotation(self.rotation)
        quat.setflags(write=False)
        return quat

    def compose(self, other: "RigidTransform") -> "RigidTransform":
        """``T_a_b.compose(T_b_c) == T_a_c`` (apply ``other`` first, then ``self``)."""
        if not isinstance(other, RigidTransform):
            raise TypeError(f"can only compose with a RigidTransform, got {type(other).__name__}")
        return RigidTransform(self.rotation @ other.rotation, self.rotation @ other.translation + self.translation)

    def __matmul__(self, other: "RigidTransform") -> "RigidTransform":
        if not isinstance(other, RigidTransform):
            return NotImplemented
        return self.compose(other)

    def inverse(self) -> "RigidTransform":
        rotation_t = self.rotation.T
        return RigidTransform(rotation_t, -rotation_t @ self.translation)

    def apply(self, points) -> np.ndarray:
        """Map (N, 3) points (or one (3,) point) from the child frame into the parent frame."""
        array = np.asarray(points, dtype=np.float64)
        if array.shape[-1:] != (3,) or array.ndim not in (1, 2):
            raise ValueError(f"points must have shape (N, 3) or (3,), got {array.shape}")
        return array @ self.rotation.T + self.translation

    def allclose(self, other: "RigidTransform", rotation_atol: float = 1e-9, translation_atol: float = 1e-9) -> bool:
        return bool(
            np.allclose(self.rotation, other.rotation, atol=rotation_atol)
            and np.allclose(self.translation, other.translation, atol=translation_atol)
        )

    def __repr__(self) -> str:
        quat = np.round(self.quat_xyzw, 6).tolist()
        return f"RigidTransform(quat_xyzw={quat}, translation={np.round(self.translation, 6).tolist()})"


# --------------------------------------------------------------------------------------------
# Errors between rotations / translations
# --------------------------------------------------------------------------------------------

def rotation_error_deg(rotation_a, rotation_b) -> np.ndarray | float:
    """Geodesic angle in degrees between rotations; (3, 3) -> float, (..., 3, 3) -> (...) array.

    Uses atan2(|sin|, cos) of the relative rotation instead of arccos(trace): arccos loses half of
    the digits near 0 degrees, exactly where good estimates live.
    """
    a = np.asarray(rotation_a, dtype=np.float64)
    b = np.asarray(rotation_b, dtype=np.float64)
    if a.shape[-2:] != (3, 3) or b.shape[-2:] != (3, 3):
        raise ValueError(f"rotations must have shape (..., 3, 3), got {a.shape} and {b.shape}")
    relative = np.swapaxes(a, -1, -2) @ b
    cos_angle = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = relative - np.swapaxes(relative, -1, -2)
    sin_angle = np.linalg.norm(np.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], axis=-1), axis=-1) / 2.0
    angle = np.degrees(np.arctan2(sin_angle, cos_angle))
    return float(angle) if np.ndim(angle) == 0 else angle


def translation_error(translation_a, translation_b) -> np.ndarray | float:
    """Euclidean distance between translations; (3,) -> float, (..., 3) -> (...) array."""
    a = np.asarray(translation_a, dtype=np.float64)
    b = np.asarray(translation_b, dtype=np.float64)
    if a.shape[-1:] != (3,) or b.shape[-1:] != (3,):
        raise ValueError(f"translations must have shape (..., 3), got {a.shape} and {b.shape}")
    distance = np.linalg.norm(a - b, axis=-1)
    return float(distance) if np.ndim(distance) == 0 else distance


# --------------------------------------------------------------------------------------------
# Continuous 6D rotation representation (Zhou et al., CVPR 2019)
# Layout: x6 = (first column of R, second column of R). No library ships a numpy version with
# this layout and error checking, so the few lines of Gram-Schmidt are written here.
# --------------------------------------------------------------------------------------------

def rotation_6d_from_matrix(rotation) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 6): the first two columns, concatenated."""
    matrix = np.asarray(rotation, dtype=np.float64)
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"rotation must have shape (..., 3, 3), got {matrix.shape}")
    return np.concatenate([matrix[..., :, 0], matrix[..., :, 1]], axis=-1)


def matrix_from_rotation_6d(rotation_6d) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) rotation by Gram-Schmidt; ValueError for degenerate inputs."""
    x6 = np.asarray(rotation_6d, dtype=np.float64)
    if x6.shape[-1:] != (6,):
        raise ValueError(f"6D rotation must have shape (..., 6), got {x6.shape}")
    if not np.all(np.isfinite(x6)):
        raise ValueError("6D rotation contains non-finite values")
    a1, a2 = x6[..., :3], x6[..., 3:]
    norm1 = np.linalg.norm(a1, axis=-1, keepdims=True)
    if np.any(norm1 < _MIN_GRAM_SCHMIDT_NORM):
        raise ValueError("6D rotation has a zero first column; cannot orthonormalise")
    b1 = a1 / norm1
    a2_orthogonal = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    norm2 = np.linalg.norm(a2_orthogonal, axis=-1, keepdims=True)
    if np.any(norm2 < _MIN_GRAM_SCHMIDT_NORM):
        raise ValueError("6D rotation has collinear (or zero) columns; cannot orthonormalise")
    b2 = a2_orthogonal / norm2
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def rotation_6d_from_matrix_torch(rotation: "torch.Tensor") -> "torch.Tensor":
    """Torch version of :func:`rotation_6d_from_matrix` (same layout), (..., 3, 3) -> (..., 6)."""
    import torch

    if rotation.shape[-2:] != (3, 3):
        raise ValueError(f"rotation must have shape (..., 3, 3), got {tuple(rotation.shape)}")
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], dim=-1)


def matrix_from_rotation_6d_torch(rotation_6d: "torch.Tensor", eps: float = 1e-8) -> "torch.Tensor":
    """Batched, differentiable (..., 6) -> (..., 3, 3) rotation for network heads.

    Unlike the numpy version it cannot raise per sample inside a training step; ``eps`` keeps the
    normalisation (and its gradient) finite for a degenerate output instead.
    """
    import torch
    import torch.nn.functional as functional

    if rotation_6d.shape[-1] != 6:
        raise ValueError(f"6D rotation must have shape (..., 6), got {tuple(rotation_6d.shape)}")
    a1, a2 = rotation_6d[..., :3], rotation_6d[..., 3:]
    b1 = functional.normalize(a1, dim=-1, eps=eps)
    b2 = functional.normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1, dim=-1, eps=eps)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


# --------------------------------------------------------------------------------------------
# Axis-angle (Rodrigues vectors, as used by OpenCV's PnP and SE(3) ego-motion heads)
# --------------------------------------------------------------------------------------------

def axis_angle_to_matrix(rotation_vector) -> np.ndarray:
    """Rodrigues vector (3,) -> (3, 3), or (N, 3) -> (N, 3, 3). Angle = norm, radians."""
    vectors = np.asarray(rotation_vector, dtype=np.float64)
    if vectors.shape[-1:] != (3,) or vectors.ndim not in (1, 2):
        raise ValueError(f"rotation vector must have shape (3,) or (N, 3), got {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError(f"rotation vector must be finite, got {vectors.tolist()}")
    if vectors.ndim == 1:
        return cv2.Rodrigues(vectors.reshape(3, 1))[0]
    return np.stack([cv2.Rodrigues(vector.reshape(3, 1))[0] for vector in vectors]) if len(vectors) else np.zeros((0, 3, 3))


def matrix_to_axis_angle(rotation) -> np.ndarray:
    """(3, 3) rotation -> Rodrigues vector (3,)."""
    matrix = check_rotation_matrix(rotation)
    return cv2.Rodrigues(matrix)[0].reshape(3)


def rigid_from_axis_angle_translation(rotation_vector, translation) -> RigidTransform:
    """RigidTransform from a Rodrigues vector and a translation (OpenCV's rvec/tvec pair)."""
    return RigidTransform(axis_angle_to_matrix(np.asarray(rotation_vector, dtype=np.float64).reshape(3)), translation)
