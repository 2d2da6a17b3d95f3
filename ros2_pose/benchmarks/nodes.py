"""How much of each node's per-frame time goes to messages rather than to its pipeline.

Every node runs in this process, started from its config file with the shipped models (ONNX
Runtime, one thread), and gets the frames of its sample bag one at a time (CameraInfo, then the
Image, waiting until the node has handled it). The node base times each image callback as a whole
and the `pipeline` stage inside it (`LifecycleNodeBase.timed`); the rest of the callback is the
node's message work: Image -> numpy conversion, building its output messages and publishing them
(issue 5's target: under 10 % of the per-frame time).

Rows: median callback ms, median pipeline ms, median message ms and the message share of the
total callback time over the timed frames.
"""
from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np

TARGET_MESSAGE_SHARE = 0.10  # issue 5: messages under 10 % of a node's per-frame time
# node module -> sample bag of its input; the node class is the module's NODE_CLASS.
NODE_SAMPLES = {"dolly_pose": "dolly", "dolly_detector": "dolly", "drone_pose": "drone", "bpnet": "people",
                "depth_egomotion": "motion"}
FRAME_TIMEOUT_S = 20.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", action="append", choices=sorted(NODE_SAMPLES), default=None,
                        help="node to time (repeatable; default: all)")
    parser.add_argument("--frames", type=int, default=24, help="timed frames per node (default 24)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


def time_node(context, module_name: str, frames, timed: int, warmup: int) -> dict:
    """Feed `warmup + timed` frames (cycled, stamps kept increasing) to the node of `module_name`
    and summarise its last `timed` frame timings."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from ros2_pose.benchmarks._ros import start_spinning, stop_spinning
    from ros2_pose.ros.message_builders import ns_to_stamp, stamp_to_ns
    from ros2_pose.ros.qos import reliable_qos

    node_class = importlib.import_module(f"ros2_pose.nodes.{module_name}").NODE_CLASS
    node = node_class(context=context, cli_args=["--ros-args", "-p", "autostart:=false"])
    probe = Node(f"bench_nodes_probe_{module_name}", context=context)
    image_pub = probe.create_publisher(Image, "image", reliable_qos())
    info_pub = probe.create_publisher(CameraInfo, "camera_info", reliable_qos())
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    thread = None
    try:
        if node.trigger_configure().name != "SUCCESS" or node.trigger_activate().name != "SUCCESS":
            raise RuntimeError(f"{module_name} did not start (see its log)")
        thread = start_spinning(executor)
        deadline = time.monotonic() + 10.0
        while (image_pub.get_subscription_count() < 1 or info_pub.get_subscription_count() < 1) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        stamps = [stamp_to_ns(image.header.stamp) for image, _ in frames]
        span = max(stamps) - min(stamps) + 100_000_000
        for i in range(warmup + timed):
            image, info = frames[i % len(frames)]
            stamp = stamps[i % len(frames)] + (i // len(frames)) * span  # time never runs backwards
            image.header.stamp = info.header.stamp = ns_to_stamp(stamp)
            info_pub.publish(info)
            until = time.monotonic() + FRAME_TIMEOUT_S
            while getattr(node, "camera", "no camera input") is None and time.monotonic() < until:
                time.sleep(0.002)
            handled = node.stats.frames_processed + node.stats.frames_dropped
            image_pub.publish(image)
            # until the callback has finished, processed or dropped (coarse polling: the node's
            # thread needs the GIL more than we do)
            while node.stats.frames_processed + node.stats.frames_dropped == handled and time.monotonic() < until:
                time.sleep(0.002)
        timings = list(node.frame_timings)[-timed:]
    finally:
        stop_spinning(executor, thread)
        node.destroy_node()
        probe.destroy_node()
    if not timings:
        raise RuntimeError(f"{module_name} processed none of the frames (dropped: {node.stats.last_drop_reason!r})")
    callback = np.array([t["callback_s"] for t in timings]) * 1e3
    pipeline = np.array([t.get("pipeline", 0.0) for t in timings]) * 1e3
    messages = callback - pipeline
    return {"node": module_name, "frames": len(timings), "callback_median_ms": float(np.median(callback)),
            "pipeline_median_ms": float(np.median(pipeline)), "messages_median_ms": float(np.median(messages)),
            "message_share": float(messages.sum() / callback.sum())}


def benchmark(nodes, timed: int, warmup: int) -> list[dict]:
    import rclpy
    from rclpy.context import Context

    from ros2_pose.ros.bag_frames import read_camera_messages
    from ros2_pose.demo.dolly_replay import ensure_local_ros_environment
    from ros2_pose.samples import sample_bag

    ensure_local_ros_environment()
    rows = []
    for module_name in nodes:
        frames = read_camera_messages(sample_bag(NODE_SAMPLES[module_name]), 64)
        context = Context()
        rclpy.init(args=[], context=context)
        try:
            rows.append(time_node(context, module_name, frames, timed, warmup))
        finally:
            context.try_shutdown()
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.frames < 1 or args.warmup < 0:
        raise SystemExit("--frames must be at least 1 and --warmup at least 0")
    rows = benchmark(args.node or list(NODE_SAMPLES), args.frames, args.warmup)
    table = Table(title=f"per-frame time of each node on its sample bag (median of {args.frames} frames; "
                        "messages = image conversion + building and publishing outputs)")
    for column in ("node", "callback ms", "pipeline ms", "messages ms", "message share", "target < 10 %"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for row in rows:
        table.add_row(row["node"], f"{row['callback_median_ms']:.2f}", f"{row['pipeline_median_ms']:.2f}",
                      f"{row['messages_median_ms']:.2f}", f"{100 * row['message_share']:.1f} %",
                      "met" if row["message_share"] < TARGET_MESSAGE_SHARE else "MISSED")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
