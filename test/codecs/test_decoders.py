import numpy as np
import pytest
import torch

from ros2_pose.codecs.decoders import argmax_subpixel, center_of_mass, decode_heatmaps, soft_argmax
from ros2_pose.codecs.heatmaps import encode_gaussian_heatmaps

RNG = np.random.default_rng(3)
# Sub-pixel centres well inside a 32x32 heatmap, batched N=2 x K=5.
KEYPOINTS = RNG.uniform(8.0, 24.0, size=(2, 5, 2))
HEATMAPS, _ = encode_gaussian_heatmaps(KEYPOINTS, 32, 32, sigma=2.0)


@pytest.mark.parametrize("decode, options, tolerance", [
    (argmax_subpixel, {"refinement": "quadratic"}, 0.05),
    (argmax_subpixel, {"refinement": "taylor"}, 1e-4),
    (center_of_mass, {}, 0.05),
    (center_of_mass, {"window": 6}, 0.05),
    (soft_argmax, {"temperature": 0.06}, 0.05),
])
def test_decoders_recover_a_sub_pixel_gaussian(decode, options, tolerance):
    xy, confidence = decode(HEATMAPS, **options)
    assert xy.shape == (2, 5, 2) and confidence.shape == (2, 5)
    assert np.abs(xy - KEYPOINTS).max() < tolerance
    assert np.all(confidence > 0.9)


def test_argmax_without_refinement_is_off_by_the_sub_pixel_part():
    xy, _ = argmax_subpixel(HEATMAPS, refinement="none")
    assert np.array_equal(xy, np.round(KEYPOINTS))


def test_soft_argmax_at_too_high_a_temperature_is_pulled_to_the_centre():
    # Documents why the temperature matters (seed 002): a flat softmax averages the whole grid.
    xy, confidence = soft_argmax(HEATMAPS, temperature=1.0)
    assert np.abs(xy - 15.5).max() < 1.0 and np.all(confidence < 0.1)


def test_torch_input_gives_torch_output_with_gradients():
    heatmaps = torch.tensor(HEATMAPS, dtype=torch.float64, requires_grad=True)
    for method, options in (("argmax_subpixel", {"refinement": "taylor"}), ("center_of_mass", {}),
                            ("soft_argmax", {"temperature": 0.06})):
        xy, confidence = decode_heatmaps(heatmaps, method, **options)
        assert isinstance(xy, torch.Tensor)
        np.testing.assert_allclose(xy.detach().numpy(), decode_heatmaps(HEATMAPS, method, **options)[0], atol=1e-5)
        (grad,) = torch.autograd.grad(xy[0, 0, 0], heatmaps)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_soft_argmax_gradient_matches_finite_differences():
    logits = torch.randn(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: soft_argmax(h, temperature=0.5)[0], (logits,))
    assert torch.autograd.gradcheck(lambda h: center_of_mass(h.exp())[0], (logits,))


def test_empty_and_border_heatmaps_never_give_nan():
    heatmaps = np.zeros((1, 2, 8, 8))
    heatmaps[0, 1, 0, 7] = 1.0  # a peak in the corner: no neighbours on two sides
    for decode in (argmax_subpixel, center_of_mass, soft_argmax):
        xy, confidence = decode(heatmaps)
        assert np.isfinite(xy).all() and np.isfinite(confidence).all()
    xy, confidence = center_of_mass(heatmaps)
    assert xy[0, 0].tolist() == [3.5, 3.5] and confidence[0, 0] == 0
    assert argmax_subpixel(heatmaps, refinement="taylor")[0][0, 1].tolist() == [7.0, 0.0]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="N, K, H, W"):
        argmax_subpixel(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="temperature"):
        soft_argmax(HEATMAPS, temperature=0.0)
    with pytest.raises(ValueError, match="refinement"):
        argmax_subpixel(HEATMAPS, refinement="cubic")
    with pytest.raises(ValueError, match="unknown heatmap decoder"):
        decode_heatmaps(HEATMAPS, "mean_shift")
