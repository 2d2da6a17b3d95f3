"""ros2_pose.ros.node_base: lifecycle, parameters from YAML, safe callbacks, diagnostics, shutdown."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from echo_node_for_tests import EchoNode
from ros2_pose.ros.image_conversion import from_image_msg, to_image_msg
from ros2_pose.ros.params import ParameterFileError
from ros2_pose.ros.qos import reliable_qos

HERE = Path(__file__).resolve().parent


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "echo.yaml"
    path.write_text("/**:\n  ros__parameters:\n    autostart: false\n    scale: 5\n"
                    "echo:\n  ros__parameters:\n    scale: 3\n    gain: 2\n    classes: [dolly]\n"
                    "other_node:\n  ros__parameters:\n    scale: 9\n")
    return path


@pytest.fixture
def rig(ros_context, executor, params_file):
    """An echo node (not started) and a test node that publishes images and collects echoes."""
    def make(path=params_file, **kwargs):
        echo = EchoNode(params_file=path, context=ros_context, **kwargs)
        peer = Node("peer", context=ros_context)
        executor.add_node(echo)
        executor.add_node(peer)
        peer.echoes, peer.diagnostics = [], []
        peer.create_subscription(Image, "echo/image", peer.echoes.append, reliable_qos())
        peer.create_subscription(DiagnosticArray, "/diagnostics", peer.diagnostics.append, reliable_qos())
        peer.images = peer.create_publisher(Image, "image", reliable_qos())
        return echo, peer
    return make


def _image_msg(value=1, encoding="mono8", sec=42):
    dtype = np.uint16 if encoding in ("mono16", "16UC1") else np.uint8
    return to_image_msg(np.full((4, 6), value, dtype), encoding, stamp=Time(sec=sec, nanosec=7), frame_id="cam")


def _image_topics(node):
    return [s.topic_name for s in node.subscriptions if s.topic_name == "/image"]


def test_parameters_come_from_yaml_with_descriptions(ros_context, params_file):
    echo = EchoNode(params_file=params_file, context=ros_context)
    try:
        assert echo.get_parameter("scale").value == 3  # node entry beats /** entry
        assert echo.get_parameter("gain").value == 2.0  # int in YAML, float parameter
        assert echo.get_parameter("classes").value == ["dolly"]
        assert echo.get_parameter("autostart").value is False
        assert echo.get_parameter("fail_on_encoding").value == ""  # default kept
        assert echo.describe_parameter("scale").description.startswith("multiplies every pixel")
        assert echo.describe_parameter("autostart").description.startswith("configure and activate")
    finally:
        echo.destroy_node()


def test_rcl_overrides_beat_the_yaml_and_defaults_apply_without_one(ros_context, params_file):
    echo = EchoNode(params_file=params_file, context=ros_context,
                    parameter_overrides=[Parameter("scale", value=7), Parameter("classes", value=["a", "b"])])
    try:
        assert echo.get_parameter("scale").value == 7
        assert echo.get_parameter("classes").value == ["a", "b"]
    finally:
        echo.destroy_node()
    plain = EchoNode("plain_echo", context=ros_context)
    try:
        assert plain.get_parameter("scale").value == 2 and plain.get_parameter("classes").value == []
        assert plain.get_parameter("autostart").value is True
    finally:
        plain.destroy_node()


def test_wrong_type_in_yaml_is_a_clear_error(ros_context, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("echo:\n  ros__parameters:\n    scale: high\n")
    with pytest.raises(ParameterFileError, match=r"bad.yaml: parameter 'scale': got 'high' \(str\), expected int"):
        EchoNode(params_file=path, context=ros_context)


def test_lifecycle_subscriptions_exist_only_while_active(rig, spin_until, spin_for):
    echo, peer = rig()
    assert not echo.is_configured and not _image_topics(echo)
    assert echo.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert echo.is_configured and not echo.is_active and not _image_topics(echo)
    assert echo.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert echo.is_active and _image_topics(echo) == ["/image"]

    assert spin_until(lambda: peer.images.get_subscription_count() > 0 and
                      peer.count_publishers("/echo/image") > 0)
    peer.images.publish(_image_msg(value=10))
    assert spin_until(lambda: bool(peer.echoes))
    echoed = peer.echoes[0]
    assert (echoed.header.stamp.sec, echoed.header.stamp.nanosec, echoed.header.frame_id) == (42, 7, "cam")
    assert (from_image_msg(echoed) == 30).all()  # scale 3 from the YAML

    assert echo.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert not echo.is_active and not _image_topics(echo)
    peer.images.publish(_image_msg(value=11))
    spin_for(0.3)
    assert len(peer.echoes) == 1
    assert echo.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert not echo.is_configured and peer.count_publishers("/echo/image") == 0
    assert echo.trigger_configure() == TransitionCallbackReturn.SUCCESS  # and again
    assert echo.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert echo.activations == 2


def test_autostart_configures_and_activates_on_first_spin(ros_context, executor, spin_until):
    echo = EchoNode(context=ros_context)
    executor.add_node(echo)
    assert not echo.is_active
    assert spin_until(lambda: echo.is_active)


def test_diagnostics_report_frames_and_survive_callback_errors(rig, spin_until, tmp_path):
    path = tmp_path / "fail.yaml"
    path.write_text("echo:\n  ros__parameters:\n    autostart: false\n    fail_on_encoding: mono16\n"
                    "    drop_on_encoding: 8UC1\n    diagnostics_period_s: 0.1\n")
    echo, peer = rig(path)
    assert spin_until(lambda: bool(peer.diagnostics))
    first = peer.diagnostics[-1].status[0]
    assert (first.level, first.message, first.name) == (bytes([0]), "unconfigured", "echo: processing")
    echo.trigger_configure()
    echo.trigger_activate()
    assert spin_until(lambda: peer.images.get_subscription_count() > 0 and
                      peer.count_publishers("/echo/image") > 0)
    for i in range(5):
        peer.images.publish(_image_msg(sec=i))
    assert spin_until(lambda: len(peer.echoes) == 5)
    # Every processed frame has its callback time and the `timed` stage inside it.
    assert len(echo.frame_timings) == 5
    assert all(0 < t["scale"] <= t["callback_s"] for t in echo.frame_timings)
    peer.images.publish(_image_msg(encoding="8UC1"))  # dropped on purpose, not an error
    bad = _image_msg()
    bad.step = 2  # bad input: decoding fails before the callback
    peer.images.publish(bad)
    for _ in range(2):
        peer.images.publish(_image_msg(encoding="mono16"))  # the callback raises
    assert spin_until(lambda: echo.stats.errors == 3)

    def values():
        status = peer.diagnostics[-1].status[0]
        return status, {kv.key: kv.value for kv in status.values}

    peer.diagnostics.clear()
    assert spin_until(lambda: bool(peer.diagnostics))
    status, kv = values()
    assert status.level == bytes([2]) and status.message.startswith("3 consecutive failures: RuntimeError")
    assert (kv["frames_received"], kv["frames_processed"], kv["frames_dropped"], kv["errors"]) == ("9", "5", "4", "3")
    assert len(echo.frame_timings) == 5  # dropped and failed frames have no timings
    assert kv["last_error"] == "RuntimeError: refusing mono16 images"
    assert float(kv["input_rate_hz"]) > 0 and float(kv["latency_median_ms"]) > 0
    assert kv["lifecycle_state"] == "active"
    assert "ImageEncodingError" not in kv["last_error"]  # overwritten by the later failures

    peer.images.publish(_image_msg(sec=99))  # the node is still alive and recovers
    assert spin_until(lambda: len(peer.echoes) == 6)
    peer.diagnostics.clear()
    assert spin_until(lambda: bool(peer.diagnostics))
    status, kv = values()
    assert status.level == bytes([0]) and "Hz" in status.message and kv["errors"] == "3"


def _run_echo_process(*ros_args):
    # os.environ carries the harness's ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and ROS_DOMAIN_ID.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(HERE / "echo_node_for_tests.py"), *ros_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_node_cleanly(sig):
    process = _run_echo_process("--ros-args", "-r", "__node:=signal_echo")
    try:
        line = process.stdout.readline()
        assert line.strip() == "echo active", process.stderr.read() if not line else line
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "echo released" in out  # the cleanup hook ran


def test_node_that_cannot_start_exits_1_with_the_reason():
    process = _run_echo_process("--ros-args", "-p", "scale:=high")
    out, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert "cannot start EchoNode" in out + err and "scale" in out + err
    assert "Traceback" not in out + err
