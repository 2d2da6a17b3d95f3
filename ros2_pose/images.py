"""sensor_msgs/Image <-> numpy, without ROS: the image codec every node, bag reader and tool shares.

Duck-typed: anything with `height`, `width`, `encoding`, `is_bigendian`, `step` and `data` decodes,
so the same code serves rclpy messages (`data` is an `array.array('B')` or bytes) and rosbags
messages (`data` is a numpy uint8 array). No rclpy import here (core module).

Public API
----------
- `ENCODINGS`: encoding name -> `EncodingInfo(dtype, channels)` for rgb8, bgr8, rgba8, bgra8,
  mono8, mono16, 8UC1, 8UC3, 16UC1, 32FC1.
- `encoding_info(encoding) -> EncodingInfo`: the table entry, or `ImageEncodingError`.
- `image_msg_to_array(msg) -> np.ndarray`: HxW (one channel) or HxWxC. Zero-copy: the result is a
  view of `msg.data` (rows padded by `step` are skipped with strides, nothing copied). Big-endian
  multi-byte data is the one case that is copied, into native byte order. The view is read-only
  when `msg.data` is immutable (bytes); call `.copy()` before writing into it.
- `array_to_image_fields(array, encoding) -> dict(height, width, encoding, is_bigendian, step,
  data: bytes)`: the fields of an Image message for a HxW / HxWx1 / HxWxC array (tightly packed
  rows, native byte order).
- `convert_color(array, from_encoding, to_encoding) -> np.ndarray`: colour conversion between
  rgb8, bgr8, rgba8, bgra8 and mono8 (OpenCV); the same encoding returns the input unchanged.
- `ImageEncodingError(ValueError)`: unsupported encoding, `step` smaller than a row, data shorter
  than `step * height`, or an array whose dtype/channels do not match the encoding.
"""
from __future__ import annotations

import sys
from typing import Any, NamedTuple

import cv2
import numpy as np


class ImageEncodingError(ValueError):
    """An image (message or array) does not match what its encoding requires."""


class EncodingInfo(NamedTuple):
    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(np.dtype(np.uint8), 3),
    "bgr8": EncodingInfo(np.dtype(np.uint8), 3),
    "rgba8": EncodingInfo(np.dtype(np.uint8), 4),
    "bgra8": EncodingInfo(np.dtype(np.uint8), 4),
    "mono8": EncodingInfo(np.dtype(np.uint8), 1),
    "mono16": EncodingInfo(np.dtype(np.uint16), 1),
    "8UC1": EncodingInfo(np.dtype(np.uint8), 1),
    "8UC3": EncodingInfo(np.dtype(np.uint8), 3),
    "16UC1": EncodingInfo(np.dtype(np.uint16), 1),
    "32FC1": EncodingInfo(np.dtype(np.float32), 1),
}

_NATIVE_BIG_ENDIAN = sys.byteorder == "big"


def encoding_info(encoding: str) -> EncodingInfo:
    """(dtype, channels) of `encoding`; ImageEncodingError naming the supported ones otherwise."""
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise ImageEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}") from None


def _bytes_view(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's `data` (bytes, array.array, memoryview or numpy array)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise ImageEncodingError(
                f"image data must be a flat uint8 buffer, got a {data.dtype} array of shape {data.shape}")
        return data
    return np.frombuffer(data, dtype=np.uint8)


def image_msg_to_array(msg: Any) -> np.ndarray:
    """The pixels of an Image-like message as a numpy view (see module docstring)."""
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    item_bytes = info.dtype.itemsize
    row_bytes = width * info.channels * item_bytes
    if step < row_bytes:
        raise ImageEncodingError(
            f"step {step} is smaller than one row of {width} px x {info.channels} channel(s) x "
            f"{item_bytes} byte(s) = {row_bytes} bytes for encoding {msg.encoding!r}")
    raw = _bytes_view(msg.data)
    if raw.size < step * height:
        raise ImageEncodingError(
            f"image data is truncated: {raw.size} bytes, expected step * height = {step} * {height} "
            f"= {step * height} bytes for a {width}x{height} {msg.encoding!r} image")
    dtype = info.dtype.newbyteorder(">" if msg.is_bigendian else "<") if item_bytes > 1 else info.dtype
    # Rows are `step` bytes apart; slicing off the padding keeps a view, and viewing the contiguous
    # last axis as the pixel dtype keeps it a view too.
    rows = raw[: step * height].reshape(height, step)[:, :row_bytes]
    pixels = rows.view(dtype)
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    pixels = pixels.reshape(shape)
    if not dtype.isnative:
        pixels = pixels.astype(info.dtype)  # the one copy: foreign byte order -> native
    return pixels


def array_to_image_fields(array: np.ndarray, encoding: str, data_as_array: bool = False) -> dict[str, Any]:
    """Image message fields for `array` in `encoding` (validated: dtype, channels, 2-D/3-D). `data`
    is bytes, or with `data_as_array` the C-contiguous array itself (for a caller that copies it
    into its message buffer once, instead of bytes first)."""
    info = encoding_info(encoding)
    array = np.asarray(array)
    if array.dtype.newbyteorder("=") != info.dtype.newbyteorder("="):
        raise ImageEncodingError(
            f"encoding {encoding!r} needs a {info.dtype} array, got {array.dtype}")
    if array.ndim == 2:
        channels = 1
    elif array.ndim == 3:
        channels = array.shape[2]
    else:
        raise ImageEncodingError(
            f"an image array must be HxW or HxWxC, got shape {array.shape} for encoding {encoding!r}")
    if channels != info.channels:
        raise ImageEncodingError(
            f"encoding {encoding!r} needs {info.channels} channel(s), got an array of shape {array.shape}")
    if not array.dtype.isnative:
        array = array.astype(info.dtype)
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return {**image_layout_fields(height, width, encoding), "data": array if data_as_array else array.tobytes()}


def image_layout_fields(height: int, width: int, encoding: str) -> dict[str, Any]:
    """Image message fields but `data` (height, width, encoding, is_bigendian, step) of a packed
    native-byte-order image."""
    info = encoding_info(encoding)
    if int(height) <= 0 or int(width) <= 0:
        raise ImageEncodingError(f"an image needs a positive size, got {width}x{height}")
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": int(_NATIVE_BIG_ENDIAN and info.dtype.itemsize > 1),
        "step": int(width * info.channels * info.dtype.itemsize),
    }


_COLOR_CODES: dict[tuple[str, str], int] = {
    ("rgb8", "bgr8"): cv2.COLOR_RGB2BGR,
    ("bgr8", "rgb8"): cv2.COLOR_BGR2RGB,
    ("rgb8", "rgba8"): cv2.COLOR_RGB2RGBA,
    ("rgb8", "bgra8"): cv2.COLOR_RGB2BGRA,
    ("bgr8", "rgba8"): cv2.COLOR_BGR2RGBA,
    ("bgr8", "bgra8"): cv2.COLOR_BGR2BGRA,
    ("rgba8", "rgb8"): cv2.COLOR_RGBA2RGB,
    ("rgba8", "bgr8"): cv2.COLOR_RGBA2BGR,
    ("bgra8", "rgb8"): cv2.COLOR_BGRA2RGB,
    ("bgra8", "bgr8"): cv2.COLOR_BGRA2BGR,
    ("rgba8", "bgra8"): cv2.COLOR_RGBA2BGRA,
    ("bgra8", "rgba8"): cv2.COLOR_BGRA2RGBA,
    ("rgb8", "mono8"): cv2.COLOR_RGB2GRAY,
    ("bgr8", "mono8"): cv2.COLOR_BGR2GRAY,
    ("rgba8", "mono8"): cv2.COLOR_RGBA2GRAY,
    ("bgra8", "mono8"): cv2.COLOR_BGRA2GRAY,
    ("mono8", "rgb8"): cv2.COLOR_GRAY2RGB,
    ("mono8", "bgr8"): cv2.COLOR_GRAY2BGR,
    ("mono8", "rgba8"): cv2.COLOR_GRAY2RGBA,
    ("mono8", "bgra8"): cv2.COLOR_GRAY2BGRA,
}


def _check_array_matches(array: np.ndarray, encoding: str) -> None:
    info = encoding_info(encoding)
    channels = 1 if array.ndim == 2 else (array.shape[2] if array.ndim == 3 else -1)
    if array.dtype != info.dtype or channels != info.channels:
        raise ImageEncodingError(
            f"encoding {encoding!r} needs a {info.dtype} array with {info.channels} channel(s), "
            f"got {array.dtype} of shape {array.shape}")


def convert_color(array: np.ndarray, from_encoding: str, to_encoding: str) -> np.ndarray:
    """`array` (in `from_encoding`) converted to `to_encoding` with OpenCV."""
    _check_array_matches(array, from_encoding)
    encoding_info(to_encoding)
    if from_encoding == to_encoding:
        return array
    try:
        code = _COLOR_CODES[(from_encoding, to_encoding)]
    except KeyError:
        colour = sorted({name for pair in _COLOR_CODES for name in pair})
        raise ImageEncodingError(
            f"no colour conversion from {from_encoding!r} to {to_encoding!r}; conversions exist "
            f"between {', '.join(colour)}") from None
    return cv2.cvtColor(array, code)
