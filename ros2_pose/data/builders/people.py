"""People datasets are COCO folders (images + person-keypoints JSON), the format pose trainers and
pycocotools read; `ros2_pose.sim.coco_export.coco_from_bag` writes them from bags, so this builder
only checks the bags and hands over (images and skeletons are paired by identical header stamps)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ros2_pose.data.bags import MissingTopicError, bag_info

DEFAULT_OBJECT_FRAME = "person"
REQUIRED_STREAMS = ("image", "skeletons")


def build(bags: Sequence[str | Path], out: str | Path, image_format: str = "jpg", segmentation: str = "polygon",
          topics: dict[str, str] | None = None) -> Path:
    """Write the COCO folder `out`; returns the annotation file's path. `topics` maps streams to the
    bag's topic names (see ros2_pose.data.builders.frames.TOPICS)."""
    from ros2_pose.data.builders.frames import BuildOptions
    from ros2_pose.sim.coco_export import coco_from_bag

    names = BuildOptions(topics=dict(topics or {}))
    required = [names.topic(s) for s in REQUIRED_STREAMS]
    for bag in bags:
        present = bag_info(bag).topics
        missing = [t for t in required if t not in present]
        if missing:
            raise MissingTopicError(f"bag {bag}: missing topic(s) {missing} for a people dataset; it has {sorted(present)}",
                                    missing, sorted(present))
    return coco_from_bag(list(bags), out, image_format=image_format, segmentation=segmentation,
                         image_topic=names.topic("image"), skeleton_topic=names.topic("skeletons"),
                         segmentation_topic=names.topic("segmentation"))
