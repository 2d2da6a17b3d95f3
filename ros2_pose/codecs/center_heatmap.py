"""Targets and decoding of the centre detector (numpy only, no torch): one box per image as a
heatmap peak at stride 4 plus size and sub-cell offset maps (ros2_pose.models.center_detector)."""
from __future__ import annotations

import numpy as np

STRIDE = 4


def decode_best_box(heatmap_logits: np.ndarray, size: np.ndarray, offset: np.ndarray,
                    input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The highest-scoring box of each batch item: (N x 4 boxes in input pixels, N scores).

    Boxes are (x_min, y_min, x_max, y_max) in the letterboxed input's pixel coordinates.
    """
    heat = np.asarray(heatmap_logits)[:, 0]
    n, h, w = heat.shape
    flat = heat.reshape(n, -1)
    best = flat.argmax(axis=1)
    rows, cols = np.divmod(best, w)
    items = np.arange(n)
    score = 1.0 / (1.0 + np.exp(-flat[items, best]))
    off = np.asarray(offset)[items, :, rows, cols]
    wh = np.asarray(size)[items, :, rows, cols] * input_size
    cx = (cols + off[:, 0]) * STRIDE
    cy = (rows + off[:, 1]) * STRIDE
    boxes = np.stack([cx - wh[:, 0] / 2, cy - wh[:, 1] / 2, cx + wh[:, 0] / 2, cy + wh[:, 1] / 2], axis=1)
    return boxes.astype(np.float32), score.astype(np.float32)


def encode_targets(boxes: np.ndarray, valid: np.ndarray, input_size: int,
                   min_sigma: float = 0.7) -> dict[str, np.ndarray]:
    """Training targets for one box per image (N x 4 in input pixels, N valid flags).

    Returns heatmap (N x 1 x H x W, a Gaussian at the centre cell, radius from the box size),
    size and offset maps (N x 2 x H x W) and a regression mask (N x 1 x H x W, 1 at the centre cell).
    """
    cells = input_size // STRIDE
    n = len(boxes)
    heatmap = np.zeros((n, 1, cells, cells), np.float32)
    size = np.zeros((n, 2, cells, cells), np.float32)
    offset = np.zeros((n, 2, cells, cells), np.float32)
    reg_mask = np.zeros((n, 1, cells, cells), np.float32)
    ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
    for i, (box, ok) in enumerate(zip(np.asarray(boxes, np.float32), np.asarray(valid, bool))):
        if not ok:
            continue
        cx, cy = (box[0] + box[2]) / 2 / STRIDE, (box[1] + box[3]) / 2 / STRIDE
        col, row = int(np.clip(np.floor(cx), 0, cells - 1)), int(np.clip(np.floor(cy), 0, cells - 1))
        bw, bh = (box[2] - box[0]) / STRIDE, (box[3] - box[1]) / STRIDE
        sigma = max(min_sigma, min(bw, bh) / 6.0)
        heatmap[i, 0] = np.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma ** 2))
        size[i, :, row, col] = [(box[2] - box[0]) / input_size, (box[3] - box[1]) / input_size]
        offset[i, :, row, col] = [cx - col, cy - row]
        reg_mask[i, 0, row, col] = 1.0
    return {"heatmap": heatmap, "size": size, "offset": offset, "reg_mask": reg_mask}
