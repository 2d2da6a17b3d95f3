"""image_source: publishes sensor_msgs/Image frames at a fixed rate (synthetic, or from a folder).

Used by the transport benchmark and the `transport_check` graph, and handy to feed any graph.

Topics: publishes `image` (sensor_msgs/Image; remap it, e.g. to /camera/image_raw).
Parameters:
- `rate_hz` (30.0): frames per second.
- `width`, `height` (640, 480): size of the synthetic frames (rgb8: a gradient with a moving bar).
- `folder` (""): when set, publish the .png/.jpg images of this folder (sorted, looped) instead.
- `frame_id` ("camera_optical_frame"), `qos` ("reliable" | "sensor").
- `count` (0): stop publishing after this many frames (0: never).
- `wait_for_subscribers` (0): publish nothing until this many subscriptions have matched, so that
  benchmarks and tests do not lose the first frames to discovery (publishing starts
  DISCOVERY_SETTLE_S after the match, when the subscriber side has matched too).
The header stamp is taken just before `publish`, after the message is built, so a receiver's
`now - stamp` is the transport latency alone.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import Image

from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.node_base import make_node_main
from ros2_pose.ros.qos import reliable_qos, sensor_data_qos

DISCOVERY_SETTLE_S = 0.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
QOS_CHOICES = {"reliable": reliable_qos, "sensor": sensor_data_qos}


def synthetic_frames(width: int, height: int, count: int = 8) -> list[np.ndarray]:
    """`count` rgb8 frames: a fixed colour gradient with a white bar moving across."""
    if width < 8 or height < 8:
        raise ValueError(f"synthetic frames need at least 8x8 pixels, got {width}x{height}")
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = base.copy()
        left = (i * width) // count
        frame[:, left:left + max(1, width // 16)] = 255
        frames.append(frame)
    return frames


def folder_frames(folder: str) -> list[np.ndarray]:
    """The images of `folder` as rgb8 arrays (sorted by name)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"image_source: folder {path} does not exist")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"image_source: no {'/'.join(IMAGE_SUFFIXES)} images in {path}")
    frames = []
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"image_source: {file} is not a readable image")
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


class ImageSource(Node):
    def __init__(self, node_name: str = "image_source", **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        # Dynamically typed so that `rate_hz:=15` (an int in YAML) works as well as 15.0.
        rate_hz = float(self.declare_parameter(
            "rate_hz", 30.0, ParameterDescriptor(dynamic_typing=True)).value)
        width = self.declare_parameter("width", 640).value
        height = self.declare_parameter("height", 480).value
        folder = self.declare_parameter("folder", "").value
        self.frame_id = self.declare_parameter("frame_id", "camera_optical_frame").value
        qos = self.declare_parameter("qos", "reliable").value
        self.count = self.declare_parameter("count", 0).value
        self.wait_for_subscribers = self.declare_parameter("wait_for_subscribers", 0).value
        if not rate_hz > 0:
            raise ValueError(f"image_source: rate_hz must be > 0, got {rate_hz}")
        if qos not in QOS_CHOICES:
            raise ValueError(f"image_source: qos must be one of {sorted(QOS_CHOICES)}, got {qos!r}")
        self.frames = folder_frames(folder) if folder else synthetic_frames(width, height)
        self.published = 0
        self._matched_at = None
        self.publisher = self.create_publisher(Image, "image", QOS_CHOICES[qos]())
        self.timer = self.create_timer(1.0 / rate_hz, self._publish_next)
        h, w = self.frames[0].shape[:2]
        self.get_logger().info(f"publishing {w}x{h} rgb8 on {self.publisher.topic_name} at {rate_hz} Hz "
                               f"({qos} QoS, {'folder ' + folder if folder else 'synthetic'})")

    def _publish_next(self) -> None:
        if self.count and self.published >= self.count:
            self.timer.cancel()
            self.get_logger().info(f"published {self.published} frames; done")
            return
        if self.wait_for_subscribers:
            if self.publisher.get_subscription_count() < self.wait_for_subscribers:
                self._matched_at = None
                return
            # The publisher sees a match before the subscriber has matched it back; frames sent in
            # between are lost to a volatile subscription, so give discovery a moment to finish.
            now = time.monotonic()
            self._matched_at = self._matched_at or now
            if now - self._matched_at < DISCOVERY_SETTLE_S:
                return
        msg = to_image_msg(self.frames[self.published % len(self.frames)], "rgb8", frame_id=self.frame_id)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.publisher.publish(msg)
        self.published += 1


NODE_CLASS = ImageSource


# run_node: clean stop on SIGINT/SIGTERM (also when the signal lands mid-spin), release, shutdown.
main = make_node_main(ImageSource)


if __name__ == "__main__":
    sys.exit(main())
