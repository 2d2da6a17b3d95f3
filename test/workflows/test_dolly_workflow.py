"""The dolly workflow end to end on tiny data: sim -> bag -> dataset -> train both networks ->
model folders (ONNX checked against PyTorch) -> `ros2-pose eval dolly` on the bag.

Everything is real (renderer, bag, dataset builder, training loop, ONNX export, runner, pipeline),
just small: 160x120 frames, a handful of them, one epoch of tiny networks.
"""
import json

import numpy as np
import pytest

from ros2_pose.cli.main import main
from ros2_pose.sim.writer import render_bag

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("dolly_workflow")
    bag = render_bag("dolly", 24, root / "bag", seed=5, width=160, height=120, progress=False)
    assert main(["dataset", "build", "dolly", "--bags", str(bag), "--out", str(root / "dataset"),
                 "--split", "0.5,0.5,0", "--split-block", "4", "--split-guard", "0", "--box-jitter", "0.05"]) == 0
    (root / "pose.yaml").write_text("epochs: 1\nbatch_size: 4\nmodel: {width: [4, 4, 8, 8]}\n")
    (root / "detector.yaml").write_text("epochs: 1\nbatch_size: 4\nmodel: {width: 4, input_size: 160}\n")
    assert main(["train", "dolly", "--config", str(root / "pose.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "run_pose"), "--device", "auto"]) == 0  # CUDA where there is one
    assert main(["train", "dolly_detector", "--config", str(root / "detector.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "run_detector"), "--device", "auto"]) == 0
    return root


def test_training_writes_a_reproducible_run_and_a_model_folder(workflow):
    run = workflow / "run_pose"
    for name in ("config.yaml", "curves.csv", "metrics.json", "curves.png", "checkpoint_last.pt",
                 "checkpoint_best.pt", "model/model.pt", "model/model.yaml", "model/model.onnx"):
        assert (run / name).is_file(), name
    assert "width" in (run / "config.yaml").read_text()
    parity = json.loads((run / "model" / "onnx_parity.json").read_text())
    assert parity  # written by the export, one entry per checked batch size


def test_eval_dolly_reports_table_1_and_plots(workflow, capsys):
    out = workflow / "metrics.json"
    code = main(["eval", "dolly", "--model", str(workflow / "run_pose" / "model"),
                 "--detector", str(workflow / "run_detector" / "model"), "--data", str(workflow / "bag"),
                 "--score-threshold", "0.0", "--json", str(out), "--plots", str(workflow / "plots")])
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["frames"] == 24
    for key in ("median_abs_x_m", "median_abs_y_m", "median_abs_z_m", "median_rotation_deg", "ap",
                "median_inference_ms"):
        assert key in metrics
    # With a zero score threshold every visible frame yields a pose or a rejection; none is silent.
    assert 0.0 <= metrics["ap"] <= 1.0 and metrics["median_inference_ms"] > 0
    assert np.isfinite(metrics["median_rotation_deg"]) or metrics["pose_rate"] == 0
    assert (workflow / "plots" / "dolly_rotation_error_by_distance.png").is_file()
    assert "Median rotation error (deg)" in capsys.readouterr().out
