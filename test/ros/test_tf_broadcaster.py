"""ros2_pose.ros.tf_broadcaster: /tf between nodes, /tf_static latched for late subscribers."""
import math

import pytest
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from ros2_pose.ros.qos import tf_qos, tf_static_listener_qos, tf_static_qos
from ros2_pose.ros.tf_broadcaster import (
    InvalidTransformError,
    StaticTransformBroadcaster,
    TransformBroadcaster,
)
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy


def _transform(parent, child, x=0.0, qw=1.0, qz=0.0):
    t = TransformStamped()
    t.header.frame_id = parent
    t.header.stamp.sec = 5
    t.child_frame_id = child
    t.transform.translation.x = x
    t.transform.rotation.w = qw
    t.transform.rotation.z = qz
    return t


def test_tf_static_qos_matches_tf2_ros():
    qos = tf_static_qos()
    assert (qos.depth, qos.durability, qos.reliability) == (
        1, DurabilityPolicy.TRANSIENT_LOCAL, ReliabilityPolicy.RELIABLE)
    assert tf_qos().depth == 100 and tf_qos().durability == DurabilityPolicy.VOLATILE


def test_tf_message_reaches_another_node(ros_context, executor, spin_until):
    sender = Node("tf_sender", context=ros_context)
    receiver = Node("tf_receiver", context=ros_context)
    executor.add_node(sender)
    executor.add_node(receiver)
    received = []
    receiver.create_subscription(TFMessage, "/tf", received.append, tf_qos())
    broadcaster = TransformBroadcaster(sender)
    assert spin_until(lambda: sender.count_subscribers("/tf") > 0)
    c, s = math.cos(0.3), math.sin(0.3)
    broadcaster.send_transform([_transform("world", "dolly", x=1.5, qw=c, qz=s),
                                _transform("world", "camera_link")])
    assert spin_until(lambda: bool(received))
    frames = [(t.header.frame_id, t.child_frame_id) for t in received[0].transforms]
    assert frames == [("world", "dolly"), ("world", "camera_link")]
    assert received[0].transforms[0].transform.translation.x == 1.5
    broadcaster.sendTransform(_transform("world", "drone"))
    assert spin_until(lambda: len(received) == 2)
    assert received[1].transforms[0].child_frame_id == "drone"


def test_late_subscriber_gets_every_static_frame(ros_context, executor, spin_until, spin_for):
    sender = Node("tf_static_sender", context=ros_context)
    executor.add_node(sender)
    broadcaster = StaticTransformBroadcaster(sender)
    broadcaster.send_transform(_transform("camera_link", "camera_optical_frame", qw=0.5, qz=0.5 * math.sqrt(3)))
    broadcaster.send_transform(_transform("base_link", "camera_link", x=0.2))
    broadcaster.send_transform(_transform("base_link", "camera_link", x=0.3))  # replaces the previous one
    assert len(broadcaster.transforms) == 2
    late = Node("tf_static_late_listener", context=ros_context)
    executor.add_node(late)
    received = []
    late.create_subscription(TFMessage, "/tf_static", received.append, tf_static_listener_qos())
    assert spin_until(lambda: bool(received))
    spin_for(0.2)
    assert len(received) == 1  # depth 1: only the latest, full set
    by_child = {t.child_frame_id: t for t in received[0].transforms}
    assert set(by_child) == {"camera_optical_frame", "camera_link"}
    assert by_child["camera_link"].transform.translation.x == 0.3


@pytest.mark.parametrize("transform, message", [
    (_transform("world", "world"), "same"),
    (_transform("", "dolly"), "must be set"),
    (_transform("world", "dolly", x=float("nan")), "non-finite"),
    (_transform("world", "dolly", qw=0.0), "norm 0.000000"),
    (_transform("world", "dolly", qw=2.0), "norm 2.000000"),
])
def test_invalid_transforms_are_refused(ros_context, transform, message):
    node = Node("tf_invalid", context=ros_context)
    try:
        with pytest.raises(InvalidTransformError, match=message):
            TransformBroadcaster(node).send_transform(transform)
        static = StaticTransformBroadcaster(node)
        with pytest.raises(InvalidTransformError, match=message):
            static.send_transform([_transform("a", "b"), transform])
        assert static.transforms == []  # nothing half-sent
        with pytest.raises(TypeError, match="expected geometry_msgs/TransformStamped"):
            static.send_transform(["world"])
    finally:
        node.destroy_node()


def test_builder_transforms_arrive_intact(ros_context, executor, spin_until):
    import numpy as np

    from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix, matrix_from_quat_xyzw
    from ros2_pose.ros.message_builders import transform_stamped

    pose = RigidTransform(axis_angle_to_matrix([0.1, -0.4, 0.9]), [0.5, -1.0, 3.0])
    sender = Node("tf_builder_sender", context=ros_context)
    receiver = Node("tf_builder_receiver", context=ros_context)
    executor.add_node(sender)
    executor.add_node(receiver)
    received = []
    receiver.create_subscription(TFMessage, "/tf", received.append, tf_qos())
    broadcaster = TransformBroadcaster(sender)
    assert spin_until(lambda: sender.count_subscribers("/tf") > 0)
    broadcaster.send_transform(transform_stamped(pose, sender.get_clock().now(), "camera_optical_frame", "dolly"))
    assert spin_until(lambda: bool(received))
    t = received[0].transforms[0].transform
    q = [t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w]
    np.testing.assert_allclose(matrix_from_quat_xyzw(q), pose.rotation, atol=1e-12)
    np.testing.assert_allclose([t.translation.x, t.translation.y, t.translation.z], pose.translation)
