"""Drone keypoint training cost per batch (seed 003 Table 1): forward, backward and optimizer step per experiment.

Each row is one of the seed's experiments as our training runs it, for each drone: the shipped
CPU config (config/train/drone_<large|small>_cpu.yaml) with the loss, differentiable PnP layer or
backbone of that experiment (l_h; l_m with BPnP, BPnP-faster or EPnP; l_p with BPnP; l_h with
the hourglass and HRNet backbones). The batch is built and trained on exactly as `train drone`
does (`ros2_pose.training.drone.make_training_step`, AdamW), and each phase is timed alone:
- forward: crops of the batch, photometric augmentation, forward pass and loss (for l_m / l_p also
  the PnP layer's forward on the decoded keypoints);
- backward: `loss.backward()` (for l_m / l_p through the PnP layer: the implicit-function
  gradients);
- optimizer: AdamW's step.
Batches come from a drone dataset (`--data`; default: the drone sample bag, built once into
$ROS2_POSE_CACHE/bench/drone_sample_dataset at 640x480), drawn with replacement from the rows of
each drone. The l_h / l_m / l_p rows start from the shipped network of that drone, as the Table 3
and 5 comparisons in RESULTS.md do (a network from random weights decodes collapsed keypoints
that PnP cannot solve, which would time the wrong thing); the backbone rows start from random
weights, as the Table 4 comparison does. The seed's total training and test durations are
per-run figures: RESULTS.md lists them from the run folders (`train drone` also records these
phases per epoch in curves.csv).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: (name, what it is, overrides of the CPU config, start from the shipped network): seed 003's Table 1 experiments
EXPERIMENTS = (
    ("l_h", "l_h, HigherHRNet", {"loss": "l_h"}, True),
    ("l_m_bpnp", "l_m, BPnP", {"loss": "l_m", "pnp": "bpnp"}, True),
    ("l_m_bpnp_faster", "l_m, BPnP-faster", {"loss": "l_m", "pnp": "bpnp_faster"}, True),
    ("l_m_epnp", "l_m, EPnP", {"loss": "l_m", "pnp": "epnp"}, True),
    ("l_p_bpnp", "l_p, BPnP", {"loss": "l_p", "pnp": "bpnp"}, True),
    ("hourglass", "l_h, stacked hourglass", {"loss": "l_h", "model": {
        "backbone": "hourglass", "kwargs": {"width": 16, "num_stacks": 2, "levels": 3}}}, False),
    ("hrnet", "l_h, HRNet", {"loss": "l_h", "model": {"backbone": "hrnet"}}, False),
)
DRONES = ("drone_large", "drone_small")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="drone dataset folder (default: built from the drone sample bag on first use)")
    parser.add_argument("--drone", action="append", choices=DRONES, default=None,
                        help="drone model (repeatable; default: both)")
    parser.add_argument("--experiments", default=None,
                        help="comma-separated row names to run (default: all: " +
                             ", ".join(name for name, *_ in EXPERIMENTS) + ")")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's (24)")
    parser.add_argument("--iters", type=int, default=10, help="timed batches per row (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the shipped runs)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


FIELDS = ["image", "keypoints", "visibility", "keypoints_3d", "box", "K", "rotation", "translation"]


def sample_dataset() -> Path:
    """The drone sample bag as a 640x480 drone dataset, built on first use into the cache."""
    import shutil
    import tempfile

    from ros2_pose.data.builders.drone import DroneOptions, build
    from ros2_pose.data.builders.frames import SplitOptions
    from ros2_pose.data.dataset import MANIFEST
    from ros2_pose.evaluation.heldout import cache_root
    from ros2_pose.samples import sample_bag

    folder = cache_root() / "bench" / "drone_sample_dataset"
    if (folder / MANIFEST).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent))
    # every frame in one split: the bench only draws batches from it
    build([sample_bag("drone")], staging / "dataset", drone=DroneOptions(image_size=(640, 480)),
          split=SplitOptions(fractions=(1.0, 0.0, 0.0), guard=0))
    shutil.rmtree(folder, ignore_errors=True)
    (staging / "dataset").rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def drone_rows(data: Path, drone: str) -> dict[str, np.ndarray]:
    """The rows of `drone` with a valid pose in the training split of the dataset `data`."""
    from ros2_pose.training.drone import rows_of_drone_model, select_rows
    from ros2_pose.training.tasks._common import load_split

    arrays = load_split(data, "train", FIELDS + ["pose_valid"], valid_field="pose_valid")
    rows = select_rows(arrays, rows_of_drone_model(arrays, drone))
    if len(rows["image"]) == 0:
        raise ValueError(f"{data}: no {drone} rows with a valid pose in its training split")
    return rows


def experiment_config(drone: str, overrides: dict, from_shipped: bool, batch_size: int | None = None) -> dict:
    """The shipped CPU config of `drone` with an experiment's overrides, starting from the shipped
    network of that drone or from random weights."""
    from ros2_pose.resources import config_file, model_dir
    from ros2_pose.training.run import load_config, merge_config
    from ros2_pose.training.tasks.drone import DEFAULTS

    size = drone.split("_")[1]
    config = load_config(config_file(f"train/drone_{size}_cpu"), DEFAULTS)
    model = dict(config["model"], **overrides.get("model", {}))
    config = merge_config(config, {k: v for k, v in overrides.items() if k != "model"})
    config["model"] = model
    config["init_weights"] = str(model_dir(f"drone_pose_{size}") / "model.pt") if from_shipped else None
    if batch_size is not None:
        config["batch_size"] = int(batch_size)
    return config


def time_experiment(rows: dict[str, np.ndarray], drone: str, overrides: dict, from_shipped: bool, iterations: int,
                    warmup: int, batch_size: int | None = None) -> dict:
    """Median seconds per batch of each phase of one experiment on batches of `rows`, and its
    parameter count."""
    import torch

    from ros2_pose.training.drone import (build_network, check_config, drone_model_info, load_initial_weights,
                                          make_training_step)
    from ros2_pose.training.loop import STEP_PHASES, timed_step

    config = experiment_config(drone, overrides, from_shipped, batch_size)
    check_config(config)
    batch = int(config["batch_size"])
    torch.manual_seed(0)
    model = build_network(config["model"], rows["keypoints"].shape[1])
    if config["init_weights"]:
        load_initial_weights(model, config["init_weights"])
    model.train()
    step = make_training_step(model, rows, config, drone_model_info(config).output_stride)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["optimizer"]["lr"],
                                  weight_decay=config["optimizer"]["weight_decay"])
    times = {phase: [] for phase in STEP_PHASES}
    draw = np.random.default_rng(0)
    for index in range(warmup + iterations):
        idx = np.sort(draw.choice(len(rows["image"]), batch, replace=True))
        _, _, seconds = timed_step(step, idx, optimizer)
        if index >= warmup:
            for phase, spent in zip(STEP_PHASES, seconds):
                times[phase].append(spent)
    return {"drone": drone, "batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "start": "shipped" if from_shipped else "random",
            **{f"{phase}_s": float(np.median(values)) for phase, values in times.items()}, "n": iterations}


def benchmark_rows(data: Path, drones=DRONES, experiments=None, iterations: int = 10, warmup: int = 2,
                   batch_size: int | None = None) -> list[dict]:
    known = {name: (label, overrides, shipped) for name, label, overrides, shipped in EXPERIMENTS}
    names = experiments or [name for name, *_ in EXPERIMENTS]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown experiments {unknown}; known: {list(known)}")
    table = []
    for drone in drones:
        rows = drone_rows(data, drone)
        for name in names:
            label, overrides, shipped = known[name]
            table.append({"experiment": name, "label": label,
                          **time_experiment(rows, drone, overrides, shipped, iterations, warmup, batch_size)})
    return table


def run(args) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from ros2_pose.training.loop import STEP_PHASES

    if args.iters < 1 or args.warmup < 0:
        raise SystemExit("--iters must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.experiments.split(",") if n.strip()] if args.experiments else None
    try:
        rows = benchmark_rows(args.data or sample_dataset(), args.drone or DRONES, names, args.iters, args.warmup,
                              args.batch_size)
    except (ValueError, FileNotFoundError) as exc:
        Console().print(f"[red]bench drone_training: {exc}[/red]")
        return 2
    table = Table(title=f"drone keypoint training, seconds per batch of {rows[0]['batch']} (median of "
                        f"{args.iters}), {torch.get_num_threads()} torch thread(s)")
    for column in ("drone", "experiment", "start", "parameters", "forward s", "backward s", "optimizer s",
                   "batch total s"):
        table.add_column(column, justify="left" if column in ("drone", "experiment", "start") else "right")
    for row in rows:
        total = sum(row[f"{phase}_s"] for phase in STEP_PHASES)
        table.add_row(row["drone"], row["label"], row["start"], f"{row['parameters'] / 1e6:.2f} M",
                      f"{row['forward_s']:.3f}",
                      f"{row['backward_s']:.3f}", f"{row['optimizer_s']:.4f}", f"{total:.3f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
