"""`ros2-pose sim` end to end: bag topics, determinism across runs and worker counts, clear errors."""
import numpy as np
import pytest

from ros2_pose.cli.main import main
from ros2_pose.data.bags import bag_info, iter_raw
from ros2_pose.sim import writer


def _sim(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["sim", "drone", "--frames", "3", "--out", str(out), "--width", "96", "--height", "72",
                 "--seed", "7", *extra]) == 0
    return out


def _messages(path):
    return [(m.topic, m.stamp_ns, bytes(m.data)) for m in iter_raw(path)]


def test_bag_has_design_topics_and_is_deterministic(tmp_path):
    a = _sim(tmp_path, "a")
    info = bag_info(a)
    for topic in (writer.TOPIC_IMAGE, writer.TOPIC_CAMERA_INFO, writer.TOPIC_DEPTH, writer.TOPIC_SEGMENTATION,
                  writer.TOPIC_TF, writer.TOPIC_POSE, writer.TOPIC_DETECTIONS, writer.TOPIC_KEYPOINTS):
        assert info.topics[topic][1] == 3, topic
    assert info.topics[writer.TOPIC_TF_STATIC][1] == 1
    assert info.start_ns == writer.START_NS
    b = _sim(tmp_path, "b", "--storage", "sqlite3")
    two_workers = _sim(tmp_path, "c", "--workers", "2")
    reference = _messages(a)
    assert reference == _messages(b)
    assert reference == _messages(two_workers)
    other_seed = tmp_path / "d"
    main(["sim", "drone", "--frames", "1", "--out", str(other_seed), "--width", "96", "--height", "72", "--seed", "8"])
    assert _messages(other_seed)[1][2] != reference[1][2]


def test_existing_output_and_missing_task_are_reported(tmp_path, capsys, monkeypatch):
    out = _sim(tmp_path, "a")
    assert main(["sim", "drone", "--frames", "1", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    from ros2_pose.sim import tasks

    monkeypatch.setitem(tasks.TASKS, "drone", "ros2_pose.sim.no_such_module:Task")
    assert main(["sim", "drone", "--frames", "1", "--out", str(tmp_path / "x")]) == 1
    assert "no_such_module" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
