"""The QoS profiles the suite uses, in one place (each call returns a fresh profile to adjust freely).

- `sensor_data_qos(depth=5)`: image/camera_info subscriptions. Best effort, volatile, keep last 5:
  rclpy's `qos_profile_sensor_data`. A best-effort subscription matches both best-effort and
  reliable publishers (camera drivers use either), and old frames are dropped instead of queued.
- `reliable_qos(depth=10)`: the suite's outputs (poses, detections, diagnostics): reliable,
  volatile, keep last `depth` (the rclpy default `create_publisher(..., 10)`). Reliable
  publishers match reliable and best-effort subscribers.
- `tf_qos()`: /tf as tf2_ros uses it: reliable, volatile, keep last 100.
- `tf_static_qos()`: /tf_static as tf2_ros's StaticTransformBroadcaster publishes it: reliable,
  transient local, keep last 1. Depth 1 is enough because the static broadcaster always
  republishes the full set of its frames in one TFMessage, so the last message is the whole state
  and a late subscriber receives it.
- `tf_static_listener_qos()`: what tf2_ros's TransformListener subscribes /tf_static with:
  reliable, transient local, keep last 100 (one latched message from each static broadcaster).
"""
from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)


def sensor_data_qos(depth: int = 5) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)


def reliable_qos(depth: int = 10) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def tf_qos() -> QoSProfile:
    return reliable_qos(depth=100)


def tf_static_qos() -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def tf_static_listener_qos() -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
