"""Differentiable PnP timings (seed 003 Table 1/7): forward and backward per batch, BPnP vs faster vs EPnP."""
from __future__ import annotations

import time

import numpy as np
import torch

LAYERS = ("bpnp", "bpnp_faster", "epnp")
ALIASES = ("pnp",)  # `ros2-pose bench pnp`, the name issue 6 gives this benchmark


def add_arguments(parser):
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes (default: 1,8,32)")
    parser.add_argument("--drone", choices=("drone_large", "drone_small"), default="drone_large",
                        help="whose 10 keypoints are the 3D points")
    parser.add_argument("--noise-px", type=float, default=1.0, help="keypoint noise, pixels (default: 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell; the median is shown")
    parser.add_argument("--epnp-refine-steps", type=int, default=2)
    # One thread by default: the ops are tiny (3x3, 6x6), and a thread pool only adds hand-off costs.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")


def make_problem(batch: int, drone: str, noise_px: float, seed: int = 0):
    """Random drone poses 1.5-4 m in front of a 640x480 camera and their noisy keypoints."""
    from ros2_pose.geometry.bpnp import pose_to_rotation_translation, project_points_torch
    from ros2_pose.sim.drone import MODELS

    generator = torch.Generator().manual_seed(seed)
    points = torch.tensor(MODELS[drone].keypoints())
    K = torch.tensor([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]], dtype=torch.float64)
    rotation_vectors = (torch.rand(batch, 3, generator=generator, dtype=torch.float64) - 0.5) * 1.5
    translations = torch.stack([(torch.rand(batch, generator=generator, dtype=torch.float64) - 0.5) * 0.6,
                                (torch.rand(batch, generator=generator, dtype=torch.float64) - 0.5) * 0.4,
                                1.5 + 2.5 * torch.rand(batch, generator=generator, dtype=torch.float64)], dim=-1)
    poses = torch.cat([rotation_vectors, translations], dim=-1)
    keypoints = project_points_torch(points.expand(batch, -1, -1), *pose_to_rotation_translation(poses), K)
    keypoints = keypoints + noise_px * torch.randn(keypoints.shape, generator=generator, dtype=torch.float64)
    return keypoints, points, K


def time_layer(layer: str, keypoints, points, K, repeats: int, epnp_refine_steps: int) -> dict[str, float]:
    """Median forward and backward seconds of one layer on one batch (gradients to the keypoints)."""
    from ros2_pose.geometry.bpnp import bpnp, epnp

    forward_times, backward_times = [], []
    for _ in range(repeats):
        x = keypoints.clone().requires_grad_(True)
        start = time.perf_counter()
        if layer == "epnp":
            rotation, translation = epnp(x, points, K, refine_steps=epnp_refine_steps)
            output = torch.cat([rotation.flatten(1), translation], dim=-1)
        else:
            output = bpnp(x, points, K, variant="exact" if layer == "bpnp" else "faster")
        middle = time.perf_counter()
        output.sum().backward()
        end = time.perf_counter()
        forward_times.append(middle - start)
        backward_times.append(end - middle)
    return {"forward_s": float(np.median(forward_times)), "backward_s": float(np.median(backward_times))}


def time_one_by_one(layer: str, keypoints, points, K, repeats: int, epnp_refine_steps: int) -> float:
    """Median seconds to run forward + backward on each item of the batch on its own, in turn (the
    issue's baseline: the same samples solved and differentiated one at a time)."""
    totals = []
    for _ in range(repeats):
        total = 0.0
        for b in range(len(keypoints)):
            times = time_layer(layer, keypoints[b:b + 1], points, K, 1, epnp_refine_steps)
            total += times["forward_s"] + times["backward_s"]
        totals.append(total)
    return float(np.median(totals))


def benchmark_rows(batch_sizes, drone="drone_large", noise_px=1.0, repeats=5, epnp_refine_steps=2) -> list[dict]:
    """Per layer and batch size: median forward and backward seconds; for batches above 1 also the
    same items one at a time and the speed-up of the batch over that."""
    rows = []
    for batch in batch_sizes:
        problem = make_problem(batch, drone, noise_px)
        for layer in LAYERS:
            row = {"layer": layer, "batch": batch, **time_layer(layer, *problem, repeats, epnp_refine_steps)}
            if batch > 1:
                row["one_by_one_s"] = time_one_by_one(layer, *problem, repeats, epnp_refine_steps)
                row["speedup"] = row["one_by_one_s"] / (row["forward_s"] + row["backward_s"])
            rows.append(row)
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.threads:
        torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if not batch_sizes or min(batch_sizes) < 1 or args.repeats < 1:
        raise SystemExit("--batch-sizes must be positive integers and --repeats at least 1")
    rows = benchmark_rows(batch_sizes, args.drone, args.noise_px, args.repeats, args.epnp_refine_steps)
    table = Table(title=f"differentiable PnP, {args.drone} (10 keypoints, {args.noise_px} px noise), "
                        f"median of {args.repeats}, float64, {torch.get_num_threads()} torch thread(s)")
    for column in ("layer", "batch", "forward ms", "backward ms", "backward ms / item", "one by one ms", "speed-up"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for row in rows:
        one_by_one = f"{row['one_by_one_s'] * 1e3:.1f}" if "one_by_one_s" in row else "-"
        speedup = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
        table.add_row(row["layer"], str(row["batch"]), f"{row['forward_s'] * 1e3:.2f}", f"{row['backward_s'] * 1e3:.2f}",
                      f"{row['backward_s'] * 1e3 / row['batch']:.3f}", one_by_one, speedup)
    Console().print(table)
    return 0
