"""`ros2-pose`: the one command line for offline work (placeholder until verbs are registered)."""
import sys


def main(argv=None):
    print("ros2-pose: no verbs yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
