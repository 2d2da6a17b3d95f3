"""Training-time image augmentation shared by the tasks' trainers."""
from __future__ import annotations

import torch


def photometric_augment(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Per-sample brightness, contrast, colour gain and noise on N x 3 x H x W images in [0, 1], or
    on N x T x 3 x H x W groups of frames (one lighting change for all T frames of a sample, so
    that frames of one scene still match each other photometrically; noise per frame).

    No geometric augmentation: flips and rotations would change the pose the crop shows.
    """
    if strength <= 0:
        return images
    n, group = images.shape[0], (1,) * (images.ndim - 4)
    shape = (n, *group, 1, 1, 1)
    brightness = 1 + strength * (torch.rand(shape, generator=generator) * 0.8 - 0.4)
    contrast = 1 + strength * (torch.rand(shape, generator=generator) * 0.8 - 0.4)
    gain = 1 + strength * (torch.rand((n, *group, 3, 1, 1), generator=generator) * 0.3 - 0.15)
    mean = images.mean(dim=tuple(range(1, images.ndim)), keepdim=True)
    out = ((images - mean) * contrast + mean) * brightness * gain
    out = out + strength * 0.03 * torch.randn(images.shape, generator=generator)
    return out.clamp(0.0, 1.0)
