"""`ros2-pose`: the one command line for offline work.

Each verb lives in its own module exposing `register(subparsers)`, which adds a sub-parser whose
`func(args) -> int` does the work. Verb modules are imported lazily by name so that
`ros2-pose --help` stays fast and a verb whose heavy dependency is missing fails alone, loudly.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# verb -> (module, one-line help). Modules are imported only when their verb runs or on --help.
VERBS: dict[str, tuple[str, str]] = {
    "sim": ("ros2_pose.cli.sim", "render synthetic scenes into ROS 2 bags"),
    "record": ("ros2_pose.cli.record", "record topics into a rosbag2 (mcap) bag"),
    "play": ("ros2_pose.cli.play", "publish recorded bags into the live graph"),
    "dataset": ("ros2_pose.cli.dataset", "build training datasets from bags, or show them"),
    "train": ("ros2_pose.cli.train", "train a model from a YAML config"),
    "eval": ("ros2_pose.cli.evaluate", "evaluate a model on a held-out dataset"),
    "export": ("ros2_pose.cli.export", "export a model to ONNX and check it with ONNX Runtime"),
    "engine": ("ros2_pose.cli.engine", "build and inspect TensorRT engines"),
    "bench": ("ros2_pose.cli.bench", "benchmarks that print a table"),
    "up": ("ros2_pose.cli.up", "start a node graph without `ros2 launch`"),
    "demo": ("ros2_pose.cli.demo", "replay a sample bag through the real nodes"),
    "fmaps": ("ros2_pose.cli.fmaps", "dump feature maps and write channel-statistics reports"),
    "prune": ("ros2_pose.cli.prune", "remove channels by activation or weight norm, for retraining"),
    "bpnet": ("ros2_pose.cli.bpnet", "BodyPoseNet workflow: dataset_convert, train, evaluate, inference, prune, export"),
}


def available_verbs() -> dict[str, tuple[str, str]]:
    """The verbs whose module exists in this installation."""
    return {v: (m, h) for v, (m, h) in VERBS.items() if importlib.util.find_spec(m) is not None}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ros2-pose", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, (module, help_text) in available_verbs().items():
        if only is not None and verb != only:
            # Keep the verb listed in --help without importing its module.
            sub.add_parser(verb, help=help_text)
            continue
        importlib.import_module(module).register(sub.add_parser(verb, help=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verb = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=verb if verb in VERBS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.verb is None else 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
