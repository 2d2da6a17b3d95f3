"""Pose from 2D-3D keypoint correspondences (Perspective-n-Point) with OpenCV, failing loudly.

`solve_pnp` drops keypoints below a confidence threshold, refuses too few or degenerate points, runs
one of OpenCV's solvers (optionally inside RANSAC), polishes with Levenberg-Marquardt
(cv2.solvePnPRefineLM) and checks the answer (finite, object in front of the camera). Whatever goes
wrong comes back as `PnPResult(success=False, reason=...)`; a result never holds a NaN pose.
Programming errors (wrong shapes, non-finite inputs) raise PnPInputError instead.

The pose is `T_camera_object` (DESIGN.md): p_camera = R @ p_object + t.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix, matrix_to_axis_angle

METHODS = {"sqpnp": cv2.SOLVEPNP_SQPNP, "epnp": cv2.SOLVEPNP_EPNP, "iterative": cv2.SOLVEPNP_ITERATIVE}
# Fewest correspondences each method is given. OpenCV's SQPnP runs on 3, but 3 points have up to
# four exact poses (P3P ambiguity), so one of them would be a coin toss; EPnP needs 4; the
# iterative solver initialises with a DLT that needs 6 non-planar points (4 with an initial pose).
MIN_POINTS = {"sqpnp": 4, "epnp": 4, "iterative": 6}
MIN_POINTS_WITH_INITIAL_POSE = 4
# Relative size of the second singular value of the centred points below which they are a line.
_DEGENERATE_RATIO = 1e-6
_LM_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-12)


class PnPInputError(ValueError):
    """Correspondences or camera with the wrong shape or non-finite values."""


@dataclass(frozen=True)
class PnPResult:
    """Outcome of `solve_pnp`. On success `pose` is T_camera_object; on failure it is None and
    `reason` says why. `inliers` indexes the input points used in the final fit."""

    success: bool
    pose: RigidTransform | None = None
    reason: str = ""
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    reprojection_rmse_px: float | None = None
    method: str = ""

    @property
    def rotation_vector(self) -> np.ndarray:
        if self.pose is None:
            raise ValueError(f"PnP failed ({self.reason}); there is no pose")
        return matrix_to_axis_angle(self.pose.rotation)


def _failure(reason: str, method: str) -> PnPResult:
    return PnPResult(success=False, reason=reason, method=method)


def intrinsics_and_distortion(camera) -> tuple[np.ndarray, np.ndarray | None]:
    """(K, D) from a CameraModel or a 3x3 K matrix (no distortion). Fisheye models are refused:
    OpenCV's PnP solvers take plumb_bob coefficients only."""
    if isinstance(camera, CameraModel):
        if camera.is_fisheye:
            raise PnPInputError("PnP needs pinhole or plumb_bob pixels; undistort fisheye keypoints first "
                                "(CameraModel.undistort_points) and pass camera.undistorted()")
        return camera.K, (camera.D if camera.has_distortion else None)
    K = np.asarray(camera, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise PnPInputError(f"camera must be a CameraModel or a finite 3x3 K with positive focal lengths, got {K.tolist()}")
    return K, None


def is_collinear(points: np.ndarray) -> np.ndarray:
    """(..., N, D) points -> (...) bool: collinear or coincident (one batched SVD for a batch)."""
    centred = points - points.mean(axis=-2, keepdims=True)
    singular = np.linalg.svd(centred, compute_uv=False)
    return (singular[..., 0] == 0) | (singular[..., 1] < _DEGENERATE_RATIO * singular[..., 0])


def refine_lm(object_points, image_points, K, D, rvec, tvec) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt polish of a pose on the reprojection error (OpenCV), run to convergence."""
    return cv2.solvePnPRefineLM(object_points, image_points, K, D, rvec, tvec, criteria=_LM_CRITERIA)


def _check_inputs(object_points, image_points, confidence):
    object_points = np.asarray(object_points, dtype=np.float64)
    image_points = np.asarray(image_points, dtype=np.float64)
    if object_points.ndim != 2 or object_points.shape[1] != 3:
        raise PnPInputError(f"object_points must have shape (N, 3), got {object_points.shape}")
    if image_points.shape != (len(object_points), 2):
        raise PnPInputError(f"image_points must have shape ({len(object_points)}, 2) to match object_points, "
                            f"got {image_points.shape}")
    if not np.all(np.isfinite(object_points)):
        raise PnPInputError("object_points contain non-finite values")
    if confidence is None:
        confidence = np.ones(len(object_points))
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.shape != (len(object_points),):
        raise PnPInputError(f"confidence must have shape ({len(object_points)},), got {confidence.shape}")
    # A non-finite image point (e.g. a keypoint projected behind a camera) is unusable, not an
    # error in the call: it is dropped like a low-confidence one.
    usable = np.all(np.isfinite(image_points), axis=1) & np.isfinite(confidence)
    return object_points, image_points, confidence, usable


def solve_pnp(object_points, image_points, camera, confidence=None, confidence_threshold: float = 0.0,
              method: str = "sqpnp", ransac: bool = False, ransac_reprojection_px: float = 3.0,
              ransac_iterations: int = 200, ransac_confidence: float = 0.999, refine: bool = True,
              min_points: int | None = None, initial_pose: RigidTransform | None = None,
              seed: int | None = 0) -> PnPResult:
    """T_camera_object from (N, 3) object points and their (N, 2) pixels in `camera` (CameraModel or K).

    Keypoints with `confidence` (N,) below `confidence_threshold` are dropped first. `method` is
    "sqpnp" (default: globally optimal, no initialisation), "epnp" or "iterative" (LM from a DLT or
    from `initial_pose`). With `ransac`, points reprojecting further than `ransac_reprojection_px`
    from the hypothesis are outliers and the final fit uses the inliers only. `refine` polishes the
    pose with cv2.solvePnPRefineLM on the points used. `seed` fixes cv2's RNG so RANSAC is repeatable.
    """
    if method not in METHODS:
        raise PnPInputError(f"unknown PnP method {method!r}; expected one of {sorted(METHODS)}")
    object_points, image_points, confidence, usable = _check_inputs(object_points, image_points, confidence)
    K, D = intrinsics_and_distortion(camera)
    required = MIN_POINTS[method]
    if method == "iterative" and initial_pose is not None:
        required = MIN_POINTS_WITH_INITIAL_POSE
    required = max(required, min_points or 0)

    keep = np.flatnonzero(usable & (confidence >= confidence_threshold))
    if len(keep) < required:
        return _failure(f"{len(keep)} keypoints with confidence >= {confidence_threshold} (of {len(object_points)}); "
                        f"{method} needs at least {required}", method)
    obj, img = object_points[keep], image_points[keep]
    if is_collinear(obj):
        return _failure("degenerate configuration: the confident 3D points are collinear or coincident", method)
    if is_collinear(img):
        return _failure("degenerate configuration: the confident image points are collinear or coincident", method)

    use_guess = initial_pose is not None
    rvec0 = matrix_to_axis_angle(initial_pose.rotation).reshape(3, 1) if use_guess else np.zeros((3, 1))
    tvec0 = np.asarray(initial_pose.translation, dtype=np.float64).reshape(3, 1) if use_guess else np.zeros((3, 1))
    try:
        if ransac:
            if seed is not None:
                cv2.setRNGSeed(seed)
            ok, rvec, tvec, inliers = cv2.solvePnPRansac(
                obj, img, K, D, rvec0.copy(), tvec0.copy(), useExtrinsicGuess=use_guess,
                iterationsCount=ransac_iterations, reprojectionError=ransac_reprojection_px,
                confidence=ransac_confidence, flags=METHODS[method])
            if not ok or inliers is None or len(inliers) < required:
                found = 0 if inliers is None else len(inliers)
                return _failure(f"RANSAC found {found} inliers within {ransac_reprojection_px} px; "
                                f"{method} needs at least {required}", method)
            used = np.sort(inliers.ravel())
        else:
            ok, rvec, tvec = cv2.solvePnP(obj, img, K, D, rvec0.copy(), tvec0.copy(),
                                          useExtrinsicGuess=use_guess and method == "iterative",
                                          flags=METHODS[method])
            if not ok:
                return _failure(f"OpenCV {method} found no solution", method)
            used = np.arange(len(obj))
        if not (np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec))):
            return _failure(f"OpenCV {method} returned a non-finite pose", method)
        if refine:
            rvec, tvec = refine_lm(obj[used], img[used], K, D, rvec, tvec)
    except cv2.error as exc:
        return _failure(f"OpenCV {method} raised: {str(exc).strip().splitlines()[-1]}", method)

    rvec, tvec = rvec.reshape(3), tvec.reshape(3)
    if not (np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec))):
        return _failure("LM refinement diverged to a non-finite pose", method)
    rotation = axis_angle_to_matrix(rvec)
    depths = (obj[used] @ rotation.T + tvec)[:, 2]
    if np.any(depths <= 0):
        return _failure(f"the solution puts {int(np.sum(depths <= 0))} of the points behind the camera", method)
    projected, _ = cv2.projectPoints(obj[used], rvec, tvec, K, D)
    rmse = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - img[used]) ** 2, axis=1))))
    return PnPResult(success=True, pose=RigidTransform(rotation, tvec), inliers=keep[used],
                     reprojection_rmse_px=rmse, method=method)
