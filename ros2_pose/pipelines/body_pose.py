"""Bottom-up multi-person body pose: network maps -> joint peaks -> limbs -> people (BodyPoseNet).

Pure numpy/OpenCV; the network is any `predict(batch) -> (heatmaps, pafs)` callable (torch model,
ONNX Runtime or TensorRT runner), so the same post-processing runs everywhere.

1. `prepare_input`: the image is resized into the network input according to
   `keep_aspect_ratio_mode` (seed's inference spec):
   - "pad_image_input" (strict): scaled to fit inside `input_shape` keeping its aspect ratio and
     padded at the right/bottom to exactly `input_shape` (what a fixed-shape engine needs);
   - "adjust_network_input": the network height is `input_shape[0]`, its width follows the
     image's aspect ratio, rounded up to a multiple of the stride (fully convolutional network);
   - None: plain resize to `input_shape` (aspect ratio lost).
   Multi-scale inference runs the same at each of `scales` times that size.
2. `infer_maps`: each stage output is upsampled by `output_upsampling_factor` (cubic), cropped to
   the image content, resized to the original image and averaged over scales, so peaks and PAFs
   are in original image pixels (OpenCV centres; cv2.resize's half-pixel alignment matches the
   stride convention of ros2_pose.codecs.heatmaps). With one scale and upsampled maps of the
   image's size (e.g. 640x480 into 480x640 at factor 8), `UpsampledMaps` gives the same values
   computed only where peaks and limbs are read (`estimate_people` takes that path).
3. `find_peaks`: non-maximum suppression by a max-pool window and `heatmap_threshold`, sub-pixel
   refinement by a parabola through the log values (exact for a Gaussian).
4. `group_people` / `assemble_people`: each limb's candidate pairs are scored by the PAF line
   integral (OpenPose: mean projection plus a penalty for limbs longer than half the image, at
   least `paf_min_fraction` of the samples above `paf_threshold`), matched greedily as a bipartite
   assignment (best score first, every joint used once per limb), and the limbs are assembled
   into people along the skeleton tree; limbs that close a cycle (BodyPose-18's ear-shoulder
   pairs) only add to people, never start one.
5. Output: people in COCO-17 order and the COCO results format (`detection.json`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from scipy import ndimage

from ros2_pose.codecs.paf import sample_fractions, stacked_line_integral_scores
from ros2_pose.sim.skeleton import BODYPOSE18_KEYPOINTS, BODYPOSE18_LIMBS, bodypose18_to_coco17

ASPECT_RATIO_MODES = ("pad_image_input", "adjust_network_input", None)
# The seed's dataloader normalisation: (data / image_scale) - image_offset.
IMAGE_SCALE = 256.0
IMAGE_OFFSET = 0.5


class BodyPoseConfigError(ValueError):
    """An inference setting out of range or of the wrong form."""


@dataclass
class BodyPoseInferenceConfig:
    """The seed's inference spec plus the grouping constants (OpenPose's defaults)."""

    input_shape: tuple[int, int] = (368, 368)            # network height, width
    keep_aspect_ratio_mode: str | None = "adjust_network_input"
    output_stage_to_use: int | None = None                # 1-based; None: the last stage
    output_upsampling_factor: tuple[int, int] = (8, 8)
    heatmap_threshold: float = 0.1
    paf_threshold: float = 0.05
    multi_scale_inference: bool = False
    scales: Sequence[float] = (0.5, 1.0, 1.5, 2.0)
    stride: int = 8
    peak_window: int = 3                                  # max-pool NMS window (odd, cells)
    paf_num_samples: int = 10
    paf_min_fraction: float = 0.8
    min_parts: int = 3                                    # fewer joints: not a person
    min_mean_score: float = 0.2                           # mean joint+limb score of a person
    limbs: Sequence[Sequence[int]] = field(default_factory=lambda: BODYPOSE18_LIMBS)

    def __post_init__(self):
        self.input_shape = tuple(int(v) for v in self.input_shape)
        self.output_upsampling_factor = tuple(int(v) for v in self.output_upsampling_factor)
        if self.keep_aspect_ratio_mode not in ASPECT_RATIO_MODES:
            raise BodyPoseConfigError(f"keep_aspect_ratio_mode must be one of {ASPECT_RATIO_MODES}, "
                                      f"got {self.keep_aspect_ratio_mode!r}")
        if len(self.input_shape) != 2 or min(self.input_shape) < self.stride:
            raise BodyPoseConfigError(f"input_shape must be [height, width] of at least the stride {self.stride}, "
                                      f"got {self.input_shape}")
        if any(v % self.stride for v in self.input_shape):
            raise BodyPoseConfigError(f"input_shape {self.input_shape} must be multiples of the stride {self.stride}")
        if len(self.output_upsampling_factor) != 2 or min(self.output_upsampling_factor) < 1:
            raise BodyPoseConfigError(f"output_upsampling_factor must be two positive ints, got "
                                      f"{self.output_upsampling_factor}")
        if not 0 <= self.heatmap_threshold < 1 or not 0 <= self.paf_threshold < 1:
            raise BodyPoseConfigError(f"thresholds must be in [0, 1): heatmap {self.heatmap_threshold}, "
                                      f"paf {self.paf_threshold}")
        if self.multi_scale_inference and (not self.scales or min(self.scales) <= 0):
            raise BodyPoseConfigError(f"scales must be positive numbers, got {list(self.scales)}")
        if self.peak_window < 1 or self.peak_window % 2 == 0:
            raise BodyPoseConfigError(f"peak_window must be an odd number of cells, got {self.peak_window}")
        if self.output_stage_to_use is not None and self.output_stage_to_use < 1:
            raise BodyPoseConfigError(f"output_stage_to_use is 1-based or null, got {self.output_stage_to_use}")

    @classmethod
    def from_dict(cls, data: dict) -> "BodyPoseInferenceConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"model_path", "train_spec"})
        if unknown:
            raise BodyPoseConfigError(f"unknown inference settings {unknown} (known: {sorted(known)})")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class InputTransform:
    """How an image was placed in the network input: content scaled by (sx, sy) from the top-left,
    occupying content_width x content_height of the net_width x net_height input."""

    sx: float
    sy: float
    content_width: int
    content_height: int
    net_width: int
    net_height: int


@dataclass
class Person:
    """One detected person: (18, 3) BodyPose-18 [x, y, confidence] in image pixels (0, 0, 0 where
    the joint was not found), the summed score and the number of joints found."""

    keypoints18: np.ndarray
    total_score: float
    num_parts: int

    @property
    def score(self) -> float:
        """Mean of the joint and limb confidences that make up the person."""
        return self.total_score / max(self.num_parts, 1)

    def box(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) around the joints found (a person has at least one)."""
        found = self.keypoints18[self.keypoints18[:, 2] > 0, :2]
        if len(found) == 0:
            raise BodyPoseConfigError("a person without any joint has no box")
        (x_min, y_min), (x_max, y_max) = found.min(axis=0), found.max(axis=0)
        return float(x_min), float(y_min), float(x_max), float(y_max)

    def coco_keypoints(self) -> np.ndarray:
        """(17, 3) [x, y, v] in COCO order, v = 2 for found joints, 0 otherwise."""
        kp = bodypose18_to_coco17(self.keypoints18)
        found = kp[:, 2] > 0
        kp[:, 2] = np.where(found, 2.0, 0.0)
        kp[~found, :2] = 0.0
        return kp


def normalize_image(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32 (rgb / 256 - 0.5), the seed's normalisation_params."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BodyPoseConfigError(f"images must be HxWx3 RGB, got shape {rgb.shape}")
    return (rgb.astype(np.float32) / IMAGE_SCALE - IMAGE_OFFSET).transpose(2, 0, 1).copy()


def network_input_size(image_hw: tuple[int, int], config: BodyPoseInferenceConfig,
                       scale: float = 1.0) -> tuple[int, int]:
    """(height, width) of the network input for an image of `image_hw` at `scale`."""
    height, width = image_hw
    if height < 1 or width < 1:
        raise BodyPoseConfigError(f"image size must be positive, got {image_hw}")
    stride = config.stride
    net_h, net_w = config.input_shape

    def multiple(value: float) -> int:
        return max(stride, int(np.ceil(value / stride)) * stride)

    if config.keep_aspect_ratio_mode == "adjust_network_input":
        return multiple(net_h * scale), multiple(net_h * scale * width / height)
    return multiple(net_h * scale), multiple(net_w * scale)


def prepare_input(rgb: np.ndarray, config: BodyPoseInferenceConfig,
                  scale: float = 1.0) -> tuple[np.ndarray, InputTransform]:
    """The image resized (and padded) into the network input at `scale`: uint8 HxWx3 + transform."""
    height, width = rgb.shape[:2]
    net_h, net_w = network_input_size((height, width), config, scale)
    if config.keep_aspect_ratio_mode == "pad_image_input":
        factor = min(net_h / height, net_w / width)
        content_w, content_h = max(1, round(width * factor)), max(1, round(height * factor))
    elif config.keep_aspect_ratio_mode == "adjust_network_input":
        factor = net_h / height
        content_w, content_h = min(net_w, max(1, round(width * factor))), net_h
    else:
        content_w, content_h = net_w, net_h
    resized = cv2.resize(rgb, (content_w, content_h), interpolation=cv2.INTER_AREA if content_w < width
                         else cv2.INTER_CUBIC)
    canvas = np.zeros((net_h, net_w, 3), dtype=rgb.dtype)
    canvas[:content_h, :content_w] = resized
    return canvas, InputTransform(content_w / width, content_h / height, content_w, content_h, net_w, net_h)


_EDGE_CELLS = 2  # the cubic kernel reads 2 cells beyond the grid


def _extrapolated(grids: np.ndarray, cells: int) -> np.ndarray:
    """Every (h, w) map of a (C, h, w) stack with `cells` cells added on every side, extrapolated
    linearly from the two outermost rows / columns. cv2.resize would mirror the border instead
    (REFLECT_101), which turns a joint near the image edge into a second, false peak on the edge;
    the cubic kernel reproduces a linear ramp, so the upsampled map keeps its slope up to the edge."""
    out = np.pad(grids, ((0, 0), (cells, cells), (cells, cells)), mode="edge")
    h, w = grids.shape[1:]
    steps = np.arange(cells, 0, -1, dtype=out.dtype)
    if h >= 2:
        top, below = out[:, cells:cells + 1], out[:, cells + 1:cells + 2]
        out[:, :cells] = top + steps[:, None] * (top - below)
        bottom, above = out[:, cells + h - 1:cells + h], out[:, cells + h - 2:cells + h - 1]
        out[:, cells + h:] = bottom + steps[::-1, None] * (bottom - above)
    if w >= 2:
        left, right_of = out[:, :, cells:cells + 1], out[:, :, cells + 1:cells + 2]
        out[:, :, :cells] = left + steps * (left - right_of)
        right, left_of = out[:, :, cells + w - 1:cells + w], out[:, :, cells + w - 2:cells + w - 1]
        out[:, :, cells + w:] = right + steps[::-1] * (right - left_of)
    return out


def maps_to_image(maps: np.ndarray, transform: InputTransform, image_hw: tuple[int, int],
                  upsampling: tuple[int, int], stride: int) -> np.ndarray:
    """(C, h, w) network output -> (C, H, W) on the original image: upsample, crop the content,
    resize to the image. Channel by channel: each output map is contiguous (the peak search and
    the PAF sampling read one map at a time) and OpenCV resizes one channel faster than 19 or 38."""
    maps = np.asarray(maps, dtype=np.float32)
    fy, fx = upsampling
    # Upsampled maps are at fx/stride of the input resolution; keep the part showing the image.
    crop_w = max(1, round(transform.content_width * fx / stride))
    crop_h = max(1, round(transform.content_height * fy / stride))
    height, width = image_hw
    out = np.empty((maps.shape[0], height, width), np.float32)
    for channel, padded in enumerate(_extrapolated(maps, _EDGE_CELLS)):
        up = cv2.resize(padded, (padded.shape[1] * fx, padded.shape[0] * fy), interpolation=cv2.INTER_CUBIC)
        content = up[_EDGE_CELLS * fy:_EDGE_CELLS * fy + crop_h, _EDGE_CELLS * fx:_EDGE_CELLS * fx + crop_w]
        if content.shape == (height, width):  # e.g. a 640x480 image in a 480x640 input: no second resize
            out[channel] = content
        else:
            out[channel] = cv2.resize(np.ascontiguousarray(content), (width, height), interpolation=cv2.INTER_CUBIC)
    return out


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """(4, ...) weights of OpenCV's bicubic kernel (cv2.resize INTER_CUBIC, a = -0.75) for the taps at
    floor - 1 .. floor + 2 of a sample `t` in [0, 1) past its floor."""
    a = -0.75
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
    return np.stack([w0, w1, w2, 1 - w0 - w1 - w2])


# How far the bicubic interpolant can overshoot its 4x4 taps: value <= max + _CUBIC_OVERSHOOT *
# (max - min). The outer taps' weights are negative, most so half-way (t = 0.5 on both axes).
_HALF_WAY = _cubic_weights(np.array(0.5))
_CUBIC_OVERSHOOT = float(_HALF_WAY[_HALF_WAY > 0].sum() ** 2 + _HALF_WAY[_HALF_WAY < 0].sum() ** 2 - 1)


def _pack_regions(regions: Sequence[np.ndarray], gap: int, max_width: int = 2048) -> tuple[np.ndarray, list]:
    """(atlas, [(x, y) of each region]): the 2-D float32 regions placed on shelves (tallest first,
    rows of at most `max_width` unless one region is wider) with at least `gap` cells of -inf
    around each."""
    order = sorted(range(len(regions)), key=lambda i: -regions[i].shape[0])
    placed: list = [None] * len(regions)
    x = y = shelf_height = 0
    width = gap
    for i in order:
        h, w = regions[i].shape
        if x and x + w + gap > max_width:  # next shelf
            y += shelf_height + gap
            x, shelf_height = 0, 0
        placed[i] = (x + gap, y + gap)
        x += w + gap
        shelf_height = max(shelf_height, h)
        width = max(width, x + gap)
    atlas = np.full((y + shelf_height + 2 * gap, width), -np.inf, np.float32)
    for region, (px, py) in zip(regions, placed):
        atlas[py:py + region.shape[0], px:px + region.shape[1]] = region
    return atlas, placed


class UpsampledMaps:
    """The maps `maps_to_image` would return, computed only where they are read, for the usual
    case where the upsampled network grid already has the image's size (e.g. a 640x480 image in a
    480x640 input at upsampling 8, so no second resize).

    Upsampling all 57 maps to the image and searching the 18 joint maps pixel by pixel was most of
    the post-processing time, yet peaks and limbs occupy a small part of a frame. Here:
    - `peaks`: a bound on the bicubic interpolant (`_CUBIC_OVERSHOOT`) marks the grid cells where
      the upsampled map can exceed the threshold; only those regions (plus the cells the peak
      window and the sub-pixel fit read) are upsampled, with the same OpenCV call on the same taps,
      and searched with `find_peaks`: the same peaks as on the whole upsampled map.
    - `values_at`: PAF values at the line-integral samples, interpolated from the grid with
      OpenCV's bicubic kernel (by hand: cv2.remap samples one map per call, the samples here read
      a different map each), equal to the upsampled map's pixels to float rounding."""

    def __init__(self, grid: np.ndarray, transform: InputTransform, image_hw: tuple[int, int],
                 upsampling: tuple[int, int], stride: int):
        grid = np.asarray(grid, dtype=np.float32)
        if not self.applies(transform, image_hw, upsampling, stride):
            raise BodyPoseConfigError(f"the upsampled maps do not have the image's size {image_hw}: use maps_to_image")
        self.fy, self.fx = upsampling
        self.shape = (grid.shape[0], *image_hw)
        self._padded = _extrapolated(grid, _EDGE_CELLS)

    @staticmethod
    def applies(transform: InputTransform, image_hw: tuple[int, int], upsampling: tuple[int, int],
                stride: int) -> bool:
        """Whether the upsampled content is exactly image-sized (no second resize)."""
        fy, fx = upsampling
        return (round(transform.content_height * fy / stride), round(transform.content_width * fx / stride)) \
            == tuple(image_hw)

    def peaks(self, threshold: float, window: int = 3) -> list[np.ndarray]:
        """`find_peaks` of the upsampled map of every channel (a list of (M, 3) arrays)."""
        reach = max(window // 2, 1)  # how far the peak window and the sub-pixel fit read
        ring = int(np.ceil(reach / min(self.fy, self.fx)))
        height, width = self.shape[1:]
        regions, origins, owners = [], [], []  # owners: (channel, label map, label) of each region
        cells = np.ones((5, 5), np.uint8)  # an output pixel of cell (r, c) reads cells r-2..r+2, c-2..c+2
        inner = (slice(_EDGE_CELLS, -_EDGE_CELLS),) * 2
        for channel, padded in enumerate(self._padded):
            most, least = cv2.dilate(padded, cells), cv2.erode(padded, cells)
            mask = most[inner] + _CUBIC_OVERSHOOT * (most[inner] - least[inner]) > threshold
            if not mask.any():
                continue
            mask = cv2.dilate(mask.astype(np.uint8), np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)) > 0
            labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
            for label, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
                patch = padded[rows.start:rows.stop + 2 * _EDGE_CELLS, cols.start:cols.stop + 2 * _EDGE_CELLS]
                up = cv2.resize(patch, (patch.shape[1] * self.fx, patch.shape[0] * self.fy),
                                interpolation=cv2.INTER_CUBIC)
                top, left = rows.start * self.fy, cols.start * self.fx
                bottom, right = min(rows.stop * self.fy, height), min(cols.stop * self.fx, width)
                regions.append(up[_EDGE_CELLS * self.fy:_EDGE_CELLS * self.fy + bottom - top,
                                  _EDGE_CELLS * self.fx:_EDGE_CELLS * self.fx + right - left])
                origins.append((left, top))
                owners.append((channel, labels, label))
        found = [np.zeros((0, 3)) for _ in self._padded]
        if not regions:
            return found
        # One search over all regions packed into one image, -inf between them (never a peak, never
        # a neighbour's rival, no sub-pixel fit across): per-call overhead, not pixels, dominated
        # when each of 10 people gave every joint map its own small region.
        atlas, placed = _pack_regions(regions, gap=reach)
        owner = np.full(atlas.shape, -1, np.intp)
        for index, (region, (x, y)) in enumerate(zip(regions, placed)):
            owner[y:y + region.shape[0], x:x + region.shape[1]] = index
        peaks = find_peaks(atlas, threshold, window)
        which = owner[np.rint(peaks[:, 1]).astype(np.intp), np.rint(peaks[:, 0]).astype(np.intp)]
        shift = np.asarray(origins, dtype=np.float64)[which] - np.asarray(placed, dtype=np.float64)[which]
        peaks[:, :2] += shift
        for index in np.unique(which):
            channel, labels, label = owners[index]
            own = peaks[which == index]
            # Bounding boxes of two regions of a map may overlap: each keeps the peaks in its own cells.
            cell_rows = np.clip(np.floor(own[:, 1] / self.fy).astype(np.intp), 0, labels.shape[0] - 1)
            cell_cols = np.clip(np.floor(own[:, 0] / self.fx).astype(np.intp), 0, labels.shape[1] - 1)
            found[channel] = np.concatenate([found[channel], own[labels[cell_rows, cell_cols] == label]])
        return [p[np.argsort(-p[:, 2], kind="stable")] for p in found]

    def values_at(self, channels: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(K, N, S) upsampled values of the K channels `channels[i]` ((N, K)) at image pixels
        (`rows[i, s]`, `cols[i, s]`): e.g. both components of each candidate limb's PAF, which share
        the interpolation weights."""
        channels = np.asarray(channels, dtype=np.intp)
        rows, cols = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        if channels.ndim != 2 or len(channels) != len(rows):
            raise BodyPoseConfigError(f"channels must be (N, K) for N = {len(rows)} rows of samples, "
                                      f"got {channels.shape}")
        if rows.size == 0:
            return np.zeros((channels.shape[1], *rows.shape))
        # The grid position of each pixel centre (cv2.resize's half-pixel alignment), in the padded grid.
        src_y = ((rows + 0.5) / self.fy - 0.5 + _EDGE_CELLS).reshape(-1)
        src_x = ((cols + 0.5) / self.fx - 0.5 + _EDGE_CELLS).reshape(-1)
        y0, x0 = np.floor(src_y).astype(np.intp), np.floor(src_x).astype(np.intp)
        wy, wx = _cubic_weights(src_y - y0), _cubic_weights(src_x - x0)  # (4, N * S)
        _, padded_h, padded_w = self._padded.shape
        spatial = (y0 - 1) * padded_w + x0 - 1
        taps = np.arange(4)[:, None, None] * padded_w + np.arange(4)[None, :, None]  # the 4x4 block
        # (N * S, K): where each sample's K channels start in the flat stack
        starts = np.repeat(channels * (padded_h * padded_w), rows.size // len(rows), axis=0)
        flat = self._padded.reshape(-1)
        out = np.empty((starts.shape[1], rows.size))
        for k in range(starts.shape[1]):
            block = flat.take(starts[:, k] + spatial + taps)  # (4, 4, N * S): tap-major, flat passes below
            along_x = block[:, 0] * wx[0] + block[:, 1] * wx[1] + block[:, 2] * wx[2] + block[:, 3] * wx[3]
            out[k] = along_x[0] * wy[0] + along_x[1] * wy[1] + along_x[2] * wy[2] + along_x[3] * wy[3]
        return out.reshape(starts.shape[1], *rows.shape)


Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BodyPoseConfigError(f"images must be HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
    return rgb


def network_maps(predict: Predictor, rgb: np.ndarray, config: BodyPoseInferenceConfig,
                 scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, InputTransform]:
    """The network's own (19, h, w) heatmaps and (38, h, w) PAFs for the image at `scale`, and
    how the image was placed in its input. FloatingPointError if any value is not finite."""
    net_input, transform = prepare_input(_check_rgb(rgb), config, scale)
    heatmaps, pafs = predict(normalize_image(net_input)[None])
    heatmaps, pafs = np.asarray(heatmaps)[0], np.asarray(pafs)[0]
    if not (np.all(np.isfinite(heatmaps)) and np.all(np.isfinite(pafs))):
        raise FloatingPointError("the network produced non-finite heatmaps or PAFs")
    return heatmaps, pafs, transform


def infer_maps(predict: Predictor, rgb: np.ndarray, config: BodyPoseInferenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps (19, H, W), pafs (38, H, W)) on the original image, averaged over scales."""
    rgb = _check_rgb(rgb)
    scales = list(config.scales) if config.multi_scale_inference else [1.0]
    heat_sum = paf_sum = None
    for scale in scales:
        heat, paf = _whole_maps_on_image(*network_maps(predict, rgb, config, scale), rgb.shape[:2], config)
        heat_sum = heat if heat_sum is None else heat_sum + heat
        paf_sum = paf if paf_sum is None else paf_sum + paf
    return heat_sum / len(scales), paf_sum / len(scales)


def _whole_maps_on_image(heatmaps: np.ndarray, pafs: np.ndarray, transform, image_hw,
                         config: BodyPoseInferenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every network map brought to the image (one scale's part of `infer_maps`)."""
    return tuple(maps_to_image(maps, transform, image_hw, config.output_upsampling_factor, config.stride)
                 for maps in (heatmaps, pafs))


def find_peaks(heatmap: np.ndarray, threshold: float, window: int = 3, refine: bool = True) -> np.ndarray:
    """(M, 3) [x, y, value] local maxima of one (H, W) map above `threshold`, strongest first.

    A cell is a peak when it equals the maximum of its `window` x `window` neighbourhood; plateaus
    of equal maxima count once (at their centre). With `refine`, each axis is refined by the vertex
    of the parabola through the log values of the peak and its two neighbours.

    The neighbourhood maximum is OpenCV's dilation (grey-level max filter; its default border
    never wins), which costs less than comparing every above-threshold cell with its neighbours
    when people are large; plateaus are labelled only where two candidates touch."""
    heatmap = np.asarray(heatmap)
    if heatmap.dtype not in (np.float32, np.float64):
        heatmap = heatmap.astype(np.float64)  # float maps are compared in their own precision (no copy)
    if heatmap.ndim != 2:
        raise BodyPoseConfigError(f"find_peaks takes one (H, W) map, got shape {heatmap.shape}")
    heatmap = np.ascontiguousarray(heatmap)
    neighbourhood_max = cv2.dilate(heatmap, np.ones((window, window), np.uint8))
    ys, xs = np.nonzero((heatmap > threshold) & (heatmap >= neighbourhood_max))
    if ys.size == 0:
        return np.zeros((0, 3))
    height, width = heatmap.shape
    candidates = np.zeros((height + 2, width + 2), bool)  # one-cell margin: neighbours never wrap
    candidates[ys + 1, xs + 1] = True
    touching = np.zeros(ys.size, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                touching |= candidates[ys + 1 + dy, xs + 1 + dx]
    if not touching.any():
        centres_y, centres_x = ys.astype(np.float64), xs.astype(np.float64)
    else:  # centre of every plateau (8-connected equal maxima): mean of its cells' coordinates
        labels, count = ndimage.label(candidates[1:-1, 1:-1], structure=np.ones((3, 3)))
        ids = labels[ys, xs] - 1
        sizes = np.bincount(ids, minlength=count)
        centres_y = np.bincount(ids, weights=ys, minlength=count) / sizes
        centres_x = np.bincount(ids, weights=xs, minlength=count) / sizes
    rows, cols = np.rint(centres_y).astype(np.intp), np.rint(centres_x).astype(np.intp)
    x, y = centres_x.astype(np.float64), centres_y.astype(np.float64)
    if refine:  # plateau centres between cells stay where they are
        single = (centres_x == cols) & (centres_y == rows)
        x[single] += _parabola_offsets(heatmap, rows[single], cols[single], axis=1)
        y[single] += _parabola_offsets(heatmap, rows[single], cols[single], axis=0)
    peaks = np.stack([x, y, heatmap[rows, cols].astype(np.float64)], axis=1)
    return peaks[np.argsort(-peaks[:, 2], kind="stable")]


def _parabola_offsets(heatmap: np.ndarray, rows: np.ndarray, cols: np.ndarray, axis: int) -> np.ndarray:
    """Sub-cell offsets along `axis` (1: x, 0: y) of the peaks at (rows, cols): the vertex of the
    parabola through the logs of each peak and its two neighbours, within +-0.5; 0 at the map's
    edge, where a neighbour is not positive, or where the logs do not curve down."""
    index, size = (cols, heatmap.shape[1]) if axis == 1 else (rows, heatmap.shape[0])
    inside = (index > 0) & (index < size - 1)
    step = (0, 1) if axis == 1 else (1, 0)
    r, c = rows[inside], cols[inside]
    values = np.stack([heatmap[r - step[0], c - step[1]], heatmap[r, c], heatmap[r + step[0], c + step[1]]])
    values = values.astype(np.float64)
    offsets = np.zeros(len(rows))
    positive = np.all(values > 0, axis=0)
    left, centre, right = np.log(np.where(positive, values, 1.0))
    curvature = left - 2 * centre + right
    fit = positive & (curvature < 0)
    inner = np.zeros(len(r))
    inner[fit] = np.clip(0.5 * (left[fit] - right[fit]) / curvature[fit], -0.5, 0.5)
    offsets[inside] = inner
    return offsets


def _candidate_scores(projections: np.ndarray, lengths: np.ndarray, config: BodyPoseInferenceConfig,
                      image_height: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, passed) of candidate limbs from their PAF projections (the OpenPose criteria)."""
    # OpenPose's distance prior: limbs longer than half the image are penalised.
    prior = np.minimum(0.5 * image_height / np.maximum(lengths, 1e-9) - 1.0, 0.0)
    scores = projections.mean(axis=1) + prior
    passed = ((projections > config.paf_threshold).mean(axis=1) >= config.paf_min_fraction) & (scores > 0) \
        & (lengths > 1e-9)
    return scores, passed


def _score_candidates(pafs: np.ndarray, limb_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                      config: BodyPoseInferenceConfig) -> tuple[np.ndarray, np.ndarray]:
    """(scores, passed) of candidate limbs of every limb at once (`_candidate_scores` over the
    stacked PAFs). A candidate passes only with at most `allowed` of its samples at or below
    paf_threshold, so one whose `allowed + 1` middle samples all fail is out without the rest:
    most candidates pair joints of different people, and this probe drops them for a fraction of
    the sampling (same result as sampling everything; its scores do not matter once it failed)."""
    count = config.paf_num_samples
    fractions = sample_fractions(count)
    allowed = count - int(np.ceil(config.paf_min_fraction * count - 1e-9))
    scores = np.full(len(limb_ids), -np.inf)
    passed = np.zeros(len(limb_ids), bool)
    survivors = np.arange(len(limb_ids))
    if 0 <= allowed < count - 1:
        probe = np.unique(np.linspace(0, count - 1, allowed + 3)[1:-1].round().astype(int))[:allowed + 1]
        if len(probe) == allowed + 1:
            probed, _ = stacked_line_integral_scores(pafs, limb_ids, starts, ends, fractions=fractions[probe])
            survivors = np.flatnonzero((probed > config.paf_threshold).any(axis=1))
    if survivors.size:
        projections, lengths = stacked_line_integral_scores(pafs, limb_ids[survivors], starts[survivors],
                                                            ends[survivors], count)
        scores[survivors], passed[survivors] = _candidate_scores(projections, lengths, config, pafs.shape[1])
    return scores, passed


def _tree_limbs(limbs: Sequence[Sequence[int]], num_joints: int) -> list[bool]:
    """For each limb, whether it belongs to the spanning tree (True) or closes a cycle (False)."""
    parent = list(range(num_joints))

    def root(j):
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    in_tree = []
    for a, b in limbs:
        ra, rb = root(a), root(b)
        in_tree.append(ra != rb)
        if ra != rb:
            parent[ra] = rb
    return in_tree


def group_people(heatmaps: np.ndarray, pafs: np.ndarray, config: BodyPoseInferenceConfig) -> list[Person]:
    """(J, H, W) joint heatmaps (background excluded) and (2L, H, W) PAFs -> people, best first."""
    heatmaps, pafs = np.asarray(heatmaps), np.asarray(pafs)
    if heatmaps.ndim != 3 or pafs.shape[1:] != heatmaps.shape[1:]:
        raise BodyPoseConfigError(f"PAFs {pafs.shape} and heatmaps {heatmaps.shape} must be (C, H, W) of one size")
    peaks = [find_peaks(heatmaps[j], config.heatmap_threshold, config.peak_window) for j in range(heatmaps.shape[0])]
    return assemble_people(peaks, pafs, config)


def assemble_people(peaks: Sequence[np.ndarray], pafs: np.ndarray | UpsampledMaps,
                    config: BodyPoseInferenceConfig) -> list[Person]:
    """The PAF grouping alone: every joint's (M, 3) peaks (`find_peaks`) and (2L, H, W) PAFs (or
    `UpsampledMaps` of them) -> people, best first (split from `group_people` so that its cost can
    be timed on its own)."""
    if not isinstance(pafs, UpsampledMaps):
        pafs = np.asarray(pafs)
    limbs = [tuple(int(j) for j in limb) for limb in config.limbs]
    num_joints = len(peaks)
    if len(pafs.shape) != 3 or pafs.shape[0] != 2 * len(limbs):
        raise BodyPoseConfigError(f"PAFs {tuple(pafs.shape)} do not match {len(limbs)} limbs")
    if any(max(limb) >= num_joints for limb in limbs):
        raise BodyPoseConfigError(f"limbs name joints beyond the {num_joints} heatmaps")
    counts = np.array([len(p) for p in peaks], dtype=np.intp)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    all_peaks = np.concatenate([p for p in peaks if len(p)] or [np.zeros((0, 3))])
    peak_scores = all_peaks[:, 2].tolist()
    in_tree = _tree_limbs(limbs, num_joints)
    # Every candidate pair of every limb, built and scored at once (per-limb numpy calls were most
    # of the grouping time): candidate k of limb l pairs peak k // nb of joint a with k % nb of b.
    joint_a = np.array([ja for ja, _ in limbs], dtype=np.intp)
    joint_b = np.array([jb for _, jb in limbs], dtype=np.intp)
    na, nb = counts[joint_a], counts[joint_b]
    sizes = na * nb
    limb_ids = np.repeat(np.arange(len(limbs)), sizes)
    within = np.arange(limb_ids.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    global_a = offsets[joint_a][limb_ids] + within // nb[limb_ids]
    global_b = offsets[joint_b][limb_ids] + within % nb[limb_ids]
    scores, passed = _score_candidates(pafs, limb_ids, all_peaks[global_a, :2], all_peaks[global_b, :2], config)
    # Greedy matching per limb in one loop: passing candidates by limb, best score first; each
    # peak used once per limb, at most min(na, nb) matches per limb.
    keep = np.flatnonzero(passed)
    keep = keep[np.lexsort((-scores[keep], limb_ids[keep]))]
    most = np.minimum(na, nb).tolist()
    # Each row: the global peak id of every joint (-1 when absent), then total score, joint count
    # (Python lists: the assembly is scalar work).
    rows: dict[int, list] = {}  # person id -> row, in creation order
    holders: dict[int, list[int]] = {}  # global peak id -> ids of the rows holding it (no scan of every row)
    next_id = 0
    current, used_a, used_b, matched = -1, set(), set(), 0
    for index, ga, gb, score in zip(limb_ids[keep].tolist(), global_a[keep].tolist(), global_b[keep].tolist(),
                                    scores[keep].tolist()):
        if index != current:
            current, used_a, used_b, matched = index, set(), set(), 0
        if matched == most[index] or ga in used_a or gb in used_b:
            continue
        used_a.add(ga)
        used_b.add(gb)
        matched += 1
        ja, jb = limbs[index]
        # A peak belongs to one joint, so the rows holding ga or gb are those with row[ja] == ga or row[jb] == gb.
        found = sorted(set(holders.get(ga, ())) | set(holders.get(gb, ())))
        if len(found) == 1:
            row = rows[found[0]]
            if row[jb] != gb:
                if row[jb] < 0:
                    row[-1] += 1
                    row[-2] += peak_scores[gb] + score
                else:  # a better-scored limb already claimed jb for this person: keep it
                    continue
                row[jb] = gb
                holders.setdefault(gb, []).append(found[0])
        elif len(found) == 2:
            first, second = rows[found[0]], rows[found[1]]
            if not any(x >= 0 and y >= 0 for x, y in zip(first[:-2], second[:-2])):
                # two partial people joined by this limb: merge them
                for joint, peak in enumerate(second[:-2]):
                    if peak >= 0:
                        first[joint] = peak
                        holders[peak] = [found[0] if r == found[1] else r for r in holders[peak]]
                first[-1] += second[-1]
                first[-2] += second[-2] + score
                del rows[found[1]]
            elif first[jb] < 0:
                first[jb] = gb
                first[-1] += 1
                first[-2] += peak_scores[gb] + score
                holders.setdefault(gb, []).append(found[0])
        elif not found and in_tree[index]:
            row = [-1] * num_joints + [peak_scores[ga] + peak_scores[gb] + score, 2]
            row[ja], row[jb] = ga, gb
            rows[next_id] = row
            holders.setdefault(ga, []).append(next_id)
            holders.setdefault(gb, []).append(next_id)
            next_id += 1
    people = []
    for row in rows.values():
        count = int(row[-1])
        if count < config.min_parts or row[-2] / count < config.min_mean_score:
            continue
        keypoints = np.zeros((num_joints, 3))
        for j in range(num_joints):
            if row[j] >= 0:
                keypoints[j] = all_peaks[row[j]]
        people.append(Person(keypoints, float(row[-2]), count))
    return sorted(people, key=lambda p: -p.total_score)


def require_fixed_input(config: BodyPoseInferenceConfig, model_input_hw: tuple[int, int], backend: str) -> None:
    """Fixed-shape backends (an exported ONNX graph, a TensorRT engine) take exactly the network
    input they were exported with: a single scale, and an input size independent of the image
    (pad_image_input, or a plain resize) equal to `model_input_hw`. BodyPoseConfigError otherwise."""
    if config.keep_aspect_ratio_mode == "adjust_network_input":
        raise BodyPoseConfigError(f"the {backend} backend runs a fixed input size: use keep_aspect_ratio_mode "
                                  f"pad_image_input (adjust_network_input changes the width per image)")
    if config.multi_scale_inference:
        raise BodyPoseConfigError(f"multi-scale inference needs the torch backend, not {backend}")
    if tuple(config.input_shape) != tuple(int(v) for v in model_input_hw):
        raise BodyPoseConfigError(f"input_shape {list(config.input_shape)} differs from the {backend} model's input "
                                  f"{list(model_input_hw)}: export the model at that size (bpnet export -d H,W,3)")


def runner_predictor(runner) -> Predictor:
    """A Predictor over a ros2_pose.deploy.runner Runner of a BodyPoseNet model folder (inputs
    `image`, outputs `heatmaps` and `pafs`, the names model.yaml and the ONNX export use)."""
    def predict(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = runner.run({"image": np.ascontiguousarray(batch, dtype=np.float32)})
        return outputs["heatmaps"], outputs["pafs"]
    return predict


def estimate_people(predict: Predictor, rgb: np.ndarray, config: BodyPoseInferenceConfig) -> list[Person]:
    """Everything: image -> network maps (multi-scale when configured) -> people in image pixels.

    With one scale and upsampled maps of the image's size (the usual case), the maps are
    upsampled only where peaks and limbs are read (`UpsampledMaps`: the same people, a fraction of
    the time); otherwise every map is brought to the image first (`infer_maps`)."""
    joints = len(BODYPOSE18_KEYPOINTS)
    if not config.multi_scale_inference:
        heatmaps, pafs, transform = network_maps(predict, rgb, config)
        image_hw = rgb.shape[:2]
        upsampling = config.output_upsampling_factor
        if UpsampledMaps.applies(transform, image_hw, upsampling, config.stride):
            heat = UpsampledMaps(heatmaps[:joints], transform, image_hw, upsampling, config.stride)
            peaks = heat.peaks(config.heatmap_threshold, config.peak_window)
            return assemble_people(peaks, UpsampledMaps(pafs, transform, image_hw, upsampling, config.stride), config)
        heatmaps, pafs = _whole_maps_on_image(heatmaps[:joints], pafs, transform, image_hw, config)
        return group_people(heatmaps, pafs, config)
    heatmaps, pafs = infer_maps(predict, rgb, config)
    return group_people(heatmaps[:joints], pafs, config)


def coco_results(people: Sequence[Person], image_id: int) -> list[dict]:
    """People as COCO keypoint results (what COCOeval.loadRes and detection.json take)."""
    results = []
    for person in people:
        kp = person.coco_keypoints()
        results.append({"image_id": int(image_id), "category_id": 1,
                        "keypoints": [round(float(v), 2) for v in kp.ravel()],
                        "score": round(float(person.score), 5)})
    return results


def write_detections(results: Sequence[dict], path: str | Path) -> Path:
    """detection.json: the COCO results list (one entry per person per image)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(results)))
    return path


def draw_people(rgb: np.ndarray, people: Sequence[Person], limbs: Sequence[Sequence[int]] = BODYPOSE18_LIMBS) -> np.ndarray:
    """A copy of the image with each person's limbs and joints drawn (for --dump_visualizations)."""
    canvas = np.ascontiguousarray(rgb).copy()
    for index, person in enumerate(people):
        hue = int(180 * ((index * 0.618) % 1.0))
        colour = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()
        kp = person.keypoints18
        for a, b in limbs:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                cv2.line(canvas, tuple(int(round(v)) for v in kp[a, :2]), tuple(int(round(v)) for v in kp[b, :2]),
                         colour, 2, cv2.LINE_AA)
        for x, y, c in kp:
            if c > 0:
                cv2.circle(canvas, (int(round(x)), int(round(y))), 3, colour, -1, cv2.LINE_AA)
    return canvas
