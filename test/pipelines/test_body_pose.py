import json

import numpy as np
import pytest

from ros2_pose.codecs.body_heatmaps import encode_body_heatmaps
from ros2_pose.codecs.paf import encode_pafs
from ros2_pose.pipelines.body_pose import (BodyPoseConfigError, BodyPoseInferenceConfig, InputTransform,
                                           coco_results, find_peaks, group_people, infer_maps, maps_to_image,
                                           network_input_size, prepare_input, write_detections)
from ros2_pose.sim.skeleton import BODYPOSE18_LIMBS, coco17_to_bodypose18

# A frontal person, COCO-17 order, as (dx, dy) fractions of the height from the top centre.
TEMPLATE = np.array([
    (0.0, 0.07), (0.04, 0.04), (-0.04, 0.04), (0.075, 0.06), (-0.075, 0.06),
    (0.12, 0.18), (-0.12, 0.18), (0.16, 0.33), (-0.16, 0.33), (0.18, 0.47), (-0.18, 0.47),
    (0.08, 0.52), (-0.08, 0.52), (0.09, 0.73), (-0.09, 0.73), (0.09, 0.95), (-0.09, 0.95)])


def person(cx, top, height, jitter_seed=None):
    xy = np.array([cx, top]) + TEMPLATE * height
    if jitter_seed is not None:
        xy += np.random.default_rng(jitter_seed).uniform(-2, 2, xy.shape)
    return np.concatenate([xy, np.full((17, 1), 2.0)], axis=1)


def maps_for(people17, image_hw, stride):
    people18 = coco17_to_bodypose18(np.asarray(people17))
    h, w = image_hw[0] // stride, image_hw[1] // stride
    heat = encode_body_heatmaps(people18, h, w, stride=stride, sigma=7.0)
    paf = encode_pafs(people18, BODYPOSE18_LIMBS, h, w, stride=stride, ortho_dist_thresh=1.0)
    return heat, paf


def decode(heat, paf, image_hw, stride, **config):
    config = BodyPoseInferenceConfig(input_shape=image_hw, stride=stride, output_upsampling_factor=(stride, stride),
                                     keep_aspect_ratio_mode=None, **config)
    identity = InputTransform(1.0, 1.0, image_hw[1], image_hw[0], image_hw[1], image_hw[0])
    heat_img = maps_to_image(heat, identity, image_hw, config.output_upsampling_factor, stride)
    paf_img = maps_to_image(paf, identity, image_hw, config.output_upsampling_factor, stride)
    return group_people(heat_img[:18], paf_img, config)


def match(found, truth17):
    """Each true person's closest decoded person (by mean joint error) and that error."""
    errors = []
    for truth in truth17:
        best = min(found, key=lambda p: np.abs(p.coco_keypoints()[:, :2] - truth[:, :2]).max())
        errors.append(np.abs(best.coco_keypoints()[:, :2] - truth[:, :2]).max())
    return errors


def test_encode_then_decode_gives_the_same_three_people_back():
    truth = [person(60, 20, 170, 1), person(160, 30, 160, 2), person(260, 15, 175, 3)]
    heat, paf = maps_for(truth, (208, 320), stride=4)
    people = decode(heat, paf, (208, 320), stride=4)
    assert len(people) == 3
    assert all(p.num_parts == 18 for p in people)
    assert max(match(people, truth)) < 1.0
    results = coco_results(people, image_id=7)
    assert len(results) == 3 and len(results[0]["keypoints"]) == 51 and results[0]["image_id"] == 7


def test_grouping_separates_two_people_whose_arms_cross():
    a, b = person(90, 20, 170), person(170, 20, 170)
    # a's left arm reaches right across b's right arm, which reaches left: the forearms cross.
    a[7, :2], a[9, :2] = (130, 70), (175, 110)
    b[8, :2], b[10, :2] = (130, 72), (85, 112)
    heat, paf = maps_for([a, b], (208, 256), stride=4)
    people = decode(heat, paf, (208, 256), stride=4)
    assert len(people) == 2
    assert max(match(people, [a, b])) < 1.0


def test_find_peaks_finds_planted_peaks_with_subpixel_accuracy_and_threshold():
    heat = encode_body_heatmaps(np.array([[[40.3, 20.6, 2]], [[10.0, 50.0, 2]], [[70.0, 70.0, 2]]]),
                                80, 80, stride=1, sigma=2.0, with_background=False)[0]
    heat[60:, 60:] *= 0.09  # a peak below the threshold
    peaks = find_peaks(heat, threshold=0.1)
    assert peaks.shape == (2, 3)
    np.testing.assert_allclose(np.sort(peaks[:, 0]), [10.0, 40.3], atol=1e-6)
    np.testing.assert_allclose(np.sort(peaks[:, 1]), [20.6, 50.0], atol=1e-6)
    plateau = np.zeros((9, 9))
    plateau[4, 3:5] = 1.0
    assert find_peaks(plateau, 0.1).tolist() == [[3.5, 4.0, 1.0]]


def test_aspect_ratio_modes_and_multiscale_averaging():
    rgb = np.zeros((100, 200, 3), np.uint8)
    cfg = BodyPoseInferenceConfig(input_shape=(64, 64), keep_aspect_ratio_mode="adjust_network_input")
    assert network_input_size((100, 200), cfg) == (64, 128)
    strict = BodyPoseInferenceConfig(input_shape=(64, 64), keep_aspect_ratio_mode="pad_image_input")
    image, transform = prepare_input(rgb, strict)
    assert image.shape == (64, 64, 3) and (transform.content_width, transform.content_height) == (64, 32)
    calls = []

    def predict(batch):  # a "network" whose maps are constant per scale
        calls.append(batch.shape)
        n, _, h, w = batch.shape
        return np.full((n, 19, h // 8, w // 8), float(len(calls)), np.float32), np.zeros((n, 38, h // 8, w // 8), np.float32)

    multi = BodyPoseInferenceConfig(input_shape=(64, 64), multi_scale_inference=True, scales=[0.5, 1.0])
    heat, paf = infer_maps(predict, rgb, multi)
    assert calls == [(1, 3, 32, 64), (1, 3, 64, 128)]
    assert heat.shape == (19, 100, 200) and paf.shape == (38, 100, 200)
    np.testing.assert_allclose(heat, 1.5, atol=1e-5)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(BodyPoseConfigError, match="keep_aspect_ratio_mode"):
        BodyPoseInferenceConfig(keep_aspect_ratio_mode="stretch")
    with pytest.raises(BodyPoseConfigError, match="multiples of the stride"):
        BodyPoseInferenceConfig(input_shape=(100, 100))
    with pytest.raises(BodyPoseConfigError, match="unknown inference settings"):
        BodyPoseInferenceConfig.from_dict({"heatmap_treshold": 0.1})
    path = write_detections([{"image_id": 1}], tmp_path / "r" / "detection.json")
    assert json.loads(path.read_text()) == [{"image_id": 1}]
