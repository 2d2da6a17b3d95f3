"""`ros2-pose bench transport` with tiny counts: every row is there with positive numbers."""
import json

from ros2_pose.benchmarks.transport import shm_profile_xml
from ros2_pose.cli.main import main

EXPECTED_CASES = [
    "numpy -> Image (to_image_msg, bytes)",
    "numpy -> Image (msg.data = ndarray)",
    "Image -> numpy (from_image_msg, zero-copy)",
    "one process, one executor, reliable QoS",
    "one process, one executor, sensor QoS",
    "two processes, default (UDP loopback), reliable QoS",
    "two processes, default (UDP loopback), sensor QoS",
    "two processes, shared memory, reliable QoS",
    "two processes, shared memory, sensor QoS",
]


def test_bench_transport_tiny_run(tmp_path, capsys):
    out_json = tmp_path / "rows.json"
    code = main(["bench", "transport", "--frames", "8", "--rate-hz", "40", "--repeats", "2",
                 "--width", "64", "--height", "48", "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = json.loads(out_json.read_text())
    assert [r["case"] for r in rows] == EXPECTED_CASES
    for row in rows:
        assert row["median_ms"] > 0 and row["p95_ms"] >= row["median_ms"], row
        assert row["case"][:20] in printed  # the table shows every row
    for row in rows[3:]:
        received, sent = map(int, row["samples"].split("/"))
        assert sent == 8 and 0 < received <= sent, row
    # Reliable QoS within one process loses nothing.
    assert rows[3]["samples"] == "8/8"


def test_shm_profile_keeps_udp_on_loopback():
    xml = shm_profile_xml()
    assert "<type>SHM</type>" in xml and 'interface name="127.0.0.1"' in xml
    assert "<useBuiltinTransports>false</useBuiltinTransports>" in xml
