"""Drone pipeline latency per module at the camera's resolution: crop, backbone, decode, PnP, per frame.

The anatomy of seed 002's keypoint-detector timings, for the drone_pose pipeline
(ros2_pose.pipelines.drone), on frames of a drone bag (default: the drone sample bag, 640x480). For
each network (one per drone model) and backend, one frame at a time:
- coarse letterbox: the whole image resampled into the network's SxS input (the coarse pass the node
  runs when no detector gives boxes), and its conversion to the network's float input;
- coarse backbone / coarse decode: the network on it, then keypoints -> image pixels -> box;
- crop: the SxS crop around that box (a centred box of the crop's minimum size when the coarse pass
  finds none: a crop costs the same whatever the box) and its float input;
- backbone: the runner call alone (anti-aliased stride-4 stem + HRNet branches + heatmap head);
- decode: heatmaps -> keypoints in image pixels with the pipeline's decoder;
- PnP: OpenCV PnP on them (`solve_drone_pose`; a frame with too few confident keypoints returns
  early, so `pnp_solved` says how many timed frames really ran a solver).
Extra rows: every decoder of ros2_pose.codecs.decoders on the same heatmaps (the seed's argmax vs
soft-argmax question), and with the torch backend the stem alone (the anti-aliased downsampling,
BlurPool) inside the backbone. Per frame: `DronePosePipeline.process` with all networks and no
detections, what the node computes per image (message work excluded).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ros2_pose.benchmarks._timing import summarize

STAGES = ("coarse letterbox", "coarse backbone", "coarse decode", "crop", "backbone", "decode", "PnP")
STEM = "backbone: stem alone (anti-aliased 1/4 downsampling)"
PER_FRAME = "per frame (all networks, coarse pass + crop + PnP)"
DEFAULT_MODELS = ("drone_pose_large", "drone_pose_small")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", nargs="+", default=None,
                        help=f"keypoint network(s): shipped names or folders (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--backend", action="append", choices=("onnxruntime", "torch", "tensorrt"), default=None,
                        help="backend to time (repeatable; default: onnxruntime and torch)")
    parser.add_argument("--iters", type=int, default=36, help="timed frames per row (default 36)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    parser.add_argument("--bag", type=Path, default=None, help="frames from this bag (default: the drone sample bag)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads and torch threads (default 1, as config/drone_pose.yaml)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1e3


def stage_rows(pipeline, drone_model: str, frames, iterations: int, warmup: int, stem=None) -> dict[str, dict]:
    """Median / p95 per module of one network over `iterations` frames (cycling through `frames`)."""
    from ros2_pose.codecs.decoders import DECODERS
    from ros2_pose.geometry.crop import RoiCrop
    from ros2_pose.pipelines.drone import decode_crop_keypoints, network_input, solve_drone_pose

    runner, info = pipeline.models[drone_model]
    decoders = [d for d in DECODERS if d != pipeline.decoder]
    times = {stage: [] for stage in STAGES + tuple(f"decode ({d})" for d in decoders)}
    if stem is not None:
        times[STEM] = []
    solved = 0
    for i in range(warmup + iterations):
        image, camera = frames[i % len(frames)]
        height, width = image.shape[:2]
        row = {}
        letterbox = RoiCrop.whole_image(width, height, info.crop.size)
        coarse_input, row["coarse letterbox"] = _timed(lambda: network_input(letterbox.apply(image)[None]))
        heatmaps, row["coarse backbone"] = _timed(lambda: runner.run({"image": coarse_input})["heatmaps"])

        def coarse_box():
            xy, confidence = decode_crop_keypoints(heatmaps, info.output_stride, pipeline.decoder)
            return pipeline.coarse_box(letterbox.crop_to_image(xy[0]), confidence[0])
        box, row["coarse decode"] = _timed(coarse_box)
        if box is None:
            box = np.array([width / 2, height / 2, width / 2, height / 2])
        crop = info.crop.crop(box)
        crop_input, row["crop"] = _timed(lambda: network_input(crop.apply(image)[None]))
        heatmaps, row["backbone"] = _timed(lambda: runner.run({"image": crop_input})["heatmaps"])

        def decode(decoder):
            xy, confidence = decode_crop_keypoints(heatmaps, info.output_stride, decoder)
            return crop.crop_to_image(xy[0]), confidence[0]
        (keypoints, confidence), row["decode"] = _timed(lambda: decode(pipeline.decoder))
        for name in decoders:
            row[f"decode ({name})"] = _timed(lambda: decode(name))[1]
        (status, _, _), row["PnP"] = _timed(lambda: solve_drone_pose(keypoints, confidence, info.keypoints_3d,
                                                                     camera, pipeline.pnp))
        if stem is not None:
            import torch

            with torch.no_grad():
                row[STEM] = _timed(lambda: stem(torch.from_numpy(crop_input)))[1]
        if i >= warmup:
            solved += status != "too_few_keypoints"
            for stage, value in row.items():
                times[stage].append(value)
    rows = {stage: summarize(values) for stage, values in times.items()}
    rows["PnP"]["pnp_solved"] = solved
    return rows


def frame_row(pipeline, frames, iterations: int, warmup: int) -> dict:
    values, poses = [], 0
    for i in range(warmup + iterations):
        image, camera = frames[i % len(frames)]
        results, elapsed = _timed(lambda: pipeline.process(image, camera))
        if i >= warmup:
            values.append(elapsed)
            poses += sum(r.status == "ok" for r in results)
    return {**summarize(values), "poses": poses}


def benchmark(models, backends, iterations: int, warmup: int, bag, threads: int = 1) -> list[dict]:
    """One row per (backend, network, module), the decoder variants, the stem (torch) and per frame
    per backend; a backend that cannot run is a row with `skipped` and the reason."""
    import torch

    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model
    from ros2_pose.deploy.runner import BackendUnavailableError, PrecisionUnsupportedError, create_runner
    from ros2_pose.pipelines.drone import DroneModelInfo, DronePosePipeline
    from ros2_pose.resources import model_location
    from ros2_pose.ros.bag_frames import read_camera_frames

    # The torch backend would otherwise spread one small network over every core: the same thread
    # budget as ONNX Runtime's intra_op_threads.
    torch.set_num_threads(max(1, threads))
    folders = [model_location(str(m)) for m in models]
    infos = [DroneModelInfo.from_folder(f) for f in folders]
    frames = read_camera_frames(bag, max(1, min(iterations + warmup, 36)))
    rows = []
    for backend in backends:
        try:
            runners = [create_runner(f, backend=backend, warmup=2, intra_op_threads=threads) for f in folders]
        except (BackendUnavailableError, PrecisionUnsupportedError, FileNotFoundError) as exc:
            rows.append({"backend": backend, "network": "all", "stage": "all", "skipped": str(exc).split(". ")[0]})
            continue
        pipeline = DronePosePipeline(list(zip(runners, infos)))
        for folder, info in zip(folders, infos):
            stem = None
            if backend == "torch":
                spec = ModelSpec.from_folder(folder)
                stem = build_torch_model(spec.load_config(), spec.require("weights")).stem
            stages = stage_rows(pipeline, info.drone_model, frames, iterations, warmup, stem)
            modules_ms = sum(stages[s]["median_ms"] for s in STAGES)
            for stage, s in stages.items():
                share = s["median_ms"] / modules_ms if stage in STAGES else None
                rows.append({"backend": backend, "network": Path(folder).name, "stage": stage, **s, "share": share})
            rows.append({"backend": backend, "network": Path(folder).name, "stage": "sum of modules",
                         "median_ms": modules_ms, "p95_ms": None, "n": iterations, "share": 1.0})
        rows.append({"backend": backend, "network": "+".join(Path(f).name for f in folders), "stage": PER_FRAME,
                     **frame_row(pipeline, frames, iterations, warmup)})
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ros2_pose.pipelines.drone import DroneModelInfoError

    console = Console()
    if args.iters < 1 or args.warmup < 0:
        console.print("[red]--iters must be >= 1 and --warmup >= 0[/red]")
        return 2
    bag = args.bag
    if bag is None:
        from ros2_pose.samples import sample_bag
        bag = sample_bag("drone")
    try:
        rows = benchmark(args.model or list(DEFAULT_MODELS), args.backend or ["onnxruntime", "torch"], args.iters,
                         args.warmup, bag, args.threads)
    except (FileNotFoundError, DroneModelInfoError) as exc:
        console.print(f"[red]bench drone: {exc}[/red]")
        return 2
    table = Table(title=f"drone pipeline latency per module, {args.threads} thread(s), {args.iters} frames of {bag}")
    for column in ("backend", "network", "module", "median ms", "p95 ms", "share of modules", "n"):
        table.add_column(column, justify="left" if column in ("backend", "network", "module") else "right")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"
    for row in rows:
        if "skipped" in row:
            table.add_row(row["backend"], row["network"], "skipped", row["skipped"], "", "", "")
            continue
        n = str(row["n"])
        if "pnp_solved" in row:
            n += f" ({row['pnp_solved']} solved)"
        if "poses" in row:
            n += f" ({row['poses']} poses)"
        share = row.get("share")
        table.add_row(row["backend"], row["network"], row["stage"], fmt(row["median_ms"]), fmt(row.get("p95_ms")),
                      "-" if share is None else f"{share * 100:.1f} %", n)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
