"""COCO person-keypoints export of people frames (from PeopleTask frames or from people bags).

Writes `<out_dir>/images/<index>.<jpg|png>` and `<out_dir>/annotations/person_keypoints.json` with
`images`, `annotations` (keypoints [x, y, v] * 17, num_keypoints, bbox [x, y, w, h], area,
iscrowd 0, segmentation as polygons (cv2.findContours) or RLE (pycocotools), image_id, id) and
`categories` (person, its 17 keypoints and the 1-based skeleton).

Coordinates: keypoints are pixel indices (OpenCV centres, which is what COCO's keypoints are);
boxes and polygons use COCO's continuous frame in which pixel i covers [i, i+1), so a box over
pixel columns x0..x1 is [x0, ., x1 - x0 + 1, .] and area is the mask's pixel count.
People with no labelled keypoint (num_keypoints 0) keep their box and mask, as in COCO.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from ros2_pose.resources import resolve_inside
from ros2_pose.sim.skeleton import COCO_KEYPOINTS, COCO_SKELETON

ANNOTATION_FILE = "annotations/person_keypoints.json"
IMAGE_FORMATS = ("jpg", "png")
SEGMENTATION_KINDS = ("polygon", "rle")
PERSON_CATEGORY = {
    "id": 1, "name": "person", "supercategory": "person",
    "keypoints": list(COCO_KEYPOINTS), "skeleton": [list(pair) for pair in COCO_SKELETON],
}


class CocoExportError(ValueError):
    """Input that cannot become a valid COCO person-keypoints file."""


@dataclass
class PersonRecord:
    """One person of one image: id, (x_min, y_min, x_max, y_max) box (pixel centres), keypoints
    (17, 3) [x, y, v] in COCO order, and the person's visible-pixel mask (or None: box only)."""

    person_id: int
    box: Sequence[float]
    keypoints: np.ndarray
    mask: np.ndarray | None = None


def _coco_keypoints(joint_names: Sequence[str], xy: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """(17, 3) COCO keypoints picked by name from any joint order (e.g. COCO-17 + neck)."""
    index = {name: i for i, name in enumerate(joint_names)}
    missing = [name for name in COCO_KEYPOINTS if name not in index]
    if missing:
        raise CocoExportError(f"skeleton joints {list(joint_names)} lack the COCO keypoints {missing}")
    out = np.zeros((len(COCO_KEYPOINTS), 3))
    for k, name in enumerate(COCO_KEYPOINTS):
        v = int(visibility[index[name]])
        if v not in (0, 1, 2):
            raise CocoExportError(f"keypoint {name} has visibility {v}; COCO allows 0, 1, 2")
        if v:
            out[k] = (xy[index[name], 0], xy[index[name], 1], v)
    return out


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a mask as COCO polygons (pixel centres + 0.5, COCO's frame)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = contour.reshape(-1, 2).astype(np.float64) + 0.5
        if len(points) < 3:  # a 1-2 pixel blob: its pixel square(s) as the polygon
            x0, y0 = points.min(0) - 0.5
            x1, y1 = points.max(0) + 0.5
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        polygons.append([round(float(c), 2) for c in points.ravel()])
    return polygons


def _annotation(person: PersonRecord, image_id: int, annotation_id: int, segmentation: str) -> dict:
    x0, y0, x1, y1 = (float(c) for c in person.box)
    if not (x1 >= x0 and y1 >= y0 and np.all(np.isfinite([x0, y0, x1, y1]))):
        raise CocoExportError(f"person {person.person_id}: box {person.box} is not (x_min, y_min, x_max, y_max)")
    keypoints = np.asarray(person.keypoints, dtype=np.float64)
    if keypoints.shape != (len(COCO_KEYPOINTS), 3) or not np.all(np.isfinite(keypoints)):
        raise CocoExportError(f"person {person.person_id}: keypoints must be finite (17, 3), got {keypoints.shape}")
    bbox = [x0, y0, x1 - x0 + 1.0, y1 - y0 + 1.0]
    if person.mask is not None and person.mask.any():
        mask = np.asarray(person.mask, bool)
        area = float(mask.sum())
        if segmentation == "rle":
            from pycocotools import mask as mask_utils

            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            seg = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        else:
            seg = _polygons(mask)
    else:  # no mask (e.g. a bag without segmentation): the box as the region
        area = bbox[2] * bbox[3]
        seg = [[x0, y0, x1 + 1, y0, x1 + 1, y1 + 1, x0, y1 + 1]]
    return {
        "id": annotation_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "keypoints": [round(float(c), 3) if i % 3 < 2 else int(c) for i, c in enumerate(keypoints.ravel())],
        "num_keypoints": int(np.count_nonzero(keypoints[:, 2] > 0)),
        "bbox": [round(c, 3) for c in bbox], "area": area, "segmentation": seg,
    }


class CocoWriter:
    """Accumulates images and people, then writes the JSON (use as a context manager or call
    `close`)."""

    def __init__(self, out_dir: str | Path, image_format: str = "jpg", segmentation: str = "polygon",
                 jpeg_quality: int = 95):
        if image_format not in IMAGE_FORMATS:
            raise CocoExportError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        if segmentation not in SEGMENTATION_KINDS:
            raise CocoExportError(f"segmentation must be one of {SEGMENTATION_KINDS}, got {segmentation!r}")
        self.out_dir = Path(out_dir)
        self.image_format, self.segmentation, self.jpeg_quality = image_format, segmentation, jpeg_quality
        (self.out_dir / "images").mkdir(parents=True, exist_ok=True)
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, rgb: np.ndarray, people: Iterable[PersonRecord]) -> int:
        """Writes the image and records its people; returns the image id."""
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise CocoExportError(f"images must be HxWx3 uint8 RGB, got {rgb.dtype} {rgb.shape}")
        image_id = len(self.images) + 1
        name = f"{image_id:06d}.{self.image_format}"
        path = resolve_inside(self.out_dir / "images", name)
        params = [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality] if self.image_format == "jpg" else []
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {path}")
        height, width = rgb.shape[:2]
        self.images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for person in people:
            if person.mask is not None and person.mask.shape != (height, width):
                raise CocoExportError(f"mask {person.mask.shape} does not match the image {height}x{width}")
            self.annotations.append(_annotation(person, image_id, len(self.annotations) + 1, self.segmentation))
        return image_id

    def close(self) -> Path:
        path = self.out_dir / ANNOTATION_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"info": {"description": "ros2_pose synthetic people", "version": "1.0"},
                "licenses": [], "images": self.images, "annotations": self.annotations,
                "categories": [PERSON_CATEGORY]}
        path.write_text(json.dumps(data))
        return path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()


def records_from_frame(frame) -> list[PersonRecord]:
    """People of a PeopleTask SimFrame (skeletons + segmentation) as PersonRecords."""
    if not frame.skeleton_joint_names:
        raise CocoExportError("frame has no skeletons (is it a people frame?)")
    objects = None if frame.segmentation is None else np.asarray(frame.segmentation) // 256
    return [PersonRecord(p.person_id, p.box, _coco_keypoints(frame.skeleton_joint_names, p.xy, p.visibility),
                         None if objects is None else objects == p.person_id)
            for p in frame.skeletons]


def export_coco(frames: Iterable, out_dir: str | Path, image_format: str = "jpg",
                segmentation: str = "polygon") -> Path:
    """Writes a COCO person-keypoints dataset of people SimFrames; returns the JSON's path."""
    with CocoWriter(out_dir, image_format, segmentation) as writer:
        for frame in frames:
            writer.add(frame.rgb, records_from_frame(frame))
    return writer.out_dir / ANNOTATION_FILE


def _stamp(msg) -> tuple[int, int]:
    return int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)


def coco_from_bag(bags: str | Path | Sequence[str | Path], out_dir: str | Path, image_format: str = "jpg",
                  segmentation: str = "polygon", image_topic: str = "/camera/image_raw",
                  skeleton_topic: str = "/ground_truth/skeletons",
                  segmentation_topic: str | None = "/camera/segmentation") -> Path:
    """A COCO dataset from people bags: images and skeletons paired by header stamp; masks from the
    segmentation topic (person_id = object index) when the bag has it, else boxes only.

    Each bag is paired on its own (two recordings can share stamps: both sim runs start at t = 0),
    and a frame is written as soon as its messages are all read, so memory holds the frames still
    waiting for a partner, not the whole bag."""
    from ros2_pose.data.bags import bag_info, iter_messages
    from ros2_pose.images import image_msg_to_array

    paths = [bags] if isinstance(bags, (str, Path)) else list(bags)
    topics = [image_topic, skeleton_topic]
    if segmentation_topic and all(segmentation_topic in bag_info(path).topics for path in paths):
        topics.append(segmentation_topic)  # optional: boxes stand in for masks without it
    counts = {topic: 0 for topic in topics}

    def write_frame(writer: CocoWriter, messages: dict) -> None:
        image_msg, people = messages[image_topic], messages[skeleton_topic]
        rgb = image_msg_to_array(image_msg)
        if image_msg.encoding == "bgr8":
            rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        elif image_msg.encoding != "rgb8":
            raise CocoExportError(f"{image_topic} has encoding {image_msg.encoding}; expected rgb8 or bgr8")
        objects = image_msg_to_array(messages[segmentation_topic]) // 256 if segmentation_topic in messages else None
        names = list(people.joint_names)
        records = []
        for person in people.skeletons:
            xy = np.array([[k.x, k.y] for k in person.keypoints]).reshape(-1, 2)
            visibility = np.array([k.visibility for k in person.keypoints], dtype=np.int64)
            box = (person.box.x_min, person.box.y_min, person.box.x_max, person.box.y_max)
            records.append(PersonRecord(int(person.person_id), box, _coco_keypoints(names, xy, visibility),
                                        None if objects is None else objects == person.person_id))
        writer.add(rgb, records)

    created = not Path(out_dir).exists()
    images_created = not (Path(out_dir) / "images").exists()
    writer = CocoWriter(out_dir, image_format, segmentation)
    try:
        for path in paths:
            waiting: dict[tuple[int, int], dict] = {}
            for message in iter_messages(path, topics):
                counts[message.topic] += 1
                stamp = _stamp(message.msg)
                frame = waiting.setdefault(stamp, {})
                frame[message.topic] = message.msg
                if len(frame) == len(topics):
                    write_frame(writer, waiting.pop(stamp))
            # Frames whose segmentation never came keep their boxes (as in a bag without the topic).
            for stamp in sorted(waiting):
                if image_topic in waiting[stamp] and skeleton_topic in waiting[stamp]:
                    write_frame(writer, waiting[stamp])
        if not writer.images:
            raise CocoExportError(f"no {image_topic} image shares a header stamp with a {skeleton_topic} message "
                                  f"in {[str(p) for p in paths]} ({counts[image_topic]} images, "
                                  f"{counts[skeleton_topic]} skeletons)")
    except BaseException:
        # a failed export leaves nothing that looks like a dataset: what this call created goes
        if created or images_created:
            shutil.rmtree(writer.out_dir if created else writer.out_dir / "images", ignore_errors=True)
        raise
    writer.close()
    return writer.out_dir / ANNOTATION_FILE
