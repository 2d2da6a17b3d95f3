"""Channel pruning of the dolly pose network (DollyPoseNet), by activation statistics or weight norm.

Seed 000 found about half of the first encoder layer's channels empty and retrained with half the
filters in the encoder and decoder. This makes that step concrete: score every prunable channel,
keep the strong ones, and cut a smaller DollyPoseNet out of the trained one, ready to (re)train.

Channel spaces. DollyPoseNet takes one width tuple (c1, c2, c3, c4) for its encoder *and* decoder,
so each width is shared by independent channel spaces ("slots"):
    c1: encoder.0                     c2: encoder.1 and decoder.1
    c3: encoder.2 and decoder.0       c4: encoder.3 and from_latent (its output seen as c4 x 8 x 8)
Every layer is scored and thresholded on its own (`select_kept_filters` of filter_pruning, with its
threshold, min_filters and granularity); the layers of one slot then keep the same count, the
largest any of them needs, each its own strongest channels. So no layer loses a channel above the
threshold, and a channel is only removed where it was below it. Consumers follow: the next conv's
input channels, `to_latent`'s input features (channel-major flatten) and the decoder convs' inputs.
(BodyPoseNet's element-wise joins, hence `equalization_criterion`, do not occur here.)

Criteria (scores normalised per layer by `normalizer`, as in filter_pruning):
- "activation": a channel's mean activation (post-ReLU block output) on data. `threshold` 0 removes
  only channels that are exactly zero on that data, which leaves the outputs unchanged on it.
- "weight_norm": the L2 norm of a conv filter times its BatchNorm scale |gamma| / sqrt(var + eps)
  (the effective filter; a tiny gamma silences a large kernel), or of `from_latent`'s rows of a
  channel. It ignores the BatchNorm shift: a removed filter of zero norm whose shift is positive was a
  constant channel, which the pruned network loses (fine-tuning recovers it).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch

from ros2_pose.models.dolly_pose import DollyPoseNet
from ros2_pose.pruning.filter_pruning import (PruningError, PruningOptions, filter_scores, normalize_scores,
                                              select_kept_filters)

CRITERIA = ("activation", "weight_norm")
SLOTS: tuple[tuple[str, ...], ...] = (("encoder.0",), ("encoder.1", "decoder.1"), ("encoder.2", "decoder.0"),
                                      ("encoder.3", "from_latent"))
PRUNABLE_LAYERS = tuple(layer for slot in SLOTS for layer in slot)
LATENT_GRID = 8 * 8   # DollyPoseNet's last encoder map (and the decoder's first) is 8 x 8


def _conv_and_norm(model: DollyPoseNet, layer: str) -> tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d]:
    block = model.get_submodule(layer)
    # encoder blocks are (Conv, BN, ReLU); decoder up-blocks are (Upsample, Conv, BN, ReLU)
    offset = 0 if layer.startswith("encoder") else 1
    return block[offset], block[offset + 1]


def model_kwargs(model: DollyPoseNet) -> dict:
    """The constructor arguments that rebuild `model` (read from its layers, not trusted from a file)."""
    return {"width": [int(w) for w in model.widths], "latent_size": int(model.to_latent[1].out_features),
            "box_features": int(model.box_encoder[0].out_features), "head_features": int(model.head[0].out_features)}


def weight_norm_scores(model: DollyPoseNet, normalizer: str = "max") -> dict[str, np.ndarray]:
    """layer -> per-channel effective weight norm, normalised within the layer."""
    scores = {}
    for layer in PRUNABLE_LAYERS:
        if layer == "from_latent":
            weight = model.from_latent[0].weight.detach()                 # (c4 * 64) x latent
            scores[layer] = filter_scores(weight.reshape(model.widths[3], -1), normalizer)
            continue
        conv, norm = _conv_and_norm(model, layer)
        scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach().abs()
        scores[layer] = filter_scores(conv.weight.detach() * scale[:, None, None, None], normalizer)
    return scores


def activation_scores(model: DollyPoseNet, crops: np.ndarray, boxes: np.ndarray, normalizer: str = "max",
                      batch_size: int = 32) -> dict[str, np.ndarray]:
    """layer -> per-channel mean activation over `crops` (N x 128 x 128 x 3 uint8) and `boxes`,
    normalised within the layer."""
    from ros2_pose.insight.feature_maps import collect_channel_statistics

    stats = collect_channel_statistics(
        model, crops, boxes, PRUNABLE_LAYERS, batch_size=batch_size,
        channel_views={"from_latent": lambda out: out.reshape(out.shape[0], -1, LATENT_GRID)})
    return {layer: normalize_scores(stats[layer].mean, normalizer) for layer in PRUNABLE_LAYERS}


@dataclass
class DollyPruningResult:
    model: DollyPoseNet
    kwargs: dict
    report: dict


def _top(score: np.ndarray, count: int) -> np.ndarray:
    return np.sort(np.argsort(-score, kind="stable")[:count])


def prune_dolly(model: DollyPoseNet, options: PruningOptions | None = None, criterion: str = "weight_norm",
                crops: np.ndarray | None = None, boxes: np.ndarray | None = None,
                batch_size: int = 32) -> DollyPruningResult:
    """A smaller DollyPoseNet with the weak channels of every prunable layer removed (module doc).
    `crops`/`boxes` are the data for criterion "activation"."""
    options = options or PruningOptions()
    if not isinstance(model, DollyPoseNet):
        raise PruningError(f"prune_dolly prunes a DollyPoseNet, got {type(model).__name__}")
    if criterion not in CRITERIA:
        raise PruningError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    unknown = sorted(set(options.excluded_layers) - set(PRUNABLE_LAYERS))
    if unknown:
        raise PruningError(f"excluded layers {unknown} are not prunable layers of DollyPoseNet "
                           f"(layers: {list(PRUNABLE_LAYERS)})")
    was_training = model.training
    model.eval()
    if criterion == "activation":
        if crops is None or boxes is None or len(crops) == 0:
            raise PruningError("criterion 'activation' needs data: crops and boxes (--data)")
        scores = activation_scores(model, crops, boxes, options.normalizer, batch_size)
    else:
        scores = weight_norm_scores(model, options.normalizer)
    kept: dict[str, np.ndarray] = {}
    for slot, layers in enumerate(SLOTS):
        size = model.widths[slot]
        if any(layer in options.excluded_layers for layer in layers):
            count = size
        else:
            count = max(len(select_kept_filters(scores[layer], options)) for layer in layers)
        for layer in layers:
            kept[layer] = _top(scores[layer], count)
    kwargs = dict(model_kwargs(model), width=[len(kept[slot[0]]) for slot in SLOTS])
    pruned = DollyPoseNet(**kwargs)
    pruned.load_state_dict(_pruned_state(model, kept), strict=True)
    report = {
        "criterion": criterion,
        "options": {"normalizer": options.normalizer, "granularity": options.granularity,
                    "threshold": options.threshold, "min_filters": options.min_filters,
                    "excluded_layers": list(options.excluded_layers)},
        "widths_before": [int(w) for w in model.widths], "widths_after": kwargs["width"],
        "kept": {layer: idx.tolist() for layer, idx in kept.items()},
        "removed": {layer: np.setdiff1d(np.arange(len(scores[layer])), idx).tolist() for layer, idx in kept.items()},
        "scores": {layer: s.tolist() for layer, s in scores.items()},
        "parameters_before": int(sum(p.numel() for p in model.parameters())),
        "parameters_after": int(sum(p.numel() for p in pruned.parameters())),
    }
    model.train(was_training)
    return DollyPruningResult(pruned.train(was_training), kwargs, report)


def _pruned_state(model: DollyPoseNet, kept: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The original state dict with the removed channels cut out of producers and consumers."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    index = {layer: torch.as_tensor(idx, dtype=torch.long) for layer, idx in kept.items()}

    def cut_block(prefix_conv: str, prefix_norm: str, rows: torch.Tensor, cols: torch.Tensor | None) -> None:
        weight = state[f"{prefix_conv}.weight"][rows]
        state[f"{prefix_conv}.weight"] = weight if cols is None else weight[:, cols]
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"{prefix_norm}.{name}"] = state[f"{prefix_norm}.{name}"][rows]

    previous = None
    for i in range(4):
        layer = f"encoder.{i}"
        cut_block(f"{layer}.0", f"{layer}.1", index[layer], previous)
        previous = index[layer]
    latent_weight = state["to_latent.1.weight"]                       # latent x (c4 * 64), channel-major
    state["to_latent.1.weight"] = latent_weight.reshape(latent_weight.shape[0], -1, LATENT_GRID)[
        :, index["encoder.3"]].reshape(latent_weight.shape[0], -1)
    rows = index["from_latent"]
    weight, bias = state["from_latent.0.weight"], state["from_latent.0.bias"]
    state["from_latent.0.weight"] = weight.reshape(-1, LATENT_GRID, weight.shape[1])[rows].reshape(-1, weight.shape[1])
    state["from_latent.0.bias"] = bias.reshape(-1, LATENT_GRID)[rows].reshape(-1)
    cut_block("decoder.0.1", "decoder.0.2", index["decoder.0"], index["from_latent"])
    cut_block("decoder.1.1", "decoder.1.2", index["decoder.1"], index["decoder.0"])
    state["decoder.2.weight"] = state["decoder.2.weight"][:, index["decoder.1"]]
    return state


def retrain_model_section(kwargs: dict) -> dict:
    """The `model:` section of a `ros2-pose train dolly` config for the pruned widths: only the
    arguments that differ from DollyPoseNet's defaults (the training config knows `width` only)."""
    defaults = {name: p.default for name, p in inspect.signature(DollyPoseNet).parameters.items()}
    return {k: v for k, v in kwargs.items() if k == "width" or defaults.get(k) != v}
