"""The shipped BodyPoseNet model (models/bpnet) end to end on the people sample bag (640x480, rendered
by set-up): a real bpnet node with its default parameters (config/bpnet.yaml: model bpnet, ONNX
Runtime, the model's exported 480x640 input) on the first frames; the skeletons it publishes are
compared with the bag's /ground_truth/skeletons of the same stamp.

Measure: the fraction of the scored people's labelled joints that a published skeleton has within
0.2 of the person's height (a loose per-joint PCK; per joint because the shipped model, far from
its OKS target, splits many people into fragments). The shipped model measures 0.82 on these 8
frames (0.80 on all 24, the body pose section of docs/RESULTS.md); an untrained network finds no joint at the
node's thresholds, and a joint order or input scaling gone wrong puts the joints elsewhere. The
bounds are NOT the issue's target (OKS AP, `bpnet evaluate`).
"""
import numpy as np
import pytest

from ros2_pose.ros.bag_frames import read_camera_messages
from ros2_pose.data.bags import iter_messages
from ros2_pose.samples import sample_bag
from ros2_pose.sim.skeleton import COCO_KEYPOINTS

FRAMES = 8
MIN_LABELLED = 6          # ground-truth people with fewer labelled joints are not scored
MIN_BOX_HEIGHT = 48.0     # px: smaller people are not scored
PCK_FRACTION = 0.2        # of the box height
MIN_JOINT_RECALL = 0.6    # of the scored people's labelled joints (the shipped model: 0.82)

pytestmark = pytest.mark.ros


def skeleton_arrays(message) -> np.ndarray:
    """(P, 17, 3) [x, y, visibility] in COCO order from a SkeletonArray (joints by name; the
    ground truth also names joints COCO lacks, e.g. the neck)."""
    order = {name: i for i, name in enumerate(COCO_KEYPOINTS)}
    people = np.zeros((len(message.skeletons), 17, 3))
    for p, skeleton in enumerate(message.skeletons):
        for k in skeleton.keypoints:
            if k.name in order:
                people[p, order[k.name]] = (k.x, k.y, k.visibility)
    return people


@pytest.fixture(scope="module")
def truths():
    from ros2_pose.ros.message_builders import stamp_to_ns

    out = {}
    for item in iter_messages([sample_bag("people")], ["/ground_truth/skeletons"]):
        out[stamp_to_ns(item.msg.header.stamp)] = skeleton_arrays(item.msg)
    return out


def joint_recall(estimates: dict[int, np.ndarray], truths: dict[int, np.ndarray]) -> tuple[int, int]:
    """(found, labelled): labelled joints of the scored ground-truth people that some published
    skeleton has (same joint) within PCK_FRACTION of the person's height, over the stamps of
    `estimates`. Per joint, not per person, so it counts joints a fragmented grouping still finds."""
    found = labelled_total = 0
    for stamp, people in estimates.items():
        for truth in truths[stamp]:
            labelled = truth[:, 2] > 0
            if labelled.sum() < MIN_LABELLED:
                continue
            height = np.ptp(truth[labelled, 1])
            if height < MIN_BOX_HEIGHT:
                continue
            labelled_total += int(labelled.sum())
            hit = np.zeros(17, bool)
            for person in people:
                both = labelled & (person[:, 2] > 0)
                hit[both] |= np.linalg.norm(person[both, :2] - truth[both, :2], axis=1) <= PCK_FRACTION * height
            found += int(hit.sum())
    return found, labelled_total


def test_the_node_with_its_default_model_finds_the_sample_people(ros_context, executor, spin_until, truths):
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image

    from ros2_pose.nodes.bpnet import BodyPoseNode
    from ros2_pose.ros.message_builders import stamp_to_ns
    from ros2_pose_msgs.msg import SkeletonArray

    node = BodyPoseNode(context=ros_context, cli_args=["--ros-args", "-p", "autostart:=false"])
    executor.add_node(node)
    assert node.trigger_configure().name == "SUCCESS" and node.trigger_activate().name == "SUCCESS"
    assert node.config["model"] == "bpnet" and node.config["backend"] == "onnxruntime"
    assert tuple(node.pipeline_config.input_shape) == (480, 640)
    probe = rclpy.create_node("bpnet_shipped_probe", context=ros_context)
    executor.add_node(probe)
    estimates = {}
    probe.create_subscription(SkeletonArray, "people/skeletons",
                              lambda m: estimates.setdefault(stamp_to_ns(m.header.stamp), skeleton_arrays(m)), 50)
    image_pub = probe.create_publisher(Image, "image", 50)
    info_pub = probe.create_publisher(CameraInfo, "camera_info", 50)
    assert spin_until(lambda: image_pub.get_subscription_count() and info_pub.get_subscription_count(), timeout=10)
    for image_msg, info in read_camera_messages(sample_bag("people"), FRAMES):
        stamp = stamp_to_ns(image_msg.header.stamp)
        info_pub.publish(info)
        image_pub.publish(image_msg)
        assert spin_until(lambda: stamp in estimates, timeout=30), f"no skeletons for stamp {stamp}"
    assert len(estimates) == FRAMES
    found, labelled = joint_recall(estimates, truths)
    assert labelled >= 10 * FRAMES, f"only {labelled} scorable joints in {FRAMES} frames"
    assert found >= MIN_JOINT_RECALL * labelled, f"{found}/{labelled} labelled joints found"
    # Not a cloud of false people either (the shipped model publishes ~3 skeletons per person in view).
    in_view = sum(len(truths[s]) for s in estimates)
    assert sum(len(p) for p in estimates.values()) <= 5 * in_view
