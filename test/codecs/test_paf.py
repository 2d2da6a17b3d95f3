import numpy as np
import pytest

from ros2_pose.codecs.heatmaps import HeatmapShapeError, heatmap_to_image_coordinates
from ros2_pose.codecs.paf import encode_pafs, line_integral_scores, stacked_line_integral_scores


def _person(points_grid, stride):
    xy = heatmap_to_image_coordinates(np.asarray(points_grid, float), stride)
    return np.concatenate([xy, np.full((len(xy), 1), 2.0)], axis=1)[None]


def test_horizontal_limb_is_a_unit_band_of_the_given_width():
    people = _person([[2, 5], [12, 5]], stride=8)
    fields = encode_pafs(people, [(0, 1)], 11, 16, stride=8, ortho_dist_thresh=1.0)
    assert fields.shape == (2, 11, 16)
    band = np.zeros((11, 16), bool)
    band[4:7, 2:13] = True
    np.testing.assert_allclose(fields[0], band.astype(np.float32))
    assert np.all(fields[1] == 0)


def test_unlabelled_joint_draws_no_limb_and_overlaps_average():
    people = np.concatenate([_person([[2, 5], [12, 5]], 4), _person([[12, 5], [2, 5]], 4)])
    fields = encode_pafs(people, [(0, 1)], 11, 16, stride=4)
    assert np.abs(fields).max() == 0  # opposite directions average out
    people[1, 1, 2] = 0
    fields = encode_pafs(people, [(0, 1)], 11, 16, stride=4)
    np.testing.assert_allclose(fields[0, 5, 2:13], 1.0)


def test_gaussian_weighting_fades_away_from_the_axis():
    people = _person([[2, 5], [12, 5]], stride=8)
    fields = encode_pafs(people, [(0, 1)], 11, 16, stride=8, ortho_dist_thresh=2.0, paf_sigma=0.1)
    assert fields[0, 5, 7] == pytest.approx(1.0)
    assert fields[0, 6, 7] == pytest.approx(np.exp(-1 / (2 * 1.0 ** 2)), rel=1e-5)
    assert fields[0, 7, 7] < fields[0, 6, 7]


def test_line_integral_agrees_along_the_limb_and_not_across():
    people = _person([[2, 5], [12, 5]], stride=1)
    fields = encode_pafs(people, [(0, 1)], 11, 16, stride=1)
    projections, lengths = line_integral_scores(fields[0], fields[1], np.array([[2, 5], [12, 5], [7, 0]]),
                                                np.array([[12, 5], [2, 5], [7, 10]]))
    assert lengths.tolist() == [10, 10, 10]
    np.testing.assert_allclose(projections[0], 1.0)
    np.testing.assert_allclose(projections[1], -1.0)
    np.testing.assert_allclose(projections[2], 0.0)


def test_stacked_scores_equal_the_per_limb_scores():
    people = _person([[2, 5], [12, 5], [12, 1]], stride=1)
    limbs = [(0, 1), (1, 2)]
    fields = encode_pafs(people, limbs, 11, 16, stride=1)
    rng = np.random.default_rng(0)
    starts, ends = rng.uniform(0, 15, (6, 2)), rng.uniform(0, 10, (6, 2))
    limb_index = np.array([0, 1, 1, 0, 1, 0])
    projections, lengths = stacked_line_integral_scores(fields, limb_index, starts, ends, num_samples=7)
    for i, limb in enumerate(limb_index):
        expected, length = line_integral_scores(fields[2 * limb], fields[2 * limb + 1], starts[i:i + 1],
                                                ends[i:i + 1], num_samples=7)
        np.testing.assert_array_equal(projections[i], expected[0])
        assert lengths[i] == length[0]
    with pytest.raises(HeatmapShapeError, match="candidates"):
        stacked_line_integral_scores(fields, limb_index[:2], starts, ends)


def test_bad_limbs_are_refused():
    with pytest.raises(HeatmapShapeError, match="0..1"):
        encode_pafs(np.zeros((1, 2, 3)), [(0, 2)], 4, 4)
