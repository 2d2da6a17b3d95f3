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

import torch
from torch import nn

from ros2_pose.codecs.center_heatmap import STRIDE


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


def focal_loss(heatmap_logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
               beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of objects."""
    pred = torch.sigmoid(heatmap_logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    pos_loss = -torch.log(pred) * (1 - pred) ** alpha * positive
    neg_loss = -torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * (1 - positive)
    return (pos_loss.sum() + neg_loss.sum()) / positive.sum().clamp(min=1.0)
