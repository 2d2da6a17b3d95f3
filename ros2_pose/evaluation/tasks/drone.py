"""Evaluate the drone keypoint networks on held-out bags: NPE, AD, ACC2/5, ADD2/5, Proj2/5 per drone model."""
from __future__ import annotations

import argparse

DEFAULT_MODELS = ["drone_pose_large", "drone_pose_small"]


def add_arguments(parser):
    parser.add_argument("--model", nargs="+", default=None,
                        help="keypoint network(s): shipped model names or folders, one per drone model "
                             f"(default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--data", nargs="+", default=None,
                        help="bag(s) with /camera/image_raw, /camera/camera_info, /tf and /ground_truth/keypoints "
                             "(default: the standard held-out set, rendered on first use)")
    parser.add_argument("--gt-boxes", action="store_true",
                        help="crop around the ground-truth boxes instead of the networks' coarse pass")
    parser.add_argument("--keypoints", default="network", choices=["network", "template"],
                        help="template: each model's mean training keypoint layout placed in the crop instead of "
                             "the network's keypoints, the floor that ignores the image (needs --gt-boxes)")
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "tensorrt"])
    parser.add_argument("--decoder", default="argmax_subpixel",
                        choices=["argmax_subpixel", "center_of_mass", "soft_argmax"])
    parser.add_argument("--pnp", default="sqpnp", choices=["sqpnp", "epnp", "iterative"])
    parser.add_argument("--ransac", action=argparse.BooleanOptionalAction, default=True,
                        help="PnP inside RANSAC (the node's default); --no-ransac uses all confident keypoints")
    parser.add_argument("--confidence-threshold", type=float, default=0.1,
                        help="keypoints below this heatmap confidence are left out of PnP")
    parser.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames")
    parser.add_argument("--json", default=None, help="write the metrics as JSON here")


def run(args) -> int:
    from tqdm import tqdm

    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.evaluation.drone import evaluate_bags, metrics_table, write_json
    from ros2_pose.evaluation.heldout import heldout_bag
    from ros2_pose.pipelines.drone import DroneModelInfo, DronePosePipeline, PnPSettings
    from ros2_pose.resources import model_location

    if args.keypoints == "template" and not args.gt_boxes:
        raise SystemExit("eval drone --keypoints template needs --gt-boxes: a template cannot find the drone")
    models = []
    for name in args.model or DEFAULT_MODELS:
        folder = model_location(name)
        models.append((create_runner(folder, backend=args.backend, intra_op_threads=1), DroneModelInfo.from_folder(folder)))
    pipeline = DronePosePipeline(models, decoder=args.decoder,
                                 pnp=PnPSettings(args.pnp, ransac=args.ransac,
                                                 confidence_threshold=args.confidence_threshold),
                                 keypoint_source=args.keypoints)
    bags = args.data or [heldout_bag("drone")]
    bar = tqdm(desc="eval drone", unit="frame")

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)
    evaluation = evaluate_bags(bags, pipeline, gt_boxes=args.gt_boxes, max_frames=args.max_frames, progress=progress)
    bar.close()
    if not evaluation.records:
        print(f"no frame of {[str(b) for b in bags]} shows a drone of the evaluated models {pipeline.drone_models}")
        return 1
    metrics = evaluation.metrics({name: info.keypoints_3d for name, (_, info) in pipeline.models.items()})
    print(metrics_table(metrics))
    if args.json:
        write_json({"models": [str(m) for m in (args.model or DEFAULT_MODELS)], "backend": args.backend,
                    "boxes": "ground truth" if args.gt_boxes else "coarse pass", "keypoints": args.keypoints, "decoder": args.decoder,
                    "pnp": args.pnp, "ransac": args.ransac, "data": [str(b) for b in bags],
                    "per_drone_model": metrics}, args.json)
    return 0
