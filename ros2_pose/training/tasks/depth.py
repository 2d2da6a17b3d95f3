"""Train monocular depth + ego-motion (self-supervised, supervised or pose from frozen depth features).

    ros2-pose train depth --config config/train/depth_early.yaml --data <motion dataset> --out runs/depth_early

Data: a motion dataset (`ros2-pose dataset build motion --frames-per-sample 2|3 --distances 1 [2 ...]`).
Config keys beyond ros2_pose.training.depth_egomotion.DEFAULTS:
  distances: null (every frame distance the dataset holds) or a list: train only on these (a mix);
  max_step_m: samples whose neighbouring frames are farther apart than this in the ground truth
    straddle a jump of the camera (e.g. two simulated sequences back to back) and are dropped.
  init_from: {depth: <model folder or shipped name>, pose: <...>} (either optional): start from
    these networks' weights, e.g. {depth: depth_egomotion_depth, pose: depth_egomotion_pose} to
    fine-tune the shipped models on one's own bags; their architecture replaces the config's
    depth_model / pose_model section (folders are read inside the config's folder).
Mode "pose_from_depth_features" needs `--depth-from`: a trained depth run folder, its model_depth
folder, or a model.pt / checkpoint file.

Writes the run folder (config.yaml, curves.csv/png, metrics.json, checkpoints) and two model folders,
<run>/model_depth (DepthNet) and <run>/model_pose (PoseNet or PoseFromDepthFeatures), each with
model.pt, model.yaml, model.onnx and its ONNX Runtime parity; model_pose/motion.yaml records how its
frame windows were built (target index, frames per sample, distances, whether outputs are metric).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ros2_pose.data.dataset import DatasetError, SharedRows
from ros2_pose.training.tasks._common import add_training_arguments, dataset_folders

EXTRA_DEFAULTS: dict[str, Any] = {"distances": None, "max_step_m": 0.5, "init_from": None}
FIELDS = ["frames", "K", "depths", "relative_poses", "distance"]


def defaults() -> dict[str, Any]:
    from ros2_pose.training.depth_egomotion import DEFAULTS

    return {**DEFAULTS, **EXTRA_DEFAULTS}


def add_arguments(parser):
    add_training_arguments(parser, default_config="config/train/depth_early.yaml", several_datasets=True)
    parser.add_argument("--mode", default=None, choices=["self_supervised", "supervised", "pose_from_depth_features"],
                        help="override the config's mode")
    parser.add_argument("--fusion", default=None, choices=["early", "late"], help="override pose_model.fusion")
    parser.add_argument("--depth-from", default=None,
                        help="mode pose_from_depth_features: trained depth run folder, model folder or weights file")
    parser.add_argument("--no-export", action="store_true", help="write model.pt/model.yaml without ONNX export")


class MotionDataError(DatasetError):
    """A dataset that is not a usable motion dataset for this config (reported by the CLI in one line)."""


def load_motion_split(folder, split: str, config: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The split's samples as arrays, keeping only config's frame distances and samples without a
    ground-truth jump; (arrays, {"dropped": counts per reason, "distances": the frame distances
    kept}). Frames and depth are SharedRows over this split's frames: each frame is read into memory
    once, however many windows use it. `depths` / `relative_poses` are left out
    when the dataset was built without them (and refused when config's mode needs them)."""
    from ros2_pose.data.dataset import ArrayDataset

    dataset = ArrayDataset(folder, split, fields=FIELDS)
    if dataset.task != "motion":
        raise MotionDataError(f"{folder} is a {dataset.task!r} dataset; `train depth` needs a motion dataset "
                              "(ros2-pose dataset build motion)")
    # datasets built without ground truth (dataset build motion --gt-source none, or no depth topic)
    task = dataset.manifest.get("parameters", {}).get("task", {})
    has_depth, has_pose = bool(task.get("depth", True)), bool(task.get("ground_truth_pose", True))
    from ros2_pose.training.depth_egomotion import required_fields

    lacking = [name for name, present in (("depths", has_depth), ("relative_poses", has_pose))
               if not present and name in required_fields(config)]
    if lacking:
        raise MotionDataError(f"{folder} has no ground-truth {' or '.join(lacking)} (built without them), which "
                              f"mode {config['mode']!r} needs; self_supervised training needs neither")
    rows = dataset.indices
    dropped = {"other_distance": 0, "camera_jump": 0}
    if config["distances"] is not None:
        keep = np.isin(np.asarray(dataset.arrays["distance"][rows]), np.asarray(config["distances"], int))
        dropped["other_distance"] = int((~keep).sum())
        rows = rows[keep]
    if has_pose:  # without ground truth only the time gaps the builder split sequences at are known
        relative = np.asarray(dataset.arrays["relative_poses"][rows], np.float64)
        positions = np.concatenate([np.zeros((len(rows), 1, 3)), relative[:, :, :3, 3]], axis=1)
        steps = np.linalg.norm(np.diff(positions, axis=1), axis=2).max(axis=1) if len(rows) else np.zeros(0)
        keep = steps <= float(config["max_step_m"])
        dropped["camera_jump"] = int((~keep).sum())
        rows = rows[keep]
    if len(rows) == 0:
        raise MotionDataError(f"{folder}: split {split!r} has no sample left (dropped: {dropped}; distances in "
                              f"the data: {sorted(set(np.asarray(dataset.arrays['distance']).tolist()))})")
    arrays = {}
    for name in ("frames", "depths", "K") if has_depth else ("frames", "K"):
        reference = dataset.references[name]
        ids = np.asarray(dataset.arrays[reference["index"]][rows])
        shared = dataset.arrays[reference["source"]]
        if name == "K":  # 36 bytes a frame: gathered now
            arrays[name] = np.asarray(shared[ids.ravel()]).reshape(*ids.shape, *shared.shape[1:])
            continue
        # images and depth stay shared between the windows that use them (see SharedRows), and only
        # this split's frames are read into memory
        used, index = np.unique(ids, return_inverse=True)
        arrays[name] = SharedRows(np.asarray(shared[used]), index.reshape(ids.shape))
    if has_pose:
        arrays["relative_poses"] = np.asarray(dataset.arrays["relative_poses"][rows], np.float32)
    distances = sorted(set(np.asarray(dataset.arrays["distance"][rows]).tolist()))
    return arrays, {"dropped": dropped, "distances": distances}


def load_motion_splits(folders: list[str], split: str, config: dict[str, Any]
                       ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """load_motion_split over several motion datasets (e.g. the default paths and the turning
    preset's), concatenated in the given order; their frames must have one shape and the same
    ground-truth fields."""
    parts = [(folder, *load_motion_split(folder, split, config)) for folder in folders]
    if len(parts) == 1:
        return parts[0][1], parts[0][2]
    first_folder, first, _ = parts[0]
    for folder, arrays, _ in parts[1:]:
        if sorted(arrays) != sorted(first):
            raise MotionDataError(f"{folder} holds {sorted(arrays)} but {first_folder} {sorted(first)}: "
                                  "datasets trained on together need the same ground truth")
        if arrays["frames"].shape[1:] != first["frames"].shape[1:]:
            raise MotionDataError(f"{folder}'s samples are {arrays['frames'].shape[1:]} (frames x H x W x 3) but "
                                  f"{first_folder}'s {first['frames'].shape[1:]}: build them with one --image-size "
                                  "and --frames-per-sample")
    arrays = {name: SharedRows.concatenate([a[name] for _, a, _ in parts]) if isinstance(first[name], SharedRows)
              else np.concatenate([a[name] for _, a, _ in parts]) for name in first}
    dropped = {reason: sum(info["dropped"][reason] for _, _, info in parts) for reason in parts[0][2]["dropped"]}
    distances = sorted(set().union(*(info["distances"] for _, _, info in parts)))
    return arrays, {"dropped": dropped, "distances": distances}


def depth_model_config(depth_kwargs: dict, width: int, height: int):
    """model.yaml of a DepthNet for width x height images."""
    from ros2_pose.deploy.model_spec import parse_model_config

    outputs = [{"name": "disparity" if s == 0 else f"disparity_{s}",
                "shape": ["batch", 1, height // 2 ** s, width // 2 ** s]} for s in range(int(depth_kwargs["num_scales"]))]
    outputs.append({"name": "depth", "shape": ["batch", 1, height, width]})
    return parse_model_config({"architecture": "ros2_pose.models.depth_egomotion:DepthNet",
                               "kwargs": {**depth_kwargs, "channels": [int(c) for c in depth_kwargs["channels"]]},
                               "inputs": [{"name": "image", "shape": ["batch", 3, height, width]}],
                               "outputs": outputs})


def pose_model_config(config: dict[str, Any], num_sources: int, width: int, height: int):
    """model.yaml of the pose network of config's mode."""
    from ros2_pose.deploy.model_spec import parse_model_config

    pose_kwargs = config["pose_model"]
    if config["mode"] == "pose_from_depth_features":
        architecture = "ros2_pose.models.depth_egomotion:PoseFromDepthFeatures"
        level = config["depth_feature_level"]
        kwargs = {"num_sources": num_sources, "channels": [int(c) for c in config["depth_model"]["channels"]],
                  "head_width": int(pose_kwargs["head_width"]), "feature_level": None if level is None else int(level)}
    else:
        architecture = "ros2_pose.models.depth_egomotion:PoseNet"
        kwargs = {"num_sources": num_sources, "fusion": pose_kwargs["fusion"],
                  "channels": [int(c) for c in pose_kwargs["channels"]], "head_width": int(pose_kwargs["head_width"])}
    return parse_model_config({"architecture": architecture, "kwargs": kwargs,
                               "inputs": [{"name": "target", "shape": ["batch", 3, height, width]},
                                          {"name": "sources", "shape": ["batch", num_sources, 3, height, width]}],
                               "outputs": [{"name": "pose", "shape": ["batch", num_sources, 6]}]})


def depth_weights_path(depth_from: str | Path) -> Path:
    """The file holding DepthNet weights in a run folder, model folder or given file."""
    path = Path(depth_from)
    if path.is_file():
        return path
    for candidate in ("checkpoint_best.pt", "model_depth/model.pt", "model.pt"):
        if (path / candidate).is_file():
            return path / candidate
    raise FileNotFoundError(f"--depth-from {path}: no checkpoint_best.pt, model_depth/model.pt or model.pt there")


def initial_networks(config: dict[str, Any], config_folder: Path) -> dict[str, Any]:
    """The networks named by config's `init_from` (see the module docstring), loaded weights-only;
    config's depth_model / pose_model (and init_from, resolved) are updated to describe them."""
    from ros2_pose.models.depth_egomotion import DepthNet, PoseNet
    from ros2_pose.training.run import ConfigError, model_from_folder, resolve_config_model

    init_from = config.get("init_from")
    if not init_from:
        return {}
    if not isinstance(init_from, dict) or not set(init_from) <= {"depth", "pose"}:
        raise ConfigError(f"init_from must be {{depth: <model>, pose: <model>}} (either optional), got {init_from!r}")
    if config["mode"] == "pose_from_depth_features" and "pose" in init_from:
        raise ConfigError("mode pose_from_depth_features trains a new pose head; init_from can only give its depth "
                          "network (or use --depth-from)")
    networks = {}
    for name, architecture in (("depth", DepthNet), ("pose", PoseNet)):
        if not init_from.get(name):
            continue
        folder = resolve_config_model(init_from[name], config_folder, key=f"init_from {name}")
        try:
            networks[name], model_config = model_from_folder(folder, architecture)
        except ConfigError as exc:
            raise ConfigError(f"init_from {name}: {exc}") from None
        kwargs = dict(model_config.kwargs)
        kwargs.pop("num_sources", None)  # the dataset decides it; a mismatch is refused when loading
        config[f"{name}_model"] = kwargs
        init_from[name] = str(folder)
    return networks


def run(args) -> int:
    import torch

    from ros2_pose.deploy.model_spec import write_model_folder
    from ros2_pose.pipelines.depth_egomotion import MOTION_FILE
    from ros2_pose.resources import package_share
    from ros2_pose.training import depth_egomotion as de
    from ros2_pose.training.run import ConfigError, TrainingRun, load_config, seed_everything

    config_path = Path(args.config) if args.config else package_share() / args.default_config
    config = load_config(config_path, defaults())
    for key, value in (("data", args.data), ("epochs", args.epochs), ("mode", args.mode)):
        if value is not None:
            config[key] = value
    if args.fusion is not None:
        config["pose_model"] = {**config["pose_model"], "fusion": args.fusion}
    folders = dataset_folders(config["data"])
    init_networks = initial_networks(config, config_path.parent)
    depth_state = None
    if config["mode"] == "pose_from_depth_features":
        if args.depth_from:
            depth_state = de.load_depth_state(depth_weights_path(args.depth_from))
        elif "depth" in init_networks:
            depth_state = init_networks.pop("depth").state_dict()
        else:
            raise SystemExit("mode pose_from_depth_features needs --depth-from <trained depth run or model folder> "
                             "(or init_from: {depth: ...})")
    seed_everything(int(config["seed"]))
    run = TrainingRun(Path(args.out), config, monitor=de.MONITOR, mode=de.MONITOR_MODE)
    resume_state = run.start(resume=args.resume)
    train, train_info = load_motion_splits(folders, "train", config)
    n, frames_per_sample, height, width = train["frames"].shape[:4]
    if "pose" in init_networks and init_networks["pose"].num_sources != frames_per_sample - 1:
        raise ConfigError(f"init_from pose: {config['init_from']['pose']} takes {init_networks['pose'].num_sources} "
                          f"source frame(s), but the dataset's samples have {frames_per_sample - 1}")
    val, val_info = load_motion_splits(folders, "val", config)
    print(f"training ({config['mode']}, {config['pose_model']['fusion']} fusion) on {n} samples of "
          f"{frames_per_sample} frames {width}x{height} at distances {train_info['distances']}, validating on "
          f"{len(val['frames'])}; dropped train {train_info['dropped']}, val {val_info['dropped']}; run folder {run.folder}")
    model = de.train_depth_egomotion(train, val, config, run, resume_state=resume_state, depth_state=depth_state,
                                     init_networks=init_networks)
    run.plot_curves()
    best = min(run.history, key=lambda r: r[de.MONITOR])
    run.write_metrics({"best_epoch": int(best["epoch"]), **{k: v for k, v in best.items() if k.startswith("val_")}})
    model.load_state_dict(torch.load(run.best_checkpoint, map_location="cpu", weights_only=True)["model"])
    model.eval()
    num_sources = frames_per_sample - 1
    parities = {
        "model_depth": write_model_folder(run.folder / "model_depth", model.depth,
                                          depth_model_config(config["depth_model"], width, height),
                                          export=not args.no_export),
        "model_pose": write_model_folder(run.folder / "model_pose", model.pose,
                                         pose_model_config(config, num_sources, width, height),
                                         export=not args.no_export)}
    target = frames_per_sample // 2 if config["target_index"] is None else int(config["target_index"])
    (run.folder / "model_pose" / MOTION_FILE).write_text(yaml.safe_dump({
        "target_index": target, "frames_per_sample": int(frames_per_sample), "distances": train_info["distances"],
        # translations are metric when training saw metric ground truth (depth or pose)
        "metric": config["mode"] != "self_supervised"}, sort_keys=False))
    print(f"best epoch {int(best['epoch']) + 1}: {de.MONITOR} = {best[de.MONITOR]:.4f}")
    for name, parity in parities.items():
        text = ", ".join(f"{k} {v:.1e}" for k, v in parity.items()) if parity else "not exported"
        print(f"model folder {run.folder / name} (ONNX Runtime vs PyTorch max abs error: {text})")
    return 0
