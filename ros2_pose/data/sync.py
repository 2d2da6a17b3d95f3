"""Synchronise streams of stamped messages (image, camera_info, ground truth) by header stamp.

`synchronise` pairs every reference message (the image) with the nearest message of each other
stream within a tolerance, using every message at most once. Ground truth comes either from the
`/ground_truth/pose` topic (one more stream) or from TF, the way a motion-capture system publishes
it: `world -> camera_link` and `world -> <object>` on /tf, `camera_link -> camera_optical_frame` on
/tf_static; `TfGroundTruth` composes T_camera_object = inv(T_world_optical) * T_world_object at the
image stamp, interpolating between samples that bracket it within the tolerance. ROS-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

Stamped = tuple[int, Any]


class SyncError(ValueError):
    """Streams that cannot be synchronised (unsorted stamps, unknown reference stream...)."""


@dataclass
class StreamCounts:
    total: int = 0
    matched: int = 0

    @property
    def unmatched(self) -> int:
        return self.total - self.matched


@dataclass
class SyncReport:
    """What synchronisation kept and dropped: per stream message counts and the worst offset."""

    reference: str
    tolerance_ns: int
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    worst_offset_ns: int = 0
    worst_offset_stream: str | None = None

    @property
    def matched(self) -> int:
        return self.streams[self.reference].matched if self.reference in self.streams else 0

    def merge(self, other: "SyncReport") -> "SyncReport":
        """The report of two synchronisations together (e.g. of two bags)."""
        merged = SyncReport(self.reference, self.tolerance_ns)
        for report in (self, other):
            for name, counts in report.streams.items():
                total = merged.streams.setdefault(name, StreamCounts())
                total.total += counts.total
                total.matched += counts.matched
        worst = max((self, other), key=lambda r: abs(r.worst_offset_ns))
        merged.worst_offset_ns, merged.worst_offset_stream = worst.worst_offset_ns, worst.worst_offset_stream
        return merged

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "tolerance_ns": int(self.tolerance_ns),
            "matched": int(self.matched),
            "streams": {n: {"total": c.total, "matched": c.matched, "unmatched": c.unmatched}
                        for n, c in self.streams.items()},
            "worst_offset_ns": int(self.worst_offset_ns),
            "worst_offset_stream": self.worst_offset_stream,
        }

    def summary(self) -> str:
        parts = [f"{n}: {c.matched}/{c.total} matched ({c.unmatched} unmatched)" for n, c in self.streams.items()]
        return (f"{self.matched} frames matched within {self.tolerance_ns / 1e6:g} ms; " + "; ".join(parts)
                + f"; worst offset {self.worst_offset_ns / 1e6:.3f} ms"
                + (f" ({self.worst_offset_stream})" if self.worst_offset_stream else ""))


@dataclass
class MatchedFrame:
    """One reference message with its partner in every other stream."""

    stamp_ns: int                    # the reference message's stamp
    payloads: dict[str, Any]         # stream name -> payload
    stamps_ns: dict[str, int]        # stream name -> that message's own stamp


def _stamps(name: str, stream: Sequence[Stamped]) -> np.ndarray:
    stamps = np.fromiter((int(s) for s, _ in stream), dtype=np.int64, count=len(stream))
    if stamps.size > 1 and np.any(np.diff(stamps) < 0):
        raise SyncError(f"stream {name!r} is not sorted by stamp (sort it, or split the sequence at time jumps)")
    return stamps


def _nearest_unique(ref: np.ndarray, other: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """For each reference stamp, the index into `other` of its partner, or -1.

    Candidate pairs within the tolerance are taken in order of increasing offset, each message on
    either side used at most once (greedy assignment: with sorted streams and a tolerance below half
    the frame interval this is the nearest neighbour; with larger tolerances it never double-books)."""
    partner = np.full(ref.size, -1, dtype=np.int64)
    if ref.size == 0 or other.size == 0:
        return partner
    lo = np.searchsorted(other, ref - tolerance_ns, side="left")
    hi = np.searchsorted(other, ref + tolerance_ns, side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return partner
    ref_idx = np.repeat(np.arange(ref.size), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    other_idx = starts + np.arange(counts.sum())
    offsets = np.abs(other[other_idx] - ref[ref_idx])
    order = np.lexsort((other_idx, offsets))
    other_used = np.zeros(other.size, dtype=bool)
    for k in order:
        r, o = ref_idx[k], other_idx[k]
        if partner[r] < 0 and not other_used[o]:
            partner[r] = o
            other_used[o] = True
    return partner


def synchronise(streams: dict[str, Sequence[Stamped]], reference: str = "image",
                tolerance_ns: int = 5_000_000) -> tuple[list[MatchedFrame], SyncReport]:
    """Match each reference message with the nearest message of every other stream.

    streams: name -> list of (stamp_ns, payload) sorted by stamp. A reference message is kept only if
    every stream has a partner within `tolerance_ns` (inclusive); each message is used at most once.
    Returns the matched frames in stamp order and a SyncReport."""
    if reference not in streams:
        raise SyncError(f"reference stream {reference!r} not among the streams {sorted(streams)}")
    if tolerance_ns < 0:
        raise SyncError(f"tolerance must be >= 0 ns, got {tolerance_ns}")
    stamps = {name: _stamps(name, stream) for name, stream in streams.items()}
    ref = stamps[reference]
    partners: dict[str, np.ndarray] = {}
    keep = np.ones(ref.size, dtype=bool)
    for name in streams:
        if name == reference:
            continue
        partners[name] = _nearest_unique(ref, stamps[name], tolerance_ns)
        keep &= partners[name] >= 0
    report = SyncReport(reference, int(tolerance_ns))
    n_matched = int(keep.sum())
    for name, stream in streams.items():
        report.streams[name] = StreamCounts(total=len(stream), matched=n_matched)
    frames: list[MatchedFrame] = []
    for r in np.flatnonzero(keep):
        payloads = {reference: streams[reference][r][1]}
        own = {reference: int(ref[r])}
        for name, partner in partners.items():
            o = int(partner[r])
            payloads[name] = streams[name][o][1]
            own[name] = int(stamps[name][o])
            offset = own[name] - int(ref[r])
            if abs(offset) > abs(report.worst_offset_ns):
                report.worst_offset_ns, report.worst_offset_stream = offset, name
        frames.append(MatchedFrame(int(ref[r]), payloads, own))
    return frames, report


# --------------------------------------------------------------------------------------- TF

def _normalise_frame(name: str) -> str:
    return name.lstrip("/")


@dataclass
class StampedTransforms:
    """A time series of one parent->child transform (stamps sorted, quaternions x, y, z, w)."""

    stamps_ns: np.ndarray
    translations: np.ndarray          # (n, 3)
    quaternions_xyzw: np.ndarray      # (n, 4)

    def at(self, stamp_ns: int, tolerance_ns: int, max_interpolation_gap_ns: int = 0) -> np.ndarray | None:
        """4x4 transform at `stamp_ns`: interpolated (linear + slerp) between the two samples that
        bracket it when they are at most `max_interpolation_gap_ns` apart (a motion-capture stream),
        else the nearest sample within `tolerance_ns`, else None."""
        s = self.stamps_ns
        i = int(np.searchsorted(s, stamp_ns, side="left"))
        if i < s.size and s[i] == stamp_ns:
            return self._matrix(self.translations[i], Rotation.from_quat(self.quaternions_xyzw[i]))
        before, after = i - 1, i
        if before >= 0 and after < s.size and s[after] - s[before] <= max_interpolation_gap_ns:
            w = (stamp_ns - s[before]) / float(s[after] - s[before])
            t = (1 - w) * self.translations[before] + w * self.translations[after]
            slerp = Slerp([0.0, 1.0], Rotation.from_quat(self.quaternions_xyzw[[before, after]]))
            return self._matrix(t, slerp([w])[0])
        have_before = before >= 0 and stamp_ns - s[before] <= tolerance_ns
        have_after = after < s.size and s[after] - stamp_ns <= tolerance_ns
        if have_before or have_after:
            k = before if have_before and (not have_after or stamp_ns - s[before] <= s[after] - stamp_ns) else after
            return self._matrix(self.translations[k], Rotation.from_quat(self.quaternions_xyzw[k]))
        return None

    @staticmethod
    def _matrix(t: np.ndarray, rotation: Rotation) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = rotation.as_matrix()
        m[:3, 3] = t
        return m


def _transform_fields(transform_stamped) -> tuple[str, str, int, np.ndarray, np.ndarray]:
    h = transform_stamped.header
    tr = transform_stamped.transform
    stamp = int(h.stamp.sec) * 1_000_000_000 + int(h.stamp.nanosec)
    t = np.array([tr.translation.x, tr.translation.y, tr.translation.z], dtype=np.float64)
    q = np.array([tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w], dtype=np.float64)
    return _normalise_frame(h.frame_id), _normalise_frame(transform_stamped.child_frame_id), stamp, t, q


class TfGroundTruth:
    """Object poses in the camera optical frame, composed from /tf and /tf_static messages.

    Between two samples at most `max_interpolation_gap_ns` apart the pose is interpolated; otherwise
    the nearest sample within `tolerance_ns` is used. Feed it every TFMessage (`add(msg, static=...)`), then ask `pose(stamp_ns)` for T_camera_object as
    a 4x4 matrix (None when TF does not cover that stamp within the tolerance)."""

    def __init__(self, object_frame: str, world_frame: str = "world", camera_frame: str = "camera_link",
                 optical_frame: str = "camera_optical_frame", tolerance_ns: int = 5_000_000,
                 max_interpolation_gap_ns: int = 100_000_000):
        self.object_frame = _normalise_frame(object_frame)
        self.world_frame = _normalise_frame(world_frame)
        self.camera_frame = _normalise_frame(camera_frame)
        self.optical_frame = _normalise_frame(optical_frame)
        self.tolerance_ns = int(tolerance_ns)
        self.max_interpolation_gap_ns = int(max_interpolation_gap_ns)
        self._samples: dict[tuple[str, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self._static: dict[tuple[str, str], np.ndarray] = {}
        self._series: dict[tuple[str, str], StampedTransforms] = {}

    def add(self, tf_message, static: bool = False) -> None:
        for ts in tf_message.transforms:
            parent, child, stamp, t, q = _transform_fields(ts)
            if static:
                self._static[(parent, child)] = StampedTransforms._matrix(t, Rotation.from_quat(q))
            else:
                self._samples.setdefault((parent, child), []).append((stamp, t, q))
                self._series.pop((parent, child), None)

    def _series_of(self, parent: str, child: str) -> StampedTransforms:
        key = (parent, child)
        if key not in self._series:
            samples = self._samples.get(key)
            if not samples:
                known = sorted(f"{p}->{c}" for p, c in self._samples)
                raise MissingTransformError(f"no {parent}->{child} transform on /tf (found: {known or 'none'})")
            samples = sorted(samples, key=lambda s: s[0])
            self._series[key] = StampedTransforms(
                np.array([s[0] for s in samples], dtype=np.int64),
                np.array([s[1] for s in samples]), np.array([s[2] for s in samples]))
        return self._series[key]

    def camera_to_optical(self) -> np.ndarray:
        key = (self.camera_frame, self.optical_frame)
        if key in self._static:
            return self._static[key]
        if key in self._samples:  # some drivers publish it on /tf; it does not change
            return self._series_of(*key).at(self._series_of(*key).stamps_ns[0], 0)
        raise MissingTransformError(
            f"no {self.camera_frame}->{self.optical_frame} transform on /tf_static "
            f"(static transforms found: {sorted(f'{p}->{c}' for p, c in self._static) or 'none'})")

    def check(self, camera_only: bool = False) -> None:
        """Raise MissingTransformError unless every transform the composition needs was seen
        (`camera_only`: just those of `camera_pose`)."""
        self.camera_to_optical()
        self._series_of(self.world_frame, self.camera_frame)
        if not camera_only:
            self._series_of(self.world_frame, self.object_frame)

    def camera_pose(self, stamp_ns: int) -> np.ndarray | None:
        """T_world_optical (4x4) at `stamp_ns`, or None: the camera's own motion (ego-motion)."""
        world_camera = self._series_of(self.world_frame, self.camera_frame).at(
            stamp_ns, self.tolerance_ns, self.max_interpolation_gap_ns)
        return None if world_camera is None else world_camera @ self.camera_to_optical()

    def pose(self, stamp_ns: int) -> np.ndarray | None:
        """T_camera_object (4x4, optical frame) at `stamp_ns`, or None if TF does not cover it."""
        gap = self.max_interpolation_gap_ns
        world_camera = self._series_of(self.world_frame, self.camera_frame).at(stamp_ns, self.tolerance_ns, gap)
        world_object = self._series_of(self.world_frame, self.object_frame).at(stamp_ns, self.tolerance_ns, gap)
        if world_camera is None or world_object is None:
            return None
        world_optical = world_camera @ self.camera_to_optical()
        return invert_transform(world_optical) @ world_object


class MissingTransformError(LookupError):
    """A transform that ground truth from TF needs was never published."""


def invert_transform(m: np.ndarray) -> np.ndarray:
    inv = np.eye(4)
    inv[:3, :3] = m[:3, :3].T
    inv[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return inv


def pose_msg_to_matrix(pose) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Pose (duck-typed; quaternion x, y, z, w)."""
    q = pose.orientation
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    m[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
    return m


def split_sequences(stamps_ns: Iterable[int], max_gap_ns: int) -> np.ndarray:
    """Sequence id per stamp: a new sequence starts where time jumps back or forward by more than
    `max_gap_ns` (a looped or concatenated recording), so nothing is paired across the jump."""
    stamps = np.asarray(list(stamps_ns), dtype=np.int64)
    if stamps.size == 0:
        return np.zeros(0, dtype=np.int32)
    step = np.diff(stamps)
    breaks = (step <= 0) | (step > max_gap_ns)
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int32)
