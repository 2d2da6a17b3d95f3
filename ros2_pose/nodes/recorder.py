"""recorder: records topics of a running graph into a rosbag2 bag (mcap or sqlite3) without ros2 bag.

Each topic's type is discovered from the graph (the recorder waits for the topic to appear and
warns once after `discovery_timeout` seconds if it has not). Subscriptions are raw: the CDR bytes
go straight into the bag, nothing is deserialised. QoS follows the publishers: transient local when
every publisher offers it (/tf_static from a static broadcaster), best effort when any publisher is
best effort. Bag time is the receive time. SIGINT/SIGTERM/`duration` close the bag cleanly, after
writing what had already reached the recorder (see `_spin_until_stopped`).

Parameters: `topics` (string array, required), `out` (bag path, required), `storage`
("mcap" | "sqlite3"), `duration` (seconds, 0: until stopped), `overwrite` (false),
`discovery_timeout` (5.0 s). Plain rclpy Node (infrastructure: no model to load, so no lifecycle).
"""
from __future__ import annotations

import importlib
import signal
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from ros2_pose.data.bag_types import MessageTypeError, ensure_type
from ros2_pose.data.bags import BagWriter

# Deep queues: a recorder must not drop bursts (e.g. a TFMessage per frame plus images).
RECORD_DEPTH = 100


def message_class(msgtype: str):
    """The rclpy message class of `pkg/msg/Type` (what ros2 bag does via rosidl_runtime_py)."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise MessageTypeError(f"cannot import the Python message class of {msgtype!r}: {exc}") from exc


def subscription_qos(publisher_qos: list) -> QoSProfile:
    """A subscription QoS that matches every publisher offering `publisher_qos` (as rosbag2 does)."""
    latched = bool(publisher_qos) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in publisher_qos)
    reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in publisher_qos)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class Recorder(Node):
    def __init__(self, topics: list[str] | None = None, out: str | None = None, storage: str = "mcap",
                 duration: float = 0.0, overwrite: bool = False, discovery_timeout: float = 5.0, **kwargs):
        super().__init__("recorder", **kwargs)
        self.topics = list(self.declare_parameter("topics", topics or [""]).value)
        self.topics = [t for t in self.topics if t]
        out = self.declare_parameter("out", out or "").value
        storage = self.declare_parameter("storage", storage).value
        self.duration = float(self.declare_parameter("duration", float(duration)).value)
        overwrite = bool(self.declare_parameter("overwrite", overwrite).value)
        self.discovery_timeout = float(self.declare_parameter("discovery_timeout", float(discovery_timeout)).value)
        if not self.topics or not out:
            raise ValueError("recorder needs the `topics` (non-empty) and `out` parameters")
        self.bag = BagWriter(out, storage=storage, overwrite=overwrite).open()
        self.pending = {t if t.startswith("/") else "/" + t for t in self.topics}
        self.types: dict[str, str] = {}
        self.warned = False
        self.started = time.monotonic()
        self._raw_subscriptions = []
        self._discover_timer = self.create_timer(0.1, self._discover)
        self._discover()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.bag.counts)

    @property
    def done(self) -> bool:
        return self.duration > 0 and time.monotonic() - self.started >= self.duration

    def _discover(self) -> None:
        if not self.pending:
            self._discover_timer.cancel()
            return
        graph = dict(self.get_topic_names_and_types())
        for topic in sorted(self.pending):
            if topic in graph and self.get_publishers_info_by_topic(topic):
                self._subscribe(topic, graph[topic][0])
        if self.pending and not self.warned and time.monotonic() - self.started > self.discovery_timeout:
            self.warned = True
            self.get_logger().warning(f"still waiting for publishers on {sorted(self.pending)} after "
                                      f"{self.discovery_timeout:.0f} s; recording the rest meanwhile")

    def _subscribe(self, topic: str, msgtype: str) -> None:
        self.pending.discard(topic)
        try:
            ensure_type(msgtype)
            cls = message_class(msgtype)
        except MessageTypeError as exc:
            self.get_logger().error(f"not recording {topic}: {exc}")
            return
        qos = subscription_qos([p.qos_profile for p in self.get_publishers_info_by_topic(topic)])
        self.bag.add_topic(topic, msgtype, transient_local=qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
                           or None)
        self.types[topic] = msgtype

        def write(data: bytes, topic=topic, msgtype=msgtype) -> None:
            self.bag.write_raw(topic, msgtype, data, time.time_ns())

        self._raw_subscriptions.append(self.create_subscription(cls, topic, write, qos, raw=True))
        self.get_logger().info(f"recording {topic} [{msgtype}] ({qos.durability.name.lower()}, "
                               f"{qos.reliability.name.lower()})")

    def close(self) -> dict[str, int]:
        """Close the bag (metadata written, readable); returns messages per topic."""
        counts = self.counts
        self.bag.close()
        return counts


def summary(counts: dict[str, int], types: dict[str, str], missing: set[str]) -> str:
    lines = [f"  {topic:<40} {counts.get(topic, 0):>8}  {types.get(topic, '')}" for topic in sorted(counts)]
    lines += [f"  {topic:<40} {'never seen':>8}" for topic in sorted(missing)]
    return "\n".join([f"recorded {sum(counts.values())} messages:"] + lines)


DRAIN_QUIET_S = 0.3   # stop draining after this long without a new message...
DRAIN_LIMIT_S = 3.0   # ... or after this long in all (a publisher that never stops)


def _drain(recorder: "Recorder") -> None:
    """Write what the middleware already delivered to the recorder's readers. rclpy's own signal
    handlers would shut the context down at once and lose those samples: a bag stopped right after
    a burst would miss its tail."""
    start = last_change = time.monotonic()
    total = sum(recorder.counts.values())
    while time.monotonic() - last_change < DRAIN_QUIET_S and time.monotonic() - start < DRAIN_LIMIT_S:
        rclpy.spin_once(recorder, timeout_sec=0.05)
        now_total = sum(recorder.counts.values())
        if now_total != total:
            total, last_change = now_total, time.monotonic()


def _spin_until_stopped(make_recorder) -> dict[str, int]:
    """Spin the recorder until SIGINT/SIGTERM or its duration ends, drain, then close the bag and
    print the summary. rclpy.init must have been called without rclpy's signal handlers (they would
    shut the context down before the drain); ours only ask the loop to stop."""
    stop = []
    previous = {sig: signal.signal(sig, lambda *_: stop.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    recorder = None
    counts: dict[str, int] = {}
    try:
        recorder = make_recorder()
        while rclpy.ok() and not recorder.done and not stop:
            rclpy.spin_once(recorder, timeout_sec=0.05)
        if rclpy.ok():
            _drain(recorder)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if recorder is not None:
            counts = recorder.close()
            print(summary(counts, recorder.types, recorder.pending), flush=True)
            recorder.destroy_node()
        rclpy.try_shutdown()
    return counts


def record(topics: list[str], out: str, storage: str = "mcap", duration: float = 0.0, overwrite: bool = False,
           discovery_timeout: float = 5.0) -> dict[str, int]:
    """Record until SIGINT/SIGTERM or `duration`; prints and returns the per-topic counts."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    return _spin_until_stopped(lambda: Recorder(topics, out, storage, duration, overwrite, discovery_timeout))


def main(args: list[str] | None = None) -> None:
    """Console script: parameters come from --ros-args (`-p topics:=[/a,/b] -p out:=bag`)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    _spin_until_stopped(Recorder)


if __name__ == "__main__":
    main()
