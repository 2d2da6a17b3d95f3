"""`ros2-pose demo dolly` and the end-to-end check of the shipped dolly models through the real nodes.

The CLI tests use the fixed-output dolly models (ros2_pose.demo.fixed_output_models). The end-to-end
test replays the dolly sample bag with the SHIPPED models (models/<SHIPPED_MODELS>) and checks the
received PoseStamped and TF against the bag's ground truth.
"""
import json

import cv2
import numpy as np
import pytest

from ros2_pose.cli.main import main
from ros2_pose.samples import sample_bag

# The shipped models the end-to-end test replays (names under models/, or folders).
SHIPPED_MODELS = {"detector": "dolly_detector", "pose": "dolly_pose_half"}
# Tolerances of the end-to-end test, over the frames in which the dolly is visible. They bound what
# the shipped model measurably does on this bag (docs/RESULTS.md: median translation 0.17-0.28 m,
# median rotation 32-61 deg, poses for 53-61 % of frames), with margin for the 36-frame sample. They
# are NOT the product's targets (issue 4: 3 cm / 1.6 deg), which the CPU-trained model does not reach
# yet; they do catch a broken pipeline: a wrong rotation convention gives a median near 120 deg, a
# wrong depth lifting errors of metres, a detector or crop mismatch a pose rate near 0.
MAX_MEDIAN_TRANSLATION_ERROR_M = 0.60
MAX_MEDIAN_ROTATION_ERROR_DEG = 90.0
MIN_POSE_RATE = 0.35

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(fixed_dolly_models):
    return fixed_dolly_models


def test_demo_dolly_prints_frames_table_and_writes_overlays(models, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "dolly", "--detector", str(models["detector"]), "--model", str(models["pose"]),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    frame_lines = [line for line in text.splitlines() if " t=" in line and " est " in line]
    assert len(frame_lines) == 36  # one line per image of the sample bag
    assert sum("| err " in line for line in frame_lines) >= 30  # the fixed models give a pose per frame
    assert "| Median rotation error (deg) |" in text and "TF <camera frame> -> dolly" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 36 and metrics["pose_rate"] >= 30 / 36
    video = cv2.VideoCapture(str(out / "dolly_overlay.mp4"))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 36
    assert (int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)
    sheet = cv2.imread(str(out / "dolly_contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 200 and sheet.shape[1] > 600


def test_demo_dolly_with_missing_models_says_what_to_do(models, tmp_path, capsys):
    assert main(["demo", "dolly", "--detector", str(models["detector"]), "--model", str(tmp_path / "no_such_model"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pose model" in err and "no_such_model" in err and "--model" in err


def test_shipped_models_track_the_dolly_sample_through_the_real_nodes():
    """Fails until the shipped models exist under models/ (that is the point: the demo must work
    out of the box with them)."""
    from ros2_pose.demo.dolly_replay import replay_dolly_bag
    from ros2_pose.demo.dolly_report import evaluation_of

    result = replay_dolly_bag(sample_bag("dolly"), SHIPPED_MODELS["detector"], SHIPPED_MODELS["pose"],
                              keep_images=False, log=lambda text: None)
    frames = result.frames
    assert len(frames) == 36
    visible = [f for f in frames if f.visible is not False and f.truth is not None]
    posed = [f for f in visible if f.estimate is not None]
    assert len(posed) >= MIN_POSE_RATE * len(visible), \
        f"poses for {len(posed)}/{len(visible)} frames with the dolly in view"
    # Every pose came with the same transform on /tf, in the image's frame.
    assert all(f.tf_matches_pose() for f in posed)
    metrics = evaluation_of(frames).metrics()
    assert metrics["median_translation_m"] < MAX_MEDIAN_TRANSLATION_ERROR_M, metrics
    assert metrics["median_rotation_deg"] < MAX_MEDIAN_ROTATION_ERROR_DEG, metrics
    assert all(np.isfinite(f.estimate.translation).all() for f in posed)
