"""Heatmap decoders: (N, K, H, W) heatmaps -> keypoints (N, K, 2) in heatmap pixels + confidence (N, K).

Every decoder takes a numpy array or a torch tensor and returns the same kind. One torch
implementation serves both (numpy input runs it in float64 without autograd), so the numpy path
used by nodes and the differentiable path used in training can never drift apart. With torch input
the result is differentiable w.r.t. the heatmap values (argmax_subpixel: through the refinement
offset only; the integer peak location is piecewise constant).

Coordinates: OpenCV pixel centres, x = column, y = row (see ros2_pose.codecs.heatmaps for the map to
image pixels). A decoder never returns NaN: an all-zero heatmap decodes to its centre with
confidence 0.

- argmax_subpixel: peak cell, refined by a parabola through the 3 raw values per axis ("quadratic")
  or by a Newton step on the log heatmap with the full 2x2 Hessian ("taylor", the DARK refinement of
  Zhang et al. 2020, exact for a Gaussian). Confidence: the peak value.
- center_of_mass: mean of the grid weighted by max(h, 0), optionally only within `window` cells of
  the peak (so clutter elsewhere does not pull the estimate). Confidence: the peak value.
- soft_argmax: expectation of the grid under softmax(h / temperature) (seed 002: a low temperature
  gives sharp distributions; logits or heatmaps both work). Confidence: the softmax mass within
  `confidence_radius` cells of the estimate, in [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

DECODERS = ("argmax_subpixel", "center_of_mass", "soft_argmax")
REFINEMENTS = ("quadratic", "taylor", "none")
# log() floor for the Taylor refinement; far below any real heatmap value, so only exact zeros hit it.
_LOG_FLOOR = 1e-12


def _prepare(heatmaps) -> tuple[torch.Tensor, bool]:
    is_numpy = not isinstance(heatmaps, torch.Tensor)
    tensor = torch.from_numpy(np.asarray(heatmaps, dtype=np.float64)) if is_numpy else heatmaps
    if tensor.ndim != 4:
        raise ValueError(f"heatmaps must have shape (N, K, H, W), got {tuple(tensor.shape)}")
    if tensor.shape[-1] < 1 or tensor.shape[-2] < 1:
        raise ValueError(f"heatmaps must be at least 1x1, got {tuple(tensor.shape[-2:])}")
    if not tensor.is_floating_point():
        tensor = tensor.double()
    return tensor, is_numpy


def _finish(xy: torch.Tensor, confidence: torch.Tensor, is_numpy: bool):
    if is_numpy:
        return xy.detach().numpy(), confidence.detach().numpy()
    return xy, confidence


def _grid(height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(height, dtype=like.dtype, device=like.device)
    xs = torch.arange(width, dtype=like.dtype, device=like.device)
    return xs, ys


def argmax_subpixel(heatmaps, refinement: str = "quadratic"):
    """Peak cell + sub-pixel refinement ("quadratic", "taylor" or "none"); see the module docstring."""
    if refinement not in REFINEMENTS:
        raise ValueError(f"refinement must be one of {REFINEMENTS}, got {refinement!r}")
    h, is_numpy = _prepare(heatmaps)
    n, k, height, width = h.shape
    flat = h.reshape(n, k, -1)
    confidence, index = flat.max(dim=-1)
    ix, iy = index % width, torch.div(index, width, rounding_mode="floor")
    xy = torch.stack([ix, iy], dim=-1).to(h.dtype)
    if refinement == "none":
        return _finish(xy, confidence, is_numpy)

    padded = torch.nn.functional.pad(h, (1, 1, 1, 1), mode="replicate").reshape(n, k, -1)
    padded_width = width + 2

    def value(dx: int, dy: int) -> torch.Tensor:
        return padded.gather(-1, ((iy + 1 + dy) * padded_width + (ix + 1 + dx)).unsqueeze(-1)).squeeze(-1)

    # No refinement along an axis where the peak sits on the border: the missing neighbour would
    # be invented by the padding and bias the offset.
    can_x = (ix > 0) & (ix < width - 1)
    can_y = (iy > 0) & (iy < height - 1)
    zero = torch.zeros_like(confidence)
    if refinement == "quadratic":
        centre, left, right, up, down = value(0, 0), value(-1, 0), value(1, 0), value(0, -1), value(0, 1)
        curvature_x = left - 2 * centre + right
        curvature_y = up - 2 * centre + down
        ok_x = can_x & (curvature_x < 0)
        ok_y = can_y & (curvature_y < 0)
        dx = torch.where(ok_x, 0.5 * (left - right) / torch.where(ok_x, curvature_x, -torch.ones_like(zero)), zero)
        dy = torch.where(ok_y, 0.5 * (up - down) / torch.where(ok_y, curvature_y, -torch.ones_like(zero)), zero)
        offset = torch.stack([dx, dy], dim=-1).clamp(-0.5, 0.5)
    else:
        def log_value(dx: int, dy: int) -> torch.Tensor:
            return torch.log(value(dx, dy).clamp_min(_LOG_FLOOR))

        centre = log_value(0, 0)
        gx = (log_value(1, 0) - log_value(-1, 0)) / 2
        gy = (log_value(0, 1) - log_value(0, -1)) / 2
        hxx = log_value(1, 0) - 2 * centre + log_value(-1, 0)
        hyy = log_value(0, 1) - 2 * centre + log_value(0, -1)
        hxy = (log_value(1, 1) - log_value(1, -1) - log_value(-1, 1) + log_value(-1, -1)) / 4
        ok = can_x & can_y
        hxy = torch.where(ok, hxy, zero)  # on a border, refine the other axis alone
        det = hxx * hyy - hxy * hxy
        # A maximum needs a negative-definite Hessian; anything else keeps the cell centre.
        maximum = (hxx < 0) & (hyy < 0) & (det > 0)
        safe_det = torch.where(maximum, det, torch.ones_like(det))
        dx = torch.where(maximum & can_x, -(hyy * gx - hxy * gy) / safe_det, zero)
        dy = torch.where(maximum & can_y, -(hxx * gy - hxy * gx) / safe_det, zero)
        offset = torch.stack([dx, dy], dim=-1).clamp(-1.0, 1.0)
    return _finish(xy + offset, confidence, is_numpy)


def center_of_mass(heatmaps, window: int | None = None):
    """Weighted mean of the grid under max(h, 0); `window` (cells) limits it to around the peak."""
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 cells or None, got {window}")
    h, is_numpy = _prepare(heatmaps)
    n, k, height, width = h.shape
    xs, ys = _grid(height, width, h)
    weights = h.clamp_min(0.0)
    confidence, index = h.reshape(n, k, -1).max(dim=-1)
    if window is not None:
        px = (index % width).to(h.dtype)[..., None, None]
        py = torch.div(index, width, rounding_mode="floor").to(h.dtype)[..., None, None]
        inside = ((xs[None, None, None, :] - px).abs() <= window) & ((ys[None, None, :, None] - py).abs() <= window)
        weights = weights * inside
    mass = weights.sum(dim=(-2, -1))
    has_mass = mass > 0
    safe_mass = torch.where(has_mass, mass, torch.ones_like(mass))
    x = (weights.sum(dim=-2) * xs).sum(dim=-1) / safe_mass
    y = (weights.sum(dim=-1) * ys).sum(dim=-1) / safe_mass
    xy = torch.stack([x, y], dim=-1)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=h.dtype, device=h.device)
    xy = torch.where(has_mass[..., None], xy, centre)
    confidence = torch.where(has_mass, confidence.clamp_min(0.0), torch.zeros_like(confidence))
    return _finish(xy, confidence, is_numpy)


def soft_argmax(heatmaps, temperature: float = 1.0, confidence_radius: float = 2.0):
    """Expectation of the grid under softmax(h / temperature); see the module docstring."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    h, is_numpy = _prepare(heatmaps)
    n, k, height, width = h.shape
    xs, ys = _grid(height, width, h)
    probability = torch.softmax(h.reshape(n, k, -1) / temperature, dim=-1).reshape(n, k, height, width)
    x = (probability.sum(dim=-2) * xs).sum(dim=-1)
    y = (probability.sum(dim=-1) * ys).sum(dim=-1)
    xy = torch.stack([x, y], dim=-1)
    with torch.no_grad():
        distance2 = ((xs[None, None, None, :] - x[..., None, None]) ** 2
                     + (ys[None, None, :, None] - y[..., None, None]) ** 2)
        near = distance2 <= confidence_radius ** 2
    confidence = (probability * near).sum(dim=(-2, -1))
    return _finish(xy, confidence, is_numpy)


def decode_heatmaps(heatmaps, method: str = "argmax_subpixel", **options):
    """Decode with the decoder named `method` (one of DECODERS), passing `options` on; for configs."""
    decoders = {"argmax_subpixel": argmax_subpixel, "center_of_mass": center_of_mass, "soft_argmax": soft_argmax}
    if method not in decoders:
        raise ValueError(f"unknown heatmap decoder {method!r}; expected one of {DECODERS}")
    return decoders[method](heatmaps, **options)
