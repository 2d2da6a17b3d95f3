"""Feature maps of named layers, captured with forward hooks while the network runs on crops.

A layer is named as in `model.named_modules()` (`encoder.0` is DollyPoseNet's first conv block:
Conv2d + BatchNorm + ReLU, so its output is the post-ReLU map). Inputs are crops (N x 128 x 128 x 3
uint8 RGB, the dataset convention) and their normalised boxes (N x 4); the model sees them exactly
as the training loop and the pipeline feed them (float in [0, 1], N x 3 x H x W).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ros2_pose.insight.statistics import ChannelStatistics


class UnknownLayerError(KeyError):
    """A layer name that is not a module of the model."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def resolve_layers(model: torch.nn.Module, layers: Sequence[str]) -> dict[str, torch.nn.Module]:
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules or name == ""]
    if missing:
        # Listing only the top two levels keeps the message readable (encoder, encoder.0, ...).
        shown = [n for n in modules if n and n.count(".") <= 1]
        raise UnknownLayerError(f"layer(s) {missing} are not modules of {type(model).__name__}; "
                                f"available: {shown}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers listed twice: {list(layers)}")
    return {name: modules[name] for name in layers}


@contextlib.contextmanager
def layer_hooks(model: torch.nn.Module, layers: Sequence[str],
                sink: Callable[[str, torch.Tensor], None]) -> Iterator[None]:
    """While inside, every forward pass calls `sink(layer, output)` for each named layer."""
    handles = []
    try:
        for name, module in resolve_layers(model, layers).items():
            def hook(_module, _inputs, output, name=name):
                if not isinstance(output, torch.Tensor):
                    raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
                # clone: an inplace op after the layer (ReLU(inplace=True)) would change the map
                sink(name, output.detach().clone())
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float in [0, 1]."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"crops must be N x H x W x 3 uint8, got {crops.shape} {crops.dtype}")
    return torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).float() / 255.0


def run_batches(model: torch.nn.Module, crops: np.ndarray, boxes: np.ndarray, batch_size: int = 32) -> None:
    """Run the model over all crops (its outputs are not kept: the hooks collect what is wanted)."""
    if len(crops) != len(boxes):
        raise ValueError(f"{len(crops)} crops but {len(boxes)} boxes")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    with torch.no_grad():
        for start in range(0, len(crops), batch_size):
            model(crops_to_tensor(crops[start:start + batch_size]),
                  torch.from_numpy(np.asarray(boxes[start:start + batch_size], np.float32)))


def capture_feature_maps(model: torch.nn.Module, crops: np.ndarray, boxes: np.ndarray,
                         layers: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
    """layer -> N x C x H x W float32 (N x features for linear layers)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    with layer_hooks(model, layers, lambda name, out: parts[name].append(out.cpu().numpy())):
        run_batches(model, crops, boxes, batch_size)
    return {name: np.concatenate(chunks).astype(np.float32, copy=False) for name, chunks in parts.items()}


def collect_channel_statistics(model: torch.nn.Module, crops: np.ndarray, boxes: np.ndarray,
                               layers: Sequence[str], batch_size: int = 32,
                               channel_views: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None
                               ) -> dict[str, ChannelStatistics]:
    """layer -> ChannelStatistics, accumulated batch by batch (no feature map is kept).

    `channel_views[layer]` reshapes a layer's output to N x C x ... first (e.g. a Linear layer
    whose features are C channels of 8 x 8, like DollyPoseNet's `from_latent`)."""
    views = channel_views or {}
    stats: dict[str, ChannelStatistics] = {}

    def sink(name: str, out: torch.Tensor) -> None:
        out = views[name](out) if name in views else out
        if name not in stats:
            stats[name] = ChannelStatistics(out.shape[1])
        stats[name].update(out.cpu().numpy())

    with layer_hooks(model, layers, sink):
        run_batches(model, crops, boxes, batch_size)
    return stats
