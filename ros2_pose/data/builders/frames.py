"""Matched frames out of bags, in two passes with bounded memory (shared by every task builder).

Pass 1 (`FramePlan.scan`) reads the small messages (camera_info, ground truth, TF, labels) and only
the stamps of the big ones (images, segmentation, depth), synchronises them per sequence and decides
which frames make the dataset, so the builder knows N before it writes anything. Pass 2
(`FramePlan.frames`) reads the bags again and yields each planned frame as soon as its images have
all been seen; nothing else is kept. A bag whose image stamps jump back (a looped recording) is cut
into sequences there, and nothing is ever matched or paired across a cut.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ros2_pose.data.bags import BagError, MissingTopicError, bag_info, iter_messages
from ros2_pose.data.sync import (MissingTransformError, StreamCounts, SyncReport, TfGroundTruth,
                                 pose_msg_to_matrix, split_sequences, synchronise)
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.images import image_msg_to_array

TOPICS = {
    "image": "/camera/image_raw",
    "camera_info": "/camera/camera_info",
    "depth": "/camera/depth/image",
    "segmentation": "/camera/segmentation",
    "pose": "/ground_truth/pose",
    "detections": "/ground_truth/detections",
    "keypoints": "/ground_truth/keypoints",
    "skeletons": "/ground_truth/skeletons",
    "tf": "/tf",
    "tf_static": "/tf_static",
}
HEAVY = ("image", "depth", "segmentation")  # only their stamps are kept in pass 1


class DatasetBuildError(RuntimeError):
    """A dataset cannot be built from these bags; the message says what was missing and the counts."""


@dataclass
class BuildOptions:
    tolerance_ns: int = 5_000_000
    gt_source: str = "tf"                 # "tf" | "topic" | "none"
    object_frame: str = "dolly"           # TF child frame of the tracked object
    gt_target: str = "object"             # "object": T_camera_object; "camera": T_world_optical (TF only)
    world_frame: str = "world"
    camera_frame: str = "camera_link"
    optical_frame: str = "camera_optical_frame"
    max_gap_ns: int = 1_000_000_000       # a larger jump between frames starts a new sequence
    tf_interpolation_gap_ns: int = 100_000_000  # TF samples at most this far apart are interpolated
    progress: Callable[[int, int], None] | None = None   # (frames done, frames planned) during pass 2
    topics: dict[str, str] = field(default_factory=dict)  # stream -> topic, over TOPICS (a robot's names)

    def topic(self, stream: str) -> str:
        return self.topics.get(stream, TOPICS[stream])

    def __post_init__(self):
        unknown = sorted(set(self.topics) - set(TOPICS))
        if unknown:
            raise DatasetBuildError(f"unknown stream(s) {unknown} in the topic map; streams are {sorted(TOPICS)}")
        bad = sorted(t for t in self.topics.values() if not str(t).startswith("/"))
        if bad:
            raise DatasetBuildError(f"topic names must be absolute (start with '/'): {bad}")


@dataclass
class PlannedFrame:
    bag: int
    segment: int
    stamp_ns: int
    stamps: dict[str, int]                # heavy stream -> stamp of the message to use
    light: dict[str, Any]                 # camera_info, detections, ... message objects
    T_camera_object: np.ndarray | None    # 4x4 (T_world_optical when gt_target is 'camera')
    sequence: int = 0
    ordinal: int = 0                      # position in the plan (frames in time order)


@dataclass
class Frame:
    """One synchronised frame, decoded."""

    plan: PlannedFrame
    image: np.ndarray                     # HxWx3 uint8 RGB
    camera: CameraModel
    segmentation: np.ndarray | None = None
    depth: np.ndarray | None = None

    @property
    def K(self) -> np.ndarray:
        return np.asarray(self.camera.K, dtype=np.float64)

    @property
    def stamp_ns(self) -> int:
        return self.plan.stamp_ns


def _stamp_of(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def _rgb(msg) -> np.ndarray:
    array = image_msg_to_array(msg)
    if msg.encoding in ("rgb8", "8UC3"):
        return array
    from ros2_pose.images import convert_color

    if msg.encoding in ("bgr8", "rgba8", "bgra8", "mono8"):
        return convert_color(array, msg.encoding, "rgb8")
    raise DatasetBuildError(f"/camera/image_raw has encoding {msg.encoding!r}; expected rgb8/bgr8/rgba8/bgra8/mono8")


@dataclass
class FramePlan:
    bags: list[Path]
    streams: tuple[str, ...]              # which of TOPICS the task needs (besides image & camera_info)
    options: BuildOptions
    frames: list[PlannedFrame] = field(default_factory=list)
    report: SyncReport | None = None
    bag_bytes: int = 0
    scan_seconds: float = 0.0

    # ------------------------------------------------------------------ pass 1
    @classmethod
    def scan(cls, bags: Sequence[str | Path], streams: Sequence[str], options: BuildOptions,
             optional: Sequence[str] = ()) -> "FramePlan":
        """Read every bag's small messages and plan the frames. `streams` are required (their topic
        must be in every bag); `optional` ones are used where present."""
        t0 = time.perf_counter()
        plan = cls([Path(b) for b in bags], tuple(streams), options)
        if not plan.bags:
            raise DatasetBuildError("no bags given")
        gt = options.gt_source
        if gt not in ("tf", "topic", "none"):
            raise DatasetBuildError(f"gt_source must be 'tf', 'topic' or 'none', got {gt!r}")
        report = SyncReport("image", options.tolerance_ns)
        for bag_index, bag in enumerate(plan.bags):
            info = bag_info(bag)
            plan.bag_bytes += info.size_bytes
            wanted = ["image", "camera_info", *streams]
            if gt == "topic":
                wanted.append("pose")
            elif gt == "tf":
                wanted += ["tf", "tf_static"]
            missing = [options.topic(s) for s in wanted if options.topic(s) not in info.topics]
            if missing:
                raise MissingTopicError(
                    f"bag {bag}: missing topic(s) {missing} needed for this dataset "
                    f"(ground truth from {gt!r}); the bag has {sorted(info.topics)}", missing, sorted(info.topics))
            empty = [options.topic(s) for s in wanted if info.topics[options.topic(s)][1] == 0]
            if empty:
                raise DatasetBuildError(f"bag {bag}: topic(s) {empty} hold no messages")
            used = wanted + [s for s in optional if options.topic(s) in info.topics]
            frames, bag_report = plan._scan_bag(bag_index, bag, used)
            plan.frames += frames
            report = bag_report if not report.streams else report.merge(bag_report)
        plan.report = report
        plan._number_frames()
        plan.scan_seconds = time.perf_counter() - t0
        if not plan.frames:
            raise DatasetBuildError(
                f"no frame could be matched in {len(plan.bags)} bag(s) within "
                f"{options.tolerance_ns / 1e6:g} ms: {report.summary()}")
        return plan

    def _scan_bag(self, bag_index: int, bag: Path, used: list[str]) -> tuple[list[PlannedFrame], SyncReport]:
        opts = self.options
        topic_to_stream = {opts.topic(s): s for s in used}
        # per segment: stream -> list of (stamp, payload)
        segments: list[dict[str, list]] = [{s: [] for s in used if s not in ("tf", "tf_static")}]
        tf_trees: list[TfGroundTruth] = []
        statics: list[Any] = []
        last_image_stamp = None

        def new_tree() -> TfGroundTruth:
            return TfGroundTruth(opts.object_frame, opts.world_frame, opts.camera_frame,
                                 opts.optical_frame, opts.tolerance_ns, opts.tf_interpolation_gap_ns)

        tf_trees.append(new_tree())
        tf_segment, last_tf_stamp = 0, {}
        for message in iter_messages(bag, topics=sorted(topic_to_stream)):
            stream = topic_to_stream[message.topic]
            msg = message.msg
            if stream == "tf_static":
                statics.append(msg)
                continue
            if stream == "tf":
                # TF restarts with its own stamps in a looped recording: a stamp going back starts
                # the next segment's tree (matched to the image segment of the same number)
                for ts in msg.transforms:
                    child, stamp = ts.child_frame_id, _stamp_of(ts)
                    if stamp < last_tf_stamp.get(child, -1):
                        tf_segment += 1
                        last_tf_stamp.clear()
                        while len(tf_trees) <= tf_segment:
                            tf_trees.append(new_tree())
                    last_tf_stamp[child] = stamp
                tf_trees[tf_segment].add(msg)
                continue
            stamp = _stamp_of(msg)
            if stream == "image":
                if last_image_stamp is not None and stamp < last_image_stamp:
                    segments.append({s: [] for s in segments[0]})
                last_image_stamp = stamp
            payload = None if stream in HEAVY else msg
            if stream == "pose":
                payload = pose_msg_to_matrix(msg.pose)
            segments[-1][stream].append((stamp, payload))
        planned: list[PlannedFrame] = []
        report = SyncReport("image", opts.tolerance_ns)
        for segment_index, streams in enumerate(segments):
            if not streams["image"]:
                continue
            for stream in streams.values():
                stream.sort(key=lambda item: item[0])
            matched, seg_report = synchronise(streams, reference="image", tolerance_ns=opts.tolerance_ns)
            while len(tf_trees) <= segment_index:
                tf_trees.append(new_tree())
            tree = tf_trees[segment_index]
            tf_counts = StreamCounts(total=len(matched))
            kept = []
            if opts.gt_source == "tf" and matched:
                for static in statics:
                    tree.add(static, static=True)
                try:
                    tree.check(camera_only=opts.gt_target == "camera")
                except MissingTransformError as exc:
                    raise DatasetBuildError(f"bag {bag}: ground truth from TF impossible: {exc}") from exc
            for frame in matched:
                pose = frame.payloads.get("pose")
                if opts.gt_source == "tf":
                    pose = tree.camera_pose(frame.stamp_ns) if opts.gt_target == "camera" else tree.pose(frame.stamp_ns)
                    if pose is None:
                        continue
                    tf_counts.matched += 1
                heavy = {s: frame.stamps_ns[s] for s in HEAVY if s in frame.stamps_ns}
                light = {s: p for s, p in frame.payloads.items() if s not in HEAVY and s != "pose"}
                kept.append(PlannedFrame(bag_index, segment_index, frame.stamp_ns, heavy, light, pose))
            if opts.gt_source == "tf":
                seg_report.streams["tf_ground_truth"] = tf_counts
                for counts in seg_report.streams.values():
                    if counts is not tf_counts:
                        counts.matched = len(kept)
            planned += kept
            report = seg_report if not report.streams else report.merge(seg_report)
        return planned, report

    def _number_frames(self) -> None:
        """Sequence ids (bag, loop segment, time gaps) and ordinals over the whole plan."""
        sequence_base = 0
        keys = sorted({(f.bag, f.segment) for f in self.frames})
        for key in keys:
            members = [f for f in self.frames if (f.bag, f.segment) == key]
            ids = split_sequences([f.stamp_ns for f in members], self.options.max_gap_ns)
            for f, s in zip(members, ids):
                f.sequence = sequence_base + int(s)
            sequence_base += int(ids.max()) + 1 if len(ids) else 0
        self.frames.sort(key=lambda f: (f.bag, f.segment, f.stamp_ns))
        for i, f in enumerate(self.frames):
            f.ordinal = i

    # ------------------------------------------------------------------ pass 2
    def decoded_frames(self) -> Iterator[Frame]:
        """Planned frames with their images decoded, as their last image arrives in the bag."""
        # every heavy stream any frame uses: optional streams (a dolly bag's segmentation) may be in
        # some bags only
        in_use = {stream for f in self.frames for stream in f.stamps}
        heavy_used = [s for s in HEAVY if s in in_use]
        done = 0
        for bag_index, bag in enumerate(self.bags):
            bag_frames = [f for f in self.frames if f.bag == bag_index]
            if not bag_frames:
                continue
            wanted: dict[tuple[int, str, int], PlannedFrame] = {}
            for f in bag_frames:
                for stream, stamp in f.stamps.items():
                    wanted[(f.segment, stream, stamp)] = f
                wanted[(f.segment, "image", f.stamp_ns)] = f
            pending: dict[int, dict[str, Any]] = {}
            topic_to_stream = {self.options.topic(s): s for s in ("image", *heavy_used)}
            segment, last_image_stamp = 0, None
            for message in iter_messages(bag, topics=sorted(topic_to_stream)):
                stream = topic_to_stream[message.topic]
                msg = message.msg
                stamp = _stamp_of(msg)
                if stream == "image":
                    if last_image_stamp is not None and stamp < last_image_stamp:
                        segment += 1
                    last_image_stamp = stamp
                plan = wanted.pop((segment, stream, stamp), None)
                if plan is None:
                    continue
                parts = pending.setdefault(plan.ordinal, {})
                parts[stream] = msg
                if len(parts) == len(plan.stamps):
                    del pending[plan.ordinal]
                    done += 1
                    if self.options.progress:
                        self.options.progress(done, len(self.frames))
                    yield self._decode(plan, parts)
            if pending:
                raise DatasetBuildError(
                    f"bag {bag}: {len(pending)} planned frame(s) never got all their images in the second "
                    "read (the bag changed while building?)")

    @staticmethod
    def _decode(plan: PlannedFrame, parts: dict[str, Any]) -> Frame:
        camera = CameraModel.from_camera_info(plan.light["camera_info"])
        image = _rgb(parts["image"])
        seg = image_msg_to_array(parts["segmentation"]) if "segmentation" in parts else None
        depth = image_msg_to_array(parts["depth"]) if "depth" in parts else None
        if camera.width and (camera.width, camera.height) != (image.shape[1], image.shape[0]):
            raise DatasetBuildError(
                f"camera_info is {camera.width}x{camera.height} but the image at {plan.stamp_ns} ns is "
                f"{image.shape[1]}x{image.shape[0]}")
        return Frame(plan, image, camera, seg, depth)


# ------------------------------------------------------------------ shared by the task builders

@dataclass
class SplitOptions:
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    guard: int = 1                        # frames dropped at each border between splits
    block_size: int | None = None


@dataclass
class BuildResult:
    folder: Path
    manifest: dict
    plan: FramePlan
    seconds: float

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def megabytes_per_second(self) -> float:
        return self.plan.bag_bytes * 2 / 1e6 / max(self.seconds, 1e-9)  # two reads of every bag


def finish_dataset(writer, plan: FramePlan, split: SplitOptions, parameters: dict, groups, sequences,
                   started: float, extra: dict | None = None) -> BuildResult:
    """Write the manifest (sources with sha256, sync report, parameters) and splits; the result."""
    from ros2_pose.data.dataset import bag_sources

    if writer.written == 0:
        raise DatasetBuildError(f"no sample was produced from {len(plan.frames)} matched frame(s)")
    options = {k: v for k, v in vars(plan.options).items() if k != "progress"}
    manifest = writer.finish(
        sources=bag_sources(plan.bags), sync=plan.report.to_dict() if plan.report else {},
        parameters={**options, **parameters, "split": vars(split)}, split_groups=np.asarray(groups),
        sequences=np.asarray(sequences), fractions=split.fractions, seed=split.seed, guard=split.guard,
        block_size=split.block_size, extra=extra)
    return BuildResult(writer.folder, manifest, plan, time.perf_counter() - started)
