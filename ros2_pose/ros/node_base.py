"""The base of every ros2_pose node: lifecycle, parameters from config YAML, safe callbacks, diagnostics.

Built on `rclpy.lifecycle.Node` (same API on Humble and Kilted). A node subclasses
`LifecycleNodeBase`, declares its parameters and implements four hooks::

    class EchoNode(LifecycleNodeBase):
        NODE_NAME = "echo"
        CONFIG_FILE = "echo.yaml"                    # config/echo.yaml, optional
        PARAMETERS = {"scale": (1.0, "factor applied to ..."),
                      "classes": ([], "class names to keep; empty keeps all", str)}  # element type for []

        def on_configure_node(self):   # read self.config, create outputs
            self.out = self.create_output_publisher(Image, "echo/image")
        def on_activate_node(self):    # load the model, subscribe
            self.create_image_subscription("image", self.on_image)
        def on_deactivate_node(self):  # stop work (subscriptions made by the helpers go automatically)
        def on_cleanup_node(self):     # release the model (publishers made by the helper go automatically)
        def on_image(self, msg, image):
            self.out.publish(to_image_msg(image, msg.encoding, self.output_header(msg.header)))

    main = make_node_main(EchoNode)   # the console script

Parameters: value order is the spec default < the node's YAML file (`params_file=` argument, else
`config/<CONFIG_FILE>`; `<node>: ros__parameters:` and `/**:` entries, read by
`ros2_pose.ros.params`) < what rcl is given (`ros2 launch` / `--ros-args --params-file` / `-p`).
Every parameter is declared with its description (ParameterDescriptor). Values are read once, at
configure, into `self.config` (reconfigure = cleanup + configure). Parameters every node has:
`autostart` (true: configure + activate on the first spin, so plain `ros2 run` works; false: wait
for a lifecycle manager), `diagnostics_period_s` (1.0), `input_timeout_s` (3.0),
`error_threshold` (3).

Callbacks: `create_input_subscription` / `create_image_subscription` wrap the callback in
`process_safely`: an exception (bad input included) is logged (throttled, traceback at debug) and
counted in diagnostics and the node keeps running; `raise DropFrame(reason)` skips a frame without
an error. Subscriptions exist only while active; outputs are lifecycle publishers (publish only
while active).

/diagnostics (diagnostic_msgs/DiagnosticArray, every `diagnostics_period_s`): one status
"<node>: processing" with input rate, latency median/p95, frames received/processed/dropped,
errors, last error and the lifecycle state; level from `FrameStats` while active (WARN no input,
ERROR repeated failures), OK "inactive"/"unconfigured" otherwise.

`run_node(node_cls, args=None, **node_kwargs) -> int`: init rclpy (SIGINT and SIGTERM handlers),
spin, and on Ctrl-C / SIGTERM / external shutdown release the node (deactivate/cleanup hooks),
destroy it and shut rclpy down, without a traceback; returns 0, or 1 when the node cannot be
constructed (the reason is logged). `make_node_main(node_cls)` returns `main(args=None) -> int`.
"""
from __future__ import annotations

import re
import time
import traceback
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros2_pose.resources import config_file
from ros2_pose.ros.diagnostics import FrameStats, Level, to_diagnostic_status
from ros2_pose.ros.image_conversion import from_image_msg
from ros2_pose.ros.params import ParameterFileError, coerce_to_default_type, node_parameters
from ros2_pose.ros.qos import reliable_qos, sensor_data_qos


# camera_info messages kept by stamp for pairing with images (about a second of a 30 Hz camera).
CAMERA_INFO_HISTORY = 30
# Per-frame timings kept for `frame_timings` (bench nodes); a bounded window, like FrameStats.
FRAME_TIMING_HISTORY = 1000


class DropFrame(Exception):
    """Raised by a callback to skip this input without counting an error (e.g. no camera_info yet)."""


_ARRAY_TYPES = {bool: ParameterType.PARAMETER_BOOL_ARRAY, int: ParameterType.PARAMETER_INTEGER_ARRAY,
                float: ParameterType.PARAMETER_DOUBLE_ARRAY, str: ParameterType.PARAMETER_STRING_ARRAY}


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class LifecycleNodeBase(LifecycleNode):
    NODE_NAME: str = ""
    CONFIG_FILE: str | None = None
    PARAMETERS: dict[str, tuple] = {}
    BASE_PARAMETERS: dict[str, tuple] = {
        "autostart": (True, "configure and activate on the first spin (plain `ros2 run`); false waits "
                            "for a lifecycle manager"),
        "diagnostics_period_s": (1.0, "period of the /diagnostics status, seconds"),
        "input_timeout_s": (3.0, "diagnostics turn WARN when no input arrived for this long, seconds"),
        "error_threshold": (3, "consecutive failed inputs that turn diagnostics ERROR"),
    }

    def __init__(self, node_name: str | None = None, *, params_file: str | Path | None = None, **kwargs):
        super().__init__(node_name or self.NODE_NAME or _snake_case(type(self).__name__), **kwargs)
        self._inputs: list = []
        self._outputs: list = []
        self._configured = False
        self._active = False
        self.config: dict[str, Any] = {}
        self._declare_parameters(params_file)
        self.stats = self._new_frame_stats()
        # One dict per processed frame: "callback_s" (the whole callback, image decoding and
        # publishing included) and the seconds of each `timed` stage inside it.
        self.frame_timings: deque[dict[str, float]] = deque(maxlen=FRAME_TIMING_HISTORY)
        self._frame_stages: dict[str, float] | None = None
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos())
        self._diagnostics_timer = self.create_timer(
            self.get_parameter("diagnostics_period_s").value, self.publish_diagnostics)
        self._autostart_timer = None
        if self.get_parameter("autostart").value:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # ----- hooks for subclasses -----
    def on_configure_node(self) -> None:
        """Read `self.config`, create output publishers."""

    def on_activate_node(self) -> None:
        """Load models, create subscriptions."""

    def on_deactivate_node(self) -> None:
        """Stop work; subscriptions made by the helpers are destroyed after this."""

    def on_cleanup_node(self) -> None:
        """Release models; publishers made by `create_output_publisher` are destroyed after this."""

    # ----- parameters -----
    @classmethod
    def parameter_spec(cls) -> dict[str, tuple]:
        return {**cls.BASE_PARAMETERS, **cls.PARAMETERS}

    def _declare_parameters(self, params_file: str | Path | None) -> None:
        spec = self.parameter_spec()
        path = params_file if params_file is not None else (
            config_file(self.CONFIG_FILE) if self.CONFIG_FILE else None)
        from_file = node_parameters(path, self.get_fully_qualified_name()) if path is not None else {}
        unknown = sorted(set(from_file) - set(spec) - {"use_sim_time"})
        if unknown:
            self.get_logger().warning(
                f"{path} sets parameter(s) {unknown} that {self.get_name()} does not declare; "
                f"declared: {sorted(spec)}")
        if "use_sim_time" in from_file:
            self.set_parameters([Parameter("use_sim_time", value=from_file["use_sim_time"])])
        for name, entry in spec.items():
            if len(entry) not in (2, 3):
                raise ValueError(f"{type(self).__name__}.PARAMETERS[{name!r}] must be (default, description) "
                                 f"or (default, description, element type), got {entry!r}")
            default, description = entry[0], entry[1]
            value = default
            if name in from_file:
                try:
                    value = coerce_to_default_type(name, from_file[name], default)
                except ParameterFileError as exc:
                    raise ParameterFileError(f"{path}: {exc}") from None
            descriptor = ParameterDescriptor(name=name, description=description)
            if isinstance(default, list) and not default:
                if len(entry) != 3 or entry[2] not in _ARRAY_TYPES:
                    raise ValueError(f"{type(self).__name__}.PARAMETERS[{name!r}]: an empty list default "
                                     "needs its element type as third item (bool, int, float or str)")
                descriptor.type = _ARRAY_TYPES[entry[2]]
                if not value:
                    # rclpy types a [] value as a byte array, so declare the type alone (an rcl
                    # override still applies) and set [] only when nothing overrode it.
                    self.declare_parameter(name, Parameter.Type(descriptor.type), descriptor)
                    try:
                        self.get_parameter(name)
                    except ParameterUninitializedException:
                        self.set_parameters([Parameter(name, Parameter.Type(descriptor.type), [])])
                    continue
            self.declare_parameter(name, value, descriptor)

    def _new_frame_stats(self) -> FrameStats:
        return FrameStats(stale_after_s=self.get_parameter("input_timeout_s").value,
                          error_threshold=self.get_parameter("error_threshold").value)

    # ----- lifecycle -----
    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def is_configured(self) -> bool:
        return self._configured

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        self._autostart_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _hook_failed(self, what: str, exc: BaseException) -> None:
        self.get_logger().error(f"{what} failed: {type(exc).__name__}: {exc}")
        self.get_logger().debug("".join(traceback.format_exception(exc)))

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.config = {name: self.get_parameter(name).value for name in self.parameter_spec()}
            self.stats = self._new_frame_stats()
            self.on_configure_node()
        except Exception as exc:  # a failed transition leaves the node unconfigured, not crashed
            self._hook_failed("configure", exc)
            self._destroy_outputs()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        try:
            self.stats = self._new_frame_stats()
            self.on_activate_node()
        except Exception as exc:
            self._hook_failed("activate", exc)
            self._destroy_inputs()
            super().on_deactivate(state)
            return TransitionCallbackReturn.FAILURE
        self._active = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_activity()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release_configuration()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.get_logger().error(f"lifecycle error in state {state.label!r}; releasing and going unconfigured")
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_activity(self) -> None:
        if self._active:
            try:
                self.on_deactivate_node()
            except Exception as exc:
                self._hook_failed("deactivate", exc)
        self._destroy_inputs()
        self._active = False

    def _release_configuration(self) -> None:
        if self._configured:
            try:
                self.on_cleanup_node()
            except Exception as exc:
                self._hook_failed("cleanup", exc)
        self._destroy_outputs()
        self._configured = False

    def release(self) -> None:
        """Run the deactivate and cleanup hooks as far as needed (idempotent); used on shutdown."""
        self._stop_activity()
        self._release_configuration()

    def lifecycle_state_label(self) -> str:
        return "active" if self._active else ("inactive" if self._configured else "unconfigured")

    # ----- entities -----
    def create_output_publisher(self, msg_type, topic: str, qos: QoSProfile | None = None):
        """A lifecycle publisher (publishes only while active), destroyed at cleanup."""
        publisher = self.create_lifecycle_publisher(msg_type, topic, qos or reliable_qos())
        self._outputs.append(publisher)
        return publisher

    def create_input_subscription(self, msg_type, topic: str, callback: Callable[[Any], None],
                                  qos: QoSProfile | None = None, *, counts_as_frame: bool = True):
        """A subscription with `process_safely(callback)`, destroyed at deactivate.

        `counts_as_frame=False` for side inputs (camera_info) that should not count in the input rate."""
        subscription = self.create_subscription(
            msg_type, topic, self.process_safely(callback, counts_as_frame=counts_as_frame),
            qos or reliable_qos())
        self._inputs.append(subscription)
        return subscription

    def create_camera_info_subscription(self, topic: str = "camera_info"):
        """Keeps the camera (a CameraModel) from camera_info, subscribed with best-effort
        (sensor-data) QoS, which matches both reliable and best-effort camera drivers (a reliable
        subscription never hears a best-effort publisher). Zero/NaN intrinsics raise
        InvalidIntrinsicsError: logged and counted as an error, the node keeps running. A side input:
        not counted in the frame rate. The last few are kept by stamp, so an image is paired with the
        camera_info of its own stamp when intrinsics change per frame (zoom, simulated data)."""
        from collections import OrderedDict

        from sensor_msgs.msg import CameraInfo

        from ros2_pose.geometry.camera import CameraModel
        from ros2_pose.ros.message_builders import stamp_to_ns

        self.camera = None
        self._cameras_by_stamp: OrderedDict[int, CameraModel] = OrderedDict()

        def store(msg: CameraInfo) -> None:
            self.camera = CameraModel.from_camera_info(msg)
            self._cameras_by_stamp[stamp_to_ns(msg.header.stamp)] = self.camera
            while len(self._cameras_by_stamp) > CAMERA_INFO_HISTORY:
                self._cameras_by_stamp.popitem(last=False)
        return self.create_input_subscription(CameraInfo, topic, store, sensor_data_qos(), counts_as_frame=False)

    def camera_for(self, image, header=None):
        """The camera of this image: the camera_info with the image's stamp when one has arrived,
        else the latest (a camera with fixed intrinsics). DropFrame before any camera_info,
        ValueError on a size mismatch."""
        camera = getattr(self, "camera", None)
        if header is not None and getattr(self, "_cameras_by_stamp", None):
            from ros2_pose.ros.message_builders import stamp_to_ns

            camera = self._cameras_by_stamp.get(stamp_to_ns(header.stamp), camera)
        if camera is None:
            raise DropFrame("no camera_info received yet")
        if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but camera_info says "
                             f"{camera.width}x{camera.height}")
        return camera

    def create_image_subscription(self, topic: str, callback: Callable[[Image, Any], None],
                                  desired_encoding: str | None = None, qos: QoSProfile | None = None):
        """Images with sensor-data QoS; `callback(msg, array)` gets the decoded pixels too (a bad
        image is an error counted in diagnostics, the callback is not called)."""
        def decode_then_call(msg: Image) -> None:
            callback(msg, from_image_msg(msg, desired_encoding))
        return self.create_input_subscription(Image, topic, decode_then_call, qos or sensor_data_qos())

    def _destroy_inputs(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs.clear()

    def _destroy_outputs(self) -> None:
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        self._outputs.clear()

    @contextmanager
    def timed(self, stage: str):
        """Time a stage of the current frame's callback (e.g. `with self.timed("pipeline"):`): it is
        recorded with the callback's total in `frame_timings`, so what the node spends outside its
        pipeline (image conversion, message building, publishing) can be measured (bench nodes)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._frame_stages is not None:
                self._frame_stages[stage] = self._frame_stages.get(stage, 0.0) + time.perf_counter() - start

    def process_safely(self, callback: Callable[..., None], *, counts_as_frame: bool = True) -> Callable[..., None]:
        """`callback` wrapped so an exception is logged and counted, never raised into the executor."""
        def wrapped(*args) -> None:
            if counts_as_frame:
                self.stats.frame_received()
                self._frame_stages = {}
            start = time.perf_counter()
            try:
                callback(*args)
            except DropFrame as drop:
                self.stats.frame_dropped(str(drop))
                self.get_logger().debug(f"frame dropped: {drop}")
            except Exception as exc:  # noqa: BLE001 - the node must keep running; counted and logged
                description = f"{type(exc).__name__}: {exc}"
                self.stats.error(description)
                if counts_as_frame:
                    self.stats.frame_dropped(description)
                self.get_logger().error(f"callback failed: {description}", throttle_duration_sec=1.0)
                self.get_logger().debug("".join(traceback.format_exception(exc)))
            else:
                if counts_as_frame:
                    elapsed = time.perf_counter() - start
                    self.stats.frame_processed(elapsed)
                    self.frame_timings.append({"callback_s": elapsed, **self._frame_stages})
            finally:
                if counts_as_frame:
                    self._frame_stages = None  # dropped and failed frames too: no frame is open now
        return wrapped

    @staticmethod
    def output_header(input_header: Header, frame_id: str | None = None) -> Header:
        """A header for an output: the input's stamp (outputs carry their input's time) and frame."""
        return Header(stamp=input_header.stamp,
                      frame_id=input_header.frame_id if frame_id is None else frame_id)

    # ----- diagnostics -----
    def diagnostic_status(self):
        snapshot = self.stats.snapshot()
        status = to_diagnostic_status(snapshot, f"{self.get_name()}: processing", self.get_fully_qualified_name())
        state = self.lifecycle_state_label()
        if state != "active":
            status.level = bytes([int(Level.OK)])
            status.message = state
        status.values.append(KeyValue(key="lifecycle_state", value=state))
        return status

    def publish_diagnostics(self) -> None:
        message = DiagnosticArray(status=[self.diagnostic_status()])
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(message)


def run_node(node_cls: type, args: list[str] | None = None, **node_kwargs) -> int:
    """Runs one node until Ctrl-C / SIGTERM / external shutdown (see module docstring). Any rclpy
    node class works; its `release()`, where it has one, runs before the node is destroyed."""
    rclpy.init(args=args)  # installs rclpy's SIGINT and SIGTERM handlers: they shut the context down
    node = None
    try:
        try:
            node = node_cls(**node_kwargs)
        except Exception as exc:  # a clear reason instead of a traceback (bad config, missing model)
            rclpy.logging.get_logger(getattr(node_cls, "NODE_NAME", None) or node_cls.__name__).fatal(
                f"cannot start {node_cls.__name__}: {type(exc).__name__}: {exc}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A SIGINT/SIGTERM that shuts the context down while the executor builds its next wait set
        # surfaces as an RCLError ("context is not valid") instead of ExternalShutdownException:
        # that is still a requested shutdown. Anything else while the context is alive is a real error.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            if hasattr(node, "release"):
                node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def make_node_main(node_cls: type) -> Callable[[list[str] | None], int]:
    """`main(args=None) -> int` for a console script (setup.py runs `sys.exit(main())`)."""
    def main(args: list[str] | None = None) -> int:
        return run_node(node_cls, args)
    main.__doc__ = f"Runs {node_cls.__name__} (see its module for parameters and topics)."
    return main
