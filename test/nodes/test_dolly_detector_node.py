"""dolly_detector node in process with the fixed-output detector (ros2_pose.demo.fixed_output_models):
detections and 128x128 crops with the image's header; nothing below the score threshold."""
import numpy as np
import pytest
from rclpy.node import Node
from sensor_msgs.msg import Image

from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.nodes.dolly_detector import DollyDetectorNode
from ros2_pose.ros.image_conversion import from_image_msg, to_image_msg
from ros2_pose.ros.message_builders import stamp_to_ns
from ros2_pose.ros.qos import reliable_qos
from ros2_pose_msgs.msg import Detection2DArray

EXPECTED_BOX = np.array([161.5, 81.5, 481.5, 401.5])  # what the fixed detector finds in any 640x480 image


@pytest.fixture(scope="module")
def models(fixed_dolly_models):
    return fixed_dolly_models


@pytest.fixture
def detector(ros_context, executor, spin_until, models):
    def make(**params):
        params = {"detector_model": str(models["detector"]), "publish_crop": "true", "autostart": "false", **params}
        node = DollyDetectorNode(context=ros_context,
                                 cli_args=["--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={v}")])
        io = Node("dolly_detector_test_io", context=ros_context)
        io.image_pub = io.create_publisher(Image, "image", reliable_qos())
        io.detections, io.crops = [], []
        io.create_subscription(Detection2DArray, "dolly/detections", io.detections.append, reliable_qos())
        io.create_subscription(Image, "dolly/crop", io.crops.append, reliable_qos())
        executor.add_node(node)
        executor.add_node(io)
        assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
        assert spin_until(lambda: io.image_pub.get_subscription_count() >= 1
                          and io.count_publishers("/dolly/detections") >= 1)
        return node, io
    return make


def frame(stamp_ns: int):
    rng = np.random.default_rng(stamp_ns)
    pixels = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    msg = to_image_msg(pixels, "rgb8", frame_id="camera_optical_frame")
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return msg, pixels


def test_publishes_detections_and_crops_with_the_image_header(detector, spin_until):
    node, io = detector()
    stamp = 1_700_000_001_250_000_000
    msg, pixels = frame(stamp)
    io.image_pub.publish(msg)
    assert spin_until(lambda: io.detections and io.crops)
    detections, crop = io.detections[0], io.crops[0]
    for header in (detections.header, crop.header):
        assert stamp_to_ns(header.stamp) == stamp and header.frame_id == "camera_optical_frame"
    (det,) = detections.detections
    box = np.array([det.box.x_min, det.box.y_min, det.box.x_max, det.box.y_max])
    np.testing.assert_allclose(box, EXPECTED_BOX, atol=0.01)
    assert det.class_id == "dolly" and det.score == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-5)
    assert (crop.width, crop.height, crop.encoding) == (128, 128, "rgb8")
    expected_crop = RoiCrop.from_box(box, size=128).apply(pixels)
    np.testing.assert_array_equal(from_image_msg(crop), expected_crop)
    assert node.stats.errors == 0


def test_nothing_above_the_threshold_gives_an_empty_array_and_no_crop(detector, spin_until, spin_for):
    node, io = detector(score_threshold=1.0)
    io.image_pub.publish(frame(5)[0])
    assert spin_until(lambda: io.detections)
    spin_for(0.2)
    assert io.detections[0].detections == [] and io.crops == []
