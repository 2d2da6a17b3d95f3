import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from ruamel.yaml import YAML

from ros2_pose.data.bag_types import typestore
from ros2_pose.data.bags import (BagError, BagExistsError, BagNotFoundError, BagWriter, CorruptBagError,
                                 EmptyBagError, MissingTopicError, NotABagError, bag_info, iter_messages,
                                 iter_raw)

STORE = typestore()
String = STORE.types["std_msgs/msg/String"]
Header = STORE.types["std_msgs/msg/Header"]
Time = STORE.types["builtin_interfaces/msg/Time"]
Box = STORE.types["ros2_pose_msgs/msg/BoundingBox2D"]
Detection = STORE.types["ros2_pose_msgs/msg/Detection2D"]
DetectionArray = STORE.types["ros2_pose_msgs/msg/Detection2DArray"]
TFMessage = STORE.types["tf2_msgs/msg/TFMessage"]


def _detections(i: int):
    header = Header(stamp=Time(sec=i, nanosec=5), frame_id="camera_optical_frame")
    return DetectionArray(header=header, detections=[
        Detection(header=header, class_id="dolly", instance_id=k, score=0.25 * k,
                  box=Box(x_min=float(i), y_min=1.0, x_max=float(i + k + 1), y_max=9.0)) for k in range(i % 3)])


def _write_sample(path: Path, storage="mcap", n=6, offset_ns=0) -> Path:
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage")
        bag.write("/tf_static", TFMessage(transforms=[]), offset_ns)
        for i in range(n):
            bag.write("/ground_truth/detections", _detections(i), offset_ns + i * 100_000_000)
            bag.write("/chatter", String(data=f"hello {i}"), offset_ns + i * 100_000_000 + 1)
    return path


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_custom_messages(tmp_path, storage):
    path = _write_sample(tmp_path / "bag", storage)
    info = bag_info(path)
    assert info.storage == storage and info.message_count == 13
    assert info.topics == {"/tf_static": ("tf2_msgs/msg/TFMessage", 1),
                           "/ground_truth/detections": ("ros2_pose_msgs/msg/Detection2DArray", 6),
                           "/chatter": ("std_msgs/msg/String", 6)}
    assert info.start_ns == 0 and info.end_ns == 500_000_001 and info.duration_ns == 500_000_001
    assert info.size_bytes > 0

    got = [m for m in iter_messages(path, topics=["/ground_truth/detections"])]
    assert [m.stamp_ns for m in got] == [i * 100_000_000 for i in range(6)]
    for i, m in enumerate(got):
        assert m.msgtype == "ros2_pose_msgs/msg/Detection2DArray"
        assert m.msg.header.stamp.sec == i and m.msg.header.frame_id == "camera_optical_frame"
        assert [d.instance_id for d in m.msg.detections] == list(range(i % 3))
        assert [d.box.x_max for d in m.msg.detections] == [float(i + k + 1) for k in range(i % 3)]
    stamps = [m.stamp_ns for m in iter_messages(path)]
    assert stamps == sorted(stamps) and len(stamps) == 13


def test_write_raw_and_iter_raw_keep_cdr_bytes(tmp_path):
    cdr = STORE.serialize_cdr(String(data="raw"), "std_msgs/msg/String")
    with BagWriter(tmp_path / "raw") as bag:
        bag.write_raw("/raw", "std_msgs/msg/String", cdr, 42)
        bag.write_raw("/raw", "std_msgs/msg/String", memoryview(cdr), 43)
        assert bag.counts == {"/raw": 2}
    raw = list(iter_raw(tmp_path / "raw"))
    assert [(r.topic, r.stamp_ns, r.data) for r in raw] == [("/raw", 42, bytes(cdr)), ("/raw", 43, bytes(cdr))]
    assert [m.msg.data for m in iter_messages(tmp_path / "raw")] == ["raw", "raw"]


def test_tf_static_is_recorded_transient_local(tmp_path):
    path = _write_sample(tmp_path / "bag")
    meta = YAML(typ="safe").load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in meta["topics_with_message_count"]}
    assert qos["/tf_static"][0]["durability"] == "transient_local"
    assert qos["/chatter"][0]["durability"] == "volatile"
    assert bag_info(path).latched_topics == {"/tf_static"}


def test_topic_has_one_type(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        bag.write("/x", String(data="a"), 1)
        with pytest.raises(BagError, match="has type std_msgs/msg/String"):
            bag.add_topic("/x", "tf2_msgs/msg/TFMessage")
        with pytest.raises(TypeError, match="rosbags message object"):
            bag.write("/x", "not a message", 2)
        with pytest.raises(BagError, match="unknown"):
            bag.add_topic("/y", "nope_msgs/msg/Nope")


def test_refuses_to_overwrite(tmp_path):
    path = _write_sample(tmp_path / "bag", n=1)
    with pytest.raises(BagExistsError, match="overwrite=True"):
        BagWriter(path).open()
    with BagWriter(path, storage="sqlite3", overwrite=True) as bag:
        bag.write("/chatter", String(data="new"), 7)
    assert bag_info(path).storage == "sqlite3" and [m.msg.data for m in iter_messages(path)] == ["new"]
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BagExistsError, match="not a bag"):
        BagWriter(precious, overwrite=True).open()
    assert (precious / "notes.txt").is_file()


def test_multiple_bags_merge_by_time(tmp_path):
    a = _write_sample(tmp_path / "a", "mcap", n=3, offset_ns=0)
    b = _write_sample(tmp_path / "b", "sqlite3", n=3, offset_ns=50_000_000)
    got = list(iter_messages([a, b], topics=["/chatter"]))
    assert [m.msg.data for m in got] == ["hello 0", "hello 0", "hello 1", "hello 1", "hello 2", "hello 2"]
    assert [m.stamp_ns for m in got] == sorted(m.stamp_ns for m in got)


def test_bag_folder_without_metadata_is_read_through_its_storage_file(tmp_path):
    """A recorder killed before closing leaves no metadata.yaml; the mcap itself is complete."""
    path = _write_sample(tmp_path / "bag", n=4)
    (path / "metadata.yaml").unlink()
    assert bag_info(path).topics["/chatter"] == ("std_msgs/msg/String", 4)
    assert sum(1 for _ in iter_messages(path, topics=["/chatter"])) == 4


def test_foreign_definition_decodes_with_the_bags_own_definition(tmp_path):
    """A bag recorded with an older definition of one of our types must not decode as garbage."""
    old_def = "float32 x_min\nfloat32 y_min\nfloat32 x_max\nfloat32 y_max\n"
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    old = get_typestore(Stores.EMPTY)
    old.register(get_types_from_msg(old_def, "ros2_pose_msgs/msg/BoundingBox2D"))
    OldBox = old.types["ros2_pose_msgs/msg/BoundingBox2D"]
    with Writer(tmp_path / "old", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/box", "ros2_pose_msgs/msg/BoundingBox2D", typestore=old)
        writer.write(conn, 1, old.serialize_cdr(OldBox(x_min=np.float32(1.5), y_min=np.float32(2.0),
                                                       x_max=np.float32(3.0), y_max=np.float32(4.5)),
                                                "ros2_pose_msgs/msg/BoundingBox2D"))
    (msg,) = [m.msg for m in iter_messages(tmp_path / "old")]
    assert (msg.x_min, msg.y_max) == (1.5, 4.5)


# -- bad input ---------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(BagNotFoundError, match="does not exist"):
        bag_info(tmp_path / "nothing")
    with pytest.raises(BagNotFoundError):
        list(iter_messages([tmp_path / "nothing"]))


def test_not_a_bag(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotABagError, match="notes.txt"):
        bag_info(tmp_path / "notes.txt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(NotABagError, match="no metadata.yaml"):
        list(iter_messages(tmp_path / "empty_dir"))
    (tmp_path / "fake.mcap").write_bytes(b"this is not an mcap file at all" * 10)
    with pytest.raises(CorruptBagError, match="fake.mcap"):
        bag_info(tmp_path / "fake.mcap")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_empty_bag(tmp_path, storage):
    with BagWriter(tmp_path / "empty", storage=storage) as bag:
        bag.add_topic("/chatter", "std_msgs/msg/String")
    with pytest.raises(EmptyBagError, match="no messages"):
        bag_info(tmp_path / "empty")
    with pytest.raises(EmptyBagError):
        next(iter_messages(tmp_path / "empty"))
    assert bag_info(tmp_path / "empty", allow_empty=True).topics == {"/chatter": ("std_msgs/msg/String", 0)}


def _storage_file(path: Path) -> Path:
    return next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag(tmp_path, storage):
    path = _write_sample(tmp_path / "bag", storage, n=40)
    file = _storage_file(path)
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(CorruptBagError, match=str(path)):
        list(iter_messages(path))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_garbage_in_the_middle(tmp_path, storage):
    path = _write_sample(tmp_path / "bag", storage, n=60)
    file = _storage_file(path)
    data = bytearray(file.read_bytes())
    middle = len(data) // 3
    data[middle: middle + 2048] = bytes(range(256)) * 8
    file.write_bytes(bytes(data))
    with pytest.raises(CorruptBagError, match=str(path)):
        for _ in iter_messages(path):
            pass


def test_missing_topic_lists_what_exists(tmp_path):
    path = _write_sample(tmp_path / "bag", n=1)
    with pytest.raises(MissingTopicError) as err:
        list(iter_messages(path, topics=["/chatter", "/camera/image_raw"]))
    assert err.value.missing == ["/camera/image_raw"]
    assert err.value.available == ["/chatter", "/ground_truth/detections", "/tf_static"]
    assert "/ground_truth/detections" in str(err.value)


def test_errors_are_runtime_errors():
    assert issubclass(BagError, RuntimeError)
    for cls in (BagNotFoundError, NotABagError, EmptyBagError, CorruptBagError, MissingTopicError, BagExistsError):
        assert issubclass(cls, BagError)


def test_reads_an_mcap_written_like_rosbag2_storage_mcap(tmp_path):
    """A bag not written by rosbags: the mcap library with rosbag2's conventions (profile ros2,
    ros2msg schemas, cdr messages, no metadata.yaml), as `ros2 bag record` leaves it when killed."""
    from mcap.writer import Writer as McapWriter

    folder = tmp_path / "ros2_bag_record"
    folder.mkdir()
    msgdef = STORE.generate_msgdef("ros2_pose_msgs/msg/Detection2DArray", ros_version=2)[0]
    with (folder / "ros2_bag_record_0.mcap").open("wb") as stream:
        writer = McapWriter(stream)
        writer.start(profile="ros2", library="rosbag2")
        schema = writer.register_schema("ros2_pose_msgs/msg/Detection2DArray", "ros2msg", msgdef.encode())
        channel = writer.register_channel("/ground_truth/detections", "cdr", schema,
                                          metadata={"offered_qos_profiles": ""})
        for i in range(4):
            data = STORE.serialize_cdr(_detections(i), "ros2_pose_msgs/msg/Detection2DArray")
            writer.add_message(channel, log_time=10 + i, publish_time=10 + i, data=bytes(data), sequence=i)
        writer.finish()
    got = list(iter_messages(folder))
    assert [m.stamp_ns for m in got] == [10, 11, 12, 13]
    assert [len(m.msg.detections) for m in got] == [0, 1, 2, 0]
    assert bag_info(folder / "ros2_bag_record_0.mcap").topics == {
        "/ground_truth/detections": ("ros2_pose_msgs/msg/Detection2DArray", 4)}
