"""Region-of-interest crops: a 2D box -> a square S x S network input with black padding (ROS-free).

Pixel convention (docs/DESIGN.md): OpenCV's, pixel centres at integer coordinates, so pixel (i, j)
covers [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]. A box (x_min, y_min, x_max, y_max) is a continuous
region in those coordinates; the image itself spans (-0.5, -0.5, W - 0.5, H - 0.5).

The crop maps the box's centre to the crop's centre and its longer side onto the crop's full
extent [-0.5, S - 0.5]; the shorter side keeps the aspect ratio and the crop rows/columns beyond it
are black. Crop pixels that fall outside the image are black too (cv2.BORDER_CONSTANT 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ros2_pose.geometry.camera import CameraModel

DEFAULT_CROP_SIZE = 128


@dataclass(frozen=True)
class RoiCrop:
    """Square crop of ``size`` pixels around ``box`` (the box after margin; image pixels)."""

    box: tuple[float, float, float, float]
    size: int = DEFAULT_CROP_SIZE

    def __post_init__(self):
        box = np.asarray(self.box, dtype=np.float64)
        if box.shape != (4,):
            raise ValueError(f"box must be (x_min, y_min, x_max, y_max), got shape {box.shape}")
        if not np.all(np.isfinite(box)):
            raise ValueError(f"box must be finite, got {box.tolist()}")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"box must have positive width and height (x_max > x_min, y_max > y_min), got {box.tolist()}")
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"crop size must be a positive integer, got {self.size}")
        object.__setattr__(self, "box", tuple(float(value) for value in box))
        object.__setattr__(self, "size", int(self.size))

    @classmethod
    def from_box(cls, box, size: int = DEFAULT_CROP_SIZE, margin: float = 0.0) -> "RoiCrop":
        """Crop around ``box`` grown by ``margin`` x its width (height) on the left and right (top
        and bottom): margin 0.1 turns a 100 px wide box into a 120 px wide one, same centre."""
        if not np.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be finite and >= 0, got {margin}")
        coordinates = np.asarray(box, dtype=np.float64)
        if coordinates.shape != (4,):
            raise ValueError(f"box must be (x_min, y_min, x_max, y_max), got shape {coordinates.shape}")
        x_min, y_min, x_max, y_max = cls(tuple(coordinates), size).box  # validated before growing
        grow_x, grow_y = margin * (x_max - x_min), margin * (y_max - y_min)
        return cls((x_min - grow_x, y_min - grow_y, x_max + grow_x, y_max + grow_y), size)

    @classmethod
    def whole_image(cls, width: int, height: int, size: int) -> "RoiCrop":
        """The letterbox: the whole image (pixel edges -0.5 .. W-0.5, -0.5 .. H-0.5) into a size x
        size square, black bars on the short side (e.g. a detector's input)."""
        return cls((-0.5, -0.5, width - 0.5, height - 0.5), size)

    # ---------------------------------------------------------------- the affine map
    @property
    def box_center(self) -> np.ndarray:
        x_min, y_min, x_max, y_max = self.box
        return np.array([(x_min + x_max) / 2.0, (y_min + y_max) / 2.0])

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel (the box's longer side maps to ``size``)."""
        x_min, y_min, x_max, y_max = self.box
        return self.size / max(x_max - x_min, y_max - y_min)

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine image pixel -> crop pixel (the matrix cv2.warpAffine takes)."""
        scale = self.scale
        offset = (self.size - 1) / 2.0 - scale * self.box_center
        return np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """2x3 affine crop pixel -> image pixel."""
        scale = self.scale
        offset = self.box_center - (self.size - 1) / (2.0 * scale)
        return np.array([[1.0 / scale, 0.0, offset[0]], [0.0, 1.0 / scale, offset[1]]])

    @property
    def square_box(self) -> tuple[float, float, float, float]:
        """The square image region the crop covers (box centre, longer side), padding included."""
        half_side = self.size / (2.0 * self.scale)
        center_x, center_y = self.box_center
        return (center_x - half_side, center_y - half_side, center_x + half_side, center_y + half_side)

    def image_to_crop(self, points) -> np.ndarray:
        """(N, 2) image pixels -> (N, 2) crop pixels."""
        return _apply_affine(self.matrix, points)

    def crop_to_image(self, points) -> np.ndarray:
        """(N, 2) crop pixels -> (N, 2) image pixels."""
        return _apply_affine(self.inverse_matrix, points)

    # ---------------------------------------------------------------- images
    def content_mask(self) -> np.ndarray:
        """S x S bool: True where the crop pixel's centre lies inside the box (False = padding)."""
        x_min, y_min, x_max, y_max = self.box
        (left, top), (right, bottom) = self.image_to_crop([[x_min, y_min], [x_max, y_max]])
        centres = np.arange(self.size)
        columns = (centres >= left) & (centres <= right)
        rows = (centres >= top) & (centres <= bottom)
        return rows[:, None] & columns[None, :]

    def apply(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """HxW or HxWxC image -> SxS or SxSxC crop, same dtype; padding and off-image pixels are 0.

        Use ``cv2.INTER_NEAREST`` for label, segmentation or depth images.
        """
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"image must be HxW or HxWxC with H, W > 0, got shape {image.shape}")
        crop = cv2.warpAffine(image, self.matrix, (self.size, self.size), flags=interpolation,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if image.ndim == 3 and crop.ndim == 2:  # OpenCV drops a trailing channel axis of 1
            crop = crop[..., None]
        crop[~self.content_mask()] = 0
        return crop

    # ---------------------------------------------------------------- network / camera inputs
    def normalized_box(self, image_width: int, image_height: int) -> np.ndarray:
        """The box as float32 (x_min, y_min, x_max, y_max) / image size: the network's box input.

        The image's own extent (-0.5, -0.5, W - 0.5, H - 0.5) maps to (0, 0, 1, 1); boxes reaching
        beyond the image give values outside [0, 1] (not clipped: the geometry must stay exact).
        """
        if image_width <= 0 or image_height <= 0:
            raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
        x_min, y_min, x_max, y_max = self.box
        return np.array([(x_min + 0.5) / image_width, (y_min + 0.5) / image_height,
                         (x_max + 0.5) / image_width, (y_max + 0.5) / image_height], dtype=np.float32)

    def crop_camera(self, camera: CameraModel) -> CameraModel:
        """The virtual camera that sees the crop: K' = A K for the image -> crop affine A.

        ``crop_camera(camera).project(p) == image_to_crop(camera.project(p))``, so crop-relative
        predictions (keypoints, PnP) lift straight into the camera's optical frame.
        """
        return camera.warped(self.matrix, self.size, self.size)


def _apply_affine(matrix: np.ndarray, points) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {array.shape}")
    return array @ matrix[:, :2].T + matrix[:, 2]
