"""Latency statistics shared by the benchmark targets (a private module: not a `bench` target)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def summarize(values_ms) -> dict:
    """Median, p95 and count of latencies in milliseconds."""
    values = np.asarray(values_ms, dtype=np.float64)
    return {"median_ms": float(np.median(values)), "p95_ms": float(np.percentile(values, 95)), "n": int(values.size)}


def time_calls(fn: Callable[[], object], iterations: int, warmup: int) -> list[float]:
    """Milliseconds of each of `iterations` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times
