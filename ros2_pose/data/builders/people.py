"""People datasets are COCO folders (images + person-keypoints JSON), the format pose trainers and
pycocotools read; `ros2_pose.sim.coco_export.coco_from_bag` writes them from bags, so this builder
only checks the bags and hands over (images and skeletons are paired by identical header stamps)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ros2_pose.data.bags import MissingTopicError, bag_info

DEFAULT_OBJECT_FRAME = "person"
REQUIRED_TOPICS = ("/camera/image_raw", "/ground_truth/skeletons")


def build(bags: Sequence[str | Path], out: str | Path, image_format: str = "jpg", segmentation: str = "polygon") -> Path:
    """Write the COCO folder `out`; returns the annotation file's path."""
    from ros2_pose.sim.coco_export import coco_from_bag

    for bag in bags:
        topics = bag_info(bag).topics
        missing = [t for t in REQUIRED_TOPICS if t not in topics]
        if missing:
            raise MissingTopicError(f"bag {bag}: missing topic(s) {missing} for a people dataset; it has {sorted(topics)}",
                                    missing, sorted(topics))
    return coco_from_bag(list(bags), out, image_format=image_format, segmentation=segmentation)
