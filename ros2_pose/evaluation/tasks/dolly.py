"""Evaluate the dolly pipeline (detector + pose network) on held-out bags: Table 1 and box plots."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(parser):
    parser.add_argument("--model", default="dolly_pose_half",
                        help="pose network: shipped model name or folder (default: dolly_pose_half)")
    parser.add_argument("--detector", default="dolly_detector", help="detector: shipped model name or folder")
    parser.add_argument("--data", nargs="+", default=None,
                        help="bag(s) with /camera/image_raw, /camera/camera_info and /ground_truth/pose "
                             "(default: the standard held-out set, rendered on first use)")
    parser.add_argument("--ood", action="store_true",
                        help="use the out-of-distribution held-out set (lighting/materials/backgrounds "
                             "outside the training ranges) instead of the standard one")
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames")
    parser.add_argument("--json", default=None, help="write the metrics as JSON here")
    parser.add_argument("--plots", default=None, help="folder for the box plots (PNG)")


def run(args) -> int:
    from tqdm import tqdm

    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.evaluation.dolly import box_plots, evaluate_bags, table_1, write_json
    from ros2_pose.evaluation.heldout import heldout_bag
    from ros2_pose.pipelines.dolly import DollyPipeline
    from ros2_pose.resources import model_location

    bags = args.data or [heldout_bag("dolly_ood" if args.ood else "dolly")]
    detector = create_runner(model_location(args.detector), backend=args.backend, intra_op_threads=1)
    pose = create_runner(model_location(args.model), backend=args.backend, intra_op_threads=1)
    pipeline = DollyPipeline(detector, pose, score_threshold=args.score_threshold)
    bar = tqdm(desc="eval dolly", unit="frame")

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)
    evaluation = evaluate_bags(bags, pipeline, max_frames=args.max_frames, progress=progress)
    bar.close()
    metrics = evaluation.metrics()
    name = Path(str(args.model)).name
    print(table_1({name: metrics}))
    if args.json:
        write_json({"model": str(args.model), "detector": str(args.detector), "backend": args.backend,
                    "data": [str(b) for b in bags], **metrics}, args.json)
    if args.plots:
        for path in box_plots({name: evaluation}, args.plots):
            print(f"wrote {path}")
    return 0 if metrics["frames_dolly_visible"] else 1
