"""Contact sheets: a grid of dataset samples with their labels drawn, to check a dataset by eye.

Per sample, one panel per image field present:
  - `det_image` with `det_box` (dolly detector input);
  - `crop` (or `image`) with the mask (translucent, holes kept: a dolly frame's bars, not its
    wheels), the box, keypoints (filled: visible, ring: occluded) and the object's pose axes
    (x red, y green, z blue, projected with the crop's camera K' = A K);
  - for a whole image with a pixel `box` and `keypoints` (drone): a zoom on the box, because a
    far drone is a few pixels in the overview;
  - a motion sample's frames side by side, then the first frame's depth;
  - a COCO people image (`coco_people_samples`): every person's box, mask outline and skeleton
    (COCO-17 limbs; solid where both ends are visible, dashed where one is occluded).
Labels are drawn after the image is fitted into its tile, so lines stay crisp when tiles are
downscaled. A caption (distance, visible fraction, motion size) sits in the first panel.
OpenCV draws, numpy tiles.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.resources import resolve_inside
from ros2_pose.sim.coco_export import ANNOTATION_FILE as COCO_ANNOTATION_FILE

TILE = 160
PEOPLE_TILE = 288  # people are small in a 640x480 image: a bigger tile keeps limbs readable
AXIS_COLOURS = ((255, 0, 0), (0, 200, 0), (0, 96, 255))
BOX_COLOUR = (255, 255, 0)
MASK_COLOUR = (255, 0, 255)
VISIBLE_KEYPOINT, OCCLUDED_KEYPOINT = (255, 255, 0), (255, 128, 0)
PERSON_COLOURS = ((0, 255, 255), (255, 80, 80), (64, 255, 64), (255, 255, 255), (160, 120, 255), (255, 170, 0))
COCO_IMAGE_DIR = "images"  # where ros2_pose.sim.coco_export writes the images


class CocoFolderError(ValueError):
    """A COCO folder that cannot be shown: missing or malformed annotation file, missing image."""


# ----------------------------------------------------------------------------- tiles and mapping
class _Tile:
    """An image fitted (aspect kept, top-left aligned) into a square tile, with the image -> tile
    mapping. Pixel centres (OpenCV) map as x_tile = (x + 0.5) * scale - 0.5."""

    def __init__(self, image: np.ndarray, size: int = TILE, square: bool = True):
        image = np.ascontiguousarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        h, w = image.shape[:2]
        self.scale = size / max(h, w)
        self.width, self.height = max(1, round(w * self.scale)), max(1, round(h * self.scale))
        interpolation = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image, (self.width, self.height), interpolation=interpolation)
        self.canvas = np.zeros((size, size, 3) if square else (self.height, self.width, 3), np.uint8)
        self.canvas[: self.height, : self.width] = resized

    @property
    def affine(self) -> np.ndarray:
        """3x3 image pixel -> tile pixel."""
        s = self.scale
        return np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])

    def points(self, xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, np.float64) + 0.5) * self.scale - 0.5


def _fit(image: np.ndarray, size: int = TILE) -> np.ndarray:
    return _Tile(image, size).canvas


def _pt(xy) -> tuple[int, int]:
    return int(round(float(np.clip(xy[0], -1e4, 1e4)))), int(round(float(np.clip(xy[1], -1e4, 1e4))))


def _project(K: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    if np.any(points[:, 2] <= 1e-6):
        return None
    uv = (K @ (points / points[:, 2:3]).T).T
    return uv[:, :2]


def draw_axes(image: np.ndarray, K: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
              length: float, thickness: int = 1) -> None:
    """Draw the object frame's axes (in place) by projecting origin + length * unit axes with K."""
    points = translation[None, :] + np.vstack([np.zeros(3), length * rotation.T])
    uv = _project(K, points)
    if uv is None or not np.all(np.isfinite(uv)):
        return
    for k in range(3):
        cv2.line(image, _pt(uv[0]), _pt(uv[k + 1]), AXIS_COLOURS[k], thickness, cv2.LINE_AA)


def _draw_box_xyxy(image: np.ndarray, corners: np.ndarray, colour=BOX_COLOUR) -> None:
    """A box given by its two corners in the image's own pixel-centre coordinates."""
    (x0, y0), (x1, y1) = np.asarray(corners, np.float64).reshape(2, 2)
    cv2.rectangle(image, _pt((x0, y0)), _pt((x1, y1)), colour, 1)


def _draw_keypoints(image: np.ndarray, xy: np.ndarray, visibility: np.ndarray, radius: int = 2) -> None:
    for point, v in zip(xy, visibility):
        if v == 2:
            cv2.circle(image, _pt(point), radius, VISIBLE_KEYPOINT, -1)
        elif v == 1:
            cv2.circle(image, _pt(point), radius + 1, OCCLUDED_KEYPOINT, 1)


def _draw_mask(tile: _Tile, mask: np.ndarray, alpha: float = 0.35) -> None:
    """Translucent fill plus outline; RETR_CCOMP keeps holes (the floor seen between a frame's bars)."""
    mask = cv2.resize(np.asarray(mask, np.uint8), (tile.width, tile.height), interpolation=cv2.INTER_NEAREST)
    region = tile.canvas[: tile.height, : tile.width]
    on = mask > 0
    region[on] = (region[on] * (1 - alpha) + np.array(MASK_COLOUR) * alpha).astype(np.uint8)
    contours, _ = cv2.findContours(on.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(region, contours, -1, MASK_COLOUR, 1)


def _caption(image: np.ndarray, text: str) -> None:
    """Small white text on a dark strip at the panel's bottom left (readable on any background)."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
    (width, height), baseline = cv2.getTextSize(text, font, scale, 1)
    y = image.shape[0] - 1 - baseline
    strip = image[y - height - 2: image.shape[0], : width + 6]
    strip[:] = (strip * 0.3).astype(np.uint8)
    cv2.putText(image, text, (3, y), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _caption_of(sample: dict) -> str:
    parts = []
    if "people" in sample:
        people = sample["people"]
        labelled = sum(int(np.sum(np.asarray(p["keypoints"])[:, 2] > 0) > 0) for p in people)
        parts.append(f"{len(people)} people, {labelled} with keypoints")
    if "relative_poses" in sample and "frame_ids" in sample:
        T = np.asarray(sample["relative_poses"], np.float64)[0]
        angle = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3]) - 1) / 2, -1, 1)))
        ids = np.asarray(sample["frame_ids"]).tolist()
        parts.append(f"frames {ids}: {100 * np.linalg.norm(T[:3, 3]):.1f} cm, {angle:.2f} deg")
    elif "translation" in sample and bool(sample.get("pose_valid", True)):
        parts.append(f"{np.linalg.norm(np.asarray(sample['translation'], np.float64)):.2f} m")
    elif "pose_valid" in sample:
        parts.append("no object")
    if "visible_fraction" in sample and bool(sample.get("pose_valid", True)):
        parts.append(f"vis {float(sample['visible_fraction']):.2f}")
    return "  ".join(parts)


# ----------------------------------------------------------------------------- panels
def _pose(sample: dict):
    if "rotation" in sample and "K" in sample and "translation" in sample and bool(sample.get("pose_valid", True)):
        return (np.asarray(sample["K"], np.float64), np.asarray(sample["rotation"], np.float64),
                np.asarray(sample["translation"], np.float64))
    return None


def _keypoints_of(sample: dict) -> tuple[np.ndarray, np.ndarray] | None:
    if "keypoints" not in sample:
        return None
    xy = np.asarray(sample["keypoints"], np.float64)[:, :2]
    visibility = np.asarray(sample.get("visibility", np.full(len(xy), 2)))
    return xy, visibility


def _main_panel(sample: dict, name: str, axis_length: float) -> np.ndarray:
    tile = _Tile(sample[name])
    if "mask" in sample and np.any(sample["mask"]):
        _draw_mask(tile, sample["mask"])
    if name == "image" and "box" in sample and bool(sample.get("pose_valid", True)):
        _draw_box_xyxy(tile.canvas, tile.points(np.asarray(sample["box"], np.float64).reshape(2, 2)))
    keypoints = _keypoints_of(sample)
    if keypoints is not None:
        _draw_keypoints(tile.canvas, tile.points(keypoints[0]), keypoints[1])
    pose = _pose(sample)
    if pose is not None:
        K, rotation, translation = pose
        if "crop_matrix" in sample:  # the crop's camera: K' = A K with A the image -> crop affine
            K = np.vstack([np.asarray(sample["crop_matrix"], np.float64), [0, 0, 1]]) @ K
        draw_axes(tile.canvas, tile.affine @ K, rotation, translation, axis_length)
    return tile.canvas


def _zoom_panel(sample: dict, axis_length: float, size: int = TILE) -> np.ndarray:
    """The box's neighbourhood (1.6 x its larger side, at least 16 px) magnified to a tile."""
    image = np.ascontiguousarray(sample["image"])
    x0, y0, x1, y1 = np.asarray(sample["box"], np.float64)
    side = max(x1 - x0, y1 - y0, 10.0) * 1.6
    scale = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    A = np.array([[scale, 0, size / 2 - 0.5 - cx * scale], [0, scale, size / 2 - 0.5 - cy * scale], [0, 0, 1]])
    zoom = cv2.warpAffine(image, A[:2], (size, size), flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40))
    if zoom.ndim == 2:
        zoom = np.repeat(zoom[..., None], 3, axis=2)
    pose = _pose(sample)
    if pose is not None:
        draw_axes(zoom, A @ pose[0], pose[1], pose[2], axis_length)
    xy, visibility = _keypoints_of(sample)
    _draw_keypoints(zoom, (A[:2, :2] @ xy.T).T + A[:2, 2], visibility, radius=2)
    cv2.rectangle(zoom, (0, 0), (size - 1, size - 1), BOX_COLOUR, 1)
    return zoom


def _depth_panel(depth: np.ndarray) -> np.ndarray:
    """Depth as a colour map (near red, far blue; black where unknown), scaled to this frame's range."""
    depth = np.asarray(depth, np.float32)
    known = np.isfinite(depth) & (depth > 0)
    scaled = np.zeros(depth.shape, np.uint8)
    if known.any():
        inverse = np.zeros_like(depth)
        inverse[known] = 1.0 / depth[known]
        lo, hi = inverse[known].min(), inverse[known].max()
        scaled[known] = np.clip(255 * (inverse[known] - lo) / max(hi - lo, 1e-9), 0, 255).astype(np.uint8)
    coloured = cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    coloured[~known] = 0
    return _fit(coloured)


def _person_colour(index: int) -> tuple[int, int, int]:
    return PERSON_COLOURS[index % len(PERSON_COLOURS)]


def _dashed_line(image: np.ndarray, a: np.ndarray, b: np.ndarray, colour, dash: float = 4.0) -> None:
    # OpenCV has no dashed line style: draw every other `dash`-pixel piece of the segment.
    length = float(np.hypot(*(b - a)))
    pieces = max(1, int(length // dash))
    for k in range(0, pieces, 2):
        cv2.line(image, _pt(a + (b - a) * k / pieces), _pt(a + (b - a) * min(k + 1, pieces) / pieces),
                 colour, 1)


def _segmentation_mask(segmentation, height: int, width: int) -> np.ndarray | None:
    """A COCO polygon list or RLE as an HxW mask (pycocotools decodes both)."""
    from pycocotools import mask as mask_utils

    if not segmentation:
        return None
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    return mask_utils.decode(rle)


def _people_panel(sample: dict, size: int = PEOPLE_TILE) -> np.ndarray:
    """A COCO image (aspect kept, `size` wide or high) with every person's mask (translucent), box and
    skeleton in the person's colour."""
    image = np.asarray(sample["image"])
    tile = _Tile(image, size, square=False)
    skeleton = sample["skeleton"]
    for p, person in enumerate(sample["people"]):  # masks first, so no fill covers another's limbs
        mask = person.get("mask")
        if mask is not None and mask.any():
            small = cv2.resize(mask.astype(np.uint8), (tile.width, tile.height), interpolation=cv2.INTER_NEAREST) > 0
            tile.canvas[small] = (0.65 * tile.canvas[small] + 0.35 * np.array(_person_colour(p))).astype(np.uint8)
    for p, person in enumerate(sample["people"]):
        colour = _person_colour(p)
        x, y, w, h = np.asarray(person["bbox"], np.float64)
        # COCO boxes are continuous ([i, i+1) per pixel): scale the edges, then shift to pixel centres
        cv2.rectangle(tile.canvas, _pt((x * tile.scale, y * tile.scale)),
                      _pt(((x + w) * tile.scale - 1, (y + h) * tile.scale - 1)), colour, 1)
        keypoints = np.asarray(person["keypoints"], np.float64).reshape(-1, 3)
        xy, visibility = tile.points(keypoints[:, :2]), keypoints[:, 2].astype(int)
        for a, b in skeleton:
            if visibility[a] > 0 and visibility[b] > 0:
                if visibility[a] == 2 and visibility[b] == 2:
                    cv2.line(tile.canvas, _pt(xy[a]), _pt(xy[b]), colour, 2, cv2.LINE_AA)
                else:
                    _dashed_line(tile.canvas, xy[a], xy[b], colour)
        _draw_keypoints(tile.canvas, xy, visibility, radius=2)
    return tile.canvas


def render_sample(sample: dict, axis_length: float = 0.3) -> np.ndarray:
    """The panels of one sample side by side, each TILE x TILE (a people image: PEOPLE_TILE)."""
    if "people" in sample:
        panel = _people_panel(sample)
        _caption(panel, _caption_of(sample))
        return panel
    panels = []
    if "det_image" in sample:
        tile = _Tile(sample["det_image"])
        if bool(sample.get("det_valid", True)):
            box = np.asarray(sample["det_box"], np.float64) * np.array([tile.width, tile.height] * 2) - 0.5
            _draw_box_xyxy(tile.canvas, box)
        panels.append(tile.canvas)
    main_name = next((n for n in ("crop", "image") if n in sample), None)
    if main_name is not None:
        panels.append(_main_panel(sample, main_name, axis_length))
        if (main_name == "image" and "box" in sample and "keypoints" in sample
                and bool(sample.get("pose_valid", True))):
            panels.append(_zoom_panel(sample, axis_length))
    if "frames" in sample:
        frames = np.asarray(sample["frames"])
        panels += [_fit(f) for f in frames]
        if "depths" in sample:
            panels.append(_depth_panel(np.asarray(sample["depths"])[0]))
    if not panels:
        raise ValueError(f"sample has no image field to show (fields: {sorted(sample)})")
    caption = _caption_of(sample)
    if caption:
        _caption(panels[0], caption)
    return np.concatenate(panels, axis=1)


def contact_sheet(samples: Sequence[dict], columns: int | None = None, axis_length: float = 0.3) -> np.ndarray:
    """A grid of rendered samples (RGB uint8), `columns` per row (default: about square)."""
    if not samples:
        raise ValueError("no samples to show")
    tiles = [render_sample(s, axis_length) for s in samples]
    width = max(t.shape[1] for t in tiles)
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((2, 2 + height - t.shape[0]), (2, 2 + width - t.shape[1]), (0, 0)), constant_values=255)
             for t in tiles]
    columns = columns or max(1, int(np.ceil(np.sqrt(len(tiles) * height / width))))
    rows = int(np.ceil(len(tiles) / columns))
    blank = np.full_like(tiles[0], 255)
    tiles += [blank] * (rows * columns - len(tiles))
    return np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)], axis=0)


# ----------------------------------------------------------------------------- COCO people folders
def is_coco_folder(folder: str | Path) -> bool:
    """A COCO person-keypoints folder as `ros2-pose dataset build people` writes it."""
    return (Path(folder) / COCO_ANNOTATION_FILE).is_file()


def coco_people_samples(folder: str | Path, n: int | None = None) -> list[dict]:
    """Samples of a COCO person-keypoints folder (annotations/person_keypoints.json + images/), `n`
    images spread over the file's image list (all if None). Each sample: `image` (RGB), `people`
    (per annotation: `bbox` [x, y, w, h], `keypoints` (17, 3) [x, y, v], `mask` or None) and
    `skeleton` (0-based limb pairs from the person category)."""
    folder = Path(folder)
    path = folder / COCO_ANNOTATION_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CocoFolderError(f"{folder} is not a COCO people folder: {COCO_ANNOTATION_FILE} is missing") from None
    except json.JSONDecodeError as exc:
        raise CocoFolderError(f"{path} is not valid JSON ({exc})") from None
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if missing:
        raise CocoFolderError(f"{path} lacks the COCO list(s) {missing}")
    person = next((c for c in data["categories"] if c.get("name") == "person"), None)
    if person is None or not person.get("keypoints") or not person.get("skeleton"):
        raise CocoFolderError(f"{path} has no 'person' category with keypoints and skeleton")
    count = len(person["keypoints"])
    skeleton = [(int(a) - 1, int(b) - 1) for a, b in person["skeleton"]]  # COCO's skeleton is 1-based
    if any(not (0 <= a < count and 0 <= b < count) for a, b in skeleton):
        raise CocoFolderError(f"{path}: skeleton {person['skeleton']} names keypoints outside 1..{count}")
    images = data["images"]
    if not images:
        raise CocoFolderError(f"{path} lists no images")
    by_image: dict[int, list[dict]] = {}
    for annotation in data["annotations"]:
        if annotation.get("category_id") == person["id"]:
            by_image.setdefault(annotation["image_id"], []).append(annotation)
    picks = range(len(images)) if n is None else np.unique(
        np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int))
    samples = []
    for i in picks:
        info = images[int(i)]
        try:
            image_path = resolve_inside(folder / COCO_IMAGE_DIR, info["file_name"])
        except (KeyError, ValueError) as exc:
            raise CocoFolderError(f"{path}: image {info.get('id')} has no usable file_name ({exc})") from None
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CocoFolderError(f"image {image_path} (image id {info['id']}) is missing or unreadable")
        height, width = bgr.shape[:2]
        people = []
        for annotation in by_image.get(info["id"], []):
            keypoints = np.asarray(annotation.get("keypoints") or np.zeros(3 * count), np.float64)
            if keypoints.size != 3 * count:
                raise CocoFolderError(f"annotation {annotation.get('id')} has {keypoints.size} keypoint values, "
                                      f"expected {3 * count}")
            if len(annotation.get("bbox") or ()) != 4:
                raise CocoFolderError(f"annotation {annotation.get('id')} has no [x, y, w, h] bbox")
            people.append({"bbox": annotation["bbox"], "keypoints": keypoints.reshape(count, 3),
                           "mask": _segmentation_mask(annotation.get("segmentation"), height, width)})
        samples.append({"image": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "people": people, "skeleton": skeleton})
    return samples


def write_png(path, sheet: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"could not write {path} (does its folder exist, and does it end in .png?)")
