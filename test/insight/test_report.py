import json

import numpy as np
import pytest
import torch

from ros2_pose.insight.dump import DumpError, dump_feature_maps, read_index
from ros2_pose.insight.feature_maps import UnknownLayerError, capture_feature_maps
from ros2_pose.insight.inputs import InputSet
from ros2_pose.insight.report import write_report
from ros2_pose.models.dolly_pose import DollyPoseNet

DEAD = [1, 4, 6]


def _model_with_dead_channels() -> DollyPoseNet:
    torch.manual_seed(0)
    model = DollyPoseNet((8, 8, 8, 8), latent_size=16, box_features=8, head_features=16).eval()
    with torch.no_grad():
        # zero filters + BN(beta=0, running mean 0): the ReLU output is exactly 0 whatever the input
        model.encoder[0][0].weight[DEAD] = 0
    return model


def _inputs(seed: int, count: int = 5, scale: float = 1.0) -> InputSet:
    rng = np.random.default_rng(seed)
    crops = (rng.integers(0, 256, (count, 128, 128, 3)) * scale).astype(np.uint8)
    return InputSet(crops, rng.random((count, 4), dtype=np.float32), "images", f"synthetic{seed}")


def test_hooks_capture_exactly_what_the_layer_computes():
    model = _model_with_dead_channels()
    inputs = _inputs(0, count=3)
    maps = capture_feature_maps(model, inputs.crops, inputs.boxes, ["encoder.0", "encoder.1"], batch_size=2)
    x = torch.from_numpy(inputs.crops.transpose(0, 3, 1, 2).copy()).float() / 255
    with torch.no_grad():
        expected = model.encoder[0]((x - model.pixel_mean) / model.pixel_std)
    assert maps["encoder.0"].shape == (3, 8, 64, 64) and maps["encoder.1"].shape == (3, 8, 32, 32)
    np.testing.assert_allclose(maps["encoder.0"], expected.numpy(), atol=1e-6)
    assert not maps["encoder.0"][:, DEAD].any()
    with pytest.raises(UnknownLayerError, match="encoder.9"):
        capture_feature_maps(model, inputs.crops, inputs.boxes, ["encoder.9"])


def test_dump_and_report_name_the_dead_channels_and_compare(tmp_path):
    model = _model_with_dead_channels()
    layers = ["encoder.0", "encoder.1"]
    dump_feature_maps(model, _inputs(1), layers, tmp_path / "dump", name="sim")
    dump_feature_maps(model, _inputs(2, scale=0.5), layers, tmp_path / "dump", name="real")
    index = read_index(tmp_path / "dump")
    assert set(index["sets"]) == {"sim", "real"}
    assert np.load(tmp_path / "dump" / "sim__encoder.0.npy").shape == (5, 8, 64, 64)
    assert np.load(tmp_path / "dump" / "real__input.npy").shape == (5, 128, 128, 3)

    report = write_report(tmp_path / "dump", tmp_path / "report", compare=("sim", "real"))
    for name in ("sim", "real"):
        assert report["sets"][name]["layers"]["encoder.0"]["empty_channels"] == DEAD
        assert f"3 of 8 channels of layer encoder.0 are empty on this data ({name}): channels {DEAD}" in report["findings"]
    # deltas are real - sim, computed from the dumped arrays
    sim = np.load(tmp_path / "dump" / "sim__encoder.1.npy").astype(np.float64)
    real = np.load(tmp_path / "dump" / "real__encoder.1.npy").astype(np.float64)
    delta = report["comparison"]["layers"]["encoder.1"]["delta"]["mean"]
    np.testing.assert_allclose(delta, real.mean(axis=(0, 2, 3)) - sim.mean(axis=(0, 2, 3)), rtol=1e-9, atol=1e-12)
    assert report["comparison"]["layers"]["encoder.0"]["delta"]["mean"][DEAD[0]] == 0.0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "3 of 8 channels of layer encoder.0 are empty on this data" in html
    assert "channels [1, 4, 6]" in html
    for image in ("sim__encoder.0.png", "real__encoder.1.png", "compare__encoder.0.png",
                  "compare__encoder.1__means.png", "sim__inputs.png"):
        assert (tmp_path / "report" / image).stat().st_size > 0
        assert image in html
    assert json.loads((tmp_path / "report" / "report.json").read_text())["comparison"]["a"] == "sim"


def test_report_refuses_unknown_sets_and_folders(tmp_path):
    with pytest.raises(DumpError, match="no index.json"):
        write_report(tmp_path, tmp_path / "out")
    dump_feature_maps(_model_with_dead_channels(), _inputs(0, count=2), ["encoder.0"], tmp_path / "d", name="sim")
    with pytest.raises(DumpError, match="no set 'real'"):
        write_report(tmp_path / "d", tmp_path / "out", compare=("sim", "real"))
    with pytest.raises(DumpError, match="set name"):
        dump_feature_maps(_model_with_dead_channels(), _inputs(0, count=2), ["encoder.0"], tmp_path / "d", name="a/b")
