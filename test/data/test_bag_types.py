import json
import os
from pathlib import Path

import pytest

from ros2_pose.data import bag_types
from ros2_pose.data.bag_types import MessageTypeError, ensure_type, msg_dir, typestore

CUSTOM_TYPES = ["BoundingBox2D", "Detection2D", "Detection2DArray", "Keypoint2D", "ObjectKeypoints",
                "ObjectKeypointsArray", "Skeleton", "SkeletonArray"]


def test_typestore_knows_our_types_standard_types_and_tf():
    store = typestore()
    for name in CUSTOM_TYPES:
        assert f"ros2_pose_msgs/msg/{name}" in store.fielddefs
    for name in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "geometry_msgs/msg/PoseStamped",
                 "tf2_msgs/msg/TFMessage"):
        assert name in store.fielddefs
    assert typestore() is store  # cached


def test_custom_messages_round_trip_through_cdr():
    store = typestore()
    Header, Time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    Keypoint = store.types["ros2_pose_msgs/msg/Keypoint2D"]
    Skeleton, Box = store.types["ros2_pose_msgs/msg/Skeleton"], store.types["ros2_pose_msgs/msg/BoundingBox2D"]
    Array = store.types["ros2_pose_msgs/msg/SkeletonArray"]
    import numpy as np

    msg = Array(header=Header(stamp=Time(sec=3, nanosec=7), frame_id="cam"), joint_names=["a", "b"],
                limb_a=np.array([0], np.uint16), limb_b=np.array([1], np.uint16),
                skeletons=[Skeleton(person_id=4, score=0.5, box=Box(x_min=1.0, y_min=2.0, x_max=3.0, y_max=4.0),
                                    keypoints=[Keypoint(name="a", x=1.5, y=2.5, confidence=1.0, visibility=2)])])
    back = store.deserialize_cdr(store.serialize_cdr(msg, Array.__msgtype__), Array.__msgtype__)
    assert back.joint_names == ["a", "b"] and back.skeletons[0].keypoints[0].x == 1.5
    assert back.skeletons[0].box.y_max == 4.0 and list(back.limb_b) == [1]
    assert Keypoint.VISIBLE == 2  # constants from the .msg come through


def _installed_json(package: str, name: str) -> Path | None:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.json"
        if prefix and path.is_file():
            return path
    return None


@pytest.mark.parametrize("name", CUSTOM_TYPES)
def test_type_hash_equals_the_one_colcon_generated(name):
    """Bags we write must carry the RIHS01 hash a real ROS 2 graph uses for the same type."""
    path = _installed_json("ros2_pose_msgs", name)
    if path is None:
        pytest.skip("ros2_pose_msgs is not built (run scripts/setup.sh)")
    hashes = json.loads(path.read_text())["type_hashes"]
    expected = next(h["hash_string"] for h in hashes if h["type_name"] == f"ros2_pose_msgs/msg/{name}")
    assert typestore().hash_rihs01(f"ros2_pose_msgs/msg/{name}") == expected


def test_msg_dir_prefers_the_source_tree():
    folder = msg_dir("ros2_pose_msgs")
    assert folder == Path(bag_types.__file__).resolve().parents[2] / "interfaces" / "ros2_pose_msgs" / "msg"


def test_msg_dir_falls_back_to_installed_share(monkeypatch, tmp_path):
    share = tmp_path / "share" / "some_pkg" / "msg"
    share.mkdir(parents=True)
    (share / "Thing.msg").write_text("int32 value\nstring label\n")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert msg_dir("some_pkg") == share
    store = ensure_type("some_pkg/msg/Thing")
    assert store is typestore() and "some_pkg/msg/Thing" in store.fielddefs


def test_unknown_type_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    with pytest.raises(MessageTypeError, match="no_such_pkg"):
        ensure_type("no_such_pkg/msg/Nothing")
