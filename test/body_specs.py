"""The BodyPoseNet dataset spec (TLT's fields) for the small COCO folders the body-pose tests write."""
import json

from ros2_pose.sim.skeleton import COCO_KEYPOINTS, COCO_SKELETON


def write_coco_spec(root, **overrides):
    """root/spec.json describing root/coco (images/, masks/, annotations/person_keypoints.json)."""
    split = {"images_root_dir_path": "images", "mask_root_dir_path": "masks",
             "annotation_root_dir_path": "annotations/person_keypoints.json"}
    spec = {
        "dataset": "coco", "root_directory_path": "coco", "train_data": dict(split), "test_data": dict(split),
        "categories": [{"supercategory": "person", "id": 1, "name": "person", "num_joints": 17,
                        "keypoints": list(COCO_KEYPOINTS), "skeleton": [list(p) for p in COCO_SKELETON]}],
        "visibility_flags": {"value": {"visible": 2, "occluded": 1, "not_labeled": 0},
                             "mapping": {"visible": "visible", "occluded": "occluded", "not_labeled": "not_labeled"}},
        "data_filtering_params": {"min_acceptable_height": 16, "min_acceptable_width": 8, "min_acceptable_kpts": 5},
    }
    spec.update(overrides)
    path = root / "spec.json"
    path.write_text(json.dumps(spec))
    return path
