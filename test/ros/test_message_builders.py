import math

import numpy as np
import pytest

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseWithCovarianceStamped, Quaternion
from std_msgs.msg import Header

from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix
from ros2_pose.ros.message_builders import (ns_to_stamp, odometry, pose_stamped, stamp_to_ns, transform_from_pose_msg,
                                            transform_stamped)

HALF_SQRT2 = math.sqrt(0.5)
ROT_Z_90 = RigidTransform(axis_angle_to_matrix([0, 0, math.pi / 2]), [1.0, 2.0, 3.0])
GENERAL = RigidTransform(axis_angle_to_matrix([0.3, -1.2, 2.0]), [-0.5, 0.25, 4.0])


def quaternion_of(msg_quaternion):
    return [msg_quaternion.x, msg_quaternion.y, msg_quaternion.z, msg_quaternion.w]


def test_stamps_round_trip_and_reject_bad_values():
    stamp = ns_to_stamp(1_700_000_000_123_456_789)
    assert isinstance(stamp, Time) and (stamp.sec, stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert stamp_to_ns(stamp) == 1_700_000_000_123_456_789
    assert stamp_to_ns(Header(stamp=stamp, frame_id="x")) == 1_700_000_000_123_456_789
    assert stamp_to_ns(np.int64(5)) == 5
    with pytest.raises(ValueError, match="range"):
        ns_to_stamp(-1)
    with pytest.raises(ValueError, match="range"):
        ns_to_stamp(2**31 * 1_000_000_000)
    with pytest.raises(TypeError):
        ns_to_stamp(1.5)
    with pytest.raises(TypeError):
        stamp_to_ns("now")


def test_pose_stamped_carries_ros_xyzw_quaternion_and_the_input_header():
    header = Header(stamp=Time(sec=12, nanosec=34), frame_id="camera_optical_frame")
    msg = pose_stamped(ROT_Z_90, header)
    assert msg.header.frame_id == "camera_optical_frame"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 34)
    np.testing.assert_allclose(quaternion_of(msg.pose.orientation), [0, 0, HALF_SQRT2, HALF_SQRT2], atol=1e-12)
    assert (msg.pose.position.x, msg.pose.position.y, msg.pose.position.z) == (1.0, 2.0, 3.0)
    assert transform_from_pose_msg(msg).allclose(ROT_Z_90, 1e-12, 1e-12)
    other = pose_stamped(GENERAL, 99, "world")
    assert other.header.frame_id == "world" and stamp_to_ns(other.header.stamp) == 99
    assert transform_from_pose_msg(other).allclose(GENERAL, 1e-12, 1e-12)
    with pytest.raises(ValueError, match="frame_id is required"):
        pose_stamped(GENERAL, 99)
    with pytest.raises(ValueError, match="non-empty"):
        pose_stamped(GENERAL, 99, "")
    with pytest.raises(TypeError, match="RigidTransform"):
        pose_stamped(np.eye(4), 99, "world")


def test_transform_stamped_round_trip_and_frames():
    msg = transform_stamped(GENERAL, Time(sec=1, nanosec=5), "world", "dolly")
    assert (msg.header.frame_id, msg.child_frame_id) == ("world", "dolly")
    assert stamp_to_ns(msg.header.stamp) == 1_000_000_005
    assert transform_from_pose_msg(msg).allclose(GENERAL, 1e-12, 1e-12)
    np.testing.assert_allclose(quaternion_of(msg.transform.rotation), GENERAL.quat_xyzw)
    with pytest.raises(ValueError, match="itself"):
        transform_stamped(GENERAL, 0, "world", "world")
    with pytest.raises(ValueError, match="child_frame"):
        transform_stamped(GENERAL, 0, "world", "")


def test_odometry_twist_and_covariance_and_refusal_of_non_finite():
    covariance = np.diag([0.01, 0.01, 0.02, 0.001, 0.001, 0.003])
    msg = odometry(GENERAL, 7, "odom", "camera_link", twist=((0.5, 0, 0), (0, 0, 0.1)), pose_covariance=covariance,
                   twist_covariance=covariance.ravel())
    assert (msg.header.frame_id, msg.child_frame_id, stamp_to_ns(msg.header.stamp)) == ("odom", "camera_link", 7)
    assert (msg.twist.twist.linear.x, msg.twist.twist.angular.z) == (0.5, 0.1)
    np.testing.assert_array_equal(np.asarray(msg.pose.covariance).reshape(6, 6), covariance)
    np.testing.assert_array_equal(np.asarray(msg.twist.covariance).reshape(6, 6), covariance)
    assert transform_from_pose_msg(msg).allclose(GENERAL, 1e-12, 1e-12)
    bare = odometry(GENERAL, 7, "odom", "camera_link")
    assert not np.any(bare.pose.covariance) and bare.twist.twist.linear.x == 0.0
    with pytest.raises(ValueError, match="twist contains non-finite"):
        odometry(GENERAL, 7, "odom", "camera_link", twist=[0, 0, math.nan, 0, 0, 0])
    bad_covariance = covariance.copy()
    bad_covariance[2, 2] = math.inf
    with pytest.raises(ValueError, match="pose_covariance contains non-finite"):
        odometry(GENERAL, 7, "odom", "camera_link", pose_covariance=bad_covariance)
    asymmetric = covariance.copy()
    asymmetric[0, 1] = 0.5
    with pytest.raises(ValueError, match="symmetric"):
        odometry(GENERAL, 7, "odom", "camera_link", pose_covariance=asymmetric)
    with pytest.raises(ValueError, match="6 values"):
        odometry(GENERAL, 7, "odom", "camera_link", twist=[1, 2, 3])


def test_odometry_and_transform_refill_a_reused_message():
    # a node publishes one message object every frame: each fill replaces all of the last frame's
    covariance = np.diag([0.01, 0.01, 0.02, 0.001, 0.001, 0.003])
    reused = odometry(ROT_Z_90, 5, "odom", "camera_link", twist=np.arange(1.0, 7.0), pose_covariance=covariance,
                      twist_covariance=covariance)
    refilled = odometry(GENERAL, 9, "map", "base_link", out=reused)
    assert refilled is reused
    assert (refilled.header.frame_id, refilled.child_frame_id, stamp_to_ns(refilled.header.stamp)) == \
        ("map", "base_link", 9)
    assert transform_from_pose_msg(refilled).allclose(GENERAL, 1e-12, 1e-12)
    assert refilled.twist.twist.linear.x == 0.0 and refilled.twist.twist.angular.z == 0.0
    assert not np.any(refilled.pose.covariance) and not np.any(refilled.twist.covariance)
    # a refused input leaves the message as it was
    with pytest.raises(ValueError, match="twist contains non-finite"):
        odometry(ROT_Z_90, 11, "odom", "camera_link", twist=[math.nan] * 6, out=refilled)
    assert transform_from_pose_msg(refilled).allclose(GENERAL, 1e-12, 1e-12) and refilled.header.frame_id == "map"

    transform = transform_stamped(ROT_Z_90, 1, "world", "dolly")
    again = transform_stamped(GENERAL, 2, "odom", "camera", out=transform)
    assert again is transform and (again.header.frame_id, again.child_frame_id) == ("odom", "camera")
    assert stamp_to_ns(again.header.stamp) == 2 and transform_from_pose_msg(again).allclose(GENERAL, 1e-12, 1e-12)
    with pytest.raises(ValueError, match="itself"):
        transform_stamped(ROT_Z_90, 3, "odom", "odom", out=again)
    assert again.child_frame_id == "camera"


def test_a_nan_pose_can_never_be_built():
    # the only way in is a RigidTransform, which refuses NaN; the reader refuses NaN messages
    with pytest.raises(ValueError, match="finite"):
        pose_stamped(RigidTransform(np.eye(3), [0, math.nan, 0]), 1, "world")
    pose = Pose()
    pose.position.x = math.nan
    with pytest.raises(ValueError, match="position contains non-finite"):
        transform_from_pose_msg(pose)
    with pytest.raises(ValueError, match="zero norm"):
        transform_from_pose_msg(Pose(orientation=Quaternion(w=0.0)))
    with pytest.raises(TypeError, match="pose or transform"):
        transform_from_pose_msg(Header())


def test_reader_handles_pose_with_covariance_and_rosbags_messages():
    from rosbags.typesys import Stores, get_typestore

    stamped = PoseWithCovarianceStamped()
    stamped.pose.pose = pose_stamped(GENERAL, 1, "world").pose
    assert transform_from_pose_msg(stamped).allclose(GENERAL, 1e-12, 1e-12)

    types = get_typestore(Stores.ROS2_KILTED).types
    x, y, z, w = GENERAL.quat_xyzw
    rosbags_transform = types["geometry_msgs/msg/TransformStamped"](
        header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=3, nanosec=4), frame_id="world"),
        child_frame_id="dolly",
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=-0.5, y=0.25, z=4.0),
            rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)))
    assert transform_from_pose_msg(rosbags_transform).allclose(GENERAL, 1e-12, 1e-12)
    assert stamp_to_ns(rosbags_transform.header) == 3_000_000_004
