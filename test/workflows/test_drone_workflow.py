"""The drone workflow end to end on tiny data: sim -> bag -> dataset -> `ros2-pose train drone` with l_h,
l_m and l_p (hourglass / HRNet / HigherHRNet; BPnP-faster and EPnP in the loop) -> model folders
(ONNX checked against PyTorch, drone.yaml) -> resume -> `ros2-pose eval drone` on the bag.

Everything is real, just small: 160x120 frames, 16 of them, one epoch of tiny networks.
"""
import json

import numpy as np
import pytest
import yaml

from ros2_pose.cli.main import main
from ros2_pose.sim.writer import render_bag

pytestmark = pytest.mark.slow

TINY_HRNET = "{width: 4, exchange_blocks: [1, 1], units_per_branch: 1, stage1_units: 1}"
CONFIGS = {
    "l_h": f"loss: l_h\nmodel: {{backbone: hourglass, input_size: 32, kwargs: {{width: 4, num_stacks: 2, levels: 1}}}}\n",
    "l_m": f"loss: l_m\npnp: bpnp_faster\nmodel: {{backbone: hrnet, input_size: 32, kwargs: {TINY_HRNET}}}\n",
    "l_p": f"loss: l_p\npnp: epnp\nmodel: {{backbone: higherhrnet, input_size: 32, kwargs: {TINY_HRNET}}}\n",
}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("drone_workflow")
    # seed 5: both splits hold drone_large frames (4 train, 5 val)
    bag = render_bag("drone", 16, root / "bag", seed=5, width=160, height=120, progress=False)
    assert main(["dataset", "build", "drone", "--bags", str(bag), "--out", str(root / "dataset"),
                 "--image-size", "160", "120", "--split", "0.5,0.5,0", "--split-block", "4", "--split-guard", "0"]) == 0
    for loss, text in CONFIGS.items():
        (root / f"{loss}.yaml").write_text("epochs: 1\nbatch_size: 2\ndrone_model: drone_large\n" + text)
        assert main(["train", "drone", "--config", str(root / f"{loss}.yaml"), "--data", str(root / "dataset"),
                     "--out", str(root / f"run_{loss}")]) == 0
    return root


@pytest.mark.parametrize("loss", list(CONFIGS))
def test_training_writes_a_run_and_a_drone_model_folder(workflow, loss):
    run = workflow / f"run_{loss}"
    for name in ("config.yaml", "curves.csv", "metrics.json", "curves.png", "checkpoint_last.pt", "checkpoint_best.pt",
                 "model/model.pt", "model/model.yaml", "model/model.onnx", "model/drone.yaml"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["loss"] == loss
    info = yaml.safe_load((run / "model" / "drone.yaml").read_text())
    assert info["drone_model"] == "drone_large" and len(info["keypoints_3d"]) == 10
    curves = (run / "curves.csv").read_text()
    assert "val_ADD5" in curves and "val_keypoint_px" in curves
    if loss != "l_h":  # the PnP layer ran inside the loop
        assert "train_projection" in curves and "train_pnp_samples" in curves
    parity = json.loads((run / "model" / "onnx_parity.json").read_text())
    assert parity


def test_resume_continues_the_run(workflow):
    config = workflow / "l_h.yaml"
    with pytest.raises(FileExistsError, match="--resume"):
        main(["train", "drone", "--config", str(config), "--data", str(workflow / "dataset"), "--out", str(workflow / "run_l_h")])
    # Resuming with the same schedule after the last epoch trains nothing more and keeps the history.
    assert main(["train", "drone", "--config", str(config), "--data", str(workflow / "dataset"),
                 "--out", str(workflow / "run_l_h"), "--resume"]) == 0
    assert len((workflow / "run_l_h" / "curves.csv").read_text().strip().splitlines()) == 2


def test_eval_drone_reports_the_seed_metrics_per_drone_model(workflow, capsys):
    out = workflow / "metrics.json"
    assert main(["eval", "drone", "--model", str(workflow / "run_l_m" / "model"), "--data", str(workflow / "bag"),
                 "--gt-boxes", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    row = metrics["per_drone_model"]["drone_large"]
    for key in ("NPE", "AD", "ACC2", "ACC5", "ADD2", "ADD5", "Proj2", "Proj5", "valid", "count"):
        assert key in row
    assert row["count"] == 9 and 0 <= row["ADD5"] <= 100 and row["median_inference_ms"] > 0
    # Every frame is accounted for: a pose or a named failure.
    assert sum(v for k, v in row.items() if k.startswith("frames_")) == row["count"]
    assert "| drone_large |" in capsys.readouterr().out


def test_the_model_folder_carries_its_template_floor_and_eval_measures_it(workflow, capsys):
    folder = workflow / "run_l_m" / "model"
    template = np.asarray(yaml.safe_load((folder / "drone.yaml").read_text())["keypoint_template"])
    size = yaml.safe_load((folder / "drone.yaml").read_text())["crop"]["size"]
    # The mean layout of ground-truth-box crops sits inside the box part of the crop (the margin
    # is 0.25 of the box on each side); averaged over random attitudes it shrinks to the centre.
    assert template.shape == (10, 2) and np.all((template > size / 6) & (template < size * 5 / 6))
    with pytest.raises(SystemExit, match="--gt-boxes"):
        main(["eval", "drone", "--model", str(folder), "--data", str(workflow / "bag"), "--keypoints", "template"])
    out = workflow / "template.json"
    assert main(["eval", "drone", "--model", str(folder), "--data", str(workflow / "bag"), "--gt-boxes",
                 "--keypoints", "template", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["keypoints"] == "template"
    row = metrics["per_drone_model"]["drone_large"]
    assert row["count"] == 9 and sum(v for k, v in row.items() if k.startswith("frames_")) == 9
