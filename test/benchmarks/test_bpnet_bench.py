"""bench bpnet: network rows per resolution and backend on a tiny untrained BodyPoseNet (a network's
cost does not depend on its weights), and the post-processing rows on synthetic people."""
import json

import pytest

from ros2_pose.benchmarks import bpnet as bench
from ros2_pose.cli.main import main
from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.models.bodypose import BodyPoseNet
from ros2_pose.training.bodypose import model_config_for


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bpnet_bench") / "tiny"
    network = BodyPoseNet(width=4, stages=2).eval()
    write_model_folder(folder, network, model_config_for(network, (32, 48)), export=False)
    return folder


def test_network_rows_cover_every_resolution_and_backend(tiny_model, one_torch_thread):
    rows = bench.network_rows(tiny_model, [(32, 48), (40, 56)], ["onnxruntime", "torch"], iterations=2, warmup=1)
    assert [(r["input"], r["backend"]) for r in rows] == [
        ("32x48", "onnxruntime"), ("32x48", "torch"), ("40x56", "onnxruntime"), ("40x56", "torch")]
    assert all(r["n"] == 2 and 0 < r["median_ms"] <= r["p95_ms"] and r["precision"] == "fp32" for r in rows)


def test_postprocessing_finds_every_synthetic_person():
    rows = bench.postprocess_rows(people=4, iterations=1, warmup=0, frame_hw=(240, 320))
    assert [r["stage"] for r in rows] == list(bench.POST_STAGES)
    assert all(r["people_found"] == 4 and r["median_ms"] > 0 for r in rows)


def test_resolutions_are_parsed_and_checked():
    assert bench.parse_resolutions("224x320, 288x384") == [(224, 320), (288, 384)]
    for bad in ("224x321", "224", ""):
        with pytest.raises(ValueError):
            bench.parse_resolutions(bad)


def test_cli_prints_both_tables_and_writes_json(tiny_model, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "rows.json"
    assert main(["bench", "bpnet", "--model", str(tiny_model), "--resolutions", "32x48", "--backend", "torch",
                 "--iters", "1", "--warmup", "0", "--people", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "32x48" in text and "PAF grouping" in text and "target" in text
    rows = json.loads(out.read_text())
    assert len(rows["network"]) == 1 and len(rows["postprocess"]) == len(bench.POST_STAGES)
