"""Contact sheets render the labels, with the right size; `ros2-pose dataset build|show` end to end, COCO
people folders included."""
import cv2
import numpy as np
import pytest

from ros2_pose.cli.main import main
from ros2_pose.data.builders.fixture_bag import write_fixture_bag
from ros2_pose.data.contact_sheet import (OCCLUDED_KEYPOINT, PEOPLE_TILE, PERSON_COLOURS, TILE, VISIBLE_KEYPOINT,
                                          CocoFolderError, coco_people_samples, contact_sheet, render_sample)


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


# ----------------------------------------------------------------------------- other sample kinds
def test_drone_sample_gets_a_zoom_panel_and_motion_sample_a_depth_panel():
    K = np.array([[200.0, 0, 127.5], [0, 200, 95.5], [0, 0, 1]])
    image = np.zeros((192, 256, 3), np.uint8)
    keypoints = np.array([[120.0, 90.0], [136.0, 90.0], [128.0, 100.0]])
    drone = {"image": image, "box": np.array([118.0, 88.0, 138.0, 102.0]), "keypoints": keypoints,
             "visibility": np.array([2, 1, 0], np.uint8), "K": K, "rotation": np.eye(3),
             "translation": np.array([0.0, 0.0, 5.0]), "pose_valid": True}
    tile = render_sample(drone, axis_length=0.05)
    assert tile.shape == (TILE, 2 * TILE, 3)
    zoom = tile[:, TILE:]
    # zoom: the box side 20 px * 1.6 -> 160 px (5x); keypoint 0 (visible) filled at its magnified place
    x, y = (np.array([120.0, 90.0]) - [128.0, 95.0]) * 5 + 79.5
    assert tuple(zoom[int(round(y)), int(round(x))]) == VISIBLE_KEYPOINT
    # keypoint 2 (not labelled) is not drawn: its place keeps the (black) image
    x, y = (np.array([128.0, 100.0]) - [128.0, 95.0]) * 5 + 79.5
    assert zoom[int(round(y)), int(round(x))].max() == 0
    frames = np.zeros((2, 96, 128, 3), np.uint8)
    depth = np.full((2, 96, 128), 4.0, np.float32)
    depth[:, :, :64] = 1.0
    depth[:, :10] = 0.0  # unknown
    motion = {"frames": frames, "depths": depth, "frame_ids": np.array([3, 4]),
              "relative_poses": np.eye(4)[None]}
    tile = render_sample(motion)
    assert tile.shape == (TILE, 3 * TILE, 3)
    depth_panel = tile[:, 2 * TILE:].astype(int)
    assert depth_panel[60, 20, 0] > depth_panel[60, 20, 2]   # near: red end of the colour map
    assert depth_panel[60, 140, 2] > depth_panel[60, 140, 0]  # far: blue end
    assert depth_panel[5, 20].max() == 0                      # unknown depth stays black


def test_dolly_mask_keeps_holes():
    """A frame-shaped mask (bars round a hole) is filled on the bars only, outlined inside and out."""
    crop = np.zeros((128, 128, 3), np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[8:56, 8:56] = 1
    mask[20:44, 20:44] = 0
    tile = render_sample({"crop": crop, "mask": mask})
    assert tile[30, 30, 0] > 50 and tile[30, 30, 1] == 0  # on a bar: translucent magenta
    assert tile[80, 80].max() == 0                        # the hole: untouched
    across = [tuple(c) for c in tile[80, 40:60]]          # a row from the bar into the hole (edge at 50)
    assert (255, 0, 255) in across                        # the hole's outline is drawn too


def _write_coco_folder(folder, with_bad_name=False):
    from ros2_pose.sim.coco_export import CocoWriter, PersonRecord

    image = np.zeros((160, 200, 3), np.uint8)
    keypoints = np.zeros((17, 3))
    keypoints[5] = (40, 40, 2)    # left shoulder, visible
    keypoints[7] = (40, 100, 2)   # left elbow, visible   -> limb 5-7 solid
    keypoints[6] = (120, 40, 2)   # right shoulder, visible
    keypoints[8] = (120, 100, 1)  # right elbow, occluded -> limb 6-8 dashed
    mask = np.zeros((160, 200), bool)
    mask[30:111, 30:131] = True
    with CocoWriter(folder, image_format="png") as writer:
        writer.add(image, [PersonRecord(1, (30, 30, 130, 110), keypoints, mask),
                           PersonRecord(2, (160, 20, 190, 60), np.zeros((17, 3)), None)])
        writer.add(image, [])
    if with_bad_name:
        import json

        path = folder / "annotations" / "person_keypoints.json"
        data = json.loads(path.read_text())
        data["images"][0]["file_name"] = "../../outside.png"
        path.write_text(json.dumps(data))


def test_cli_show_coco_people_folder(tmp_path, capsys):
    _write_coco_folder(tmp_path / "coco")
    samples = coco_people_samples(tmp_path / "coco")
    assert len(samples) == 2 and len(samples[0]["people"]) == 2 and samples[1]["people"] == []
    assert (4, 6) in samples[0]["skeleton"]  # COCO's 1-based [5, 7] (left shoulder - left elbow)
    assert main(["dataset", "show", str(tmp_path / "coco"), "--n", "1", "--out", str(tmp_path / "people.png")]) == 0
    assert "1 images (2 people)" in capsys.readouterr().out
    sheet = cv2.cvtColor(cv2.imread(str(tmp_path / "people.png")), cv2.COLOR_BGR2RGB)
    scale = PEOPLE_TILE / 200
    assert sheet.shape == (round(160 * scale) + 4, PEOPLE_TILE + 4, 3)

    def at(x, y):  # image pixel -> sheet pixel (2 px border)
        return sheet[int(round((y + 0.5) * scale - 0.5)) + 2, int(round((x + 0.5) * scale - 0.5)) + 2]

    first, second = PERSON_COLOURS[0], PERSON_COLOURS[1]
    column = lambda x: np.array([tuple(at(x, y)) == first for y in np.arange(50, 90, 0.5)])  # noqa: E731
    assert column(40).mean() > 0.9                  # both ends visible: a solid limb
    assert 0.2 < column(120).mean() < 0.8           # one end occluded: dashed
    assert tuple(at(40, 40)) == VISIBLE_KEYPOINT    # visible keypoint: filled
    assert tuple(at(120, 100)) != OCCLUDED_KEYPOINT  # occluded keypoint: a ring, hollow centre
    ring = [tuple(at(120 + dx, 100)) for dx in np.arange(-4, 4.5, 0.5)]
    assert OCCLUDED_KEYPOINT in ring
    assert tuple(at(30, 70)) == first and tuple(at(175, 20)) == second  # both boxes, the second without keypoints
    inside = at(80, 70).astype(int)                 # mask: translucent fill of the person's colour
    assert inside[0] == 0 and inside[1] > 50 and inside[2] > 50


def test_cli_show_coco_refuses_bad_input(tmp_path, capsys):
    _write_coco_folder(tmp_path / "coco")
    assert main(["dataset", "show", str(tmp_path / "coco"), "--split", "val", "--out", str(tmp_path / "a.png")]) == 1
    assert "COCO folder" in capsys.readouterr().err and not (tmp_path / "a.png").exists()
    _write_coco_folder(tmp_path / "bad", with_bad_name=True)
    with pytest.raises(CocoFolderError, match="file_name"):
        coco_people_samples(tmp_path / "bad")
    (tmp_path / "coco" / "images" / "000002.png").unlink()
    assert main(["dataset", "show", str(tmp_path / "coco"), "--split", "all", "--out", str(tmp_path / "b.png")]) == 1
    assert "000002.png" in capsys.readouterr().err
