"""The bag player publishes a small bag into a live graph; a subscriber in this process receives it."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from ros2_pose.data import bag_messages as bm
from ros2_pose.data.bag_types import typestore
from ros2_pose.data.bags import BagWriter, MissingTopicError
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.nodes.bag_player import BagPlayer
from ros2_pose.images import image_msg_to_array

pytestmark = pytest.mark.ros
STORE = typestore()
String_ = STORE.types["std_msgs/msg/String"]
PERIOD_NS = 20_000_000  # 50 Hz recording
N = 10
START_NS = 1_000 * bm.NS_PER_S


@pytest.fixture
def bag(tmp_path):
    path = tmp_path / "bag"
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(N)]
    static = bm.transform_stamped_msg(RigidTransform(np.eye(3), [0, 0, 0.1]), "camera_link", "camera_optical_frame",
                                      START_NS)
    with BagWriter(path) as writer:
        writer.write("/tf_static", bm.tf_message([static]), START_NS)
        for i in range(N):
            stamp = START_NS + i * PERIOD_NS
            writer.write("/chatter", String_(data=f"hello {i}"), stamp)
            writer.write("/camera/image_raw", bm.image_msg(frames[i], "rgb8", stamp, "camera_optical_frame"), stamp)
    return path


@pytest.fixture
def graph():
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    listener = rclpy.create_node("player_test_listener", context=context)
    executor.add_node(listener)
    yield context, executor, listener
    for node in list(executor.get_nodes()):
        executor.remove_node(node)
        node.destroy_node()
    executor.shutdown()
    context.try_shutdown()


def _spin_until(executor, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return predicate()


def _start(context, executor, listener, received, bag, **kwargs):
    listener.create_subscription(String, "/chatter", lambda m: received.setdefault("/chatter", []).append(m), 100)
    listener.create_subscription(Image, "/camera/image_raw",
                                 lambda m: received.setdefault("/camera/image_raw", []).append(m), 100)
    player = BagPlayer([str(bag)], context=context, **kwargs)
    executor.add_node(player)
    assert _spin_until(executor, lambda: all(p.get_subscription_count() >= 1
                                             for t, p in player.publishers_by_topic.items() if t != "/tf_static"))
    return player


def test_play_all_publishes_same_count_content_and_timing(graph, bag):
    context, executor, listener = graph
    received = {}
    player = _start(context, executor, listener, received, bag, rate=2.0)
    started = time.monotonic()
    assert player.play_all(executor) == 2 * N + 1
    elapsed = time.monotonic() - started
    assert _spin_until(executor, lambda: len(received.get("/camera/image_raw", [])) == N
                       and len(received.get("/chatter", [])) == N)
    # The recorded span is (N-1) * 20 ms = 180 ms; at rate 2 that is 90 ms of wall time. The lower
    # bound is the check (the player keeps the bag's pace); the upper one only catches a player that
    # sleeps in the wrong unit, with room for a loaded CI machine.
    assert 0.08 <= elapsed < 5.0
    assert [m.data for m in received["/chatter"]] == [f"hello {i}" for i in range(N)]
    for i, image in enumerate(received["/camera/image_raw"]):
        assert np.array_equal(image_msg_to_array(image), np.full((4, 6, 3), i, np.uint8))
        assert image.header.stamp.sec == 1000 and image.header.stamp.nanosec == i * PERIOD_NS  # as recorded

    # /tf_static was replayed latched: a subscriber joining after playback still gets it.
    late = []
    latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener.create_subscription(TFMessage, "/tf_static", late.append, latched)
    assert _spin_until(executor, lambda: len(late) == 1)
    assert late[0].transforms[0].child_frame_id == "camera_optical_frame"


def test_step_restamp_and_loop(graph, bag):
    context, executor, listener = graph
    received = {}
    player = _start(context, executor, listener, received, bag, topics=["/chatter"], restamp=True, loop=True,
                    start_paused=True)
    assert set(player.publishers_by_topic) == {"/chatter"}
    assert player.play_all(executor, timeout=0.2) == 0  # paused: nothing goes out
    for _ in range(N + 3):  # past the end: the bag starts over
        assert player.step().topic == "/chatter"
    assert player.loops_done == 1
    assert _spin_until(executor, lambda: len(received.get("/chatter", [])) == N + 3)
    assert [m.data for m in received["/chatter"]][N:] == ["hello 0", "hello 1", "hello 2"]


def test_restamp_sets_header_stamps_to_now(graph, bag):
    context, executor, listener = graph
    received = {}
    player = _start(context, executor, listener, received, bag, topics=["/camera/image_raw"], restamp=True)
    before = time.time_ns()
    while player.step() is not None:
        pass
    assert _spin_until(executor, lambda: len(received.get("/camera/image_raw", [])) == N)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received["/camera/image_raw"]]
    assert all(before <= s <= time.time_ns() for s in stamps)


def test_played_messages_are_acknowledged_before_the_player_goes(graph, bag):
    """After a bag plays out, wait_until_delivered returns once every subscriber has acknowledged
    every message: the player's entry points call it before destroying the node, whose writers
    would otherwise drop the last messages of the bag."""
    context, executor, listener = graph
    received = {}
    player = _start(context, executor, listener, received, bag, rate=10.0)
    assert player.play_all() == 2 * N + 1  # no spinning here: delivery happens in the middleware
    assert player.wait_until_delivered(timeout_s=10.0)
    assert _spin_until(executor, lambda: len(received.get("/chatter", [])) == N)


def test_unknown_topics_and_bad_rate_are_refused(graph, bag):
    context, _, _ = graph
    with pytest.raises(MissingTopicError, match="/nope"):
        BagPlayer([str(bag)], topics=["/nope"], context=context)
    with pytest.raises(ValueError, match="rate"):
        BagPlayer([str(bag)], rate=0.0, context=context)


def test_play_cli_in_a_subprocess(graph, bag):
    """`ros2-pose play` as a user runs it (environment from the test harness: LOCALHOST, own domain)."""
    context, executor, listener = graph
    received = []
    subscription = listener.create_subscription(String, "/chatter", received.append, 100)
    proc = subprocess.Popen([sys.executable, "-m", "ros2_pose.cli.play", str(bag), "--topics", "/chatter",
                             "--start-paused"], env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        client = listener.create_client(Trigger, "/bag_player/resume")
        # Our reader has matched the player's writer; discovery is not symmetric, so give the writer
        # time to match our reader too (what it publishes before that is lost: volatile QoS).
        assert _spin_until(executor, lambda: client.service_is_ready() and subscription.get_publisher_count() > 0,
                           timeout=30)
        time.sleep(0.5)
        future = client.call_async(client.srv_type.Request())
        assert _spin_until(executor, future.done)
        ok = _spin_until(executor, lambda: len(received) == N)
        output, _ = proc.communicate(timeout=20)
        assert ok, (len(received), [m.data for m in received], output)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert f"published {N} messages" in output
    assert [m.data for m in received] == [f"hello {i}" for i in range(N)]


def test_publish_clock_carries_bag_time(graph, bag):
    from rosgraph_msgs.msg import Clock

    context, executor, listener = graph
    clocks = []
    listener.create_subscription(Clock, "/clock", clocks.append, 100)
    player = BagPlayer([str(bag)], topics=["/chatter"], publish_clock=True, context=context)
    executor.add_node(player)
    assert _spin_until(executor, lambda: player.clock_publisher.get_subscription_count() >= 1)
    for _ in range(3):
        player.step()
    assert _spin_until(executor, lambda: len(clocks) == 3)
    assert [c.clock.sec * 10**9 + c.clock.nanosec for c in clocks] == [START_NS + i * PERIOD_NS for i in range(3)]
