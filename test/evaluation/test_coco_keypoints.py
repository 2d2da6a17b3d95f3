import copy

import numpy as np
import pytest

from ros2_pose.evaluation.coco_keypoints import CocoEvaluationError, evaluate_keypoints
from ros2_pose.sim.coco_export import PERSON_CATEGORY


def _ground_truth():
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id in (1, 2):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 320, "height": 240})
        for k in range(2):
            x0, y0 = 40 + 140 * k, 20
            kp = np.zeros((17, 3))
            kp[:, 0] = x0 + rng.uniform(0, 90, 17)
            kp[:, 1] = y0 + rng.uniform(0, 200, 17)
            kp[:, 2] = 2
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "keypoints": kp.ravel().tolist(), "num_keypoints": 17,
                                "bbox": [x0, y0, 90, 200], "area": 90.0 * 200})
    return {"images": images, "annotations": annotations, "categories": [PERSON_CATEGORY]}


def _as_detections(gt, shift=0.0, rng=None):
    dets = []
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
        if rng is not None:
            kp[:, :2] += rng.normal(0, shift, (17, 2))
        dets.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.9})
    return dets


def test_ground_truth_against_itself_is_perfect_and_perturbed_is_not(tmp_path):
    gt = _ground_truth()
    perfect = evaluate_keypoints(gt, _as_detections(gt))
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AR"] == pytest.approx(1.0)
    perturbed = evaluate_keypoints(copy.deepcopy(gt), _as_detections(gt, shift=8.0, rng=np.random.default_rng(1)))
    assert 0.0 <= perturbed["AP"] < 1.0
    assert evaluate_keypoints(gt, [])["AP"] == 0.0


def test_detections_for_unknown_images_or_short_keypoints_are_refused():
    gt = _ground_truth()
    with pytest.raises(CocoEvaluationError, match="image_id 99"):
        evaluate_keypoints(gt, [{"image_id": 99, "keypoints": [0] * 51, "score": 1}])
    with pytest.raises(CocoEvaluationError, match="51 keypoint values"):
        evaluate_keypoints(gt, [{"image_id": 1, "keypoints": [0] * 34, "score": 1}])
