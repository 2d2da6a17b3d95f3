"""Part affinity fields (Cao et al., OpenPose): a 2D unit-vector field per limb, and the line
integral that scores a candidate limb between two detected joints.

Encoding: for limb (a, b) of a person, every grid cell whose centre lies on the segment a -> b
(0 <= along <= length) within `ortho_dist_thresh` grid cells of it (the seed's
`paf_ortho_dist_thresh`, in units of the stride) holds the unit vector (b - a) / |b - a|. Cells
covered by several people hold the average of their vectors (OpenPose's count normalisation).
With `paf_sigma` > 0 each vector is weighted by exp(-d^2 / (2 (paf_sigma * length)^2)), d the
distance from the limb axis, so the field fades away from the limb (the seed's
`paf_gaussian_sigma`, taken as a fraction of the limb length); 0 gives OpenPose's flat band.
Channel layout: limb i -> channels (2i, 2i + 1) = (x, y) components.

Written by hand: no maintained library ships PAF targets or their line integral without the rest
of a training framework.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ros2_pose.codecs.heatmaps import HeatmapShapeError, image_to_heatmap_coordinates

DEFAULT_ORTHO_DIST_THRESH = 1.0
DEFAULT_PAF_SIGMA = 0.0


def _check_limbs(limbs: Sequence[Sequence[int]], num_joints: int) -> np.ndarray:
    array = np.asarray(limbs, dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise HeatmapShapeError(f"limbs must be (L, 2) joint index pairs, got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= num_joints):
        raise HeatmapShapeError(f"limb joint indices must be in 0..{num_joints - 1}, got {array.min()}..{array.max()}")
    return array


def encode_pafs(people, limbs: Sequence[Sequence[int]], height: int, width: int, stride: int = 8,
                ortho_dist_thresh: float = DEFAULT_ORTHO_DIST_THRESH,
                paf_sigma: float = DEFAULT_PAF_SIGMA) -> np.ndarray:
    """(P, J, 3) people in image pixels -> (2 * L, height, width) float32 fields for `limbs`.

    A limb is drawn only when both its joints are labelled (visibility > 0) and distinct."""
    people = np.asarray(people, dtype=np.float64)
    if people.ndim != 3 or people.shape[-1] != 3:
        raise HeatmapShapeError(f"people must have shape (P, J, 3) [x, y, visibility], got {people.shape}")
    limbs = _check_limbs(limbs, people.shape[1])
    if not ortho_dist_thresh > 0:
        raise HeatmapShapeError(f"ortho_dist_thresh must be positive (grid cells), got {ortho_dist_thresh}")
    if paf_sigma < 0:
        raise HeatmapShapeError(f"paf_sigma must be >= 0, got {paf_sigma}")
    fields = np.zeros((2 * len(limbs), height, width), dtype=np.float64)
    counts = np.zeros((len(limbs), height, width), dtype=np.float64)
    grid = image_to_heatmap_coordinates(people[..., :2], stride)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    for person, labels in zip(grid, people[..., 2]):
        for index, (ja, jb) in enumerate(limbs):
            if labels[ja] <= 0 or labels[jb] <= 0:
                continue
            a, b = person[ja], person[jb]
            if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
                continue
            delta = b - a
            length = float(np.hypot(*delta))
            if length < 1e-9:
                continue
            unit = delta / length
            # Bounding box of the band first: only those cells need the projection.
            lo = np.floor(np.minimum(a, b) - ortho_dist_thresh).astype(int)
            hi = np.ceil(np.maximum(a, b) + ortho_dist_thresh).astype(int)
            x0, y0 = max(lo[0], 0), max(lo[1], 0)
            x1, y1 = min(hi[0], width - 1), min(hi[1], height - 1)
            if x0 > x1 or y0 > y1:
                continue
            dx = xs[y0:y1 + 1, x0:x1 + 1] - a[0]
            dy = ys[y0:y1 + 1, x0:x1 + 1] - a[1]
            along = dx * unit[0] + dy * unit[1]
            ortho = np.abs(dx * unit[1] - dy * unit[0])
            inside = (along >= 0) & (along <= length) & (ortho <= ortho_dist_thresh)
            weight = inside.astype(np.float64)
            if paf_sigma > 0:
                weight *= np.exp(-ortho ** 2 / (2.0 * (paf_sigma * length) ** 2))
            fields[2 * index, y0:y1 + 1, x0:x1 + 1] += weight * unit[0]
            fields[2 * index + 1, y0:y1 + 1, x0:x1 + 1] += weight * unit[1]
            counts[index, y0:y1 + 1, x0:x1 + 1] += inside
    counts = np.repeat(np.maximum(counts, 1.0), 2, axis=0)
    return (fields / counts).astype(np.float32)


def sample_fractions(num_samples: int) -> np.ndarray:
    """Where along a limb (0: start, 1: end) its `num_samples` line-integral samples lie."""
    return np.arange(num_samples) / max(num_samples - 1, 1)


def _sample_points(starts, ends, fractions: np.ndarray, height: int, width: int):
    """(rows, cols) of the nearest cells at `fractions` of each segment, the unit directions and
    the lengths."""
    starts = np.asarray(starts, dtype=np.float64).reshape(-1, 2)
    ends = np.asarray(ends, dtype=np.float64).reshape(-1, 2)
    if starts.shape != ends.shape:
        raise HeatmapShapeError(f"starts {starts.shape} and ends {ends.shape} differ")
    delta = ends - starts
    lengths = np.hypot(delta[:, 0], delta[:, 1])
    unit = np.divide(delta, lengths[:, None], out=np.zeros_like(delta), where=lengths[:, None] > 1e-9)
    points = starts[:, None, :] + fractions[None, :, None] * delta[:, None, :]  # (N, S, 2)
    cols = np.clip(np.rint(points[..., 0]).astype(np.intp), 0, width - 1)
    rows = np.clip(np.rint(points[..., 1]).astype(np.intp), 0, height - 1)
    return rows, cols, unit, lengths


def line_integral_scores(paf_x: np.ndarray, paf_y: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                         num_samples: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """For candidate limbs starts[i] -> ends[i] ((N, 2) x, y in the field's pixels): the PAF's
    component along the limb direction at `num_samples` evenly spaced points (nearest cell).

    Returns (N, num_samples) projections and (N,) limb lengths. A zero-length candidate gets
    projections 0 (it carries no direction to agree with)."""
    if paf_x.shape != paf_y.shape or paf_x.ndim != 2:
        raise HeatmapShapeError(f"PAF components must be two equal (H, W) arrays, got {paf_x.shape}, {paf_y.shape}")
    rows, cols, unit, lengths = _sample_points(starts, ends, sample_fractions(num_samples), *paf_x.shape)
    projections = paf_x[rows, cols] * unit[:, None, 0] + paf_y[rows, cols] * unit[:, None, 1]
    return projections, lengths


class FieldSampler(Protocol):
    """PAFs that are read only where sampled (e.g. network maps upsampled on demand): `shape` is
    (2L, H, W) and `values_at` returns (K, N, S) values of the K channels `channels[i]` ((N, K))
    at (`rows[i, s]`, `cols[i, s]`)."""

    shape: tuple[int, int, int]

    def values_at(self, channels: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray: ...


def stacked_line_integral_scores(pafs: np.ndarray | FieldSampler, limb_index: np.ndarray, starts: np.ndarray,
                                 ends: np.ndarray, num_samples: int = 10, fractions: np.ndarray | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """`line_integral_scores` of candidates of several limbs at once: candidate i is scored on limb
    `limb_index[i]`'s channels (2 * limb, 2 * limb + 1) of the (2L, H, W) `pafs` (one pass of numpy
    calls for a whole frame instead of one per limb). `pafs` may also be a `FieldSampler`.
    `fractions`: sample only there (e.g. a subset of `sample_fractions(num_samples)`) instead of at
    the `num_samples` points."""
    if not hasattr(pafs, "values_at"):
        pafs = np.asarray(pafs)
    if len(pafs.shape) != 3 or pafs.shape[0] % 2:
        raise HeatmapShapeError(f"PAFs must be (2L, H, W), got {tuple(pafs.shape)}")
    limb_index = np.asarray(limb_index, dtype=np.intp).reshape(-1)
    fractions = sample_fractions(num_samples) if fractions is None else np.asarray(fractions, dtype=np.float64)
    _, height, width = pafs.shape
    rows, cols, unit, lengths = _sample_points(starts, ends, fractions, height, width)
    if limb_index.shape != lengths.shape:
        raise HeatmapShapeError(f"limb_index {limb_index.shape} does not match {lengths.shape[0]} candidates")
    if hasattr(pafs, "values_at"):
        field_x, field_y = pafs.values_at(np.stack([2 * limb_index, 2 * limb_index + 1], axis=1), rows, cols)
    else:  # flat indices into the contiguous stack: one take per component instead of 3-D fancy indexing
        flat = np.ascontiguousarray(pafs).reshape(-1)
        index = (2 * limb_index[:, None] * height + rows) * width + cols
        field_x, field_y = flat.take(index), flat.take(index + height * width)
    return field_x * unit[:, None, 0] + field_y * unit[:, None, 1], lengths
