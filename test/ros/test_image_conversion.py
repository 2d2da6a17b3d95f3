"""ros2_pose.ros.image_conversion: Image messages through rclpy, both backends where they exist."""
from array import array

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
    ReusedImageMessage,
    from_image_msg,
    image_backend,
    image_msg_with_pixels,
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


def test_pixels_go_straight_into_the_message_buffer():
    # rclpy's slow paths (~50 ms per 640x480 frame) come from assigning a numpy array or bytes to
    # msg.data; the fast one fills the uint8 array.array the message holds, and the data is right.
    image = _image("rgb8", 480, 640)
    msg = to_image_msg(image, "rgb8")
    assert isinstance(msg.data, array) and msg.data.typecode == "B" and len(msg.data) == image.size
    np.testing.assert_array_equal(from_image_msg(msg), image)


@pytest.mark.parametrize("encoding", ["32FC1", "rgb8", "mono16"])
def test_pixels_written_into_a_prepared_message_are_its_data(encoding):
    expected = _image(encoding, 4, 7)
    msg, pixels = image_msg_with_pixels(4, 7, encoding, stamp=Time(sec=1, nanosec=2), frame_id="cam")
    assert pixels.shape == expected.shape and pixels.dtype == expected.dtype and not pixels.any()
    pixels[...] = expected                 # a producer writing its output in place
    assert (msg.encoding, msg.step, msg.header.frame_id) == (encoding, expected[0].nbytes, "cam")
    np.testing.assert_array_equal(from_image_msg(msg), expected)
    with pytest.raises(ImageEncodingError, match="positive size"):
        image_msg_with_pixels(0, 7, encoding)
    with pytest.raises(ImageEncodingError, match="unsupported image encoding"):
        image_msg_with_pixels(4, 7, "yuv422")


def test_a_reused_image_message_keeps_its_buffer_until_the_size_changes():
    output = ReusedImageMessage("32FC1")
    first, pixels = output.prepare(3, 4, Header(stamp=Time(sec=1), frame_id="a"))
    pixels[...] = 1.5
    again, same_pixels = output.prepare(3, 4, Header(stamp=Time(sec=2), frame_id="b"))
    assert again is first and same_pixels is pixels
    assert (again.header.stamp.sec, again.header.frame_id) == (2, "b")
    np.testing.assert_array_equal(from_image_msg(again), np.full((3, 4), 1.5, np.float32))
    bigger, bigger_pixels = output.prepare(5, 6, Header(frame_id="c"))
    assert bigger_pixels.shape == (5, 6) and (bigger.height, bigger.width) == (5, 6)
    assert not np.shares_memory(bigger_pixels, pixels)


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
