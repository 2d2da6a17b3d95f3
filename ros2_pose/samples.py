"""Sample bags, one per task: a few seconds each, rendered deterministically by the set-up (or on
first use) into `data/samples/<name>` of the checkout (or $ROS2_POSE_CACHE/samples when installed).

They are what the demos, the examples in the README and the end-to-end tests replay. Each is small
(zstd message compression; the pose tasks leave out depth and segmentation), and the same seed
always gives the same bytes, so a test's expectations hold on every machine.

    python -m ros2_pose.samples          # render every sample that is missing (scripts/setup.sh runs this)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ros2_pose.resources import SOURCE_ROOT, package_share


@dataclass(frozen=True)
class Sample:
    task: str
    frames: int
    fps: float
    seed: int
    dense: bool             # depth + segmentation too (needed to build datasets from the bag)
    width: int = 640
    height: int = 480


SAMPLES = {
    # 3 s of the dolly seen from a robot camera, 12 Hz: replayed by `ros2-pose demo dolly`.
    "dolly": Sample("dolly", 36, 12.0, 7, dense=False),
    "drone": Sample("drone", 36, 12.0, 7, dense=False),
    "people": Sample("people", 24, 8.0, 7, dense=False),
    # Camera motion needs consecutive frames at the robot's rate and ground-truth depth.
    "motion": Sample("motion", 30, 30.0, 7, dense=True, width=320, height=240),
}


def samples_root() -> Path:
    """data/samples in a source checkout; the user's cache where the package is installed read-only."""
    share = package_share()
    if share == SOURCE_ROOT:
        return share / "data" / "samples"
    from ros2_pose.evaluation.heldout import cache_root

    return cache_root() / "samples"


def sample_bag(name: str, render_if_missing: bool = True, progress: bool = False) -> Path:
    """The sample bag `name` (see SAMPLES), rendered now if it is not there yet."""
    if name not in SAMPLES:
        raise KeyError(f"no sample {name!r}; samples: {sorted(SAMPLES)}")
    spec = SAMPLES[name]
    from ros2_pose.sim import RENDER_VERSION

    folder = samples_root() / name
    marker = folder / "COMPLETE"
    stamp = f"rendered completely, render version {RENDER_VERSION}, {spec}\n"
    if marker.is_file() and marker.read_text() == stamp:
        return folder / "bag"
    if not render_if_missing:
        raise FileNotFoundError(f"sample bag {name!r} has not been rendered yet (run: python -m ros2_pose.samples)")
    from ros2_pose.sim.writer import render_bag

    folder.mkdir(parents=True, exist_ok=True)
    render_bag(spec.task, spec.frames, folder / "bag", seed=spec.seed, fps=spec.fps, overwrite=True,
               compress=True, dense=spec.dense, progress=progress, width=spec.width, height=spec.height)
    marker.write_text(stamp)
    return folder / "bag"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(SAMPLES)
    for name in names:
        path = sample_bag(name, progress=sys.stdout.isatty())
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
        print(f"sample {name}: {path} ({size:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
