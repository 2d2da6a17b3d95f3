"""sensor_msgs/Image <-> numpy for nodes: cv_bridge where it is importable, ros2_pose.images otherwise.

Robots with a ROS 2 install have cv_bridge; this workplace (pip wheels) does not, and PyPI's
cv-bridge is a ROS 1 port that breaks on numpy 2. The backend is chosen once, explicitly, and the
choice is logged once (logger `ros2_pose.image_conversion`).

Public API
----------
- `to_image_msg(array, encoding, header=None, *, stamp=None, frame_id="") -> sensor_msgs.msg.Image`:
  `header` (a std_msgs/Header, copied) or `stamp` (builtin_interfaces/Time or rclpy.time.Time) and
  `frame_id`. The pixels are copied once, straight into the message's uint8 array: assigning a
  numpy array costs ~50 ms per 640x480 rgb8 frame in rclpy, a memoryview ~40 ms, and passing bytes
  to the constructor ~2.5 ms.
- `image_msg_with_pixels(height, width, encoding, header=None, *, stamp=None, frame_id="")
  -> (Image, np.ndarray)`: an Image whose pixel buffer is allocated, and a writable numpy view of it
  (H x W or H x W x C, the encoding's dtype), for a producer that writes its output into the
  message itself (`cv2.resize(..., dst=pixels)`): no copy at all. Same message with both backends.
- `ReusedImageMessage(encoding).prepare(height, width, header) -> (Image, np.ndarray)`: the same,
  one message per publisher refilled every frame (a new buffer only when the size changes).
- `from_image_msg(msg, desired_encoding=None) -> np.ndarray`: the pixels (a zero-copy view with the
  codec backend), colour-converted when `desired_encoding` differs (rgb8 <-> bgr8 etc.); generic
  encodings (8UC3, 16UC1, ...) of the same layout pass through unchanged, as in cv_bridge.
- `ImageConverter(backend="auto" | "cv_bridge" | "codec")`: the same two operations as methods,
  for code that wants a specific backend; `backend` tells which one runs.
- `image_backend() -> str`: the backend the module functions use ("cv_bridge" or "codec").
Errors are `ros2_pose.images.ImageEncodingError` with both backends.
"""
from __future__ import annotations

from array import array as typed_array  # the stdlib buffer rclpy keeps uint8[] fields in

from typing import Any

import numpy as np
import rclpy.logging
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros2_pose.images import (
    ENCODINGS,
    ImageEncodingError,
    array_to_image_fields,
    convert_color,
    encoding_info,
    image_layout_fields,
    image_msg_to_array,
)

_LOGGER_NAME = "ros2_pose.image_conversion"
BACKENDS = ("cv_bridge", "codec")
# Encodings that say how channels are ordered; the rest (8UC3, 16UC1, ...) only give the layout.
_COLOUR_ENCODINGS = {"rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"}


def _cv_bridge_class():
    """cv_bridge.CvBridge, or None when cv_bridge is not importable (or broken, as on numpy 2)."""
    try:
        from cv_bridge import CvBridge
    except Exception:  # noqa: BLE001 - a broken install (ImportError, numpy ABI errors) means "absent"
        return None
    return CvBridge


def _make_header(header: Header | None, stamp: Any, frame_id: str) -> Header:
    out = Header()
    if header is not None:
        out.stamp = header.stamp
        out.frame_id = header.frame_id
        return out
    if stamp is not None:
        out.stamp = stamp.to_msg() if hasattr(stamp, "to_msg") else stamp
    out.frame_id = frame_id
    return out


def _is_passthrough(source: str, desired: str | None) -> bool:
    if desired is None or desired == "passthrough" or desired == source:
        return True
    same_layout = encoding_info(source) == encoding_info(desired)
    return same_layout and not (source in _COLOUR_ENCODINGS and desired in _COLOUR_ENCODINGS)


class ImageConverter:
    """Image message conversion through one chosen backend."""

    def __init__(self, backend: str = "auto"):
        if backend not in ("auto", *BACKENDS):
            raise ValueError(f"unknown image backend {backend!r}; expected 'auto', 'cv_bridge' or 'codec'")
        bridge_class = _cv_bridge_class() if backend in ("auto", "cv_bridge") else None
        if backend == "cv_bridge" and bridge_class is None:
            raise ImportError("image backend 'cv_bridge' requested but cv_bridge is not importable")
        self.backend = "cv_bridge" if bridge_class is not None else "codec"
        self._bridge = bridge_class() if bridge_class is not None else None

    def to_msg(self, array: np.ndarray, encoding: str, header: Header | None = None, *,
               stamp: Any = None, frame_id: str = "") -> Image:
        if self._bridge is not None:
            encoding_info(encoding)
            try:
                msg = self._bridge.cv2_to_imgmsg(np.ascontiguousarray(array), encoding=encoding)
            except Exception as exc:  # CvBridgeError and numpy errors: one error type for callers
                raise ImageEncodingError(f"cv_bridge could not encode {array.shape} {array.dtype} as "
                                         f"{encoding!r}: {exc}") from exc
        else:
            fields = array_to_image_fields(array, encoding, data_as_array=True)
            pixels = fields.pop("data")
            msg = Image(**fields)
            # One copy, straight into the uint8 array the message already holds: Image(data=bytes)
            # iterates the bytes (~2.5 ms at 320x240 float), and assigning a filled array costs a
            # second copy, as the setter copies it unless ROS_PYTHON_CHECK_FIELDS=1.
            msg.data.frombytes(memoryview(pixels).cast("B"))
        msg.header = _make_header(header, stamp, frame_id)
        return msg

    def from_msg(self, msg: Image, desired_encoding: str | None = None) -> np.ndarray:
        if desired_encoding not in (None, "passthrough"):
            encoding_info(desired_encoding)
        if self._bridge is not None:
            encoding_info(msg.encoding)
            try:
                pixels = self._bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
            except Exception as exc:
                raise ImageEncodingError(f"cv_bridge could not decode a {msg.encoding!r} image: {exc}") from exc
        else:
            pixels = image_msg_to_array(msg)
        if _is_passthrough(msg.encoding, desired_encoding):
            return pixels
        return convert_color(pixels, msg.encoding, desired_encoding)


_default: ImageConverter | None = None


def _default_converter() -> ImageConverter:
    global _default
    if _default is None:
        _default = ImageConverter("auto")
        rclpy.logging.get_logger(_LOGGER_NAME).info(
            "image conversion backend: " + ("cv_bridge" if _default.backend == "cv_bridge"
                                            else "ros2_pose.images codec (cv_bridge not importable)"))
    return _default


def image_backend() -> str:
    return _default_converter().backend


def to_image_msg(array: np.ndarray, encoding: str, header: Header | None = None, *,
                 stamp: Any = None, frame_id: str = "") -> Image:
    return _default_converter().to_msg(array, encoding, header, stamp=stamp, frame_id=frame_id)


def from_image_msg(msg: Image, desired_encoding: str | None = None) -> np.ndarray:
    return _default_converter().from_msg(msg, desired_encoding)


def image_msg_with_pixels(height: int, width: int, encoding: str, header: Header | None = None, *,
                          stamp: Any = None, frame_id: str = "") -> tuple[Image, np.ndarray]:
    fields = image_layout_fields(height, width, encoding)
    info = encoding_info(encoding)
    msg = Image(**fields)
    # A zeroed uint8 array (repeating one zero is ~100x faster than array("B", bytes(n))). The setter
    # keeps it, or a copy of it (field checks off, the default), so the view is taken of what the
    # message holds afterwards.
    msg.data = typed_array("B", [0]) * (fields["step"] * fields["height"])
    shape = (fields["height"], fields["width"]) + ((info.channels,) if info.channels > 1 else ())
    pixels = np.frombuffer(msg.data, dtype=info.dtype.newbyteorder("=")).reshape(shape)
    msg.header = _make_header(header, stamp, frame_id)
    return msg, pixels


class ReusedImageMessage:
    """One outgoing Image per publisher, its pixel buffer reused while the size stays the same.

    rclpy serialises a message inside ``publish()``, so after it returns the message may be
    refilled: a node that writes each frame's output into ``pixels`` (see `image_msg_with_pixels`)
    then neither allocates nor copies an image per frame. A new size allocates a new buffer.
    """

    def __init__(self, encoding: str):
        encoding_info(encoding)
        self.encoding = encoding
        self.message: Image | None = None
        self.pixels: np.ndarray | None = None

    def prepare(self, height: int, width: int, header: Header) -> tuple[Image, np.ndarray]:
        """The message (with ``header``'s stamp and frame) and its writable pixels, height x width."""
        if self.message is None or (self.message.height, self.message.width) != (int(height), int(width)):
            self.message, self.pixels = image_msg_with_pixels(height, width, self.encoding)
        self.message.header = _make_header(header, None, "")
        return self.message, self.pixels


__all__ = ["BACKENDS", "ENCODINGS", "ImageConverter", "ImageEncodingError", "from_image_msg",
           "image_backend", "image_msg_with_pixels", "ReusedImageMessage", "to_image_msg"]
