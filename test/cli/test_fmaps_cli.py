"""`ros2-pose fmaps dump|report` and `ros2-pose prune` end to end on tiny real data: a rendered bag
(ood preset, the "real" stand-in), the dataset built from it, a folder of crops, and a small
DollyPoseNet with planted dead channels in its first layer."""
import json

import cv2
import numpy as np
import pytest
import torch
import yaml

from ros2_pose.cli.main import main
from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model, write_model_folder
from ros2_pose.models.dolly_pose import DollyPoseNet
from ros2_pose.sim.writer import render_bag
from ros2_pose.models.center_detector import CenterDetector
from ros2_pose.training.dolly import detector_model_config, pose_model_config

DEAD = [0, 5]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmaps_cli")
    torch.manual_seed(0)
    model = DollyPoseNet((8, 8, 8, 8)).eval()
    with torch.no_grad():
        model.encoder[0][0].weight[DEAD] = 0
    write_model_folder(root / "model", model, pose_model_config({"width": [8, 8, 8, 8]}), export=False)
    detector = CenterDetector(width=4, input_size=160).eval()
    with torch.no_grad():   # hand-set heads: a flat heatmap (score 0.5, first cell wins), 80 x 80 px boxes
        for head, bias in ((detector.heatmap, 0.0), (detector.size, 0.5), (detector.offset, 0.5)):
            head.weight.zero_()
            head.bias.fill_(bias)
    write_model_folder(root / "detector", detector, detector_model_config({"width": 4, "input_size": 160}), export=False)
    bag = render_bag("dolly", 4, root / "bag", seed=3, width=160, height=120, progress=False, preset="ood")
    assert main(["dataset", "build", "dolly", "--bags", str(bag), "--out", str(root / "dataset"),
                 "--split", "0.5,0.5,0", "--split-block", "1", "--split-guard", "0"]) == 0
    (root / "crops").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(root / "crops" / f"{i}.png"), rng.integers(0, 256, (90, 60, 3), dtype=np.uint8))
    return root


def test_dump_report_and_compare(setup, capsys):
    root = setup
    common = ["--model", str(root / "model"), "--out", str(root / "dump"), "--layers", "encoder.0", "encoder.1"]
    assert main(["fmaps", "dump", "--inputs", str(root / "dataset"), "--name", "sim", *common]) == 0
    assert main(["fmaps", "dump", "--inputs", str(root / "bag"), "--name", "real", "--max", "3", *common]) == 0
    assert main(["fmaps", "dump", "--inputs", str(root / "crops"), "--name", "crops", *common]) == 0
    # boxes from a detector model instead of /ground_truth/detections
    assert main(["fmaps", "dump", "--inputs", str(root / "bag"), "--name", "detected", "--max", "1",
                 "--detector", str(root / "detector"), "--min-score", "0.4", *common]) == 0
    index = json.loads((root / "dump" / "index.json").read_text())
    assert index["sets"]["detected"]["details"]["boxes_from"] == "detector"
    assert index["sets"]["real"]["count"] == 3 and index["sets"]["crops"]["count"] == 3
    assert index["sets"]["real"]["details"]["boxes_from"] == "/ground_truth/detections"
    real = np.load(root / "dump" / "real__encoder.0.npy")
    assert real.shape == (3, 8, 64, 64) and not real[:, DEAD].any()
    assert np.load(root / "dump" / "crops__input.npy").shape == (3, 128, 128, 3)

    assert main(["fmaps", "report", "--dump", str(root / "dump"), "--out", str(root / "report"),
                 "--compare", "sim", "real"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 8 channels of layer encoder.0 are empty on this data (real): channels [0, 5]" in printed
    html = (root / "report" / "index.html").read_text()
    assert "Comparison: sim vs real" in html and "compare__encoder.0.png" in html
    report = json.loads((root / "report" / "report.json").read_text())
    assert report["sets"]["sim"]["layers"]["encoder.0"]["empty_channels"] == DEAD


def test_prune_by_activation_writes_a_reloadable_model_folder(setup, capsys):
    root = setup
    out = root / "pruned"
    assert main(["prune", "--model", str(root / "model"), "--out", str(out), "--criterion", "activation",
                 "--data", str(root / "dataset"), "--threshold", "0", "--min-filters", "1", "--granularity", "1",
                 "--exclude", "encoder.1", "encoder.2", "encoder.3"]) == 0
    report = json.loads((out / "prune_report.json").read_text())
    assert report["removed"]["encoder.0"] == DEAD and report["widths_after"] == [6, 8, 8, 8]
    assert max(report["onnx_parity"].values()) < 1e-4 and (out / "model.onnx").is_file()
    spec = ModelSpec.from_folder(out)
    assert build_torch_model(spec.load_config(), spec.require("weights")).widths == (6, 8, 8, 8)


@pytest.mark.slow
def test_train_dolly_retrains_from_the_pruned_weights(setup, capsys):
    """retrain.yaml starts `train dolly` from the pruned network itself (init_from: its folder)."""
    import torch

    root = setup
    out = root / "pruned_weights"
    assert main(["prune", "--model", str(root / "model"), "--out", str(out), "--criterion", "weight_norm",
                 "--threshold", "0.01", "--min-filters", "1", "--granularity", "1", "--no-export"]) == 0
    assert json.loads((out / "prune_report.json").read_text())["removed"]["encoder.0"] == DEAD
    config = yaml.safe_load((out / "retrain.yaml").read_text())
    assert config["init_from"] == "."
    # lr 0: an epoch leaves every weight where init_from put it (only BatchNorm statistics move)
    (out / "retrain.yaml").write_text(yaml.safe_dump(
        {**config, "batch_size": 2, "optimizer": {"lr": 0.0, "weight_decay": 0.0}}))
    assert main(["train", "dolly", "--config", str(out / "retrain.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "retrain"), "--epochs", "1"]) == 0
    retrained = ModelSpec.from_folder(root / "retrain" / "model").load_config()
    assert retrained.kwargs["width"] == json.loads((out / "prune_report.json").read_text())["widths_after"]
    pruned = torch.load(out / "model.pt", weights_only=True)
    trained = torch.load(root / "retrain" / "model" / "model.pt", weights_only=True)
    for name in ("encoder.0.0.weight", "to_latent.1.weight", "decoder.2.weight"):
        assert torch.equal(pruned[name], trained[name]), name
    # a config's init_from never leaves the config's folder
    (out / "escape.yaml").write_text(yaml.safe_dump({**config, "init_from": "../model"}))
    assert main(["train", "dolly", "--config", str(out / "escape.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "escape"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "train dolly failed: init_from" in err and "outside" in err


def test_cli_errors_are_clear(setup, capsys):
    root = setup
    assert main(["prune", "--model", str(root / "model"), "--out", str(root / "x"), "--criterion", "activation"]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["fmaps", "dump", "--model", str(root / "model"), "--inputs", str(root / "crops"),
                 "--out", str(root / "d2"), "--layers", "encoder.7"]) == 2
    assert "encoder.7" in capsys.readouterr().err
    assert main(["fmaps", "dump", "--model", str(root / "model"), "--inputs", str(root / "bag"), "--out",
                 str(root / "d3"), "--detector", str(root / "detector"), "--min-score", "0.6"]) == 2
    assert "no dolly box in 4 frame(s): the detector found none scoring >= 0.6" in capsys.readouterr().err
    assert main(["fmaps", "report", "--dump", str(root / "crops"), "--out", str(root / "r2")]) == 2
    assert "not a feature-map dump" in capsys.readouterr().err
