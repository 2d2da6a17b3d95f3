"""Gaussian heatmap targets for keypoints, and the image <-> heatmap coordinate mapping.

Coordinates follow DESIGN.md: OpenCV pixel centres at integer coordinates, in the image and in the
heatmap alike. A heatmap cell j of stride s covers image pixels [j*s - 0.5, (j+1)*s - 0.5), so its
centre is at image coordinate j*s + (s-1)/2; the two functions below are that affine map.
"""
from __future__ import annotations

import numpy as np


class HeatmapShapeError(ValueError):
    """Keypoints, visibilities or heatmaps with the wrong shape or values."""


def image_to_heatmap_coordinates(xy, stride: float) -> np.ndarray:
    """(..., 2) image pixels -> heatmap pixels for a heatmap `stride` times smaller."""
    if stride <= 0:
        raise HeatmapShapeError(f"stride must be positive, got {stride}")
    return (np.asarray(xy, dtype=np.float64) - (stride - 1.0) / 2.0) / stride


def heatmap_to_image_coordinates(xy, stride: float) -> np.ndarray:
    """(..., 2) heatmap pixels -> image pixels; inverse of :func:`image_to_heatmap_coordinates`."""
    if stride <= 0:
        raise HeatmapShapeError(f"stride must be positive, got {stride}")
    return np.asarray(xy, dtype=np.float64) * stride + (stride - 1.0) / 2.0


def encode_gaussian_heatmaps(keypoints, height: int, width: int, sigma: float = 2.0,
                             visibility=None) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (K, 2) or (N, K, 2) in heatmap pixels -> heatmaps (N, K, H, W) float32 and weights (N, K).

    Each heatmap is exp(-|p - c|^2 / (2 sigma^2)) around the *sub-pixel* centre c (peak value 1 at c,
    so the decoders can recover c exactly, not just its nearest cell). A keypoint gets an all-zero
    heatmap and weight 0 when its visibility is 0 (COCO: not labelled), when it is non-finite, or when
    its centre lies more than 3 sigma outside the heatmap (nothing of the Gaussian would be in it).
    """
    points = np.asarray(keypoints, dtype=np.float64)
    single = points.ndim == 2
    if single:
        points = points[None]
    if points.ndim != 3 or points.shape[-1] != 2:
        raise HeatmapShapeError(f"keypoints must have shape (K, 2) or (N, K, 2), got {np.shape(keypoints)}")
    if height < 1 or width < 1:
        raise HeatmapShapeError(f"heatmap size must be positive, got {height}x{width}")
    if not sigma > 0:
        raise HeatmapShapeError(f"sigma must be positive, got {sigma}")
    n, k = points.shape[:2]
    if visibility is None:
        labelled = np.ones((n, k), dtype=bool)
    else:
        vis = np.asarray(visibility)
        vis = vis[None] if single and vis.ndim == 1 else vis
        if vis.shape != (n, k):
            raise HeatmapShapeError(f"visibility must have shape {(n, k)[1:] if single else (n, k)}, got {np.shape(visibility)}")
        labelled = vis > 0
    finite = np.all(np.isfinite(points), axis=-1)
    safe = np.where(finite[..., None], points, 0.0)
    margin = 3.0 * sigma
    inside = ((safe[..., 0] > -margin) & (safe[..., 0] < width - 1 + margin)
              & (safe[..., 1] > -margin) & (safe[..., 1] < height - 1 + margin))
    weights = labelled & finite & inside
    # Separable: exp(-(dx^2 + dy^2)/2s^2) = gx(x) * gy(y), an outer product per keypoint.
    gx = np.exp(-((np.arange(width) - safe[..., 0:1]) ** 2) / (2.0 * sigma ** 2))   # (N, K, W)
    gy = np.exp(-((np.arange(height) - safe[..., 1:2]) ** 2) / (2.0 * sigma ** 2))  # (N, K, H)
    heatmaps = (gy[..., :, None] * gx[..., None, :]) * weights[..., None, None]
    return heatmaps.astype(np.float32), weights.astype(np.float32)
