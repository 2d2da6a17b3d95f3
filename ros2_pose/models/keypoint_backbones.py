"""Heatmap networks for keypoint-based pose (seeds 002 and 003), small enough for the CPU.

All take images (B, 3, H, W) and return a dict whose "heatmaps" are (B, K, H/s, W/s) with
s = `output_stride`; decode with ros2_pose.codecs.decoders and map to image pixels with
ros2_pose.codecs.heatmaps.heatmap_to_image_coordinates(xy, model.output_stride). Only plain ops
(conv, BN, ReLU, nearest/bilinear resize, transposed conv, reflection pad), so ONNX export works.

- BlurPool2d: anti-aliased downsampling (Zhang 2019; seed 002's anti-alias step): a fixed binomial
  low-pass before the stride, so small shifts of a distant drone move the features smoothly.
- StackedHourglass: `num_stacks` hourglasses (the seed's "depth 2" = two stacks) of `levels`
  recursive halvings, with intermediate heatmaps for intermediate supervision ("stack_heatmaps").
- HRNet: 3 stages at 1/4 resolution: stage 1 residual units; stage 2 two branches (width, 2 width)
  with `exchange_blocks[0]` exchange blocks; stage 3 three branches with `exchange_blocks[1]`;
  each exchange block runs `units_per_branch` residual units per branch, then fuses all branches
  into each (upsampled 1x1 convs from lower resolutions, strided 3x3 convs from higher ones).
  The seed's setting is width 48, exchange blocks (1, 4), 4 units; the defaults here are smaller.
- HigherHRNet: HRNet + a deconvolution module (concat(features, 1/4 heatmaps) -> 4x4 transposed conv
  -> 1/2 resolution -> residual units -> heatmaps) and heatmap aggregation at inference: the mean of
  the bilinearly upsampled 1/4 heatmaps and the 1/2 heatmaps ("heatmaps"); both resolutions are
  output for multi-resolution supervision.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BlurPool2d(nn.Module):
    """Depthwise [1 2 1]x[1 2 1]/16 low-pass with reflection padding, then subsampling by `stride`."""

    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).clone())
        self.stride = stride
        self.channels = channels
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.kernel, stride=self.stride, groups=self.channels)


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def downsample(in_ch: int, out_ch: int, anti_alias: bool) -> nn.Sequential:
    """Halve the resolution: conv + BlurPool (anti-aliased) or a plain strided conv."""
    if anti_alias:
        return nn.Sequential(conv_bn_relu(in_ch, out_ch), BlurPool2d(out_ch))
    return conv_bn_relu(in_ch, out_ch, stride=2)


class ResidualUnit(nn.Module):
    """HRNet/ResNet basic block: two 3x3 convs with a skip (1x1 projection when widths differ)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(in_ch, out_ch), conv_bn_relu(out_ch, out_ch, relu=False))
        self.skip = nn.Identity() if in_ch == out_ch else conv_bn_relu(in_ch, out_ch, kernel=1, relu=False)

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class Stem(nn.Sequential):
    """Image -> 1/4 resolution features."""

    def __init__(self, out_ch: int, anti_alias: bool = True):
        super().__init__(downsample(3, out_ch, anti_alias), downsample(out_ch, out_ch, anti_alias))


# ------------------------------------------------------------------------------------------------
# Stacked hourglass
# ------------------------------------------------------------------------------------------------

class Hourglass(nn.Module):
    def __init__(self, channels: int, levels: int, anti_alias: bool = True):
        super().__init__()
        self.skip = ResidualUnit(channels, channels)
        self.down = BlurPool2d(channels) if anti_alias else nn.MaxPool2d(2)
        self.before = ResidualUnit(channels, channels)
        self.inner = Hourglass(channels, levels - 1, anti_alias) if levels > 1 else ResidualUnit(channels, channels)
        self.after = ResidualUnit(channels, channels)

    def forward(self, x):
        low = self.after(self.inner(self.before(self.down(x))))
        return self.skip(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    output_stride = 4

    def __init__(self, num_keypoints: int, width: int = 32, num_stacks: int = 2, levels: int = 3,
                 anti_alias: bool = True):
        super().__init__()
        if num_stacks < 1 or levels < 1:
            raise ValueError(f"need at least one stack and one level, got {num_stacks} stacks, {levels} levels")
        self.input_multiple = 4 * 2 ** levels
        self.stem = Stem(width, anti_alias)
        self.hourglasses = nn.ModuleList(Hourglass(width, levels, anti_alias) for _ in range(num_stacks))
        self.features = nn.ModuleList(conv_bn_relu(width, width, kernel=1) for _ in range(num_stacks))
        self.heads = nn.ModuleList(nn.Conv2d(width, num_keypoints, 1) for _ in range(num_stacks))
        # Intermediate heatmaps and features are mapped back into the next stack's input.
        self.remap_features = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(num_stacks - 1))
        self.remap_heatmaps = nn.ModuleList(nn.Conv2d(num_keypoints, width, 1) for _ in range(num_stacks - 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_input(image, self.input_multiple)
        x = self.stem(image)
        outputs = []
        for i, (hourglass, features, head) in enumerate(zip(self.hourglasses, self.features, self.heads)):
            y = features(hourglass(x))
            heatmaps = head(y)
            outputs.append(heatmaps)
            if i < len(self.remap_features):
                x = x + self.remap_features[i](y) + self.remap_heatmaps[i](heatmaps)
        return {"heatmaps": outputs[-1], "stack_heatmaps": torch.stack(outputs, dim=1)}


# ------------------------------------------------------------------------------------------------
# HRNet / HigherHRNet
# ------------------------------------------------------------------------------------------------

class ExchangeBlock(nn.Module):
    """Residual units per branch, then every branch receives the sum of all branches resized to it."""

    def __init__(self, widths: tuple[int, ...], units: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[ResidualUnit(w, w) for _ in range(units)]) for w in widths)
        self.fuse = nn.ModuleList()
        for i, w_out in enumerate(widths):
            row = nn.ModuleList()
            for j, w_in in enumerate(widths):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution: 1x1 conv, then nearest upsampling in forward
                    row.append(conv_bn_relu(w_in, w_out, kernel=1, relu=False))
                else:  # higher resolution: (i - j) strided 3x3 convs
                    steps = [conv_bn_relu(w_in, w_in, stride=2) for _ in range(i - j - 1)]
                    steps.append(conv_bn_relu(w_in, w_out, stride=2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, row in enumerate(self.fuse):
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if j > i:
                    y = F.interpolate(y, scale_factor=float(2 ** (j - i)), mode="nearest")
                total = total + y
            fused.append(F.relu(total))
        return fused


class HRNet(nn.Module):
    output_stride = 4

    def __init__(self, num_keypoints: int, width: int = 16, exchange_blocks: tuple[int, int] = (1, 2),
                 units_per_branch: int = 2, stage1_units: int = 2, anti_alias: bool = True):
        super().__init__()
        if len(exchange_blocks) != 2 or min(exchange_blocks) < 1:
            raise ValueError(f"exchange_blocks gives stages 2 and 3 at least one block each, got {exchange_blocks}")
        self.input_multiple = 16  # three resolutions below the 1/4 stem: 1/4, 1/8, 1/16
        self.width = width
        stem_width = 2 * width
        self.stem = Stem(stem_width, anti_alias)
        self.stage1 = nn.Sequential(*[ResidualUnit(stem_width, stem_width) for _ in range(stage1_units)])
        self.to_branch1 = conv_bn_relu(stem_width, width)
        self.to_branch2 = downsample(stem_width, 2 * width, anti_alias)
        self.stage2 = nn.ModuleList(ExchangeBlock((width, 2 * width), units_per_branch) for _ in range(exchange_blocks[0]))
        self.to_branch3 = downsample(2 * width, 4 * width, anti_alias)
        self.stage3 = nn.ModuleList(ExchangeBlock((width, 2 * width, 4 * width), units_per_branch)
                                    for _ in range(exchange_blocks[1]))
        self.head = nn.Conv2d(width, num_keypoints, 1)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(B, width, H/4, W/4): the highest-resolution branch after stage 3."""
        _check_input(image, self.input_multiple)
        x = self.stage1(self.stem(image))
        xs = [self.to_branch1(x), self.to_branch2(x)]
        for block in self.stage2:
            xs = block(xs)
        xs = xs + [self.to_branch3(xs[-1])]
        for block in self.stage3:
            xs = block(xs)
        return xs[0]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.head(self.features(image))}


class HigherHRNet(HRNet):
    output_stride = 2

    def __init__(self, num_keypoints: int, width: int = 16, exchange_blocks: tuple[int, int] = (1, 2),
                 units_per_branch: int = 2, stage1_units: int = 2, deconv_units: int = 2, anti_alias: bool = True):
        super().__init__(num_keypoints, width, exchange_blocks, units_per_branch, stage1_units, anti_alias)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(width + num_keypoints, width, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            *[ResidualUnit(width, width) for _ in range(deconv_units)])
        self.high_resolution_head = nn.Conv2d(width, num_keypoints, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(image)
        low = self.head(features)
        high = self.high_resolution_head(self.deconv(torch.cat([features, low], dim=1)))
        # align_corners=False keeps pixel centres consistent between the stride-4 and stride-2 grids.
        upsampled = F.interpolate(low, scale_factor=2.0, mode="bilinear", align_corners=False)
        return {"heatmaps": (upsampled + high) / 2, "heatmaps_quarter": low, "heatmaps_half": high}


def _check_input(image: torch.Tensor, multiple: int) -> None:
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if image.shape[-1] % multiple or image.shape[-2] % multiple:
        raise ValueError(f"image height and width must be multiples of {multiple}, got {tuple(image.shape[-2:])}")
