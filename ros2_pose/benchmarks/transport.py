"""Image transport: conversion cost and publish->receive latency (one process, two processes, SHM).

Rows (640x480 rgb8 unless --width/--height say otherwise):
- conversion: numpy -> Image with `to_image_msg` (bytes), the `msg.data = ndarray` assignment it
  avoids, and Image -> numpy with `from_image_msg` (zero-copy view);
- latency, header stamp -> receipt, median and p95, for reliable and sensor-data QoS:
  two nodes in one process on one MultiThreadedExecutor; image_source and image_sink as two
  processes on Fast DDS' default transports (UDP on loopback with ROS_AUTOMATIC_DISCOVERY_RANGE=
  LOCALHOST); and the same two processes with a generated Fast DDS profile adding the shared-memory
  transport (FASTDDS_DEFAULT_PROFILES_FILE).
Every run uses its own ROS_DOMAIN_ID and keeps discovery on localhost.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_pose.benchmarks._timing import time_calls
from ros2_pose.nodes.image_sink import latency_summary

QOS_NAMES = ("reliable", "sensor")
SHM_SEGMENT_BYTES = 16 * 1024 * 1024  # holds several 640x480 rgb8 frames (Fast DDS' default is 512 KiB)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=60, help="frames per latency run (default 60)")
    parser.add_argument("--rate-hz", type=float, default=50.0, help="publish rate of the latency runs")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of each conversion timing")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--no-processes", action="store_true", help="skip the two-process runs")
    parser.add_argument("--no-shm", action="store_true", help="skip the shared-memory runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")


@dataclass
class Row:
    section: str
    case: str
    median_ms: float | None
    p95_ms: float | None
    samples: str  # "received/sent" for latency, "n" for conversion


def _own_domain_id() -> int:
    # 0-101 are valid for Fast DDS on one host; the pid keeps concurrent benchmarks apart.
    return 1 + os.getpid() % 100


def conversion_rows(width: int, height: int, repeats: int) -> list[Row]:
    from sensor_msgs.msg import Image

    from ros2_pose.ros.image_conversion import from_image_msg, to_image_msg

    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = to_image_msg(frame, "rgb8")
    decoded = from_image_msg(msg)
    if not np.array_equal(decoded, frame):
        raise RuntimeError("Image round trip changed the pixels")

    def assign_ndarray():
        raw = Image()
        raw.data = frame.reshape(-1)  # what to_image_msg avoids: rclpy copies element by element

    rows = []
    for case, fn, n in (("numpy -> Image (to_image_msg, bytes)", lambda: to_image_msg(frame, "rgb8"), repeats),
                        ("numpy -> Image (msg.data = ndarray)", assign_ndarray, max(2, min(5, repeats))),
                        ("Image -> numpy (from_image_msg, zero-copy)", lambda: from_image_msg(msg), repeats)):
        s = latency_summary(time_calls(fn, n, warmup=0))
        rows.append(Row("conversion", case, s["median_ms"], s["p95_ms"], str(n)))
    return rows


def in_process_row(qos: str, frames: int, rate_hz: float, domain_id: int, width: int, height: int) -> Row:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor

    from ros2_pose.nodes.image_sink import ImageSink
    from ros2_pose.nodes.image_source import ImageSource

    context = Context()
    rclpy.init(args=[], context=context, domain_id=domain_id)
    common = ["--ros-args", "-p", f"qos:={qos}", "-r", "image:=/ros2_pose_bench/image"]
    source = ImageSource(node_name="bench_source", context=context, cli_args=common + [
        "-p", f"rate_hz:={rate_hz}", "-p", f"count:={frames}", "-p", "wait_for_subscribers:=1",
        "-p", f"width:={width}", "-p", f"height:={height}"])
    sink = ImageSink(node_name="bench_sink", context=context, cli_args=common + ["-p", "report_every_s:=0.0"])
    executor = MultiThreadedExecutor(context=context)
    try:
        sink.trigger_configure()
        sink.trigger_activate()
        executor.add_node(source)
        executor.add_node(sink)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        deadline = time.monotonic() + frames / rate_hz + 10.0
        while time.monotonic() < deadline and (source.published < frames or sink.received < source.published):
            time.sleep(0.05)
        time.sleep(0.2)  # stragglers
        latencies, sent = list(sink.latencies_ms), source.published
    finally:
        executor.shutdown(timeout_sec=5.0)
        sink.destroy_node()
        source.destroy_node()
        rclpy.try_shutdown(context=context)
    s = latency_summary(latencies)
    return Row("latency", f"one process, one executor, {qos} QoS", s["median_ms"], s["p95_ms"], f"{len(latencies)}/{sent}")


def shm_profile_xml() -> str:
    """A Fast DDS (3.x) default participant profile: shared memory for data between processes of
    this host, plus UDP restricted to 127.0.0.1 (discovery, fallback); nothing leaves the machine."""
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>ros2_pose_shm</transport_id>
        <type>SHM</type>
        <segment_size>{SHM_SEGMENT_BYTES}</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>ros2_pose_udp_loopback</transport_id>
        <type>UDPv4</type>
        <interfaces><allowlist><interface name="127.0.0.1" netmask_filter="AUTO"/></allowlist></interfaces>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="ros2_pose_shm_participant" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>ros2_pose_shm</transport_id>
          <transport_id>ros2_pose_udp_loopback</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def two_process_row(qos: str, frames: int, rate_hz: float, domain_id: int, width: int, height: int,
                    workdir: Path, profile: Path | None) -> Row:
    from ros2_pose.graph.runner import node_command

    env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    label = "shared memory" if profile else "default (UDP loopback)"
    report = workdir / f"report_{qos}_{'shm' if profile else 'udp'}.json"
    common = ["--ros-args", "-p", f"qos:={qos}", "-r", "image:=/ros2_pose_bench/image"]
    sink = subprocess.Popen(node_command("image_sink") + common + [
        "-p", "autostart:=true", "-p", f"stop_after:={frames}", "-p", f"report_path:={report}",
        "-p", "report_every_s:=0.0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    source = subprocess.Popen(node_command("image_source") + common + [
        "-p", f"rate_hz:={rate_hz}", "-p", f"count:={frames}", "-p", "wait_for_subscribers:=1",
        "-p", f"width:={width}", "-p", f"height:={height}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    source_done = threading.Event()

    def watch_source_log():  # the node logs "published N frames; done" when its count is sent
        for line in source.stderr:
            if "frames; done" in line:
                source_done.set()

    threading.Thread(target=watch_source_log, daemon=True).start()
    try:
        # Start-up (imports, discovery) takes seconds on a busy machine; then frames/rate_hz.
        deadline = time.monotonic() + 20.0 + frames / rate_hz
        while time.monotonic() < deadline and not report.exists() and sink.poll() is None:
            if source_done.wait(0.05):
                time.sleep(0.3)  # frames still in flight; a lost (best-effort) frame never arrives
                break
    finally:
        _stop(source)
        _stop(sink)  # writes the report of what arrived, when it did not reach `frames`
    if not report.exists():
        return Row("latency", f"two processes, {label}, {qos} QoS", None, None, f"0/{frames}")
    data = json.loads(report.read_text())
    return Row("latency", f"two processes, {label}, {qos} QoS", data["median_ms"], data["p95_ms"],
               f"{data['count']}/{frames}")


def run_benchmark(args: argparse.Namespace) -> list[Row]:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain_id = _own_domain_id()
    rows = conversion_rows(args.width, args.height, args.repeats)
    size = dict(frames=args.frames, rate_hz=args.rate_hz, domain_id=domain_id, width=args.width, height=args.height)
    for qos in QOS_NAMES:
        rows.append(in_process_row(qos, **size))
    if not args.no_processes:
        with tempfile.TemporaryDirectory(prefix="ros2_pose_bench_transport_") as tmp:
            workdir = Path(tmp)
            profile = workdir / "fastdds_shm_profile.xml"
            profile.write_text(shm_profile_xml())
            for use_profile in (False, True) if not args.no_shm else (False,):
                for qos in QOS_NAMES:
                    rows.append(two_process_row(qos, **size, workdir=workdir,
                                                profile=profile if use_profile else None))
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    started = time.perf_counter()
    rows = run_benchmark(args)
    table = Table(title=f"ros2-pose bench transport: {args.width}x{args.height} rgb8, "
                        f"{args.frames} frames at {args.rate_hz:g} Hz per latency run")
    for column, justify in (("what", "left"), ("case", "left"), ("median ms", "right"),
                            ("p95 ms", "right"), ("samples", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(row.section, row.case, _ms(row.median_ms), _ms(row.p95_ms), row.samples)
    console = Console()
    console.print(table)
    console.print(f"took {time.perf_counter() - started:.1f} s; latency = receipt time - header stamp "
                  "(stamped right before publish)")
    if args.json is not None:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    missing = [row.case for row in rows if row.median_ms is None]
    if missing:
        console.print(f"[red]no frames arrived in: {', '.join(missing)}[/red]")
        return 1
    return 0
