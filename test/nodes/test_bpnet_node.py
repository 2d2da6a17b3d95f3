"""bpnet node: SkeletonArray / MarkerArray builders (known answers) and the node in this process with a
tiny untrained BodyPoseNet exported to ONNX (stamps, joint names, limbs, markers, parameter errors)."""
import numpy as np
import pytest
import rclpy
import torch
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.models.bodypose import BodyPoseNet
from ros2_pose.nodes.bpnet import BodyPoseNode, skeleton_array, skeleton_markers
from ros2_pose.pipelines.body_pose import Person, estimate_people
from ros2_pose.ros.image_conversion import to_image_msg
from ros2_pose.sim.skeleton import BODYPOSE18_KEYPOINTS, COCO_KEYPOINTS, COCO_SKELETON
from ros2_pose.training.bodypose import model_config_for
from ros2_pose_msgs.msg import SkeletonArray

pytestmark = pytest.mark.ros
WIDTH, HEIGHT = 80, 64
K = np.array([[60.0, 0, 40.0], [0, 60.0, 32.0], [0, 0, 1]])
HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id="camera_optical_frame")


def person(found: dict[str, tuple[float, float, float]]) -> Person:
    keypoints = np.zeros((18, 3))
    for name, value in found.items():
        keypoints[BODYPOSE18_KEYPOINTS.index(name)] = value
    return Person(keypoints, total_score=3.0, num_parts=len(found))


ALICE = person({"nose": (40, 10, 0.9), "neck": (40, 20, 0.8), "right_shoulder": (34, 20, 1.3),
                "left_shoulder": (46, 21, 0.7), "left_elbow": (48, 30, 0.5)})


def test_skeleton_array_holds_coco_joints_limbs_and_found_flags():
    message = skeleton_array(HEADER, [ALICE])
    assert message.header.stamp.sec == 12 and message.header.stamp.nanosec == 345
    assert list(message.joint_names) == list(COCO_KEYPOINTS)
    assert list(zip(message.limb_a, message.limb_b)) == [(a - 1, b - 1) for a, b in COCO_SKELETON]
    (skeleton,) = message.skeletons
    assert [k.name for k in skeleton.keypoints] == list(COCO_KEYPOINTS)
    by_name = {k.name: k for k in skeleton.keypoints}
    assert (by_name["right_shoulder"].x, by_name["right_shoulder"].y) == (34, 20)
    assert by_name["right_shoulder"].confidence == 1.0  # a heatmap peak above 1 is clipped
    assert by_name["left_elbow"].confidence == pytest.approx(0.5) and by_name["left_elbow"].visibility == 2
    assert by_name["right_ankle"].visibility == 0 and by_name["right_ankle"].confidence == 0
    assert (skeleton.box.x_min, skeleton.box.y_min, skeleton.box.x_max, skeleton.box.y_max) == (34, 10, 48, 30)
    assert skeleton.score == pytest.approx(ALICE.score)
    assert skeleton_array(HEADER, []).skeletons == []


def test_markers_lie_at_the_depth_and_project_back_to_the_joints():
    camera = CameraModel(K, width=WIDTH, height=HEIGHT)
    markers = skeleton_markers(HEADER, [ALICE, ALICE], camera, depth_m=2.5, line_width_m=0.02)
    assert markers.markers[0].action == Marker.DELETEALL
    limbs, joints = markers.markers[1], markers.markers[2]
    assert limbs.type == Marker.LINE_LIST and joints.type == Marker.SPHERE_LIST
    assert limbs.header.frame_id == "camera_optical_frame" and limbs.scale.x == 0.02
    # Limbs with both COCO joints found: nose has no COCO limb to a shoulder; l_shoulder-r_shoulder
    # and l_shoulder-l_elbow do.
    assert len(limbs.points) == 4 and len(joints.points) == 4
    points = np.array([[p.x, p.y, p.z] for p in joints.points])
    assert np.allclose(points[:, 2], 2.5)
    projected = camera.project(points)
    assert np.allclose(sorted(map(tuple, projected)), sorted([(40, 10), (34, 20), (46, 21), (48, 30)]))
    assert len({m.id for m in markers.markers[1::2]}) == 2  # one id per person


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    model = BodyPoseNet(width=4, stages=2).eval()
    # Back to PyTorch's default initialisation, as the network had it when built with this seed: its
    # noise maps on the noise image hold "people" at the node's low bars (He init's small output
    # heads give maps below them).
    torch.manual_seed(0)
    for conv in model.layers.values():
        conv.reset_parameters()
    folder = tmp_path_factory.mktemp("bpnet_model")
    write_model_folder(folder, model, model_config_for(model, (HEIGHT, WIDTH)))
    return folder


def camera_info() -> CameraInfo:
    return CameraInfo(header=HEADER, width=WIDTH, height=HEIGHT, k=K.ravel().tolist(), distortion_model="plumb_bob",
                      d=[0.0] * 5, p=np.hstack([K, np.zeros((3, 1))]).ravel().tolist(),
                      r=np.eye(3).ravel().tolist())


def make_node(context, model, *params):
    args = ["--ros-args", "-p", f"model:={model}", "-p", "publish_annotated_image:=true",
            "-p", "heatmap_threshold:=0.02", "-p", "min_parts:=1", "-p", "min_mean_score:=0.0"]
    for param in params:
        args += ["-p", param]
    return BodyPoseNode(context=context, cli_args=args)


def test_node_publishes_skeletons_markers_and_annotated_image_with_the_image_stamp(ros_context, executor, spin_until,
                                                                                      tiny_model):
    node = make_node(ros_context, tiny_model)
    assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
    assert node.pipeline_config.input_shape == (HEIGHT, WIDTH)  # [0, 0]: taken from model.yaml
    client = rclpy.create_node("bpnet_test_client", context=ros_context)
    received = {"skeletons": [], "markers": [], "image": []}
    client.create_subscription(SkeletonArray, "people/skeletons", received["skeletons"].append, 10)
    client.create_subscription(MarkerArray, "people/markers", received["markers"].append, 10)
    client.create_subscription(Image, "people/annotated_image", received["image"].append, 10)
    image_pub = client.create_publisher(Image, "image", 10)
    info_pub = client.create_publisher(CameraInfo, "camera_info", 10)
    executor.add_node(node)
    executor.add_node(client)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)

    # Without camera_info there are skeletons but no markers (intrinsics are never guessed).
    image_pub.publish(to_image_msg(frame, "rgb8", HEADER))
    assert spin_until(lambda: received["skeletons"] and received["image"])
    assert not received["markers"] and node.counts["frames_without_markers"] == 1
    info_pub.publish(camera_info())
    assert spin_until(lambda: node.camera is not None)
    stamp = Header(stamp=Time(sec=13, nanosec=7), frame_id="camera_optical_frame")
    image_pub.publish(to_image_msg(frame, "rgb8", stamp))
    assert spin_until(lambda: len(received["skeletons"]) == 2 and received["markers"])
    message = received["skeletons"][-1]
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (13, 7)
    assert list(message.joint_names) == list(COCO_KEYPOINTS)
    assert max(max(message.limb_a), max(message.limb_b)) < 17
    assert message.skeletons  # the seeded noise net on the seeded noise image finds "people" at these bars
    for skeleton in message.skeletons:
        assert len(skeleton.keypoints) == 17
        assert all(k.visibility in (0, 2) and 0 <= k.confidence <= 1 for k in skeleton.keypoints)
    assert received["markers"][-1].markers[0].header.stamp.sec == 13
    annotated = received["image"][-1]
    assert (annotated.height, annotated.width, annotated.encoding) == (HEIGHT, WIDTH, "rgb8")
    status = node.diagnostic_status()
    values = {v.key: v.value for v in status.values}
    assert int(values["frames_with_people"]) + int(values["frames_without_people"]) == 2


@pytest.mark.parametrize("params, transition, message", [
    (["keep_aspect_ratio_mode:=stretch"], "configure", "keep_aspect_ratio_mode"),
    (["marker_depth_m:=0.0"], "configure", "marker_depth_m"),
    (["input_shape:=[60, 80]"], "configure", "multiples of the stride"),
    (["keep_aspect_ratio_mode:=adjust_network_input"], "activate", "fixed input size"),
    (["input_shape:=[64, 64]"], "activate", "differs from the onnxruntime model's input"),
])
def test_bad_parameters_fail_the_transition_with_the_reason(ros_context, tiny_model, params, transition, message):
    node = make_node(ros_context, tiny_model, *params)
    errors = []
    node.get_logger().error = errors.append  # the base logs the reason of a failed transition here
    result = node.trigger_configure()
    if transition == "activate":
        assert result.name == "SUCCESS"
        result = node.trigger_activate()
    assert result.name == "FAILURE"
    assert any(message in e for e in errors), errors
    node.destroy_node()


def test_torch_backend_runs_adjust_network_input(ros_context, tiny_model):
    node = make_node(ros_context, tiny_model, "backend:=torch", "keep_aspect_ratio_mode:=adjust_network_input",
                     "input_shape:=[48, 48]")
    assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
    shapes = []
    predict = node.predict

    def recording(batch):
        shapes.append(batch.shape)
        return predict(batch)
    frame = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    estimate_people(recording, frame, node.pipeline_config)
    # Height 48, width from the 80x64 image's aspect ratio (60) rounded up to the stride.
    assert shapes == [(1, 3, 48, 64)]
    node.destroy_node()
