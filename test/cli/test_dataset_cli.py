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
