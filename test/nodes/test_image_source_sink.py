"""image_source / image_sink: frames (synthetic and from a folder), parameter checks, the sink report."""
import json

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from ros2_pose.nodes.image_sink import ImageSink, latency_summary
from ros2_pose.nodes.image_source import ImageSource, folder_frames, synthetic_frames


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(args=[], context=ctx)
    yield ctx
    ctx.try_shutdown()


def test_synthetic_frames_are_rgb8_and_move():
    frames = synthetic_frames(64, 48, count=4)
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])
    with pytest.raises(ValueError, match="at least 8x8"):
        synthetic_frames(4, 4)


def test_folder_frames_are_rgb_in_name_order(tmp_path):
    red = np.zeros((10, 12, 3), np.uint8)
    red[..., 0] = 255
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(red, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 12, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    frames = folder_frames(str(tmp_path))
    assert len(frames) == 2 and frames[0].max() == 0 and np.array_equal(frames[1], red)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folder_frames(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .png"):
        folder_frames(str(tmp_path / "empty"))


def test_source_rejects_bad_parameters(context):
    with pytest.raises(ValueError, match="qos must be one of"):
        ImageSource(context=context, cli_args=["--ros-args", "-p", "qos:=fast"])
    with pytest.raises(ValueError, match="rate_hz must be > 0"):
        ImageSource(context=context, cli_args=["--ros-args", "-p", "rate_hz:=0"])


def test_sink_refuses_bad_qos_at_configure(context):
    sink = ImageSink(context=context, cli_args=["--ros-args", "-p", "qos:=fast"])
    assert sink.trigger_configure().name == "FAILURE"
    sink.destroy_node()


def test_source_to_sink_with_report(context, tmp_path):
    report = tmp_path / "r.json"
    source = ImageSource(context=context, cli_args=[
        "--ros-args", "-p", "rate_hz:=100.0", "-p", "count:=6", "-p", "width:=32", "-p", "height:=24",
        "-p", "wait_for_subscribers:=1"])
    sink = ImageSink(context=context, cli_args=[
        "--ros-args", "-p", "qos:=reliable", "-p", "stop_after:=6", "-p", f"report_path:={report}"])
    assert sink.trigger_configure().name == "SUCCESS" and sink.trigger_activate().name == "SUCCESS"
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(source)
    executor.add_node(sink)
    for _ in range(200):
        executor.spin_once(timeout_sec=0.05)
        if report.exists():
            break
    data = json.loads(report.read_text())
    assert data["count"] == 6 and data["shapes"] == [[24, 32, 3]]
    assert all(v > 0 for v in data["latencies_ms"]) and data["median_ms"] == pytest.approx(
        float(np.median(data["latencies_ms"])))
    executor.shutdown()
    source.destroy_node()
    sink.destroy_node()


def test_latency_summary():
    assert latency_summary([]) == {"count": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    s = latency_summary([1.0, 2.0, 3.0, 100.0])
    assert s["count"] == 4 and s["median_ms"] == 2.5 and s["max_ms"] == 100.0 and 3.0 < s["p95_ms"] < 100.0
