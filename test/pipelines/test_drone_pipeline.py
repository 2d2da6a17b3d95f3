"""DronePosePipeline on a rendered drone frame: crop -> heatmaps -> decode -> PnP gives the true pose
when the heatmaps are right, and an explicit failure when they are not.

The network is replaced by an oracle that returns the Gaussian heatmaps of the true keypoints for
the crop it is given (a trained network cannot be had in a unit test); every other stage is real.
"""
import dataclasses

import numpy as np
import pytest

from ros2_pose.codecs.heatmaps import encode_gaussian_heatmaps, image_to_heatmap_coordinates
from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.pipelines.drone import (CropSettings, calibrate_coarse_box_scale, scale_box, DroneModelInfo, DroneModelInfoError, DronePosePipeline,
                                       PnPSettings, crop_around_box, network_input)
from ros2_pose.sim.drone import KEYPOINT_NAMES, MODELS, DroneTask

STRIDE = 4


@pytest.fixture(scope="module")
def frame():
    task = DroneTask(320, 240, max_drones=1)
    rng = np.random.default_rng(3)
    for index in range(20):  # the first frame whose drone is fully in view and not tiny
        f = task.generate(rng, index)
        spec = f.keypoints[0] if f.keypoints else None
        if spec is not None and (spec.visibility > 0).all() and spec.box[2] - spec.box[0] > 15:
            return f
    pytest.fail("no frame with a fully visible drone in 20 tries")


class OracleRunner:
    """Heatmaps of the true keypoints for whichever of the expected crops it is given."""

    def __init__(self, image, keypoints_image, crops):
        self.expected = [(network_input(c.apply(image)[None]), c) for c in crops]
        self.keypoints = keypoints_image
        self.calls = 0

    def run(self, inputs):
        self.calls += 1
        for expected, crop in self.expected:
            if np.array_equal(expected, inputs["image"]):
                cells = crop.size // STRIDE
                xy = image_to_heatmap_coordinates(crop.image_to_crop(self.keypoints), STRIDE)
                heatmaps, _ = encode_gaussian_heatmaps(xy, cells, cells, sigma=1.5)
                return {"heatmaps": heatmaps}
        raise AssertionError("the pipeline asked for a crop the test did not expect")


class BlankRunner:
    def run(self, inputs):
        return {"heatmaps": np.zeros((1, len(KEYPOINT_NAMES), 16, 16), np.float32)}


def info_for(name, crop=CropSettings(64, 0.25, 12.0)):
    return DroneModelInfo(name, KEYPOINT_NAMES, MODELS[name].keypoints(), crop, STRIDE, "hrnet")


def test_right_heatmaps_give_the_true_pose_from_a_box_and_from_the_coarse_pass(frame):
    spec, name = frame.keypoints[0], frame.extra["model"]
    info = info_for(name)
    box = np.asarray(spec.box, float)
    whole = RoiCrop.whole_image(frame.camera.width, frame.camera.height, info.crop.size)
    runner = OracleRunner(frame.rgb, spec.xy, [info.crop.crop(box), whole])
    pipeline = DronePosePipeline([(runner, info)], pnp=PnPSettings(confidence_threshold=0.5))
    result = pipeline.estimate(frame.rgb, frame.camera, box, name)
    assert result.status == "ok", result.reason
    truth = frame.tracked_pose
    points = info.keypoints_3d
    add = np.linalg.norm(truth.apply(points) - result.pose.apply(points), axis=1).mean()
    assert add < 0.05 * np.linalg.norm(points.max(0) - points.min(0)) + 0.002 * truth.translation[2]
    assert np.abs(result.keypoints - spec.xy).max() < 0.5  # sub-pixel through crop + decoder
    # Coarse pass: the letterboxed image finds the box around the keypoints, then the same crop path.
    located = pipeline.locate(frame.rgb, name)
    assert located is not None
    np.testing.assert_allclose(located[:2], spec.xy.min(0), atol=2.5)
    np.testing.assert_allclose(located[2:], spec.xy.max(0), atol=2.5)
    runner.expected.append((network_input(info.crop.crop(located).apply(frame.rgb)[None]), info.crop.crop(located)))
    results = pipeline.process(frame.rgb, frame.camera)
    assert [r.status for r in results] == ["ok"] and results[0].drone_model == name
    # Given detections skip the coarse pass; an unknown class tries every network.
    calls = runner.calls
    assert pipeline.process(frame.rgb, frame.camera, [(box, None)])[0].status == "ok"
    assert runner.calls == calls + 1


def test_coarse_box_scale_is_calibrated_on_true_boxes_and_applied_by_locate(frame):
    spec, name = frame.keypoints[0], frame.extra["model"]
    info = info_for(name)
    box = np.asarray(spec.box, float)
    whole = RoiCrop.whole_image(frame.camera.width, frame.camera.height, info.crop.size)
    runner = OracleRunner(frame.rgb, spec.xy, [whole])
    pipeline = DronePosePipeline([(runner, info)], pnp=PnPSettings(confidence_threshold=0.5))
    scale = calibrate_coarse_box_scale(pipeline, name, [frame.rgb], [box])
    keypoint_side = (spec.xy.max(0) - spec.xy.min(0)).max()
    assert scale == pytest.approx((box[2:] - box[:2]).max() / keypoint_side, rel=0.05)
    assert scale > 1.0  # the drone reaches past its keypoints
    scaled = DronePosePipeline([(runner, dataclasses.replace(info, coarse_box_scale=scale))],
                               pnp=PnPSettings(confidence_threshold=0.5))
    located = scaled.locate(frame.rgb, name)
    expected = scale_box(np.concatenate([spec.xy.min(0), spec.xy.max(0)]), scale)
    np.testing.assert_allclose(located, expected, atol=2.5 * scale)
    assert calibrate_coarse_box_scale(DronePosePipeline([(BlankRunner(), info)]), name, [frame.rgb], [box]) is None


def test_no_confident_keypoints_is_an_explicit_failure_without_a_pose(frame):
    name = frame.extra["model"]
    pipeline = DronePosePipeline([(BlankRunner(), info_for(name))])
    result = pipeline.estimate(frame.rgb, frame.camera, np.asarray(frame.keypoints[0].box), name)
    assert result.status == "too_few_keypoints" and result.pose is None
    assert "0 of 10 keypoints" in result.reason
    assert pipeline.process(frame.rgb, frame.camera) == []  # the coarse pass finds nothing
    with pytest.raises(KeyError, match="no network for drone model"):
        pipeline.estimate(frame.rgb, frame.camera, np.asarray(frame.keypoints[0].box), "drone_huge")


def test_depth_limits_reject_a_pose(frame):
    spec, name = frame.keypoints[0], frame.extra["model"]
    info = info_for(name)
    box = np.asarray(spec.box, float)
    runner = OracleRunner(frame.rgb, spec.xy, [info.crop.crop(box)])
    far = frame.tracked_pose.translation[2]
    pipeline = DronePosePipeline([(runner, info)], pnp=PnPSettings(confidence_threshold=0.5), max_depth_m=far / 2)
    result = pipeline.estimate(frame.rgb, frame.camera, box, name)
    assert result.status == "rejected_pose" and result.pose is None and "outside" in result.reason


def test_template_keypoints_ignore_the_image_and_need_boxes(frame):
    spec, name = frame.keypoints[0], frame.extra["model"]
    box = np.asarray(spec.box, float)
    info = info_for(name)
    with pytest.raises(DroneModelInfoError, match="no keypoint_template"):
        DronePosePipeline([(BlankRunner(), info)], keypoint_source="template")
    with pytest.raises(ValueError, match="keypoint source"):
        DronePosePipeline([(BlankRunner(), info)], keypoint_source="heatmaps")
    # A template that happens to be this frame's true layout gives the true pose, whatever the
    # runner says (a blank one here: the network path finds no keypoints).
    exact = dataclasses.replace(info, keypoint_template=info.crop.crop(box).image_to_crop(spec.xy))
    pipeline = DronePosePipeline([(BlankRunner(), exact)], keypoint_source="template")
    result = pipeline.estimate(frame.rgb, frame.camera, box, name)
    assert result.status == "ok", result.reason
    np.testing.assert_allclose(result.keypoints, spec.xy, atol=1e-6)
    assert np.all(result.confidence == 1)
    truth = frame.tracked_pose
    assert np.linalg.norm(result.pose.translation - truth.translation) < 1e-3
    assert DronePosePipeline([(BlankRunner(), exact)]).estimate(frame.rgb, frame.camera, box, name).status != "ok"
    with pytest.raises(ValueError, match="no coarse pass"):
        pipeline.locate(frame.rgb, name)


def test_crop_around_tiny_box_keeps_the_minimum_size():
    crop = crop_around_box((10, 10, 11, 12), size=32, margin=0.25, min_box_px=12)
    x0, y0, x1, y1 = crop.box
    assert x1 - x0 == pytest.approx(18) and y1 - y0 == pytest.approx(18)
    assert crop.box_center == pytest.approx([10.5, 11])
    with pytest.raises(ValueError, match="finite"):
        crop_around_box((0, 0, np.nan, 1), 32, 0.25, 12)


def test_model_info_round_trip_and_errors(tmp_path):
    info = dataclasses.replace(info_for("drone_small"), coarse_box_scale=1.75)
    info.write(tmp_path)
    back = DroneModelInfo.from_folder(tmp_path)
    assert back.drone_model == "drone_small" and back.crop == info.crop and back.output_stride == STRIDE
    assert back.coarse_box_scale == 1.75
    assert back.keypoint_template is None
    template = np.arange(2 * len(KEYPOINT_NAMES), dtype=float).reshape(-1, 2) + 0.25
    dataclasses.replace(info, keypoint_template=template).write(tmp_path)
    np.testing.assert_allclose(DroneModelInfo.from_folder(tmp_path).keypoint_template, template)
    dataclasses.replace(info, keypoint_template=template[:3]).write(tmp_path)
    with pytest.raises(DroneModelInfoError, match="keypoint_template"):
        DroneModelInfo.from_folder(tmp_path)
    info.write(tmp_path)
    yaml_text = (tmp_path / "drone.yaml").read_text()
    (tmp_path / "drone.yaml").write_text(yaml_text.replace("coarse_box_scale: 1.75", "coarse_box_scale: .nan"))
    with pytest.raises(DroneModelInfoError, match="coarse_box_scale"):
        DroneModelInfo.from_folder(tmp_path)
    # drone.yaml files written before the scale existed load with the unscaled box.
    (tmp_path / "drone.yaml").write_text(yaml_text.replace("coarse_box_scale: 1.75\n", ""))
    assert DroneModelInfo.from_folder(tmp_path).coarse_box_scale == 1.0
    np.testing.assert_allclose(back.keypoints_3d, info.keypoints_3d, atol=1e-6)
    with pytest.raises(DroneModelInfoError, match="no drone.yaml"):
        DroneModelInfo.from_folder(tmp_path / "elsewhere")
    (tmp_path / "drone.yaml").write_text("drone_model: x\nkeypoint_names: [a, b]\nkeypoints_3d: [[0, 0, 0]]\n"
                                         "crop: {size: 8, margin: 0, min_box_px: 1}\noutput_stride: 4\n")
    with pytest.raises(DroneModelInfoError, match="2 x 3"):
        DroneModelInfo.from_folder(tmp_path)
    with pytest.raises(ValueError, match="min_keypoints"):
        PnPSettings(min_keypoints=3)
    with pytest.raises(ValueError, match="unknown PnP method"):
        PnPSettings(method="p3p")
