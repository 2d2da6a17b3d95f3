"""Depth and ego-motion networks: output shapes and ranges, early/late fusion, the frozen depth
encoder of the pose-from-depth-features head, input checks and ONNX export parity."""
import numpy as np
import pytest
import torch

from ros2_pose.models.depth_egomotion import (POSE_SCALE, DepthNet, PoseFromDepthFeatures, PoseNet,
                                              disparity_to_depth)

TINY = (8, 16, 24, 32)  # 4 stages: 64x48 -> 4x3


def _images(n, seed=0, shape=(3, 48, 64)):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def test_disparity_to_depth_spans_the_configured_range():
    depth = disparity_to_depth(torch.tensor([0.0, 0.5, 1.0]), 0.1, 10.0)
    torch.testing.assert_close(depth[[0, 2]], torch.tensor([10.0, 0.1]))
    assert 0.1 < depth[1] < 10.0
    with pytest.raises(ValueError, match="min_depth"):
        disparity_to_depth(torch.ones(1), 5.0, 1.0)


def test_depth_net_gives_multi_scale_disparity_and_bounded_depth():
    net = DepthNet(TINY, num_scales=3, min_depth=0.2, max_depth=8.0)
    out = net(_images(2))
    assert out["disparity"].shape == (2, 1, 48, 64)
    assert out["disparity_1"].shape == (2, 1, 24, 32) and out["disparity_2"].shape == (2, 1, 12, 16)
    assert "disparity_3" not in out
    assert torch.all((out["disparity"] >= 0) & (out["disparity"] <= 1))
    assert torch.all((out["depth"] >= 0.2 - 1e-5) & (out["depth"] <= 8.0 + 1e-4))
    assert [d.shape[-1] for d in net.disparities(_images(1))] == [64, 32, 16]
    with pytest.raises(ValueError, match="multiple of 16"):
        net(_images(1, shape=(3, 40, 64)))
    with pytest.raises(ValueError, match="num_scales"):
        DepthNet(TINY, num_scales=5)


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_pose_net_gives_small_6dof_per_source_and_depends_on_the_frames(fusion):
    net = PoseNet(num_sources=2, fusion=fusion, channels=TINY, head_width=16)
    target, sources = _images(3, 1), _images(3, 2).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    sources[:, 1] = _images(3, 3)
    pose = net(target, sources)["pose"]
    assert pose.shape == (3, 2, 6) and torch.all(torch.isfinite(pose))
    assert pose.abs().max() < 20 * POSE_SCALE  # near-zero motion before training
    swapped = net(target, sources.flip(1))["pose"]
    assert not torch.allclose(swapped, pose)
    with pytest.raises(ValueError, match="sources must be"):
        net(target, sources[:, :1])
    with pytest.raises(ValueError, match="fusion"):
        PoseNet(fusion="middle")


@pytest.mark.parametrize("fusion", ["early", "late"])
def test_untrained_networks_follow_their_input(fusion):
    """He initialisation (models.depth_egomotion._initialize): at the shipped size (5 stages,
    96x128) an untrained network's output must vary with the images about as much as its own
    size. PyTorch's default initialisation gave a PoseNet whose output varied by 2e-6 between
    inputs against a mean of 4e-4 (ratio 0.004); the pair trained from it never learned motion."""
    torch.manual_seed(0)
    channels = [8, 16, 32, 64, 128]
    target, sources = torch.rand(8, 3, 96, 128), torch.rand(8, 2, 3, 96, 128)
    with torch.no_grad():
        pose = PoseNet(2, fusion=fusion, channels=channels, head_width=64)(target, sources)["pose"]
        disparity = DepthNet(channels, num_scales=1).disparities(target)[0]
    assert pose.abs().max() < POSE_SCALE  # still near-zero motion before training
    assert (pose.std(0) / pose.abs().mean(0)).mean() > 0.2
    # disparity starts mid-range (sigmoid ~0.5) and differs between images
    assert 0.4 < disparity.mean() < 0.6 and disparity.std(0).mean() > 1e-4


def test_late_fusion_shares_one_encoder_across_frames():
    early, late = PoseNet(1, "early", TINY), PoseNet(1, "late", TINY)
    assert early.encoder.stages[0][0][0].in_channels == 6
    assert late.encoder.stages[0][0][0].in_channels == 3


def test_pose_from_depth_features_trains_only_its_head():
    depth_net = DepthNet(TINY)
    head = PoseFromDepthFeatures.from_depth_net(depth_net, num_sources=1, head_width=16)
    for (name, a), b in zip(depth_net.encoder.state_dict().items(), head.depth_encoder.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    head.train()
    assert not head.depth_encoder.training and head.head.training
    pose = head(_images(2, 4), _images(2, 5)[:, None])["pose"]
    pose.pow(2).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in head.depth_encoder.parameters())
    assert all(p.grad is not None for p in head.head.parameters())
    trainable = [p for p in head.parameters() if p.requires_grad]
    assert trainable and sum(p.numel() for p in trainable) == sum(p.numel() for p in head.head.parameters())


def test_pose_from_depth_features_taps_the_chosen_encoder_stage():
    depth_net = DepthNet(TINY)
    levels = len(depth_net.encoder.channels)
    deepest = PoseFromDepthFeatures.from_depth_net(depth_net, 2, 16)
    assert deepest.feature_level == levels - 1
    assert deepest.head.body[0][0].in_channels == 3 * TINY[-1]
    shallow = PoseFromDepthFeatures.from_depth_net(depth_net, 2, 16, feature_level=1)
    assert shallow.head.body[0][0].in_channels == 3 * TINY[1]
    # the head halves the stage-1 map down to the deepest stage's size before averaging
    strided = [m for m in shallow.head.body.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == levels - 2
    target, sources = _images(2, 4), _images(4, 5).view(2, 2, 3, 48, 64)
    assert shallow(target, sources)["pose"].shape == (2, 2, 6)
    # its output depends on the tapped stage only: changing a deeper stage's weights changes nothing
    before = shallow(target, sources)["pose"]
    with torch.no_grad():
        shallow.depth_encoder.stages[-1][0][0].weight.add_(1.0)
    torch.testing.assert_close(shallow(target, sources)["pose"], before)
    with pytest.raises(ValueError, match="feature_level must be in 0..3"):
        PoseFromDepthFeatures(1, TINY, 16, feature_level=levels)


@pytest.mark.parametrize("which", ["depth", "pose_late", "pose_from_depth", "pose_from_depth_stage1"])
def test_networks_export_to_onnx_with_parity(tmp_path, which):
    pytest.importorskip("onnxruntime")
    from ros2_pose.deploy.export import check_parity, export_onnx

    torch.manual_seed(0)
    if which == "depth":
        model, outputs = DepthNet(TINY, num_scales=2), ["depth", "disparity", "disparity_1"]
        inputs = lambda n: {"image": _images(n, n)}
    else:
        model = {"pose_late": PoseNet(2, "late", TINY, 16), "pose_from_depth": PoseFromDepthFeatures(2, TINY, 16),
                 "pose_from_depth_stage1": PoseFromDepthFeatures(2, TINY, 16, feature_level=1)}[which]
        outputs = ["pose"]
        inputs = lambda n: {"target": _images(n, n), "sources": _images(2 * n, n + 7).view(n, 2, 3, 48, 64)}
    path = export_onnx(model.eval(), inputs(1), tmp_path / f"{which}.onnx", outputs)
    for batch in (1, 2):
        errors = check_parity(model, path, inputs(batch))
        assert set(errors) == set(outputs)
        assert max(errors.values()) < 1e-4, errors
    assert np.isfinite(list(errors.values())).all()
