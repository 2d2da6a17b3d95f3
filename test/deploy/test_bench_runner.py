import importlib.util

from ros2_pose.benchmarks.runner import benchmark_rows


def test_bench_rows_time_available_backends_and_explain_skipped_ones(reference_model):
    rows = benchmark_rows(reference_model, ["torch", "onnxruntime", "tensorrt"], None, "cpu",
                          iterations=5, warmup=1)
    by_backend = {(r["backend"], r["precision"]): r for r in rows}
    for key in (("torch", "fp32"), ("onnxruntime", "fp32")):
        assert 0 < by_backend[key]["median_ms"] <= by_backend[key]["p95_ms"]
    trt_rows = [r for r in rows if r["backend"] == "tensorrt"]
    assert trt_rows and all("skipped" in r for r in trt_rows)  # needs cuda; cpu was asked
    if importlib.util.find_spec("tensorrt") is None:
        assert benchmark_rows(reference_model, ["tensorrt"], ["fp16"], "cuda", 1, 0)[0]["skipped"]


def test_speedup_is_torch_over_onnxruntime_and_needs_both():
    from ros2_pose.benchmarks.runner import onnxruntime_speedup

    rows = [{"backend": "torch", "precision": "fp32", "median_ms": 3.0},
            {"backend": "onnxruntime", "precision": "fp32", "median_ms": 1.5},
            {"backend": "tensorrt", "precision": "fp16", "skipped": "no tensorrt"}]
    assert onnxruntime_speedup(rows) == 2.0
    assert onnxruntime_speedup(rows[1:]) is None


def test_cli_times_several_models_and_prints_the_speedup_table(capsys, monkeypatch, reference_model):
    import argparse

    from ros2_pose.benchmarks import runner

    monkeypatch.setenv("COLUMNS", "200")
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--model", str(reference_model), "dolly_pose_half", "--backends", "torch,onnxruntime",
                              "--iters", "2", "--warmup", "0", "--threads", "1"])
    assert runner.run(args) == 0
    out = capsys.readouterr().out
    assert "dolly_pose_half" in out and "ONNX Runtime vs eager torch" in out and out.count("runner latency") == 2
    assert parser.parse_args(["--shipped"]).shipped


def test_shipped_models_are_listed():
    from ros2_pose.resources import shipped_models

    assert {"dolly_detector", "dolly_pose_half", "drone_pose_large", "drone_pose_small", "bpnet",
            "depth_egomotion_depth", "depth_egomotion_pose"} <= set(shipped_models())
