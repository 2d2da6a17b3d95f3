"""`ros2-pose up`: the transport_check graph in one process, across processes, and its shutdown."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ros2_pose.cli.main import main
from ros2_pose.graph.plan import plan_graph
from ros2_pose.graph.runner import GraphRunner, GraphStartError, node_class
from ros2_pose.graph.spec import load_graph


def run_until(runner, condition, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("autostart", [False, True])
def test_in_process_frames_flow_source_to_sink(autostart):
    graph = load_graph("transport_check")
    plan = plan_graph(graph, {"rate_hz": "50"}, {"image_sink": {"autostart": autostart, "report_every_s": 0.0}})
    runner = GraphRunner(plan, log=print)
    try:
        runner.start()
        states = {s.planned.name: s.state for s in runner.started}
        assert states["image_sink"] == ("autostart" if autostart else "active")
        sink = next(s.node for s in runner.started if s.planned.name == "image_sink")
        assert run_until(runner, lambda: sink.received >= 5), f"only {sink.received} frames arrived"
        # The parameter file, the remapping and the override all reached the nodes.
        assert sink.subscription.topic_name == "/camera/image_raw"
        source = next(s.node for s in runner.started if s.planned.name == "image_source")
        assert source.get_parameter("rate_hz").value == 50
        assert source.get_parameter("frame_id").value == "camera_optical_frame"
        summary = sink.summary()
        assert summary["shapes"] == [(480, 640, 3)] and summary["median_ms"] > 0
    finally:
        runner.stop()


def test_failed_lifecycle_transition_stops_the_graph(capsys):
    code = main(["up", "transport_check", "--duration", "5", "--param", "image_sink.qos:=bogus"])
    assert code == 1
    assert "configure returned FAILURE" in capsys.readouterr().err


def test_node_class_contract_is_checked():
    assert node_class("image_sink").__name__ == "ImageSink"
    with pytest.raises(ModuleNotFoundError):
        node_class("no_such_node")


def test_cli_in_process_duration_writes_sink_report(tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["up", "transport_check", "--duration", "2", "--set", "rate_hz=40",
                 "--param", f"image_sink.report_path:={report}"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "/image_sink (image_sink, in-process, active lifecycle)" in out
    assert "graph transport_check stopped" in out
    data = json.loads(report.read_text())
    assert data["count"] >= 5 and len(data["latencies_ms"]) == data["count"]


def test_bad_graph_is_a_clear_error(capsys):
    assert main(["up", "no_such_graph"]) == 2
    assert "no graph 'no_such_graph'" in capsys.readouterr().err


def up_command(*args):
    return [sys.executable, "-m", "ros2_pose.cli.main", "up", "transport_check", *args]


def test_subprocess_multi_process_exits_zero_with_frames(tmp_path):
    report = tmp_path / "report.json"
    result = subprocess.run(up_command("--multi-process", "--duration", "3",
                                       "--param", f"image_sink.report_path:={report}"),
                            capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one process per node" in result.stdout
    assert json.loads(report.read_text())["count"] > 0, result.stderr


def test_sigterm_stops_up_cleanly():
    process = subprocess.Popen(up_command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ.copy())
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("image_sink (" in line for line in lines):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(20)
    finally:
        process.kill()
    reader.join(5)
    assert code == 0, "".join(lines) + process.stderr.read()
    assert any("graph transport_check stopped" in line for line in lines)
