"""Core results -> rclpy messages (PoseStamped, TransformStamped, Odometry) and back.

Every builder refuses what subscribers must never see: non-finite numbers, empty frame ids, a
transform from a frame to itself. Quaternions are converted only by ros2_pose.geometry.transforms
(ROS x, y, z, w). ``transform_from_pose_msg`` and ``stamp_to_ns`` are duck-typed, so they also
read rosbags message objects.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, TransformStamped
from nav_msgs.msg import Odometry
from std_msgs.msg import Header

from ros2_pose.geometry.transforms import RigidTransform

_NS_PER_S = 1_000_000_000
_INT32_MAX = 2**31 - 1  # builtin_interfaces/Time.sec is int32
_COVARIANCE_SYMMETRY_TOLERANCE = 1e-9


# ------------------------------------------------------------------------------------ stamps
def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time (rclpy or rosbags), a Header, an rclpy Time or an int."""
    if isinstance(stamp, (int, np.integer)) and not isinstance(stamp, bool):
        return int(stamp)
    if hasattr(stamp, "nanoseconds"):  # rclpy.time.Time
        return int(stamp.nanoseconds)
    if hasattr(stamp, "stamp") and hasattr(stamp, "frame_id"):  # a Header
        stamp = stamp.stamp
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)
    raise TypeError(f"expected a builtin_interfaces/Time, Header, rclpy Time or int nanoseconds, got {type(stamp).__name__}")


def ns_to_stamp(ns: int) -> Time:
    """builtin_interfaces/Time of a non-negative nanosecond count."""
    if isinstance(ns, bool) or not isinstance(ns, (int, np.integer)):
        raise TypeError(f"nanoseconds must be an integer, got {type(ns).__name__}")
    ns = int(ns)
    if ns < 0 or ns // _NS_PER_S > _INT32_MAX:
        raise ValueError(f"stamp {ns} ns is outside builtin_interfaces/Time's range [0, {_INT32_MAX} s]")
    return Time(sec=ns // _NS_PER_S, nanosec=ns % _NS_PER_S)


def _header(stamp: Any, frame_id: str) -> Header:
    _check_frame(frame_id, "frame_id")
    return Header(stamp=ns_to_stamp(stamp_to_ns(stamp)), frame_id=frame_id)


def _check_frame(frame_id: Any, what: str) -> None:
    if not isinstance(frame_id, str) or not frame_id:
        raise ValueError(f"{what} must be a non-empty string, got {frame_id!r}")


def _check_transform(transform: Any) -> RigidTransform:
    # RigidTransform validates itself (finite, proper rotation), so holding one is the check.
    if not isinstance(transform, RigidTransform):
        raise TypeError(f"expected a ros2_pose.geometry.transforms.RigidTransform, got {type(transform).__name__}")
    return transform


def _finite(values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size != math.prod(shape):
        raise ValueError(f"{what} must have {math.prod(shape)} values (shape {shape}), got shape {array.shape}")
    array = array.reshape(shape)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains non-finite values: {array.ravel().tolist()}")
    return array


def _quaternion(transform: RigidTransform) -> Quaternion:
    x, y, z, w = (float(value) for value in transform.quat_xyzw)
    return Quaternion(x=x, y=y, z=z, w=w)


def _pose(transform: RigidTransform) -> Pose:
    x, y, z = (float(value) for value in transform.translation)
    return Pose(position=Point(x=x, y=y, z=z), orientation=_quaternion(transform))


# ------------------------------------------------------------------------------------ builders
def pose_stamped(transform: RigidTransform, header_or_stamp: Any, frame_id: str | None = None) -> PoseStamped:
    """PoseStamped of ``transform`` (the child's pose in ``frame_id``).

    ``header_or_stamp``: an input Header (its stamp, and its frame_id unless ``frame_id`` is given:
    the usual "same header as the image" case), or a stamp accepted by :func:`stamp_to_ns`.
    """
    if frame_id is None:
        if not hasattr(header_or_stamp, "frame_id"):
            raise ValueError("frame_id is required when a stamp rather than a Header is given")
        frame_id = header_or_stamp.frame_id
    return PoseStamped(header=_header(header_or_stamp, frame_id), pose=_pose(_check_transform(transform)))


def transform_stamped(transform: RigidTransform, stamp: Any, parent_frame: str, child_frame: str, *,
                      out: TransformStamped | None = None) -> TransformStamped:
    """TransformStamped parent -> child (``transform`` maps child points into the parent frame).
    ``out``: a TransformStamped to fill in place and return (see :func:`odometry`)."""
    _check_frame(child_frame, "child_frame")
    if parent_frame == child_frame:
        raise ValueError(f"parent and child frame are both {parent_frame!r}; TF rejects a frame's transform to itself")
    transform = _check_transform(transform)
    header = _header(stamp, parent_frame)
    message = TransformStamped() if out is None else out
    message.header = header
    message.child_frame_id = child_frame
    _set_xyz(message.transform.translation, transform.translation)
    _set_xyzw(message.transform.rotation, transform.quat_xyzw)
    return message


def odometry(transform: RigidTransform, stamp: Any, odom_frame: str, child_frame: str, twist: Any = None,
             pose_covariance: Any = None, twist_covariance: Any = None, *, out: Odometry | None = None) -> Odometry:
    """nav_msgs/Odometry: pose of ``child_frame`` in ``odom_frame``; twist in ``child_frame``.

    ``twist``: 6 values (vx, vy, vz, wx, wy, wz) or ((vx, vy, vz), (wx, wy, wz)); covariances 36
    values or 6x6 (row-major, symmetric). Left out, they are zero as in a default Odometry.
    ``out``: an Odometry to fill in place and return, for a node that publishes one message object
    every frame (rclpy serialises a message inside ``publish()``, so it can be refilled afterwards);
    filling takes ~1/10 of the time of building a new one, whose constructor builds every nested default.
    Everything is checked before ``out`` is touched, so a refused input leaves it as it was.
    """
    _check_frame(child_frame, "child_frame")
    if odom_frame == child_frame:
        raise ValueError(f"odom_frame and child_frame are both {odom_frame!r}")
    transform = _check_transform(transform)
    velocities = np.zeros(6) if twist is None else _finite(twist, (6,), "twist")
    covariances = [None if values is None else _covariance(values, what)
                   for values, what in ((pose_covariance, "pose_covariance"), (twist_covariance, "twist_covariance"))]
    header = _header(stamp, odom_frame)

    message = Odometry() if out is None else out
    message.header = header
    message.child_frame_id = child_frame
    _set_xyz(message.pose.pose.position, transform.translation)
    _set_xyzw(message.pose.pose.orientation, transform.quat_xyzw)
    _set_xyz(message.twist.twist.linear, velocities[:3])
    _set_xyz(message.twist.twist.angular, velocities[3:])
    for target, values in zip((message.pose, message.twist), covariances):
        if values is not None:
            target.covariance = values
        elif out is not None and target.covariance.any():
            target.covariance = np.zeros(36)
    return message


def _set_xyz(vector: Any, values: Any) -> None:
    vector.x, vector.y, vector.z = (float(value) for value in values)


def _set_xyzw(quaternion: Any, values: Any) -> None:
    quaternion.x, quaternion.y, quaternion.z, quaternion.w = (float(value) for value in values)


def _covariance(values: Any, what: str) -> np.ndarray:
    matrix = _finite(values, (6, 6), what)
    if not np.allclose(matrix, matrix.T, atol=_COVARIANCE_SYMMETRY_TOLERANCE):
        raise ValueError(f"{what} must be symmetric, got {matrix.tolist()}")
    return matrix.ravel()


# ------------------------------------------------------------------------------------ readers
def transform_from_pose_msg(msg: Any) -> RigidTransform:
    """RigidTransform of a Pose, PoseStamped, PoseWithCovariance(Stamped), Odometry, Transform or
    TransformStamped (rclpy or rosbags: only the field names matter). ValueError for non-finite
    values or a zero quaternion; a non-unit quaternion is normalised."""
    inner = msg
    while True:  # unwrap the stamped / covariance / odometry envelopes down to Pose or Transform
        if hasattr(inner, "position") and hasattr(inner, "orientation"):
            translation, rotation = inner.position, inner.orientation
            break
        if hasattr(inner, "translation") and hasattr(inner, "rotation"):
            translation, rotation = inner.translation, inner.rotation
            break
        if hasattr(inner, "pose"):
            inner = inner.pose
        elif hasattr(inner, "transform"):
            inner = inner.transform
        else:
            raise TypeError(f"expected a pose or transform message, got {type(msg).__name__}")
    t = _finite([translation.x, translation.y, translation.z], (3,), "position")
    q = _finite([rotation.x, rotation.y, rotation.z, rotation.w], (4,), "orientation (x, y, z, w)")
    return RigidTransform.from_quat_xyzw(q, t)


def detection_array(header, boxes, scores, class_id: str, instance_ids=None):
    """ros2_pose_msgs/Detection2DArray for boxes (N x 4, x_min y_min x_max y_max pixels) and scores.

    Every detection carries the input's header (stamp and frame); non-finite boxes or scores are
    refused, as for poses."""
    from ros2_pose_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise ValueError("detections must be finite")
    ids = [-1] * len(boxes) if instance_ids is None else [int(i) for i in instance_ids]
    message = Detection2DArray(header=header)
    for box, score, instance in zip(boxes, scores, ids):
        message.detections.append(Detection2D(
            header=header, class_id=class_id, instance_id=instance, score=float(score),
            box=BoundingBox2D(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3])))
    return message
