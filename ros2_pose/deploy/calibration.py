"""INT8 calibration data path: images (from a folder or a rosbag2 bag) -> preprocessed NCHW batches,
and the calibration cache file. ROS- and TensorRT-free so it is tested everywhere; the TensorRT
calibrator that consumes it is in tensorrt_calibrator.py.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_BAG_MARKERS = ("metadata.yaml",)
_BAG_SUFFIXES = (".mcap", ".db3")


class CalibrationSourceError(ValueError):
    """The calibration source is empty, unreadable, or lacks the requested topic."""


class CalibrationCacheMismatchError(RuntimeError):
    """A calibration cache was made for a different model (or its origin is unknown)."""


class ImagePreprocess:
    """HxWx3 uint8 RGB -> float32 CxHxW: resize to the network input, scale to [0, 1], normalise.

    The same steps as the model's node must apply; `mean`/`std` come from model.yaml `preprocess`.
    """

    def __init__(self, height: int, width: int, channels: int = 3, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        if channels not in (1, 3):
            raise ValueError(f"ImagePreprocess handles 1 or 3 channels, got {channels}")
        self.height, self.width, self.channels = int(height), int(width), channels
        self.mean = np.asarray(mean if mean is not None else [0.0] * channels, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std if std is not None else [1.0] * channels, np.float32).reshape(-1, 1, 1)
        if self.mean.shape[0] != channels or self.std.shape[0] != channels or np.any(self.std == 0):
            raise ValueError(f"mean/std need {channels} values (std non-zero), got {mean!r} / {std!r}")

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        image = rgb
        if image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.channels == 1:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
        chw = image.astype(np.float32).transpose(2, 0, 1) / 255.0
        return (chw - self.mean) / self.std

    def describe(self) -> dict:
        return {"height": self.height, "width": self.width, "channels": self.channels,
                "mean": self.mean.ravel().tolist(), "std": self.std.ravel().tolist()}


def is_bag(path: Path) -> bool:
    return path.is_dir() and (any((path / m).is_file() for m in _BAG_MARKERS)
                              or any(p.suffix in _BAG_SUFFIXES for p in path.iterdir()))


_CALIBRATION_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


def _image_message_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image (8-bit colour or mono) -> HxWx3 uint8 RGB, via the project's image codec."""
    from ros2_pose.images import convert_color, image_msg_to_array

    if msg.encoding not in _CALIBRATION_ENCODINGS:
        raise CalibrationSourceError(f"calibration images must be one of {_CALIBRATION_ENCODINGS}, "
                                     f"got {msg.encoding!r}")
    return np.ascontiguousarray(convert_color(image_msg_to_array(msg), msg.encoding, "rgb8"))


class CalibrationBatches:
    """Iterable of float32 NCHW C-contiguous batches of exactly `batch_size` images.

    `source` is a folder of png/jpg images (sorted by name) or a rosbag2 bag folder (then `topic`
    names its sensor_msgs/Image topic). At most `max_images` images are read; a trailing partial
    batch is dropped because TensorRT's calibrator takes a fixed batch size.
    """

    def __init__(self, source: str | Path, preprocess: Callable[[np.ndarray], np.ndarray], batch_size: int = 8,
                 max_images: int = 512, topic: str | None = None):
        if batch_size < 1 or max_images < 1:
            raise ValueError(f"batch_size and max_images must be >= 1, got {batch_size}, {max_images}")
        self.source = Path(source)
        self.preprocess = preprocess
        self.batch_size = int(batch_size)
        self.max_images = int(max_images)
        self.topic = topic
        if not self.source.exists():
            raise CalibrationSourceError(f"calibration source {self.source} does not exist")
        self.kind = "bag" if is_bag(self.source) else "images"
        if self.kind == "images":
            if not self.source.is_dir():
                raise CalibrationSourceError(f"calibration source {self.source} is neither an image folder nor a bag")
            self._files = sorted(p for p in self.source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not self._files:
                raise CalibrationSourceError(f"{self.source} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
            self.available_images = len(self._files)
        else:
            if not topic:
                raise CalibrationSourceError(f"{self.source} is a bag: give the image topic to calibrate on")
            self.available_images = self._bag_message_count()

    @property
    def num_images(self) -> int:
        return min(self.available_images, self.max_images) // self.batch_size * self.batch_size

    def __len__(self) -> int:
        return self.num_images // self.batch_size

    def _images(self) -> Iterator[np.ndarray]:
        if self.kind == "images":
            for path in self._files[: self.num_images]:
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise CalibrationSourceError(f"cannot read image {path}")
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        else:
            yield from self._bag_images()

    def _open_bag(self):
        from rosbags.highlevel import AnyReader

        from ros2_pose.data.bag_types import typestore
        return AnyReader([self.source], default_typestore=typestore())

    def _bag_connections(self, reader):
        connections = [c for c in reader.connections if c.topic == self.topic]
        if not connections:
            images = sorted({c.topic for c in reader.connections if c.msgtype == "sensor_msgs/msg/Image"})
            raise CalibrationSourceError(f"bag {self.source} has no topic {self.topic!r} "
                                         f"(image topics: {images or 'none'})")
        if any(c.msgtype != "sensor_msgs/msg/Image" for c in connections):
            raise CalibrationSourceError(f"topic {self.topic!r} in {self.source} is "
                                         f"{connections[0].msgtype}, not sensor_msgs/msg/Image")
        return connections

    def _bag_message_count(self) -> int:
        with self._open_bag() as reader:
            return sum(c.msgcount for c in self._bag_connections(reader))

    def _bag_images(self) -> Iterator[np.ndarray]:
        with self._open_bag() as reader:
            connections = self._bag_connections(reader)
            for count, (connection, _, raw) in enumerate(reader.messages(connections=connections)):
                if count >= self.num_images:
                    return
                yield _image_message_to_rgb(reader.deserialize(raw, connection.msgtype))

    def __iter__(self) -> Iterator[np.ndarray]:
        batch: list[np.ndarray] = []
        for image in self._images():
            sample = np.asarray(self.preprocess(image), dtype=np.float32)
            if sample.ndim != 3:
                raise ValueError(f"preprocess must return CxHxW, returned shape {sample.shape}")
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield np.ascontiguousarray(np.stack(batch))
                batch = []


class CalibrationCache:
    """TensorRT's calibration table at `path` (bytes exactly as TensorRT wrote them, so trtexec can
    read them too) plus a sidecar `<path>.json` naming the ONNX model hash it was made for."""

    def __init__(self, path: str | Path, model_sha256: str):
        self.path = Path(path)
        self.model_sha256 = model_sha256

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> bytes | None:
        """The cached table, None when there is none; CalibrationCacheMismatchError when it was made
        for another model (a table of another network would silently give wrong INT8 scales)."""
        if not self.path.is_file():
            return None
        if not self.sidecar.is_file():
            raise CalibrationCacheMismatchError(
                f"calibration cache {self.path} has no sidecar {self.sidecar.name}: cannot tell which "
                f"model it belongs to; delete it to recalibrate")
        recorded = json.loads(self.sidecar.read_text(encoding="utf-8")).get("model_sha256")
        if recorded != self.model_sha256:
            raise CalibrationCacheMismatchError(
                f"calibration cache {self.path} was made for model sha256 {str(recorded)[:12]}..., this ONNX "
                f"is {self.model_sha256[:12]}...; delete it (or choose another cache path) to recalibrate")
        return self.path.read_bytes()

    def write(self, data: bytes, details: dict | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(bytes(data))
        record = {"model_sha256": self.model_sha256, "table_sha256": hashlib.sha256(bytes(data)).hexdigest()}
        record.update(details or {})
        self.sidecar.write_text(json.dumps(record, indent=2), encoding="utf-8")
