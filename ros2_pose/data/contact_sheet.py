"""Contact sheets: a grid of dataset samples with their labels drawn, to check a dataset by eye.

Per sample, one panel per image field present: `det_image` with `det_box`; `crop` (or `image`) with
the object's pose axes (x red, y green, z blue, projected with the crop's camera K' = A K), the mask
outline and keypoints; a motion sample shows its frames side by side. OpenCV draws, numpy tiles.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

TILE = 160
AXIS_COLOURS = ((255, 0, 0), (0, 200, 0), (0, 96, 255))


def _fit(image: np.ndarray, size: int = TILE) -> np.ndarray:
    image = np.ascontiguousarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.zeros((size, size, 3), np.uint8)
    tile[: resized.shape[0], : resized.shape[1]] = resized
    return tile


def _project(K: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    if np.any(points[:, 2] <= 1e-6):
        return None
    uv = (K @ (points / points[:, 2:3]).T).T
    return uv[:, :2]


def draw_axes(image: np.ndarray, K: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
              length: float) -> None:
    """Draw the object frame's axes (in place) by projecting origin + length * unit axes with K."""
    points = translation[None, :] + np.vstack([np.zeros(3), length * rotation.T])
    uv = _project(K, points)
    if uv is None or not np.all(np.isfinite(uv)):
        return
    origin = tuple(int(round(v)) for v in uv[0])
    for k in range(3):
        end = tuple(int(round(v)) for v in np.clip(uv[k + 1], -1e4, 1e4))
        cv2.line(image, origin, end, AXIS_COLOURS[k], 1, cv2.LINE_AA)


def _draw_box(image: np.ndarray, box_norm: np.ndarray, colour=(255, 255, 0)) -> None:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box_norm * np.array([w, h, w, h]) - 0.5
    cv2.rectangle(image, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), colour, 1)


def render_sample(sample: dict, axis_length: float = 0.3) -> np.ndarray:
    """The panels of one sample side by side, each TILE x TILE."""
    panels = []
    if "det_image" in sample:
        det = np.ascontiguousarray(sample["det_image"]).copy()
        if bool(sample.get("det_valid", True)):
            _draw_box(det, np.asarray(sample["det_box"], np.float64))
        panels.append(_fit(det))
    main_name = next((n for n in ("crop", "image") if n in sample), None)
    if main_name is not None:
        image = np.ascontiguousarray(sample[main_name]).copy()
        if "mask" in sample and np.any(sample["mask"]):
            mask = cv2.resize(np.asarray(sample["mask"], np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(image, contours, -1, (255, 0, 255), 1)
        if "keypoints" in sample:
            vis = np.asarray(sample.get("visibility", np.full(len(sample["keypoints"]), 2)))
            for (x, y), v in zip(np.asarray(sample["keypoints"]), vis):
                if v > 0:
                    cv2.circle(image, (int(round(x)), int(round(y))), 2, (255, 255, 0) if v == 2 else (128, 128, 0), -1)
        if "rotation" in sample and "K" in sample and bool(sample.get("pose_valid", True)):
            K = np.asarray(sample["K"], np.float64)
            if "crop_matrix" in sample:  # the crop's camera: K' = A K with A the image -> crop affine
                A = np.vstack([np.asarray(sample["crop_matrix"], np.float64), [0, 0, 1]])
                K = A @ K
            draw_axes(image, K, np.asarray(sample["rotation"], np.float64),
                      np.asarray(sample["translation"], np.float64), axis_length)
        panels.append(_fit(image))
    if "frames" in sample:
        panels += [_fit(f) for f in np.asarray(sample["frames"])]
    if not panels:
        raise ValueError(f"sample has no image field to show (fields: {sorted(sample)})")
    return np.concatenate(panels, axis=1)


def contact_sheet(samples: Sequence[dict], columns: int | None = None, axis_length: float = 0.3) -> np.ndarray:
    """A grid of rendered samples (RGB uint8), `columns` per row (default: about square)."""
    if not samples:
        raise ValueError("no samples to show")
    tiles = [render_sample(s, axis_length) for s in samples]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((2, 2), (2, 2 + width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    columns = columns or max(1, int(np.ceil(np.sqrt(len(tiles) * TILE / width))))
    rows = int(np.ceil(len(tiles) / columns))
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (rows * columns - len(tiles))
    return np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)], axis=0)


def write_png(path, sheet: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path} (does its folder exist, and does it end in .png?)")
