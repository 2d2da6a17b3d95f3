"""Depth + ego-motion latency per module: the anatomy of one frame of the depth_egomotion node.

On the frames of a motion bag (default: the motion sample bag, 320x240), with the shipped depth and
pose networks per backend, one frame at a time (the pipeline's own steps, so the numbers are the
node's code):
- prepare: undistortion when the camera has distortion, resize to the networks' input, float CHW;
- depth network: the runner call alone;
- depth decoding: output checks, metric scale, and the depth map resized back to the image, into
  the outgoing message's pixels as in the node;
- pose network: the runner call on the frame window (target + sources) alone;
- odometry: the window's 6-DoF outputs -> camera poses -> metric motion -> integrated pose;
- messages: the 32FC1 depth Image (its pixels already written), the Odometry and the TF filled
  in, each one message object reused frame after frame as in the node (publishing is measured
  with the node itself by `ros2-pose bench nodes`).
Per frame: `DepthEgoMotionPipeline.process` (message work excluded).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ros2_pose.benchmarks._timing import summarize, time_calls

STAGES = ("prepare", "depth network", "depth decoding", "pose network", "odometry", "messages")
PER_FRAME = "per frame (DepthEgoMotionPipeline.process)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--depth-model", default="depth_egomotion_depth", help="depth network: shipped name or folder")
    parser.add_argument("--pose-model", default="depth_egomotion_pose", help="pose network: shipped name or folder")
    parser.add_argument("--backend", action="append", choices=("onnxruntime", "torch", "tensorrt"), default=None,
                        help="backend to time (repeatable; default: onnxruntime and torch)")
    parser.add_argument("--iters", type=int, default=30, help="timed calls per row (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--bag", type=Path, default=None, help="frames from this bag (default: the motion sample bag)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads and torch threads (default 1, as config/depth_egomotion.yaml)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


def stage_rows(pipeline, frames, iterations: int, warmup: int) -> dict[str, dict]:
    """Median / p95 of each module, each timed on its own over the frames (cycled)."""
    from std_msgs.msg import Header

    from geometry_msgs.msg import TransformStamped
    from nav_msgs.msg import Odometry

    from ros2_pose.pipelines.depth_egomotion import motion_between, twist_from_motion
    from ros2_pose.ros.image_conversion import ReusedImageMessage
    from ros2_pose.ros.message_builders import ns_to_stamp, odometry, transform_stamped

    image, camera = frames[0]
    prepared = [pipeline.prepare(frame_image, frame_camera)[0] for frame_image, frame_camera in frames]
    counter = iter(range(10 ** 9))

    def frame():
        return next(counter) % len(frames)

    depth = pipeline.network_depth(prepared[0])
    pipeline.window.clear()
    pipeline.window.extend(prepared[:pipeline.frames_per_sample])
    poses = pipeline.window_poses()
    motion = pipeline._metric(motion_between(poses, len(poses) - 2, len(poses) - 1), 1.0)
    metric_depth = pipeline.metric_depth(depth, 1.0, image.shape[:2])
    header = Header(stamp=ns_to_stamp(1), frame_id="camera_optical_frame")

    # as the node: one message per output refilled every frame, the depth resized into its pixels
    depth_message, odometry_message, transform_message = ReusedImageMessage("32FC1"), Odometry(), TransformStamped()
    twist = twist_from_motion(motion, 1 / 30)

    def decode():
        checked = pipeline.checked_depth(depth)
        _, pixels = depth_message.prepare(*image.shape[:2], header)
        return pipeline.metric_depth(checked, pipeline.scale(checked, camera), image.shape[:2], out=pixels)

    def integrate():
        step = pipeline._metric(motion_between(poses, len(poses) - 2, len(poses) - 1), 1.0)
        return pipeline.pose @ step

    def messages():
        depth_msg, _ = depth_message.prepare(*metric_depth.shape, header)
        odom = odometry(motion, header.stamp, "odom", "camera_link", twist=twist, out=odometry_message)
        return depth_msg, odom, transform_stamped(motion, header.stamp, "odom", "camera_link", out=transform_message)

    stages = {
        "prepare": lambda: pipeline.prepare(*frames[frame()]),
        "depth network": lambda: pipeline.depth_runner.run({"image": prepared[frame()][None]}),
        "depth decoding": decode,
        "pose network": lambda: pipeline.pose_runner.run(
            {"target": prepared[0][None], "sources": np.stack(prepared[1:pipeline.frames_per_sample])[None]}),
        "odometry": integrate,
        "messages": messages,
    }
    rows = {name: summarize(time_calls(fn, iterations, warmup)) for name, fn in stages.items()}
    # The whole pipeline, frame after frame with increasing stamps (a fresh window first).
    pipeline.reset(None)
    period_ns = 33_333_333
    stamp = iter(range(1, 10 ** 9))
    rows[PER_FRAME] = summarize(time_calls(
        lambda: pipeline.process(*frames[frame()], next(stamp) * period_ns), iterations,
        warmup + pipeline.frames_per_sample))
    return rows


def benchmark(depth_model: str, pose_model: str, backends, iterations: int, warmup: int, bag=None,
              threads: int = 1) -> list[dict]:
    """One row per (backend, stage); a backend that cannot run is a row with `skipped` and the reason."""
    import torch

    from ros2_pose.ros.bag_frames import read_camera_frames
    from ros2_pose.deploy.runner import BackendUnavailableError, PrecisionUnsupportedError, create_runner
    from ros2_pose.pipelines.depth_egomotion import DepthEgoMotionPipeline, read_motion_sidecar
    from ros2_pose.resources import model_location
    from ros2_pose.samples import sample_bag

    torch.set_num_threads(max(1, threads))
    depth_folder, pose_folder = model_location(depth_model), model_location(pose_model)
    # as the node gets them: the pipeline removes distortion itself (in its prepare step)
    frames = read_camera_frames(bag or sample_bag("motion"), 30, pinhole=False)
    rows = []
    for backend in backends:
        try:
            pipeline = DepthEgoMotionPipeline(
                create_runner(depth_folder, backend=backend, warmup=2, intra_op_threads=threads),
                create_runner(pose_folder, backend=backend, warmup=2, intra_op_threads=threads),
                target_index=read_motion_sidecar(pose_folder).get("target_index"))
        except (BackendUnavailableError, PrecisionUnsupportedError, FileNotFoundError) as exc:
            rows.append({"backend": backend, "stage": "all", "skipped": str(exc).split(". ")[0]})
            continue
        stages = stage_rows(pipeline, frames, iterations, warmup)
        frame_ms = stages[PER_FRAME]["median_ms"]
        for stage, s in stages.items():
            rows.append({"backend": backend, "stage": stage, **s, "share": s["median_ms"] / frame_ms})
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.iters < 1 or args.warmup < 0:
        raise SystemExit("--iters must be at least 1 and --warmup at least 0")
    rows = benchmark(args.depth_model, args.pose_model, args.backend or ["onnxruntime", "torch"], args.iters,
                     args.warmup, args.bag, args.threads)
    table = Table(title=f"depth + ego-motion per module ({args.iters} calls per row, {args.threads} thread(s); "
                        "share of the per-frame median)")
    for column in ("backend", "stage", "median ms", "p95 ms", "share"):
        table.add_column(column, justify="left" if column in ("backend", "stage") else "right")
    for row in rows:
        if "skipped" in row:
            table.add_row(row["backend"], "skipped", row["skipped"], "", "")
            continue
        table.add_row(row["backend"], row["stage"], f"{row['median_ms']:.2f}", f"{row['p95_ms']:.2f}",
                      f"{100 * row['share']:.0f} %")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
