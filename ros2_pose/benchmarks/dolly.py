"""Dolly pipeline latency at 640x480: per stage (median, p95) and end to end through the real node.

Stages, timed one after the other on frames of the dolly sample bag (`DollyPipeline`'s own steps, so
the numbers are the node's code):
- detect: letterbox to 160x160 + detector network + best-box decoding;
- crop: 128x128 ROI crop + normalised box (the pose network's inputs);
- pose network: the runner call alone;
- pose decoding: 6D rotation -> matrix, crop centre + log depth ratio -> metres, checks;
- messages: Image -> numpy (the node's decode) + PoseStamped, TF and Detection2DArray built and
  published to a subscriber in the same process.
End to end: a DollyPoseNode (config/dolly_pose.yaml parameters, the chosen backend) and a test node
on one executor in this process; the test node publishes an Image and times until the PoseStamped
with that stamp arrives, one frame at a time.

`--untrained` times networks of the shipped architectures (detector width 16, pose "half") with
fixed output heads (ros2_pose.demo.fixed_output_models) when no trained model is at hand: the cost
of a network does not depend on its weights.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ros2_pose.benchmarks._timing import summarize
from ros2_pose.benchmarks.nodes import TARGET_MESSAGE_SHARE

STAGES = ("detect", "crop", "pose network", "pose decoding", "messages")
TARGET_POSE_NETWORK_MS = 5.0
TARGET_END_TO_END_MS = 20.0
E2E_TIMEOUT_S = 5.0
E2E_STAGE = "end to end (node)"  # image published -> PoseStamped received, through DollyPoseNode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", action="append", choices=("onnxruntime", "torch", "tensorrt"), default=None,
                        help="backend to time (repeatable; default: onnxruntime and torch)")
    parser.add_argument("--iters", type=int, default=60, help="timed frames per row (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames first (default 5)")
    parser.add_argument("--detector", default="dolly_detector", help="detector: shipped name or folder")
    parser.add_argument("--model", default="dolly_pose_half", help="pose network: shipped name or folder")
    parser.add_argument("--untrained", action="store_true",
                        help="time fixed-output networks of the shipped architectures instead of --detector/--model")
    parser.add_argument("--bag", type=Path, default=None, help="frames from this bag (default: the dolly sample bag)")
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the end-to-end rows")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads and torch threads (default 1, as config/dolly_pose.yaml)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


class MessageStage:
    """The node's message work outside the pipeline, on real rclpy publishers with a matched subscriber.

    The subscriber is not spun while timing: delivery into its reader happens in the middleware's own
    threads, and a Python thread spinning beside the timed one would add GIL hand-overs (up to the
    5 ms switch interval) that the node, which publishes from its executor thread, does not pay."""

    def __init__(self, context):
        from geometry_msgs.msg import PoseStamped
        from rclpy.node import Node
        from ros2_pose_msgs.msg import Detection2DArray
        from tf2_msgs.msg import TFMessage

        from ros2_pose.ros.qos import reliable_qos, tf_qos

        self.publisher_node = Node("bench_dolly_messages", context=context)
        self.pose_pub = self.publisher_node.create_publisher(PoseStamped, "bench/dolly/pose", reliable_qos())
        self.tf_pub = self.publisher_node.create_publisher(TFMessage, "bench/tf", tf_qos())
        self.det_pub = self.publisher_node.create_publisher(Detection2DArray, "bench/dolly/detections", reliable_qos())
        self.sink = Node("bench_dolly_message_sink", context=context)
        for msg_type, topic, qos in ((PoseStamped, "bench/dolly/pose", reliable_qos()),
                                     (TFMessage, "bench/tf", tf_qos()),
                                     (Detection2DArray, "bench/dolly/detections", reliable_qos())):
            self.sink.create_subscription(msg_type, topic, lambda _msg: None, qos)
        deadline = time.monotonic() + 10.0
        publishers = (self.pose_pub, self.tf_pub, self.det_pub)
        while any(p.get_subscription_count() < 1 for p in publishers) and time.monotonic() < deadline:
            time.sleep(0.02)

    def run(self, image_msg, pose, box, score) -> None:
        from tf2_msgs.msg import TFMessage

        from ros2_pose.nodes.dolly_detector import detections_message
        from ros2_pose.ros.image_conversion import from_image_msg
        from ros2_pose.ros.message_builders import pose_stamped, transform_stamped

        from_image_msg(image_msg, "rgb8")
        header = image_msg.header
        self.det_pub.publish(detections_message(header, box, score, 0.0))
        self.pose_pub.publish(pose_stamped(pose, header))
        self.tf_pub.publish(TFMessage(transforms=[transform_stamped(pose, header.stamp, header.frame_id, "dolly")]))

    def close(self) -> None:
        self.publisher_node.destroy_node()
        self.sink.destroy_node()


def stage_rows(pipeline, frames, message_stage, iterations: int, warmup: int) -> dict[str, dict]:
    """Median / p95 of every stage over `iterations` frames (cycling through `frames`)."""
    from ros2_pose.geometry.camera import CameraModel
    from ros2_pose.geometry.transforms import RigidTransform
    from ros2_pose.ros.image_conversion import from_image_msg

    decoded = []
    for image_msg, info in frames:
        image, camera = CameraModel.from_camera_info(info).pinhole_view(np.array(from_image_msg(image_msg, "rgb8")))
        decoded.append((image_msg, image, camera))
    times = {stage: [] for stage in STAGES}
    fallback_pose = RigidTransform(np.eye(3), np.array([0.0, 0.0, 2.0]))
    for i in range(warmup + iterations):
        image_msg, image, camera = decoded[i % len(decoded)]
        t0 = time.perf_counter()
        box, score = pipeline.detect(image)
        t1 = time.perf_counter()
        inputs, K_crop = pipeline.pose_inputs(image, camera, box)
        t2 = time.perf_counter()
        out = pipeline.pose.run(inputs)
        t3 = time.perf_counter()
        pose = pipeline.decode_pose(out, K_crop)
        t4 = time.perf_counter()
        # A rejected pose still costs the messages a pose would: time them with a stand-in pose.
        message_stage.run(image_msg, pose if pose is not None else fallback_pose, box, score)
        t5 = time.perf_counter()
        if i >= warmup:
            for stage, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
                times[stage].append((b - a) * 1e3)
    return {stage: summarize(values) for stage, values in times.items()}


def end_to_end(context, detector: str, pose_model: str, backend: str, threads: int, frames, iterations: int,
               warmup: int) -> dict:
    """Image published -> PoseStamped of that stamp received, through a DollyPoseNode in process."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from ros2_pose.benchmarks._ros import start_spinning, stop_spinning
    from ros2_pose.nodes.dolly_pose import DollyPoseNode
    from ros2_pose.ros.message_builders import ns_to_stamp, stamp_to_ns
    from ros2_pose.ros.qos import reliable_qos
    from ros2_pose_msgs.msg import Detection2DArray

    node = DollyPoseNode(context=context, cli_args=[
        "--ros-args", "-p", f"detector_model:={detector}", "-p", f"pose_model:={pose_model}",
        "-p", f"backend:={backend}", "-p", f"intra_op_threads:={threads}", "-p", "autostart:=false"])
    probe = Node("bench_dolly_e2e_probe", context=context)
    image_pub = probe.create_publisher(Image, "image", reliable_qos())
    info_pub = probe.create_publisher(CameraInfo, "camera_info", reliable_qos())
    arrivals: dict[int, float] = {}
    answered: dict[int, float] = {}
    pose_arrived, answer_arrived = threading.Event(), threading.Event()

    def on_pose(msg) -> None:
        arrivals.setdefault(stamp_to_ns(msg.header.stamp), time.perf_counter())
        pose_arrived.set()

    def on_detections(msg) -> None:
        answered.setdefault(stamp_to_ns(msg.header.stamp), time.perf_counter())
        answer_arrived.set()

    probe.create_subscription(PoseStamped, "dolly/pose", on_pose, reliable_qos())
    probe.create_subscription(Detection2DArray, "dolly/detections", on_detections, reliable_qos())
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    thread = None
    try:
        if node.trigger_configure().name != "SUCCESS" or node.trigger_activate().name != "SUCCESS":
            raise RuntimeError(f"dolly_pose did not start with backend {backend} (see its log)")
        thread = start_spinning(executor)
        deadline = time.monotonic() + 10.0
        while (image_pub.get_subscription_count() < 1 or info_pub.get_subscription_count() < 1
               or probe.count_publishers("/dolly/pose") < 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        latencies, no_pose = [], 0
        stamp = 1
        for i in range(warmup + iterations):
            image_msg, info = frames[i % len(frames)]
            stamp += 1_000_000  # a stamp of its own per publish, so every answer is matched to it
            image_msg.header.stamp = info.header.stamp = ns_to_stamp(stamp)
            info_pub.publish(info)
            while node.camera is None and time.monotonic() < deadline + 10.0:
                time.sleep(0.001)
            pose_arrived.clear()
            answer_arrived.clear()
            start = time.perf_counter()
            image_pub.publish(image_msg)
            # Block on events (no polling: a polling Python thread would steal the GIL from the node's).
            until = time.monotonic() + E2E_TIMEOUT_S
            while stamp not in answered and time.monotonic() < until:
                answer_arrived.wait(0.1)
                answer_arrived.clear()
            pose_until = time.monotonic() + 0.1  # the pose is published right after the detections
            while stamp in answered and stamp not in arrivals and time.monotonic() < pose_until:
                pose_arrived.wait(0.02)
                pose_arrived.clear()
            if i < warmup:
                continue
            if stamp in arrivals:
                latencies.append((arrivals[stamp] - start) * 1e3)
            else:
                no_pose += 1
        result = summarize(latencies) if latencies else {"median_ms": None, "p95_ms": None, "n": 0}
        result["frames_without_pose"] = no_pose
        return result
    finally:
        stop_spinning(executor, thread)
        node.release()
        node.destroy_node()
        probe.destroy_node()


def benchmark(detector: str, pose_model: str, backends, iterations: int, warmup: int, bag, threads: int = 1,
              run_end_to_end: bool = True) -> list[dict]:
    """One row per (backend, stage) and per backend end to end; a backend that cannot run is a row
    with `skipped` and the reason."""
    import rclpy
    from rclpy.context import Context

    from ros2_pose.demo.dolly_replay import ensure_local_ros_environment, locate_models
    from ros2_pose.deploy.runner import BackendUnavailableError, PrecisionUnsupportedError, create_runner
    from ros2_pose.pipelines.dolly import DollyPipeline
    from ros2_pose.ros.bag_frames import read_camera_messages

    ensure_local_ros_environment()
    import torch

    # The torch backend would otherwise spread one small network over every core (and the node shares
    # the robot's CPU with other nodes): the same thread budget as ONNX Runtime's intra_op_threads.
    torch.set_num_threads(max(1, threads))
    detector_folder, pose_folder = locate_models(detector, pose_model)
    frames = read_camera_messages(bag, 12)
    context = Context()
    rclpy.init(args=[], context=context)
    rows = []
    messages = MessageStage(context)
    try:
        for backend in backends:
            try:
                pipeline = DollyPipeline(
                    create_runner(detector_folder, backend=backend, warmup=2, intra_op_threads=threads),
                    create_runner(pose_folder, backend=backend, warmup=2, intra_op_threads=threads))
            except (BackendUnavailableError, PrecisionUnsupportedError, FileNotFoundError) as exc:
                rows.append({"backend": backend, "stage": "all", "skipped": str(exc).split(". ")[0]})
                continue
            stages = stage_rows(pipeline, frames, messages, iterations, warmup)
            frame_ms = sum(s["median_ms"] for s in stages.values())
            for stage, s in stages.items():
                rows.append({"backend": backend, "stage": stage, **s, "share": s["median_ms"] / frame_ms})
            rows.append({"backend": backend, "stage": "sum of stages", "median_ms": frame_ms, "p95_ms": None,
                         "n": iterations, "share": 1.0})
            if run_end_to_end:
                e2e = end_to_end(context, str(detector_folder), str(pose_folder), backend, threads, frames,
                                 iterations, warmup)
                rows.append({"backend": backend, "stage": E2E_STAGE, **e2e})
    finally:
        messages.close()
        context.try_shutdown()
    return rows


def verdicts(rows: list[dict]) -> list[str]:
    """The targets, checked honestly per backend."""
    lines = []
    by = {(r["backend"], r["stage"]): r for r in rows if "skipped" not in r}
    for backend in dict.fromkeys(r["backend"] for r in rows):
        pose = by.get((backend, "pose network"))
        if pose is None:
            continue
        e2e = by.get((backend, E2E_STAGE))
        share = by[(backend, "messages")]["share"]
        ok = lambda flag: "met" if flag else "MISSED"
        text = (f"{backend}: pose network {pose['median_ms']:.2f} ms (target <= {TARGET_POSE_NETWORK_MS:g}: "
                f"{ok(pose['median_ms'] <= TARGET_POSE_NETWORK_MS)}); messages {share * 100:.1f} % of the frame "
                f"(target < {TARGET_MESSAGE_SHARE * 100:g} %: {ok(share < TARGET_MESSAGE_SHARE)})")
        if e2e is not None and e2e.get("median_ms") is not None:
            text += (f"; end to end {e2e['median_ms']:.1f} ms (target <= {TARGET_END_TO_END_MS:g}: "
                     f"{ok(e2e['median_ms'] <= TARGET_END_TO_END_MS)})")
        lines.append(text)
    return lines


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ros2_pose.demo.dolly_replay import MissingModelError

    console = Console()
    if args.iters < 1:
        console.print("[red]--iters must be >= 1[/red]")
        return 2
    backends = args.backend or ["onnxruntime", "torch"]
    bag = args.bag
    if bag is None:
        from ros2_pose.samples import sample_bag
        bag = sample_bag("dolly")
    with tempfile.TemporaryDirectory(prefix="bench_dolly_") as tmp:
        detector, pose_model = args.detector, args.model
        if args.untrained:
            from ros2_pose.demo.fixed_output_models import write_fixed_detector, write_fixed_pose_network
            detector = str(write_fixed_detector(Path(tmp) / "detector", width=16))
            pose_model = str(write_fixed_pose_network(Path(tmp) / "pose", width="half"))
        try:
            rows = benchmark(detector, pose_model, backends, args.iters, args.warmup, bag, args.threads,
                             not args.no_end_to_end)
        except MissingModelError as exc:
            console.print(f"[red]bench dolly: {exc}[/red] (or use --untrained to time the architectures)")
            return 2
    table = Table(title=f"dolly pipeline latency, 640x480, {args.iters} frames"
                        + (" (untrained, fixed-output networks)" if args.untrained else ""))
    for column in ("backend", "stage", "median ms", "p95 ms", "share of frame", "n"):
        table.add_column(column, justify="left" if column in ("backend", "stage") else "right")
    fmt = lambda v, spec=".2f": "-" if v is None else format(v, spec)
    for row in rows:
        if "skipped" in row:
            table.add_row(row["backend"], "skipped", row["skipped"], "", "", "")
            continue
        share = row.get("share")
        n = str(row.get("n", ""))
        if "frames_without_pose" in row:
            n += f" (+{row['frames_without_pose']} no pose)" if row["frames_without_pose"] else ""
        table.add_row(row["backend"], row["stage"], fmt(row.get("median_ms")), fmt(row.get("p95_ms")),
                      "-" if share is None else f"{share * 100:.1f} %", n)
    console.print(table)
    for line in verdicts(rows):
        console.print(line)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
