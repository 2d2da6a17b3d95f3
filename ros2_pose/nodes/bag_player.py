"""bag_player: publishes the messages of one or more bags (merged by time) into a live graph.

Messages go out as recorded CDR bytes (`Publisher.publish(bytes)`, no deserialisation) at the
recorded timing divided by `rate`. Header stamps stay as recorded unless `restamp` is set (then
every header inside each message gets the publish time; costs a deserialise/serialise per message).
Topics recorded latched (transient local, and always /tf_static) are republished latched, so late
subscribers (tf listeners) still get them.

Looping: with `loop`, playback restarts from the first message after the last one. Bag times and,
unless `restamp`, header stamps then JUMP BACK to the start of the bag; downstream nodes must treat a
stamp older than their last one as a time jump (reset trackers/filters, clear tf buffers) rather
than as stale data. With `publish_clock`, /clock (rosgraph_msgs/Clock) carries the bag time of
each message so nodes with use_sim_time follow the bag (and see the same jump when looping).

Parameters: `bags` (string array, required), `rate` (1.0), `loop` (false), `topics` (string array,
empty: all), `start_paused` (false), `restamp` (false), `publish_clock` (false).
Services: `~/pause`, `~/resume` (std_srvs/Trigger). In-process use: `BagPlayer(...).step()` publishes
the next message at once; `play_all(executor)` plays with timing while spinning `executor`.
Plain rclpy Node (infrastructure, nothing to load).
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ros2_pose.data.bag_messages import restamp
from ros2_pose.data.bag_types import typestore
from ros2_pose.data.bags import BagError, MissingTopicError, RawBagMessage, bag_info, iter_raw
from ros2_pose.nodes.recorder import message_class
from ros2_pose.ros.qos import reliable_qos

# Latched topics keep a history so that every static broadcaster's TFMessage in the bag reaches late
# subscribers (tf2_ros listens to /tf_static with depth 100 too).
LATCHED_DEPTH = 100
PLAYBACK_DEPTH = 100


def latched_qos() -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=LATCHED_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class BagPlayer(Node):
    def __init__(self, bags: list[str] | None = None, rate: float = 1.0, loop: bool = False,
                 topics: list[str] | None = None, start_paused: bool = False, restamp: bool = False,
                 publish_clock: bool = False, **node_kwargs):
        super().__init__("bag_player", **node_kwargs)
        self.bags = [b for b in self.declare_parameter("bags", bags or [""]).value if b]
        self.rate = float(self.declare_parameter("rate", float(rate)).value)
        self.loop = bool(self.declare_parameter("loop", loop).value)
        wanted = [t for t in self.declare_parameter("topics", topics or [""]).value if t]
        self.paused = bool(self.declare_parameter("start_paused", start_paused).value)
        self.restamp = bool(self.declare_parameter("restamp", restamp).value)
        publish_clock = bool(self.declare_parameter("publish_clock", publish_clock).value)
        if not self.bags:
            raise ValueError("bag_player needs the `bags` parameter (one or more bag paths)")
        if not self.rate > 0:
            raise ValueError(f"bag_player: rate must be > 0, got {self.rate}")

        types: dict[str, str] = {}
        latched: set[str] = set()
        for path in self.bags:
            info = bag_info(path)
            types.update({name: msgtype for name, (msgtype, _) in info.topics.items()})
            latched |= info.latched_topics
        if wanted and (missing := [t for t in wanted if t not in types]):
            raise MissingTopicError(f"topics {missing} are in none of {self.bags}; they have {sorted(types)}",
                                    missing, sorted(types))
        self.topics = wanted or sorted(types)
        self.publishers_by_topic = {
            topic: self.create_publisher(message_class(types[topic]), topic,
                                         latched_qos() if topic in latched else reliable_qos(PLAYBACK_DEPTH))
            for topic in self.topics}
        self.clock_publisher = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock
            self.clock_publisher = self.create_publisher(Clock, "/clock", 10)
        self.create_service(Trigger, "~/pause", self._on_pause)
        self.create_service(Trigger, "~/resume", self._on_resume)

        self.published = 0
        self.loops_done = 0
        self._messages: Iterator[RawBagMessage] = self._open()
        self._next: RawBagMessage | None = None
        self._anchor: tuple[float, int] | None = None  # (monotonic seconds, bag ns) of the schedule

    # -- playback control -----------------------------------------------------------------------
    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._anchor = None  # re-anchor the schedule at the next message

    def _on_pause(self, _request, response):
        self.pause()
        response.success, response.message = True, f"paused after {self.published} messages"
        return response

    def _on_resume(self, _request, response):
        self.resume()
        response.success, response.message = True, "playing"
        return response

    # -- messages -------------------------------------------------------------------------------
    def _open(self) -> Iterator[RawBagMessage]:
        return iter_raw(self.bags, topics=self.topics)

    def _peek(self) -> RawBagMessage | None:
        """The next message to publish, restarting the bag when looping; None at the end."""
        if self._next is None:
            self._next = next(self._messages, None)
            if self._next is None and self.loop:
                self.loops_done += 1
                self._messages = self._open()
                self._anchor = None  # bag time jumps back: start a new schedule
                self._next = next(self._messages, None)
        return self._next

    def step(self) -> RawBagMessage | None:
        """Publish the next message now (ignoring timing and pause); None when the bag is done."""
        message = self._peek()
        if message is None:
            return None
        self._next = None
        data = message.data
        if self.restamp:
            store = typestore()
            msg = store.deserialize_cdr(data, message.msgtype)
            if restamp(msg, self.get_clock().now().nanoseconds):
                data = bytes(store.serialize_cdr(msg, message.msgtype))
        if self.clock_publisher is not None:
            from rosgraph_msgs.msg import Clock
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(message.stamp_ns, 1_000_000_000)
            self.clock_publisher.publish(clock)
        self.publishers_by_topic[message.topic].publish(data)
        self.published += 1
        return message

    def seconds_until_next(self) -> float | None:
        """Wall seconds until the next message is due (0 if due now); None at the end or paused."""
        message = self._peek()
        if message is None or self.paused:
            return None
        if self._anchor is None:
            self._anchor = (time.monotonic(), message.stamp_ns)
        wall0, bag0 = self._anchor
        return max(0.0, wall0 + (message.stamp_ns - bag0) * 1e-9 / self.rate - time.monotonic())

    def wait_until_delivered(self, timeout_s: float = 2.0) -> bool:
        """Wait (up to `timeout_s` per topic) until every subscriber has acknowledged what was
        published; True when all have. Called when a bag has played out, before the node goes: a
        DDS writer destroyed right after its last publish drops what is not delivered yet, and the
        last messages of a bag were lost that way (1 run in 6 of the player CLI test)."""
        from rclpy.duration import Duration

        publishers = [*self.publishers_by_topic.values(), *([self.clock_publisher] if self.clock_publisher else [])]
        return all([publisher.wait_for_all_acked(Duration(seconds=timeout_s)) for publisher in publishers])

    def play_all(self, executor=None, timeout: float | None = None) -> int:
        """Play with the recorded timing until the bag ends (never, when looping, unless `timeout`
        seconds pass); spins `executor` while waiting (services, pause/resume, other nodes).
        Returns how many messages were published by this call."""
        start_count, started = self.published, time.monotonic()
        while self.context.ok():
            if timeout is not None and time.monotonic() - started >= timeout:
                break
            if self._peek() is None:
                break
            wait = self.seconds_until_next()
            if wait is None:  # paused
                wait = 0.05
            elif wait <= 0.0:
                self.step()
                continue
            wait = min(wait, 0.05)
            if executor is not None:
                executor.spin_once(timeout_sec=wait)
            else:
                time.sleep(wait)
        return self.published - start_count


def play(bags: list[str], rate: float = 1.0, loop: bool = False, topics: list[str] | None = None,
         start_paused: bool = False, restamp: bool = False, publish_clock: bool = False,
         args: list[str] | None = None) -> int:
    """Play until the bags end (or forever when looping) or SIGINT/SIGTERM; returns messages published."""
    rclpy.init(args=args)
    player = None
    try:
        player = BagPlayer(bags, rate, loop, topics, start_paused, restamp, publish_clock)
        executor = SingleThreadedExecutor()
        executor.add_node(player)
        if player.paused:
            player.get_logger().info(f"paused: call the {player.get_fully_qualified_name()}/resume service")
        player.play_all(executor)
        player.wait_until_delivered()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        published = player.published if player is not None else 0
        if player is not None:
            player.destroy_node()
        rclpy.try_shutdown()
    return published


def main(args: list[str] | None = None) -> None:
    """Console script: parameters from --ros-args (`-p bags:=[my_bag] -p rate:=2.0`)."""
    rclpy.init(args=args)
    try:
        player = BagPlayer()
    except (ValueError, BagError) as exc:
        rclpy.try_shutdown()
        raise SystemExit(f"bag_player: {exc}") from exc
    try:
        executor = SingleThreadedExecutor()
        executor.add_node(player)
        player.play_all(executor)
        player.wait_until_delivered()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        print(f"bag_player: published {player.published} messages", flush=True)
        player.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
