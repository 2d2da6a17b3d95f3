"""Contact sheets render the labels, with the right size; `ros2-pose dataset build|show` end to end."""
import cv2
import numpy as np

from ros2_pose.cli.main import main
from ros2_pose.data.builders.fixture_bag import write_fixture_bag
from ros2_pose.data.contact_sheet import TILE, contact_sheet, render_sample


def test_sheet_size_and_axes_drawn():
    K = np.array([[100.0, 0, 63.5], [0, 100, 63.5], [0, 0, 1]])
    sample = {"crop": np.zeros((128, 128, 3), np.uint8), "K": K, "rotation": np.eye(3),
              "translation": np.array([0.0, 0.0, 2.0]), "crop_matrix": np.array([[1.0, 0, 0], [0, 1, 0]])}
    tile = render_sample(sample, axis_length=0.5)
    assert tile.shape == (TILE, TILE, 3)
    # x axis: red line from the centre to the right (25 px at 128 -> 31 px at 160)
    region = tile[74:86, 85:105].astype(int)
    assert region[..., 0].max() > 100 and region[..., 0].max() > region[..., 2].max() + 50
    assert tile[74:86, 40:70].max() == 0  # nothing drawn left of the origin
    sheet = contact_sheet([sample] * 5, columns=2)
    assert sheet.shape == (3 * (TILE + 4), 2 * (TILE + 4), 3)


def test_cli_build_and_show(tmp_path, capsys):
    write_fixture_bag(tmp_path / "bag", n_frames=4)
    assert main(["dataset", "build", "dolly", "--bags", str(tmp_path / "bag"), "--out", str(tmp_path / "ds"),
                 "--gt-source", "topic", "--crops-per-frame", "2"]) == 0
    out = capsys.readouterr().out
    assert "8 samples from 4 frames" in out and "camera_info: 4/4 matched" in out
    assert main(["dataset", "show", str(tmp_path / "ds"), "--split", "all", "--n", "3",
                 "--out", str(tmp_path / "sheet.png")]) == 0
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape == (2 * (TILE + 4), 2 * (2 * TILE + 4), 3)
    # zero matches: non-zero exit, the counts said, no dataset left claiming to be complete
    assert main(["dataset", "build", "dolly", "--bags", str(tmp_path / "bag"), "--out", str(tmp_path / "bad"),
                 "--gt-source", "tf", "--tolerance-ms", "0", "--tf-max-gap-ms", "0"]) != 0
    assert "0/4" in capsys.readouterr().err and not (tmp_path / "bad" / "manifest.json").exists()
