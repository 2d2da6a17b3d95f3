"""Photometric losses: the SSIM+L1 error, per-pixel minimum over sources, validity and auto-masking
(on rendered frames), edge-aware smoothness and the multi-scale loss's gradients."""
import numpy as np
import pytest
import torch

from ros2_pose.geometry.transforms import rigid_from_axis_angle_translation
from ros2_pose.losses import photometric
from ros2_pose.models.depth_egomotion import disparity_to_depth

W, H = 96, 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _noise_image(seed, shape=(1, 3, 24, 32)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_photometric_error_is_zero_for_equal_images_and_mixes_ssim_and_l1():
    a, b = _noise_image(0), _noise_image(1)
    assert photometric.photometric_error(a, a).abs().max() < 1e-5
    torch.testing.assert_close(photometric.photometric_error(a, b, alpha=0.0), (a - b).abs().mean(1, keepdim=True))
    # a brightness offset keeps the structure: the SSIM term grows much less than L1 relative to noise
    brighter = (a + 0.2).clamp(0, 1)
    offset_ssim = photometric.photometric_error(brighter, a, alpha=1.0).mean()
    noise_ssim = photometric.photometric_error(b, a, alpha=1.0).mean()
    assert offset_ssim < 0.3 * noise_ssim
    assert photometric.photometric_error(b, a).shape == (1, 1, 24, 32)
    with pytest.raises(photometric.PhotometricInputError, match="alpha"):
        photometric.photometric_error(a, b, alpha=1.5)
    with pytest.raises(photometric.PhotometricInputError, match="one shape"):
        photometric.photometric_error(a, b[..., :16])


def test_minimum_over_sources_takes_the_better_source_and_skips_invalid_warps():
    target = _noise_image(2)
    left_bad, right_bad = target.clone(), target.clone()
    left_bad[..., :16] = _noise_image(3)[..., :16]
    right_bad[..., 16:] = _noise_image(4)[..., 16:]
    warped = torch.stack([left_bad, right_bad], 1)
    valid = torch.ones(1, 2, 1, 24, 32, dtype=torch.bool)
    result = photometric.minimum_reprojection_loss(target, warped, valid)
    # every pixel has one perfect source, except near the seam where the 3x3 SSIM sees both halves
    assert result.min_error[..., 2:-2, :14].max() < 1e-5 and result.min_error[..., 2:-2, 18:].max() < 1e-5
    assert result.loss < 0.05
    # the perfect source is invalid on the left: the bad one must be used there, not the invalid one
    valid[:, 1, :, :, :16] = False
    result = photometric.minimum_reprojection_loss(target, warped, valid)
    assert result.min_error[..., :, :14].mean() > 0.1
    # nowhere valid: excluded from the loss and the masks say so
    valid[:, 0, :, :, :16] = False
    result = photometric.minimum_reprojection_loss(target, warped, valid)
    assert not result.used[..., :16].any() and result.min_error[..., :16].abs().max() == 0
    assert result.loss < 0.05 and torch.isfinite(result.loss)
    with pytest.raises(photometric.PhotometricInputError, match="bool"):
        photometric.minimum_reprojection_loss(target, warped, valid.float())


@pytest.fixture(scope="module")
def frames():
    from ros2_pose.sim import motion
    from ros2_pose.sim.tasks import frame_rng

    task = motion.MotionTask(W, H, config=motion.MotionConfig(sequence_length=16, texture_size=128))
    return [task.generate(frame_rng(7, i), i) for i in (2, 5)]


def _tensors(frames):
    target, source = frames
    image = lambda f: torch.from_numpy(f.rgb).permute(2, 0, 1).float()[None] / 255.0
    K = torch.tensor(target.camera.K, dtype=torch.float32)[None]
    depth = torch.from_numpy(target.depth.copy())[None, None]
    T = torch.tensor((source.T_world_camera.inverse() @ target.T_world_camera).as_matrix(), dtype=torch.float32)
    return image(target), image(source)[:, None], depth, T[None, None], K


def test_automasking_masks_a_static_pair_and_keeps_a_moving_one(frames):
    target, sources, depth, T_true, K = _tensors(frames)
    static_sources = target[:, None].clone()
    for T in (torch.eye(4)[None, None], T_true):  # a still camera, whatever motion is predicted
        static = photometric.photometric_reprojection_loss(target, static_sources, depth, T, K)
        assert static.valid.float().mean() > 0.6
        assert static.used.float().mean() < 0.01, static.used.float().mean()
        assert static.loss < 1e-3
        unmasked = photometric.photometric_reprojection_loss(target, static_sources, depth, T, K, automask=False)
        assert unmasked.used.float().mean() > 0.6
    moving = photometric.photometric_reprojection_loss(target, sources, depth, T_true, K)
    assert moving.used.float().mean() > 0.6
    # with ground-truth pose and depth the used pixels have a low error; a wrong pose a high one
    wrong_T = torch.tensor(rigid_from_axis_angle_translation([0, 0.05, 0], [0.05, 0, 0]).as_matrix(),
                           dtype=torch.float32)[None, None] @ T_true
    wrong = photometric.photometric_reprojection_loss(target, sources, depth, wrong_T, K, automask=False)
    assert moving.loss < 0.5 * wrong.loss, (moving.loss, wrong.loss)


def test_depth_holes_are_masked(frames):
    target, sources, depth, T, K = _tensors(frames)
    holed = depth.clone()
    holed[..., :, : W // 2] = 0.0
    holed[..., :4, :] = float("nan")
    result = photometric.photometric_reprojection_loss(target, sources, holed, T, K)
    assert not result.valid[..., :, : W // 2].any() and not result.valid[..., :4, :].any()
    assert torch.isfinite(result.loss)


def test_edge_aware_smoothness_is_scale_free_and_forgives_edges_on_image_edges():
    disparity = torch.ones(1, 1, 16, 16) * 0.3
    image = torch.zeros(1, 3, 16, 16)
    assert photometric.edge_aware_smoothness(disparity, image) == 0
    step = disparity.clone()
    step[..., 8:] = 0.6
    edge_image = image.clone()
    edge_image[..., 8:] = 1.0
    flat = photometric.edge_aware_smoothness(step, image)
    on_edge = photometric.edge_aware_smoothness(step, edge_image)
    assert on_edge < 0.5 * flat
    torch.testing.assert_close(photometric.edge_aware_smoothness(4 * step, image), flat)
    with pytest.raises(photometric.PhotometricInputError, match="image's size"):
        photometric.edge_aware_smoothness(step[..., :8], image)


def test_multi_scale_loss_prefers_true_depth_and_gives_gradients_to_depth_and_pose(frames):
    target, sources, depth, T_true, K = _tensors(frames)
    min_depth, max_depth = 0.1, 20.0
    true_disparity = ((1 / depth) - 1 / max_depth) / (1 / min_depth - 1 / max_depth)
    torch.testing.assert_close(disparity_to_depth(true_disparity, min_depth, max_depth), depth)

    def loss_for(disparity_full, pose):
        scales = [disparity_full] + [torch.nn.functional.interpolate(disparity_full, scale_factor=0.5 ** s,
                                                                      mode="area") for s in (1, 2)]
        return photometric.multi_scale_photometric_loss(target, sources, scales, pose, K, min_depth, max_depth)

    good, parts = loss_for(true_disparity, T_true)
    flat, _ = loss_for(torch.full_like(true_disparity, float(true_disparity.mean())), T_true)
    assert good < flat and 0 < parts["used_fraction"] <= 1
    disparity = torch.full_like(true_disparity, 0.05).requires_grad_(True)
    pose = T_true.clone().requires_grad_(True)
    loss, _ = loss_for(disparity, pose)
    loss.backward()
    assert torch.isfinite(loss) and disparity.grad.abs().sum() > 0 and pose.grad.abs().sum() > 0
    assert torch.all(torch.isfinite(disparity.grad)) and torch.all(torch.isfinite(pose.grad))
