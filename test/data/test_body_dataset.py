import json

import cv2
import numpy as np
import pytest

from ros2_pose.data.body_dataset import DatasetSpecError, convert_body_dataset, load_dataset_spec
from ros2_pose.data.dataset import ArrayDataset
from ros2_pose.sim.coco_export import CocoWriter, PersonRecord
from ros2_pose.sim.skeleton import COCO_SKELETON

from body_specs import write_coco_spec


def _person_keypoints(cx, top, height, visibility=2):
    kp = np.zeros((17, 3))
    kp[:, 0] = cx + np.linspace(-0.2, 0.2, 17) * height
    kp[:, 1] = top + np.linspace(0.05, 0.95, 17) * height
    kp[:, 2] = visibility
    return kp


def write_coco(root, with_occluded_flag=1):
    rng = np.random.default_rng(0)
    with CocoWriter(root / "coco", image_format="png") as writer:
        for image_index in range(3):
            rgb = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
            people = [PersonRecord(1, (5, 5, 34, 54), _person_keypoints(20, 5, 50)),
                      PersonRecord(2, (45, 5, 74, 54), _person_keypoints(60, 5, 50))]
            people[1].keypoints[3, 2] = with_occluded_flag
            if image_index == 1:  # an unlabelled person (no keypoints) with a mask
                mask = np.zeros((60, 80), bool)
                mask[40:58, 30:40] = True
                people.append(PersonRecord(3, (30, 40, 39, 57), np.zeros((17, 3)), mask))
            if image_index == 2:  # a too-small person: labelled but never a centre
                people.append(PersonRecord(4, (40, 50, 45, 55), _person_keypoints(42, 50, 5)))
            writer.add(rgb, people)
    return root / "coco"


def write_spec(root, **overrides):
    filtering = {"min_acceptable_height": 32, "min_acceptable_width": 16, "min_acceptable_kpts": 5,
                 "min_acceptable_interperson_dist_ratio": 0.3}
    return write_coco_spec(root, **{"duplicate_data_with_each_person_as_center": True,
                                    "data_filtering_params": filtering, **overrides})


def test_convert_duplicates_each_person_as_centre_and_keeps_unlabelled_masks(tmp_path):
    write_coco(tmp_path)
    spec = load_dataset_spec(write_spec(tmp_path))
    manifest = convert_body_dataset(spec, tmp_path / "out", mode="train", generate_masks=True, val_fraction=0.0)
    assert manifest["count"] == 6  # 2 people of interest in each of 3 images (the tiny one is filtered)
    data = ArrayDataset(tmp_path / "out", "all")
    first, second = data[0], data[1]
    assert first["image"].shape == (60, 80, 3) and first["image_size"].tolist() == [60, 80]
    np.testing.assert_allclose(first["center"], (20, 30))
    np.testing.assert_allclose(second["center"], (60, 30))
    np.testing.assert_allclose(second["keypoints"][0, :, 0], first["keypoints"][1, :, 0])  # centre person first
    assert second["keypoints"][0, 3, 2] == 1  # occluded stays occluded
    png = cv2.cvtColor(cv2.imread(str(tmp_path / "coco/images/000001.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(first["image"], png)
    masked = [data[i]["unlabeled_mask"].sum() for i in range(6)]
    assert masked[0] == 0 and masked[2] > 150  # image 2 has the unlabelled person
    assert (tmp_path / "coco/masks/mask_000000000002.png").is_file()
    assert data[4]["num_people"] == 3


def test_mapping_occluded_to_not_labeled_drops_those_keypoints_and_test_mode_does_not_duplicate(tmp_path):
    write_coco(tmp_path)
    flags = {"value": {"visible": 2, "occluded": 1, "not_labeled": 0},
             "mapping": {"visible": "visible", "occluded": "not_labeled", "not_labeled": "not_labeled"}}
    spec = load_dataset_spec(write_spec(tmp_path, visibility_flags=flags))
    convert_body_dataset(spec, tmp_path / "out", mode="test")
    data = ArrayDataset(tmp_path / "out", "test")
    assert len(data) == 3
    assert data[0]["keypoints"][1, 3].tolist() == [0, 0, 0]


def test_bad_specs_are_refused(tmp_path):
    write_coco(tmp_path)
    with pytest.raises(DatasetSpecError, match="missing `train_data`"):
        load_dataset_spec(_without(tmp_path, "train_data"))
    bad_flags = {"value": {"visible": 2}, "mapping": {"visible": "seen"}}
    with pytest.raises(DatasetSpecError, match="maps to 'seen'"):
        load_dataset_spec(write_spec(tmp_path, visibility_flags=bad_flags))
    with pytest.raises(ValueError, match="outside|escape|inside"):
        load_dataset_spec(write_spec(tmp_path, train_data={"images_root_dir_path": "../../etc",
                                                           "mask_root_dir_path": "m",
                                                           "annotation_root_dir_path": "a.json"}))


def _without(root, key):
    path = write_spec(root)
    spec = json.loads(path.read_text())
    del spec[key]
    path.write_text(json.dumps(spec))
    return path
