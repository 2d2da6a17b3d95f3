"""`bpnet dataset_convert`: COCO person-keypoints JSON + images -> a training dataset folder.

Driven by the seed's dataset spec (JSON or YAML): `root_directory_path` (relative paths are taken
from the spec file's folder), `train_data` / `test_data` {images_root_dir_path, mask_root_dir_path,
annotation_root_dir_path} below it, `duplicate_data_with_each_person_as_center`, `categories`
(keypoint names + skeleton; keypoints are matched to COCO-17 by name), `visibility_flags`
({value: {name: flag}, mapping: {name: visible|occluded|not_labeled}}) and
`data_filtering_params` (min_acceptable_height/width/kpts, min_acceptable_interperson_dist_ratio).

Output: a ros2_pose dataset folder (ros2_pose.data.dataset, task "bodypose"). Images and
unlabelled-people masks are stored once per image (shared fields `images`, `masks`, padded to the
largest image) and reached through the references `image` / `unlabeled_mask`; each sample holds
`keypoints` (max_people, 17, 3) [x, y, v] in COCO order with v mapped to 2 visible / 1 occluded /
0 not labelled (person of interest first), `num_people`, `center` and `person_height` of the
person of interest, `image_size` (h, w) and the COCO `image_id`. With duplication each image
yields one sample per person passing the filters; otherwise one sample per image (centred on the
image). Unlabelled people (no keypoints, or crowds) become the mask, rasterised by pycocotools
from their polygons or RLE; `generate_masks` also writes them as PNGs into `mask_root_dir_path`.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ros2_pose.data.dataset import DatasetWriter, FieldSpec
from ros2_pose.resources import resolve_inside
from ros2_pose.sim.skeleton import COCO_KEYPOINTS

TASK = "bodypose"
MODES = ("train", "test")
INTERNAL_VISIBILITY = {"visible": 2, "occluded": 1, "not_labeled": 0}


class DatasetSpecError(ValueError):
    """A dataset spec with missing or wrong fields, or data that does not match it."""


@dataclass(frozen=True)
class DataPaths:
    images: Path
    masks: Path
    annotations: Path


@dataclass(frozen=True)
class BodyDatasetSpec:
    dataset: str
    root: Path
    train_data: DataPaths
    test_data: DataPaths
    duplicate_each_person_as_center: bool
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flag_to_internal: dict[int, int]
    min_height: float
    min_width: float
    min_keypoints: int
    min_interperson_dist_ratio: float

    def data(self, mode: str) -> DataPaths:
        if mode not in MODES:
            raise DatasetSpecError(f"mode must be one of {MODES}, got {mode!r}")
        return self.train_data if mode == "train" else self.test_data


def _require(data: dict, key: str, where: str):
    if not isinstance(data, dict) or key not in data:
        raise DatasetSpecError(f"dataset spec {where}: missing `{key}`")
    return data[key]


def load_dataset_spec(path: str | Path) -> BodyDatasetSpec:
    path = Path(path)
    if not path.is_file():
        raise DatasetSpecError(f"no dataset spec {path}")
    spec = yaml.safe_load(path.read_text())  # JSON is YAML too
    root = Path(_require(spec, "root_directory_path", str(path)))
    root = root if root.is_absolute() else (path.parent / root)

    def paths(key):
        section = _require(spec, key, str(path))
        return DataPaths(*(resolve_inside(root, _require(section, field, f"{path}:{key}"))
                           for field in ("images_root_dir_path", "mask_root_dir_path", "annotation_root_dir_path")))

    categories = _require(spec, "categories", str(path))
    person = next((c for c in categories if c.get("name") == "person"), None)
    if person is None:
        raise DatasetSpecError(f"{path}: `categories` has no `person` entry")
    names = tuple(_require(person, "keypoints", f"{path}:categories"))
    missing = [n for n in COCO_KEYPOINTS if n not in names]
    if missing:
        raise DatasetSpecError(f"{path}: person keypoints lack the COCO joints {missing}")
    if "num_joints" in person and int(person["num_joints"]) != len(names):
        raise DatasetSpecError(f"{path}: num_joints {person['num_joints']} but {len(names)} keypoint names")
    skeleton = tuple(tuple(int(i) for i in pair) for pair in person.get("skeleton", ()))
    if any(not 1 <= i <= len(names) for pair in skeleton for i in pair):
        raise DatasetSpecError(f"{path}: skeleton pairs must be 1-based indices into the {len(names)} keypoints")
    flags = _require(spec, "visibility_flags", str(path))
    values, mapping = _require(flags, "value", "visibility_flags"), _require(flags, "mapping", "visibility_flags")
    flag_to_internal = {}
    for name, flag in values.items():
        target = mapping.get(name)
        if target not in INTERNAL_VISIBILITY:
            raise DatasetSpecError(f"{path}: visibility category {name!r} maps to {target!r}; map it to one of "
                                   f"{sorted(INTERNAL_VISIBILITY)}")
        flag_to_internal[int(flag)] = INTERNAL_VISIBILITY[target]
    filtering = spec.get("data_filtering_params", {}) or {}
    return BodyDatasetSpec(
        dataset=str(spec.get("dataset", "coco")), root=root, train_data=paths("train_data"),
        test_data=paths("test_data"),
        duplicate_each_person_as_center=bool(spec.get("duplicate_data_with_each_person_as_center", True)),
        keypoint_names=names, skeleton=skeleton, flag_to_internal=flag_to_internal,
        min_height=float(filtering.get("min_acceptable_height", 32)),
        min_width=float(filtering.get("min_acceptable_width", 32)),
        min_keypoints=int(filtering.get("min_acceptable_kpts", 5)),
        min_interperson_dist_ratio=float(filtering.get("min_acceptable_interperson_dist_ratio", 0.3)))


def _coco17(annotation: dict, spec: BodyDatasetSpec) -> np.ndarray:
    raw = np.asarray(annotation.get("keypoints", []), dtype=np.float64)
    if raw.size != 3 * len(spec.keypoint_names):
        raise DatasetSpecError(f"annotation {annotation.get('id')}: {raw.size} keypoint values, the spec has "
                               f"{len(spec.keypoint_names)} keypoints")
    raw = raw.reshape(-1, 3)
    out = np.zeros((len(COCO_KEYPOINTS), 3))
    for k, name in enumerate(COCO_KEYPOINTS):
        x, y, flag = raw[spec.keypoint_names.index(name)]
        if int(flag) not in spec.flag_to_internal:
            raise DatasetSpecError(f"annotation {annotation.get('id')}: visibility flag {int(flag)} is not in the "
                                   f"spec's visibility_flags {sorted(spec.flag_to_internal)}")
        v = spec.flag_to_internal[int(flag)]
        out[k] = (x, y, v) if v else (0, 0, 0)
    return out


def _persons_of_interest(people: list[np.ndarray], boxes: list, spec: BodyDatasetSpec) -> list[int]:
    """Indices of the people each image is duplicated around: big enough, enough keypoints, and not
    too close to an already chosen one (distance below ratio x that person's box size)."""
    chosen = []
    for i, (kp, box) in enumerate(zip(people, boxes)):
        if box[2] < spec.min_width or box[3] < spec.min_height or np.count_nonzero(kp[:, 2] > 0) < spec.min_keypoints:
            continue
        centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
        close = any(np.hypot(*(centre - np.array([boxes[j][0] + boxes[j][2] / 2, boxes[j][1] + boxes[j][3] / 2])))
                    < spec.min_interperson_dist_ratio * max(boxes[j][2], boxes[j][3]) for j in chosen)
        if not close:
            chosen.append(i)
    return chosen


def convert_body_dataset(spec: BodyDatasetSpec, output: str | Path, mode: str = "train",
                         generate_masks: bool = False, check_files: bool = False, seed: int = 0,
                         val_fraction: float = 0.1, progress=None) -> dict:
    """Write the dataset folder `output`; returns its manifest."""
    from pycocotools.coco import COCO

    paths = spec.data(mode)
    if not paths.annotations.is_file():
        raise DatasetSpecError(f"annotation file {paths.annotations} does not exist")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(paths.annotations))
    image_ids = sorted(coco.getImgIds())
    if not image_ids:
        raise DatasetSpecError(f"{paths.annotations} lists no images")
    infos = coco.loadImgs(image_ids)
    if check_files:
        absent = [info["file_name"] for info in infos if not resolve_inside(paths.images, info["file_name"]).is_file()]
        if absent:
            raise DatasetSpecError(f"{len(absent)} images missing under {paths.images}: {absent[:5]}")
    duplicate = spec.duplicate_each_person_as_center and mode == "train"
    plans = []  # (image ordinal, info, people, boxes, unlabelled annotations, persons of interest)
    for ordinal, info in enumerate(infos):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=info["id"], iscrowd=None))
        labelled = [a for a in annotations if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
        unlabelled = [a for a in annotations if a.get("iscrowd", 0) or a.get("num_keypoints", 0) == 0]
        people = [_coco17(a, spec) for a in labelled]
        boxes = [a["bbox"] for a in labelled]
        interest = _persons_of_interest(people, boxes, spec) if duplicate else [None]
        plans.append((ordinal, info, people, boxes, unlabelled, interest))
    count = sum(len(p[5]) for p in plans)
    if count == 0:
        raise DatasetSpecError(f"no person in {paths.annotations} passes the data_filtering_params "
                               f"(min {spec.min_width}x{spec.min_height} px, {spec.min_keypoints} keypoints)")
    max_h = max(int(info["height"]) for info in infos)
    max_w = max(int(info["width"]) for info in infos)
    max_people = max(1, max(len(p[2]) for p in plans))
    fields = {
        "images": FieldSpec.of(np.uint8, (max_h, max_w, 3), rows=len(infos)),
        "masks": FieldSpec.of(np.uint8, (max_h, max_w), rows=len(infos)),
        "image_index": FieldSpec.of(np.int64, ()), "image_id": FieldSpec.of(np.int64, ()),
        "image_size": FieldSpec.of(np.int32, (2,)), "keypoints": FieldSpec.of(np.float32, (max_people, 17, 3)),
        "num_people": FieldSpec.of(np.int32, ()), "center": FieldSpec.of(np.float32, (2,)),
        "person_height": FieldSpec.of(np.float32, ()),
    }
    references = {"image": {"source": "images", "index": "image_index"},
                  "unlabeled_mask": {"source": "masks", "index": "image_index"}}
    writer = DatasetWriter(output, TASK, fields, count, references=references)
    groups = []
    if generate_masks:
        paths.masks.mkdir(parents=True, exist_ok=True)
    for ordinal, info, people, boxes, unlabelled, interest in plans:
        image_path = resolve_inside(paths.images, info["file_name"])
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetSpecError(f"cannot read image {image_path} (image id {info['id']})")
        height, width = bgr.shape[:2]
        if (height, width) != (int(info["height"]), int(info["width"])):
            raise DatasetSpecError(f"{image_path} is {width}x{height}, the annotations say "
                                   f"{info['width']}x{info['height']}")
        mask = np.zeros((height, width), np.uint8)
        for annotation in unlabelled:
            if annotation.get("segmentation"):
                mask |= coco.annToMask(annotation).astype(np.uint8)
        if generate_masks:
            cv2.imwrite(str(resolve_inside(paths.masks, f"mask_{info['id']:012d}.png")), mask * 255)
        canvas = np.zeros((max_h, max_w, 3), np.uint8)
        canvas[:height, :width] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        writer.write_shared("images", ordinal, canvas)
        padded_mask = np.zeros((max_h, max_w), np.uint8)
        padded_mask[:height, :width] = mask
        writer.write_shared("masks", ordinal, padded_mask)
        for focus in interest:
            order = list(range(len(people)))
            if focus is not None:
                order.remove(focus)
                order.insert(0, focus)
                x, y, w, h = boxes[focus]
                center, person_height = (x + w / 2, y + h / 2), h
            else:
                center, person_height = ((width - 1) / 2, (height - 1) / 2), height
            keypoints = np.zeros((max_people, 17, 3), np.float32)
            for row, index in enumerate(order):
                keypoints[row] = people[index]
            writer.append({"image_index": ordinal, "image_id": int(info["id"]), "image_size": (height, width),
                           "keypoints": keypoints, "num_people": len(people), "center": center,
                           "person_height": person_height})
            groups.append(ordinal)
        if progress:
            progress(ordinal + 1, len(infos))
    fractions = (1 - val_fraction, val_fraction, 0.0) if mode == "train" else (0.0, 0.0, 1.0)
    return writer.finish(parameters={"mode": mode, "dataset": spec.dataset, "annotations": str(paths.annotations),
                                     "duplicate_each_person_as_center": duplicate,
                                     "generate_masks": generate_masks},
                         split_groups=np.asarray(groups), fractions=fractions, seed=seed, guard=0,
                         extra={"keypoint_order": list(COCO_KEYPOINTS)})
