"""Soak a node graph: replay a sample bag looped at a fixed image rate for a long time, count drops, watch RSS.

`ros2-pose bench soak dolly --duration 600 --rate 30` starts config/graphs/dolly.yaml as
`ros2-pose up dolly --multi-process` does (one process per node, so each node's memory is its own
process's), replays the dolly sample bag in a loop into it with this process's `BagPlayer` so that
images go out at --rate per second, and counts images published against the /dolly/detections
(one per processed frame) and /dolly/pose messages that come back. Every --sample-every seconds it
reads each node process's VmRSS from /proc/<pid>/status; the report gives RSS at the end of the
warm-up, at the end, the growth between them and the least-squares slope (target: < 20 MB growth
over 10 minutes). The node's own /diagnostics counters (received, processed, dropped, errors) say
where frames were lost: in transport (published but never received by the node) or in the node.

Images cross processes; by default through a generated Fast DDS shared-memory profile (as
`bench transport` measured: UDP loopback with best-effort QoS loses large frames), `--transport udp`
for the default transports. Discovery stays on this machine and the run has a ROS_DOMAIN_ID of its own.
Fast DDS reads the profile when a process creates its first participant: call `soak()` from a process
that has not used rclpy yet (the CLI does), or this side of the images keeps the default transports.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SOAK_GRAPHS = {
    # graph -> (node to watch, sample bag, image topic, the node's per-frame output, pose output)
    "dolly": ("dolly_pose", "dolly", "/camera/image_raw", "/dolly/detections", "/dolly/pose"),
}
RSS_GROWTH_TARGET_MB = 20.0
START_TIMEOUT_S = 120.0   # a node process imports torch and loads its models before it subscribes
DRAIN_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", choices=sorted(SOAK_GRAPHS), help="graph to soak (config/graphs/<graph>.yaml)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of replay (default 600)")
    parser.add_argument("--rate", type=float, default=30.0, help="images per second sent (default 30)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds before the RSS baseline is taken (default 30; capped at a quarter of --duration)")
    parser.add_argument("--detector", default=None, help="dolly: detector model (default: the graph's parameter)")
    parser.add_argument("--model", default=None, help="dolly: pose model (default: the graph's parameter)")
    parser.add_argument("--backend", default=None, help="inference backend (default: the graph's default)")
    parser.add_argument("--transport", choices=("shm", "udp"), default="shm",
                        help="shm: Fast DDS shared-memory profile (default); udp: default transports")
    parser.add_argument("--json", type=Path, default=None, help="also write the report to this JSON file")


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (VmRSS of /proc/<pid>/status); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class SoakReport:
    graph: str
    duration_s: float
    rate_hz: float
    transport: str
    images_published: int = 0
    outputs_received: int = 0          # /dolly/detections: one per frame the node processed
    poses_received: int = 0
    node_counters: dict[str, str] = field(default_factory=dict)   # the node's last /diagnostics values
    rss_samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # node -> (t, MB)
    baseline_at_s: float = 0.0

    @property
    def dropped(self) -> int:
        return max(0, self.images_published - self.outputs_received)

    def rss_summary(self) -> dict[str, dict[str, float]]:
        """Per node: RSS at the baseline (first sample after the warm-up), at the end, growth, slope."""
        out = {}
        for name, samples in self.rss_samples.items():
            after = [(t, mb) for t, mb in samples if t >= self.baseline_at_s] or samples
            if not after:
                continue
            t = np.array([s[0] for s in after])
            mb = np.array([s[1] for s in after])
            slope = float(np.polyfit(t, mb, 1)[0] * 60.0) if len(after) >= 3 and np.ptp(t) > 0 else float("nan")
            out[name] = {"baseline_mb": float(mb[0]), "end_mb": float(mb[-1]), "growth_mb": float(mb[-1] - mb[0]),
                         "slope_mb_per_min": slope, "samples": len(after)}
        return out


def _image_rate_of(bag: Path, topic: str) -> float:
    from ros2_pose.data.bags import bag_info

    info = bag_info(bag)
    count = info.topics[topic][1]
    seconds = info.duration_ns / 1e9 if getattr(info, "duration_ns", None) else None
    if not seconds:
        raise ValueError(f"bag {bag} has no duration to derive its image rate from")
    return (count - 1) / seconds if count > 1 else 1.0


class OutputCounter:
    """Counts the watched node's outputs and keeps its last diagnostics values (subscriptions on a
    node added to the graph runner's executor; callbacks may run on several threads)."""

    def __init__(self, context, node_name: str, output_topic: str, pose_topic: str):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from rclpy.node import Node
        from ros2_pose_msgs.msg import Detection2DArray

        from ros2_pose.ros.qos import reliable_qos

        self.node = Node("soak_counter", context=context)
        self.lock = threading.Lock()
        self.outputs = self.poses = 0
        self.counters: dict[str, str] = {}
        self.node_name = node_name
        self.node.create_subscription(Detection2DArray, output_topic, self._on_output, reliable_qos(100))
        self.node.create_subscription(PoseStamped, pose_topic, self._on_pose, reliable_qos(100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable_qos(100))

    def _on_output(self, _msg) -> None:
        with self.lock:
            self.outputs += 1

    def _on_pose(self, _msg) -> None:
        with self.lock:
            self.poses += 1

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.node_name}:"):
                with self.lock:
                    self.counters = {kv.key: kv.value for kv in status.values}


def soak(graph: str, duration: float, rate: float, sample_every: float = 5.0, warmup: float = 30.0,
         node_parameters: dict | None = None, backend: str | None = None, transport: str = "shm",
         log=print) -> SoakReport:
    """Run the soak (see the module docstring) and return its report."""
    from ros2_pose.demo.dolly_replay import ensure_local_ros_environment

    if graph not in SOAK_GRAPHS:
        raise ValueError(f"no soak set-up for graph {graph!r}; have {sorted(SOAK_GRAPHS)}")
    if not (duration > 0 and rate > 0 and sample_every > 0):
        raise ValueError("duration, rate and sample_every must be > 0")
    watched, sample, image_topic, output_topic, pose_topic = SOAK_GRAPHS[graph]
    ensure_local_ros_environment()
    with tempfile.TemporaryDirectory(prefix="ros2_pose_soak_") as tmp:
        if transport == "shm":
            from ros2_pose.benchmarks.transport import shm_profile_xml

            profile = Path(tmp) / "fastdds_shm.xml"
            profile.write_text(shm_profile_xml())
            previous = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)  # this process and the node processes
        try:
            return _soak(graph, watched, sample, image_topic, output_topic, pose_topic, duration, rate,
                         sample_every, min(warmup, duration / 4), node_parameters or {}, backend, transport, log)
        finally:
            if transport == "shm":
                if previous is None:
                    os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
                else:
                    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = previous


def _soak(graph, watched, sample, image_topic, output_topic, pose_topic, duration, rate, sample_every, warmup,
          node_parameters, backend, transport, log) -> SoakReport:
    from ros2_pose.graph.plan import plan_graph
    from ros2_pose.graph.runner import GraphRunner
    from ros2_pose.graph.spec import load_graph
    from ros2_pose.nodes.bag_player import BagPlayer
    from ros2_pose.samples import sample_bag

    bag = sample_bag(sample)
    speed = rate / _image_rate_of(bag, image_topic)
    plan = plan_graph(load_graph(graph), {"backend": backend} if backend else {},
                      {watched: node_parameters} if node_parameters else {})
    runner = GraphRunner(plan, multi_process=True, log=log)
    report = SoakReport(graph, duration, rate, transport, baseline_at_s=warmup)
    player = counter = None
    try:
        runner.start()
        pids = {s.planned.name: s.process.pid for s in runner.started}
        counter = OutputCounter(runner.context, watched, output_topic, pose_topic)
        topics = [image_topic, "/camera/camera_info"]
        player = BagPlayer(bags=[str(bag)], rate=speed, loop=True, topics=topics, context=runner.context)
        runner.executor.add_node(counter.node)
        runner.executor.add_node(player)
        deadline = time.monotonic() + START_TIMEOUT_S
        # The node subscribes to images only once active (models loaded).
        while player.count_subscribers(image_topic) < 1 or counter.node.count_publishers(output_topic) < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{watched} did not subscribe to {image_topic} within {START_TIMEOUT_S:.0f} s")
            if any(s.process.poll() is not None for s in runner.started):
                raise RuntimeError(f"a node of graph {graph} exited during start-up (see its log above)")
            time.sleep(0.1)
        log(f"soak {graph}: {duration:.0f} s at {rate:g} images/s ({speed:.2f}x the bag), transport {transport}, "
            f"nodes {pids}")
        report.rss_samples = {name: [] for name in pids}
        start = time.monotonic()
        next_sample = start
        while True:
            now = time.monotonic()
            if now >= next_sample:
                for name, pid in pids.items():
                    mb = rss_mb(pid)
                    if mb is not None:
                        report.rss_samples[name].append((now - start, mb))
                next_sample += sample_every
            if now - start >= duration:
                break
            wait = player.seconds_until_next()
            if wait is None:
                raise RuntimeError("the looping bag player stopped")
            if wait > 0:
                time.sleep(min(wait, 0.01, max(0.0, next_sample - now)))
                continue
            message = player.step()
            report.images_published += message is not None and message.topic == image_topic
            if any(s.process.poll() is not None for s in runner.started):
                raise RuntimeError(f"a node of graph {graph} died during the soak")
        time.sleep(DRAIN_S)  # answers still in flight
        with counter.lock:
            report.outputs_received, report.poses_received = counter.outputs, counter.poses
            report.node_counters = dict(counter.counters)
        return report
    finally:
        for extra in (player, counter.node if counter is not None else None):
            if extra is not None:
                runner.executor.remove_node(extra)
                extra.destroy_node()
        runner.stop()


def print_report(report: SoakReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = Table(title=f"soak {report.graph}: {report.duration_s:.0f} s at {report.rate_hz:g} images/s "
                         f"({report.transport} transport)")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    sent = max(report.images_published, 1)
    counts.add_row("images published", str(report.images_published))
    counts.add_row("frames answered (/dolly/detections)", f"{report.outputs_received} ({report.outputs_received / sent:.1%})")
    counts.add_row("poses received", str(report.poses_received))
    counts.add_row("images without an answer (dropped)", f"{report.dropped} ({report.dropped / sent:.1%})")
    for key in ("frames_received", "frames_processed", "frames_dropped", "errors", "latency_median_ms",
                "latency_p95_ms", "input_rate_hz"):
        if key in report.node_counters:
            counts.add_row(f"node diagnostics: {key}", report.node_counters[key])
    console.print(counts)
    memory = Table(title=f"RSS (VmRSS), baseline after {report.baseline_at_s:.0f} s warm-up; "
                         f"target growth < {RSS_GROWTH_TARGET_MB:g} MB over 10 min")
    for column in ("node", "baseline MB", "end MB", "growth MB", "slope MB/min", "samples", "verdict"):
        memory.add_column(column, justify="left" if column in ("node", "verdict") else "right")
    for name, s in report.rss_summary().items():
        # The target is growth over 10 minutes; a shorter run's slope extrapolated to 10 min is only a hint.
        if report.duration_s >= 600:
            verdict = "met" if s["growth_mb"] < RSS_GROWTH_TARGET_MB else "MISSED"
        else:
            verdict = f"short run ({s['slope_mb_per_min'] * 10:+.0f} MB/10 min extrapolated)"
        memory.add_row(name, f"{s['baseline_mb']:.1f}", f"{s['end_mb']:.1f}", f"{s['growth_mb']:+.1f}",
                       f"{s['slope_mb_per_min']:+.2f}", str(s["samples"]), verdict)
    console.print(memory)


def run(args) -> int:
    params = {}
    if args.detector:
        params["detector_model"] = args.detector
    if args.model:
        params["pose_model"] = args.model
    if args.graph == "dolly":
        from ros2_pose.demo.dolly_replay import MissingModelError, locate_models

        try:
            locate_models(args.detector or "dolly_detector", args.model or "dolly_pose_half")
        except MissingModelError as exc:
            print(f"bench soak: {exc}")
            return 2
    report = soak(args.graph, args.duration, args.rate, args.sample_every, args.warmup, params, args.backend,
                  args.transport)
    print_report(report)
    if args.json:
        data = asdict(report)
        data["rss_summary"] = report.rss_summary()
        data["dropped"] = report.dropped
        args.json.write_text(json.dumps(data, indent=2))
    return 0
