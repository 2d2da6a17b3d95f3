"""Norm-based filter pruning (the seed's `prune` options) for networks that describe their channel
spaces with `pruning_groups()` and take per-layer widths in `layer_widths` (e.g. BodyPoseNet).

For every group of layers sharing an output channel space:
1. each member's filter norms (L2 over in-channels x kernel) are normalised within the layer by
   their maximum (`normalizer="max"`) or by the L2 norm of all of them (`"L2"`);
2. members joined element-wise are equalised per filter (`equalization_criterion`): "union" keeps a
   filter any member needs (max), "intersection" only what all need (min), "arithmetic_mean" /
   "geometric_mean" compare the mean of the normalised norms;
3. filters above `threshold` are kept; at least `min_filters` stay (or all, if fewer), and the kept
   count is rounded up to a multiple of `granularity` (the strongest of the rest fill it up);
4. layers in `excluded_layers` (any member of a group) keep every filter.
The new network is `type(model)(**kwargs with the new layer_widths)`; the kept filters' weights and
the matching input channels of every consumer are copied over. When the removed filters are exactly
zero (kernel and bias) the pruned network computes the same outputs.

Written here: torch's `torch.nn.utils.prune` only masks weights, it never makes a smaller network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NORMALIZERS = ("max", "L2")
EQUALIZATION_CRITERIA = ("union", "intersection", "arithmetic_mean", "geometric_mean")


class PruningError(ValueError):
    """Pruning options out of range, or a model the pruner cannot rebuild."""


@dataclass(frozen=True)
class PruningOptions:
    normalizer: str = "max"
    equalization_criterion: str = "union"
    granularity: int = 8
    threshold: float = 0.1
    min_filters: int = 16
    excluded_layers: tuple[str, ...] = ()

    def __post_init__(self):
        if self.normalizer not in NORMALIZERS:
            raise PruningError(f"normalizer must be one of {NORMALIZERS}, got {self.normalizer!r}")
        if self.equalization_criterion not in EQUALIZATION_CRITERIA:
            raise PruningError(f"equalization_criterion must be one of {EQUALIZATION_CRITERIA}, "
                               f"got {self.equalization_criterion!r}")
        if self.granularity < 1 or self.min_filters < 1:
            raise PruningError(f"granularity and min_filters must be >= 1, got {self.granularity}, {self.min_filters}")
        if not 0 <= self.threshold <= 1:
            raise PruningError(f"threshold compares normalised norms and must be in [0, 1], got {self.threshold}")


def normalize_scores(values: np.ndarray, normalizer: str) -> np.ndarray:
    """Non-negative per-filter values divided by their maximum ("max") or their L2 norm ("L2")."""
    values = np.asarray(values, dtype=np.float64)
    scale = values.max() if normalizer == "max" else np.linalg.norm(values)
    return values / scale if scale > 0 else values


def filter_scores(weight: torch.Tensor, normalizer: str) -> np.ndarray:
    """Normalised L2 norms of a conv's output filters."""
    norms = weight.detach().reshape(weight.shape[0], -1).norm(dim=1).double().cpu().numpy()
    return normalize_scores(norms, normalizer)


def _equalize(scores: list[np.ndarray], criterion: str) -> np.ndarray:
    stacked = np.stack(scores)
    if criterion == "union":
        return stacked.max(axis=0)
    if criterion == "intersection":
        return stacked.min(axis=0)
    if criterion == "arithmetic_mean":
        return stacked.mean(axis=0)
    return np.exp(np.log(np.maximum(stacked, 1e-300)).mean(axis=0))


def select_kept_filters(score: np.ndarray, options: PruningOptions) -> np.ndarray:
    """Sorted indices of the filters to keep: above threshold, at least min_filters, rounded up to
    the granularity by the strongest of the rest (shared with ros2_pose.pruning.dolly)."""
    total = len(score)
    count = int(np.count_nonzero(score > options.threshold))
    count = max(count, min(options.min_filters, total))
    count = min(total, int(np.ceil(count / options.granularity)) * options.granularity)
    order = np.argsort(-score, kind="stable")
    return np.sort(order[:count])


def prune_model(model: torch.nn.Module, options: PruningOptions | None = None) -> tuple[torch.nn.Module, dict]:
    """(smaller model of the same class, report {kept: {group: indices}, widths, parameter counts})."""
    options = options or PruningOptions()
    if not hasattr(model, "pruning_groups") or not hasattr(model, "kwargs"):
        raise PruningError(f"{type(model).__name__} does not describe its channel spaces (pruning_groups/kwargs)")
    layers = dict(model.layers.items())
    groups = model.pruning_groups()
    unknown = sorted(set(options.excluded_layers) - set(layers))
    if unknown:
        raise PruningError(f"excluded layers {unknown} are not layers of the model (layers: {sorted(layers)})")
    kept: dict[str, np.ndarray] = {}
    out_keep: dict[str, np.ndarray] = {}
    in_removed: dict[str, list[np.ndarray]] = {}
    for group in groups:
        size = layers[group.members[0]].out_channels
        if any(m in options.excluded_layers for m in group.members):
            keep = np.arange(size)
        else:
            scores = [filter_scores(layers[m].weight, options.normalizer) for m in group.members]
            keep = select_kept_filters(_equalize(scores, options.equalization_criterion), options)
        kept[group.name] = keep
        removed = np.setdiff1d(np.arange(size), keep)
        for member in group.members:
            out_keep[member] = keep
        for consumer, offset in group.consumers:
            in_removed.setdefault(consumer, []).append(removed + offset)
    widths = dict(model.kwargs.get("layer_widths") or {})
    for group in groups:
        for member in group.members:
            widths[member] = int(len(kept[group.name]))
    kwargs = dict(model.kwargs, layer_widths=widths)
    pruned = type(model)(**kwargs)
    state = {}
    with torch.no_grad():
        for name, layer in layers.items():
            rows = out_keep.get(name, np.arange(layer.out_channels))
            cols = np.setdiff1d(np.arange(layer.in_channels), np.concatenate(in_removed.get(name, [np.array([], int)])))
            state[f"layers.{name}.weight"] = layer.weight[torch.as_tensor(rows)][:, torch.as_tensor(cols)].clone()
            if layer.bias is not None:
                state[f"layers.{name}.bias"] = layer.bias[torch.as_tensor(rows)].clone()
    pruned.load_state_dict(state, strict=True)
    report = {
        "options": {"normalizer": options.normalizer, "equalization_criterion": options.equalization_criterion,
                    "granularity": options.granularity, "threshold": options.threshold,
                    "min_filters": options.min_filters, "excluded_layers": list(options.excluded_layers)},
        "kept": {name: [int(i) for i in keep] for name, keep in kept.items()},
        "layer_widths": widths,
        "parameters_before": int(sum(p.numel() for p in model.parameters())),
        "parameters_after": int(sum(p.numel() for p in pruned.parameters())),
    }
    return pruned.train(model.training), report
