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
