import json

import numpy as np
import pytest

from ros2_pose.codecs.body_heatmaps import encode_body_heatmaps
from ros2_pose.codecs.paf import encode_pafs
from ros2_pose.pipelines.body_pose import (BodyPoseConfigError, BodyPoseInferenceConfig, InputTransform,
                                           UpsampledMaps, coco_results, estimate_people, find_peaks, group_people,
                                           infer_maps, maps_to_image, network_input_size, prepare_input,
                                           write_detections)
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


def noisy_maps(channels, grid_hw, seed):
    """Network-like maps: blobs of different sizes and heights over low noise, some negative."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:grid_hw[0], :grid_hw[1]]
    maps = rng.normal(0.0, 0.03, (channels, *grid_hw))
    for channel in maps:
        for _ in range(rng.integers(0, 5)):
            cy, cx = rng.uniform(-1, grid_hw[0]), rng.uniform(-1, grid_hw[1])
            sigma, height = rng.uniform(0.5, 2.0), rng.uniform(0.05, 1.0)
            channel += height * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma ** 2))
    return maps.astype(np.float32)


@pytest.mark.parametrize("image_hw, input_hw, upsampling, mode", [
    ((480, 640), (480, 640), (8, 8), "pad_image_input"),
    ((56, 104), (64, 104), (8, 8), "pad_image_input"),   # the content ends inside the last grid row
    ((28, 52), (64, 104), (4, 4), "pad_image_input"),
    ((32, 104), (64, 104), (4, 8), None)])
def test_upsampled_maps_read_on_demand_equal_the_whole_upsampled_maps(image_hw, input_hw, upsampling, mode):
    config = BodyPoseInferenceConfig(input_shape=input_hw, keep_aspect_ratio_mode=mode,
                                     output_upsampling_factor=upsampling)
    _, transform = prepare_input(np.zeros((*image_hw, 3), np.uint8), config)
    assert UpsampledMaps.applies(transform, image_hw, upsampling, 8)
    grid = noisy_maps(12, (input_hw[0] // 8, input_hw[1] // 8), seed=sum(image_hw) + upsampling[1])
    dense = maps_to_image(grid, transform, image_hw, upsampling, 8)
    lazy = UpsampledMaps(grid, transform, image_hw, upsampling, 8)
    assert lazy.shape == dense.shape
    found = 0
    for threshold, window in ((0.1, 3), (0.3, 5)):
        for channel, got in enumerate(lazy.peaks(threshold, window)):
            expected = find_peaks(dense[channel], threshold, window)
            order = np.lexsort(expected.T[:2]), np.lexsort(got.T[:2])
            np.testing.assert_allclose(got[order[1]], expected[order[0]], atol=1e-9)
            found += len(expected)
    assert found > 10  # the maps do have peaks to find
    rng = np.random.default_rng(1)
    channels = rng.integers(0, len(grid), 50)
    rows, cols = rng.integers(0, image_hw[0], (50, 7)), rng.integers(0, image_hw[1], (50, 7))
    pairs = np.stack([channels, (channels + 1) % len(grid)], axis=1)
    values = lazy.values_at(pairs, rows, cols)
    assert values.shape == (2, 50, 7)
    assert lazy.values_at(np.zeros((0, 2), int), np.zeros((0, 7), int), np.zeros((0, 7), int)).shape == (2, 0, 7)
    for k in range(2):
        np.testing.assert_allclose(values[k], dense[pairs[:, k, None], rows, cols], atol=1e-5)


def test_regions_are_packed_apart_with_minus_infinity_between_them():
    from ros2_pose.pipelines.body_pose import _pack_regions

    rng = np.random.default_rng(0)
    regions = [rng.random((int(h), int(w))).astype(np.float32) for h, w in rng.integers(1, 60, (40, 2))]
    atlas, placed = _pack_regions(regions, gap=2, max_width=200)
    assert atlas.shape[1] <= 200
    owner = np.full(atlas.shape, -1)
    for index, (region, (x, y)) in enumerate(zip(regions, placed)):
        np.testing.assert_array_equal(atlas[y:y + region.shape[0], x:x + region.shape[1]], region)
        grown = owner[max(y - 2, 0):y + region.shape[0] + 2, max(x - 2, 0):x + region.shape[1] + 2]
        assert (grown == -1).all()  # no other region within the gap
        owner[y:y + region.shape[0], x:x + region.shape[1]] = index
    assert np.isneginf(atlas[owner == -1]).all()


def test_people_from_maps_read_on_demand_equal_those_from_whole_maps():
    truth = [person(120, 40, 170, 1), person(330, 60, 230, 2), person(520, 200, 120, 3), person(560, 30, 90, 4)]
    heat, paf = maps_for(truth, (480, 640), stride=8)
    rng = np.random.default_rng(0)
    heat = heat + rng.normal(0, 0.02, heat.shape).astype(np.float32)
    config = BodyPoseInferenceConfig(input_shape=(480, 640), keep_aspect_ratio_mode="pad_image_input",
                                     output_upsampling_factor=(8, 8))
    rgb = np.zeros((480, 640, 3), np.uint8)

    def predict(batch):
        assert batch.shape == (1, 3, 480, 640)
        return heat[None], paf[None]

    on_demand = estimate_people(predict, rgb, config)
    whole_heat, whole_paf = infer_maps(predict, rgb, config)
    whole = group_people(whole_heat[:18], whole_paf, config)
    assert len(on_demand) == len(whole) == 4
    for a, b in zip(on_demand, whole):
        np.testing.assert_allclose(a.keypoints18, b.keypoints18, atol=1e-6)
        assert a.total_score == pytest.approx(b.total_score, abs=1e-6)
    assert max(match(on_demand, truth)) < 2.0
    # A 1280x960 image fills the input at half size: the maps are resized to it as a whole.
    big = np.zeros((960, 1280, 3), np.uint8)
    _, transform = prepare_input(big, config)
    assert not UpsampledMaps.applies(transform, (960, 1280), (8, 8), 8)
    scaled = estimate_people(predict, big, config)
    assert len(scaled) == 4
    assert max(match(scaled, [t * (2, 2, 1) for t in truth])) < 4.0


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
