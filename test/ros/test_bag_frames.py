"""ros2_pose.ros.bag_frames: camera frames of a bag as rclpy messages (what a node receives) and as
arrays with their camera, paired by stamp; a bag without camera frames is a clear error."""
import numpy as np
import pytest

from ros2_pose.data import bag_messages as bm
from ros2_pose.data.bag_types import typestore
from ros2_pose.data.bags import BagWriter, MissingTopicError
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.ros.bag_frames import read_camera_frames, read_camera_messages
from ros2_pose.ros.message_builders import stamp_to_ns
from ros2_pose.samples import sample_bag


def test_images_pair_with_the_camera_info_of_their_stamp():
    pairs = read_camera_messages(sample_bag("dolly"), 3)
    assert len(pairs) == 3
    stamps = [stamp_to_ns(image.header.stamp) for image, _ in pairs]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    for image, info in pairs:
        assert stamp_to_ns(info.header.stamp) == stamp_to_ns(image.header.stamp)
        assert (info.width, info.height) == (image.width, image.height)
    frames = read_camera_frames(sample_bag("dolly"), 3)
    for (image_msg, info), (rgb, camera) in zip(pairs, frames):
        assert rgb.shape == (image_msg.height, image_msg.width, 3) and rgb.dtype == np.uint8
        assert isinstance(camera, CameraModel) and not camera.has_distortion
        np.testing.assert_array_equal(camera.K, np.asarray(info.k).reshape(3, 3))


def test_a_bag_without_camera_frames_is_refused(tmp_path):
    image = bm.image_msg(np.zeros((4, 6, 3), np.uint8), "rgb8", 5_000, "cam")
    with BagWriter(tmp_path / "no_info") as writer:
        writer.write("/chatter", typestore().types["std_msgs/msg/String"](data="hello"), 1_000)
        writer.write("/camera/image_raw", image, 5_000)
    with pytest.raises(MissingTopicError, match="/camera/camera_info"):
        read_camera_messages(tmp_path / "no_info", 2)
    # both topics, but no camera_info has an image's stamp: nothing can be paired
    info = bm.camera_info_msg(np.array([[5.0, 0, 3], [0, 5.0, 2], [0, 0, 1]]), np.zeros(5), 6, 4, 9_000, "cam")
    with BagWriter(tmp_path / "unpaired") as writer:
        writer.write("/camera/image_raw", image, 5_000)
        writer.write("/camera/camera_info", info, 9_000)
    with pytest.raises(ValueError, match="no /camera/image_raw with a /camera/camera_info of the same stamp"):
        read_camera_messages(tmp_path / "unpaired", 2)
