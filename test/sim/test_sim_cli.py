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


def test_worker_frames_come_back_whole_and_in_order_when_the_shared_slots_wrap():
    """2 workers have 6 shared-memory slots: 9 frames reuse slots while frames are in flight."""
    import glob

    from ros2_pose.sim.renderer import Renderer, RendererUnavailableError
    from ros2_pose.sim.tasks import iter_frames

    try:
        Renderer(8, 8, "egl").close()
    except RendererUnavailableError as exc:
        pytest.skip(f"no EGL here: {exc}")
    before = set(glob.glob("/dev/shm/psm_*"))
    options = dict(width=48, height=36, backend="egl")
    serial = list(iter_frames("dolly", 9, seed=3, start=2, **options))
    parallel = list(iter_frames("dolly", 9, seed=3, start=2, workers=2, **options))
    assert [i for i, _ in parallel] == list(range(2, 11))
    for (_, a), (_, b) in zip(serial, parallel):
        for field in ("rgb", "depth", "segmentation"):
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), field
            assert y.flags.writeable and y.flags.owndata  # a copy, not a view of a reused slot
        assert a.extra["visible_fraction"] == b.extra["visible_fraction"]
    assert len({f.rgb.tobytes() for _, f in parallel}) == 9
    assert set(glob.glob("/dev/shm/psm_*")) <= before  # the block is unlinked


def test_bench_sim_prints_every_column_for_each_worker_count(capsys):
    from ros2_pose.sim.renderer import Renderer, RendererUnavailableError

    try:
        Renderer(8, 8, "egl").close()
    except RendererUnavailableError as exc:
        pytest.skip(f"no EGL here: {exc}")
    assert main(["bench", "sim", "--frames", "2", "--width", "48", "--height", "36", "--workers", "1", "2"]) == 0
    out = capsys.readouterr().out
    for column in ("render only", "full pipeline", "CPU/img", "pipeline + bag", "load average"):
        assert column in out, column
    rows = [line for line in out.splitlines() if "egl" in line]
    assert len(rows) == 2
    for row in rows:
        numbers = [float(x) for x in row.replace("│", " ").split() if x.replace(".", "").isdigit()]
        assert len(numbers) == 6 and all(x > 0 for x in numbers[1:]), row


def test_sequence_length_is_refused_outside_motion(tmp_path, capsys):
    assert main(["sim", "drone", "--frames", "1", "--out", str(tmp_path / "d"), "--sequence-length", "5"]) == 2
    assert "motion option" in capsys.readouterr().err
    assert main(["sim", "motion", "--frames", "1", "--out", str(tmp_path / "m"), "--sequence-length", "1"]) == 2
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()
