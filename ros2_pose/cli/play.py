"""`ros2-pose play BAG [BAG ...] [--rate R] [--loop] [--topics ...] [--start-paused] [--restamp] [--clock]`:
publish recorded bags into the live graph (ros2_pose.nodes.bag_player); Ctrl-C stops."""
from __future__ import annotations


def register(parser):
    parser.add_argument("bags", nargs="+", metavar="BAG", help="bag folder(s), .mcap or .db3 file(s); merged by time")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (2.0: twice as fast)")
    parser.add_argument("--loop", action="store_true",
                        help="restart at the end (stamps jump back: downstream nodes see a time jump)")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.add_argument("--start-paused", action="store_true", help="wait for the ~/resume service")
    parser.add_argument("--restamp", action="store_true", help="set header stamps to the publish time")
    parser.add_argument("--clock", action="store_true", help="publish the bag time on /clock")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ros2_pose.data.bags import BagError
    from ros2_pose.nodes.bag_player import play

    if not args.rate > 0:
        raise SystemExit(f"ros2-pose play: --rate must be > 0, got {args.rate}")
    try:
        published = play(args.bags, rate=args.rate, loop=args.loop, topics=args.topics,
                         start_paused=args.start_paused, restamp=args.restamp, publish_clock=args.clock)
    except BagError as exc:
        raise SystemExit(f"ros2-pose play: {exc}") from exc
    print(f"published {published} messages")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m ros2_pose.cli.play ...`: the same verb without going through `ros2-pose`."""
    import argparse

    parser = argparse.ArgumentParser(prog="ros2-pose play", description=__doc__.splitlines()[0])
    register(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
