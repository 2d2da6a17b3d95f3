"""Camera frames of a bag as a node receives them, for benchmarks, tests and offline replay.

- `read_camera_messages(bag, count)`: up to `count` (sensor_msgs/Image, sensor_msgs/CameraInfo)
  rclpy message pairs from /camera/image_raw and /camera/camera_info, matched by stamp, oldest
  first (raw CDR deserialised by rclpy: exactly what a subscriber gets).
- `read_camera_frames(bag, count, pinhole=True)`: the same as (RGB uint8 array, CameraModel)
  pairs; with `pinhole`, undistorted as the pipelines see them (`CameraModel.pinhole_view`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"


def read_camera_messages(bag: str | Path, count: int) -> list[tuple[object, object]]:
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from ros2_pose.data.bags import iter_raw
    from ros2_pose.ros.message_builders import stamp_to_ns

    images, infos = {}, {}
    for raw in iter_raw([bag], topics=[IMAGE_TOPIC, CAMERA_INFO_TOPIC]):
        if raw.topic == IMAGE_TOPIC:
            msg = deserialize_message(raw.data, Image)
            images[stamp_to_ns(msg.header.stamp)] = msg
        else:
            msg = deserialize_message(raw.data, CameraInfo)
            infos[stamp_to_ns(msg.header.stamp)] = msg
        if len(images) >= count and all(s in infos for s in images):
            break
    pairs = [(images[s], infos[s]) for s in sorted(images) if s in infos][:count]
    if not pairs:
        raise ValueError(f"bag {bag} has no {IMAGE_TOPIC} with a {CAMERA_INFO_TOPIC} of the same stamp")
    return pairs


def read_camera_frames(bag: str | Path, count: int, pinhole: bool = True) -> list[tuple[np.ndarray, object]]:
    from ros2_pose.geometry.camera import CameraModel
    from ros2_pose.ros.image_conversion import from_image_msg

    frames = []
    for image_msg, info in read_camera_messages(bag, count):
        image, camera = np.array(from_image_msg(image_msg, "rgb8")), CameraModel.from_camera_info(info)
        frames.append(camera.pinhole_view(image) if pinhole else (image, camera))
    return frames
