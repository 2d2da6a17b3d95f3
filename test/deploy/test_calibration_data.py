import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from ros2_pose.data.bag_types import typestore
from ros2_pose.deploy.calibration import (CalibrationBatches, CalibrationCache, CalibrationCacheMismatchError,
                                          CalibrationSourceError, ImagePreprocess)


def _solid(value_rgb, size=(24, 32)):
    image = np.zeros((*size, 3), np.uint8)
    image[:] = value_rgb
    return image


@pytest.fixture()
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        rgb = _solid((10 * i, 100, 200))
        cv2.imwrite(str(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_preprocess_resizes_scales_and_normalises():
    preprocess = ImagePreprocess(8, 16, mean=[0.5, 0.5, 0.5], std=[0.25, 0.5, 1.0])
    out = preprocess(_solid((255, 0, 51)))
    assert out.shape == (3, 8, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.5, (0.2 - 0.5) / 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="uint8 RGB"):
        preprocess(np.zeros((8, 8, 3), np.float32))


def test_image_folder_gives_full_contiguous_nchw_batches(image_folder):
    batches = CalibrationBatches(image_folder, ImagePreprocess(12, 16), batch_size=3, max_images=100)
    assert batches.kind == "images" and batches.available_images == 7
    produced = list(batches)
    assert len(produced) == len(batches) == 2  # 7 images -> two batches of 3, the partial one dropped
    for batch in produced:
        assert batch.shape == (3, 3, 12, 16) and batch.dtype == np.float32 and batch.flags.c_contiguous
    # Sorted by name and RGB order kept: red channel of image i is 10 * i / 255.
    reds = np.concatenate([b[:, 0, 0, 0] for b in produced])
    np.testing.assert_allclose(reds, np.arange(6) * 10 / 255.0, atol=3 / 255)  # jpg is lossy
    assert np.allclose(produced[0][:, 2], 200 / 255.0, atol=3 / 255)


def test_max_images_caps_what_is_read(image_folder):
    batches = CalibrationBatches(image_folder, ImagePreprocess(12, 16), batch_size=2, max_images=4)
    assert len(list(batches)) == 2 and batches.num_images == 4


def test_bad_sources_are_explained(tmp_path):
    with pytest.raises(CalibrationSourceError, match="does not exist"):
        CalibrationBatches(tmp_path / "nowhere", ImagePreprocess(4, 4))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationSourceError, match="no .png"):
        CalibrationBatches(tmp_path / "empty", ImagePreprocess(4, 4))


def _write_image_bag(path, images, encodings, topic="/camera/image_raw"):
    store = typestore()
    Image = store.types["sensor_msgs/msg/Image"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection(topic, "sensor_msgs/msg/Image", typestore=store)
        other = writer.add_connection("/camera/depth/image", "sensor_msgs/msg/Image", typestore=store)
        for i, (rgb, encoding) in enumerate(zip(images, encodings)):
            pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if encoding == "bgr8" else rgb
            msg = Image(header=Header(stamp=Time(sec=i, nanosec=0), frame_id="camera_optical_frame"),
                        height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
                        step=rgb.shape[1] * 3, data=np.ascontiguousarray(pixels).reshape(-1))
            writer.write(connection, i * 1_000_000, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))
            depth = Image(header=msg.header, height=2, width=2, encoding="32FC1", is_bigendian=0, step=8,
                          data=np.zeros(16, np.uint8))
            writer.write(other, i * 1_000_000, store.serialize_cdr(depth, "sensor_msgs/msg/Image"))


def test_bag_source_decodes_the_image_topic(tmp_path):
    bag = tmp_path / "calib_bag"
    images = [_solid((20 * i, 50, 250 - 20 * i)) for i in range(5)]
    _write_image_bag(bag, images, ["rgb8", "bgr8", "rgb8", "bgr8", "rgb8"])
    batches = CalibrationBatches(bag, ImagePreprocess(24, 32), batch_size=2, topic="/camera/image_raw")
    assert batches.kind == "bag" and batches.available_images == 5
    produced = list(batches)
    assert [b.shape for b in produced] == [(2, 3, 24, 32)] * 2
    stacked = np.concatenate(produced)
    # bgr8 messages come out as RGB like the rgb8 ones.
    np.testing.assert_allclose(stacked[:, 0, 0, 0], [20 * i / 255 for i in range(4)], atol=1e-6)
    np.testing.assert_allclose(stacked[:, 2, 0, 0], [(250 - 20 * i) / 255 for i in range(4)], atol=1e-6)
    with pytest.raises(CalibrationSourceError, match="image topics"):
        CalibrationBatches(bag, ImagePreprocess(4, 4), topic="/nope")
    with pytest.raises(CalibrationSourceError, match="give the image topic"):
        CalibrationBatches(bag, ImagePreprocess(4, 4))
    depth = CalibrationBatches(bag, ImagePreprocess(4, 4), batch_size=1, topic="/camera/depth/image")
    with pytest.raises(CalibrationSourceError, match="32FC1"):
        next(iter(depth))


def test_calibration_cache_round_trip_and_refusal(tmp_path):
    table = b"TRT-8601-EntropyCalibration2\nimage: 3c010a14\n" + bytes(range(256))
    cache = CalibrationCache(tmp_path / "m.calib", model_sha256="a" * 64)
    assert cache.read() is None
    cache.write(table, {"batches": 4})
    assert CalibrationCache(tmp_path / "m.calib", model_sha256="a" * 64).read() == table
    assert (tmp_path / "m.calib").read_bytes() == table  # the file is TensorRT's table, unchanged
    with pytest.raises(CalibrationCacheMismatchError, match="different model|was made for model"):
        CalibrationCache(tmp_path / "m.calib", model_sha256="b" * 64).read()
    (tmp_path / "m.calib.json").unlink()
    with pytest.raises(CalibrationCacheMismatchError, match="no sidecar"):
        cache.read()
