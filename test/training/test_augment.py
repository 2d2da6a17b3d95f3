"""photometric_augment: per-image lighting changes, shared by the frames of one sample when given
groups of frames (the depth trainer's N x T x 3 x H x W windows)."""
import pytest
import torch

from ros2_pose.training.augment import photometric_augment


def _images(*lead):
    return torch.rand(*lead, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2


def test_strength_zero_is_the_identity_and_a_seed_repeats_the_change():
    images = _images(4)
    assert photometric_augment(images, torch.Generator().manual_seed(1), 0.0) is images
    a = photometric_augment(images, torch.Generator().manual_seed(1), 1.0)
    b = photometric_augment(images, torch.Generator().manual_seed(1), 1.0)
    assert a.shape == images.shape and torch.equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    per_image_change = (a.mean(dim=(1, 2, 3)) / images.mean(dim=(1, 2, 3)))
    assert float(per_image_change.std()) > 0.02  # each image gets its own lighting


def test_frames_of_one_sample_share_their_lighting():
    frame = _images(1)[0]
    windows = frame.expand(6, 3, *frame.shape).clone()  # 6 samples of 3 identical frames
    out = photometric_augment(windows, torch.Generator().manual_seed(2), 1.5)
    means = out.mean(dim=(2, 3, 4))  # 6 x 3
    assert float((means - means[:, :1]).abs().max()) < 0.005           # same change within a sample
    assert float(means[:, 0].max() - means[:, 0].min()) > 0.05          # different between samples
    assert not torch.allclose(out[:, 0], out[:, 1])                      # sensor noise is per frame
