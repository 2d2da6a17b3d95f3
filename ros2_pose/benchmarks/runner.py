"""Runner latency at batch 1 per backend and precision (median / p95), unavailable backends listed with why."""
from __future__ import annotations

import tempfile

from ros2_pose.benchmarks._timing import summarize, time_calls

# Precisions each backend has on each device (torch fp16 needs CUDA; ONNX Runtime runs the fp32 graph).
DEFAULT_PRECISIONS = {("torch", "cpu"): ("fp32",), ("torch", "cuda"): ("fp32", "fp16"),
                      ("onnxruntime", "cpu"): ("fp32",), ("onnxruntime", "cuda"): ("fp32",),
                      ("tensorrt", "cpu"): ("fp16",), ("tensorrt", "cuda"): ("fp32", "fp16")}


def add_arguments(parser):
    parser.add_argument("--model", help="shipped model name or model folder (default: the tiny reference model)")
    parser.add_argument("--backends", default="torch,onnxruntime,tensorrt", help="comma-separated backends")
    parser.add_argument("--precisions", help="comma-separated precisions to try on every backend "
                                             "(default: fp32, plus fp16 where the backend has it)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--iters", type=int, default=200, help="timed runs per row (default: 200)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op and torch threads")


def measure(runner, inputs, iterations: int) -> dict[str, float]:
    """Median and p95 wall-clock latency of runner.run(inputs) in milliseconds."""
    stats = summarize(time_calls(lambda: runner.run(inputs), iterations, warmup=0))
    return {"median_ms": stats["median_ms"], "p95_ms": stats["p95_ms"]}


def benchmark_rows(model, backends, precisions, device, iterations, warmup, threads=None) -> list[dict]:
    """One row per (backend, precision): timings, or `skipped` with the reason."""
    from ros2_pose.deploy.model_spec import resolve_model_spec
    from ros2_pose.deploy.runner import BackendUnavailableError, PrecisionUnsupportedError, create_runner

    spec = resolve_model_spec(model)
    rows = []
    for backend in backends:
        for precision in precisions or DEFAULT_PRECISIONS.get((backend, device), ("fp32",)):
            row = {"backend": backend, "precision": precision, "device": device}
            try:
                runner = create_runner(spec, backend=backend, precision=precision, device=device,
                                       warmup=warmup, intra_op_threads=threads)
                row.update(measure(runner, runner.example_inputs(), iterations))
            except (BackendUnavailableError, PrecisionUnsupportedError) as exc:
                row["skipped"] = str(exc).split(". ")[0]
            rows.append(row)
    return rows


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    precisions = [p.strip() for p in args.precisions.split(",")] if args.precisions else None
    with tempfile.TemporaryDirectory(prefix="ros2_pose_bench_runner_") as tmp:
        model = args.model
        if model is None:
            from ros2_pose.deploy.reference_model import write_reference_model
            model = write_reference_model(tmp)
        rows = benchmark_rows(model, backends, precisions, args.device, args.iters, args.warmup, args.threads)
    table = Table(title=f"runner latency, batch 1, {args.iters} runs: {args.model or 'tiny reference model'}")
    for column in ("backend", "precision", "device", "median ms", "p95 ms", "note"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    for row in rows:
        if "skipped" in row:
            table.add_row(row["backend"], row["precision"], row["device"], "-", "-", f"skipped: {row['skipped']}")
        else:
            table.add_row(row["backend"], row["precision"], row["device"], f"{row['median_ms']:.3f}",
                          f"{row['p95_ms']:.3f}", "")
    Console().print(table)
    return 0 if any("skipped" not in r for r in rows) else 1
