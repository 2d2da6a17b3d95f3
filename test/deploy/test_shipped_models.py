"""Every shipped model (models/<name>/) is complete, carries a card, and its ONNX file computes what
its PyTorch weights compute (ONNX Runtime against torch on the same random inputs)."""
from pathlib import Path

import numpy as np
import pytest

from ros2_pose.deploy.runner import create_runner
from ros2_pose.resources import package_share

MODELS = sorted(p for p in (package_share() / "models").iterdir() if p.is_dir()) \
    if (package_share() / "models").is_dir() else []


def test_the_product_ships_its_dolly_models():
    names = {p.name for p in MODELS}
    assert {"dolly_detector", "dolly_pose_half"} <= names, names


@pytest.mark.parametrize("folder", MODELS, ids=lambda p: Path(p).name)
def test_shipped_model_is_complete_and_onnx_matches_torch(folder):
    for name in ("model.pt", "model.yaml", "model.onnx", "card.md"):
        assert (folder / name).is_file(), f"{folder.name} lacks {name}"
    torch_runner = create_runner(folder, backend="torch")
    onnx_runner = create_runner(folder, backend="onnxruntime", intra_op_threads=1)
    assert torch_runner.output_names == onnx_runner.output_names
    for batch_seed in (0, 1):
        inputs = {name: np.random.default_rng(batch_seed).uniform(0, 1, value.shape).astype(np.float32)
                  for name, value in torch_runner.example_inputs(seed=batch_seed).items()}
        expected, actual = torch_runner.run(inputs), onnx_runner.run(inputs)
        for name in expected:
            np.testing.assert_allclose(actual[name], expected[name], atol=1e-4, rtol=1e-4, err_msg=name)
