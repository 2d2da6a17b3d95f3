"""Task builders on tiny bags written here with exactly known boxes, poses and segmentation."""
import numpy as np
import pytest

from ros2_pose.data.bags import CorruptBagError, MissingTopicError
from ros2_pose.data.builders import dolly
from ros2_pose.data.builders.fixture_bag import write_fixture_bag
from ros2_pose.data.builders.frames import BuildOptions, DatasetBuildError
from ros2_pose.data.dataset import ArrayDataset
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.crop import RoiCrop


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "fixture"
    return path, write_fixture_bag(path, n_frames=6)


def test_dolly_fields_are_exact(bag, tmp_path):
    path, truth = bag
    result = dolly.build([path], tmp_path / "ds", BuildOptions(gt_source="topic"))
    ds = ArrayDataset(tmp_path / "ds", "all")
    assert result.count == len(ds) == 6
    for i, frame in enumerate(truth):
        s = ds[i]
        assert s["stamp_ns"] == frame.stamp_ns and s["det_valid"] and s["pose_valid"]
        x0, y0, x1, y1 = frame.box
        # letterbox of 160x120 into 160x160: scale 1, 20 rows of black on top
        assert np.allclose(s["det_box"], [(x0 + 0.5) / 160, (y0 + 20.5) / 160, (x1 + 0.5) / 160, (y1 + 20.5) / 160])
        assert (s["det_image"][:20] == 0).all() and np.array_equal(s["det_image"][20:140], frame.image)
        crop = RoiCrop.from_box(frame.box, 128)
        assert np.allclose(s["crop_matrix"], crop.matrix) and np.allclose(s["box_norm"], crop.normalized_box(160, 120))
        # the box's longer side (width) fills the crop; the dolly colour is in the middle
        assert tuple(s["crop"][40, 64]) == (200, 60, 30)
        # mask: frame part (top 3/4 of the silhouette), no wheels, padding rows empty
        mask_rows = np.flatnonzero(s["mask"].any(1))
        height_px = (y1 - y0) * 64 / (x1 - x0)
        assert s["mask"].any(0).all()  # the box is wider than tall: the frame spans every column
        assert abs(len(mask_rows) - 0.75 * height_px) <= 2 and s["mask"].max() == 1
        assert np.allclose(s["translation"], frame.T_camera_object.translation, atol=1e-6)
        assert np.isclose(s["distance"], np.linalg.norm(frame.T_camera_object.translation))
        # The fixture's painted silhouette is not the dolly model: the fraction is its box's area
        # over the whole dolly's projected box at this pose.
        camera = CameraModel(s["K"], None, 160, 120)
        full = dolly.full_projected_box(camera, frame.T_camera_object.as_matrix())
        expected = (x1 - x0) * (y1 - y0) / ((full[2] - full[0]) * (full[3] - full[1]))
        assert np.isclose(s["visible_fraction"], min(expected, 1.0), rtol=1e-4)
        assert np.allclose(s["K"][0, 0], 176.0)


def test_tf_ground_truth_equals_topic(bag, tmp_path):
    path, _ = bag
    dolly.build([path], tmp_path / "tf", BuildOptions(gt_source="tf"))
    dolly.build([path], tmp_path / "topic", BuildOptions(gt_source="topic"))
    tf, topic = ArrayDataset(tmp_path / "tf", "all"), ArrayDataset(tmp_path / "topic", "all")
    by_stamp = {int(topic[i]["stamp_ns"]): topic[i] for i in range(len(topic))}
    assert len(tf) >= 5  # the first image has no TF sample before it to interpolate from
    for i in range(len(tf)):
        a, b = tf[i], by_stamp[int(tf[i]["stamp_ns"])]
        assert np.allclose(a["rotation"], b["rotation"], atol=1e-5)
        assert np.allclose(a["translation"], b["translation"], atol=1e-5)


def test_crops_per_frame_with_jitter_and_looped_bag(tmp_path):
    path = tmp_path / "loop"
    write_fixture_bag(path, n_frames=6, loop_at=3)
    result = dolly.build([path], tmp_path / "ds", BuildOptions(gt_source="topic"),
                         dolly.DollyOptions(crops_per_frame=2, box_jitter=0.1))
    ds = ArrayDataset(tmp_path / "ds", "all")
    assert result.count == 12
    assert sorted(set(int(ds[i]["sequence"]) for i in range(12))) == [0, 1]
    assert not np.allclose(ds[0]["box_norm"], ds[1]["box_norm"])  # two jitters of one frame


def test_bad_inputs_fail_with_counts(tmp_path):
    no_info = tmp_path / "no_info"
    write_fixture_bag(no_info, n_frames=3, camera_info=False)
    with pytest.raises(MissingTopicError, match="camera_info"):
        dolly.build([no_info], tmp_path / "a", BuildOptions(gt_source="topic"))
    good = tmp_path / "good"
    write_fixture_bag(good, n_frames=3)
    with pytest.raises(DatasetBuildError, match=r"no frame could be matched.*0/3"):
        dolly.build([good], tmp_path / "b", BuildOptions(gt_source="tf", tolerance_ns=0, tf_interpolation_gap_ns=0))
    assert not (tmp_path / "b" / "manifest.json").exists()
    mcap = next(good.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(CorruptBagError):
        dolly.build([good], tmp_path / "c", BuildOptions(gt_source="topic"))


def test_drone_keypoints_follow_the_resize(bag, tmp_path):
    from ros2_pose.data.builders import drone
    from ros2_pose.data.builders.fixture_bag import model_keypoints

    path, truth = bag
    drone.build([path], tmp_path / "ds", BuildOptions(gt_source="topic", object_frame="dolly"),
                drone.DroneOptions(image_size=(80, 60), model_keypoints={"dolly": model_keypoints()}))
    ds = ArrayDataset(tmp_path / "ds", "all")
    s = ds[0]
    assert s["image"].shape == (60, 80, 3) and s["keypoints"].shape == (4, 2)
    # the projected model keypoints with the resized K land on the stored 2D keypoints
    p = s["rotation"].astype(np.float64) @ s["keypoints_3d"].T.astype(np.float64) + s["translation"][:, None]
    uv = (s["K"].astype(np.float64) @ (p / p[2])).T[:, :2]
    assert np.allclose(uv, s["keypoints"], atol=1e-3) and (s["visibility"] == 2).all()
    x0, y0, x1, y1 = truth[0].box
    assert np.allclose(s["box"], [(x0 + 0.5) / 2 - 0.5, (y0 + 0.5) / 2 - 0.5, (x1 + 0.5) / 2 - 0.5, (y1 + 0.5) / 2 - 0.5])


def test_motion_pairs_stay_inside_sequences_and_relative_poses(tmp_path):
    from ros2_pose.data.builders import motion

    path = tmp_path / "loop"
    write_fixture_bag(path, n_frames=8, loop_at=4, fps=10.0)
    result = motion.build([path], tmp_path / "ds", BuildOptions(),
                          motion.MotionOptions(frames_per_sample=2, distances=(1, 2)))
    ds = ArrayDataset(tmp_path / "ds", "all")
    # two sequences of 4 images; TF covers 3 of each (the first image of each has no TF sample before it)
    stamps = np.load(tmp_path / "ds" / "frame_stamp_ns.npy")
    assert len(stamps) == 6
    assert result.count == len(ds) == 2 * (2 + 1)  # distance-1 and distance-2 windows per sequence
    for i in range(len(ds)):
        s = ds[i]
        a, b = s["frame_ids"]
        assert s["frames"].shape == (2, 96, 128, 3) and s["depths"].shape == (2, 96, 128) and s["K"].shape == (2, 3, 3)
        assert stamps[b] > stamps[a]  # never across the loop, where stamps go back
        dt = (stamps[b] - stamps[a]) / 1e9
        rel = s["relative_poses"][0]
        assert np.allclose(rel[:3, :3], np.eye(3), atol=1e-5) and np.allclose(rel[:3, 3], [0, 0, 0.5 * dt], atol=1e-5)
        assert np.isclose(s["depths"][0].max(), 5.0)


def test_people_builds_a_coco_folder_and_checks_topics(tmp_path, bag):
    import json

    from ros2_pose.data import bag_messages as bm
    from ros2_pose.data.bags import BagWriter
    from ros2_pose.data.builders import people

    from ros2_pose.sim.skeleton import COCO_KEYPOINTS

    names = list(COCO_KEYPOINTS)
    path = tmp_path / "people"
    with BagWriter(path) as writer:
        for k in range(2):
            stamp = 1_000_000_000 + k * 100_000_000
            image = np.full((120, 160, 3), 90, np.uint8)
            writer.write("/camera/image_raw", bm.image_msg(image, "rgb8", stamp, "camera_optical_frame"), stamp)
            xy = np.stack([np.linspace(45, 85, len(names)), np.linspace(35, 95, len(names))], 1)
            person = bm.PersonSpec(1, (40, 30, 90, 100), xy, np.full(len(names), 2))
            writer.write("/ground_truth/skeletons", bm.skeleton_array_msg([person], names, [[0, 1]], stamp,
                                                                           "camera_optical_frame"), stamp)
    annotations = people.build([path], tmp_path / "coco")
    data = json.loads(annotations.read_text())
    assert len(data["images"]) == 2 and len(data["annotations"]) == 2
    with pytest.raises(MissingTopicError, match="skeletons"):
        people.build([bag[0]], tmp_path / "coco2")


@pytest.fixture(scope="module")
def sim_dolly_bags(tmp_path_factory):
    """The same six simulated frames twice: with /camera/segmentation (sim) and without (robot-like)."""
    from ros2_pose.sim.writer import render_bag

    root = tmp_path_factory.mktemp("sim_dolly")
    dense = render_bag("dolly", 6, root / "dense", seed=5, progress=False, width=160, height=120)
    sparse = render_bag("dolly", 6, root / "sparse", seed=5, progress=False, width=160, height=120, dense=False)
    return dense, sparse


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def test_dolly_masks_projected_from_the_pose_match_the_rendered_segmentation(sim_dolly_bags, tmp_path):
    """A bag without segmentation (a robot's) gets masks rendered from the ground-truth pose. On
    frames nothing else hides the dolly in, they equal the simulator's own masks."""
    dense, sparse = sim_dolly_bags
    with pytest.raises(MissingTopicError, match="/camera/segmentation"):
        dolly.build([sparse], tmp_path / "refused", dolly=dolly.DollyOptions(masks="segmentation"))
    real = dolly.build([dense], tmp_path / "real")
    projected = dolly.build([sparse], tmp_path / "projected")
    assert real.manifest["mask_sources"] == {"segmentation": 6, "projected": 0}
    assert projected.manifest["mask_sources"] == {"segmentation": 0, "projected": 6}
    # forced projection on the dense bag ignores its segmentation
    forced = dolly.build([dense], tmp_path / "forced", dolly=dolly.DollyOptions(masks="projected"))
    assert forced.manifest["mask_sources"] == {"segmentation": 0, "projected": 6}
    a, b = ArrayDataset(tmp_path / "real", "all"), ArrayDataset(tmp_path / "projected", "all")
    unoccluded = 0
    for i in range(len(a)):
        ra, rb = a[i], b[i]
        assert ra["pose_valid"] and rb["pose_valid"] and ra["det_valid"] and rb["det_valid"]
        assert np.array_equal(ra["crop"], rb["crop"])  # same box (the bag's detections), same pixels
        real_mask, projected_mask = ra["mask"] > 0, rb["mask"] > 0
        # Clutter or a load can only hide pixels: the sim's mask lies inside the projected one...
        assert not np.any(real_mask & ~projected_mask)
        # ... and where nothing hides the dolly, they are the same mask.
        if _iou(real_mask, projected_mask) > 0.99:
            unoccluded += 1
            assert np.allclose(ra["det_box"], rb["det_box"], atol=1.0 / 160)
    assert unoccluded >= 3
