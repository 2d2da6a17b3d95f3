"""The shipped drone models (models/drone_pose_large, models/drone_pose_small) end to end on the drone
sample bag: through a real drone_pose node with its default parameters (config/drone_pose.yaml: both
networks, ONNX Runtime, coarse pass, no detector), and through `ros2-pose eval drone` with its default
models. Poses are compared with the bag's ground truth T_camera_drone of the tracked drone.

The bounds are loose because the shipped models are weak (the drone section of docs/RESULTS.md: far below the
issue's targets). They sit below what the models measure on this bag, which is deterministic (render
version 5, seed 7): through the node, 21 of the 30 frames get a pose and 5 of those lie within 25 %
of the true distance (rotation errors 26-101 deg, median 59); `eval drone` posed 60 % / 73 % of the
large / small drone's frames and 4 frames within Proj5. A network that does not work gives none of
that: the same pipeline with a 2-epoch large network and an untrained small one put 0 of 30 frames
within 25 %, and a wrong keypoint order, rotation convention or crop mapping scatters poses by
metres and ~120 deg. They are NOT the issue's targets.
"""
import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from tf2_msgs.msg import TFMessage

from ros2_pose.ros.bag_frames import read_camera_messages
from ros2_pose.data.builders.frames import BuildOptions, FramePlan
from ros2_pose.evaluation.drone import TRACKED_INSTANCE
from ros2_pose.geometry.transforms import RigidTransform, rotation_error_deg
from ros2_pose.samples import sample_bag

# Over the sample's 30 frames whose tracked drone has a network (all of them: both drone models ship).
MIN_POSED_FRAMES = 0.5          # fraction of frames with a pose of the tracked drone's network
MIN_CLOSE_FRAMES = 4            # frames with a pose within CLOSE_TRANSLATION of the truth's distance
CLOSE_TRANSLATION = 0.25        # translation error / true distance
MAX_MEDIAN_ROTATION_DEG = 90.0  # of the closest pose, over the close frames
MIN_PROJ5_FRAMES = 2            # `eval drone`: frames whose keypoints reproject within 5 px

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def truths():
    """{stamp ns: (T_camera_drone of the tracked drone, its drone model)} of the sample bag."""
    plan = FramePlan.scan([sample_bag("drone")], streams=("keypoints",), options=BuildOptions(object_frame="drone"))
    out = {}
    for frame in plan.frames:
        T = frame.T_camera_object
        tracked = [o for o in frame.light["keypoints"].objects if o.instance_id == TRACKED_INSTANCE]
        if T is not None and tracked:
            out[frame.stamp_ns] = (RigidTransform(T[:3, :3], T[:3, 3]), tracked[0].class_id)
    assert len(out) >= 30
    return out


def closest_pose_errors(poses_by_stamp, truths):
    """Per frame: (translation error / distance, rotation error deg) of the pose closest to the truth."""
    errors = {}
    for stamp, (truth, _) in truths.items():
        candidates = poses_by_stamp.get(stamp, [])
        if not candidates:
            continue
        distance = np.linalg.norm(truth.translation)
        best = min(candidates, key=lambda p: np.linalg.norm(p.translation - truth.translation))
        errors[stamp] = (np.linalg.norm(best.translation - truth.translation) / distance,
                         rotation_error_deg(best.rotation, truth.rotation))
    return errors


def assert_close_enough(errors, frames: int):
    assert len(errors) >= MIN_POSED_FRAMES * frames, f"poses for {len(errors)}/{frames} frames"
    close = [rotation for relative, rotation in errors.values() if relative <= CLOSE_TRANSLATION]
    assert len(close) >= MIN_CLOSE_FRAMES, \
        f"{len(close)}/{frames} frames with a pose within {CLOSE_TRANSLATION:.0%} of the distance"
    assert np.median(close) <= MAX_MEDIAN_ROTATION_DEG, f"median rotation error {np.median(close):.1f} deg"


def test_the_node_with_its_default_models_tracks_the_sample_drones(ros_context, executor, spin_until, truths):
    import rclpy
    from ros2_pose_msgs.msg import ObjectKeypointsArray
    from sensor_msgs.msg import CameraInfo, Image

    from ros2_pose.nodes.drone_pose import DronePoseNode
    from ros2_pose.ros.message_builders import stamp_to_ns, transform_from_pose_msg

    node = DronePoseNode(context=ros_context, cli_args=["--ros-args", "-p", "autostart:=false"])
    executor.add_node(node)
    assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
    assert list(node.config["pose_models"]) == ["drone_pose_large", "drone_pose_small"]
    probe = rclpy.create_node("drone_pose_shipped_probe", context=ros_context)
    executor.add_node(probe)
    answered, poses, tf_frames = set(), {}, {}
    probe.create_subscription(ObjectKeypointsArray, "drone/keypoints",
                              lambda m: answered.add(stamp_to_ns(m.header.stamp)), 50)
    probe.create_subscription(PoseStamped, "drone/pose", lambda m: poses.setdefault(
        stamp_to_ns(m.header.stamp), []).append(m), 50)
    probe.create_subscription(TFMessage, "/tf", lambda m: [tf_frames.setdefault(
        stamp_to_ns(t.header.stamp), []).append(t) for t in m.transforms], 50)
    image_pub = probe.create_publisher(Image, "image", 50)
    info_pub = probe.create_publisher(CameraInfo, "camera_info", 50)
    assert spin_until(lambda: image_pub.get_subscription_count() and info_pub.get_subscription_count(), timeout=10)
    frames = read_camera_messages(sample_bag("drone"), 36)
    for image_msg, info in frames:
        stamp = stamp_to_ns(image_msg.header.stamp)
        info_pub.publish(info)
        assert spin_until(lambda: node.camera is not None, timeout=10)
        image_pub.publish(image_msg)
        assert spin_until(lambda: stamp in answered, timeout=10), f"no keypoints message for stamp {stamp}"
    spin_until(lambda: sum(map(len, tf_frames.values())) >= sum(map(len, poses.values())), timeout=2)
    estimates = {s: [transform_from_pose_msg(m.pose) for m in msgs] for s, msgs in poses.items()}
    # Every pose has its TF frame drone_<i>, in the image's frame.
    for stamp, msgs in poses.items():
        assert len(tf_frames.get(stamp, [])) == len(msgs)
        assert all(t.header.frame_id == msgs[0].header.frame_id and t.child_frame_id.startswith("drone_")
                   for t in tf_frames[stamp])
    assert_close_enough(closest_pose_errors(estimates, truths), len(truths))


def test_eval_drone_runs_the_default_shipped_models(truths, tmp_path):
    import json

    from ros2_pose.cli.main import main

    out = tmp_path / "metrics.json"
    assert main(["eval", "drone", "--data", str(sample_bag("drone")), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["models"] == ["drone_pose_large", "drone_pose_small"]
    rows = metrics["per_drone_model"]
    assert sum(r["count"] for r in rows.values()) == len(truths)
    posed = sum(r["valid"] / 100 * r["count"] for r in rows.values())
    assert posed >= MIN_POSED_FRAMES * len(truths), f"{posed:.0f} of {len(truths)} frames posed"
    within_5px = sum(r["Proj5"] / 100 * r["count"] for r in rows.values())
    assert within_5px >= MIN_PROJ5_FRAMES - 1e-6, f"{within_5px:.0f} frames within Proj5"
