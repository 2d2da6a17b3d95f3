"""`ros2-pose bench depth`: every module of the depth + ego-motion pipeline timed on the motion sample."""
import argparse

import pytest

from ros2_pose.benchmarks import depth as bench


def test_rows_cover_every_module_and_the_whole_frame_per_backend():
    rows = bench.benchmark("depth_egomotion_depth", "depth_egomotion_pose", ["onnxruntime", "torch"], 2, 0)
    expected = list(bench.STAGES) + [bench.PER_FRAME]
    for backend in ("onnxruntime", "torch"):
        mine = [r for r in rows if r["backend"] == backend]
        assert [r["stage"] for r in mine] == expected
        assert all(r["median_ms"] > 0 and r["n"] == 2 for r in mine)
        whole = mine[-1]["median_ms"]
        assert mine[-1]["share"] == 1.0
        # The networks are inside the frame time (single calls, so allow for timer noise).
        assert mine[1]["median_ms"] < 3 * whole and mine[3]["median_ms"] < 3 * whole


def test_unavailable_backend_is_a_skipped_row_and_cli_prints(capsys, monkeypatch):
    rows = bench.benchmark("depth_egomotion_depth", "depth_egomotion_pose", ["tensorrt"], 1, 0)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert rows == [{"backend": "tensorrt", "stage": "all", "skipped": rows[0]["skipped"]}]
    monkeypatch.setenv("COLUMNS", "200")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--backend", "onnxruntime", "--iters", "1", "--warmup", "0"])) == 0
    assert "depth network" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--iters"):
        bench.run(parser.parse_args(["--iters", "0"]))
