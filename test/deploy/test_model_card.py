import torch

from ros2_pose.deploy.model_card import render_card, write_card
from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.models.dolly_pose import DollyPoseNet
from ros2_pose.training.dolly import pose_model_config


def test_card_is_built_from_the_model_folder_and_the_measured_numbers(tmp_path):
    torch.manual_seed(0)
    write_model_folder(tmp_path, DollyPoseNet(width=[4, 4, 4, 4]).eval(), pose_model_config({"width": [4, 4, 4, 4]}))
    path = write_card(tmp_path, title="Dolly pose (test)", summary="A tiny network.", camera="pinhole",
                      training={"data": "3 frames", "command": "ros2-pose train dolly ..."},
                      metrics={"held-out": {"ap": 0.5, "samples": 3}}, latency={"onnxruntime median ms": 1.25},
                      notes=["not for use"])
    card = path.read_text()
    assert "input `crop`" in card and "['batch', 3, 128, 128]" in card
    assert "output `rotation_6d`" in card
    assert "## ONNX Runtime vs PyTorch" in card and "passed: True" in card
    assert "| ap | 0.5 |" in card and "| samples | 3 |" in card
    assert "model.onnx" in card and "not for use" in card
    assert render_card(tmp_path, title="t", summary="s", camera="c", training={}).startswith("# t")
