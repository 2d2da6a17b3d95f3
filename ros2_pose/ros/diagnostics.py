"""Per-node health bookkeeping: input rate, processing latency, drops, errors -> a status level.

`FrameStats` imports no ROS (unit-tested alone, usable by offline tools); `to_diagnostic_status`
turns its snapshot into a diagnostic_msgs/DiagnosticStatus for /diagnostics.

Public API
----------
- `FrameStats(window_s=5.0, stale_after_s=3.0, error_threshold=3, clock=time.monotonic)`:
  - `frame_received()` when an input arrives (input rate is computed from these),
  - `frame_processed(latency_s)` when one was handled (latency median / p95),
  - `frame_dropped(reason)` when one was received but not handled (bad input, busy),
  - `error(description)` when handling failed (counts, keeps the last description),
  - `snapshot() -> FrameStatsSnapshot` with the numbers and a `level` / `message`:
    ERROR "N consecutive failures: <last error>" once `error_threshold` handlings in a row failed;
    WARN "no input for N s" when nothing arrived for `stale_after_s` (counted from creation before
    the first frame); WARN "last frame failed: ..." after fewer consecutive failures;
    OK "<rate> Hz, median <latency> ms" otherwise. A processed frame resets the failure run.
  Rate and latency only use the last `window_s` seconds, so they follow the live stream.
- `Level`: OK / WARN / ERROR (values match diagnostic_msgs/DiagnosticStatus levels 0 / 1 / 2).
- `to_diagnostic_status(snapshot, name, hardware_id="") -> DiagnosticStatus` (imports
  diagnostic_msgs when called, so this module stays ROS-free for FrameStats users).
"""
from __future__ import annotations

import collections
import enum
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


class Level(enum.IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class FrameStatsSnapshot:
    level: Level
    message: str
    input_rate_hz: float
    latency_median_ms: float | None
    latency_p95_ms: float | None
    frames_received: int
    frames_processed: int
    frames_dropped: int
    errors: int
    consecutive_errors: int
    last_error: str
    seconds_since_input: float | None


class FrameStats:
    """Sliding-window statistics of one node's input stream and processing."""

    # Bounds memory at high frame rates; 5 s at 1 kHz still fits.
    MAX_SAMPLES = 5000

    def __init__(self, window_s: float = 5.0, stale_after_s: float = 3.0, error_threshold: int = 3,
                 clock: Callable[[], float] = time.monotonic):
        if window_s <= 0 or stale_after_s <= 0 or error_threshold < 1:
            raise ValueError(f"FrameStats needs window_s > 0, stale_after_s > 0, error_threshold >= 1; got "
                             f"{window_s}, {stale_after_s}, {error_threshold}")
        self.window_s = window_s
        self.stale_after_s = stale_after_s
        self.error_threshold = error_threshold
        self._clock = clock
        self._created = clock()
        self._last_arrival: float | None = None
        self._arrivals: collections.deque[float] = collections.deque(maxlen=self.MAX_SAMPLES)
        self._latencies: collections.deque[tuple[float, float]] = collections.deque(maxlen=self.MAX_SAMPLES)
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.last_error = ""
        self.last_drop_reason = ""

    def frame_received(self) -> None:
        self.frames_received += 1
        self._last_arrival = self._clock()
        self._arrivals.append(self._last_arrival)

    def frame_processed(self, latency_s: float) -> None:
        self.frames_processed += 1
        self.consecutive_errors = 0
        self._latencies.append((self._clock(), float(latency_s)))

    def frame_dropped(self, reason: str = "") -> None:
        self.frames_dropped += 1
        self.last_drop_reason = reason

    def error(self, description: str) -> None:
        self.errors += 1
        self.consecutive_errors += 1
        self.last_error = description

    def _prune(self, now: float) -> None:
        start = now - self.window_s
        while self._arrivals and self._arrivals[0] < start:
            self._arrivals.popleft()
        while self._latencies and self._latencies[0][0] < start:
            self._latencies.popleft()

    def snapshot(self) -> FrameStatsSnapshot:
        now = self._clock()
        last_arrival = self._last_arrival
        self._prune(now)
        arrivals = self._arrivals
        # Rate from the spacing of the frames in the window (n frames = n-1 intervals).
        span = arrivals[-1] - arrivals[0] if len(arrivals) >= 2 else 0.0
        rate = (len(arrivals) - 1) / span if span > 0 else 0.0
        if self._latencies:
            ms = np.array([latency for _, latency in self._latencies]) * 1e3
            median, p95 = float(np.median(ms)), float(np.percentile(ms, 95))
        else:
            median = p95 = None
        since_input = now - last_arrival if last_arrival is not None else None
        silent_for = now - (last_arrival if last_arrival is not None else self._created)

        if self.consecutive_errors >= self.error_threshold:
            level, message = Level.ERROR, f"{self.consecutive_errors} consecutive failures: {self.last_error}"
        elif silent_for >= self.stale_after_s:
            level, message = Level.WARN, f"no input for {silent_for:.0f} s"
        elif self.consecutive_errors:
            level, message = Level.WARN, f"last frame failed: {self.last_error}"
        else:
            latency = f"{median:.1f} ms" if median is not None else "n/a"
            level, message = Level.OK, f"{rate:.1f} Hz, median latency {latency}"
        return FrameStatsSnapshot(
            level=level, message=message, input_rate_hz=rate, latency_median_ms=median,
            latency_p95_ms=p95, frames_received=self.frames_received,
            frames_processed=self.frames_processed, frames_dropped=self.frames_dropped,
            errors=self.errors, consecutive_errors=self.consecutive_errors, last_error=self.last_error,
            seconds_since_input=since_input)


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def to_diagnostic_status(snapshot: FrameStatsSnapshot, name: str, hardware_id: str = ""):
    """The snapshot as a diagnostic_msgs/DiagnosticStatus (values as KeyValue strings)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue  # ROS only here: FrameStats stays ROS-free

    values = {
        "input_rate_hz": _format(snapshot.input_rate_hz),
        "latency_median_ms": _format(snapshot.latency_median_ms),
        "latency_p95_ms": _format(snapshot.latency_p95_ms),
        "frames_received": str(snapshot.frames_received),
        "frames_processed": str(snapshot.frames_processed),
        "frames_dropped": str(snapshot.frames_dropped),
        "errors": str(snapshot.errors),
        "consecutive_errors": str(snapshot.consecutive_errors),
        "last_error": snapshot.last_error,
        "seconds_since_input": _format(snapshot.seconds_since_input),
    }
    return DiagnosticStatus(
        level=bytes([int(snapshot.level)]), name=name, message=snapshot.message, hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values.items()])
