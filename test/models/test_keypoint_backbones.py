import numpy as np
import pytest
import torch

from ros2_pose.models.keypoint_backbones import BlurPool2d, HigherHRNet, HRNet, StackedHourglass

TINY = {"width": 8, "exchange_blocks": (1, 1), "units_per_branch": 1, "stage1_units": 1}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_blur_pool_keeps_constants_and_removes_the_highest_frequency():
    pool = BlurPool2d(2)
    constant = torch.full((1, 2, 8, 8), 3.0)
    assert torch.allclose(pool(constant), torch.full((1, 2, 4, 4), 3.0))
    checkerboard = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float().expand(1, 2, 8, 8)
    blurred = pool(checkerboard)
    # Plain stride-2 subsampling of a checkerboard gives all zeros or all ones depending on a
    # one-pixel shift (aliasing); the blurred version is ~0.5 either way.
    assert torch.allclose(blurred[..., 1:-1, 1:-1], torch.full_like(blurred[..., 1:-1, 1:-1], 0.5))


@pytest.mark.parametrize("model, stride", [
    (StackedHourglass(5, width=8, num_stacks=2, levels=2), 4),
    (HRNet(5, **TINY), 4),
    (HigherHRNet(5, deconv_units=1, **TINY), 2),
    (HRNet(5, anti_alias=False, **TINY), 4),
])
def test_forward_shapes(model, stride):
    out = model(torch.rand(2, 3, 64, 48))
    assert model.output_stride == stride
    assert out["heatmaps"].shape == (2, 5, 64 // stride, 48 // stride)
    if isinstance(model, StackedHourglass):
        assert out["stack_heatmaps"].shape == (2, 2, 5, 16, 12)
    if isinstance(model, HigherHRNet):
        assert out["heatmaps_quarter"].shape == (2, 5, 16, 12) and out["heatmaps_half"].shape == (2, 5, 32, 24)
        upsampled = torch.nn.functional.interpolate(out["heatmaps_quarter"], scale_factor=2.0, mode="bilinear")
        assert torch.allclose(out["heatmaps"], (upsampled + out["heatmaps_half"]) / 2)


def test_seed_width_is_configurable_and_bigger():
    small = sum(p.numel() for p in HRNet(10, **TINY).parameters())
    seed_like = sum(p.numel() for p in HRNet(10, width=48, exchange_blocks=(1, 4), units_per_branch=4).parameters())
    assert seed_like > 20 * small


def test_bad_input_sizes_are_rejected():
    with pytest.raises(ValueError, match="multiples of 16"):
        HRNet(5, **TINY)(torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        HRNet(5, **TINY)(torch.rand(1, 1, 64, 64))


def test_higher_hrnet_exports_to_onnx_with_parity(tmp_path):
    from ros2_pose.deploy.export import check_parity, export_onnx

    model = HigherHRNet(4, deconv_units=1, **TINY).eval()
    image = torch.rand(1, 3, 64, 64)
    names = ["heatmaps", "heatmaps_quarter", "heatmaps_half"]
    path = export_onnx(model, {"image": image}, tmp_path / "higher_hrnet.onnx", names)
    errors = check_parity(model, path, {"image": np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)})
    assert max(errors.values()) < 1e-4
