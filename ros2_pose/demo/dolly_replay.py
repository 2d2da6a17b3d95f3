"""Replay a dolly bag through the real dolly graph in this process and collect what it publishes.

The graph is config/graphs/dolly.yaml planned and started by `ros2_pose.graph` (the same parameter
files, overrides and remappings as `ros2-pose up dolly` / `ros2 launch`), in-process; a `BagPlayer`
and a `ReplayCollector` join its executor, so images, poses and TF never leave the process. The
collector matches /dolly/detections, /dolly/pose and /tf with the bag's images and ground truth by
header stamp. ROS glue (imports rclpy).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from ros2_pose.demo.dolly_report import ReplayFrame
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.graph.plan import plan_graph
from ros2_pose.graph.runner import GraphRunner
from ros2_pose.graph.spec import load_graph
from ros2_pose.nodes.bag_player import BagPlayer
from ros2_pose.resources import model_location
from ros2_pose.ros.image_conversion import from_image_msg
from ros2_pose.ros.message_builders import stamp_to_ns, transform_from_pose_msg
from ros2_pose.ros.qos import reliable_qos, tf_qos

GRAPH = "dolly"
NODE = "dolly_pose"
DEFAULT_DETECTOR = "dolly_detector"
DEFAULT_POSE_MODEL = "dolly_pose_half"
IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
TRUTH_POSE_TOPIC = "/ground_truth/pose"
TRUTH_DETECTIONS_TOPIC = "/ground_truth/detections"
POSE_TOPIC = "/dolly/pose"
DETECTIONS_TOPIC = "/dolly/detections"
DISCOVERY_TIMEOUT_S = 10.0
# After the last image, how long to wait for answers that are still coming.
ANSWER_TIMEOUT_S = 10.0
# A frame is reported once its detections arrived and its pose had this long to follow them (the
# node publishes detections first, then pose and TF, in the same callback).
POSE_GRACE_S = 0.2


class MissingModelError(FileNotFoundError):
    """A model the demo needs is not there (not shipped yet, or a wrong --model/--detector)."""


def ensure_local_ros_environment() -> str:
    """DDS discovery on this machine only, and a ROS_DOMAIN_ID of this process's own unless the user
    chose one; call before rclpy is initialised. Returns the domain id in use."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))  # 0-101 are valid on one host
    return os.environ["ROS_DOMAIN_ID"]


def locate_models(detector: str, pose_model: str) -> tuple[Path, Path]:
    """The model folders by shipped name or path; MissingModelError saying what to do otherwise."""
    located = []
    for role, name, train in (("detector", detector, "ros2-pose train dolly_detector"),
                              ("pose model", pose_model, "ros2-pose train dolly")):
        try:
            folder = model_location(name)
        except FileNotFoundError as exc:
            raise MissingModelError(f"dolly {role} {name!r} not found: {exc}. Shipped models live in "
                                    f"models/<name>/; train one with `{train}` or pass a model folder "
                                    f"with --detector / --model") from None
        if folder.is_dir() and not (folder / "model.onnx").is_file() and not (folder / "model.pt").is_file():
            raise MissingModelError(f"dolly {role} folder {folder} has neither model.onnx nor model.pt")
        located.append(folder)
    return located[0], located[1]


class ReplayCollector(Node):
    """Subscribes to the bag's image / camera_info / ground truth and to the node's outputs; keeps one
    ReplayFrame per image stamp. Callbacks may run on several executor threads: state is locked."""

    def __init__(self, dolly_frame: str = "dolly", keep_images: bool = True, **node_kwargs):
        super().__init__("dolly_demo_collector", **node_kwargs)
        self.dolly_frame = dolly_frame
        self.keep_images = keep_images
        self.lock = threading.Lock()
        self.frames: dict[int, ReplayFrame] = {}
        self.received_at: dict[int, float] = {}   # image stamp -> monotonic receipt time
        self.answered_at: dict[int, float] = {}
        self.camera: CameraModel | None = None
        self.truth_detections: dict[int, tuple[bool, np.ndarray | None]] = {}
        self.truths: dict[int, object] = {}
        qos = reliable_qos(100)
        self.create_subscription(Image, IMAGE_TOPIC, self._on_image, qos)
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, qos)
        self.create_subscription(PoseStamped, TRUTH_POSE_TOPIC, self._on_truth, qos)
        self.create_subscription(PoseStamped, POSE_TOPIC, self._on_pose, qos)
        self.create_subscription(TFMessage, "/tf", self._on_tf, tf_qos())
        from ros2_pose_msgs.msg import Detection2DArray
        self.create_subscription(Detection2DArray, DETECTIONS_TOPIC, self._on_detections, qos)
        self.create_subscription(Detection2DArray, TRUTH_DETECTIONS_TOPIC, self._on_truth_detections, qos)

    def _frame(self, stamp_ns: int) -> ReplayFrame:
        frame = self.frames.get(stamp_ns)
        if frame is None:
            frame = self.frames[stamp_ns] = ReplayFrame(stamp_ns)
        return frame

    def _on_image(self, msg: Image) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        now = time.monotonic()
        image = np.array(from_image_msg(msg, "rgb8")) if self.keep_images else None  # a copy: msg is reused
        with self.lock:
            self.received_at[stamp] = now
            frame = self._frame(stamp)
            frame.image, frame.camera = image, self.camera
            if stamp in self.truths:
                frame.truth = self.truths.pop(stamp)
            if stamp in self.truth_detections:
                frame.visible, frame.truth_box = self.truth_detections.pop(stamp)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            camera = CameraModel.from_camera_info(msg)
        except ValueError as exc:
            self.get_logger().warning(f"camera_info not usable for the overlay: {exc}")
            return
        with self.lock:
            self.camera = camera
            frame = self.frames.get(stamp_to_ns(msg.header.stamp))
            if frame is not None and frame.camera is None:
                frame.camera = camera

    def _on_truth(self, msg: PoseStamped) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        pose = transform_from_pose_msg(msg)
        with self.lock:
            if stamp in self.frames:
                self.frames[stamp].truth = pose
            else:
                self.truths[stamp] = pose

    def _on_truth_detections(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        dolly = [d for d in msg.detections if d.class_id == "dolly"]
        box = (np.array([dolly[0].box.x_min, dolly[0].box.y_min, dolly[0].box.x_max, dolly[0].box.y_max])
               if dolly else None)
        with self.lock:
            if stamp in self.frames:
                self.frames[stamp].visible, self.frames[stamp].truth_box = bool(dolly), box
            else:
                self.truth_detections[stamp] = (bool(dolly), box)

    def _on_detections(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        now = time.monotonic()
        with self.lock:
            frame = self._frame(stamp)
            frame.processed = True
            if msg.detections:
                d = msg.detections[0]
                frame.box = np.array([d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max])
                frame.score = float(d.score)
            if stamp in self.received_at:
                frame.latency_ms = (now - self.received_at[stamp]) * 1e3
            self.answered_at[stamp] = now

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = transform_from_pose_msg(msg)
        with self.lock:
            self._frame(stamp_to_ns(msg.header.stamp)).estimate = pose

    def _on_tf(self, msg: TFMessage) -> None:
        for transform in msg.transforms:
            if transform.child_frame_id != self.dolly_frame:
                continue
            pose = transform_from_pose_msg(transform)
            with self.lock:
                self._frame(stamp_to_ns(transform.header.stamp)).tf_estimate = pose

    # -- queries from the replaying thread ------------------------------------------------------
    def images_seen(self) -> int:
        with self.lock:
            return len(self.received_at)

    def unanswered(self) -> int:
        with self.lock:
            return sum(1 for stamp in self.received_at if stamp not in self.answered_at)

    def settled_before(self, after_s: float = POSE_GRACE_S) -> int | None:
        """The newest stamp such that every image up to it is settled: the node handles images in
        order, so once an answer has been in for `after_s` (its pose has had time to follow), that
        frame and every earlier one (answered, or dropped by the node) are final. None: none yet."""
        now = time.monotonic()
        with self.lock:
            done = [s for s, t in self.answered_at.items() if now - t >= after_s]
        return max(done) if done else None

    def ordered_frames(self) -> list[ReplayFrame]:
        with self.lock:
            return [self.frames[s] for s in sorted(self.received_at)]


@dataclass
class ReplayResult:
    frames: list[ReplayFrame]
    node_diagnostics: dict[str, str] = field(default_factory=dict)
    dolly_frame: str = "dolly"


def _bag_topics(bag: Path) -> set[str]:
    from ros2_pose.data.bags import bag_info

    return set(bag_info(bag).topics)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def replay_dolly_bag(bag: str | Path, detector: str = DEFAULT_DETECTOR, pose_model: str = DEFAULT_POSE_MODEL,
                     backend: str = "onnxruntime", rate: float = 1.0, node_parameters: dict | None = None,
                     keep_images: bool = True, on_frame: Callable[[int, ReplayFrame], None] | None = None,
                     log: Callable[[str], None] = print, lockstep: bool = True) -> ReplayResult:
    """Play `bag` (image, camera_info and, when present, ground truth) through the dolly graph;
    `on_frame(index, frame)` is called in stamp order as answers come.

    lockstep=True (the demo's default) publishes the next message only once the node has handled
    the last image, so every frame is processed however slow the machine is and the result does not
    depend on the CPU's load; lockstep=False plays at `rate` x the recorded timing, as a camera would.

    Raises MissingModelError for missing models, FileNotFoundError / BagError for a bad bag,
    GraphStartError when the node cannot start (e.g. a backend that is not installed)."""
    bag = Path(bag)
    if not bag.exists():
        raise FileNotFoundError(f"bag {bag} does not exist")
    detector_folder, pose_folder = locate_models(detector, pose_model)
    topics = _bag_topics(bag)
    missing = {IMAGE_TOPIC, CAMERA_INFO_TOPIC} - topics
    if missing:
        raise ValueError(f"bag {bag} lacks {sorted(missing)}; the dolly node needs the image and its camera_info "
                         f"(the bag has {sorted(topics)})")
    ensure_local_ros_environment()
    graph = load_graph(GRAPH)
    overrides = {"detector_model": str(detector_folder), "pose_model": str(pose_folder),
                 # The runner then configures and activates the node itself and fails loudly.
                 "autostart": False, **(node_parameters or {})}
    plan = plan_graph(graph, {"backend": backend}, {NODE: overrides})
    runner = GraphRunner(plan, multi_process=False, log=log)
    collector = player = None
    try:
        runner.start()
        node = next(s.node for s in runner.started if s.planned.name == NODE)
        dolly_frame = node.config.get("dolly_frame", "dolly")
        collector = ReplayCollector(dolly_frame=dolly_frame, keep_images=keep_images, context=runner.context)
        played = sorted(topics & {IMAGE_TOPIC, CAMERA_INFO_TOPIC, TRUTH_POSE_TOPIC, TRUTH_DETECTIONS_TOPIC})
        player = BagPlayer(bags=[str(bag)], rate=rate, topics=played, context=runner.context)
        runner.executor.add_node(collector)
        runner.executor.add_node(player)
        # Start only when the node and the collector listen, or the first frames would go nowhere.
        _wait_for(lambda: player.count_subscribers(IMAGE_TOPIC) >= 2
                  and player.count_subscribers(CAMERA_INFO_TOPIC) >= 2
                  and collector.count_publishers(DETECTIONS_TOPIC) >= 1
                  and collector.count_publishers(POSE_TOPIC) >= 1, DISCOVERY_TIMEOUT_S,
                  "the dolly node and the collector to discover the bag player")
        reported = 0

        def report_complete(final: bool = False) -> None:
            nonlocal reported
            frames = collector.ordered_frames()
            newest = collector.settled_before()
            while reported < len(frames) and (final or (newest is not None and frames[reported].stamp_ns <= newest)):
                if on_frame is not None:
                    on_frame(reported, frames[reported])
                reported += 1

        images_published = 0

        def handled_images() -> int:
            stats = node.stats.snapshot()
            return stats.frames_processed + stats.frames_dropped

        while True:
            wait = player.seconds_until_next()
            if wait is None:
                break
            if wait > 0 and not lockstep:
                time.sleep(min(wait, 0.02))
                report_complete()
                continue
            message = player.step()
            if message is not None and message.topic == IMAGE_TOPIC:
                images_published += 1
                if lockstep:
                    # An image lost in transport is never handled: give up on it after the timeout
                    # (it shows as unanswered) rather than stall the replay.
                    deadline = time.monotonic() + ANSWER_TIMEOUT_S
                    while handled_images() < images_published and time.monotonic() < deadline:
                        time.sleep(0.005)
                    report_complete()

        def settled() -> bool:
            # Every image answered, or the node has handled (processed, dropped or failed) as many
            # images as were published: a dropped frame gets no answer to wait for.
            stats = node.stats.snapshot()
            handled = stats.frames_processed + stats.frames_dropped
            return collector.unanswered() == 0 or (handled >= images_published
                                                   and collector.images_seen() >= images_published)

        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.02)
            report_complete()
        time.sleep(POSE_GRACE_S)
        report_complete(final=True)
        diagnostics = {kv.key: kv.value for kv in node.diagnostic_status().values}
        return ReplayResult(collector.ordered_frames(), diagnostics, dolly_frame)
    finally:
        for extra in (player, collector):
            if extra is not None:
                runner.executor.remove_node(extra)
                extra.destroy_node()
        runner.stop()
