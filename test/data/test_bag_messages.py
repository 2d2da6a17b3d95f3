import numpy as np
import pytest

from ros2_pose.data import bag_messages as bm
from ros2_pose.data.bags import BagWriter, iter_messages
from ros2_pose.geometry.transforms import RigidTransform, matrix_from_quat_xyzw
from ros2_pose.images import image_msg_to_array

K = np.array([[500.0, 0.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])
POSE = RigidTransform(matrix_from_quat_xyzw(np.array([0.1, -0.2, 0.3, 0.9]) / np.linalg.norm([0.1, -0.2, 0.3, 0.9])),
                      np.array([0.5, -0.25, 2.0]))


def test_messages_survive_a_bag_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    depth = np.linspace(0.5, 3.0, 48, dtype=np.float32).reshape(6, 8)
    stamp = 12 * bm.NS_PER_S + 345
    people = [bm.PersonSpec(person_id=3, box=(1, 2, 30, 40), xy=[[5, 6], [7, 8], [0, 0]], visibility=[2, 1, 0])]
    drones = [bm.ObjectKeypointsSpec(class_id="drone", box=(0, 0, 10, 10), names=["hub_0", "hub_1"],
                                     xy=[[1, 2], [3, 4]], visibility=[2, 2], instance_id=1, score=0.9)]
    messages = {
        "/camera/image_raw": bm.image_msg(rgb, "rgb8", stamp, "camera_optical_frame"),
        "/camera/depth/image": bm.image_msg(depth, "32FC1", stamp, "camera_optical_frame"),
        "/camera/camera_info": bm.camera_info_msg(K, np.zeros(5), 8, 6, stamp, "camera_optical_frame"),
        "/ground_truth/pose": bm.pose_stamped_msg(POSE, stamp, "camera_optical_frame"),
        "/tf": bm.tf_message([bm.transform_stamped_msg(POSE, "world", "dolly", stamp)]),
        "/ground_truth/detections": bm.detection_array_msg([[1, 2, 3, 4], [5, 6, 7, 8]], ["dolly", "person"],
                                                           stamp, "camera_optical_frame", scores=[0.5, 1.0],
                                                           instance_ids=[0, 7]),
        "/ground_truth/keypoints": bm.object_keypoints_array_msg(drones, stamp, "camera_optical_frame"),
        "/ground_truth/skeletons": bm.skeleton_array_msg(people, ["a", "b", "c"], [[0, 1], [1, 2]], stamp,
                                                         "camera_optical_frame"),
    }
    with BagWriter(tmp_path / "bag") as bag:
        for topic, msg in messages.items():
            bag.write(topic, msg, stamp)
    back = {m.topic: m.msg for m in iter_messages(tmp_path / "bag")}
    assert set(back) == set(messages)

    assert np.array_equal(image_msg_to_array(back["/camera/image_raw"]), rgb)
    assert np.array_equal(image_msg_to_array(back["/camera/depth/image"]), depth)
    info = back["/camera/camera_info"]
    assert np.array_equal(info.k.reshape(3, 3), K) and info.p.reshape(3, 4)[:, 3].tolist() == [0, 0, 0]
    assert (info.width, info.height, info.distortion_model) == (8, 6, "plumb_bob")
    assert bm.stamp_ns(info) == stamp and info.header.frame_id == "camera_optical_frame"

    assert bm.rigid_transform_from_msg(back["/ground_truth/pose"]).allclose(POSE, 1e-12, 1e-12)
    tf = back["/tf"].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == ("world", "dolly")
    assert bm.rigid_transform_from_msg(tf).allclose(POSE, 1e-12, 1e-12)

    dets = back["/ground_truth/detections"].detections
    assert [(d.class_id, d.instance_id, d.box.x_max) for d in dets] == [("dolly", 0, 3.0), ("person", 7, 7.0)]
    assert dets[0].score == pytest.approx(0.5)
    obj = back["/ground_truth/keypoints"].objects[0]
    assert [(k.name, k.x, k.y, k.visibility) for k in obj.keypoints] == [("hub_0", 1, 2, 2), ("hub_1", 3, 4, 2)]
    skel = back["/ground_truth/skeletons"]
    assert skel.joint_names == ["a", "b", "c"] and list(skel.limb_a) == [0, 1] and list(skel.limb_b) == [1, 2]
    assert [k.visibility for k in skel.skeletons[0].keypoints] == [2, 1, 0]


def test_stamps_split_into_sec_and_nanosec():
    t = bm.time_msg(1_700_000_000_123_456_789)
    assert (t.sec, t.nanosec) == (1_700_000_000, 123_456_789)
    assert bm.stamp_ns(t) == 1_700_000_000_123_456_789
    with pytest.raises(ValueError, match=">= 0"):
        bm.time_msg(-1)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        bm.box_msg([0, 0, np.nan, 1])
    with pytest.raises(ValueError, match="x_min <= x_max"):
        bm.box_msg([5, 0, 1, 1])
    with pytest.raises(ValueError, match="2 boxes need 2 class ids"):
        bm.detection_array_msg([[0, 0, 1, 1], [0, 0, 2, 2]], ["a"], 0, "cam")
    with pytest.raises(ValueError, match="5 distortion"):
        bm.camera_info_msg(K, np.zeros(4), 8, 6, 0, "cam")
    with pytest.raises(ValueError, match="fx, fy > 0"):
        bm.camera_info_msg(np.diag([0.0, 1.0, 1.0]), np.zeros(5), 8, 6, 0, "cam")
    with pytest.raises(ValueError, match="visibility"):
        bm.keypoint_msgs(["a"], [[1, 2]], [3])
    with pytest.raises(ValueError, match="finite"):
        bm.keypoint_msgs(["a"], [[np.nan, 2]], [0])
    with pytest.raises(ValueError, match="limb indices"):
        bm.skeleton_array_msg([], ["a", "b"], [[0, 2]], 0, "cam")
    with pytest.raises(ValueError, match="different frame"):
        bm.transform_stamped_msg(POSE, "world", "world", 0)
    with pytest.raises(TypeError, match="RigidTransform"):
        bm.pose_stamped_msg(np.eye(4), 0, "cam")


def test_restamp_reaches_nested_headers():
    tf = bm.tf_message([bm.transform_stamped_msg(POSE, "world", f"obj_{i}", 5) for i in range(3)])
    assert bm.restamp(tf, 7 * bm.NS_PER_S + 1) == 3
    assert [bm.stamp_ns(t) for t in tf.transforms] == [7 * bm.NS_PER_S + 1] * 3
    dets = bm.detection_array_msg([[0, 0, 1, 1]], ["a"], 5, "cam")
    assert bm.restamp(dets, 9) == 2 and bm.stamp_ns(dets.detections[0]) == 9 and bm.stamp_ns(dets) == 9
    assert dets.header.frame_id == "cam"  # only the stamp changes
