"""`ros2-pose dataset build` tells the user when a split came out empty."""
from ros2_pose.cli.main import main
from ros2_pose.data.builders.fixture_bag import write_fixture_bag


def test_empty_split_is_reported_with_the_way_out(tmp_path, capsys):
    bag = tmp_path / "bag"
    write_fixture_bag(bag, n_frames=6)
    # blocks of 6 frames: the one block goes to a single split, the other two stay empty
    assert main(["dataset", "build", "dolly", "--bags", str(bag), "--out", str(tmp_path / "one_block"),
                 "--gt-source", "topic", "--split-block", "6"]) == 0
    err = capsys.readouterr().err
    assert "warning: split(s)" in err and "--split-block" in err
    # one frame per block: every split gets frames, no warning
    assert main(["dataset", "build", "dolly", "--bags", str(bag), "--out", str(tmp_path / "small_blocks"),
                 "--gt-source", "topic", "--split-block", "1", "--split", "0.5,0.25,0.25", "--split-guard", "0"]) == 0
    assert "warning" not in capsys.readouterr().err


ROBOT_NAMES = {"/camera/image_raw": "/cam/color/image_raw", "/camera/camera_info": "/cam/color/camera_info",
               "/camera/segmentation": "/cam/seg", "/ground_truth/detections": "/labels/boxes",
               "world": "map", "camera_link": "cam_link", "camera_optical_frame": "cam_color_optical_frame"}


def test_a_robots_topic_and_frame_names_are_mapped(tmp_path, capsys):
    import numpy as np

    from ros2_pose.data.dataset import ArrayDataset

    standard, robot = tmp_path / "standard", tmp_path / "robot"
    write_fixture_bag(standard, n_frames=6)
    write_fixture_bag(robot, n_frames=6, rename=ROBOT_NAMES)
    assert main(["dataset", "build", "dolly", "--bags", str(standard), "--out", str(tmp_path / "a")]) == 0
    # without the map: the missing topic is named, with what the bag has
    assert main(["dataset", "build", "dolly", "--bags", str(robot), "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "/camera/image_raw" in err and "/cam/color/image_raw" in err
    mapped = ["--topic", "image=/cam/color/image_raw", "--topic", "camera_info=/cam/color/camera_info",
              "--topic", "segmentation=/cam/seg", "--topic", "detections=/labels/boxes"]
    frames = ["--world-frame", "map", "--camera-frame", "cam_link", "--optical-frame", "cam_color_optical_frame"]
    # topics mapped but not the TF frames: the transform that is missing is named
    assert main(["dataset", "build", "dolly", "--bags", str(robot), "--out", str(tmp_path / "c"), *mapped]) == 1
    assert "camera_link" in capsys.readouterr().err
    assert main(["dataset", "build", "dolly", "--bags", str(robot), "--out", str(tmp_path / "d"), *mapped, *frames]) == 0
    a, d = ArrayDataset(tmp_path / "a", "all"), ArrayDataset(tmp_path / "d", "all")
    assert len(a) == len(d) == 5  # the first frame has no TF sample before it
    for field in ("crop", "mask", "det_box", "rotation", "translation", "K"):
        assert np.array_equal(a.arrays[field][:], d.arrays[field][:]), field
    assert main(["dataset", "build", "dolly", "--bags", str(robot), "--out", str(tmp_path / "e"),
                 "--topic", "nonsense=/x"]) == 1
    assert "unknown stream" in capsys.readouterr().err
