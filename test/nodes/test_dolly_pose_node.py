"""dolly_pose node in process with small real ONNX models whose answer is known in advance
(ros2_pose.demo.fixed_output_models: the shipped architectures with fixed output heads).

The fixed detector finds the box (161.5, 81.5, 481.5, 401.5) with score sigmoid(3) = 0.953 in any
640x480 image; the fixed pose network says "identity rotation, origin at the crop's centre, log
depth ratio 0", i.e. z = fx * 128 / 320 / 128 = fx / 320 metres for this 320-pixel box.
"""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from ros2_pose.deploy.runner import create_runner
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import rotation_error_deg
from ros2_pose.nodes.dolly_pose import DollyPoseNode
from ros2_pose.pipelines.dolly import DollyPipeline
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.message_builders import stamp_to_ns, transform_from_pose_msg
from ros2_pose.ros.qos import reliable_qos, tf_qos
from ros2_pose_msgs.msg import Detection2DArray

FX = 500.0
K = np.array([[FX, 0, 320.0], [0, FX, 240.0], [0, 0, 1]])
EXPECTED_BOX = np.array([161.5, 81.5, 481.5, 401.5])


@pytest.fixture(scope="module")
def models(fixed_dolly_models):
    return fixed_dolly_models


def camera_info(k=K, width=640, height=480, stamp_ns=0, frame_id="camera_optical_frame"):
    msg = CameraInfo(**CameraModel(k, width=width, height=height).to_camera_info_fields()) if np.any(k) else \
        CameraInfo(width=width, height=height, k=[0.0] * 9, d=[0.0] * 5, distortion_model="plumb_bob")
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return msg


def image(stamp_ns, width=640, height=480, frame_id="camera_optical_frame", seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = to_image_msg(pixels, "rgb8", frame_id=frame_id)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return msg, pixels


class DollyTopics(Node):
    """Publishes image + camera_info to the node, records everything it publishes."""

    def __init__(self, context):
        super().__init__("dolly_pose_test_io", context=context)
        self.image_pub = self.create_publisher(Image, "image", reliable_qos())
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", reliable_qos())
        self.poses, self.detections, self.tf, self.diagnostics = [], [], [], []
        self.create_subscription(PoseStamped, "dolly/pose", self.poses.append, reliable_qos())
        self.create_subscription(Detection2DArray, "dolly/detections", self.detections.append, reliable_qos())
        self.create_subscription(TFMessage, "/tf", lambda m: self.tf.extend(m.transforms), tf_qos())
        self.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: self.diagnostics.extend(s for s in m.status if "dolly_pose" in s.name),
                                 reliable_qos())


@pytest.fixture
def start(ros_context, executor, spin_until, models):
    """start(**params) -> (node, io): the node configured + activated with the fixed models."""
    def make(pose="pose", **params):
        params = {"detector_model": str(models["detector"]), "pose_model": str(models[pose]),
                  "autostart": False, "diagnostics_period_s": 0.2, **params}
        args = ["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}")]
        node = DollyPoseNode(context=ros_context, cli_args=args)
        io = DollyTopics(ros_context)
        executor.add_node(node)
        executor.add_node(io)
        assert node.trigger_configure().name == "SUCCESS"
        assert node.trigger_activate().name == "SUCCESS"
        assert spin_until(lambda: io.image_pub.get_subscription_count() >= 1
                          and io.info_pub.get_subscription_count() >= 1
                          and io.count_publishers("/dolly/pose") >= 1), "node did not subscribe"
        return node, io
    return make


def send(io, spin_until, node, msg, frames_before, timeout=20.0):
    """Publish `msg` (an Image) and spin until the node has handled it."""
    io.image_pub.publish(msg)
    assert spin_until(lambda: node.stats.frames_received > frames_before, timeout), "image never reached the node"


def test_image_before_camera_info_is_dropped_without_an_error(start, spin_until, spin_for):
    node, io = start()
    send(io, spin_until, node, image(1_000)[0], 0)
    spin_for(0.2)
    stats = node.stats.snapshot()
    assert stats.frames_dropped == 1 and stats.errors == 0 and stats.frames_processed == 0
    assert io.poses == [] and io.detections == []


def test_zero_intrinsics_are_an_error_and_a_valid_camera_info_recovers(start, spin_until):
    node, io = start()
    io.info_pub.publish(camera_info(k=np.zeros((3, 3))))
    assert spin_until(lambda: node.stats.errors == 1)
    assert "Intrinsics" in node.stats.snapshot().last_error or "intrinsics" in node.stats.snapshot().last_error
    send(io, spin_until, node, image(2_000)[0], 0)
    assert node.stats.frames_dropped == 1 and io.poses == []  # still no usable camera
    io.info_pub.publish(camera_info())
    assert spin_until(lambda: node.camera is not None)
    send(io, spin_until, node, image(3_000)[0], 1)
    assert spin_until(lambda: len(io.poses) == 1), "no pose after a valid camera_info"


def test_pose_tf_and_detections_carry_the_image_stamp_frame_and_the_pipeline_values(start, spin_until, models):
    node, io = start()
    io.info_pub.publish(camera_info(frame_id="cam_opt"))
    assert spin_until(lambda: node.camera is not None)
    stamp = 1_700_000_123_456_789_000
    msg, pixels = image(stamp, frame_id="cam_opt")
    send(io, spin_until, node, msg, 0)
    assert spin_until(lambda: io.poses and io.detections and io.tf)
    pose, detections, tf = io.poses[0], io.detections[0], io.tf[0]
    for header in (pose.header, detections.header, tf.header):
        assert stamp_to_ns(header.stamp) == stamp and header.frame_id == "cam_opt"
    assert tf.child_frame_id == "dolly"
    # The node's answer is the pipeline's answer on the same image, and what the fixed nets imply.
    pipeline = DollyPipeline(create_runner(models["detector"]), create_runner(models["pose"]))
    expected = pipeline.process(pixels, CameraModel(K, width=640, height=480))
    received = transform_from_pose_msg(pose)
    assert received.allclose(expected.pose, 1e-6, 1e-6)
    assert received.allclose(transform_from_pose_msg(tf), 1e-9, 1e-9)
    assert received.translation[2] == pytest.approx(FX / 320.0, rel=1e-3)
    # The network says "identity relative to the crop's viewing ray"; the box is near the image centre.
    assert rotation_error_deg(received.rotation, np.eye(3)) < 1.0
    (det,) = detections.detections
    np.testing.assert_allclose([det.box.x_min, det.box.y_min, det.box.x_max, det.box.y_max], EXPECTED_BOX, atol=0.01)
    assert det.score == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-5) and det.class_id == "dolly"


def test_a_pose_model_with_nan_weights_never_publishes_a_pose(start, spin_until, spin_for):
    node, io = start(pose="nan_pose")
    io.info_pub.publish(camera_info())
    assert spin_until(lambda: node.camera is not None)
    for i in range(3):
        send(io, spin_until, node, image(10_000 + i, seed=i)[0], i)
    assert spin_until(lambda: len(io.detections) == 3)
    spin_for(0.3)
    assert io.poses == [] and io.tf == []
    assert node.outcomes["rejected_pose"] == 3 and node.stats.errors == 0
    assert len(io.detections[0].detections) == 1  # the detector still saw something


def test_score_threshold_one_publishes_nothing_and_diagnostics_say_no_dolly(start, spin_until, spin_for):
    node, io = start(score_threshold=1.0)
    io.info_pub.publish(camera_info())
    assert spin_until(lambda: node.camera is not None)
    for i in range(2):
        send(io, spin_until, node, image(20_000 + i)[0], i)
    assert spin_until(lambda: len(io.detections) == 2)
    spin_for(0.3)
    assert io.poses == [] and io.tf == []
    assert all(len(d.detections) == 0 for d in io.detections)
    assert spin_until(lambda: any("no dolly in view" in s.message for s in io.diagnostics), 3.0), \
        [s.message for s in io.diagnostics]


def test_image_size_different_from_camera_info_is_an_error(start, spin_until, spin_for):
    node, io = start()
    io.info_pub.publish(camera_info())
    assert spin_until(lambda: node.camera is not None)
    send(io, spin_until, node, image(30_000, width=320, height=240)[0], 0)
    spin_for(0.1)
    stats = node.stats.snapshot()
    assert stats.errors == 1 and "320x240" in stats.last_error and "640x480" in stats.last_error
    assert io.poses == [] and io.detections == []
    send(io, spin_until, node, image(30_001)[0], 1)  # and it keeps running
    assert spin_until(lambda: len(io.poses) == 1)
