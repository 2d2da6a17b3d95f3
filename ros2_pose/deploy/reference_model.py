"""The runner's reference model folder: TinyReferenceNet with seeded weights, written like a shipped
model (model.pt, model.yaml, model.onnx). Benchmarks and tests use it when no trained model is
given, so the deployment path can be exercised without any shipped artefact."""
from __future__ import annotations

from pathlib import Path

from ros2_pose.deploy.model_spec import ModelConfig, parse_model_config, write_model_folder

ARCHITECTURE = "ros2_pose.models.tiny_reference:TinyReferenceNet"


def reference_model_config(image_size: int = 64, width: int = 8, num_keypoints: int = 4) -> ModelConfig:
    return parse_model_config({
        "architecture": ARCHITECTURE,
        "kwargs": {"in_channels": 3, "width": width, "num_keypoints": num_keypoints},
        "inputs": [{"name": "image", "shape": ["batch", 3, image_size, image_size]}],
        "outputs": [{"name": "heatmaps", "shape": ["batch", num_keypoints, image_size // 4, image_size // 4]},
                    {"name": "pose", "shape": ["batch", 6]}],
    }, source="reference model")


def write_reference_model(folder: str | Path, image_size: int = 64, width: int = 8, num_keypoints: int = 4,
                          seed: int = 0, export: bool = True) -> Path:
    import torch

    from ros2_pose.models.tiny_reference import TinyReferenceNet

    torch.manual_seed(seed)
    model = TinyReferenceNet(in_channels=3, width=width, num_keypoints=num_keypoints)
    # Non-trivial BatchNorm statistics, so a wrong eval/train mode shows up as a parity error.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    write_model_folder(folder, model.eval(), reference_model_config(image_size, width, num_keypoints), export=export)
    return Path(folder)
