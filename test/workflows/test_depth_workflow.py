"""The depth/ego-motion workflow end to end on tiny data: sim -> bag -> motion dataset -> `train depth`
in every mode (self-supervised early and late fusion, supervised, pose from frozen depth features)
-> two model folders with ONNX parity -> `ros2-pose eval depth` on the bag.

Everything is real (renderer, bag, dataset builder, training loop, ONNX export, runner, pipeline),
just small: 128x96 frames resized to 48x32, one epoch of tiny networks.
"""
import json

import pytest
import torch
import yaml

from ros2_pose.cli.main import main
from ros2_pose.sim.writer import render_bag

pytestmark = pytest.mark.slow
TINY = "depth_model: {channels: [4, 8, 8, 16], num_scales: 2}\npose_model: {channels: [4, 8, 8, 16], head_width: 8}\n"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: a second OpenMP thread only fights the other processes
    root = tmp_path_factory.mktemp("depth_workflow")
    bag = render_bag("motion", 16, root / "bag", seed=5, width=128, height=96, progress=False)
    assert main(["dataset", "build", "motion", "--bags", str(bag), "--out", str(root / "dataset"),
                 "--image-size", "48", "32", "--frames-per-sample", "2", "--distances", "1", "2",
                 "--split", "0.5,0.5,0", "--split-block", "4", "--split-guard", "0"]) == 0
    (root / "tiny.yaml").write_text(f"epochs: 1\nbatch_size: 4\ndistances: [1]\n{TINY}")
    (root / "supervised.yaml").write_text(f"epochs: 1\nbatch_size: 4\nmode: supervised\n{TINY}")
    for out, extra in (("run_early", []), ("run_late", ["--fusion", "late"])):
        assert main(["train", "depth", "--config", str(root / "tiny.yaml"), "--data", str(root / "dataset"),
                     "--out", str(root / out), *extra]) == 0
    assert main(["train", "depth", "--config", str(root / "supervised.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "run_supervised"), "--no-export"]) == 0
    # a fine-tune of the late-fusion run (at learning rate 0: it must come out unchanged)
    (root / "finetune.yaml").write_text("epochs: 1\nbatch_size: 4\ndistances: [1]\noptimizer: {lr: 0.0}\n"
                                        "init_from: {depth: run_late/model_depth, pose: run_late/model_pose}\n")
    assert main(["train", "depth", "--config", str(root / "finetune.yaml"), "--data", str(root / "dataset"),
                 "--out", str(root / "run_finetune"), "--no-export"]) == 0
    (root / "features.yaml").write_text(f"epochs: 1\nbatch_size: 4\ndistances: [1]\ndepth_feature_level: 1\n{TINY}")
    assert main(["train", "depth", "--config", str(root / "features.yaml"), "--data", str(root / "dataset"),
                 "--mode", "pose_from_depth_features", "--depth-from", str(root / "run_supervised"),
                 "--out", str(root / "run_features"), "--no-export"]) == 0
    yield root
    torch.set_num_threads(threads)


def test_every_mode_writes_a_run_with_both_model_folders(workflow):
    for run in ("run_early", "run_late", "run_supervised", "run_features"):
        for name in ("config.yaml", "curves.csv", "metrics.json", "checkpoint_best.pt", "model_depth/model.pt",
                     "model_depth/model.yaml", "model_pose/model.pt", "model_pose/model.yaml", "model_pose/motion.yaml"):
            assert (workflow / run / name).is_file(), f"{run}/{name}"
    for run in ("run_early", "run_late"):
        for model in ("model_depth", "model_pose"):
            parity = json.loads((workflow / run / model / "onnx_parity.json").read_text())
            assert parity["passed"], parity
    late = yaml.safe_load((workflow / "run_late" / "model_pose" / "model.yaml").read_text())
    assert late["kwargs"]["fusion"] == "late"
    features = yaml.safe_load((workflow / "run_features" / "model_pose" / "model.yaml").read_text())
    assert features["architecture"].endswith(":PoseFromDepthFeatures")
    assert features["kwargs"]["feature_level"] == 1  # the config's depth_feature_level, rebuilt from model.yaml
    # the frozen encoder is the supervised run's depth encoder, unchanged by pose training
    depth = torch.load(workflow / "run_supervised" / "model_depth" / "model.pt", weights_only=True)
    pose = torch.load(workflow / "run_features" / "model_pose" / "model.pt", weights_only=True)
    for key, value in depth.items():
        if key.startswith("encoder."):
            torch.testing.assert_close(pose["depth_encoder." + key[len("encoder."):]], value)
    motion = yaml.safe_load((workflow / "run_early" / "model_pose" / "motion.yaml").read_text())
    assert motion == {"target_index": 1, "frames_per_sample": 2, "distances": [1], "metric": False}
    assert yaml.safe_load((workflow / "run_supervised" / "model_pose" / "motion.yaml").read_text())["distances"] == [1, 2]


def test_init_from_starts_from_those_networks_and_their_architecture(workflow):
    late = yaml.safe_load((workflow / "run_late" / "model_pose" / "model.yaml").read_text())
    tuned = yaml.safe_load((workflow / "run_finetune" / "model_pose" / "model.yaml").read_text())
    assert tuned["kwargs"] == late["kwargs"] and tuned["kwargs"]["fusion"] == "late"   # not the config's early
    for model in ("model_depth", "model_pose"):
        before = torch.load(workflow / "run_late" / model / "model.pt", weights_only=True)
        after = torch.load(workflow / "run_finetune" / model / "model.pt", weights_only=True)
        assert before.keys() == after.keys()
        for key in before:
            torch.testing.assert_close(after[key], before[key], msg=f"{model} {key}")


def test_eval_depth_scores_depth_ate_and_rpe(workflow, capsys):
    out = workflow / "metrics.json"
    assert main(["eval", "depth", "--model", str(workflow / "run_late"), "--data", str(workflow / "bag"),
                 "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["frames"] == 16 and metrics["depth_images"] == 16
    assert metrics["ate_snippets"] == 12 and metrics["rpe_pairs"] == 15     # one 16-frame segment
    for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "ate_mean", "rpe_translation_rmse",
                "rpe_rotation_deg_rmse"):
        assert metrics[key] >= 0, key
    assert 0 <= metrics["a1"] <= metrics["a2"] <= metrics["a3"] <= 1
    assert "ATE 5-frame" in capsys.readouterr().out
