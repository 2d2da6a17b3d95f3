"""Photometric view-synthesis losses for self-supervised depth and ego-motion (monodepth2's recipe).

- per-pixel error ``alpha * (1 - SSIM) / 2 + (1 - alpha) * |a - b|`` (alpha 0.85, 3x3 SSIM via
  kornia), averaged over colour channels;
- per-pixel minimum over the source frames (a pixel occluded in one source is usually seen in
  another);
- masks: pixels whose warp is invalid in every source (unknown target depth, behind the source
  camera, projected out of frame) and, with auto-masking, pixels where the *unwarped* source
  already matches the target better than the warped one (a static camera, objects moving with it,
  textureless areas): without it a pair with no motion teaches the networks "zero motion, any
  depth" (the seed's warning that a network can learn to predict zeros);
- edge-aware smoothness of mean-normalised disparity (kornia's inverse-depth smoothness), weighted
  1/2^s at scale s;
- multi-scale: every scale's disparity is upsampled to the input resolution before warping
  (monodepth2), so coarse scales cannot settle on holes of the low-resolution image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as functional
from kornia.losses import inverse_depth_smoothness_loss
from kornia.metrics import ssim

from ros2_pose.geometry.warping import warp_source_to_target
from ros2_pose.models.depth_egomotion import disparity_to_depth

SSIM_WEIGHT = 0.85   # alpha of the photometric error (monodepth2, Godard et al.)
SSIM_WINDOW = 3      # 3x3 SSIM window as in monodepth2: sharp enough for 64x48 images


class PhotometricInputError(ValueError):
    """Images, masks or poses given to the photometric losses have inconsistent shapes."""


def photometric_error(predicted: torch.Tensor, target: torch.Tensor, alpha: float = SSIM_WEIGHT) -> torch.Tensor:
    """N x C x H x W images in [0, 1] -> N x 1 x H x W error alpha*(1-SSIM)/2 + (1-alpha)*L1."""
    if predicted.shape != target.shape or predicted.ndim != 4:
        raise PhotometricInputError(f"images must both be N x C x H x W of one shape, got {tuple(predicted.shape)} "
                                    f"and {tuple(target.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise PhotometricInputError(f"alpha must be in [0, 1], got {alpha}")
    l1 = (predicted - target).abs().mean(1, keepdim=True)
    if alpha == 0:
        return l1
    structural = ((1.0 - ssim(predicted, target, SSIM_WINDOW)) / 2.0).clamp(0.0, 1.0).mean(1, keepdim=True)
    return alpha * structural + (1.0 - alpha) * l1


@dataclass
class ReprojectionLoss:
    """One scale's result: the loss and the masks behind it (N x 1 x H x W), for logging and plots."""

    loss: torch.Tensor
    min_error: torch.Tensor      # per-pixel minimum over sources of the warped error (0 where no source is valid)
    valid: torch.Tensor          # some source's warp is valid here
    automask: torch.Tensor       # warping beats not warping (all True when auto-masking is off)
    used: torch.Tensor           # valid & automask: the pixels that carry the loss


def minimum_reprojection_loss(target: torch.Tensor, warped: torch.Tensor, valid: torch.Tensor,
                              sources: torch.Tensor | None = None, alpha: float = SSIM_WEIGHT) -> ReprojectionLoss:
    """Per-pixel minimum over sources of the warped sources' error, masked.

    target N x C x H x W, warped N x S x C x H x W, valid N x S x 1 x H x W (bool). With `sources`
    (N x S x C x H x W, the unwarped frames) auto-masking is on: a pixel counts only where the
    best warped error is strictly lower than the best unwarped one, so a static pair is masked out
    entirely (ties go to "static").
    """
    if warped.ndim != 5 or warped.shape[0] != target.shape[0] or warped.shape[2:] != target.shape[1:]:
        raise PhotometricInputError(f"warped must be N x S x C x H x W matching target {tuple(target.shape)}, "
                                    f"got {tuple(warped.shape)}")
    if valid.shape != (*warped.shape[:2], 1, *warped.shape[-2:]) or valid.dtype != torch.bool:
        raise PhotometricInputError(f"valid must be a bool N x S x 1 x H x W mask, got {valid.dtype} "
                                    f"{tuple(valid.shape)}")
    n, num_sources = warped.shape[:2]
    # One SSIM call over all sources (kornia's filtering costs per call far more than per pixel here).
    repeated_target = target[:, None].expand_as(warped).flatten(0, 1)
    errors = photometric_error(warped.flatten(0, 1), repeated_target, alpha).view(n, num_sources, 1, *target.shape[-2:])
    # Invalid warps must never win the minimum; +inf in a where() keeps gradients clean.
    errors = torch.where(valid, errors, torch.full_like(errors, float("inf")))
    min_error = errors.min(dim=1).values
    any_valid = valid.any(dim=1)
    min_error = torch.where(any_valid, min_error, torch.zeros_like(min_error))
    if sources is not None:
        if sources.shape != warped.shape:
            raise PhotometricInputError(f"sources must have the warped frames' shape {tuple(warped.shape)}, "
                                        f"got {tuple(sources.shape)}")
        with torch.no_grad():  # a mask, not a loss term
            identity = photometric_error(sources.flatten(0, 1), repeated_target, alpha)
            identity = identity.view(n, num_sources, 1, *target.shape[-2:]).min(dim=1).values
            automask = min_error.detach() < identity
    else:
        automask = torch.ones_like(any_valid)
    used = any_valid & automask
    count = used.sum()
    loss = (min_error * used).sum() / count.clamp(min=1)
    return ReprojectionLoss(loss, min_error, any_valid, automask, used)


def edge_aware_smoothness(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness of mean-normalised disparity (N x 1 x h x w) against the
    image at the same size. Normalising by the mean keeps the network from lowering the term by
    shrinking the (scale-free) disparity everywhere."""
    if disparity.ndim != 4 or disparity.shape[1] != 1 or disparity.shape[-2:] != image.shape[-2:]:
        raise PhotometricInputError(f"disparity must be N x 1 x h x w at the image's size "
                                    f"{tuple(image.shape[-2:])}, got {tuple(disparity.shape)}")
    normalised = disparity / (disparity.mean(dim=(2, 3), keepdim=True) + 1e-7)
    return inverse_depth_smoothness_loss(normalised, image)


def photometric_reprojection_loss(target: torch.Tensor, sources: torch.Tensor, target_depth: torch.Tensor,
                                  T_target_to_sources: torch.Tensor, K: torch.Tensor, automask: bool = True,
                                  alpha: float = SSIM_WEIGHT) -> ReprojectionLoss:
    """Warp every source into the target with one depth map and minimum-reprojection loss.

    target N x 3 x H x W, sources N x S x 3 x H x W, target_depth N x 1 x H x W (predicted, or
    ground truth with holes), T_target_to_sources N x S x 4 x 4, K N x 3 x 3.
    """
    n, num_sources = sources.shape[:2]
    if T_target_to_sources.shape != (n, num_sources, 4, 4):
        raise PhotometricInputError(f"T_target_to_sources must be N x S x 4 x 4 = {(n, num_sources, 4, 4)}, "
                                    f"got {tuple(T_target_to_sources.shape)}")
    warped, valid = zip(*(warp_source_to_target(sources[:, s], target_depth, T_target_to_sources[:, s], K)
                          for s in range(num_sources)))
    return minimum_reprojection_loss(target, torch.stack(warped, 1), torch.stack(valid, 1),
                                     sources if automask else None, alpha)


def multi_scale_photometric_loss(target: torch.Tensor, sources: torch.Tensor, disparities: list[torch.Tensor],
                                 T_target_to_sources: torch.Tensor, K: torch.Tensor, min_depth: float,
                                 max_depth: float, smoothness_weight: float = 1e-3, automask: bool = True,
                                 alpha: float = SSIM_WEIGHT) -> tuple[torch.Tensor, dict[str, float]]:
    """The self-supervised loss over all scales: reprojection at full resolution + weighted
    smoothness at each scale's resolution, averaged over scales. Returns (loss, parts for logging)."""
    if not disparities:
        raise PhotometricInputError("disparities must hold at least one scale")
    height, width = target.shape[-2:]
    total = target.new_zeros(())
    reprojection_sum = smoothness_sum = used_sum = 0.0
    for scale, disparity in enumerate(disparities):
        full = disparity if disparity.shape[-2:] == (height, width) else functional.interpolate(
            disparity, size=(height, width), mode="bilinear", align_corners=False)
        result = photometric_reprojection_loss(target, sources, disparity_to_depth(full, min_depth, max_depth),
                                               T_target_to_sources, K, automask, alpha)
        image = target if disparity.shape[-2:] == (height, width) else functional.interpolate(
            target, size=disparity.shape[-2:], mode="area")
        smoothness = edge_aware_smoothness(disparity, image)
        total = total + result.loss + smoothness_weight * smoothness / 2 ** scale
        reprojection_sum += result.loss.item()
        smoothness_sum += smoothness.item()
        used_sum += result.used.float().mean().item()
    scales = len(disparities)
    return total / scales, {"reprojection": reprojection_sum / scales, "smoothness": smoothness_sum / scales,
                            "used_fraction": used_sum / scales}
