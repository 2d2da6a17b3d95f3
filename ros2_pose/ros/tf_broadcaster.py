"""TF broadcasting that works with and without tf2_ros.

Robots with a ROS 2 install have tf2_ros; this workplace (pip wheels) has only tf2_msgs (built
locally where missing). Both facades take what tf2_ros takes and behave the same either way.

Public API
----------
- `TransformBroadcaster(node, qos=None)`: `.send_transform(transforms)` publishes
  geometry_msgs/TransformStamped (one, or a list/iterable) on /tf in one tf2_msgs/TFMessage.
  Uses tf2_ros.TransformBroadcaster when importable, else a /tf publisher with `qos.tf_qos()`.
- `StaticTransformBroadcaster(node, qos=None)`: `.send_transform(transforms)` on /tf_static with
  `qos.tf_static_qos()` (reliable, transient local, keep last 1). It keeps every frame sent so far
  (keyed by child frame; a re-sent child frame replaces the old one) and publishes the full set
  each time, as tf2_ros does, so a late subscriber gets every static frame from the one latched
  message. `.transforms` lists what is held.
- `sendTransform` is an alias of `send_transform` on both, for code written against tf2_ros.
- `tf2_ros_available() -> bool`.
- `InvalidTransformError(ValueError)`: a transform with a non-finite value, a rotation that is not
  a unit quaternion (|q| off 1 by more than 1e-3), an empty frame id, or parent == child. Such a
  transform would be dropped by tf2 listeners with a warning; here the sender learns about it.
"""
from __future__ import annotations

import math
from typing import Iterable

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from tf2_msgs.msg import TFMessage

from ros2_pose.ros.qos import tf_qos, tf_static_qos

QUATERNION_NORM_TOLERANCE = 1e-3


class InvalidTransformError(ValueError):
    """A TransformStamped that TF listeners would reject."""


def tf2_ros_available() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


def _as_list(transforms: TransformStamped | Iterable[TransformStamped]) -> list[TransformStamped]:
    items = [transforms] if isinstance(transforms, TransformStamped) else list(transforms)
    for t in items:
        if not isinstance(t, TransformStamped):
            raise TypeError(f"expected geometry_msgs/TransformStamped, got {type(t).__name__}")
        _check_transform(t)
    return items


def _check_transform(t: TransformStamped) -> None:
    where = f"transform {t.header.frame_id!r} -> {t.child_frame_id!r}"
    if not t.header.frame_id or not t.child_frame_id:
        raise InvalidTransformError(f"{where}: parent (header.frame_id) and child_frame_id must be set")
    if t.header.frame_id == t.child_frame_id:
        raise InvalidTransformError(f"{where}: parent and child frame are the same")
    tr, q = t.transform.translation, t.transform.rotation
    values = (tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w)
    if not all(math.isfinite(v) for v in values):
        raise InvalidTransformError(f"{where}: non-finite value in translation/rotation {values}")
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise InvalidTransformError(f"{where}: rotation quaternion has norm {norm:.6f}, expected 1")


class TransformBroadcaster:
    """Dynamic transforms on /tf."""

    def __init__(self, node: Node, qos: QoSProfile | None = None):
        qos = qos or tf_qos()
        if tf2_ros_available():
            import tf2_ros
            self._tf2 = tf2_ros.TransformBroadcaster(node, qos)
            self._publisher = None
        else:
            self._tf2 = None
            self._publisher = node.create_publisher(TFMessage, "/tf", qos)

    def send_transform(self, transforms: TransformStamped | Iterable[TransformStamped]) -> None:
        items = _as_list(transforms)
        if not items:
            return
        if self._tf2 is not None:
            self._tf2.sendTransform(items)
        else:
            self._publisher.publish(TFMessage(transforms=items))

    sendTransform = send_transform


class StaticTransformBroadcaster:
    """Static transforms on /tf_static, latched (transient local), always the full set."""

    def __init__(self, node: Node, qos: QoSProfile | None = None):
        qos = qos or tf_static_qos()
        self._by_child: dict[str, TransformStamped] = {}
        if tf2_ros_available():
            import tf2_ros
            self._tf2 = tf2_ros.StaticTransformBroadcaster(node, qos)
            self._publisher = None
        else:
            self._tf2 = None
            self._publisher = node.create_publisher(TFMessage, "/tf_static", qos)

    @property
    def transforms(self) -> list[TransformStamped]:
        return list(self._by_child.values())

    def send_transform(self, transforms: TransformStamped | Iterable[TransformStamped]) -> None:
        for t in _as_list(transforms):
            self._by_child[t.child_frame_id] = t
        # The full set every time: older tf2_ros versions publish only what they are given, and
        # with depth 1 the latched message must hold every frame.
        if self._tf2 is not None:
            self._tf2.sendTransform(self.transforms)
        else:
            self._publisher.publish(TFMessage(transforms=self.transforms))

    sendTransform = send_transform
