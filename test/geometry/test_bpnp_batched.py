"""Issue 6: the differentiable PnP layers solve and differentiate a batch of 24 drone poses to the
same poses and keypoint gradients as one sample at a time (what `ros2-pose bench bpnp` times, batch
24 against 24 x batch 1). Tolerances: poses 1e-8, gradients 1e-6 relative to their largest entry
(float64; the batched and single solves run the same iterations, so they differ only by rounding)."""
import pytest
import torch

from ros2_pose.benchmarks.bpnp import make_problem
from ros2_pose.geometry.bpnp import bpnp, epnp

POSE_ATOL = 1e-8
GRADIENT_RTOL = 1e-6


def layer_output(layer: str, keypoints, points, K):
    if layer == "epnp":
        rotation, translation = epnp(keypoints, points, K)
        return torch.cat([rotation.flatten(1), translation], dim=-1)
    return bpnp(keypoints, points, K, variant="exact" if layer == "bpnp" else "faster")


@pytest.mark.parametrize("layer", ["bpnp", "bpnp_faster", "epnp"])
@pytest.mark.parametrize("drone", ["drone_large", "drone_small"])
def test_batch_of_24_matches_one_sample_at_a_time(layer, drone, one_torch_thread):
    keypoints, points, K = make_problem(24, drone, noise_px=1.0, seed=3)
    # A weighted sum, so every output entry gets its own gradient weight.
    weights = torch.linspace(0.5, 1.5, layer_output(layer, keypoints[:1], points, K).shape[-1], dtype=torch.float64)
    batched_x = keypoints.clone().requires_grad_(True)
    batched = layer_output(layer, batched_x, points, K)
    (batched * weights).sum().backward()
    for b in range(24):
        single_x = keypoints[b:b + 1].clone().requires_grad_(True)
        single = layer_output(layer, single_x, points, K)
        (single * weights).sum().backward()
        torch.testing.assert_close(batched[b:b + 1].detach(), single.detach(), atol=POSE_ATOL, rtol=0)
        scale = single_x.grad.abs().max()
        torch.testing.assert_close(batched_x.grad[b:b + 1], single_x.grad, atol=GRADIENT_RTOL * scale, rtol=0)
