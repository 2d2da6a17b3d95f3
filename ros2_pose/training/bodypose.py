"""BodyPoseNet training: targets on the fly, loss over every stage, the seed's optimiser and schedule.

- Samples come from a `bpnet dataset_convert` folder (ros2_pose.data.body_dataset); each is
  augmented (ros2_pose.data.body_augment) and turned into 19 heatmaps, 38 PAFs and a loss mask
  that is 0 where unlabelled people stand (ros2_pose.codecs).
- Loss: sum over stages of the masked squared error of heatmaps and PAFs (intermediate
  supervision, as OpenPose/BodyPoseNet), plus the model's L1/L2 kernel (and bias) regularisation.
- Optimiser: SGD with momentum (optionally Nesterov) - the seed's WeightedMomentumOptimizer - or
  Adam (`optimizer.type`, see `make_optimizer`), with
  per-layer learning-rate multipliers (`grad_weights_dict`, prefix of the parameter name ->
  multiplier, `weight_default_value` otherwise) and optional stage-wise multipliers. Learning rate:
  the seed's soft-start annealing schedule (`soft_start_annealing_lr`).
- Checkpoints: TrainingRun keeps checkpoint_last/best every epoch (automatic resume, as TLT does);
  every `checkpoint_n_epoch` epochs a numbered copy is kept too, at most `max_ckpt_to_keep`.
- `pretrained_weights`: a model folder or a .pt state dict (in a spec: a shipped model's name or a
  path inside the spec's folder, `bpnet train` resolves it); with `load_graph` the network is
  rebuilt from that folder's model.yaml (a pruned graph) and regularisation is off by default.

Not `training.loop.fit`: fit owns AdamW + one-cycle, while the seed asks for momentum SGD with a
soft-start annealing schedule; `make_step` / `make_validate` still have fit's closure signatures.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ros2_pose.codecs.body_heatmaps import encode_body_heatmaps, unlabeled_people_mask
from ros2_pose.codecs.paf import encode_pafs
from ros2_pose.data.body_augment import (SpatialAugmentParams, apply_transform, left_right_permutation,
                                         sample_transform)
from ros2_pose.models.bodypose import BodyPoseNet
from ros2_pose.pipelines.body_pose import normalize_image
from ros2_pose.sim.skeleton import BODYPOSE18_LIMBS, COCO_KEYPOINTS, coco17_to_bodypose18
from ros2_pose.training.loop import model_device
from ros2_pose.training.run import ConfigError, TrainingRun, model_from_folder, seed_everything

ARCHITECTURE = "ros2_pose.models.bodypose:BodyPoseNet"
SAMPLE_FIELDS = ["image", "unlabeled_mask", "keypoints", "num_people", "center", "person_height", "image_size"]

DEFAULTS: dict[str, Any] = {
    "data": "",                       # dataset folder from `bpnet dataset_convert`, or a list of them
    "num_epoch": 100,
    "checkpoint_n_epoch": 5,
    "max_ckpt_to_keep": 100,
    "random_seed": 42,
    "pretrained_weights": None,
    "load_graph": False,
    "use_stagewise_lr_multipliers": False,
    "stagewise_lr_multipliers": {"backbone": 2.0, "stage1": 1.0, "refinement": 4.0},
    "model": {"width": 16, "stages": 3, "stage_width": None, "use_bias": True,
              "regularization_type": "l1", "kernel_regularization_factor": 5.0e-4,
              "bias_regularization_factor": 0.0},
    "optimizer": {"learning_rate_schedule": {"soft_start": 0.05, "annealing": 0.5, "base_learning_rate": 2.0e-5,
                                             "min_learning_rate": 8.0e-8},
                  "grad_weights_dict": None, "weight_default_value": 1.0, "momentum": 0.9, "use_nesterov": False,
                  "type": "sgd"},
    "dataloader": {"batch_size": 10, "image_dims": {"height": 256, "width": 256},
                   "augmentation_config": {"spatial_augmentation_mode": "person_centric",
                                           "spatial_aug_params": dataclasses.asdict(SpatialAugmentParams())},
                   "label_processor_config": {"paf_gaussian_sigma": 0.03, "heatmap_gaussian_sigma": 7.0,
                                              "paf_ortho_dist_thresh": 1.0}},
}
REGULARIZATION_TYPES = ("l1", "l2", "l1_l2")
OPTIMIZER_TYPES = ("sgd", "adam")


def soft_start_annealing_lr(progress: float, base_lr: float, min_lr: float, soft_start: float,
                            annealing: float) -> float:
    """The seed's schedule over training progress in [0, 1]: exponential ramp from min_lr up to
    base_lr until `soft_start`, flat until `annealing`, exponential decay back to min_lr at 1."""
    if not 0 <= soft_start <= annealing <= 1:
        raise ConfigError(f"need 0 <= soft_start <= annealing <= 1, got {soft_start}, {annealing}")
    if not 0 < min_lr <= base_lr:
        raise ConfigError(f"need 0 < min_learning_rate <= base_learning_rate, got {min_lr}, {base_lr}")
    progress = min(max(progress, 0.0), 1.0)
    log_min, log_base = math.log(min_lr), math.log(base_lr)
    if progress < soft_start:
        return math.exp(log_min + (log_base - log_min) * progress / soft_start)
    if progress > annealing and annealing < 1:
        return math.exp(log_base + (log_min - log_base) * (progress - annealing) / (1 - annealing))
    return base_lr


def bodypose_loss(stages: list[tuple[torch.Tensor, torch.Tensor]], heatmaps: torch.Tensor, pafs: torch.Tensor,
                  mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over stages of masked squared errors (per batch element and grid cell)."""
    n, _, h, w = heatmaps.shape
    weight = mask[:, None]
    heat_total = paf_total = 0.0
    for heat, paf in stages:
        if heat.shape != heatmaps.shape or paf.shape != pafs.shape:
            raise ValueError(f"stage outputs {tuple(heat.shape)}/{tuple(paf.shape)} do not match targets "
                             f"{tuple(heatmaps.shape)}/{tuple(pafs.shape)}")
        heat_total = heat_total + (((heat - heatmaps) ** 2) * weight).sum() / (n * h * w)
        paf_total = paf_total + (((paf - pafs) ** 2) * weight).sum() / (n * h * w)
    loss = heat_total + paf_total
    return loss, {"heatmap": float(heat_total.detach()), "paf": float(paf_total.detach())}


def regularization(model: torch.nn.Module, kind: str, kernel_factor: float, bias_factor: float) -> torch.Tensor:
    if kind not in REGULARIZATION_TYPES:
        raise ConfigError(f"regularization_type must be one of {REGULARIZATION_TYPES}, got {kind!r}")
    total = torch.zeros((), device=model_device(model))
    for name, param in model.named_parameters():
        factor = kernel_factor if name.endswith("weight") else bias_factor
        if factor == 0:
            continue
        if kind in ("l1", "l1_l2"):
            total = total + factor * param.abs().sum()
        if kind in ("l2", "l1_l2"):
            total = total + factor * (param ** 2).sum()
    return total


def dataset_folders(data) -> list[str]:
    """config `data` as a list of `bpnet dataset_convert` folders (one folder or a list of them)."""
    folders = [data] if isinstance(data, (str, Path)) else list(data or [])
    if not folders or not all(isinstance(f, (str, Path)) and str(f) for f in folders):
        raise ConfigError(f"data must be a `bpnet dataset_convert` folder or a list of them, got {data!r}")
    return [str(f) for f in folders]


class BodyPoseSamples:
    """Training samples of a dataset split (of one or several dataset folders, in order) turned
    into (input, heatmaps, pafs, mask) arrays."""

    def __init__(self, folders: str | Path | list, split: str, config: dict, augment: bool):
        from ros2_pose.data.dataset import ArrayDataset

        self.datasets = [ArrayDataset(folder, split, fields=SAMPLE_FIELDS) for folder in dataset_folders(folders)]
        self._starts = np.cumsum([0] + [len(d) for d in self.datasets])
        loader = config["dataloader"]
        self.output_hw = (int(loader["image_dims"]["height"]), int(loader["image_dims"]["width"]))
        if any(v % BodyPoseNet.STRIDE for v in self.output_hw):
            raise ConfigError(f"image_dims {self.output_hw} must be multiples of {BodyPoseNet.STRIDE}")
        self.target_hw = (self.output_hw[0] // BodyPoseNet.STRIDE, self.output_hw[1] // BodyPoseNet.STRIDE)
        aug = loader["augmentation_config"]
        self.mode = aug["spatial_augmentation_mode"]
        self.params = SpatialAugmentParams.from_dict(aug["spatial_aug_params"]) if augment \
            else SpatialAugmentParams.identity()
        self.labels = loader["label_processor_config"]
        self.permutation = left_right_permutation(COCO_KEYPOINTS)
        self.seed = int(config["random_seed"])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def item(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index` counted over the datasets in order."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} outside 0..{len(self) - 1}")
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.datasets[k][index - int(self._starts[k])]

    def sample(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        item = self.item(index)
        height, width = (int(v) for v in item["image_size"])
        people = item["keypoints"][:int(item["num_people"])]
        rng = np.random.default_rng([self.seed, epoch, index])  # same augmentation after a resume
        transform = sample_transform(rng, self.params, (height, width), self.output_hw, center=item["center"],
                                     person_height=float(item["person_height"]), mode=self.mode)
        image, mask, people = apply_transform(transform, item["image"][:height, :width],
                                              item["unlabeled_mask"][:height, :width], people, self.output_hw,
                                              self.permutation)
        people18 = coco17_to_bodypose18(people) if len(people) else np.zeros((0, 18, 3))
        th, tw = self.target_hw
        heat = encode_body_heatmaps(people18, th, tw, BodyPoseNet.STRIDE, float(self.labels["heatmap_gaussian_sigma"]))
        paf = encode_pafs(people18, BODYPOSE18_LIMBS, th, tw, BodyPoseNet.STRIDE,
                          float(self.labels["paf_ortho_dist_thresh"]), float(self.labels["paf_gaussian_sigma"]))
        return normalize_image(image), heat, paf, unlabeled_people_mask(mask, th, tw)

    def batch(self, indices, epoch: int, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
        """(image, heatmaps, pafs, mask) tensors of the samples `indices`, made on the CPU and then
        copied to `device` (default: left on the CPU)."""
        parts = [self.sample(int(i), epoch) for i in indices]
        return tuple(torch.from_numpy(np.stack(column)).to(device) for column in zip(*parts))


def make_step(model: BodyPoseNet, samples: BodyPoseSamples, config: dict,
              epoch_of: Callable[[], int] = lambda: 0) -> Callable[[np.ndarray], tuple[torch.Tensor, dict]]:
    """fit-style `step(batch_indices) -> (loss, parts)`: targets, forward over all stages, loss."""
    model_cfg = config["model"]
    regularize = not config["load_graph"]

    def step(indices):
        image, heat, paf, mask = samples.batch(indices, epoch_of(), model_device(model))
        loss, parts = bodypose_loss(model.forward_stages(image), heat, paf, mask)
        if regularize:
            reg = regularization(model, model_cfg["regularization_type"], float(model_cfg["kernel_regularization_factor"]),
                                 float(model_cfg["bias_regularization_factor"]))
            parts["regularization"] = float(reg.detach())
            loss = loss + reg
        return loss, parts

    return step


def make_validate(model: BodyPoseNet, samples: BodyPoseSamples, batch_size: int) -> Callable[[], dict[str, float]]:
    """fit-style `validate() -> {"loss": ...}`: the un-augmented stage loss over the samples."""
    def validate():
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                indices = range(start, min(len(samples), start + batch_size))
                image, heat, paf, mask = samples.batch(indices, 0, model_device(model))
                loss, _ = bodypose_loss(model.forward_stages(image), heat, paf, mask)
                total += float(loss) * len(indices)
                count += len(indices)
        model.train()
        return {"loss": total / max(count, 1)}

    return validate


def build_model(config: dict) -> tuple[BodyPoseNet, str]:
    """The network to train and a line saying where its weights came from."""
    pretrained = config["pretrained_weights"]
    model_cfg = config["model"]
    kwargs = {k: model_cfg[k] for k in ("width", "stages", "stage_width", "use_bias")}
    if config["load_graph"]:
        if not pretrained:
            raise ConfigError("load_graph needs pretrained_weights: a model folder holding model.yaml + model.pt")
        model, _ = model_from_folder(pretrained, BodyPoseNet)
        return model, f"graph and weights from {pretrained}"
    model = BodyPoseNet(**kwargs)
    if not pretrained:
        return model, "random initialisation"
    path = Path(pretrained)
    weights = path / "model.pt" if path.is_dir() else path
    if not weights.is_file():
        raise ConfigError(f"pretrained_weights {pretrained}: no such model folder or .pt file")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, dict) else state
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ConfigError(f"pretrained_weights {weights}: no tensor matches this network's names and shapes")
    model.load_state_dict(usable, strict=False)
    return model, f"{len(usable)}/{len(own)} tensors from {weights}"


def parameter_groups(model: BodyPoseNet, config: dict) -> list[dict]:
    """One optimiser group per parameter with its learning-rate multiplier."""
    opt = config["optimizer"]
    prefixes = dict(opt["grad_weights_dict"] or {})
    stagewise = config["stagewise_lr_multipliers"] if config["use_stagewise_lr_multipliers"] else {}
    groups = []
    for name, param in model.named_parameters():
        multiplier = next((float(m) for p, m in prefixes.items() if name.startswith(p)),
                          float(opt["weight_default_value"]))
        multiplier *= float(stagewise.get(model.parameter_group(name), 1.0))
        groups.append({"params": [param], "multiplier": multiplier, "name": name})
    return groups


def make_optimizer(model: BodyPoseNet, config: dict) -> torch.optim.Optimizer:
    """The seed's momentum SGD (`type: sgd`), or Adam (`type: adam`, `momentum` as beta1: steps
    scaled per parameter, less sensitive to the learning rate when a CPU budget allows a few
    thousand steps and no tuning). Both take the per-layer multipliers and the soft-start annealing
    schedule."""
    opt = config["optimizer"]
    kind = opt.get("type", "sgd")
    if kind not in OPTIMIZER_TYPES:
        raise ConfigError(f"optimizer.type must be one of {OPTIMIZER_TYPES}, got {kind!r}")
    lr = float(opt["learning_rate_schedule"]["base_learning_rate"])
    groups = parameter_groups(model, config)
    if kind == "adam":
        if opt["use_nesterov"]:
            raise ConfigError("use_nesterov is an SGD setting; optimizer.type adam does not take it")
        return torch.optim.Adam(groups, lr=lr, betas=(float(opt["momentum"]), 0.999))
    return torch.optim.SGD(groups, lr=lr, momentum=float(opt["momentum"]), nesterov=bool(opt["use_nesterov"]))


def model_config_for(model: BodyPoseNet, input_hw: tuple[int, int]):
    """model.yaml for a trained or pruned network (its kwargs describe the whole graph)."""
    from ros2_pose.deploy.model_spec import ModelConfig, TensorSpec

    h, w = input_hw
    kwargs = {k: v for k, v in model.kwargs.items()}
    out_hw = (h // BodyPoseNet.STRIDE, w // BodyPoseNet.STRIDE)
    return ModelConfig(ARCHITECTURE, kwargs, (TensorSpec("image", ("batch", 3, h, w)),),
                       (TensorSpec("heatmaps", ("batch", model.heat_channels, *out_hw)),
                        TensorSpec("pafs", ("batch", model.paf_channels, *out_hw))),
                       {"image_scale": 256.0, "image_offset": 0.5})


def train_bodypose(config: dict, folder: str | Path, progress: Callable[[str], None] = print,
                   device: torch.device = torch.device("cpu")) -> BodyPoseNet:
    """Train on `device` (resuming automatically from `folder`'s last checkpoint) and write
    `folder/model/` (from a CPU copy of the network)."""
    from ros2_pose.deploy.model_spec import write_model_folder

    if not config["data"]:
        raise ConfigError("no dataset: set `data` to a `bpnet dataset_convert` output folder (or a list of them)")
    seed_everything(int(config["random_seed"]))
    run = TrainingRun(Path(folder), config, monitor="val_loss", mode="min")
    state = run.start(resume=True)
    model, origin = build_model(config)
    model = model.to(device)  # before the optimiser is made: its state lives beside the parameters
    progress(f"model: {origin}{'' if device.type == 'cpu' else f', training on {device}'}")
    train = BodyPoseSamples(config["data"], "train", config, augment=True)
    val = BodyPoseSamples(config["data"], "val", config, augment=False)
    if len(val) == 0:
        val = BodyPoseSamples(config["data"], "train", config, augment=False)
    batch = int(config["dataloader"]["batch_size"])
    epochs = int(config["num_epoch"])
    if len(train) < batch:
        raise ConfigError(f"{len(train)} training samples are fewer than one batch of {batch}")
    opt = config["optimizer"]
    schedule = opt["learning_rate_schedule"]
    optimizer = make_optimizer(model, config)
    first_epoch = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        first_epoch = int(state["epoch"]) + 1
        progress(f"resumed after epoch {first_epoch}")
    steps_per_epoch = len(train) // batch
    total_steps = max(1, epochs * steps_per_epoch)
    current = {"epoch": first_epoch}
    step = make_step(model, train, config, lambda: current["epoch"])
    validate = make_validate(model, val, batch)
    for epoch in range(first_epoch, epochs):
        current["epoch"] = epoch
        model.train()
        order = np.random.default_rng([int(config["random_seed"]), epoch]).permutation(len(train))
        started, sums = time.perf_counter(), {}
        for k in range(steps_per_epoch):
            lr = soft_start_annealing_lr((epoch * steps_per_epoch + k) / total_steps,
                                         float(schedule["base_learning_rate"]), float(schedule["min_learning_rate"]),
                                         float(schedule["soft_start"]), float(schedule["annealing"]))
            for group in optimizer.param_groups:
                group["lr"] = lr * group["multiplier"]
            loss, parts = step(np.sort(order[k * batch:(k + 1) * batch]))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}: loss became {float(loss)}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in dict(parts, loss=loss.item()).items():
                sums[key] = sums.get(key, 0.0) + value
        row = {"epoch": epoch, **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()},
               **{f"val_{k}": v for k, v in validate().items()}, "lr": lr,
               "epoch_seconds": time.perf_counter() - started}
        best = run.log_epoch(row, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch})
        if (epoch + 1) % int(config["checkpoint_n_epoch"]) == 0:
            _keep_numbered_checkpoint(run, epoch, int(config["max_ckpt_to_keep"]))
        progress(f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.5f}  val {row['val_loss']:.5f}  "
                 f"lr {lr:.2e}{'  *best' if best else ''}")
    final = copy.deepcopy(model).cpu().eval()
    write_model_folder(run.folder / "model", final, model_config_for(final, train.output_hw), export=False)
    run.write_metrics({"epochs": epochs, "history": run.history[-1] if run.history else {}})
    return model


def _keep_numbered_checkpoint(run: TrainingRun, epoch: int, keep: int) -> None:
    folder = run.folder / "checkpoints"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(run.last_checkpoint, folder / f"epoch_{epoch + 1:04d}.pt")
    numbered = sorted(folder.glob("epoch_*.pt"))
    for old in numbered[:max(0, len(numbered) - max(keep, 1))]:
        old.unlink()


def merge_defaults(overrides: dict) -> dict:
    """DEFAULTS with `overrides` merged in (nested); unknown keys are an error."""
    from ros2_pose.training.run import merge_config

    return merge_config(DEFAULTS, overrides, where="bodypose config")
