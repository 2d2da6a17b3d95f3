import argparse
import json

import cv2
import numpy as np
import yaml

from ros2_pose.cli import bpnet
from ros2_pose.sim.coco_export import CocoWriter, PersonRecord
from ros2_pose.sim.skeleton import COCO_SKELETON

from body_specs import write_coco_spec


def call(*argv):
    parser = argparse.ArgumentParser()
    bpnet.register(parser)
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def make_coco(root):
    with CocoWriter(root / "coco", image_format="png") as writer:
        for k in range(3):
            rgb = np.full((64, 64, 3), 30, np.uint8)
            kp = np.zeros((17, 3))
            kp[:, 0] = 28 + 3 * k + np.linspace(-10, 10, 17)
            kp[:, 1] = np.linspace(6, 58, 17)
            kp[:, 2] = 2
            for a, b in COCO_SKELETON:
                cv2.line(rgb, tuple(int(v) for v in kp[a - 1, :2]), tuple(int(v) for v in kp[b - 1, :2]), (200, 160, 90), 2)
            writer.add(rgb, [PersonRecord(1, (16 + 3 * k, 4, 40 + 3 * k, 60), kp)])
    return write_coco_spec(root)


def test_bpnet_workflow_convert_train_prune_export_infer_evaluate(tmp_path, capsys):
    spec = make_coco(tmp_path)
    assert call("dataset_convert", "-d", spec, "-o", tmp_path / "data", "-m", "train", "--generate_masks") == 0
    train_spec = {"data": "data", "num_epoch": 1, "model": {"width": 4, "stages": 2},
                  "optimizer": {"learning_rate_schedule": {"base_learning_rate": 0.01, "min_learning_rate": 1e-4}},
                  "dataloader": {"batch_size": 2, "image_dims": {"height": 64, "width": 64}}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_spec))
    assert call("train", "-e", tmp_path / "train.yaml", "-r", tmp_path / "run") == 0
    model = tmp_path / "run" / "model"
    assert call("prune", "-m", model, "-o", tmp_path / "pruned", "-pth", "0.3", "-nf", "2", "-pg", "2") == 0
    report = json.loads((tmp_path / "pruned" / "pruning_report.json").read_text())
    assert report["parameters_after"] <= report["parameters_before"]
    assert call("export", "-m", tmp_path / "pruned", "-o", tmp_path / "exported", "-d", "64,64,3") == 0
    assert (tmp_path / "exported" / "model.onnx").is_file()
    infer_spec = {"model_path": "run/model", "input_shape": [64, 64], "keep_aspect_ratio_mode": "pad_image_input",
                  "heatmap_threshold": 0.05, "paf_threshold": 0.05, "min_parts": 1, "min_mean_score": 0.0}
    (tmp_path / "infer.yaml").write_text(yaml.safe_dump(infer_spec))
    assert call("inference", "-i", tmp_path / "infer.yaml", "--input_type", "dir", "--input", tmp_path / "coco/images",
                "-r", tmp_path / "out", "--dump_visualizations") == 0
    detections = json.loads((tmp_path / "out" / "detection.json").read_text())
    assert all(len(d["keypoints"]) == 51 for d in detections)
    assert len(list((tmp_path / "out" / "images_annotated").iterdir())) == 3
    assert call("inference", "-i", tmp_path / "infer.yaml", "-m", tmp_path / "exported", "--backend", "onnxruntime",
                "--input_type", "json", "--input", tmp_path / "coco/annotations/person_keypoints.json",
                "--image_root_path", tmp_path / "coco/images", "-r", tmp_path / "out_onnx") == 0
    assert call("evaluate", "-i", tmp_path / "infer.yaml", "-d", spec, "-r", tmp_path / "eval") == 0
    metrics = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(metrics) >= {"AP", "AR"} and -1 <= metrics["AP"] <= 1


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    assert call("dataset_convert", "-d", tmp_path / "missing.json", "-o", tmp_path / "d") == 2
    assert "no dataset spec" in capsys.readouterr().err
    (tmp_path / "infer.yaml").write_text(yaml.safe_dump({"keep_aspect_ratio_mode": "stretch"}))
    assert call("inference", "-i", tmp_path / "infer.yaml", "--input_type", "image", "--input", "x.png",
                "-r", tmp_path / "o") == 2
    assert "keep_aspect_ratio_mode" in capsys.readouterr().err


def test_model_paths_in_specs_stay_inside_the_specs_folder(tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "infer.yaml").write_text(yaml.safe_dump({"model_path": "../models/bpnet"}))
    assert call("inference", "-i", specs / "infer.yaml", "--input_type", "image", "--input", "x.png",
                "-r", tmp_path / "o") == 2
    assert "model_path" in (err := capsys.readouterr().err) and "outside" in err
    (specs / "train.yaml").write_text(yaml.safe_dump({"data": "data", "pretrained_weights": "/etc"}))
    assert call("train", "-e", specs / "train.yaml", "-r", tmp_path / "run") == 2
    assert "pretrained_weights" in (err := capsys.readouterr().err) and "outside" in err
