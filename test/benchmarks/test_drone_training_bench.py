"""bench drone_training (seed 003 Table 1): every phase of a training batch is timed on batches of the
drone sample bag's rows, the PnP-in-the-loop rows start from the shipped network, and the CLI
prints the table and writes JSON."""
import json

import pytest
import torch

from ros2_pose.benchmarks import drone_training as bench
from ros2_pose.cli.main import main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROS2_POSE_CACHE", str(cache))
        folder = bench.sample_dataset()
        assert folder.is_relative_to(cache) and bench.sample_dataset() == folder  # built once, then reused
    return folder


def test_rows_time_every_phase_from_the_right_start(dataset):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = bench.benchmark_rows(dataset, ["drone_small"], ["l_m_epnp", "hourglass"], iterations=1,
                                    warmup=0, batch_size=4)
    finally:
        torch.set_num_threads(threads)
    assert [(r["drone"], r["label"], r["start"]) for r in rows] == [
        ("drone_small", "l_m, EPnP", "shipped"), ("drone_small", "l_h, stacked hourglass", "random")]
    assert all(r["batch"] == 4 and r["forward_s"] > 0 and r["backward_s"] > 0 and r["optimizer_s"] > 0 for r in rows)
    assert rows[0]["parameters"] > rows[1]["parameters"]  # HigherHRNet vs the small hourglass
    with pytest.raises(ValueError, match="unknown experiments"):
        bench.benchmark_rows(dataset, ["drone_small"], ["l_q"])


def test_cli_prints_the_table_and_writes_json(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "rows.json"
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "drone_training", "--data", str(dataset), "--drone", "drone_large", "--experiments",
                     "l_h,hourglass", "--batch-size", "2", "--iters", "1", "--warmup", "0",
                     "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "drone_large" in text and "l_h, HigherHRNet" in text and "backward s" in text
    assert [r["experiment"] for r in json.loads(out.read_text())] == ["l_h", "hourglass"]
