"""Runner latency at batch 1 per backend and precision (median / p95), unavailable backends listed with why."""
from __future__ import annotations

import tempfile

from ros2_pose.benchmarks._timing import summarize, time_calls

# Precisions each backend has on each device (torch fp16 needs CUDA; ONNX Runtime runs the fp32 graph).
DEFAULT_PRECISIONS = {("torch", "cpu"): ("fp32",), ("torch", "cuda"): ("fp32", "fp16"),
                      ("onnxruntime", "cpu"): ("fp32",), ("onnxruntime", "cuda"): ("fp32",),
                      ("tensorrt", "cpu"): ("fp16",), ("tensorrt", "cuda"): ("fp32", "fp16")}


# Issue 5: ONNX Runtime at least this much faster than eager PyTorch at batch 1, every shipped model.
TARGET_ONNXRUNTIME_SPEEDUP = 1.5


def add_arguments(parser):
    parser.add_argument("--model", nargs="+", default=None,
                        help="shipped model name(s) or model folder(s) (default: the tiny reference model)")
    parser.add_argument("--shipped", action="store_true", help="every shipped model (models/*)")
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


def onnxruntime_speedup(rows: list[dict]) -> float | None:
    """Eager torch fp32 median over ONNX Runtime fp32 median (None unless both ran)."""
    timed = {(r["backend"], r["precision"]): r["median_ms"] for r in rows if "skipped" not in r}
    torch_ms, ort_ms = timed.get(("torch", "fp32")), timed.get(("onnxruntime", "fp32"))
    return torch_ms / ort_ms if torch_ms and ort_ms else None


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    precisions = [p.strip() for p in args.precisions.split(",")] if args.precisions else None
    if args.shipped:
        from ros2_pose.resources import shipped_models

        models = shipped_models()
    else:
        models = args.model or [None]
    console = Console()
    summary = []
    any_ran = False
    for model in models:
        with tempfile.TemporaryDirectory(prefix="ros2_pose_bench_runner_") as tmp:
            if model is None:
                from ros2_pose.deploy.reference_model import write_reference_model
                source = write_reference_model(tmp)
            else:
                source = model
            rows = benchmark_rows(source, backends, precisions, args.device, args.iters, args.warmup, args.threads)
        table = Table(title=f"runner latency, batch 1, {args.iters} runs: {model or 'tiny reference model'}")
        for column in ("backend", "precision", "device", "median ms", "p95 ms", "note"):
            table.add_column(column, justify="right" if "ms" in column else "left")
        for row in rows:
            if "skipped" in row:
                table.add_row(row["backend"], row["precision"], row["device"], "-", "-", f"skipped: {row['skipped']}")
            else:
                table.add_row(row["backend"], row["precision"], row["device"], f"{row['median_ms']:.3f}",
                              f"{row['p95_ms']:.3f}", "")
        console.print(table)
        any_ran = any_ran or any("skipped" not in r for r in rows)
        summary.append((model or "tiny reference model", onnxruntime_speedup(rows)))
    if any(speedup is not None for _, speedup in summary):
        table = Table(title=f"ONNX Runtime vs eager torch, fp32, batch 1 (issue 5 target: >= {TARGET_ONNXRUNTIME_SPEEDUP}x)")
        for column in ("model", "speed-up", "target"):
            table.add_column(column)
        for name, speedup in summary:
            if speedup is None:
                table.add_row(str(name), "-", "not measured")
            else:
                table.add_row(str(name), f"{speedup:.2f}x", "met" if speedup >= TARGET_ONNXRUNTIME_SPEEDUP else "MISSED")
        console.print(table)
    return 0 if any_ran else 1
