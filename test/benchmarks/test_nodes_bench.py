"""`ros2-pose bench nodes`: every node's callback split into its pipeline and its message work."""
import argparse

import pytest

from ros2_pose.benchmarks import nodes as bench


@pytest.mark.parametrize("node", sorted(bench.NODE_SAMPLES))
def test_every_node_times_its_pipeline_inside_the_callback(node):
    (row,) = bench.benchmark([node], timed=2, warmup=1)
    assert row["node"] == node and row["frames"] == 2
    # A node that forgot `with self.timed("pipeline")` would show 0 ms of pipeline here.
    assert 0 < row["pipeline_median_ms"] <= row["callback_median_ms"]
    assert row["messages_median_ms"] >= 0 and 0 <= row["message_share"] < 1


def test_cli_prints_the_table_and_writes_json(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "200")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "nodes.json"
    assert bench.run(parser.parse_args(["--node", "dolly_detector", "--frames", "2", "--warmup", "0",
                                        "--json", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "dolly_detector" in printed and "message share" in printed
    assert '"message_share"' in out.read_text()
    with pytest.raises(SystemExit, match="--frames"):
        bench.run(parser.parse_args(["--frames", "0"]))


def test_a_process_that_benchmarks_a_node_exits_cleanly():
    # The node's executor thread must be joined: one still inside rclpy at interpreter exit made
    # the process abort ("terminate called without an active exception", exit 134).
    import os
    import subprocess
    import sys

    code = "from ros2_pose.benchmarks import nodes; nodes.benchmark(['dolly_pose'], 1, 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
