import argparse

import pytest
import torch

from ros2_pose.benchmarks import bpnp as bench


def test_rows_cover_every_layer_and_batch_size_with_positive_times():
    rows = bench.benchmark_rows([1, 2], repeats=1)
    assert [(r["layer"], r["batch"]) for r in rows] == [(layer, b) for b in (1, 2) for layer in bench.LAYERS]
    assert all(r["forward_s"] > 0 and r["backward_s"] > 0 for r in rows)
    # Batches above 1 are also timed one item at a time, and the speed-up is that time over the batch's.
    for row in rows:
        assert ("speedup" in row) == (row["batch"] > 1)
        if row["batch"] > 1:
            assert row["one_by_one_s"] > 0
            assert row["speedup"] == pytest.approx(row["one_by_one_s"] / (row["forward_s"] + row["backward_s"]))


def test_cli_prints_the_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells at the default 80
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    threads = torch.get_num_threads()
    try:
        assert bench.run(parser.parse_args(["--batch-sizes", "1", "--repeats", "1"])) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "bpnp_faster" in out and "epnp" in out and "backward ms" in out and "speed-up" in out


def test_bench_pnp_is_the_same_target(capsys, monkeypatch):
    from ros2_pose.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "pnp", "--batch-sizes", "1", "--repeats", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert "bpnp_faster" in capsys.readouterr().out
