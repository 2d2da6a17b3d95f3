"""BodyPoseNet latency: the network at the seed's input resolutions, and the post-processing with 10 people.

Network rows (the seed's resolution / precision / runtime table, on this CPU): the model's weights
at each input size, batch 1, FP32,
- onnxruntime: exported at that size (`bpnet export -d H,W,3` does the same) and run through the
  runner the node uses, `--threads` intra-op threads;
- torch: the same weights in PyTorch, `--threads` threads.
A fully convolutional network's cost does not depend on its weights, so an untrained model folder
gives the same timings (what the test does).

Post-processing rows: `--people` synthetic people (a frontal template, 2 rows across a 640x480
frame) encoded into ideal network maps at stride 8 (the training targets), then the steps
`estimate_people` runs after the network, each timed alone:
- peaks: the 18 joint maps upsampled (cubic, x8) only where they can exceed the threshold, then
  non-maximum suppression + sub-pixel refinement (`UpsampledMaps.peaks`);
- PAF interpolation + grouping: limb scoring by the PAF line integral on PAFs interpolated (cubic)
  at the samples, bipartite matching and assembly into people (`assemble_people`).
The same frame through whole-image maps (what multi-scale inference and other image sizes take):
all 57 maps upsampled to 480x640 (`maps_to_image`), peaks on them (`find_peaks`), and the grouping
alone on the given maps: the step the seed's <= 2 ms per frame target is about.
The people found are counted, so a grouping that loses people cannot look fast.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from ros2_pose.benchmarks._timing import summarize, time_calls

RESOLUTIONS = ((224, 320), (288, 384), (320, 448))
TARGET_GROUPING_MS = 2.0
POST_STAGES = ("peaks", "PAF interpolation + grouping", "whole maps: upsample 57 maps", "whole maps: peaks",
               "whole maps: PAF grouping")
GROUPING_STAGE = "whole maps: PAF grouping"  # the grouping alone, on given maps: what the target is about
FRAME_HW = (480, 640)
# A frontal person, COCO-17 order, as (dx, dy) fractions of the height from the top centre.
_TEMPLATE = np.array([
    (0.0, 0.07), (0.04, 0.04), (-0.04, 0.04), (0.075, 0.06), (-0.075, 0.06),
    (0.12, 0.18), (-0.12, 0.18), (0.16, 0.33), (-0.16, 0.33), (0.18, 0.47), (-0.18, 0.47),
    (0.08, 0.52), (-0.08, 0.52), (0.09, 0.73), (-0.09, 0.73), (0.09, 0.95), (-0.09, 0.95)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="bpnet", help="BodyPoseNet model: shipped name or folder (default bpnet)")
    parser.add_argument("--resolutions", default=",".join(f"{h}x{w}" for h, w in RESOLUTIONS),
                        help="network inputs HxW, comma-separated (default: the seed's 224x320,288x384,320x448)")
    parser.add_argument("--backend", action="append", choices=("onnxruntime", "torch"), default=None,
                        help="backend to time (repeatable; default: onnxruntime and torch)")
    parser.add_argument("--iters", type=int, default=30, help="timed runs per row (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads and torch threads (default 1, as config/bpnet.yaml)")
    parser.add_argument("--people", type=int, default=10, help="people in the post-processing frame (default 10)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            h, w = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"resolution {item!r} is not HxW") from None
        if h <= 0 or w <= 0 or h % 8 or w % 8:
            raise ValueError(f"resolution {item!r}: H and W must be positive multiples of 8")
        sizes.append((h, w))
    if not sizes:
        raise ValueError("no resolution given")
    return sizes


def network_rows(model: str | Path, resolutions, backends, iterations: int, warmup: int, threads: int = 1) -> list[dict]:
    """One row per (resolution, backend): median / p95 ms of one batch-1 FP32 forward pass."""
    import torch

    from ros2_pose.deploy.model_spec import build_torch_model, resolve_model_spec, write_model_folder
    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.training.bodypose import model_config_for

    spec = resolve_model_spec(model)
    config = spec.load_config()
    network = build_torch_model(config, spec.require("weights")).eval()
    torch.set_num_threads(max(1, threads))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_bpnet_") as tmp:
        for h, w in resolutions:
            image = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, h, w)).astype(np.float32)
            for backend in backends:
                if backend == "torch":
                    tensor = torch.from_numpy(image)

                    def run():
                        with torch.no_grad():
                            network(tensor)
                else:
                    folder = Path(tmp) / f"{h}x{w}"
                    if not folder.is_dir():
                        write_model_folder(folder, network, model_config_for(network, (h, w)))
                    runner = create_runner(folder, backend="onnxruntime", intra_op_threads=threads)

                    def run():
                        runner.run({"image": image})
                rows.append({"input": f"{h}x{w}", "backend": backend, "precision": "fp32",
                             **summarize(time_calls(run, iterations, warmup))})
    return rows


def synthetic_people(count: int, frame_hw: tuple[int, int] = FRAME_HW, seed: int = 0) -> np.ndarray:
    """(count, 17, 3) COCO-17 people, visible, side by side in rows across the frame."""
    rng = np.random.default_rng(seed)
    height, width = frame_hw
    per_row = max(1, int(np.ceil(count / 2)))
    rows = int(np.ceil(count / per_row))
    person_h = 0.9 * height / rows
    people = []
    for k in range(count):
        row, col = divmod(k, per_row)
        cx = (col + 0.5) * width / per_row
        top = row * height / rows + 0.04 * person_h
        xy = np.array([cx, top]) + _TEMPLATE * person_h + rng.uniform(-2, 2, _TEMPLATE.shape)
        people.append(np.concatenate([xy, np.full((17, 1), 2.0)], axis=1))
    return np.asarray(people)


def postprocess_rows(people: int, iterations: int, warmup: int, frame_hw: tuple[int, int] = FRAME_HW) -> list[dict]:
    """Median / p95 ms of each post-processing step on ideal maps of `people` people, and the
    number of people the grouping returned."""
    from ros2_pose.codecs.body_heatmaps import encode_body_heatmaps
    from ros2_pose.codecs.paf import encode_pafs
    from ros2_pose.pipelines.body_pose import (BodyPoseInferenceConfig, InputTransform, UpsampledMaps,
                                               assemble_people, find_peaks, maps_to_image)
    from ros2_pose.sim.skeleton import BODYPOSE18_KEYPOINTS, BODYPOSE18_LIMBS, coco17_to_bodypose18

    height, width = frame_hw
    config = BodyPoseInferenceConfig(input_shape=frame_hw, keep_aspect_ratio_mode="pad_image_input")
    stride, upsampling = config.stride, config.output_upsampling_factor
    joints = len(BODYPOSE18_KEYPOINTS)
    truth18 = coco17_to_bodypose18(synthetic_people(people, frame_hw))
    grid_h, grid_w = height // stride, width // stride
    heat = encode_body_heatmaps(truth18, grid_h, grid_w, stride, 7.0)
    paf = encode_pafs(truth18, BODYPOSE18_LIMBS, grid_h, grid_w, stride, 1.0, 0.0)
    identity = InputTransform(1.0, 1.0, width, height, width, height)
    state: dict = {}

    def peaks():
        maps = UpsampledMaps(heat[:joints], identity, frame_hw, upsampling, stride)
        state["peaks"] = maps.peaks(config.heatmap_threshold, config.peak_window)

    def grouping():
        pafs = UpsampledMaps(paf, identity, frame_hw, upsampling, stride)
        state["people"] = assemble_people(state["peaks"], pafs, config)

    def whole_upsample():
        state["heat"] = maps_to_image(heat, identity, frame_hw, upsampling, stride)
        state["paf"] = maps_to_image(paf, identity, frame_hw, upsampling, stride)

    def whole_peaks():
        state["whole_peaks"] = [find_peaks(state["heat"][j], config.heatmap_threshold, config.peak_window)
                                for j in range(joints)]

    def whole_grouping():
        state["whole_people"] = assemble_people(state["whole_peaks"], state["paf"], config)

    rows = []
    for stage, step in zip(POST_STAGES, (peaks, grouping, whole_upsample, whole_peaks, whole_grouping)):
        rows.append({"stage": stage, "people": people, "frame": f"{height}x{width}",
                     **summarize(time_calls(step, iterations, warmup))})
    for row in rows:
        row["people_found"] = len(state["whole_people" if row["stage"].startswith("whole") else "people"])
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.iters < 1 or args.warmup < 0 or args.people < 1:
        raise SystemExit("--iters and --people must be >= 1, --warmup >= 0")
    resolutions = parse_resolutions(args.resolutions)
    backends = args.backend or ["onnxruntime", "torch"]
    console = Console()
    try:
        net = network_rows(args.model, resolutions, backends, args.iters, args.warmup, args.threads)
    except FileNotFoundError as exc:
        console.print(f"[red]bench bpnet: {exc}[/red]")
        return 2
    post = postprocess_rows(args.people, args.iters, args.warmup)
    table = Table(title=f"BodyPoseNet network, batch 1, {args.threads} thread(s), median of {args.iters}")
    for column in ("input HxW", "backend", "precision", "median ms", "p95 ms"):
        table.add_column(column, justify="left" if column in ("backend", "precision") else "right")
    for row in net:
        table.add_row(row["input"], row["backend"], row["precision"], f"{row['median_ms']:.2f}", f"{row['p95_ms']:.2f}")
    console.print(table)
    found = post[0]["people_found"]
    table = Table(title=f"post-processing, {args.people} people in a {post[0]['frame']} frame "
                        f"({found} found), median of {args.iters}")
    for column in ("step", "median ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for row in post:
        table.add_row(row["stage"], f"{row['median_ms']:.3f}", f"{row['p95_ms']:.3f}")
    console.print(table)
    grouping = next(r for r in post if r["stage"] == GROUPING_STAGE)
    verdict = "meets" if grouping["median_ms"] <= TARGET_GROUPING_MS and grouping["people_found"] == args.people \
        else "misses"
    on_demand = sum(r["median_ms"] for r in post[:2])
    whole = sum(r["median_ms"] for r in post[2:])
    console.print(f"PAF grouping {grouping['median_ms']:.3f} ms per frame with {args.people} people "
                  f"({grouping['people_found']} found): {verdict} the <= {TARGET_GROUPING_MS:g} ms target; "
                  f"post-processing {on_demand:.1f} ms with maps upsampled on demand (the node's path) vs "
                  f"{whole:.1f} ms through whole maps")
    if args.json:
        args.json.write_text(json.dumps({"network": net, "postprocess": post}, indent=2))
    return 0
