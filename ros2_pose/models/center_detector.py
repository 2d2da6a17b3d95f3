"""A small, fast single-class object detector in the CenterNet style (objects as points).

Input: N x 3 x S x S RGB in [0, 1] (the whole image letterboxed to S x S, default 160, with
`ros2_pose.geometry.crop.RoiCrop` of the full-image box). Output at stride 4:
- `heatmap_logits` (N x 1 x S/4 x S/4): object-centre heatmap (sigmoid gives the score);
- `size` (N x 2 x S/4 x S/4): box width and height divided by S;
- `offset` (N x 2 x S/4 x S/4): sub-cell position of the centre, in cells.

Chosen over anchor-based detectors because the robot looks for one or a few objects of one class:
a heatmap peak is one box, no anchors or NMS tuning, and it exports to ONNX as plain convolutions.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

STRIDE = 4


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class CenterDetector(nn.Module):
    def __init__(self, width: int = 16, input_size: int = 160):
        super().__init__()
        if input_size % (STRIDE * 4):
            raise ValueError(f"input_size must be a multiple of {STRIDE * 4}, got {input_size}")
        self.input_size = input_size
        w = width
        # stride 2 -> 4 -> 8 -> 16, then back up to stride 4 with the stride-4 features added in
        # (a tiny FPN): the heatmap needs both context and resolution.
        self.stem = _conv(3, w, 2)
        self.down4 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))
        self.down8 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.down16 = nn.Sequential(_conv(4 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.lateral8 = nn.Conv2d(4 * w, 4 * w, 1)
        self.up8 = _conv(4 * w, 4 * w)
        self.lateral4 = nn.Conv2d(2 * w, 4 * w, 1)
        self.up4 = _conv(4 * w, 2 * w)
        # One shared 3x3 layer, then 1x1 heads: the three outputs describe the same centre.
        self.head = _conv(2 * w, 2 * w)
        self.heatmap = nn.Conv2d(2 * w, 1, 1)
        self.size = nn.Conv2d(2 * w, 2, 1)
        self.offset = nn.Conv2d(2 * w, 2, 1)
        # Start with a low object prior so early training is not dominated by background.
        nn.init.constant_(self.heatmap.bias, -4.0)
        self.register_buffer("pixel_mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.pixel_mean) / self.pixel_std
        f4 = self.down4(self.stem(x))
        f8 = self.down8(f4)
        f16 = self.down16(f8)
        p8 = self.up8(self.lateral8(f8) + nn.functional.interpolate(f16, scale_factor=2.0, mode="nearest"))
        p4 = self.up4(self.lateral4(f4) + nn.functional.interpolate(p8, scale_factor=2.0, mode="nearest"))
        h = self.head(p4)
        return {"heatmap_logits": self.heatmap(h), "size": self.size(h), "offset": self.offset(h)}


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


def focal_loss(heatmap_logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
               beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of objects."""
    pred = torch.sigmoid(heatmap_logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    pos_loss = -torch.log(pred) * (1 - pred) ** alpha * positive
    neg_loss = -torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * (1 - positive)
    return (pos_loss.sum() + neg_loss.sum()) / positive.sum().clamp(min=1.0)
