"""Training runs as folders: config in, checkpoints, curves, metrics and plots out.

A run directory holds `config.yaml` (what it ran with), `curves.csv` (one row per epoch),
`metrics.json`, `checkpoint_last.pt` / `checkpoint_best.pt` (state dicts and plain numbers only, so
they load with `torch.load(weights_only=True)`) and plots. `TrainingRun` owns that folder; the task
modules own the model and the epoch loop.
"""
from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml


class ConfigError(ValueError):
    """A training config that is missing keys, has unknown keys or wrong values."""


def load_config(path: str | Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """A YAML config merged over `defaults` (nested dicts merged); unknown keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file {path}")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return merge_config(defaults, loaded, where=str(path))


def merge_config(defaults: dict[str, Any], overrides: dict[str, Any], where: str = "config") -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in overrides.items():
        if key not in defaults:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {sorted(defaults)})")
        if isinstance(defaults[key], dict) and isinstance(value, dict):
            merged[key] = merge_config(defaults[key], value, where=f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingRun:
    """A run folder. `start` writes the config; `log_epoch` appends curves and keeps checkpoints."""

    folder: Path
    config: dict[str, Any]
    monitor: str = "val_loss"          # the curve column that decides the best checkpoint
    mode: str = "min"
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self):
        self.folder = Path(self.folder)
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")

    @property
    def last_checkpoint(self) -> Path:
        return self.folder / "checkpoint_last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.folder / "checkpoint_best.pt"

    def start(self, resume: bool) -> dict[str, Any] | None:
        """Create the folder; with resume, return the last checkpoint's contents (or None)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        config_path = self.folder / "config.yaml"
        if resume and self.last_checkpoint.is_file():
            import torch

            state = torch.load(self.last_checkpoint, map_location="cpu", weights_only=True)
            self.history = [dict(row) for row in state.get("history", [])]
            return state
        if self.last_checkpoint.is_file() and not resume:
            raise FileExistsError(
                f"{self.folder} already holds a run; pass --resume to continue it or choose another --out")
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return None

    def best_value(self) -> float:
        values = [row[self.monitor] for row in self.history if self.monitor in row]
        if not values:
            return math.inf if self.mode == "min" else -math.inf
        return min(values) if self.mode == "min" else max(values)

    def log_epoch(self, row: dict[str, float], state: dict[str, Any]) -> bool:
        """Record one epoch's numbers and save checkpoints; True when this epoch is the best so far."""
        import torch

        previous_best = self.best_value()
        self.history.append({k: float(v) for k, v in row.items()})
        value = row.get(self.monitor)
        if value is None or not math.isfinite(value):
            raise FloatingPointError(f"epoch {row.get('epoch')}: {self.monitor} is {value}; training diverged")
        improved = value < previous_best if self.mode == "min" else value > previous_best
        state = dict(state, history=self.history)
        torch.save(state, self.last_checkpoint)
        if improved:
            torch.save(state, self.best_checkpoint)
        self._write_curves()
        return improved

    def _write_curves(self) -> None:
        columns = sorted({k for row in self.history for k in row}, key=lambda k: (k != "epoch", k))
        with open(self.folder / "curves.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)

    def plot_curves(self, filename: str = "curves.png") -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # the per-phase timings (seconds_*) are in curves.csv; the figure is about learning
        columns = [k for k in self.history[0] if k != "epoch" and not k.startswith("seconds_")] if self.history else []
        # A grid of at most four panels per row, so the figure stays readable with many curves.
        ncols = min(4, max(1, len(columns)))
        nrows = max(1, -(-len(columns) // ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False)
        for ax in axes.flat[len(columns):]:
            ax.set_visible(False)
        epochs = [row["epoch"] for row in self.history]
        for ax, column in zip(axes.flat, columns):
            ax.plot(epochs, [row.get(column, float("nan")) for row in self.history], marker=".")
            ax.set_title(column)
            ax.set_xlabel("epoch")
            if column.endswith("loss") and all(row.get(column, 1) > 0 for row in self.history):
                ax.set_yscale("log")
        fig.tight_layout()
        path = self.folder / filename
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        path = self.folder / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        return path


def resolve_config_model(source: str | Path, config_folder: str | Path, *, key: str) -> Path:
    """A model (folder or weights file) that a config names under `key` (init_from, init_weights,
    model_path, ...): a path inside the config file's folder (a path from a config never leaves its
    folder), or a bare name that is no entry of that folder: a shipped model's name."""
    from ros2_pose.resources import model_dir, resolve_inside

    text = str(source)
    if "/" not in text and not text.startswith(".") and not (Path(config_folder) / text).exists():
        try:
            return model_dir(text)
        except FileNotFoundError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    try:
        return resolve_inside(config_folder, text)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} (the config's folder)") from None


def resolve_init_weights(source: str | Path, config_folder: str | Path) -> Path:
    """A config's `init_weights`: a weights file (model.pt or a run checkpoint) or a model folder
    (its model.pt), named as for `resolve_config_model` (a shipped model's name, or a path inside the
    config file's folder)."""
    path = resolve_config_model(source, config_folder, key="init_weights")
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ConfigError(f"init_weights: {path} is not a weights file (model.pt or a run checkpoint)")
    return path


def model_from_folder(folder: str | Path, architecture: type):
    """(network in train mode, its ModelConfig) of a model folder (model.yaml + model.pt, loaded
    weights-only); ConfigError when the folder holds another architecture."""
    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model

    spec = ModelSpec.from_folder(folder)
    model_config = spec.load_config()
    model = build_torch_model(model_config, spec.require("weights"))
    if not isinstance(model, architecture):
        raise ConfigError(f"{folder} holds a {type(model).__name__}, not a {architecture.__name__}")
    return model.train(), model_config


def initial_model(config: dict[str, Any], architecture: type):
    """The network a run starts from: `architecture(**config["model"])`, or with `init_from` set (a
    model folder, see `resolve_config_model`), that folder's architecture and weights, e.g. a pruned
    model whose widths the config's `model:` section cannot express. config["model"] then becomes
    the folder's kwargs, so the run's exported model.yaml describes what was trained."""
    if not config.get("init_from"):
        return architecture(**config["model"])
    try:
        model, model_config = model_from_folder(Path(config["init_from"]), architecture)
    except ConfigError as exc:
        raise ConfigError(f"init_from {exc}") from None
    config["model"] = dict(model_config.kwargs)
    return model
