"""ros2_pose.ros.image_conversion: Image messages through rclpy, both backends where they exist."""
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.time import Time as RclpyTime
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros2_pose.images import ENCODINGS, ImageEncodingError
from ros2_pose.ros import image_conversion
from ros2_pose.ros.image_conversion import (
    ImageConverter,
    from_image_msg,
    image_backend,
    to_image_msg,
)
from ros2_pose.ros.qos import reliable_qos, sensor_data_qos

HAVE_CV_BRIDGE = image_conversion._cv_bridge_class() is not None
BACKENDS = ["codec", pytest.param("cv_bridge", marks=pytest.mark.skipif(
    not HAVE_CV_BRIDGE, reason="cv_bridge is not importable here (no ROS install; PyPI's breaks on numpy 2)"))]


def _image(encoding, height=6, width=5):
    info = ENCODINGS[encoding]
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    return (np.arange(np.prod(shape)) % 251).astype(info.dtype).reshape(shape)


def test_auto_backend_is_explicit():
    assert image_backend() == ("cv_bridge" if HAVE_CV_BRIDGE else "codec")
    with pytest.raises(ValueError, match="unknown image backend 'pil'"):
        ImageConverter("pil")
    if not HAVE_CV_BRIDGE:
        with pytest.raises(ImportError, match="cv_bridge is not importable"):
            ImageConverter("cv_bridge")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_round_trip_through_an_rclpy_message(backend, encoding):
    converter = ImageConverter(backend)
    image = _image(encoding)
    msg = converter.to_msg(image, encoding, stamp=Time(sec=3, nanosec=4), frame_id="cam")
    assert isinstance(msg, Image) and msg.encoding == encoding
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 4, "cam")
    np.testing.assert_array_equal(converter.from_msg(msg), image)


def test_header_and_rclpy_time_are_copied():
    header = Header(stamp=Time(sec=7, nanosec=8), frame_id="camera_optical_frame")
    msg = to_image_msg(_image("mono8"), "mono8", header)
    assert msg.header == header and msg.header is not header
    msg = to_image_msg(_image("mono8"), "mono8", stamp=RclpyTime(seconds=2, nanoseconds=5), frame_id="x")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (2, 5, "x")


def test_encoding_a_640x480_frame_is_fast():
    # Assigning a numpy array to msg.data costs ~50 ms in rclpy; bytes must be used.
    image = np.zeros((480, 640, 3), np.uint8)
    to_image_msg(image, "rgb8")
    start = time.perf_counter()
    for _ in range(5):
        to_image_msg(image, "rgb8")
    assert (time.perf_counter() - start) / 5 < 0.02  # numpy assignment: ~50 ms; loaded machine: ~3 ms


def test_desired_encoding_converts_colour_and_passes_generic_layouts():
    rgb = _image("rgb8")
    msg = to_image_msg(rgb, "rgb8")
    np.testing.assert_array_equal(from_image_msg(msg, "bgr8"), rgb[..., ::-1])
    np.testing.assert_array_equal(from_image_msg(msg, "8UC3"), rgb)
    np.testing.assert_array_equal(from_image_msg(msg, "passthrough"), rgb)
    assert from_image_msg(msg, "mono8").shape == rgb.shape[:2]
    with pytest.raises(ImageEncodingError, match="no colour conversion from 'rgb8' to '32FC1'"):
        from_image_msg(msg, "32FC1")
    with pytest.raises(ImageEncodingError, match="unsupported image encoding 'hsv'"):
        from_image_msg(msg, "hsv")


def test_errors_are_image_encoding_errors():
    with pytest.raises(ImageEncodingError, match="needs 3 channel"):
        to_image_msg(np.zeros((4, 4), np.uint8), "rgb8")
    msg = to_image_msg(_image("rgb8"), "rgb8")
    msg.step = 3
    with pytest.raises(ImageEncodingError, match="step 3 is smaller"):
        from_image_msg(msg)


def test_received_image_is_decoded_without_a_copy(ros_context, executor, spin_until):
    from rclpy.node import Node
    sender = Node("image_sender", context=ros_context)
    receiver = Node("image_receiver", context=ros_context)
    executor.add_node(sender)
    executor.add_node(receiver)
    received = []
    receiver.create_subscription(Image, "images", received.append, sensor_data_qos())
    publisher = sender.create_publisher(Image, "images", reliable_qos())
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    assert spin_until(lambda: publisher.get_subscription_count() > 0)
    publisher.publish(to_image_msg(image, "rgb8", frame_id="cam"))
    assert spin_until(lambda: bool(received))
    msg = received[0]
    if image_backend() == "codec":
        decoded = from_image_msg(msg)
        assert np.shares_memory(decoded, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(from_image_msg(msg), image)
    assert msg.header.frame_id == "cam"
