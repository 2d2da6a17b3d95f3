"""depth_egomotion node in this process with real rclpy and real (tiny) networks: the depth image keeps
the input header and is 32FC1 without NaN, odometry integrates the pose network's known constant
motion, a stamp going back restarts it, frames before camera_info are dropped, NaN depth is never
published."""
import numpy as np
import pytest
import torch
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.models.depth_egomotion import POSE_SCALE, DepthNet, PoseNet
from ros2_pose.nodes.depth_egomotion import DepthEgoMotionNode
from ros2_pose.pipelines.depth_egomotion import transform_from_6dof
from ros2_pose.ros.image_conversion import from_image_msg, to_image_msg
from ros2_pose.ros.message_builders import ns_to_stamp, transform_from_pose_msg
from ros2_pose.training.depth_egomotion import DEFAULTS
from ros2_pose.training.run import merge_config
from ros2_pose.training.tasks.depth import depth_model_config, pose_model_config

W, H = 48, 32
TINY = [4, 8, 8, 16]
MOTION = np.array([0.0, 0.05, 0.0, 0.02, 0.0, 0.1])
CAMERA = CameraModel(np.array([[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]), None, W, H)
FRAME = "camera_optical_frame"


def _models(folder, nan_depth=False):
    """Tiny DepthNet (random) + PoseNet that always answers MOTION (zero last-layer weights)."""
    torch.manual_seed(0)
    config = merge_config(DEFAULTS, {"depth_model": {"channels": TINY, "num_scales": 2},
                                     "pose_model": {"channels": TINY, "head_width": 8}})
    depth = DepthNet(**config["depth_model"]).eval()
    if nan_depth:
        with torch.no_grad():
            depth.heads[0].bias.fill_(float("nan"))
    pose = PoseNet(1, **config["pose_model"]).eval()
    with torch.no_grad():
        pose.head.out.weight.zero_()
        pose.head.out.bias.copy_(torch.from_numpy(MOTION.astype(np.float32) / POSE_SCALE))
    write_model_folder(folder / "depth", depth, depth_model_config(config["depth_model"], W, H), export=False)
    write_model_folder(folder / "pose", pose, pose_model_config(config, 1, W, H), export=False)
    return folder / "depth", folder / "pose"


@pytest.fixture
def rig(tmp_path, ros_context, executor, spin_until):
    def make(nan_depth=False, extra=()):
        depth, pose = _models(tmp_path, nan_depth)
        node = DepthEgoMotionNode(context=ros_context, cli_args=[
            "--ros-args", "-p", f"depth_model:={depth}", "-p", f"pose_model:={pose}", "-p", "backend:=torch",
            "-p", "metric_scale:=2.0", *extra])
        io = Node("depth_test_io", context=ros_context)
        received = {"depth": [], "odom": []}
        io.create_subscription(Image, "depth/image", received["depth"].append, 10)
        io.create_subscription(Odometry, "odom/visual", received["odom"].append, 10)
        image_pub = io.create_publisher(Image, "image", 10)
        info_pub = io.create_publisher(CameraInfo, "camera_info", 10)
        executor.add_node(node)
        executor.add_node(io)
        assert spin_until(lambda: node.is_active and image_pub.get_subscription_count() > 0
                          and info_pub.get_subscription_count() > 0 and io.count_publishers("odom/visual") > 0)
        rng = np.random.default_rng(0)

        def send(stamp_ns, with_info=True, wait_for=None):
            header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=FRAME)
            if with_info:
                info_pub.publish(CameraInfo(header=header, **CAMERA.to_camera_info_fields()))
                spin_until(lambda: node.camera is not None)
            image_pub.publish(to_image_msg(rng.integers(0, 255, (H, W, 3), np.uint8), "rgb8", header))
            if wait_for is not None:
                spin_until(wait_for)
        return node, received, send
    return make


def test_depth_keeps_the_header_and_odometry_integrates_the_motion(rig):
    node, received, send = rig()
    stamps = [5_000_000_000 + i * 33_333_333 for i in range(4)]
    for i, stamp in enumerate(stamps):
        send(stamp, wait_for=lambda i=i: len(received["odom"]) > i)
    assert len(received["depth"]) == 4 and len(received["odom"]) == 4
    depth = received["depth"][-1]
    assert depth.header.frame_id == FRAME and depth.header.stamp == ns_to_stamp(stamps[-1])
    assert depth.encoding == "32FC1" and (depth.width, depth.height) == (W, H)
    values = from_image_msg(depth)
    assert np.isfinite(values).all() and (values > 0).all()
    M = transform_from_6dof(MOTION)
    M[:3, 3] *= 2.0                                       # metric_scale
    odom = received["odom"][-1]
    assert odom.header.frame_id == "odom" and odom.child_frame_id == FRAME
    assert odom.header.stamp == ns_to_stamp(stamps[-1])
    np.testing.assert_allclose(transform_from_pose_msg(odom.pose.pose).as_matrix(), np.linalg.matrix_power(M, 3),
                               atol=1e-5)
    # twist: the per-frame translation (in the current camera) over the 1/30 s between frames
    expected_v = M[:3, :3].T @ M[:3, 3] / 0.033333333
    twist = odom.twist.twist.linear
    np.testing.assert_allclose([twist.x, twist.y, twist.z], expected_v, rtol=1e-4)


def test_time_going_back_resets_odometry(rig):
    node, received, send = rig()
    for i, stamp in enumerate([9_000_000_000, 9_033_000_000, 9_066_000_000]):
        send(stamp, wait_for=lambda i=i: len(received["odom"]) > i)
    moved = transform_from_pose_msg(received["odom"][-1].pose.pose)
    assert np.linalg.norm(moved.translation) > 0.1
    send(9_000_000_000, wait_for=lambda: len(received["odom"]) > 3)   # the bag looped
    restarted = transform_from_pose_msg(received["odom"][-1].pose.pose)
    assert restarted.allclose(restarted.identity(), 1e-9, 1e-9)
    assert node.pipeline.resets == 1


def test_frames_without_camera_info_are_dropped(rig, spin_for):
    node, received, send = rig()
    send(1_000_000_000, with_info=False, wait_for=lambda: node.stats.snapshot().frames_dropped >= 1)
    spin_for(0.5)
    assert received["depth"] == [] and received["odom"] == []
    assert node.stats.snapshot().frames_dropped >= 1


def test_nan_depth_is_never_published(rig, spin_for):
    node, received, send = rig(nan_depth=True)
    send(1_000_000_000)
    send(1_033_000_000, wait_for=lambda: node.stats.snapshot().errors >= 1)
    spin_for(0.5)
    assert received["depth"] == [] and received["odom"] == []
    assert node.stats.snapshot().errors >= 1
