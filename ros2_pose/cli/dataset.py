"""`ros2-pose dataset build <task> ...` and `ros2-pose dataset show DIR ...`."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

def _tasks() -> list[str]:
    """Task builders present in this installation (one module each in ros2_pose.data.builders)."""
    names = ("dolly", "drone", "motion", "people")
    return [n for n in names if importlib.util.find_spec(f"ros2_pose.data.builders.{n}") is not None]


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--split wants three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"--split wants three non-negative numbers summing to 1, got {text!r}")
    return values


def _topic_mapping(text: str) -> tuple[str, str]:
    stream, sep, topic = text.partition("=")
    if not sep or not stream or not topic.startswith("/"):
        raise argparse.ArgumentTypeError(f"--topic wants STREAM=/topic, e.g. image=/camera/color/image_raw; got {text!r}")
    return stream, topic


def register(parser: argparse.ArgumentParser) -> None:
    from ros2_pose.data.builders.frames import TOPICS

    sub = parser.add_subparsers(dest="action", metavar="<build|show>", required=True)
    build = sub.add_parser("build", help="build a task's dataset from bags")
    build.add_argument("task", choices=_tasks())
    build.add_argument("--bags", nargs="+", required=True, type=Path, help="bag folders or .mcap/.db3 files")
    build.add_argument("--out", required=True, type=Path, help="new dataset folder")
    build.add_argument("--tolerance-ms", type=float, default=5.0, help="stamp matching tolerance (default 5)")
    build.add_argument("--gt-source", choices=("tf", "topic", "none"), default="tf",
                       help="ground truth from /tf (+/tf_static) or /ground_truth/pose (default tf); motion "
                            "also takes none: images only, for self-supervised training")
    build.add_argument("--tf-max-gap-ms", type=float, default=100.0,
                       help="TF samples at most this far apart are interpolated (default 100)")
    build.add_argument("--object-frame", default=None, help="TF frame of the tracked object (default: the task's)")
    build.add_argument("--world-frame", default="world", help="TF frame both poses are given in (default world)")
    build.add_argument("--camera-frame", default="camera_link",
                       help="TF frame of the camera body, child of the world frame on /tf (default camera_link)")
    build.add_argument("--optical-frame", default="camera_optical_frame",
                       help="camera optical frame, child of the camera frame on /tf_static (default camera_optical_frame)")
    build.add_argument("--topic", action="append", type=_topic_mapping, default=[], metavar="STREAM=TOPIC",
                       help="read a stream from the robot's topic, e.g. image=/camera/color/image_raw "
                            f"(repeatable; streams: {', '.join(sorted(TOPICS))})")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--split", type=_fractions, default=(0.8, 0.1, 0.1), help="train,val,test fractions")
    build.add_argument("--split-guard", type=int, default=1, help="frames dropped at split borders (default 1)")
    build.add_argument("--split-block", type=int, default=None, help="frames per split block (default N/20)")
    dolly = build.add_argument_group("dolly")
    dolly.add_argument("--crops-per-frame", type=int, default=1)
    dolly.add_argument("--box-jitter", type=float, default=0.0, help="box centre/size jitter, x box size")
    dolly.add_argument("--object-index", type=int, default=None, help="dolly's object index in /camera/segmentation")
    dolly.add_argument("--masks", choices=("auto", "segmentation", "projected"), default="auto",
                       help="masks and boxes from /camera/segmentation, or rendered from the ground-truth pose "
                            "(robot bags without segmentation); auto: segmentation where the bag has it")
    images = build.add_argument_group("drone / motion")
    images.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), default=None,
                        help="resized image size (default drone 256 192, motion 128 96)")
    images.add_argument("--frames-per-sample", type=int, default=2, help="motion: 2 = pairs, 3 = triplets")
    images.add_argument("--distances", type=int, nargs="+", default=[1], help="motion: frame distance(s), a mix if several")
    build.set_defaults(func=run_build)

    show = sub.add_parser("show", help="contact sheet PNG of a dataset's samples")
    show.add_argument("folder", type=Path)
    show.add_argument("--split", default=None, choices=("train", "val", "test", "all"),
                      help="default: train; a COCO people folder has no splits (all its images)")
    show.add_argument("--n", type=int, default=16, help="samples to show (spread over the split)")
    show.add_argument("--out", type=Path, required=True, help="output .png")
    show.add_argument("--axis-length", type=float, default=0.3, help="pose axes length in metres")
    show.set_defaults(func=run_show)


def _progress():
    from tqdm import tqdm

    bar = tqdm(total=0, unit="frame", desc="building", file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def run_build(args) -> int:
    from ros2_pose.data.bags import BagError
    from ros2_pose.data.builders.frames import BuildOptions, DatasetBuildError, SplitOptions
    from ros2_pose.data.dataset import DatasetError

    builder = importlib.import_module(f"ros2_pose.data.builders.{args.task}")
    if args.task == "people":
        return _run_people(builder, args)
    bar, update = _progress()
    split = SplitOptions(args.split, args.seed, args.split_guard, args.split_block)
    try:
        options = BuildOptions(tolerance_ns=int(round(args.tolerance_ms * 1e6)), gt_source=args.gt_source,
                               tf_interpolation_gap_ns=int(round(args.tf_max_gap_ms * 1e6)),
                               object_frame=args.object_frame or builder.DEFAULT_OBJECT_FRAME, progress=update,
                               world_frame=args.world_frame, camera_frame=args.camera_frame,
                               optical_frame=args.optical_frame, topics=dict(args.topic))
        result = builder.build_from_args(args, options, split)
    except (BagError, DatasetBuildError, DatasetError, ValueError) as exc:
        bar.close()
        print(f"dataset build failed: {exc}", file=sys.stderr)
        return 1
    bar.close()
    manifest = result.manifest
    print(f"{args.task} dataset: {result.count} samples from {len(result.plan.frames)} frames -> {result.folder}")
    print(f"splits: {manifest['splits']}")
    empty = [name for name, fraction in zip(("train", "val", "test"), args.split)
             if fraction > 0 and not manifest["splits"].get(name)]
    if empty:
        # Training refuses an empty train/val split later; say so now, with the way out.
        print(f"warning: split(s) {empty} got no sample although their fraction is > 0: too few frames "
              f"for the split blocks; pass a smaller --split-block (frames per block) or more frames",
              file=sys.stderr)
    sync = manifest["sync"]
    for name, counts in sync.get("streams", {}).items():
        print(f"  {name:>16}: {counts['matched']}/{counts['total']} matched, {counts['unmatched']} unmatched")
    print(f"worst offset {sync.get('worst_offset_ns', 0) / 1e6:.3f} ms; {result.plan.bag_bytes / 1e6:.1f} MB of bags "
          f"in {result.seconds:.1f} s ({result.megabytes_per_second:.0f} MB/s read, "
          f"{len(result.plan.frames) / max(result.seconds, 1e-9):.0f} frames/s)")
    return 0


def _run_people(builder, args) -> int:
    """People datasets are COCO folders (see ros2_pose.data.builders.people)."""
    from ros2_pose.data.bags import BagError
    from ros2_pose.sim.coco_export import CocoExportError

    from ros2_pose.data.builders.frames import DatasetBuildError

    try:
        annotations = builder.build(args.bags, args.out, topics=dict(args.topic))
    except (BagError, CocoExportError, DatasetBuildError, ValueError) as exc:
        print(f"dataset build failed: {exc}", file=sys.stderr)
        return 1
    import json

    data = json.loads(Path(annotations).read_text())
    print(f"people dataset (COCO): {len(data.get('images', []))} images, "
          f"{len(data.get('annotations', []))} people -> {annotations}")
    return 0


def run_show(args) -> int:
    import numpy as np

    from ros2_pose.data.contact_sheet import contact_sheet, is_coco_folder, write_png
    from ros2_pose.data.dataset import ArrayDataset, DatasetError

    if args.n < 1:
        print(f"dataset show failed: --n must be at least 1, got {args.n}", file=sys.stderr)
        return 1
    if is_coco_folder(args.folder) and not (args.folder / "manifest.json").exists():
        return _show_coco(args)
    split = args.split or "train"
    try:
        ds = ArrayDataset(args.folder, split)
    except DatasetError as exc:
        print(f"dataset show failed: {exc}", file=sys.stderr)
        return 1
    if len(ds) == 0:
        print(f"dataset show failed: split {split!r} of {args.folder} is empty", file=sys.stderr)
        return 1
    picks = np.unique(np.linspace(0, len(ds) - 1, min(args.n, len(ds))).round().astype(int))
    sheet = contact_sheet([ds[int(i)] for i in picks], axis_length=args.axis_length)
    write_png(args.out, sheet)
    print(f"{len(picks)} samples of {args.folder} ({split}) -> {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


def _show_coco(args) -> int:
    """People datasets are COCO folders (no splits): `--n` images spread over the annotation file's list."""
    from ros2_pose.data.contact_sheet import CocoFolderError, coco_people_samples, contact_sheet, write_png

    if args.split not in (None, "all"):
        print(f"dataset show failed: {args.folder} is a COCO folder, which has no {args.split!r} split "
              f"(leave out --split or pass --split all)", file=sys.stderr)
        return 1
    try:
        samples = coco_people_samples(args.folder, args.n)
    except CocoFolderError as exc:
        print(f"dataset show failed: {exc}", file=sys.stderr)
        return 1
    sheet = contact_sheet(samples)
    write_png(args.out, sheet)
    people = sum(len(s["people"]) for s in samples)
    print(f"{len(samples)} images ({people} people) of COCO folder {args.folder} -> {args.out} "
          f"({sheet.shape[1]}x{sheet.shape[0]})")
    return 0
