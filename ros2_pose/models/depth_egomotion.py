"""Monocular depth and ego-motion networks (SfMLearner / monodepth2 family, sized for small images).

- ``DepthNet``: one image -> sigmoid disparity at several scales, mapped to depth in
  [min_depth, max_depth] by ``disparity_to_depth``. A small U-Net: a strided conv encoder written
  here (no torchvision on these machines) and a nearest-upsampling decoder with skip connections.
- ``PoseNet``: target + source frames -> one 6-DoF vector (rotation vector, translation) per
  source, ``T_target_to_source`` in ``geometry.warping``'s convention. ``fusion="early"`` stacks the
  frames on the channel axis before the first convolution; ``fusion="late"`` runs one shared
  encoder per frame and concatenates the feature maps (the seed's two experiments).
- ``PoseFromDepthFeatures``: the seed's "can depth features give pose?" experiment: a DepthNet's
  encoder, frozen, feeds a small trainable pose head.

Outputs are scaled by ``POSE_SCALE`` (0.01) so an untrained head predicts near-zero motion and the
warp starts from identity. Every convolution is He-initialised (``_initialize``): these networks have
no normalisation layers, and with PyTorch's default initialisation an untrained PoseNet's output
did not depend on its input. Inputs are RGB in [0, 1], N x 3 x H x W; H and W must be multiples of
2^len(channels). Forward methods take tensors only and return dicts of tensors, so the models export
to ONNX through ``ros2_pose.deploy.export``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as functional

#: Output scaling of the pose heads (SfMLearner/monodepth2 practice): small motions at init.
POSE_SCALE = 0.01
# ImageNet-style normalisation as in monodepth2: centres RGB in [0, 1] around zero.
_MEAN, _STD = 0.45, 0.225


def disparity_to_depth(disparity: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid disparity in [0, 1] -> depth in [min_depth, max_depth] (linear in inverse depth)."""
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    min_disparity, max_disparity = 1.0 / max_depth, 1.0 / min_depth
    return 1.0 / (min_disparity + (max_disparity - min_disparity) * disparity)


def _initialize(module: nn.Module, outputs: Sequence[nn.Conv2d]) -> None:
    """He (Kaiming) initialisation of every convolution of `module`, small weights for `outputs`.

    PyTorch's default (uniform, a=sqrt(5): a third of the He variance) shrinks the signal at each
    ELU layer of these normalisation-free networks: through the 14 layers of an untrained PoseNet
    the activations fell ~40x and its output varied by 2e-6 between inputs against a mean of 4e-4.
    The shipped pair of the fourth session was trained from that state and never learned to follow
    the images (its predicted motion barely varied; docs/RESULTS.md). Output layers stay small so
    an untrained network predicts near-zero motion and mid-range disparity.
    """
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")  # ELU is ReLU-like for the gain
            nn.init.zeros_(conv.bias)
    for conv in outputs:
        nn.init.normal_(conv.weight, std=1e-3)
        nn.init.zeros_(conv.bias)


def _conv(in_channels: int, out_channels: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    # ELU, no normalisation: train and eval behave the same, which matters with the small batches
    # and short runs used here (and keeps ONNX export trivial).
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, padding_mode="reflect"),
                         nn.ELU(inplace=True))


class ConvEncoder(nn.Module):
    """Strided conv stages; stage k halves the resolution k+1 times and has channels[k] channels."""

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64, 128, 256)):
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive widths, got {channels}")
        self.channels = tuple(channels)
        stages, previous = [], in_channels
        for i, width in enumerate(channels):
            kernel = 7 if i == 0 else 3  # a wide first kernel sees enough context at full resolution
            stages.append(nn.Sequential(_conv(previous, width, stride=2, kernel=kernel), _conv(width, width)))
            previous = width
        self.stages = nn.ModuleList(stages)

    @property
    def downsampling(self) -> int:
        return 2 ** len(self.stages)

    def check_input(self, image: torch.Tensor, name: str = "image") -> None:
        if image.ndim != 4:
            raise ValueError(f"{name} must be N x C x H x W, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % self.downsampling or w % self.downsampling:
            raise ValueError(f"{name} size {w}x{h} must be a multiple of {self.downsampling} "
                             f"(2^{len(self.stages)} encoder stages)")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class DepthNet(nn.Module):
    """Image -> {"disparity", "disparity_1", ... (coarser scales), "depth"} (full-resolution depth)."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128, 256), num_scales: int = 4,
                 min_depth: float = 0.1, max_depth: float = 20.0):
        super().__init__()
        disparity_to_depth(torch.ones(1), min_depth, max_depth)  # validates the range early
        self.encoder = ConvEncoder(3, channels)
        levels = len(self.encoder.channels)
        if not 1 <= num_scales <= levels:
            raise ValueError(f"num_scales must be in 1..{levels} (decoder levels), got {num_scales}")
        self.num_scales, self.min_depth, self.max_depth = int(num_scales), float(min_depth), float(max_depth)
        enc = self.encoder.channels
        # Decoder level i works at 1/2^i of the input: upsample from level i+1, concatenate the
        # encoder's features at that resolution (none at full resolution), convolve.
        dec = [max(8, c) for c in (enc[0] // 2,) + enc[:-1]]
        self.up_convs, self.merge_convs = nn.ModuleList(), nn.ModuleList()
        for i in range(levels - 1, -1, -1):
            previous = enc[-1] if i == levels - 1 else dec[i + 1]
            skip = enc[i - 1] if i > 0 else 0
            self.up_convs.append(_conv(previous, dec[i]))
            self.merge_convs.append(_conv(dec[i] + skip, dec[i]))
        self.heads = nn.ModuleList(nn.Conv2d(dec[s], 1, 3, padding=1, padding_mode="reflect")
                                   for s in range(self.num_scales))
        _initialize(self, outputs=self.heads)

    def disparities(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Sigmoid disparities, finest first: scale s is N x 1 x H/2^s x W/2^s."""
        self.encoder.check_input(image)
        features = self.encoder((image - _MEAN) / _STD)
        levels = len(features)
        x, outputs = features[-1], {}
        for k, i in enumerate(range(levels - 1, -1, -1)):
            x = functional.interpolate(self.up_convs[k](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.merge_convs[k](x)
            if i < self.num_scales:
                outputs[i] = torch.sigmoid(self.heads[i](x))
        return [outputs[s] for s in range(self.num_scales)]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        disparities = self.disparities(image)
        out = {"disparity" if s == 0 else f"disparity_{s}": d for s, d in enumerate(disparities)}
        out["depth"] = disparity_to_depth(disparities[0], self.min_depth, self.max_depth)
        return out


def _check_frames(target: torch.Tensor, sources: torch.Tensor, num_sources: int) -> None:
    if target.ndim != 4 or target.shape[1] != 3:
        raise ValueError(f"target must be N x 3 x H x W, got {tuple(target.shape)}")
    if sources.ndim != 5 or sources.shape[1] != num_sources or sources.shape[2] != 3 \
            or sources.shape[0] != target.shape[0] or sources.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"sources must be N x {num_sources} x 3 x H x W matching the target "
                         f"{tuple(target.shape)}, got {tuple(sources.shape)}")


class _PoseHead(nn.Module):
    """Feature map -> convs (`downsample` of them strided, halving the map each) -> global average
    -> N x num_sources x 6, scaled by POSE_SCALE."""

    def __init__(self, in_channels: int, width: int, num_sources: int, downsample: int = 0):
        super().__init__()
        self.num_sources = num_sources
        strided = [_conv(width, width, stride=2) for _ in range(downsample)]
        self.body = nn.Sequential(_conv(in_channels, width, kernel=1), *strided, _conv(width, width), _conv(width, width))
        self.out = nn.Conv2d(width, 6 * num_sources, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pose = self.out(self.body(features)).mean(dim=(2, 3))
        return POSE_SCALE * pose.view(-1, self.num_sources, 6)


class PoseNet(nn.Module):
    """(target N x 3 x H x W, sources N x S x 3 x H x W) -> {"pose": N x S x 6}, T_target_to_source."""

    def __init__(self, num_sources: int = 1, fusion: str = "early", channels: Sequence[int] = (16, 32, 64, 128, 256),
                 head_width: int = 128):
        super().__init__()
        if fusion not in ("early", "late"):
            raise ValueError(f"fusion must be 'early' (frames stacked on channels) or 'late' (shared encoder "
                             f"per frame, features concatenated), got {fusion!r}")
        if num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {num_sources}")
        self.num_sources, self.fusion = int(num_sources), fusion
        frames = self.num_sources + 1
        self.encoder = ConvEncoder(3 * frames if fusion == "early" else 3, channels)
        deepest = self.encoder.channels[-1]
        self.head = _PoseHead(deepest * (1 if fusion == "early" else frames), head_width, self.num_sources)
        _initialize(self, outputs=[self.head.out])

    def forward(self, target: torch.Tensor, sources: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_frames(target, sources, self.num_sources)
        self.encoder.check_input(target, "target")
        n = target.shape[0]
        frames = torch.cat([target[:, None], sources], dim=1)  # N x (S+1) x 3 x H x W, target first
        frames = (frames - _MEAN) / _STD
        if self.fusion == "early":
            features = self.encoder(frames.flatten(1, 2))[-1]
        else:
            deepest = self.encoder(frames.flatten(0, 1))[-1]   # (N(S+1)) x C x h x w, shared weights
            features = deepest.view(n, -1, *deepest.shape[-2:])  # per-frame features side by side
        return {"pose": self.head(features)}


class PoseFromDepthFeatures(nn.Module):
    """A frozen DepthNet encoder's features of every frame at stage `feature_level`, concatenated
    -> pose head.

    `feature_level` is the encoder stage the head taps: None (default) the deepest, k for stage k
    (1/2^(k+1) of the input). The seed tapped its depth network "from a suitable point": a
    shallower stage keeps the resolution at which frame-to-frame motion is a pixel or more, and the
    head halves the map with strided convolutions down to the deepest stage's size before it
    averages. Build it with ``from_depth_net`` to copy and freeze a trained depth encoder; the plain
    constructor (same ``channels`` as that DepthNet) exists so model.yaml can rebuild it.
    """

    def __init__(self, num_sources: int = 1, channels: Sequence[int] = (16, 32, 64, 128, 256), head_width: int = 128,
                 feature_level: int | None = None):
        super().__init__()
        if num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {num_sources}")
        self.num_sources = int(num_sources)
        self.depth_encoder = ConvEncoder(3, channels)
        levels = len(self.depth_encoder.channels)
        self.feature_level = levels - 1 if feature_level is None else int(feature_level)
        if not 0 <= self.feature_level < levels:
            raise ValueError(f"feature_level must be in 0..{levels - 1} (encoder stages), got {feature_level}")
        tapped = self.depth_encoder.channels[self.feature_level]
        self.head = _PoseHead(tapped * (self.num_sources + 1), head_width, self.num_sources,
                              downsample=levels - 1 - self.feature_level)
        _initialize(self.head, outputs=[self.head.out])
        self.freeze_encoder()

    @classmethod
    def from_depth_net(cls, depth_net: DepthNet, num_sources: int = 1, head_width: int = 128,
                       feature_level: int | None = None) -> "PoseFromDepthFeatures":
        model = cls(num_sources, depth_net.encoder.channels, head_width, feature_level)
        model.depth_encoder.load_state_dict(depth_net.encoder.state_dict())
        return model

    def freeze_encoder(self) -> None:
        for parameter in self.depth_encoder.parameters():
            parameter.requires_grad_(False)
        self.depth_encoder.eval()

    def train(self, mode: bool = True) -> "PoseFromDepthFeatures":
        super().train(mode)
        self.depth_encoder.eval()  # frozen features: never in training mode
        return self

    def forward(self, target: torch.Tensor, sources: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_frames(target, sources, self.num_sources)
        self.depth_encoder.check_input(target, "target")
        n = target.shape[0]
        tapped = (torch.cat([target[:, None], sources], dim=1).flatten(0, 1) - _MEAN) / _STD
        for stage in self.depth_encoder.stages[:self.feature_level + 1]:  # the stages below are not needed
            tapped = stage(tapped)
        return {"pose": self.head(tapped.view(n, -1, *tapped.shape[-2:]))}
