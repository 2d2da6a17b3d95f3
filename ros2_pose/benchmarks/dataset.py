"""bag -> dataset throughput (MB/s of bag read, frames/s) on a generated bag or a given one."""
from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, default=None, help="bag to build from (default: generate one)")
    parser.add_argument("--task", default="dolly", help="builder to time (default dolly)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the generated bag (default 60)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--gt-source", choices=("tf", "topic"), default="tf")


def run(args) -> int:
    from ros2_pose.data.builders.fixture_bag import write_fixture_bag
    from ros2_pose.data.builders.frames import BuildOptions

    builder = importlib.import_module(f"ros2_pose.data.builders.{args.task}")
    with tempfile.TemporaryDirectory(prefix="ros2_pose_bench_dataset_") as tmp:
        bag = args.bag
        if bag is None:
            bag = Path(tmp) / "bag"
            t0 = time.perf_counter()
            write_fixture_bag(bag, n_frames=args.frames, width=args.width, height=args.height)
            print(f"generated {args.frames} frames at {args.width}x{args.height} in {time.perf_counter() - t0:.1f} s")
        options = BuildOptions(gt_source=args.gt_source, object_frame=builder.DEFAULT_OBJECT_FRAME)
        result = builder.build([bag], Path(tmp) / "dataset", options)
        frames = len(result.plan.frames)
        rows = [("bag MB", f"{result.plan.bag_bytes / 1e6:.1f}"),
                ("frames", f"{frames}"), ("samples", f"{result.count}"),
                ("scan (pass 1) s", f"{result.plan.scan_seconds:.2f}"),
                ("total s", f"{result.seconds:.2f}"),
                ("bag read MB/s (2 passes)", f"{result.megabytes_per_second:.1f}"),
                ("frames/s", f"{frames / result.seconds:.1f}")]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
