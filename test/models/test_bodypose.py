import numpy as np
import pytest
import torch

from ros2_pose.deploy.export import check_parity, export_onnx
from ros2_pose.models.bodypose import BodyPoseNet


def test_every_stage_predicts_19_heatmaps_and_38_pafs_at_stride_8():
    torch.manual_seed(0)
    model = BodyPoseNet(width=4, stages=3).eval()
    image = torch.randn(2, 3, 64, 96)
    stages = model.forward_stages(image)
    assert len(stages) == 3
    for heat, paf in stages:
        assert heat.shape == (2, 19, 8, 12) and paf.shape == (2, 38, 8, 12)
    out = model(image)
    assert torch.equal(out["heatmaps"], stages[-1][0])
    first = BodyPoseNet(width=4, stages=3, output_stage=1)
    first.load_state_dict(model.state_dict())
    assert torch.equal(first.eval()(image)["pafs"], stages[0][1])


def test_width_and_stage_count_are_configurable_and_checked():
    small, big = BodyPoseNet(width=4, stages=2), BodyPoseNet(width=8, stages=6)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in big.parameters())
    with pytest.raises(ValueError, match=r"\[2, 6\]"):
        BodyPoseNet(stages=7)
    with pytest.raises(ValueError, match="element-wise"):
        BodyPoseNet(width=4, layer_widths={"s2_in": 5})
    with pytest.raises(ValueError, match="multiples of 8"):
        small(torch.zeros(1, 3, 60, 64))


def test_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(1)
    model = BodyPoseNet(width=4, stages=2).eval()
    inputs = {"image": np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)}
    path = export_onnx(model, inputs, tmp_path / "bodypose.onnx", ["heatmaps", "pafs"])
    errors = check_parity(model, path, inputs)
    assert max(errors.values()) < 1e-4
