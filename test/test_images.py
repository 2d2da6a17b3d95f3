"""ros2_pose.images: the ROS-free Image codec (round trips, zero-copy views, padding, errors)."""
import array
from types import SimpleNamespace

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from ros2_pose.images import (
    ENCODINGS,
    ImageEncodingError,
    array_to_image_fields,
    convert_color,
    encoding_info,
    image_msg_to_array,
)


def _random_image(encoding, height=5, width=7, seed=0):
    info = ENCODINGS[encoding]
    rng = np.random.default_rng(seed)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype.kind == "f":
        return rng.normal(size=shape).astype(info.dtype)
    return rng.integers(0, np.iinfo(info.dtype).max, size=shape, endpoint=True).astype(info.dtype)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("container", ["bytes", "array.array", "numpy"])
def test_every_encoding_round_trips(encoding, container):
    image = _random_image(encoding)
    fields = array_to_image_fields(image, encoding)
    assert isinstance(fields["data"], bytes)
    assert fields["step"] == image.shape[1] * image.itemsize * ENCODINGS[encoding].channels
    data = {"bytes": fields["data"], "array.array": array.array("B", fields["data"]),
            "numpy": np.frombuffer(fields["data"], np.uint8).copy()}[container]
    decoded = image_msg_to_array(SimpleNamespace(**{**fields, "data": data}))
    assert decoded.dtype == image.dtype and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)


def test_hxwx1_array_encodes_as_one_channel():
    image = _random_image("mono8")[..., None]
    fields = array_to_image_fields(image, "mono8")
    assert image_msg_to_array(SimpleNamespace(**fields)).shape == image.shape[:2]


def test_decoding_is_zero_copy_and_skips_row_padding():
    image = _random_image("rgb8", height=4, width=3)
    step = 3 * 3 + 5  # 5 bytes of padding per row
    padded = np.full((4, step), 0xEE, np.uint8)
    padded[:, :9] = image.reshape(4, 9)
    buffer = array.array("B", padded.tobytes())
    msg = SimpleNamespace(height=4, width=3, encoding="rgb8", is_bigendian=0, step=step, data=buffer)
    decoded = image_msg_to_array(msg)
    np.testing.assert_array_equal(decoded, image)
    assert np.shares_memory(decoded, np.frombuffer(buffer, np.uint8))
    buffer[0] = 255 - buffer[0]  # writes through: the result is a view, not a copy
    assert decoded[0, 0, 0] == buffer[0]


def test_rosbags_image_decodes_as_a_view_of_its_numpy_data():
    Image = get_typestore(Stores.ROS2_KILTED).types["sensor_msgs/msg/Image"]
    Header = get_typestore(Stores.ROS2_KILTED).types["std_msgs/msg/Header"]
    Time = get_typestore(Stores.ROS2_KILTED).types["builtin_interfaces/msg/Time"]
    depth = _random_image("32FC1", height=6, width=4)
    fields = array_to_image_fields(depth, "32FC1")
    data = np.frombuffer(fields.pop("data"), np.uint8).copy()
    msg = Image(header=Header(stamp=Time(sec=1, nanosec=2), frame_id="cam"), data=data, **fields)
    decoded = image_msg_to_array(msg)
    np.testing.assert_array_equal(decoded, depth)
    assert np.shares_memory(decoded, data)


def test_big_endian_data_decodes_to_native_values():
    values = np.array([[1, 258, 65535]], dtype=np.uint16)
    msg = SimpleNamespace(height=1, width=3, encoding="16UC1", is_bigendian=1, step=6,
                          data=values.astype(">u2").tobytes())
    decoded = image_msg_to_array(msg)
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)
    floats = np.array([[1.5, -2.25]], dtype=np.float32)
    msg = SimpleNamespace(height=1, width=2, encoding="32FC1", is_bigendian=True, step=8,
                          data=floats.astype(">f4").tobytes())
    np.testing.assert_array_equal(image_msg_to_array(msg), floats)


def test_unsupported_encoding_names_the_supported_ones():
    msg = SimpleNamespace(height=1, width=1, encoding="yuv422", is_bigendian=0, step=2, data=b"\0\0")
    with pytest.raises(ImageEncodingError, match=r"'yuv422'.*supported: rgb8"):
        image_msg_to_array(msg)
    with pytest.raises(ImageEncodingError, match="unsupported"):
        encoding_info("64FC1")
    with pytest.raises(ImageEncodingError, match="unsupported"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "jpeg")


def test_step_smaller_than_a_row_is_refused():
    msg = SimpleNamespace(height=2, width=4, encoding="mono16", is_bigendian=0, step=6, data=bytes(16))
    with pytest.raises(ImageEncodingError, match=r"step 6 .* = 8 bytes"):
        image_msg_to_array(msg)


def test_truncated_data_is_refused():
    msg = SimpleNamespace(height=3, width=4, encoding="rgb8", is_bigendian=0, step=12, data=bytes(35))
    with pytest.raises(ImageEncodingError, match=r"truncated: 35 bytes, expected .* = 36"):
        image_msg_to_array(msg)


def test_non_uint8_numpy_data_is_refused():
    msg = SimpleNamespace(height=1, width=2, encoding="mono8", is_bigendian=0, step=2,
                          data=np.zeros(2, np.float32))
    with pytest.raises(ImageEncodingError, match="flat uint8 buffer"):
        image_msg_to_array(msg)


@pytest.mark.parametrize("array, encoding, message", [
    (np.zeros((2, 3, 3), np.float32), "rgb8", "needs a uint8 array, got float32"),
    (np.zeros((2, 3), np.uint8), "rgb8", "needs 3 channel"),
    (np.zeros((2, 3, 4), np.uint8), "bgr8", "needs 3 channel"),
    (np.zeros((2, 3, 3), np.uint8), "mono8", "needs 1 channel"),
    (np.zeros((2, 3), np.uint8), "16UC1", "needs a uint16 array"),
    (np.zeros((2, 3), np.float64), "32FC1", "needs a float32 array"),
    (np.zeros(6, np.uint8), "mono8", "HxW or HxWxC"),
])
def test_encoding_an_array_that_does_not_match_is_refused(array, encoding, message):
    with pytest.raises(ImageEncodingError, match=message):
        array_to_image_fields(array, encoding)


def test_non_contiguous_and_byte_swapped_arrays_encode_correctly():
    image = _random_image("rgb8", height=6, width=8)[::2, ::2]
    fields = array_to_image_fields(image, "rgb8")
    np.testing.assert_array_equal(image_msg_to_array(SimpleNamespace(**fields)), image)
    swapped = np.arange(6, dtype=">u2").reshape(2, 3)
    fields = array_to_image_fields(swapped, "mono16")
    np.testing.assert_array_equal(image_msg_to_array(SimpleNamespace(**fields)), swapped)


def test_convert_color():
    rgb = _random_image("rgb8")
    bgr = convert_color(rgb, "rgb8", "bgr8")
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])
    np.testing.assert_array_equal(convert_color(bgr, "bgr8", "rgb8"), rgb)
    rgba = convert_color(rgb, "rgb8", "rgba8")
    assert rgba.shape[-1] == 4 and (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(convert_color(rgba, "rgba8", "bgra8")[..., :3], bgr)
    gray = convert_color(rgb, "rgb8", "mono8")
    assert gray.shape == rgb.shape[:2]
    expected = np.round(rgb @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(gray.astype(float) - expected).max() <= 1
    assert convert_color(rgb, "rgb8", "rgb8") is rgb
    np.testing.assert_array_equal(convert_color(gray, "mono8", "rgb8"), np.repeat(gray[..., None], 3, -1))


def test_convert_color_errors():
    with pytest.raises(ImageEncodingError, match="no colour conversion from 'mono16' to 'rgb8'"):
        convert_color(np.zeros((2, 2), np.uint16), "mono16", "rgb8")
    with pytest.raises(ImageEncodingError, match="needs a uint8 array with 3 channel"):
        convert_color(np.zeros((2, 2), np.uint8), "rgb8", "bgr8")
