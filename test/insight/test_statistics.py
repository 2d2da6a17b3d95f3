import numpy as np
import pytest

from ros2_pose.insight.statistics import (ChannelStatistics, FeatureMapShapeError, compare_statistics,
                                          statistics_of_array)


def _hand_made() -> np.ndarray:
    # 2 items x 3 channels x 1 x 2: channel 0 = [1, 3, 5, 7], channel 1 all zero, channel 2 = [0, 0, 0, 4]
    fmap = np.zeros((2, 3, 1, 2), np.float32)
    fmap[:, 0, 0] = [[1, 3], [5, 7]]
    fmap[1, 2, 0, 1] = 4
    return fmap


def test_statistics_of_a_hand_made_tensor():
    stats = ChannelStatistics.of(_hand_made())
    assert stats.count == 4
    np.testing.assert_allclose(stats.mean, [4.0, 0.0, 1.0])
    np.testing.assert_allclose(stats.std, [np.sqrt(5.0), 0.0, np.sqrt(3.0)])
    np.testing.assert_allclose(stats.minimum, [1, 0, 0])
    np.testing.assert_allclose(stats.maximum, [7, 0, 4])
    np.testing.assert_allclose(stats.zero_fraction, [0.0, 1.0, 0.75])
    assert stats.empty_channels().tolist() == [1]
    # a looser zero-fraction threshold also calls channel 2 empty; eps above its max does too
    assert stats.empty_channels(zero_fraction_threshold=0.7).tolist() == [1, 2]
    assert stats.empty_channels(eps=5.0).tolist() == [1, 2]


def test_batched_accumulation_equals_one_pass():
    rng = np.random.default_rng(0)
    fmap = np.maximum(rng.standard_normal((7, 5, 3, 4)), 0)
    whole = ChannelStatistics.of(fmap)
    batched = statistics_of_array(fmap, batch_size=3)
    for name in ("mean", "std", "minimum", "maximum", "zero_fraction"):
        np.testing.assert_allclose(getattr(batched, name), getattr(whole, name), rtol=1e-12)
    np.testing.assert_allclose(whole.std, fmap.transpose(1, 0, 2, 3).reshape(5, -1).std(axis=1), rtol=1e-10)


def test_comparison_deltas_and_empty_sets():
    a = ChannelStatistics.of(_hand_made())
    other = _hand_made() * 2
    other[:, 0] = 0            # channel 0 dies on b, channel 1 comes alive
    other[:, 1] = 1
    b = ChannelStatistics.of(other)
    comparison = compare_statistics(a, b)
    np.testing.assert_allclose(comparison.delta["mean"], [-4.0, 1.0, 1.0])
    np.testing.assert_allclose(comparison.delta["max"], [-7.0, 1.0, 4.0])
    np.testing.assert_allclose(comparison.delta["zero_fraction"], [1.0, -1.0, 0.0])
    assert comparison.empty_only_in_a.tolist() == [1]
    assert comparison.empty_only_in_b.tolist() == [0]
    assert comparison.relative_mean_change == pytest.approx(1.0 / (5 / 3) - 1)   # channel means b: 0, 1, 2; a: 4, 0, 1


def test_bad_feature_maps_are_refused():
    with pytest.raises(FeatureMapShapeError, match="batch x channels"):
        ChannelStatistics.of(np.zeros(3))
    with pytest.raises(FeatureMapShapeError, match="NaN"):
        ChannelStatistics.of(np.full((1, 2, 2, 2), np.nan))
    with pytest.raises(FeatureMapShapeError, match="channels"):
        ChannelStatistics(4).update(np.zeros((1, 3, 2, 2)))
    with pytest.raises(FeatureMapShapeError, match="no activations"):
        ChannelStatistics(4).mean
    with pytest.raises(FeatureMapShapeError, match="cannot compare"):
        compare_statistics(ChannelStatistics.of(np.ones((1, 2))), ChannelStatistics.of(np.ones((1, 3))))
