"""ros2_pose.ros.diagnostics.FrameStats (ROS-free) and its DiagnosticStatus form."""
import pytest

from ros2_pose.ros.diagnostics import FrameStats, Level, to_diagnostic_status


class FakeClock:
    """A clock the test moves by hand (the real one would make the numbers depend on load)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _feed(stats, clock, frames, period_s, latency_s):
    for _ in range(frames):
        stats.frame_received()
        clock.now += latency_s
        stats.frame_processed(latency_s)
        clock.now += period_s - latency_s


def test_rate_latency_and_counts():
    clock = FakeClock()
    stats = FrameStats(window_s=5.0, clock=clock)
    _feed(stats, clock, frames=30, period_s=0.1, latency_s=0.02)
    stats.frame_received()
    stats.frame_dropped("busy")
    snap = stats.snapshot()
    assert snap.level == Level.OK
    assert snap.input_rate_hz == pytest.approx(10.0, rel=1e-6)
    assert snap.latency_median_ms == pytest.approx(20.0)
    assert (snap.frames_received, snap.frames_processed, snap.frames_dropped) == (31, 30, 1)
    assert snap.message == "10.0 Hz, median latency 20.0 ms"


def test_latency_percentiles_use_only_the_window():
    clock = FakeClock()
    stats = FrameStats(window_s=2.0, stale_after_s=10.0, clock=clock)
    _feed(stats, clock, frames=20, period_s=0.1, latency_s=0.09)  # old, slow frames
    _feed(stats, clock, frames=20, period_s=0.1, latency_s=0.01)  # the last 2 s
    snap = stats.snapshot()
    assert snap.latency_median_ms == pytest.approx(10.0)
    stats = FrameStats(clock=clock)
    for ms in range(1, 101):
        stats.frame_received()
        stats.frame_processed(ms / 1e3)
    snap = stats.snapshot()
    assert snap.latency_median_ms == pytest.approx(50.5)
    assert snap.latency_p95_ms == pytest.approx(95.05)


def test_no_input_warns_and_rate_decays():
    clock = FakeClock()
    stats = FrameStats(window_s=5.0, stale_after_s=3.0, clock=clock)
    assert stats.snapshot().level == Level.OK  # just started
    clock.now += 4.0
    snap = stats.snapshot()
    assert (snap.level, snap.message, snap.seconds_since_input) == (Level.WARN, "no input for 4 s", None)
    _feed(stats, clock, frames=10, period_s=0.1, latency_s=0.01)
    assert stats.snapshot().level == Level.OK
    clock.now += 10.0
    snap = stats.snapshot()
    assert snap.level == Level.WARN and snap.input_rate_hz == 0.0 and snap.latency_median_ms is None
    assert snap.seconds_since_input == pytest.approx(10.1)
    clock.now += 1.0
    assert stats.snapshot().message == "no input for 11 s"  # still counted from the last frame


def test_errors_warn_then_error_and_recover():
    clock = FakeClock()
    stats = FrameStats(error_threshold=3, clock=clock)
    _feed(stats, clock, frames=3, period_s=0.1, latency_s=0.01)
    stats.error("ValueError: bad frame")
    snap = stats.snapshot()
    assert (snap.level, snap.message) == (Level.WARN, "last frame failed: ValueError: bad frame")
    stats.error("ValueError: bad frame")
    stats.error("RuntimeError: boom")
    snap = stats.snapshot()
    assert (snap.level, snap.message) == (Level.ERROR, "3 consecutive failures: RuntimeError: boom")
    assert snap.errors == 3 and snap.last_error == "RuntimeError: boom"
    _feed(stats, clock, frames=1, period_s=0.1, latency_s=0.01)
    snap = stats.snapshot()
    assert snap.level == Level.OK and snap.errors == 3 and snap.consecutive_errors == 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window_s > 0"):
        FrameStats(window_s=0)
    with pytest.raises(ValueError, match="error_threshold >= 1"):
        FrameStats(error_threshold=0)


def test_diagnostic_status_carries_level_and_values():
    clock = FakeClock()
    stats = FrameStats(clock=clock)
    _feed(stats, clock, frames=5, period_s=0.05, latency_s=0.01)
    stats.error("boom")
    status = to_diagnostic_status(stats.snapshot(), "echo: processing", "camera")
    assert status.level == bytes([1]) and status.name == "echo: processing" and status.hardware_id == "camera"
    values = {kv.key: kv.value for kv in status.values}
    assert values["input_rate_hz"] == "20.00" and values["latency_median_ms"] == "10.00"
    assert values["errors"] == "1" and values["last_error"] == "boom"
