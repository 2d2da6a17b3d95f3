"""`ros2-pose record --topics /a /b --out BAG [--storage mcap] [--duration S]`: record a running
graph's topics into a rosbag2 bag (ros2_pose.nodes.recorder); Ctrl-C or SIGTERM closes it cleanly."""
from __future__ import annotations

import os


def register(parser):
    parser.add_argument("--topics", nargs="+", required=True, metavar="TOPIC", help="topics to record")
    parser.add_argument("--out", required=True, help="bag folder to create")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to record (0: until Ctrl-C)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag at --out")
    parser.add_argument("--discovery-timeout", type=float, default=5.0,
                        help="warn when a topic has no publisher after this many seconds")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ros2_pose.data.bags import BagExistsError
    from ros2_pose.nodes.recorder import record

    if os.path.exists(args.out) and not args.overwrite:
        raise SystemExit(f"ros2-pose record: {args.out} exists; pass --overwrite to replace it")
    try:
        counts = record(args.topics, args.out, args.storage, args.duration, args.overwrite, args.discovery_timeout)
    except BagExistsError as exc:
        raise SystemExit(f"ros2-pose record: {exc}") from exc
    return 0 if sum(counts.values()) else 1
