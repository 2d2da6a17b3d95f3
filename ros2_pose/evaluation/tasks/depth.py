"""Evaluate monocular depth (abs-rel ... delta) and visual odometry (5-frame ATE, RPE) on motion bags."""
from __future__ import annotations

from pathlib import Path

DEFAULT_DEPTH_MODEL = "depth_egomotion_depth"
DEFAULT_POSE_MODEL = "depth_egomotion_pose"


def add_arguments(parser):
    parser.add_argument("--model", default=None,
                        help="a `train depth` run folder (its model_depth + model_pose), or the depth network: "
                             f"shipped model name or folder (default: {DEFAULT_DEPTH_MODEL})")
    parser.add_argument("--pose-model", default=None,
                        help=f"pose network: shipped model name or folder (default: the run's model_pose, else "
                             f"{DEFAULT_POSE_MODEL})")
    parser.add_argument("--data", nargs="+", default=None,
                        help="bag(s) with /camera/image_raw, /camera/camera_info, /camera/depth/image and TF "
                             "world -> camera (default: the standard held-out motion set, rendered on first use)")
    held_out = parser.add_mutually_exclusive_group()
    held_out.add_argument("--ood", action="store_true",
                          help="use the out-of-distribution held-out motion set (dim, tinted light)")
    held_out.add_argument("--turning", action="store_true",
                          help="use the turning held-out motion set (fast look-around: rotation dominates)")
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--min-depth", type=float, default=0.1, help="ground truth below this is not scored (m)")
    parser.add_argument("--max-depth", type=float, default=20.0, help="ground truth above this is not scored (m)")
    parser.add_argument("--odometry-baseline", type=int, default=1,
                        help="frames of the pose network's window the odometry motion is read across "
                             "(1: consecutive frames; the node's odometry_baseline)")
    parser.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames")
    parser.add_argument("--json", default=None, help="write the metrics as JSON here")


def model_folders(model: str | None, pose_model: str | None) -> tuple[Path, Path]:
    """(depth, pose) model locations: a run folder gives both; otherwise names/folders or the defaults."""
    from ros2_pose.resources import model_location

    if model is not None and (Path(model) / "model_depth").is_dir():
        run = Path(model)
        return run / "model_depth", model_location(pose_model) if pose_model else run / "model_pose"
    return model_location(model or DEFAULT_DEPTH_MODEL), model_location(pose_model or DEFAULT_POSE_MODEL)


def format_table(metrics: dict) -> str:
    rows = [("abs-rel", "abs_rel", "{:.3f}"), ("sq-rel", "sq_rel", "{:.3f}"), ("RMSE (m)", "rmse", "{:.3f}"),
            ("RMSE log", "rmse_log", "{:.3f}"), ("delta < 1.25", "a1", "{:.3f}"), ("delta < 1.25^2", "a2", "{:.3f}"),
            ("delta < 1.25^3", "a3", "{:.3f}"), ("ATE 5-frame (m)", "ate_mean", "{:.4f}"),
            ("RPE translation (m)", "rpe_translation_rmse", "{:.4f}"),
            ("RPE rotation (deg)", "rpe_rotation_deg_rmse", "{:.3f}"),
            ("Median inference (ms)", "median_inference_ms", "{:.1f}"),
            # as published, without median / least-squares scaling: metric for networks trained on
            # metric ground truth (the pose model's motion.yaml says metric: true), else network units
            ("abs-rel, unscaled", "abs_rel_unscaled", "{:.3f}"), ("RMSE, unscaled (m)", "rmse_unscaled", "{:.3f}"),
            ("delta < 1.25, unscaled", "a1_unscaled", "{:.3f}"),
            ("ATE 5-frame, unscaled (m)", "ate_mean_unscaled", "{:.4f}"),
            ("RPE translation, unscaled (m)", "rpe_translation_rmse_unscaled", "{:.4f}"),
            # what no learning gives on the same frames (ros2_pose.evaluation.depth)
            ("abs-rel, constant-depth baseline", "baseline_constant_depth_abs_rel", "{:.3f}"),
            ("delta < 1.25, constant-depth baseline", "baseline_constant_depth_a1", "{:.3f}"),
            ("ATE 5-frame, zero-motion baseline (m)", "baseline_zero_motion_ate_mean", "{:.4f}"),
            ("RPE translation, zero-motion baseline (m)", "baseline_zero_motion_rpe_translation_rmse", "{:.4f}"),
            ("RPE rotation, zero-motion baseline (deg)", "baseline_zero_motion_rpe_rotation_deg_rmse", "{:.3f}"),
            ("ATE 5-frame, straight-ahead baseline (m)", "baseline_straight_ate_mean", "{:.4f}"),
            ("RPE translation, straight-ahead baseline (m)", "baseline_straight_rpe_translation_rmse", "{:.4f}")]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {label} | {fmt.format(metrics[key])} |" for label, key, fmt in rows if key in metrics]
    return "\n".join(lines)


def run(args) -> int:
    from tqdm import tqdm

    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.evaluation.depth import evaluate_bags, write_json
    from ros2_pose.evaluation.heldout import heldout_bag
    from ros2_pose.pipelines.depth_egomotion import DepthEgoMotionPipeline, read_motion_sidecar

    bags = args.data or [heldout_bag("motion_ood" if args.ood else "motion_turning" if args.turning else "motion")]
    depth_folder, pose_folder = model_folders(args.model, args.pose_model)
    depth = create_runner(depth_folder, backend=args.backend, intra_op_threads=1)
    pose = create_runner(pose_folder, backend=args.backend, intra_op_threads=1)
    motion = read_motion_sidecar(pose_folder)
    pipeline = DepthEgoMotionPipeline(depth, pose, target_index=motion.get("target_index"),
                                      odometry_baseline=args.odometry_baseline)
    bar = tqdm(desc="eval depth", unit="frame")

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)
    evaluation = evaluate_bags(bags, pipeline, args.min_depth, args.max_depth, args.max_frames, progress=progress)
    bar.close()
    metrics = evaluation.metrics()
    print(format_table(metrics))
    if args.json:
        write_json({"depth_model": str(depth_folder), "pose_model": str(pose_folder), "backend": args.backend,
                    "data": [str(b) for b in bags], **metrics}, args.json)
    return 0 if metrics.get("ate_snippets", 0) > 0 else 1
