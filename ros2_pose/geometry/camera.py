"""Pinhole camera model built from sensor_msgs/CameraInfo fields (ROS-free).

Conventions (docs/DESIGN.md): camera optical frame z forward, x right, y down; pixel coordinates are
OpenCV's (pixel centres at integer coordinates). ``project``/``backproject`` work on the *raw*
image with K and D, like OpenCV; ``P`` (the rectified image's projection) and ``R`` are carried
through so a CameraInfo survives a round trip, and ``undistorted()`` gives the camera of
``undistort_image``'s output.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

#: Distortion models of sensor_msgs/distortion_models.hpp that OpenCV can apply, with the
#: coefficient counts OpenCV accepts for each (0 = no distortion).
SUPPORTED_DISTORTION_MODELS = {
    "plumb_bob": (0, 4, 5, 8, 12, 14),
    "rational_polynomial": (0, 8, 12, 14),
    "equidistant": (0, 4),
}
# cv2.undistortPoints stops after 5 iterations by default: ~0.1 px error at strong distortion.
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


class InvalidIntrinsicsError(ValueError):
    """CameraInfo fields that cannot describe a calibrated pinhole camera."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def _fmt(values) -> str:
    return np.array2string(np.asarray(values, dtype=np.float64).ravel(), precision=6, separator=", ")


def resize_affine(sx: float, sy: float) -> np.ndarray:
    """2x3 pixel map of cv2.resize by (sx, sy): with pixel centres at integer coordinates,
    u' = sx (u + 0.5) - 0.5 (the principal point moves by 0.5 (sx - 1) besides scaling)."""
    return np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)]])


class CameraModel:
    """Intrinsics (K, D, P, R, size, distortion model) with projection helpers."""

    def __init__(self, K, D=None, width: int | None = None, height: int | None = None, P=None,
                 distortion_model: str = "plumb_bob", R=None):
        self.K = _read_only(self._check_K(K))
        self.width, self.height = self._check_size(width, height)
        self.D = _read_only(self._check_D(D, distortion_model))
        self.distortion_model = distortion_model or "plumb_bob"
        self.P = _read_only(self._check_P(P))
        self.R = _read_only(self._check_R(R))
        self._undistort_maps: tuple[np.ndarray, np.ndarray] | None = None
        self._pixel_rays: np.ndarray | None = None

    # ---------------------------------------------------------------- validation
    @staticmethod
    def _check_K(K) -> np.ndarray:
        matrix = np.asarray(K, dtype=np.float64)
        if matrix.size != 9:
            raise InvalidIntrinsicsError(f"K must have 9 entries (3x3 row-major), got {matrix.size}")
        matrix = matrix.reshape(3, 3)
        if not np.all(np.isfinite(matrix)):
            raise InvalidIntrinsicsError(f"K contains non-finite values: K={_fmt(matrix)}")
        if not np.any(matrix):
            raise InvalidIntrinsicsError(
                "K is all zeros: by CameraInfo's convention the camera is uncalibrated; "
                "calibrate it and publish its intrinsics")
        fx, fy = matrix[0, 0], matrix[1, 1]
        if fx <= 0 or fy <= 0:
            raise InvalidIntrinsicsError(
                f"focal lengths must be > 0, got fx={fx:g}, fy={fy:g} (K={_fmt(matrix)})")
        # OpenCV's distortion functions ignore skew, so a skewed K would project inconsistently.
        if matrix[0, 1] != 0 or matrix[1, 0] != 0 or not np.array_equal(matrix[2], [0.0, 0.0, 1.0]):
            raise InvalidIntrinsicsError(
                f"K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got K={_fmt(matrix)}")
        return matrix

    @staticmethod
    def _check_size(width, height) -> tuple[int, int]:
        if width is None or height is None:
            raise InvalidIntrinsicsError("width and height of the image are required")
        if int(width) != width or int(height) != height or width <= 0 or height <= 0:
            raise InvalidIntrinsicsError(f"image size must be positive integers, got width={width}, height={height}")
        return int(width), int(height)

    @staticmethod
    def _check_D(D, distortion_model: str) -> np.ndarray:
        coefficients = np.zeros(0) if D is None else np.asarray(D, dtype=np.float64).ravel()
        if not np.all(np.isfinite(coefficients)):
            raise InvalidIntrinsicsError(f"distortion coefficients contain non-finite values: D={_fmt(coefficients)}")
        model = distortion_model or "plumb_bob"  # some drivers leave it empty when D is empty
        if model not in SUPPORTED_DISTORTION_MODELS:
            raise InvalidIntrinsicsError(
                f"distortion model {distortion_model!r} is not supported; expected one of "
                f"{sorted(SUPPORTED_DISTORTION_MODELS)}")
        if coefficients.size not in SUPPORTED_DISTORTION_MODELS[model]:
            raise InvalidIntrinsicsError(
                f"{model} needs {SUPPORTED_DISTORTION_MODELS[model]} coefficients, got {coefficients.size}")
        return coefficients

    def _check_P(self, P) -> np.ndarray:
        default = np.hstack([self.K, np.zeros((3, 1))])
        if P is None:
            return default
        matrix = np.asarray(P, dtype=np.float64)
        if matrix.size != 12:
            raise InvalidIntrinsicsError(f"P must have 12 entries (3x4 row-major), got {matrix.size}")
        matrix = matrix.reshape(3, 4)
        if not np.any(matrix):  # CameraInfo leaves P zero for uncalibrated rectification
            return default
        if not np.all(np.isfinite(matrix)) or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            raise InvalidIntrinsicsError(f"P must be finite with positive focal lengths, got P={_fmt(matrix)}")
        return matrix

    @staticmethod
    def _check_R(R) -> np.ndarray:
        if R is None:
            return np.eye(3)
        matrix = np.asarray(R, dtype=np.float64)
        if matrix.size != 9:
            raise InvalidIntrinsicsError(f"R must have 9 entries (3x3 row-major), got {matrix.size}")
        matrix = matrix.reshape(3, 3)
        if not np.any(matrix):
            return np.eye(3)
        if not np.all(np.isfinite(matrix)):
            raise InvalidIntrinsicsError(f"R contains non-finite values: R={_fmt(matrix)}")
        return matrix

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_camera_info(cls, msg: Any) -> "CameraModel":
        """From a sensor_msgs/CameraInfo of rclpy or rosbags (duck-typed: k, d, p, r, width, height,
        distortion_model; array fields may be lists, array.array or numpy arrays)."""
        missing = [name for name in ("k", "d", "width", "height") if not hasattr(msg, name)]
        if missing:
            raise TypeError(f"expected a sensor_msgs/CameraInfo-like message; {type(msg).__name__} lacks {missing}")
        return cls(
            np.asarray(msg.k, dtype=np.float64), np.asarray(msg.d, dtype=np.float64),
            width=int(msg.width), height=int(msg.height),
            P=getattr(msg, "p", None), R=getattr(msg, "r", None),
            distortion_model=str(getattr(msg, "distortion_model", "") or "plumb_bob"),
        )

    def to_camera_info_fields(self) -> dict:
        """Field values for a sensor_msgs/CameraInfo (``CameraInfo(**fields)`` works in rclpy)."""
        return {
            "width": self.width,
            "height": self.height,
            "distortion_model": self.distortion_model,
            "d": [float(value) for value in self.D],
            "k": [float(value) for value in self.K.ravel()],
            "r": [float(value) for value in self.R.ravel()],
            "p": [float(value) for value in self.P.ravel()],
        }

    def undistorted(self) -> "CameraModel":
        """The camera of ``undistort_image``'s output: same K, no distortion."""
        return CameraModel(self.K, None, self.width, self.height, self.P, self.distortion_model, self.R)

    def pinhole_view(self, image: np.ndarray) -> tuple[np.ndarray, "CameraModel"]:
        """(image, camera) as a pinhole camera sees them, what every network here learned: the
        undistorted image and ``undistorted()`` when this camera has distortion, else both as they are."""
        if not self.has_distortion:
            return image, self
        return self.undistort_image(image), self.undistorted()

    def warped(self, affine, width: int, height: int) -> "CameraModel":
        """The camera of ``cv2.warpAffine(image, affine, (width, height))`` for a scale+shift affine.

        Pixels map as u' = A u, so K' = A K and P' = A P; distortion acts before K and is kept.
        Rotating or shearing affines would leave OpenCV's K form and are rejected.
        """
        matrix = np.asarray(affine, dtype=np.float64)
        if matrix.shape not in ((2, 3), (3, 3)) or not np.all(np.isfinite(matrix)):
            raise ValueError(f"affine must be a finite 2x3 or 3x3 matrix, got shape {matrix.shape}")
        matrix = np.vstack([matrix[:2], [0.0, 0.0, 1.0]])
        if matrix[0, 1] != 0 or matrix[1, 0] != 0 or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            raise ValueError(f"affine must be a positive scale plus shift (no rotation/shear/flip), got {_fmt(matrix[:2])}")
        return CameraModel(matrix @ self.K, self.D, width, height, matrix @ self.P, self.distortion_model, self.R)

    def scaled(self, sx: float, sy: float | None = None) -> "CameraModel":
        """Camera of the image resized by (sx, sy) with cv2.resize (size rounded to whole pixels)."""
        sy = sx if sy is None else sy
        if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
            raise ValueError(f"scale factors must be finite and > 0, got sx={sx}, sy={sy}")
        return self.warped(resize_affine(sx, sy), max(1, round(self.width * sx)), max(1, round(self.height * sy)))

    def resized(self, width: int, height: int) -> "CameraModel":
        """Camera of ``cv2.resize(image, (width, height))``: factors width/self.width, height/self.height."""
        width, height = self._check_size(width, height)
        return self.warped(resize_affine(width / self.width, height / self.height), width, height)

    # ---------------------------------------------------------------- properties
    fx = property(lambda self: float(self.K[0, 0]))
    fy = property(lambda self: float(self.K[1, 1]))
    cx = property(lambda self: float(self.K[0, 2]))
    cy = property(lambda self: float(self.K[1, 2]))

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.D != 0))

    @property
    def is_fisheye(self) -> bool:
        return self.distortion_model == "equidistant"

    def __repr__(self) -> str:
        return (f"CameraModel({self.width}x{self.height}, fx={self.fx:.3f}, fy={self.fy:.3f}, cx={self.cx:.3f}, "
                f"cy={self.cy:.3f}, {self.distortion_model} D={_fmt(self.D)})")

    # ---------------------------------------------------------------- projection
    def project(self, points_camera) -> np.ndarray:
        """(N, 3) points in the optical frame -> (N, 2) raw-image pixels; NaN where z <= 0 or non-finite.

        With plumb_bob distortion, points far outside the calibrated field of view can fold back
        into the image (the radial polynomial is not monotonic there); callers check visibility.
        """
        points = np.asarray(points_camera, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {points.shape}")
        pixels = np.full((len(points), 2), np.nan)
        valid = np.all(np.isfinite(points), axis=1) & (points[:, 2] > 0)
        if not np.any(valid):
            return pixels
        visible = points[valid]
        if not self.has_distortion:
            homogeneous = visible @ self.K.T
            pixels[valid] = homogeneous[:, :2] / homogeneous[:, 2:]
        elif self.is_fisheye:
            projected, _ = cv2.fisheye.projectPoints(visible.reshape(1, -1, 3), np.zeros(3), np.zeros(3), self.K, self.D)
            pixels[valid] = projected.reshape(-1, 2)
        else:
            projected, _ = cv2.projectPoints(visible.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), self.K, self.D)
            pixels[valid] = projected.reshape(-1, 2)
        return pixels

    def normalized_coordinates(self, pixels) -> np.ndarray:
        """(N, 2) raw-image pixels -> (N, 2) undistorted normalised coordinates (x/z, y/z)."""
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.ndim != 2 or pixels.shape[1] != 2:
            raise ValueError(f"pixels must have shape (N, 2), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, 2))
        if not self.has_distortion:
            return np.stack([(pixels[:, 0] - self.cx) / self.fx, (pixels[:, 1] - self.cy) / self.fy], axis=1)
        source = pixels.reshape(-1, 1, 2)
        if self.is_fisheye:
            normalized = cv2.fisheye.undistortPoints(source, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
        else:
            normalized = cv2.undistortPoints(source, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
        return normalized.reshape(-1, 2)

    def undistort_points(self, pixels) -> np.ndarray:
        """(N, 2) raw-image pixels -> (N, 2) pixels of the undistorted image (``undistorted()``'s camera)."""
        normalized = self.normalized_coordinates(pixels)
        homogeneous = np.hstack([normalized, np.ones((len(normalized), 1))]) @ self.K.T
        return homogeneous[:, :2]

    def backproject(self, pixels, depth) -> np.ndarray:
        """(N, 2) raw-image pixels and z-depth (N,) or scalar in metres -> (N, 3) optical-frame points.

        Depth is the z coordinate (as in depth images), not the ray length. Depth <= 0 or NaN
        (unknown, DESIGN.md) gives NaN points.
        """
        normalized = self.normalized_coordinates(pixels)
        z = np.broadcast_to(np.asarray(depth, dtype=np.float64), (len(normalized),))
        points = np.hstack([normalized * z[:, None], z[:, None]])
        points[~(np.isfinite(z) & (z > 0))] = np.nan
        return points

    def depth_to_points(self, depth) -> np.ndarray:
        """HxW depth image (metres, 0/NaN unknown) -> HxWx3 float32 optical-frame points (NaN unknown)."""
        depth = np.asarray(depth)
        if depth.shape != (self.height, self.width):
            raise ValueError(f"depth image must be {self.height}x{self.width} (the camera's size), got {depth.shape}")
        if self._pixel_rays is None:  # undistorting every pixel is costly; the rays never change
            u, v = np.meshgrid(np.arange(self.width, dtype=np.float64), np.arange(self.height, dtype=np.float64))
            normalized = self.normalized_coordinates(np.stack([u.ravel(), v.ravel()], axis=1))
            rays = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1)
            self._pixel_rays = rays.reshape(self.height, self.width, 3).astype(np.float32)
        z = depth.astype(np.float32, copy=False)
        points = self._pixel_rays * z[..., None]
        points[~(np.isfinite(z) & (z > 0))] = np.nan
        return points

    def undistort_image(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Raw image -> undistorted image seen by ``undistorted()``; returned as-is without distortion.

        The remap tables are built on first use and cached in OpenCV's fixed-point form (1/32 px,
        ~2x faster remap); use ``cv2.INTER_NEAREST`` for label or
        depth images.
        """
        image = np.asarray(image)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"image must be {self.height}x{self.width} (the camera's size), got {image.shape[:2]}")
        if not self.has_distortion:
            return image
        if self._undistort_maps is None:
            size = (self.width, self.height)
            if self.is_fisheye:
                maps = cv2.fisheye.initUndistortRectifyMap(self.K, self.D, np.eye(3), self.K, size, cv2.CV_16SC2)
            else:
                maps = cv2.initUndistortRectifyMap(self.K, self.D, None, self.K, size, cv2.CV_16SC2)
            self._undistort_maps = maps
        map_x, map_y = self._undistort_maps
        return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
