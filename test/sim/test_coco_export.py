"""COCO person-keypoints export: pycocotools loads it and ground truth scores AP 1.0 against itself."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ros2_pose.sim import coco_export
from ros2_pose.sim.people import PeopleConfig, PeopleTask
from ros2_pose.sim.tasks import frame_rng

W, H = 160, 120


@pytest.fixture(scope="module")
def frames():
    task = PeopleTask(W, H, config=PeopleConfig(unlabelled_fraction=0.25, mesh_detail=8))
    return [task.generate(frame_rng(21, i), i) for i in range(5)]


def _self_eval(gt: COCO, iou_type: str) -> float:
    labelled = [a for a in gt.dataset["annotations"] if a["num_keypoints"] > 0 or iou_type != "keypoints"]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "bbox": a["bbox"],
                "segmentation": a["segmentation"], "score": 1.0} for a in labelled]
    with contextlib.redirect_stdout(io.StringIO()):
        detections = gt.loadRes(results)
        evaluator = COCOeval(gt, detections, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


@pytest.mark.parametrize("segmentation,image_format", [("polygon", "jpg"), ("rle", "png")])
def test_export_loads_in_pycocotools_and_self_eval_is_perfect(frames, tmp_path, segmentation, image_format):
    path = coco_export.export_coco(frames, tmp_path, image_format=image_format, segmentation=segmentation)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
    assert len(gt.getImgIds()) == len(frames)
    assert gt.loadCats(1)[0]["keypoints"][0] == "nose" and len(gt.loadCats(1)[0]["skeleton"]) == 19
    annotations = gt.dataset["annotations"]
    assert len(annotations) == sum(len(f.skeletons) for f in frames)
    assert any(a["num_keypoints"] == 0 for a in annotations)  # the unlabelled people are there
    for image in gt.dataset["images"]:
        assert (tmp_path / "images" / image["file_name"]).is_file() and image["file_name"].endswith(image_format)
    frame_people = [(i + 1, p, area) for i, f in enumerate(frames) for p, area in zip(f.skeletons, f.extra["person_area"])]
    for annotation, (image_id, person, area) in zip(annotations, frame_people):
        assert annotation["image_id"] == image_id
        mask = gt.annToMask(annotation)
        if segmentation == "rle":  # exact: the mask is the person's pixels
            assert mask.sum() == annotation["area"] == area
        kp = np.array(annotation["keypoints"]).reshape(17, 3)
        np.testing.assert_array_equal(kp[:, 2], person.visibility[:17])
        x, y, w, h = annotation["bbox"]
        assert (x, y, x + w - 1, y + h - 1) == tuple(person.box)
    assert _self_eval(gt, "keypoints") == pytest.approx(1.0)
    assert _self_eval(gt, "bbox") == pytest.approx(1.0)
    assert _self_eval(gt, "segm") == pytest.approx(1.0)


def test_bad_inputs_are_refused(tmp_path, frames):
    with pytest.raises(coco_export.CocoExportError, match="image_format"):
        coco_export.CocoWriter(tmp_path, image_format="bmp")
    writer = coco_export.CocoWriter(tmp_path)
    bad = coco_export.PersonRecord(1, (10, 10, 5, 20), np.zeros((17, 3)))
    with pytest.raises(coco_export.CocoExportError, match="box"):
        writer.add(frames[0].rgb, [bad])
    with pytest.raises(coco_export.CocoExportError, match="lack the COCO keypoints"):
        coco_export._coco_keypoints(["nose"], np.zeros((1, 2)), np.zeros(1))


def _write_people_bag(path, frames, segmentation_for=lambda i: True):
    bag_messages = pytest.importorskip("ros2_pose.data.bag_messages")
    from ros2_pose.data.bags import BagWriter

    with BagWriter(path) as writer:
        writer.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/camera/segmentation", "sensor_msgs/msg/Image")
        writer.add_topic("/ground_truth/skeletons", "ros2_pose_msgs/msg/SkeletonArray")
        for i, frame in enumerate(frames):
            stamp = (i + 1) * 33_000_000
            writer.write("/camera/image_raw", bag_messages.image_msg(frame.rgb, "rgb8", stamp, "camera_optical_frame"), stamp)
            if segmentation_for(i):
                writer.write("/camera/segmentation",
                             bag_messages.image_msg(frame.segmentation, "16UC1", stamp, "camera_optical_frame"), stamp)
            writer.write("/ground_truth/skeletons", bag_messages.skeleton_array_msg(
                frame.skeletons, frame.skeleton_joint_names, frame.skeleton_limbs, stamp, "camera_optical_frame"), stamp)
    return path


def test_coco_from_a_people_bag(frames, tmp_path):
    bag = _write_people_bag(tmp_path / "people_bag", frames)
    from_bag = json.loads(coco_export.coco_from_bag(bag, tmp_path / "from_bag", image_format="png",
                                                    segmentation="rle").read_text())
    direct = json.loads(coco_export.export_coco(frames, tmp_path / "direct", image_format="png",
                                                segmentation="rle").read_text())
    assert from_bag["annotations"] == direct["annotations"]
    assert from_bag["images"] == direct["images"]


def test_bags_with_the_same_stamps_keep_all_their_frames(frames, tmp_path):
    # Two sim recordings both start at t = 0: their frames share stamps and must not overwrite
    # each other. The second bag misses its first segmentation image: that frame keeps its people
    # with box-only segmentations.
    first = _write_people_bag(tmp_path / "first", frames)
    second = _write_people_bag(tmp_path / "second", frames, segmentation_for=lambda i: i > 0)
    data = json.loads(coco_export.coco_from_bag([first, second], tmp_path / "both").read_text())
    assert len(data["images"]) == 2 * len(frames)
    assert len({image["file_name"] for image in data["images"]}) == 2 * len(frames)
    people = [len(frame.skeletons) for frame in frames]
    per_image = [sum(a["image_id"] == image["id"] for a in data["annotations"]) for image in data["images"]]
    # Frames are written as they complete; the one without segmentation comes last.
    assert per_image == people + people[1:] + people[:1]
    last = [a for a in data["annotations"] if a["image_id"] == data["images"][-1]["id"]]
    assert last and all(len(a["segmentation"]) == 1 and len(a["segmentation"][0]) == 8 for a in last)


def test_a_bag_without_pairs_is_refused_and_leaves_no_folder(frames, tmp_path):
    bag_messages = pytest.importorskip("ros2_pose.data.bag_messages")
    from ros2_pose.data.bags import BagWriter

    bag = tmp_path / "bag"
    with BagWriter(bag) as writer:  # skeletons stamped 1 ns after their images: nothing pairs
        writer.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/ground_truth/skeletons", "ros2_pose_msgs/msg/SkeletonArray")
        for i, frame in enumerate(frames):
            stamp = (i + 1) * 33_000_000
            writer.write("/camera/image_raw", bag_messages.image_msg(frame.rgb, "rgb8", stamp, "cam"), stamp)
            writer.write("/ground_truth/skeletons", bag_messages.skeleton_array_msg(
                frame.skeletons, frame.skeleton_joint_names, frame.skeleton_limbs, stamp + 1, "cam"), stamp + 1)
    with pytest.raises(coco_export.CocoExportError, match="shares a header stamp"):
        coco_export.coco_from_bag(bag, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(coco_export.CocoExportError):
        coco_export.coco_from_bag(bag, existing)
    assert (existing / "keep.txt").is_file()  # a folder the user gave is not removed
    assert not (existing / "images").exists()
