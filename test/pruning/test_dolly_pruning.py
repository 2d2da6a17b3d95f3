import numpy as np
import pytest
import torch

from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model, parse_model_config, write_model_folder
from ros2_pose.models.dolly_pose import DollyPoseNet
from ros2_pose.pruning.dolly import PRUNABLE_LAYERS, prune_dolly, retrain_model_section
from ros2_pose.pruning.filter_pruning import PruningError, PruningOptions

LOOSE = dict(granularity=1, min_filters=1)


def _kill(model, layer, channels):
    """Zero the conv filters (BN stays beta 0, running mean 0): the block outputs exactly 0 there."""
    block = model.get_submodule(layer)
    conv = block[0] if layer.startswith("encoder") else block[1]
    with torch.no_grad():
        conv.weight[channels] = 0


def _planted_model() -> DollyPoseNet:
    torch.manual_seed(0)
    model = DollyPoseNet((8, 8, 8, 8), latent_size=16, box_features=8, head_features=16).eval()
    with torch.no_grad():   # non-trivial BN statistics on the channels that stay
        for layer in PRUNABLE_LAYERS[:-1]:
            norm = model.get_submodule(layer)[1 if layer.startswith("encoder") else 2]
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
    _kill(model, "encoder.0", [1, 4, 6])
    _kill(model, "encoder.2", [0, 3])
    _kill(model, "decoder.0", [2, 5])      # encoder.2's width partner: both lose two
    _kill(model, "encoder.3", [7])
    with torch.no_grad():                  # from_latent's channel 2 (its 8 x 8 block of features) dead
        model.from_latent[0].weight[2 * 64:3 * 64] = 0
        model.from_latent[0].bias[2 * 64:3 * 64] = 0
    _kill(model, "encoder.1", [3])         # decoder.1 needs all 8: the c2 slot keeps 8
    return model


def _data(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 128, 128, 3), dtype=np.uint8), rng.random((count, 4), dtype=np.float32)


def _outputs(model, crops, boxes):
    with torch.no_grad():
        return model(torch.from_numpy(crops.transpose(0, 3, 1, 2).copy()).float() / 255, torch.from_numpy(boxes))


@pytest.mark.parametrize("criterion", ["weight_norm", "activation"])
def test_planted_channels_are_removed_and_outputs_unchanged(criterion):
    model = _planted_model()
    crops, boxes = _data()
    options = PruningOptions(threshold=1e-6, **LOOSE)
    result = prune_dolly(model, options, criterion, crops, boxes)
    report = result.report
    assert report["removed"]["encoder.0"] == [1, 4, 6]
    assert report["removed"]["encoder.2"] == [0, 3] and report["removed"]["decoder.0"] == [2, 5]
    assert report["removed"]["encoder.3"] == [7] and report["removed"]["from_latent"] == [2]
    assert report["removed"]["encoder.1"] == [] and report["removed"]["decoder.1"] == []
    assert report["widths_after"] == [5, 8, 6, 7] and result.model.widths == (5, 8, 6, 7)
    assert report["parameters_after"] < report["parameters_before"]
    before, after = _outputs(model, crops, boxes), _outputs(result.model, crops, boxes)
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=1e-5, rtol=1e-5)


def test_pruned_model_reloads_from_its_folder(tmp_path):
    model = _planted_model()
    result = prune_dolly(model, PruningOptions(threshold=1e-6, **LOOSE), "weight_norm")
    config = parse_model_config({
        "architecture": "ros2_pose.models.dolly_pose:DollyPoseNet", "kwargs": result.kwargs,
        "inputs": [{"name": "crop", "shape": ["batch", 3, 128, 128]}, {"name": "box", "shape": ["batch", 4]}],
        "outputs": [{"name": "rotation_6d", "shape": ["batch", 6]}, {"name": "center_crop", "shape": ["batch", 2]},
                    {"name": "log_depth_ratio", "shape": ["batch", 1]},
                    {"name": "mask_logits", "shape": ["batch", 1, 32, 32]}]})
    # ONNX export and its parity are checked through `ros2-pose prune` in test/cli/test_fmaps_cli.py
    write_model_folder(tmp_path / "pruned", result.model, config, export=False)
    spec = ModelSpec.from_folder(tmp_path / "pruned")
    reloaded = build_torch_model(spec.load_config(), spec.require("weights"))
    assert reloaded.widths == (5, 8, 6, 7)
    crops, boxes = _data(2, seed=3)
    for name, value in _outputs(model, crops, boxes).items():
        torch.testing.assert_close(_outputs(reloaded, crops, boxes)[name], value, atol=1e-5, rtol=1e-5)
    assert retrain_model_section(result.kwargs) == {"width": [5, 8, 6, 7], "latent_size": 16,
                                                    "box_features": 8, "head_features": 16}


def test_thresholds_min_filters_granularity_and_exclusions():
    model = _planted_model()
    prune = lambda **kw: prune_dolly(model, PruningOptions(**{"threshold": 1e-6, **LOOSE, **kw}), "weight_norm").report
    assert prune(min_filters=7)["widths_after"][0] == 7                  # 5 above threshold, 7 asked for
    assert prune(granularity=4)["widths_after"] == [8, 8, 8, 8]          # 5 -> 8, 6 -> 8
    excluded = prune(excluded_layers=("decoder.0",))
    assert excluded["widths_after"] == [5, 8, 8, 7] and excluded["removed"]["encoder.2"] == []
    # a BN scale of ~0 silences a filter as surely as a zero kernel (effective weight norm)
    with torch.no_grad():
        model.encoder[1][1].weight[2] = 1e-9
    assert prune()["removed"]["encoder.1"] == []                         # decoder.1 still needs 8
    _kill(model, "decoder.1", [5, 6])
    report = prune()
    assert report["removed"]["encoder.1"] == [2, 3] and report["removed"]["decoder.1"] == [5, 6]


def test_bad_requests_are_refused():
    model = _planted_model()
    with pytest.raises(PruningError, match="needs data"):
        prune_dolly(model, PruningOptions(**LOOSE), "activation")
    with pytest.raises(PruningError, match="criterion"):
        prune_dolly(model, PruningOptions(**LOOSE), "l1")
    with pytest.raises(PruningError, match="not prunable layers"):
        prune_dolly(model, PruningOptions(excluded_layers=("head",), **LOOSE))
    with pytest.raises(PruningError, match="DollyPoseNet"):
        prune_dolly(torch.nn.Linear(2, 2))
