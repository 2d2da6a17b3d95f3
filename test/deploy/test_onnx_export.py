import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ros2_pose.cli.main import main as cli_main
from ros2_pose.deploy.export import PARITY_FILE, check_parity, export_onnx


class TwoHeadNet(torch.nn.Module):
    """A small conv net with two named inputs and a tuple output, defined here to test export alone."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 + 2, 3)

    def forward(self, image, extra):
        features = torch.relu(self.conv(image))
        pooled = features.mean(dim=(2, 3))
        return features, self.fc(torch.cat([pooled, extra], dim=1))


@pytest.fixture()
def two_head_onnx(tmp_path):
    torch.manual_seed(0)
    model = TwoHeadNet().eval()
    inputs = {"image": torch.randn(1, 3, 16, 16), "extra": torch.randn(1, 2)}
    path = export_onnx(model, inputs, tmp_path / "net.onnx", ["features", "logits"])
    return model, path


def test_export_names_inputs_and_outputs_and_checks_model(two_head_onnx):
    _, path = two_head_onnx
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image", "extra"]
    assert [o.name for o in graph.output] == ["features", "logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[1].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_dynamic_batch_runs_in_onnxruntime_and_matches_torch(two_head_onnx):
    model, path = two_head_onnx
    rng = np.random.default_rng(1)
    inputs = {"image": rng.standard_normal((3, 3, 16, 16), dtype=np.float32),
              "extra": rng.standard_normal((3, 2), dtype=np.float32)}
    features, logits = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, inputs)
    assert features.shape == (3, 4, 16, 16) and logits.shape == (3, 3)
    errors = check_parity(model, path, inputs)
    assert set(errors) == {"features", "logits"}
    assert max(errors.values()) < 1e-5


def test_parity_check_detects_a_model_that_differs_from_its_onnx(two_head_onnx):
    model, path = two_head_onnx
    with torch.no_grad():
        model.fc.bias += 0.5  # the ONNX file still holds the old bias
    inputs = {"image": np.zeros((1, 3, 16, 16), np.float32), "extra": np.zeros((1, 2), np.float32)}
    errors = check_parity(model, path, inputs)
    assert errors["logits"] == pytest.approx(0.5, abs=1e-5)
    assert errors["features"] < 1e-6


def test_static_batch_export_fixes_the_batch_axis(tmp_path):
    model = TwoHeadNet().eval()
    path = export_onnx(model, {"image": torch.randn(2, 3, 8, 8), "extra": torch.randn(2, 2)}, tmp_path / "s.onnx",
                       ["features", "logits"], dynamic_batch=False)
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def test_dict_outputs_are_named_by_key_not_by_dict_order(reference_model, tmp_path):
    # TinyReferenceNet returns {"heatmaps", "pose"}; ask for the other order.
    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model
    spec = ModelSpec.from_folder(reference_model)
    model = build_torch_model(spec.load_config(), spec.weights)
    path = export_onnx(model, {"image": torch.randn(1, 3, 64, 64)}, tmp_path / "r.onnx", ["pose", "heatmaps"])
    pose, heatmaps = ort.InferenceSession(str(path)).run(None, {"image": np.zeros((1, 3, 64, 64), np.float32)})
    assert pose.shape == (1, 6) and heatmaps.shape == (1, 4, 16, 16)


def test_export_cli_reexports_a_model_folder_and_records_parity(reference_model, tmp_path, capsys):
    out = tmp_path / "re.onnx"
    assert cli_main(["export", "--model", str(reference_model), "--out", str(out)]) == 0
    assert "parity ok" in capsys.readouterr().out
    record = json.loads((tmp_path / PARITY_FILE).read_text())
    assert record["passed"] and record["checked_batches"] == [1, 2]
    assert set(record["parity_max_abs_error"]) == {"heatmaps", "pose"}
    assert max(record["parity_max_abs_error"].values()) < 1e-4


def test_export_cli_fails_clearly_for_a_missing_model(tmp_path, capsys):
    assert cli_main(["export", "--model", str(tmp_path)]) == 2
    assert "model.yaml" in capsys.readouterr().err
