import pytest
import torch

from ros2_pose.models.bodypose import BodyPoseNet
from ros2_pose.pruning.filter_pruning import PruningError, PruningOptions, prune_model


def _zero_filters(model, layer, indices):
    with torch.no_grad():
        model.layers[layer].weight[indices] = 0
        model.layers[layer].bias[indices] = 0


def test_planted_zero_filters_are_removed_and_outputs_are_unchanged():
    torch.manual_seed(0)
    model = BodyPoseNet(width=8, stages=2).eval()
    _zero_filters(model, "b3", [1, 4, 9, 15])          # b3 has 16 filters
    _zero_filters(model, "s1_c0", [0, 2])
    # s2_in and s2_r2 are added element-wise: only filters zero in both can go (union criterion).
    _zero_filters(model, "s2_in", [3, 5, 7])
    _zero_filters(model, "s2_r2", [3, 5])
    options = PruningOptions(threshold=0.01, granularity=1, min_filters=1)
    pruned, report = prune_model(model, options)
    assert isinstance(pruned, BodyPoseNet)
    assert report["kept"]["b3"] == [i for i in range(16) if i not in (1, 4, 9, 15)]
    assert report["kept"]["s1_c0"] == [i for i in range(16) if i not in (0, 2)]
    assert report["kept"]["s2_in"] == [i for i in range(16) if i not in (3, 5)]
    assert pruned.widths["b3"] == 12 and pruned.widths["s2_r2"] == 14
    assert report["parameters_after"] < report["parameters_before"]
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for (h0, p0), (h1, p1) in zip(model.forward_stages(image), pruned.forward_stages(image)):
            torch.testing.assert_close(h1, h0, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(p1, p0, atol=1e-5, rtol=1e-5)
    # The pruned graph is described by the constructor kwargs alone: rebuild it and reload.
    rebuilt = BodyPoseNet(**pruned.kwargs)
    rebuilt.load_state_dict(pruned.state_dict())


def test_equalization_criteria_granularity_min_filters_and_exclusions():
    torch.manual_seed(0)
    model = BodyPoseNet(width=8, stages=2)
    _zero_filters(model, "s2_in", [3, 5, 7])
    _zero_filters(model, "s2_r2", [3, 5])
    _zero_filters(model, "b0", [0, 1, 2])              # b0 has 8 filters
    loose = PruningOptions(threshold=0.01, granularity=1, min_filters=1)
    _, inter = prune_model(model, PruningOptions(**{**loose.__dict__, "equalization_criterion": "intersection"}))
    assert len(inter["kept"]["s2_in"]) == 13
    _, geo = prune_model(model, PruningOptions(**{**loose.__dict__, "equalization_criterion": "geometric_mean"}))
    assert len(geo["kept"]["s2_in"]) == 13
    _, gran = prune_model(model, PruningOptions(threshold=0.01, granularity=4, min_filters=1))
    assert len(gran["kept"]["b0"]) == 8 and len(gran["kept"]["s2_in"]) == 16   # 5 -> 8, 14 -> 16
    _, minimum = prune_model(model, PruningOptions(threshold=0.01, granularity=1, min_filters=7))
    assert len(minimum["kept"]["b0"]) == 7
    _, excluded = prune_model(model, PruningOptions(**{**loose.__dict__, "excluded_layers": ("b0",)}))
    assert len(excluded["kept"]["b0"]) == 8
    _, l2 = prune_model(model, PruningOptions(**{**loose.__dict__, "normalizer": "L2"}))
    assert len(l2["kept"]["b0"]) == 5


def test_bad_options_are_refused():
    with pytest.raises(PruningError, match="normalizer"):
        PruningOptions(normalizer="L1")
    with pytest.raises(PruningError, match="excluded layers"):
        prune_model(BodyPoseNet(width=4), PruningOptions(excluded_layers=("conv9",)))
