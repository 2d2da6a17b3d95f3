"""image_sink: receives sensor_msgs/Image and measures transport latency (header stamp -> receipt).

A lifecycle node: configure reads the parameters, activate subscribes, deactivate unsubscribes.
With `autostart` it configures and activates itself; otherwise a manager (`ros2-pose up`, or
`ros2 lifecycle set`) drives it.

Topics: subscribes `image` (sensor_msgs/Image).
Parameters:
- `qos` ("sensor" | "reliable"), `autostart` (false).
- `report_every_s` (5.0): log count, rate and latency median/p95 this often (0: never).
- `report_path` (""): write a JSON report here (count, latencies_ms, median/p95) when `stop_after`
  frames have arrived and again at deactivation/shutdown; written atomically (tmp + rename).
- `stop_after` (0): after this many frames, write the report and stop counting (0: never).
Each frame is decoded (zero-copy) and its size checked, so a receiver of broken frames notices.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.time import Time
from sensor_msgs.msg import Image

from ros2_pose.ros.image_conversion import from_image_msg
from ros2_pose.ros.node_base import make_node_main
from ros2_pose.ros.qos import reliable_qos, sensor_data_qos

QOS_CHOICES = {"reliable": reliable_qos, "sensor": sensor_data_qos}


def latency_summary(latencies_ms: list[float]) -> dict:
    """count, median and p95 (ms) of a list of latencies; None statistics when empty."""
    if not latencies_ms:
        return {"count": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    values = np.asarray(latencies_ms, dtype=np.float64)
    return {"count": int(values.size), "median_ms": float(np.median(values)),
            "p95_ms": float(np.percentile(values, 95)), "max_ms": float(values.max())}


class ImageSink(LifecycleNode):
    def __init__(self, node_name: str = "image_sink", **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        for name, default in (("qos", "sensor"), ("report_every_s", 5.0), ("report_path", ""),
                              ("stop_after", 0), ("autostart", False)):
            self.declare_parameter(name, default)
        self.latencies_ms: list[float] = []
        self.received = 0
        self.shapes: set[tuple[int, ...]] = set()
        self.subscription = None
        self.report_timer = None
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.qos = self.get_parameter("qos").value
        if self.qos not in QOS_CHOICES:
            self.get_logger().error(f"qos must be one of {sorted(QOS_CHOICES)}, got {self.qos!r}")
            return TransitionCallbackReturn.FAILURE
        self.report_every_s = float(self.get_parameter("report_every_s").value)
        path = self.get_parameter("report_path").value
        self.report_path = Path(path).expanduser() if path else None
        self.stop_after = int(self.get_parameter("stop_after").value)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.subscription = self.create_subscription(Image, "image", self._on_image, QOS_CHOICES[self.qos]())
        if self.report_every_s > 0:
            self._last_report = (time.monotonic(), self.received)
            self.report_timer = self.create_timer(self.report_every_s, self._log_report)
        self.get_logger().info(f"receiving on {self.subscription.topic_name} ({self.qos} QoS)")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """At shutdown (run_node): the final report."""
        self.write_report()

    def _release(self) -> None:
        if self.subscription is not None:
            self.destroy_subscription(self.subscription)
            self.subscription = None
        if self.report_timer is not None:
            self.destroy_timer(self.report_timer)
            self.report_timer = None
        self.write_report()

    def _on_image(self, msg: Image) -> None:
        received = self.get_clock().now()
        if self.stop_after and self.received >= self.stop_after:
            return
        pixels = from_image_msg(msg)
        self.shapes.add(pixels.shape)
        self.latencies_ms.append((received - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6)
        self.received += 1
        if self.stop_after and self.received == self.stop_after:
            self.write_report()

    def summary(self) -> dict:
        return {**latency_summary(self.latencies_ms), "shapes": sorted(self.shapes)}

    def _log_report(self) -> None:
        now, count = time.monotonic(), self.received
        rate = (count - self._last_report[1]) / max(now - self._last_report[0], 1e-9)
        self._last_report = (now, count)
        s = latency_summary(self.latencies_ms[-1000:])
        if s["count"]:
            self.get_logger().info(f"received {count} frames, {rate:.1f} Hz, latency median "
                                   f"{s['median_ms']:.2f} ms p95 {s['p95_ms']:.2f} ms")
        else:
            self.get_logger().info("no frames received yet")

    def write_report(self) -> None:
        if getattr(self, "report_path", None) is None:  # not configured, or no report asked for
            return
        report = {**self.summary(), "latencies_ms": self.latencies_ms}
        tmp = self.report_path.with_name(self.report_path.name + ".tmp")
        tmp.write_text(json.dumps(report))
        os.replace(tmp, self.report_path)


NODE_CLASS = ImageSink


# run_node: clean stop on SIGINT/SIGTERM (also when the signal lands mid-spin), release, shutdown.
main = make_node_main(ImageSink)


if __name__ == "__main__":
    sys.exit(main())
