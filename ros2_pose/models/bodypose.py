"""BodyPoseNet-style multi-person pose network: a small VGG-like backbone (stride 8) and 2-6 stages,
each predicting 19 confidence maps (18 joints + background) and 38 part affinity fields.

Stage 1 reads the backbone features; every refinement stage reads the features concatenated with
the previous stage's maps, as in OpenPose/BodyPoseNet. Refinement stages use a residual block
(`in` and `r2` are added element-wise), which keeps them trainable when deep and gives the pruner
a real element-wise join to equalise.

Every conv is in `self.layers` under a stable name and every hidden width can be set per layer
through `layer_widths`, so a pruned network is the same class with smaller widths: model.yaml's
kwargs are the whole pruned-graph description. `pruning_groups()` tells the pruner which layers
share output channels and which layers read them.

Backbone written here (no torchvision CPU build exists, see ENVIRONMENT.md); ONNX-exportable (plain
conv/relu/maxpool/concat/add).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# (name, width multiple of `width`, max-pool after it): stride 8 after three pools.
_BACKBONE = (("b0", 1, False), ("b1", 1, True), ("b2", 2, False), ("b3", 2, True),
             ("b4", 4, False), ("b5", 4, True), ("b6", 4, False))


@dataclass(frozen=True)
class PruningGroup:
    """Layers whose output channels are one channel space (joined element-wise, or a single layer),
    and the (layer, input channel offset) pairs that read that space."""

    name: str
    members: tuple[str, ...]
    consumers: tuple[tuple[str, int], ...]


class BodyPoseNet(nn.Module):
    STRIDE = 8

    def __init__(self, width: int = 16, stages: int = 3, heat_channels: int = 19, paf_channels: int = 38,
                 in_channels: int = 3, stage_width: int | None = None, output_stage: int | None = None,
                 use_bias: bool = True, layer_widths: dict[str, int] | None = None):
        super().__init__()
        if not 2 <= stages <= 6:
            raise ValueError(f"stages must be in [2, 6] (stage 1 + refinement stages), got {stages}")
        if width < 1 or (stage_width is not None and stage_width < 1):
            raise ValueError(f"width and stage_width must be positive, got {width}, {stage_width}")
        if output_stage is not None and not 1 <= output_stage <= stages:
            raise ValueError(f"output_stage must be in 1..{stages} or None, got {output_stage}")
        self.kwargs = dict(width=width, stages=stages, heat_channels=heat_channels, paf_channels=paf_channels,
                           in_channels=in_channels, stage_width=stage_width, output_stage=output_stage,
                           use_bias=use_bias, layer_widths=dict(layer_widths or {}))
        self.stages, self.heat_channels, self.paf_channels = stages, heat_channels, paf_channels
        self.output_stage = output_stage
        stage_width = stage_width or 2 * width
        widths = {name: multiple * width for name, multiple, _ in _BACKBONE}
        widths.update({"s1_c0": stage_width, "s1_c1": stage_width})
        for s in range(2, stages + 1):
            widths.update({f"s{s}_in": stage_width, f"s{s}_r1": stage_width, f"s{s}_r2": stage_width})
        unknown = sorted(set(layer_widths or {}) - set(widths))
        if unknown:
            raise ValueError(f"layer_widths names unknown layers {unknown} (known: {sorted(widths)})")
        widths.update({k: int(v) for k, v in (layer_widths or {}).items()})
        for s in range(2, stages + 1):
            if widths[f"s{s}_in"] != widths[f"s{s}_r2"]:
                raise ValueError(f"s{s}_in and s{s}_r2 are added element-wise; their widths must match, got "
                                 f"{widths[f's{s}_in']} and {widths[f's{s}_r2']}")
        self.widths = widths
        self.pool_after = {name for name, _, pool in _BACKBONE if pool}
        layers: dict[str, nn.Module] = {}
        previous = in_channels
        for name, _, _ in _BACKBONE:
            layers[name] = nn.Conv2d(previous, widths[name], 3, padding=1, bias=True)
            previous = widths[name]
        features = previous
        layers["s1_c0"] = nn.Conv2d(features, widths["s1_c0"], 3, padding=1, bias=use_bias)
        layers["s1_c1"] = nn.Conv2d(widths["s1_c0"], widths["s1_c1"], 3, padding=1, bias=use_bias)
        layers["s1_heat"] = nn.Conv2d(widths["s1_c1"], heat_channels, 1)
        layers["s1_paf"] = nn.Conv2d(widths["s1_c1"], paf_channels, 1)
        for s in range(2, stages + 1):
            layers[f"s{s}_in"] = nn.Conv2d(features + heat_channels + paf_channels, widths[f"s{s}_in"], 3,
                                           padding=1, bias=use_bias)
            layers[f"s{s}_r1"] = nn.Conv2d(widths[f"s{s}_in"], widths[f"s{s}_r1"], 3, padding=1, bias=use_bias)
            layers[f"s{s}_r2"] = nn.Conv2d(widths[f"s{s}_r1"], widths[f"s{s}_r2"], 3, padding=1, bias=use_bias)
            layers[f"s{s}_heat"] = nn.Conv2d(widths[f"s{s}_r2"], heat_channels, 1)
            layers[f"s{s}_paf"] = nn.Conv2d(widths[f"s{s}_r2"], paf_channels, 1)
        self.layers = nn.ModuleDict(layers)
        self._initialize()

    def _initialize(self) -> None:
        """He (Kaiming) initialisation of every ReLU convolution, small output heads. PyTorch's
        default (uniform, a=sqrt(5): 1/3 of the He variance) shrinks the signal ~6x per ReLU layer
        in this network without batch-norm: after the 7 backbone convolutions the maps no longer
        depended on the image, and training sat on the all-background plateau."""
        for name, conv in self.layers.items():
            if name.endswith(("_heat", "_paf")):
                nn.init.normal_(conv.weight, std=0.01)
            else:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def backbone(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for name, _, pool in _BACKBONE:
            x = torch.relu(self.layers[name](x))
            if pool:
                x = nn.functional.max_pool2d(x, 2, 2)
        return x

    def forward_stages(self, image: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(heatmaps, pafs)] of every stage, first to last (what the loss supervises)."""
        if image.ndim != 4 or image.shape[-1] % self.STRIDE or image.shape[-2] % self.STRIDE:
            raise ValueError(f"image must be (N, C, H, W) with H, W multiples of {self.STRIDE}, got {tuple(image.shape)}")
        features = self.backbone(image)
        layers = self.layers
        x = torch.relu(layers["s1_c1"](torch.relu(layers["s1_c0"](features))))
        outputs = [(layers["s1_heat"](x), layers["s1_paf"](x))]
        for s in range(2, self.stages + 1):
            heat, paf = outputs[-1]
            y = torch.relu(layers[f"s{s}_in"](torch.cat([features, heat, paf], dim=1)))
            r = layers[f"s{s}_r2"](torch.relu(layers[f"s{s}_r1"](y)))
            z = torch.relu(y + r)
            outputs.append((layers[f"s{s}_heat"](z), layers[f"s{s}_paf"](z)))
        return outputs

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"heatmaps": (N, 19, H/8, W/8), "pafs": (N, 38, H/8, W/8)} of `output_stage` (default last)."""
        outputs = self.forward_stages(image)
        heat, paf = outputs[(self.output_stage or self.stages) - 1]
        return {"heatmaps": heat, "pafs": paf}

    def pruning_groups(self) -> list[PruningGroup]:
        """Channel spaces the pruner may shrink; the output heads are never pruned."""
        groups = []
        names = [name for name, _, _ in _BACKBONE]
        for name, following in zip(names[:-1], names[1:]):
            groups.append(PruningGroup(name, (name,), ((following, 0),)))
        feature_readers = [("s1_c0", 0)] + [(f"s{s}_in", 0) for s in range(2, self.stages + 1)]
        groups.append(PruningGroup(names[-1], (names[-1],), tuple(feature_readers)))
        groups.append(PruningGroup("s1_c0", ("s1_c0",), (("s1_c1", 0),)))
        groups.append(PruningGroup("s1_c1", ("s1_c1",), (("s1_heat", 0), ("s1_paf", 0))))
        for s in range(2, self.stages + 1):
            groups.append(PruningGroup(f"s{s}_in", (f"s{s}_in", f"s{s}_r2"),
                                       ((f"s{s}_r1", 0), (f"s{s}_heat", 0), (f"s{s}_paf", 0))))
            groups.append(PruningGroup(f"s{s}_r1", (f"s{s}_r1",), ((f"s{s}_r2", 0),)))
        return groups

    def parameter_group(self, name: str) -> str:
        """'backbone', 'stage1' or 'refinement' for a parameter name (stage-wise LR multipliers)."""
        layer = name.split(".")[1] if name.startswith("layers.") else name
        if layer.startswith("b"):
            return "backbone"
        return "stage1" if layer.startswith("s1_") else "refinement"
