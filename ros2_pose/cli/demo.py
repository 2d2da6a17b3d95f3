"""`ros2-pose demo <task>`: replay a sample bag through the real nodes and show what they publish.

`ros2-pose demo dolly` starts the dolly graph (config/graphs/dolly.yaml, the dolly_pose node with
its parameter file) in this process, replays the bag (default: the dolly sample bag) into it, and
prints one line per frame (estimated x y z / yaw pitch roll against the ground truth, errors), then
the Table-1 metrics of the replay. It writes an MP4 and a PNG contact sheet with the estimated and
ground-truth boxes and axes drawn, and metrics.json, into --out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_OUT = "demo_dolly"


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="target", metavar="<demo>", required=True)
    dolly = sub.add_parser("dolly", help="the dolly 6DoF pose node on the dolly sample bag",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dolly.add_argument("--bag", type=Path, default=None,
                       help="bag to replay (default: the dolly sample bag, rendered on first use)")
    dolly.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch", "tensorrt"),
                       help="inference backend of the node (default onnxruntime)")
    dolly.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                       help=f"folder for the overlay video, contact sheet and metrics (default ./{DEFAULT_OUT})")
    dolly.add_argument("--detector", default="dolly_detector",
                       help="detector: shipped model name or model folder (default dolly_detector)")
    dolly.add_argument("--model", default="dolly_pose_half",
                       help="pose network: shipped model name or model folder (default dolly_pose_half)")
    dolly.add_argument("--rate", type=float, default=1.0,
                       help="playback speed with --realtime (default 1.0, recorded timing)")
    dolly.add_argument("--realtime", action="store_true",
                       help="play at the recorded timing x --rate, as a camera would (frames the node cannot "
                            "keep up with are dropped); default: each image waits until the node has handled "
                            "the previous one, so every frame is processed")
    dolly.add_argument("--score-threshold", type=float, default=None,
                       help="override the node's score_threshold (default: config/dolly_pose.yaml)")
    dolly.add_argument("--sheet-frames", type=int, default=6, help="frames on the contact sheet (default 6)")
    dolly.set_defaults(func=run_dolly)


def _fps(frames) -> float:
    stamps = sorted(f.stamp_ns for f in frames)
    if len(stamps) < 2:
        return 10.0
    step = float(sorted(b - a for a, b in zip(stamps, stamps[1:]))[len(stamps) // 2 - 1]) / 1e9
    return 1.0 / step if step > 0 else 10.0


def _caption(index: int, frame) -> str:
    from ros2_pose.geometry.transforms import rotation_error_deg

    import numpy as np

    text = f"#{index} {frame.status}"
    if frame.estimate is not None and frame.truth is not None:
        t_err = np.linalg.norm(frame.estimate.translation - frame.truth.translation)
        r_err = float(rotation_error_deg(frame.estimate.rotation, frame.truth.rotation))
        text += f" err {t_err * 100:.1f} cm {r_err:.1f} deg"
    return text


def write_overlays(frames, out: Path, sheet_frames: int) -> tuple[Path, Path] | None:
    """The MP4 of every frame with an image and a contact sheet of `sheet_frames` of them."""
    from ros2_pose.demo.dolly_overlay import OverlayFrame, contact_sheet, draw_overlay, write_png, write_video

    drawn = [draw_overlay(OverlayFrame(f.image, f.camera, _caption(i, f), f.estimate, f.box, f.truth, f.truth_box))
             for i, f in enumerate(frames) if f.image is not None]
    if not drawn:
        return None
    video = write_video(out / "dolly_overlay.mp4", drawn, _fps(frames))
    sheet = write_png(out / "dolly_contact_sheet.png", contact_sheet(drawn, count=sheet_frames))
    return video, sheet


def run_dolly(args: argparse.Namespace) -> int:
    # Before anything initialises rclpy: discovery on this machine only, a domain of our own.
    from ros2_pose.demo.dolly_replay import ensure_local_ros_environment

    domain = ensure_local_ros_environment()
    from ros2_pose.demo.dolly_replay import MissingModelError, locate_models, replay_dolly_bag
    from ros2_pose.demo.dolly_report import evaluation_of, frame_line, summary_lines
    from ros2_pose.evaluation.dolly import table_1
    from ros2_pose.graph.runner import GraphStartError

    if not args.rate > 0:
        print(f"ros2-pose demo dolly: --rate must be > 0, got {args.rate}", file=sys.stderr)
        return 2
    try:
        locate_models(args.detector, args.model)  # fail before rendering a sample bag
    except MissingModelError as exc:
        print(f"ros2-pose demo dolly: {exc}", file=sys.stderr)
        return 2
    if args.bag is None:
        from ros2_pose.samples import sample_bag

        args.bag = sample_bag("dolly", progress=sys.stdout.isatty())
    print(f"replaying {args.bag} through the dolly graph (backend {args.backend}, ROS_DOMAIN_ID={domain}, "
          f"discovery {__import__('os').environ['ROS_AUTOMATIC_DISCOVERY_RANGE']})", flush=True)
    params = {} if args.score_threshold is None else {"score_threshold": float(args.score_threshold)}
    try:
        result = replay_dolly_bag(args.bag, args.detector, args.model, backend=args.backend, rate=args.rate,
                                  lockstep=not args.realtime,
                                  node_parameters=params,
                                  on_frame=lambda i, f: print(frame_line(i, f), flush=True),
                                  log=lambda text: print(f"ros2-pose demo: {text}", file=sys.stderr))
    except (MissingModelError, FileNotFoundError, ValueError, GraphStartError, TimeoutError) as exc:
        print(f"ros2-pose demo dolly: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    frames = result.frames
    if not frames:
        print("ros2-pose demo dolly: no image reached the node", file=sys.stderr)
        return 1
    print()
    for line in summary_lines(frames, result.node_diagnostics):
        print(line)
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = None
    try:
        metrics = evaluation_of(frames).metrics()
    except ValueError as exc:  # no ground truth in the bag, or the dolly never in view
        print(f"no Table-1 metrics: {exc}")
    if metrics is not None:
        print()
        print(table_1({"dolly_pose (live node)": metrics}))
        print("(inference time here: image received -> /dolly/detections received, through the live node)")
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    written = write_overlays(frames, args.out, args.sheet_frames)
    if written is not None:
        print(f"\noverlay video: {written[0]}\ncontact sheet: {written[1]}")
    return 0
