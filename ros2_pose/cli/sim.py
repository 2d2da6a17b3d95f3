"""`ros2-pose sim <task>`: render synthetic frames of a task into a rosbag2 bag (DESIGN.md topics)."""
from __future__ import annotations

import sys
from pathlib import Path

from ros2_pose.sim.tasks import TASKS


def register(parser):
    parser.add_argument("task", choices=sorted(TASKS), help="what to render")
    parser.add_argument("--frames", type=int, required=True, help="number of frames")
    parser.add_argument("--out", type=Path, required=True, help="bag folder to create")
    parser.add_argument("--seed", type=int, default=0, help="frames depend only on (seed, frame index)")
    parser.add_argument("--workers", type=int, default=1, help="render processes (each with its own GL context)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--preset", default="default",
                        help="domain randomisation ranges, each task its own: 'default' and 'ood' (outside the "
                             "training ranges) for every task; 'turning' (motion only): a fast look-around, "
                             "rotation-dominated motion")
    parser.add_argument("--backend", choices=("auto", "egl", "numpy"), default="auto", help="renderer")
    parser.add_argument("--fps", type=float, default=30.0, help="stamp spacing of the frames")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    parser.add_argument("--no-dense", action="store_true",
                        help="leave out depth and segmentation (a bag to replay and evaluate poses on)")
    parser.add_argument("--sequence-length", type=int, default=None,
                        help="motion only: frames per room and trajectory (default 60); shorter sequences give "
                             "more rooms for the same number of frames")
    parser.add_argument("--compress", action="store_true",
                        help="zstd-compress every message (rosbag2 message compression): smaller bags")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ros2_pose.data.bags import BagError
    from ros2_pose.sim.tasks import TaskUnavailableError, check_preset
    from ros2_pose.sim.writer import render_bag

    if args.frames < 1 or args.workers < 1 or args.width < 16 or args.height < 16:
        print("error: need --frames >= 1, --workers >= 1 and an image of at least 16x16", file=sys.stderr)
        return 2
    if args.sequence_length is not None and (args.task != "motion" or args.sequence_length < 2):
        print("error: --sequence-length is a motion option and needs at least 2 frames", file=sys.stderr)
        return 2
    try:
        check_preset(args.task, args.preset)
    except (ValueError, TaskUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    options = dict(width=args.width, height=args.height, preset=args.preset, backend=args.backend)
    if args.sequence_length is not None:
        options["sequence_length"] = args.sequence_length
    try:
        render_bag(args.task, args.frames, args.out, seed=args.seed, workers=args.workers, storage=args.storage,
                   fps=args.fps, overwrite=args.overwrite, compress=args.compress,
                   dense=not args.no_dense, **options)
    except (TaskUnavailableError, BagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.frames} {args.task} frames to {args.out} ({args.storage})")
    return 0
