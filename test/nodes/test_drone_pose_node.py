"""drone_pose node: image + camera_info (+ detections) in, ObjectKeypointsArray per frame, PoseStamped and
TF drone_<i> per drone with a pose, outcome counts in diagnostics. A tiny untrained network runs for
real (torch backend); poses from it are not expected, so the pose/TF path is fed a known result."""
import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage

from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix
from ros2_pose.nodes.drone_pose import DronePoseNode
from ros2_pose.pipelines.drone import DroneResult
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.ros.message_builders import ns_to_stamp
from ros2_pose.training.drone import build_network, drone_model_config, drone_model_info
from ros2_pose.training.tasks.drone import DEFAULTS

WIDTH, HEIGHT = 96, 64


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drone_model") / "model"
    model_cfg = {"backbone": "hrnet", "input_size": 32,
                 "kwargs": {"width": 4, "exchange_blocks": [1, 1], "units_per_branch": 1, "stage1_units": 1}}
    write_model_folder(folder, build_network(model_cfg, 10).eval(), drone_model_config(model_cfg), export=False)
    drone_model_info(dict(DEFAULTS, model=model_cfg)).write(folder)
    return folder


@pytest.fixture
def node(ros_context, executor, model_folder, tmp_path):
    params = tmp_path / "drone_pose.yaml"
    params.write_text(yaml.safe_dump({"drone_pose": {"ros__parameters": {
        "pose_models": [str(model_folder)], "backend": "torch", "use_detections": True, "autostart": False}}}))
    node = DronePoseNode(params_file=params, context=ros_context)
    executor.add_node(node)
    assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
    return node


def camera_info_msg(stamp_ns):
    camera = CameraModel(np.array([[80.0, 0, 47.5], [0, 80.0, 31.5], [0, 0, 1]]), width=WIDTH, height=HEIGHT)
    msg = CameraInfo(**camera.to_camera_info_fields())
    msg.header.stamp, msg.header.frame_id = ns_to_stamp(stamp_ns), "camera_optical_frame"
    return msg


def test_keypoints_for_every_detection_and_counted_outcomes(node, executor, spin_until):
    from ros2_pose_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectKeypointsArray

    helper = __import__("rclpy").create_node("drone_pose_test_io", context=node.context)
    executor.add_node(helper)
    received = []
    helper.create_subscription(ObjectKeypointsArray, "drone/keypoints", received.append, 10)
    publishers = {"info": helper.create_publisher(CameraInfo, "camera_info", 10),
                  "detections": helper.create_publisher(Detection2DArray, "detections", 10),
                  "image": helper.create_publisher(type(to_image_msg(np.zeros((2, 2, 3), np.uint8), "rgb8")), "image", 10)}
    spin_until(lambda: all(p.get_subscription_count() for p in publishers.values()), timeout=5)
    stamp = 1_000_000_000
    publishers["info"].publish(camera_info_msg(stamp))
    spin_until(lambda: node.camera is not None, timeout=5)
    image = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image_msg = to_image_msg(image, "rgb8", stamp=ns_to_stamp(stamp), frame_id="camera_optical_frame")
    # The image first: it waits for its detections.
    publishers["image"].publish(image_msg)
    spin_until(lambda: node.pending_image is not None, timeout=5)
    detections = Detection2DArray(header=image_msg.header)
    for box, class_id in [((10.0, 10.0, 30.0, 25.0), "drone_large"), ((50.0, 20.0, 60.0, 28.0), "")]:
        detections.detections.append(Detection2D(header=image_msg.header, class_id=class_id, score=0.9,
                                                 box=BoundingBox2D(x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3])))
    publishers["detections"].publish(detections)
    assert spin_until(lambda: received, timeout=10)
    objects = received[0].objects
    assert [o.instance_id for o in objects] == [0, 1] and all(o.class_id == "drone_large" for o in objects)
    assert all(len(o.keypoints) == 10 and o.keypoints[0].name == "rotor_front_left" for o in objects)
    assert received[0].header.stamp == image_msg.header.stamp
    assert (objects[0].box.x_min, objects[0].box.y_max) == (10.0, 25.0) and objects[1].box.x_min == 50.0
    values = {kv.key: kv.value for kv in node.diagnostic_status().values}
    assert sum(int(values[f"drones_{k}"]) for k in ("ok", "too_few_keypoints", "pnp_failed", "rejected_pose")) == 2
    # A wrong-size image is an error counted by the base, not a crash.
    errors = node.stats.snapshot().errors
    node.pending_image = None
    node.on_detections(Detection2DArray(header=image_msg.header))
    bad = to_image_msg(np.zeros((10, 10, 3), np.uint8), "rgb8", stamp=ns_to_stamp(stamp), frame_id="camera_optical_frame")
    node.process_safely(node.on_image)(bad, np.zeros((10, 10, 3), np.uint8))
    assert node.stats.snapshot().errors == errors + 1


def test_a_pose_is_published_with_its_tf_frame(node, executor, spin_until):
    import rclpy

    helper = rclpy.create_node("drone_pose_test_pose", context=node.context)
    executor.add_node(helper)
    poses, tfs = [], []
    helper.create_subscription(PoseStamped, "drone/pose", poses.append, 10)
    helper.create_subscription(TFMessage, "/tf", tfs.append, 10)
    spin_until(lambda: node.pose_publisher.get_subscription_count() > 0, timeout=5)
    pose = RigidTransform(axis_angle_to_matrix([0.1, 0.2, 0.3]), np.array([0.2, -0.1, 4.0]))
    keypoints, confidence = np.zeros((10, 2)), np.full(10, 0.9)
    results = [DroneResult("pnp_failed", "drone_large", np.array([0, 0, 5, 5.0]), keypoints, confidence * 0),
               DroneResult("ok", "drone_large", np.array([10, 10, 20, 20.0]), keypoints, confidence, pose)]
    image_msg = to_image_msg(np.zeros((HEIGHT, WIDTH, 3), np.uint8), "rgb8", stamp=ns_to_stamp(5), frame_id="cam")
    node.publish_results(image_msg, results)
    assert spin_until(lambda: poses and tfs, timeout=5)
    assert len(poses) == 1 and poses[0].header.frame_id == "cam"
    assert poses[0].pose.position.z == pytest.approx(4.0)
    transform = tfs[0].transforms[0]
    assert transform.child_frame_id == "drone_1" and transform.header.frame_id == "cam"  # index among detections
    values = {kv.key: kv.value for kv in node.diagnostic_status().values}
    assert values["drones_ok"] == "1" and values["drones_pnp_failed"] == "1"
