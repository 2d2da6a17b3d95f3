import numpy as np
import pytest

from ros2_pose.codecs.body_heatmaps import encode_body_heatmaps, unlabeled_people_mask
from ros2_pose.codecs.heatmaps import HeatmapShapeError, heatmap_to_image_coordinates


def test_one_gaussian_per_joint_plus_background_with_peak_at_the_joint():
    # Two people, 18 joints each; joint 0 of person 0 sits exactly on the centre of grid cell (5, 7).
    people = np.zeros((2, 18, 3))
    people[0, 0] = (*heatmap_to_image_coordinates([5, 7], 8), 2)
    people[1, 0] = (*heatmap_to_image_coordinates([20, 10], 8), 1)   # occluded still counts
    people[1, 3] = (100, 60, 0)                                        # not labelled: no peak
    maps = encode_body_heatmaps(people, 24, 32, stride=8, sigma=7.0)
    assert maps.shape == (19, 24, 32) and maps.dtype == np.float32
    assert maps[0, 7, 5] == pytest.approx(1.0) and maps[0, 10, 20] == pytest.approx(1.0)
    # sigma is in image pixels: one cell (8 px) away the value is exp(-64 / 98).
    assert maps[0, 7, 6] == pytest.approx(np.exp(-64 / (2 * 49)), rel=1e-5)
    assert maps[3].max() == 0.0
    np.testing.assert_allclose(maps[18], 1.0 - maps[:18].max(axis=0), atol=1e-6)


def test_overlapping_people_take_the_maximum_not_the_sum():
    people = np.zeros((2, 1, 3))
    people[:, 0] = [(40, 40, 2), (48, 40, 2)]
    maps = encode_body_heatmaps(people, 16, 16, stride=4, sigma=4.0, with_background=False)
    assert maps.shape == (1, 16, 16) and maps.max() <= 1.0 + 1e-6


def test_unlabeled_mask_zeroes_cells_touching_an_unlabeled_person():
    mask = np.zeros((64, 64), bool)
    mask[10:20, 30:34] = True
    weights = unlabeled_people_mask(mask, 8, 8)
    assert weights.shape == (8, 8)
    assert weights[1, 3] == 0 and weights[2, 4] == 0 and weights[7, 0] == 1
    assert weights.sum() == 64 - 4
    assert np.all(unlabeled_people_mask(None, 4, 5) == 1)


def test_bad_shapes_are_refused():
    with pytest.raises(HeatmapShapeError, match=r"\(P, J, 3\)"):
        encode_body_heatmaps(np.zeros((18, 3)), 8, 8)
    with pytest.raises(HeatmapShapeError, match="sigma"):
        encode_body_heatmaps(np.zeros((1, 18, 3)), 8, 8, sigma=0)
