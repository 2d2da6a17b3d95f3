"""The BodyPoseNet workflow end to end on tiny data, with the shipped spec files (config/bpnet/):
sim -> people bag -> COCO folder (`dataset build people`) -> `bpnet dataset_convert` -> `bpnet train`
(1 epoch, tiny net) -> `bpnet export` (ONNX) -> `bpnet evaluate` (OKS AP, pycocotools) -> `bpnet
inference` (detection.json + annotated images) -> the bpnet node on the people sample bag, and
`ros2-pose up bpnet`.

The same commands then run unchanged on a COCO-2017-style folder (val2017/, 12-digit file names,
COCO's sparse image ids, annotations/person_keypoints_val2017.json, the extra COCO fields) made from
rendered JPGs: the stand-in for real photographs, read through config/bpnet/coco2017_spec.json.
"""
import json
import shutil

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from ros2_pose.cli.main import main
from ros2_pose.data.bags import iter_messages
from ros2_pose.nodes.bag_player import BagPlayer
from ros2_pose.nodes.bpnet import BodyPoseNode
from ros2_pose.resources import config_file
from ros2_pose.samples import sample_bag
from ros2_pose.sim.writer import render_bag
from ros2_pose_msgs.msg import SkeletonArray

pytestmark = [pytest.mark.slow, pytest.mark.ros]
HEIGHT, WIDTH = 120, 160
FRAMES = 8  # of the people sample bag's 24, through the node


def shipped(name: str) -> dict:
    return yaml.safe_load(config_file(f"bpnet/{name}").read_text())  # JSON is YAML too


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpnet_workflow")
    bag = render_bag("people", 6, root / "bag", seed=11, width=WIDTH, height=HEIGHT, progress=False)
    assert main(["dataset", "build", "people", "--bags", str(bag), "--out", str(root / "train_coco")]) == 0
    shutil.copytree(root / "train_coco", root / "test_coco")  # train = test: only the plumbing is under test
    spec = shipped("dataset_spec.yaml")
    spec["root_directory_path"] = str(root)
    spec["data_filtering_params"].update(min_acceptable_height=16)
    (root / "dataset_spec.yaml").write_text(yaml.safe_dump(spec))
    train = shipped("train_cpu.yaml")
    train.update(data="dataset", num_epoch=1)
    train["model"].update(width=4, stages=2)
    train["dataloader"].update(batch_size=4, image_dims={"height": 64, "width": 64})
    (root / "train.yaml").write_text(yaml.safe_dump(train))
    infer = shipped("infer.yaml")
    # An untrained net finds noise, not people: no bars, so that people (of noise) come out (He
    # initialisation's small output heads keep a 1-epoch tiny net's maps near 0).
    infer.update(model_path="exported", input_shape=[HEIGHT, WIDTH], heatmap_threshold=0.0, paf_threshold=0.0,
                 min_mean_score=0.0)
    (root / "infer.yaml").write_text(yaml.safe_dump(infer))
    assert main(["bpnet", "dataset_convert", "-d", str(root / "dataset_spec.yaml"), "-o", str(root / "dataset"),
                 "-m", "train", "--generate_masks"]) == 0
    assert main(["bpnet", "train", "-e", str(root / "train.yaml"), "-r", str(root / "run"),
                 "--device", "auto"]) == 0  # CUDA where there is one
    assert main(["bpnet", "export", "-m", str(root / "run" / "model"), "-o", str(root / "exported"),
                 "-d", f"{HEIGHT},{WIDTH},3"]) == 0
    return root


def test_training_and_export_write_a_run_and_an_onnx_model(workflow):
    for name in ("run/config.yaml", "run/curves.csv", "run/checkpoint_last.pt", "run/model/model.pt",
                 "exported/model.onnx", "exported/model.yaml", "exported/onnx_parity.json"):
        assert (workflow / name).is_file(), name
    assert yaml.safe_load((workflow / "exported" / "model.yaml").read_text())["inputs"][0]["shape"][2:] == [HEIGHT, WIDTH]


def test_evaluate_reports_oks_ap_with_onnxruntime(workflow):
    assert main(["bpnet", "evaluate", "-i", str(workflow / "infer.yaml"), "-d", str(workflow / "dataset_spec.yaml"),
                 "--backend", "onnxruntime", "-r", str(workflow / "eval")]) == 0
    metrics = json.loads((workflow / "eval" / "results.json").read_text())
    assert 0.0 <= metrics["AP"] <= 1.0 and 0.0 <= metrics["AR"] <= 1.0


def test_inference_on_the_image_folder_writes_detections_and_annotated_images(workflow):
    images = sorted((workflow / "test_coco" / "images").iterdir())
    assert main(["bpnet", "inference", "-i", str(workflow / "infer.yaml"), "--backend", "onnxruntime",
                 "--input_type", "dir", "--input", str(workflow / "test_coco" / "images"),
                 "-r", str(workflow / "inference"), "--dump_visualizations"]) == 0
    detections = json.loads((workflow / "inference" / "detection.json").read_text())
    assert all(len(d["keypoints"]) == 51 and d["file_name"] in {p.name for p in images} for d in detections)
    annotated = sorted(p.name for p in (workflow / "inference" / "images_annotated").iterdir())
    assert annotated == [p.name for p in images]


def test_node_on_the_people_sample_bag_publishes_skeletons_with_the_image_stamps(workflow):
    bag = sample_bag("people")
    image_stamps = [(m.msg.header.stamp.sec, m.msg.header.stamp.nanosec)
                    for m in iter_messages([bag], ["/camera/image_raw"])][:FRAMES]
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    try:
        player = BagPlayer(bags=[str(bag)], topics=["/camera/image_raw", "/camera/camera_info"], context=context)
        # The sample is 640x480: padded into the model's 120x160 input (pad_image_input). Default
        # thresholds: the untrained net then finds nobody, which keeps the 640x480 grouping cheap.
        node = BodyPoseNode(context=context, cli_args=[
            "--ros-args", "-p", f"model:={workflow / 'exported'}", "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info"])
        assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
        listener = rclpy.create_node("bpnet_workflow_listener", context=context)
        received = []
        listener.create_subscription(SkeletonArray, "people/skeletons", received.append, 50)
        for n in (player, node, listener):
            executor.add_node(n)
        images_sent = 0
        while images_sent < FRAMES:
            images_sent += player.step().topic == "/camera/image_raw"
            for _ in range(3):  # let the node take each frame before the next one comes
                executor.spin_once(timeout_sec=0.05)
        for _ in range(200):
            if len(received) >= len(image_stamps):
                break
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        context.try_shutdown()
    # Sensor-data QoS may drop a frame under load; most must arrive, each with its image's stamp.
    assert len(received) >= len(image_stamps) // 2, f"{len(received)} of {len(image_stamps)} frames"
    assert len({(m.header.stamp.sec, m.header.stamp.nanosec) for m in received}) == len(received)
    for message in received:
        assert (message.header.stamp.sec, message.header.stamp.nanosec) in image_stamps
        assert len(message.joint_names) == 17 and len(message.limb_a) == len(message.limb_b) == 19
        assert max(max(message.limb_a), max(message.limb_b)) < 17
        assert all(len(s.keypoints) == 17 for s in message.skeletons)


def test_up_starts_the_bpnet_graph_by_name(workflow, capsys):
    assert main(["up", "bpnet", "--set", f"model={workflow / 'exported'}", "--duration", "1"]) == 0


def make_coco2017_stand_in(workflow):
    """A COCO-2017-shaped folder of our rendered JPGs: what real COCO photographs look like on disk."""
    root = workflow / "coco"
    (root / "val2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    ours = json.loads((workflow / "test_coco" / "annotations" / "person_keypoints.json").read_text())
    ids = {image["id"]: 397133 + 7919 * image["id"] for image in ours["images"]}  # COCO's sparse ids
    images = []
    for image in ours["images"]:
        name = f"{ids[image['id']]:012d}.jpg"
        shutil.copy(workflow / "test_coco" / "images" / image["file_name"], root / "val2017" / name)
        images.append({"license": 4, "file_name": name, "coco_url": f"http://images.cocodataset.org/val2017/{name}",
                       "height": image["height"], "width": image["width"], "date_captured": "2013-11-14 17:02:52",
                       "flickr_url": "", "id": ids[image["id"]]})
    annotations = [dict(a, id=183014 + 11 * k, image_id=ids[a["image_id"]]) for k, a in enumerate(ours["annotations"])]
    data = {"info": {"description": "COCO 2017 Dataset"}, "licenses": [{"id": 4, "name": "CC BY"}],
            "images": images, "annotations": annotations, "categories": ours["categories"]}
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))
    spec = shipped("coco2017_spec.json")  # the seed's spec for real COCO, unchanged but for the root
    spec["root_directory_path"] = str(root)
    spec["data_filtering_params"].update(min_acceptable_height=16, min_acceptable_width=8)
    (workflow / "coco2017_spec.json").write_text(json.dumps(spec))
    return root, set(ids.values())


def test_the_same_commands_run_on_a_coco2017_folder(workflow):
    root, image_ids = make_coco2017_stand_in(workflow)
    spec = str(workflow / "coco2017_spec.json")
    assert main(["bpnet", "dataset_convert", "-d", spec, "-o", str(workflow / "coco_dataset"), "-m", "test",
                 "--check_files"]) == 0
    manifest = json.loads((workflow / "coco_dataset" / "manifest.json").read_text())
    assert manifest["count"] > 0
    assert main(["bpnet", "evaluate", "-i", str(workflow / "infer.yaml"), "-d", spec, "--backend", "onnxruntime",
                 "-r", str(workflow / "coco_eval")]) == 0
    assert 0.0 <= json.loads((workflow / "coco_eval" / "results.json").read_text())["AP"] <= 1.0
    assert main(["bpnet", "inference", "-i", str(workflow / "infer.yaml"), "--backend", "onnxruntime",
                 "--input_type", "json", "--input", str(root / "annotations" / "person_keypoints_val2017.json"),
                 "--image_root_path", str(root / "val2017"), "-r", str(workflow / "coco_inference")]) == 0
    detections = json.loads((workflow / "coco_inference" / "detection.json").read_text())
    assert detections and {d["image_id"] for d in detections} <= image_ids
