"""Synthetic rendering throughput: images/s for render-only and the full task pipeline, 1 and 2 workers."""
from __future__ import annotations

import time

import numpy as np


def add_arguments(parser):
    parser.add_argument("--task", default="dolly", help="sim task for the full-pipeline rows")
    parser.add_argument("--frames", type=int, default=60, help="frames per measurement")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])


def _render_only(args_tuple):
    """Render the same pre-built scene `frames` times (scene building excluded)."""
    task_name, frames, width, height = args_tuple
    import os

    os.environ["LP_NUM_THREADS"] = "1"
    from ros2_pose.sim.tasks import frame_rng, make_task

    task = make_task(task_name, width=width, height=height)
    scene, camera, T_world_camera, *_ = task.build_scene(frame_rng(0, 0))
    renderer = task.renderer
    renderer.render(scene, camera, T_world_camera)  # warm up (shader compile, buffers)
    start = time.perf_counter()
    for _ in range(frames):
        renderer.render(scene, camera, T_world_camera)
    return frames, time.perf_counter() - start, renderer.backend


def _render_rate(task, frames, width, height, workers):
    import multiprocessing

    jobs = [(task, max(frames // workers, 1), width, height)] * workers
    if workers == 1:
        results = [_render_only(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_render_only, jobs)
    # workers run side by side: rate = total frames / the slowest worker's time
    return sum(r[0] for r in results) / max(r[1] for r in results), results[0][2]


def _pipeline_rate(task, frames, width, height, workers):
    from ros2_pose.sim.tasks import iter_frames

    options = dict(width=width, height=height)
    it = iter_frames(task, frames + workers, seed=0, workers=workers, **options)
    for _ in range(workers):  # process start and GL context creation are not throughput
        next(it)
    start = time.perf_counter()
    n = sum(1 for _ in it)
    return n / (time.perf_counter() - start)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ros2-pose sim throughput at {args.width}x{args.height} ({args.task} scenes)")
    for column in ("workers", "render only (img/s)", "full pipeline (img/s)", "backend"):
        table.add_column(column, justify="right")
    for workers in args.workers:
        render, backend = _render_rate(args.task, args.frames, args.width, args.height, workers)
        pipeline = _pipeline_rate(args.task, args.frames, args.width, args.height, workers)
        table.add_row(str(workers), f"{render:.1f}", f"{pipeline:.1f}", backend)
    Console().print(table)
    print("full pipeline = scene randomisation + render + occlusion render + sensor effects + labels")
    return 0
