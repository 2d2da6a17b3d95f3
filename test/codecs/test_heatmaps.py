import numpy as np
import pytest

from ros2_pose.codecs.heatmaps import (HeatmapShapeError, encode_gaussian_heatmaps, heatmap_to_image_coordinates,
                                       image_to_heatmap_coordinates)


def test_gaussian_peaks_at_the_keypoint_with_the_requested_sigma():
    heatmaps, weights = encode_gaussian_heatmaps([[10.0, 5.0]], height=16, width=20, sigma=1.5)
    assert heatmaps.shape == (1, 1, 16, 20) and heatmaps.dtype == np.float32
    assert weights.tolist() == [[1.0]]
    assert heatmaps[0, 0, 5, 10] == pytest.approx(1.0)
    assert heatmaps[0, 0, 5, 12] == pytest.approx(np.exp(-4 / (2 * 1.5 ** 2)), rel=1e-6)
    assert heatmaps[0, 0, 8, 10] == pytest.approx(np.exp(-9 / (2 * 1.5 ** 2)), rel=1e-6)


def test_unlabelled_non_finite_and_far_outside_keypoints_get_zero_weight():
    keypoints = np.array([[[4.0, 4.0], [4.0, 4.0], [np.nan, 1.0], [-20.0, 3.0], [-2.0, 3.0]]])
    heatmaps, weights = encode_gaussian_heatmaps(keypoints, 8, 8, sigma=1.0, visibility=[[2, 0, 2, 2, 1]])
    assert weights.tolist() == [[1, 0, 0, 0, 1]]
    assert np.all(heatmaps[0, 1:4] == 0) and np.isfinite(heatmaps).all()
    assert heatmaps[0, 4].max() > 0  # partly inside: its tail is a valid target


def test_bad_shapes_and_sigma_are_rejected():
    with pytest.raises(HeatmapShapeError, match="shape"):
        encode_gaussian_heatmaps(np.zeros((3,)), 8, 8)
    with pytest.raises(HeatmapShapeError, match="sigma"):
        encode_gaussian_heatmaps(np.zeros((1, 2)), 8, 8, sigma=0)
    with pytest.raises(HeatmapShapeError, match="visibility"):
        encode_gaussian_heatmaps(np.zeros((2, 2)), 8, 8, visibility=[1, 1, 1])


def test_image_heatmap_coordinates_keep_pixel_centres():
    # Stride 4: image pixels 0..3 form heatmap cell 0, whose centre is image x = 1.5.
    assert image_to_heatmap_coordinates([1.5, 5.5], 4) == pytest.approx([0.0, 1.0])
    xy = np.array([[13.25, 7.0]])
    assert heatmap_to_image_coordinates(image_to_heatmap_coordinates(xy, 4), 4) == pytest.approx(xy)
