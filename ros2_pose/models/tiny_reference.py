"""TinyReferenceNet: the deployment layer's reference / smoke-test model.

A genuine, small fully-convolutional network with the same interface shape as the project's pose
networks (one named image input, a spatial head and a vector head), small enough that exporting it,
running it on every backend and benchmarking the runner take milliseconds. Tests and
`ros2-pose bench runner` use it when no shipped model is given; it is not trained for any task.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyReferenceNet(nn.Module):
    """image (N, C, H, W) float32 -> {"heatmaps": (N, K, H/4, W/4), "pose": (N, 6)}.

    `pose` is a 6D rotation-style vector head (global average pool + linear), `heatmaps` a
    per-keypoint map at stride 4: one spatial and one pooled output, as in the real pose models.
    """

    def __init__(self, in_channels: int = 3, width: int = 8, num_keypoints: int = 4):
        super().__init__()
        self.backbone = nn.Sequential(
            _conv_bn_relu(in_channels, width, stride=2),
            _conv_bn_relu(width, 2 * width, stride=2),
            _conv_bn_relu(2 * width, 2 * width, stride=1),
        )
        self.heatmap_head = nn.Conv2d(2 * width, num_keypoints, 1)
        self.pose_head = nn.Linear(2 * width, 6)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(image)
        pooled = features.mean(dim=(2, 3))
        return {"heatmaps": self.heatmap_head(features), "pose": self.pose_head(pooled)}
