"""synchronise(): tolerance boundaries, one use per message, reporting; TF interpolation."""
import numpy as np
import pytest

from ros2_pose.data.sync import (StampedTransforms, SyncError, split_sequences, synchronise)

MS = 1_000_000


def stream(stamps_ms, tag):
    return [(int(s * MS), f"{tag}{i}") for i, s in enumerate(stamps_ms)]


def test_tolerance_boundary_is_inclusive_and_report_counts():
    streams = {"image": stream([0, 100, 200, 300], "i"),
               "info": stream([5, 100, 206, 300, 400], "c")}
    frames, report = synchronise(streams, "image", tolerance_ns=5 * MS)
    assert [f.stamp_ns for f in frames] == [0, 100 * MS, 300 * MS]      # 206 is 6 ms off: dropped
    assert frames[0].payloads == {"image": "i0", "info": "c0"}
    assert report.streams["image"].unmatched == 1 and report.streams["info"].unmatched == 2
    assert report.worst_offset_ns == 5 * MS and report.worst_offset_stream == "info"
    assert report.to_dict()["streams"]["info"] == {"total": 5, "matched": 3, "unmatched": 2}


def test_each_message_is_used_once_nearest_first():
    # two images compete for one camera_info: the nearer one gets it
    frames, report = synchronise({"image": stream([0, 4], "i"), "info": stream([3], "c")}, "image", 5 * MS)
    assert [(f.payloads["image"], f.payloads["info"]) for f in frames] == [("i1", "c0")]
    assert report.matched == 1


def test_unsorted_stream_and_unknown_reference_are_errors():
    with pytest.raises(SyncError, match="not sorted"):
        synchronise({"image": stream([10, 0], "i")}, "image", MS)
    with pytest.raises(SyncError, match="reference"):
        synchronise({"info": stream([0], "c")}, "image", MS)


def test_transform_interpolation_and_nearest_within_tolerance():
    quats = np.array([[0, 0, 0, 1], [0, 0, np.sin(0.5), np.cos(0.5)]])  # 0 and 1 rad about z
    series = StampedTransforms(np.array([0, 100 * MS]), np.array([[0.0, 0, 0], [1.0, 2, 0]]), quats)
    m = series.at(25 * MS, tolerance_ns=MS, max_interpolation_gap_ns=200 * MS)
    assert np.allclose(m[:3, 3], [0.25, 0.5, 0])
    assert np.isclose(np.arctan2(m[1, 0], m[0, 0]), 0.25)
    # no interpolation allowed: nearest within tolerance, else None
    assert series.at(25 * MS, tolerance_ns=MS) is None
    assert np.allclose(series.at(99 * MS, tolerance_ns=2 * MS)[:3, 3], [1, 2, 0])


def test_sequences_split_at_time_jumps():
    assert split_sequences([0, 10, 20, 5, 15, 1000], max_gap_ns=100).tolist() == [0, 0, 0, 1, 1, 2]
