"""Overlays of the dolly demo: estimated and ground-truth boxes and axes on the frames, as an MP4
and a PNG contact sheet. ROS-free (OpenCV draws, numpy tiles).

Colours: the estimate's box is green and its axes x red, y green, z blue (as `draw_result` draws
them); the ground truth's box and axes are drawn thinner in yellow / magenta / cyan, so the two
stay apart where they overlap. A legend in the corner says which is which.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform

ESTIMATE_BOX = (0, 255, 0)
ESTIMATE_AXES = ((255, 0, 0), (0, 255, 0), (0, 96, 255))
TRUTH_BOX = (255, 255, 0)
TRUTH_AXES = ((255, 255, 0), (255, 0, 255), (0, 255, 255))
AXIS_LENGTH_M = 0.3
SHEET_TILE_WIDTH = 320


@dataclass
class OverlayFrame:
    """What to draw on one frame (RGB uint8). Any of the estimate / truth fields may be None."""

    image: np.ndarray
    camera: CameraModel | None
    caption: str = ""
    estimate: RigidTransform | None = None
    estimate_box: np.ndarray | None = None
    truth: RigidTransform | None = None
    truth_box: np.ndarray | None = None


def _draw_box(canvas: np.ndarray, box, colour, thickness: int) -> None:
    x0, y0, x1, y1 = (int(round(v)) for v in np.clip(np.asarray(box, np.float64), -1e4, 1e4))
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)


def _draw_axes(canvas: np.ndarray, camera: CameraModel, pose: RigidTransform, colours, thickness: int) -> None:
    points_object = np.array([[0, 0, 0], [AXIS_LENGTH_M, 0, 0], [0, AXIS_LENGTH_M, 0], [0, 0, AXIS_LENGTH_M]])
    points_camera = pose.apply(points_object)
    if np.any(points_camera[:, 2] <= 1e-3):  # behind or at the camera: no meaningful projection
        return
    pixels = camera.project(points_camera)
    if not np.isfinite(pixels).all():
        return
    pixels = np.clip(pixels, -1e4, 1e4)
    origin = tuple(int(round(v)) for v in pixels[0])
    for end, colour in zip(pixels[1:], colours):
        cv2.line(canvas, origin, tuple(int(round(v)) for v in end), colour, thickness, cv2.LINE_AA)


def draw_overlay(frame: OverlayFrame) -> np.ndarray:
    """A copy of the frame with the truth (thin), the estimate (thick), the caption and a legend."""
    canvas = np.ascontiguousarray(frame.image.copy())
    if canvas.ndim == 2:
        canvas = np.repeat(canvas[..., None], 3, axis=2)
    if frame.truth_box is not None:
        _draw_box(canvas, frame.truth_box, TRUTH_BOX, 1)
    if frame.estimate_box is not None:
        _draw_box(canvas, frame.estimate_box, ESTIMATE_BOX, 2)
    if frame.camera is not None:
        if frame.truth is not None:
            _draw_axes(canvas, frame.camera, frame.truth, TRUTH_AXES, 1)
        if frame.estimate is not None:
            _draw_axes(canvas, frame.camera, frame.estimate, ESTIMATE_AXES, 2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if frame.caption:
        cv2.putText(canvas, frame.caption, (6, 18), font, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, frame.caption, (6, 18), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    height = canvas.shape[0]
    for row, (text, colour) in enumerate((("estimate (box, x/y/z axes)", ESTIMATE_BOX),
                                          ("ground truth (thin)", TRUTH_BOX))):
        y = height - 8 - 16 * (1 - row)
        cv2.putText(canvas, text, (6, y), font, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (6, y), font, 0.45, colour, 1, cv2.LINE_AA)
    return canvas


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """RGB frames (all the same size) as an MP4 (OpenCV's mp4v codec)."""
    if not frames:
        raise ValueError("no frames to write")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV could not open {path} for writing with the mp4v codec")
    try:
        for frame in frames:
            if frame.shape[:2] != (height, width):
                raise ValueError(f"frame of size {frame.shape[1]}x{frame.shape[0]} in a {width}x{height} video")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def contact_sheet(frames: Sequence[np.ndarray], count: int = 6, columns: int = 3,
                  tile_width: int = SHEET_TILE_WIDTH) -> np.ndarray:
    """`count` frames evenly spaced over the sequence, scaled to `tile_width`, in a grid (RGB)."""
    if not frames:
        raise ValueError("no frames for a contact sheet")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    tiles = []
    for index in picks:
        frame = frames[index]
        scale = tile_width / frame.shape[1]
        tiles.append(cv2.resize(frame, (tile_width, max(1, round(frame.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA))
    tile_height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, tile_height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles = [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    tiles += [np.full_like(tiles[0], 255)] * (rows * columns - len(tiles))
    return np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)])


def write_png(path: str | Path, image: np.ndarray) -> Path:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path} (does its folder exist, and does it end in .png?)")
    return Path(path)
