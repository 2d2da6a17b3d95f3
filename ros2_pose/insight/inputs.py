"""The dolly pose network's inputs (128x128 crops + normalised boxes) from a bag, a folder of images
or a dataset folder: what `ros2-pose fmaps dump` and `ros2-pose prune --criterion activation` run on.

- dataset folder (`manifest.json`, built by `ros2-pose dataset build dolly`): its `crop` and
  `box_norm` fields (rows with `pose_valid` false are skipped: they hold zeros);
- bag (folder with metadata.yaml, or .mcap/.db3 file): each frame is cropped around the dolly's box,
  from /ground_truth/detections (class `dolly`) or, when a detector model is given, the box the dolly
  pipeline's detector finds (on the undistorted image, like the pipeline);
- folder of images (.png/.jpg/...): each image is taken as already cropped to the dolly and
  letterboxed to 128x128 (black bars), its box being the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.codecs.dolly_pose import CROP_SIZE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
BAG_SUFFIXES = (".mcap", ".db3")


class InputSourceError(ValueError):
    """An input path that is none of the known kinds, or one that yields no crops."""


@dataclass
class InputSet:
    crops: np.ndarray                   # N x 128 x 128 x 3 uint8 RGB
    boxes: np.ndarray                   # N x 4 float32, RoiCrop.normalized_box
    kind: str                           # "dataset" | "bag" | "images"
    source: str
    details: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.crops)


def source_kind(path: Path) -> str:
    if path.is_dir() and (path / "manifest.json").is_file():
        return "dataset"
    if (path.is_file() and path.suffix in BAG_SUFFIXES) or (path.is_dir() and (path / "metadata.yaml").is_file()):
        return "bag"
    if path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
        return "images"
    raise InputSourceError(f"{path}: expected a dataset folder (manifest.json), a bag (metadata.yaml or "
                           f"{'/'.join(BAG_SUFFIXES)}) or a folder of {'/'.join(IMAGE_SUFFIXES)} images")


def load_inputs(path: str | Path, max_items: int | None = None, split: str = "all",
                detector=None, class_id: str = "dolly", min_score: float = 0.5) -> InputSet:
    """Crops and boxes from `path` (see the module doc). `detector`: a runner (or model folder / name
    for ros2_pose.deploy.runner.create_runner) used for bags instead of the ground-truth boxes; frames
    where its best box scores below `min_score` are skipped (the pipeline's score threshold)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    kind = source_kind(path)
    if kind == "dataset":
        result = _from_dataset(path, max_items, split)
    elif kind == "bag":
        result = _from_bag(path, max_items, detector, class_id, min_score)
    else:
        result = _from_images(path, max_items)
    if len(result) == 0:
        raise InputSourceError(f"{path}: no crops could be taken ({result.details})")
    return result


def _from_dataset(folder: Path, max_items: int | None, split: str) -> InputSet:
    from ros2_pose.data.dataset import ArrayDataset, DatasetError

    dataset = ArrayDataset(folder, split)
    missing = [f for f in ("crop", "box_norm") if f not in dataset.fields]
    if missing:
        raise DatasetError(f"{folder}: a {dataset.task!r} dataset without field(s) {missing}; "
                           f"feature maps need a dolly dataset (crop, box_norm)")
    rows = dataset.indices
    if "pose_valid" in dataset.arrays:
        rows = rows[np.asarray(dataset.arrays["pose_valid"][rows], bool)]
    rows = rows[:max_items]
    return InputSet(np.asarray(dataset.arrays["crop"][rows]), np.asarray(dataset.arrays["box_norm"][rows], np.float32),
                    "dataset", str(folder), {"split": split, "rows": [int(r) for r in rows]})


def _from_images(folder: Path, max_items: int | None) -> InputSet:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_items]
    crops, boxes = [], []
    for file in files:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputSourceError(f"{file} is not a readable image")
        height, width = bgr.shape[:2]
        letterbox = RoiCrop.whole_image(width, height, CROP_SIZE)
        crops.append(letterbox.apply(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        boxes.append(letterbox.normalized_box(width, height))
    return InputSet(np.stack(crops), np.stack(boxes).astype(np.float32), "images", str(folder),
                    {"files": [f.name for f in files]})


def _from_bag(bag: Path, max_items: int | None, detector, class_id: str, min_score: float) -> InputSet:
    from ros2_pose.data.builders.frames import BuildOptions, FramePlan

    if detector is not None and not hasattr(detector, "run"):
        from ros2_pose.deploy.runner import create_runner
        detector = create_runner(detector, backend="torch")
    plan = FramePlan.scan([bag], streams=(), options=BuildOptions(gt_source="none"),
                          optional=("detections",))
    crops, boxes, stamps, skipped = [], [], [], 0
    for frame in plan.decoded_frames():
        image, camera = frame.image, frame.camera
        box = None
        if detector is not None:
            from ros2_pose.pipelines.dolly import DollyPipeline
            image, camera = camera.pinhole_view(image)
            box, score = DollyPipeline(detector, pose=None).detect(image)
            if score < min_score:
                box = None
        else:
            detections = frame.plan.light.get("detections")
            for d in (detections.detections if detections is not None else []):
                if d.class_id == class_id:
                    box = np.array([d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max], np.float64)
                    break
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            skipped += 1
            continue
        crop = RoiCrop.from_box(box, size=CROP_SIZE)
        crops.append(crop.apply(image))
        boxes.append(crop.normalized_box(image.shape[1], image.shape[0]))
        stamps.append(int(frame.stamp_ns))
        if max_items is not None and len(crops) >= max_items:
            break
    if not crops:
        where = f"the detector found none scoring >= {min_score:g}" if detector is not None else \
            f"no /ground_truth/detections box of class {class_id!r} (pass a detector model instead)"
        raise InputSourceError(f"bag {bag}: no dolly box in {skipped} frame(s): {where}")
    return InputSet(np.stack(crops), np.stack(boxes).astype(np.float32), "bag", str(bag),
                    {"boxes_from": "detector" if detector is not None else "/ground_truth/detections",
                     "frames_without_box": skipped, "stamps_ns": stamps})
