"""The recorder as a user runs it: `ros2-pose record` in its own process, stopped by SIGTERM."""
import os
import signal
import subprocess
import sys
import time

import pytest
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from ros2_pose.data.bags import bag_info, iter_messages
from ros2_pose.nodes.recorder import Recorder, subscription_qos

pytestmark = pytest.mark.ros


@pytest.fixture
def node():
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("recorder_test_publisher", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.spin_once = lambda t=0.02: executor.spin_once(timeout_sec=t)
    yield node
    executor.shutdown()
    node.destroy_node()
    context.try_shutdown()


def _wait(predicate, node, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        node.spin_once()
    return predicate()


def test_record_subprocess_stopped_by_sigterm(node, tmp_path):
    out = tmp_path / "recorded"
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    tf_static = node.create_publisher(TFMessage, "/tf_static", latched)
    chatter = node.create_publisher(String, "/chatter", 10)
    static = TransformStamped()
    static.header.frame_id, static.child_frame_id = "camera_link", "camera_optical_frame"
    static.transform.rotation.w = 1.0
    tf_static.publish(TFMessage(transforms=[static]))  # before the recorder exists: latched

    env = dict(os.environ)  # ROS_DOMAIN_ID and LOCALHOST discovery from the test harness
    recorder = subprocess.Popen(
        [sys.executable, "-m", "ros2_pose.cli.main", "record", "--topics", "/chatter", "/tf_static",
         "--out", str(out), "--discovery-timeout", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait(lambda: chatter.get_subscription_count() >= 1 and tf_static.get_subscription_count() >= 1,
                     node, timeout=30), "recorder never subscribed"
        for i in range(25):
            chatter.publish(String(data=f"message {i}"))
            node.spin_once(0.005)
        # Stopped as soon as the recorder's reader has acknowledged the burst, before it can have
        # taken every sample: it must write what had reached it before closing.
        assert chatter.wait_for_all_acked(Duration(seconds=20))
        recorder.send_signal(signal.SIGTERM)
        output, _ = recorder.communicate(timeout=20)
    finally:
        if recorder.poll() is None:
            recorder.kill()
    assert recorder.returncode == 0, output
    assert "recorded 26 messages" in output and "/chatter" in output

    info = bag_info(out)
    assert info.topics == {"/chatter": ("std_msgs/msg/String", 25), "/tf_static": ("tf2_msgs/msg/TFMessage", 1)}
    chatter_msgs = [m.msg.data for m in iter_messages(out, topics=["/chatter"])]
    assert chatter_msgs == [f"message {i}" for i in range(25)]
    (tf,) = [m.msg for m in iter_messages(out, topics=["/tf_static"])]
    assert tf.transforms[0].child_frame_id == "camera_optical_frame"


def test_subscription_qos_matches_publishers(node):
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
    assert subscription_qos([latched]).durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert subscription_qos([latched, best_effort]).durability == DurabilityPolicy.VOLATILE
    assert subscription_qos([latched, best_effort]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert subscription_qos([latched]).reliability == ReliabilityPolicy.RELIABLE


def test_recorder_needs_topics_and_out(node, tmp_path):
    with pytest.raises(ValueError, match="topics"):
        Recorder([], str(tmp_path / "x"), context=node.context)
