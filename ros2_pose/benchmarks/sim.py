"""Synthetic rendering throughput: images/s for render only, the full task pipeline and the full
pipeline written to a bag (what `ros2-pose sim` does), for each worker count, with the CPU time
per image and the machine's load so numbers taken on a busy machine can be read."""
from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path


def add_arguments(parser):
    parser.add_argument("--task", default="dolly", help="sim task for the full-pipeline rows")
    parser.add_argument("--frames", type=int, default=60, help="frames per measurement")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])


def _render_only(args_tuple):
    """Render the same pre-built scene `frames` times (scene building excluded)."""
    task_name, frames, width, height = args_tuple
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


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _pipeline_rate(task, frames, width, height, workers, bag_dir: Path | None = None):
    """(images/s after warm-up, CPU ms per image over the whole run including start-up) of
    iter_frames, optionally writing every frame into a bag in `bag_dir` as `ros2-pose sim` does."""
    from contextlib import nullcontext

    from ros2_pose.sim.tasks import iter_frames
    from ros2_pose.sim.writer import SimBagWriter

    cpu_before = _cpu_seconds()
    writer = SimBagWriter(bag_dir / f"bench_{workers}") if bag_dir is not None else nullcontext()
    with writer:
        it = iter_frames(task, frames + workers, seed=0, workers=workers, width=width, height=height)
        for _ in range(workers):  # process start and GL context creation are not throughput
            index, frame = next(it)
            if bag_dir is not None:
                writer.write(index, frame)
        start = time.perf_counter()
        n = 0
        for index, frame in it:
            if bag_dir is not None:
                writer.write(index, frame)
            n += 1
        rate = n / (time.perf_counter() - start)
    return rate, (_cpu_seconds() - cpu_before) / (frames + workers) * 1e3


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    load_before = os.getloadavg()
    table = Table(title=f"ros2-pose sim throughput at {args.width}x{args.height} ({args.task} scenes), "
                        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} at start")
    for column in ("workers", "render only (img/s)", "full pipeline (img/s)", "CPU/img (ms)",
                   "pipeline + bag (img/s)", "CPU/img with bag (ms)", "backend"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp:
        for workers in args.workers:
            render, backend = _render_rate(args.task, args.frames, args.width, args.height, workers)
            pipeline, cpu = _pipeline_rate(args.task, args.frames, args.width, args.height, workers)
            bag_rate, bag_cpu = _pipeline_rate(args.task, args.frames, args.width, args.height, workers,
                                               bag_dir=Path(tmp))
            table.add_row(str(workers), f"{render:.1f}", f"{pipeline:.1f}", f"{cpu:.1f}", f"{bag_rate:.1f}",
                          f"{bag_cpu:.1f}", backend)
    console = Console()
    if console.width < 150:  # piped or captured output: keep every column on one line
        console = Console(width=150)
    console.print(table)
    print("full pipeline = scene randomisation + render + occlusion render + sensor effects + labels; "
          "+ bag = every frame written to an mcap bag with depth and segmentation (ros2-pose sim)")
    print("CPU/img = CPU seconds of all processes (start-up included) per image: on a busy machine "
          f"it reads more steadily than img/s. Load average at the end: {os.getloadavg()[0]:.1f}")
    return 0
