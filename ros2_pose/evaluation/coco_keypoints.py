"""COCO keypoint metrics (OKS AP/AR) of detections against a COCO person-keypoints file, with
pycocotools' COCOeval (the reference implementation; its numbers are comparable with published ones).

Detections are COCO results: [{"image_id", "category_id": 1, "keypoints": [x, y, v] * 17, "score"}],
as ros2_pose.pipelines.body_pose.coco_results writes them (detection.json).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Sequence

STAT_NAMES = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")


class CocoEvaluationError(ValueError):
    """Ground truth or detections that COCOeval cannot score."""


def _load_ground_truth(ground_truth):
    from pycocotools.coco import COCO

    if isinstance(ground_truth, COCO):
        return ground_truth
    data = ground_truth
    if isinstance(ground_truth, (str, Path)):
        path = Path(ground_truth)
        if not path.is_file():
            raise CocoEvaluationError(f"no ground-truth annotation file {path}")
        data = json.loads(path.read_text())
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise CocoEvaluationError("ground truth must be a COCO dict with images, annotations and categories")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def evaluate_keypoints(ground_truth, detections: Sequence[dict], image_ids: Sequence[int] | None = None,
                       verbose: bool = False) -> dict[str, float]:
    """{AP, AP50, AP75, AP_medium, AP_large, AR, ...} of `detections` on `ground_truth` (a COCO
    object, a COCO dict or the JSON path), over `image_ids` (default: every ground-truth image)."""
    from pycocotools.cocoeval import COCOeval

    coco = _load_ground_truth(ground_truth)
    detections = list(detections)
    known = set(coco.getImgIds())
    for det in detections:
        if det.get("image_id") not in known:
            raise CocoEvaluationError(f"detection for image_id {det.get('image_id')} which the ground truth lacks")
        if len(det.get("keypoints", ())) != 51 or "score" not in det:
            raise CocoEvaluationError("each detection needs 51 keypoint values ([x, y, v] * 17) and a score")
    stats = dict.fromkeys(STAT_NAMES, 0.0)
    if not detections:
        return stats  # nothing detected: every precision and recall is 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = coco.loadRes(detections)
        evaluator = COCOeval(coco, results, "keypoints")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    if verbose:
        print(out.getvalue())
    # COCOeval reports -1 where an area range has no ground truth; kept, so "no data" never reads as 0.
    return {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}
