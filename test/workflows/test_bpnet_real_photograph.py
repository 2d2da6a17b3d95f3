"""Issue 7: the BodyPoseNet commands run unchanged on a COCO-format folder of real photographs.

No COCO download is possible here. The one real photograph of a person on this machine is
matplotlib's sample `grace_hopper.jpg` (a 512x600 portrait, read from the installed package, not
copied into the repository). It is annotated by hand below in COCO's format: head and shoulders
visible, arms and legs out of the frame. The folder is laid out like COCO 2017 and read through the
seed's spec (config/bpnet/coco2017_spec.json), then dataset_convert, evaluate and inference run on
it with the shipped model and ONNX Runtime, as on rendered data. What is checked is that the
commands handle a real photograph end to end; the shipped model's accuracy is in RESULTS.md.
"""
import json
import shutil

import pytest
import yaml
from matplotlib import cbook

from ros2_pose.cli.main import main
from ros2_pose.resources import config_file

pytestmark = pytest.mark.slow
IMAGE_ID = 532481  # a COCO-style sparse id
# COCO-17 order, [x, y, v] in image pixels; v = 2 visible, 1 occluded (the ears, under the hair), 0 not labelled
KEYPOINTS = [262, 235, 2, 318, 195, 2, 222, 195, 2, 366, 222, 1, 160, 222, 1, 420, 395, 2, 95, 400, 2] + [0] * 30
OUTLINE = [15, 599, 15, 385, 150, 335, 160, 120, 200, 40, 350, 40, 370, 120, 360, 335, 500, 380, 511, 599]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_photo")
    (root / "val2017").mkdir()
    (root / "annotations").mkdir()
    name = f"{IMAGE_ID:012d}.jpg"
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), root / "val2017" / name)
    data = {"info": {"description": "one real photograph, COCO 2017 layout"}, "licenses": [],
            "images": [{"id": IMAGE_ID, "file_name": name, "width": 512, "height": 600}],
            "annotations": [{"id": 900100, "image_id": IMAGE_ID, "category_id": 1, "iscrowd": 0,
                             "keypoints": KEYPOINTS, "num_keypoints": sum(v > 0 for v in KEYPOINTS[2::3]),
                             "bbox": [15, 40, 497, 560], "area": 210000.0, "segmentation": [OUTLINE]}],
            "categories": json.loads(config_file("bpnet/coco2017_spec.json").read_text())["categories"]}
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))
    spec = json.loads(config_file("bpnet/coco2017_spec.json").read_text())
    spec["root_directory_path"] = str(root)
    (root / "spec.json").write_text(json.dumps(spec))
    infer = yaml.safe_load(config_file("bpnet/infer.yaml").read_text())
    (root / "infer.yaml").write_text(yaml.safe_dump(infer))  # model_path: bpnet, the shipped model
    return root


def test_convert_evaluate_and_infer_on_a_real_photograph(photo_folder):
    root = photo_folder
    assert main(["bpnet", "dataset_convert", "-d", str(root / "spec.json"), "-o", str(root / "converted"), "-m", "test",
                 "--check_files"]) == 0
    assert json.loads((root / "converted" / "manifest.json").read_text())["count"] >= 1
    assert main(["bpnet", "evaluate", "-i", str(root / "infer.yaml"), "-d", str(root / "spec.json"),
                 "--backend", "onnxruntime", "-r", str(root / "eval")]) == 0
    metrics = json.loads((root / "eval" / "results.json").read_text())
    assert set(metrics) >= {"AP", "AP50", "AR"} and all(-1.0 <= v <= 1.0 for v in metrics.values())
    assert main(["bpnet", "inference", "-i", str(root / "infer.yaml"), "--backend", "onnxruntime",
                 "--input_type", "json", "--input", str(root / "annotations" / "person_keypoints_val2017.json"),
                 "--image_root_path", str(root / "val2017"), "-r", str(root / "inference"),
                 "--dump_visualizations"]) == 0
    detections = json.loads((root / "inference" / "detection.json").read_text())
    assert all(d["image_id"] == IMAGE_ID and len(d["keypoints"]) == 51 for d in detections)
    assert (root / "inference" / "images_annotated" / f"{IMAGE_ID:012d}.jpg").is_file()
