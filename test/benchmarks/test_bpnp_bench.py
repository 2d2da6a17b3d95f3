import argparse

import torch

from ros2_pose.benchmarks import bpnp as bench


def test_rows_cover_every_layer_and_batch_size_with_positive_times():
    rows = bench.benchmark_rows([1, 2], repeats=1)
    assert [(r["layer"], r["batch"]) for r in rows] == [(layer, b) for b in (1, 2) for layer in bench.LAYERS]
    assert all(r["forward_s"] > 0 and r["backward_s"] > 0 for r in rows)


def test_cli_prints_the_table(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    threads = torch.get_num_threads()
    try:
        assert bench.run(parser.parse_args(["--batch-sizes", "1", "--repeats", "1"])) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "bpnp_faster" in out and "epnp" in out and "backward ms" in out
