"""What every `ros2-pose train <task>` shares: arguments, config loading, data, the run folder."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ros2_pose.resources import package_share


def add_training_arguments(parser: argparse.ArgumentParser, default_config: str,
                           several_datasets: bool = False, device: bool = False) -> None:
    parser.add_argument("--config", default=None,
                        help=f"training config YAML (default: {default_config} of the package)")
    if several_datasets:
        parser.add_argument("--data", nargs="+", default=None,
                            help="dataset folder(s), trained on together (overrides the config's `data`)")
    else:
        parser.add_argument("--data", default=None, help="dataset folder (overrides the config's `data`)")
    parser.add_argument("--out", required=True, help="run folder: config, curves, checkpoints, metrics")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    if device:
        parser.add_argument("--device", default="cpu",
                            help="where the network trains: cpu, cuda, cuda:N, or auto (CUDA when available); "
                                 "the data stays in memory on the CPU, batches are copied over")
    parser.set_defaults(default_config=default_config)


def load_split(folder, split: str, fields: list[str], valid_field: str | None,
               unique_field: str | None = None) -> dict[str, np.ndarray]:
    """A split's fields as in-memory arrays, keeping only rows where `valid_field` is true and, with
    `unique_field`, only the first row of each value of that field (e.g. one row per frame when a
    dataset holds several crops of every frame but the task needs the frame once)."""
    from ros2_pose.data.dataset import ArrayDataset

    dataset = ArrayDataset(folder, split, fields=fields + ([unique_field] if unique_field else []))
    rows = dataset.indices
    if valid_field is not None:
        rows = rows[np.asarray(dataset.arrays[valid_field][rows], bool)]
    if unique_field is not None:
        _, first = np.unique(np.asarray(dataset.arrays[unique_field][rows]), return_index=True)
        rows = rows[np.sort(first)]
    if len(rows) == 0:
        raise ValueError(f"{folder}: split {split!r} has no usable samples")
    return {name: np.asarray(dataset.arrays[name][rows]) for name in fields if name != valid_field}


def dataset_folders(data) -> list[str]:
    """The config's `data`: one dataset folder or a list of them (several recordings or renders,
    each built on its own, so a new bag adds a dataset instead of rebuilding one from every bag)."""
    folders = [data] if isinstance(data, (str, Path)) else list(data or [])
    if not folders:
        raise SystemExit("no dataset: pass --data DIR or set `data` in the config")
    resolved = [Path(folder).resolve() for folder in folders]
    if len(set(resolved)) < len(resolved):
        raise SystemExit(f"a dataset is listed twice in `data`: {[str(f) for f in folders]}")
    return [str(folder) for folder in folders]


def load_splits(folders: list[str], split: str, fields: list[str], valid_field: str | None,
                unique_field: str | None = None) -> dict[str, np.ndarray]:
    """load_split over several datasets of one task, concatenated in the given order. A dataset
    without samples in this split adds none (e.g. one built with --split 1,0,0 for training only)."""
    from ros2_pose.data.dataset import DatasetError, read_manifest

    tasks = {folder: read_manifest(folder).get("task") for folder in folders}
    if len(set(tasks.values())) > 1:
        raise DatasetError(f"datasets of different tasks cannot be trained on together: {tasks}")
    parts = []
    for folder in folders:
        try:
            parts.append(load_split(folder, split, fields, valid_field, unique_field))
        except ValueError as error:
            if len(folders) == 1 or isinstance(error, DatasetError):
                raise
    if not parts:
        raise ValueError(f"split {split!r} has no usable samples in any of {', '.join(folders)}")
    shapes = {name: {part[name].shape[1:] for part in parts} for name in parts[0]}
    mismatched = {name: sorted(map(str, s)) for name, s in shapes.items() if len(s) > 1}
    if mismatched:
        raise ValueError(f"datasets {', '.join(folders)} disagree on sample shapes: {mismatched}")
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def run_training(args, defaults: dict, fields: list[str], valid_field: str | None, train_fn,
                 monitor: str, mode: str, model_config_fn, unique_field: str | None = None,
                 finish_model_folder=None) -> int:
    """Load config and data, train, then turn the best checkpoint into a model folder
    (<run>/model: model.pt, model.yaml, model.onnx with its ONNX Runtime parity) ready to ship.
    `finish_model_folder(folder, config, train, val)`, when given, then adds the task's own files
    to it, with the splits already in memory."""
    from ros2_pose.training.loop import training_device
    from ros2_pose.training.run import TrainingRun, load_config, seed_everything

    config_path = Path(args.config) if args.config else package_share() / args.default_config
    config = load_config(config_path, defaults)
    if args.data:
        config["data"] = args.data
    if args.epochs is not None:
        config["epochs"] = args.epochs
    folders = dataset_folders(config["data"])
    device_options = {}
    if getattr(args, "device", None) is not None:  # trainers that take --device (add_training_arguments)
        try:
            device_options["device"] = training_device(args.device)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    if config.get("init_from"):
        from ros2_pose.training.run import resolve_config_model

        config["init_from"] = str(resolve_config_model(config["init_from"], config_path.parent, key="init_from"))
    if config.get("init_weights"):
        from ros2_pose.training.run import resolve_init_weights

        config["init_weights"] = str(resolve_init_weights(config["init_weights"], config_path.parent))
    seed_everything(int(config["seed"]))
    run = TrainingRun(Path(args.out), config, monitor=monitor, mode=mode)
    resume_state = run.start(resume=args.resume)
    train = load_splits(folders, "train", fields, valid_field, unique_field)
    val = load_splits(folders, "val", fields, valid_field, unique_field)
    print(f"training on {len(next(iter(train.values())))} samples, validating on "
          f"{len(next(iter(val.values())))}; run folder {run.folder}")
    model = train_fn(train, val, config, run, resume_state=resume_state, **device_options)
    run.plot_curves()
    best = max(run.history, key=lambda r: r[monitor]) if mode == "max" else min(run.history, key=lambda r: r[monitor])
    run.write_metrics({"best_epoch": int(best["epoch"]), **{k: v for k, v in best.items() if k.startswith("val_")}})
    print(f"best epoch {int(best['epoch']) + 1}: {monitor} = {best[monitor]:.4f}; checkpoints in {run.folder}")
    import torch

    from ros2_pose.deploy.model_spec import write_model_folder

    model = model.cpu()  # the model folder (weights, ONNX export, parity check) is made on the CPU
    model.load_state_dict(torch.load(run.best_checkpoint, map_location="cpu", weights_only=True)["model"])
    parity = write_model_folder(run.folder / "model", model.eval(), model_config_fn(config["model"]))
    print(f"model folder {run.folder / 'model'} (ONNX Runtime vs PyTorch max abs error: "
          + ", ".join(f"{k} {v:.1e}" for k, v in parity.items()) + ")")
    if finish_model_folder is not None:
        finish_model_folder(run.folder / "model", config, train, val)
    return 0
