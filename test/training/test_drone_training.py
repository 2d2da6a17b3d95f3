"""Drone keypoint training pieces: rows per drone model, crops and their cameras, heatmap supervision of
every backbone output, and the PnP-in-the-loop terms of l_m / l_p for BPnP, BPnP-faster and EPnP."""
import numpy as np
import pytest
import torch

from ros2_pose.codecs.heatmaps import encode_gaussian_heatmaps, image_to_heatmap_coordinates
from ros2_pose.geometry.bpnp import project_points_torch
from ros2_pose.geometry.transforms import axis_angle_to_matrix
from ros2_pose.sim.drone import MODELS
from ros2_pose.training.drone import (DroneTrainingError, build_network, check_config, drone_model_config,
                                      heatmap_supervision, pnp_terms, rows_of_drone_model, sample_crops)
from ros2_pose.training.tasks.drone import DEFAULTS

K = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])


def synthetic_arrays(n=4, seed=0):
    """Rows of a drone dataset made from known poses (keypoints = projections)."""
    rng = np.random.default_rng(seed)
    names = ["drone_large", "drone_small"]
    out = {k: [] for k in ("image", "keypoints", "visibility", "keypoints_3d", "box", "K", "rotation", "translation")}
    for i in range(n):
        points = MODELS[names[i % 2]].keypoints()
        R = axis_angle_to_matrix(rng.normal(0, 0.4, 3))
        t = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), 1.5 if i % 2 == 0 else 0.6])
        cam = points @ R.T + t
        xy = cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]
        out["image"].append(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
        out["keypoints"].append(xy)
        out["visibility"].append(np.full(10, 2, np.uint8))
        out["keypoints_3d"].append(points)
        out["box"].append(np.concatenate([xy.min(0), xy.max(0)]))
        out["K"].append(K)
        out["rotation"].append(R)
        out["translation"].append(t)
    return {k: np.stack(v) for k, v in out.items()}


def test_rows_of_each_drone_model():
    arrays = synthetic_arrays(5)
    assert rows_of_drone_model(arrays, "drone_large").tolist() == [0, 2, 4]
    assert rows_of_drone_model(arrays, "drone_small").tolist() == [1, 3]


@pytest.mark.parametrize("rng", [None, np.random.default_rng(1)])
def test_crop_keypoints_are_the_projections_with_the_crop_camera(rng):
    arrays = synthetic_arrays(4)
    crop_config = dict(DEFAULTS["crop"], whole_image_fraction=0.5)
    batch = sample_crops(arrays, np.arange(4), 32, crop_config, rng)
    assert batch["crop"].shape == (4, 32, 32, 3) and batch["crop"].dtype == np.uint8
    projected = project_points_torch(torch.from_numpy(arrays["keypoints_3d"]), torch.from_numpy(arrays["rotation"]),
                                     torch.from_numpy(arrays["translation"]), torch.from_numpy(batch["K_crop"]))
    np.testing.assert_allclose(projected.numpy(), batch["keypoints"], atol=1e-6)
    if rng is None:  # the plain crop puts the drone in the middle, inside the margin
        assert (batch["keypoints"] > 0).all() and (batch["keypoints"] < 31).all()


@pytest.mark.parametrize("backbone,kwargs,maps", [
    ("hourglass", {"width": 4, "num_stacks": 2, "levels": 1}, 2),
    ("higherhrnet", {"width": 4, "exchange_blocks": [1, 1], "units_per_branch": 1, "stage1_units": 1}, 2),
    ("hrnet", {"width": 4, "exchange_blocks": [1, 1], "units_per_branch": 1, "stage1_units": 1}, 1)])
def test_heatmap_supervision_covers_every_output_and_is_zero_on_targets(backbone, kwargs, maps):
    model = build_network({"backbone": backbone, "kwargs": kwargs}, 10)
    arrays = synthetic_arrays(2)
    batch = sample_crops(arrays, np.arange(2), 32, DEFAULTS["crop"], None)
    outputs = model(torch.rand(2, 3, 32, 32))
    loss = heatmap_supervision(outputs, batch["keypoints"], arrays["visibility"], 32, 1.0, "l1")
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.stem.parameters())
    # Perfect outputs: the Gaussian targets themselves give l_h = 0.
    perfect = {}
    for key, value in outputs.items():
        if key == "stack_heatmaps":
            continue
        stride = 32 // value.shape[-1]
        target, _ = encode_gaussian_heatmaps(image_to_heatmap_coordinates(batch["keypoints"], stride),
                                             value.shape[-2], value.shape[-1], 1.0)
        perfect[key] = torch.from_numpy(target)
    if "stack_heatmaps" in outputs:
        perfect["stack_heatmaps"] = torch.stack([perfect["heatmaps"]] * maps, dim=1)
    assert heatmap_supervision(perfect, batch["keypoints"], arrays["visibility"], 32, 1.0, "l1").item() < 1e-6
    assert drone_model_config({"backbone": backbone, "input_size": 32, "kwargs": kwargs}).outputs[0].shape[-1] == \
        32 // type(model).output_stride


@pytest.mark.parametrize("layer", ["bpnp", "bpnp_faster", "epnp"])
def test_pnp_terms_vanish_on_true_keypoints_and_pull_wrong_ones(layer):
    arrays = synthetic_arrays(4)
    batch = sample_crops(arrays, np.arange(4), 64, DEFAULTS["crop"], None)
    stride = 4
    target, _ = encode_gaussian_heatmaps(image_to_heatmap_coordinates(batch["keypoints"], stride), 16, 16, 1.0)
    heatmaps = torch.from_numpy(target).double().requires_grad_(True)
    config = {"train_decoder": "center_of_mass", "pnp": layer}
    args = (torch.from_numpy(arrays["keypoints_3d"]), torch.from_numpy(batch["K_crop"]),
            torch.from_numpy(arrays["rotation"]), torch.from_numpy(arrays["translation"]), 64, config)
    l_proj, l_reg, count = pnp_terms(heatmaps * 20, stride, *args)
    assert count == 4 and l_proj.item() < 1e-2 and l_reg.item() < 1e-2
    shifted = torch.roll(heatmaps, shifts=2, dims=-1) * 20
    worse, _, _ = pnp_terms(shifted, stride, *args)
    assert worse.item() > 10 * l_proj.item()
    worse.backward()
    assert heatmaps.grad is not None and torch.isfinite(heatmaps.grad).all() and heatmaps.grad.abs().sum() > 0


def test_config_errors_name_the_choices():
    good = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    check_config(good)
    for key, value, message in [("drone_model", "drone_huge", "drone_model must be one of"),
                                ("loss", "l_x", "loss must be one of"), ("pnp", "p3p", "pnp must be one of"),
                                ("train_decoder", "argmax_subpixel", "differentiable")]:
        with pytest.raises(DroneTrainingError, match=message):
            check_config(dict(good, **{key: value}))
    with pytest.raises(DroneTrainingError, match="backbone"):
        check_config(dict(good, model={"backbone": "resnet", "input_size": 64, "kwargs": None}))


def test_init_weights_come_from_a_shipped_model_or_from_inside_the_configs_folder(tmp_path):
    from ros2_pose.resources import model_dir
    from ros2_pose.training.run import ConfigError, resolve_init_weights

    assert resolve_init_weights("drone_pose_large", tmp_path) == model_dir("drone_pose_large") / "model.pt"
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "model.pt").write_bytes(b"")
    (tmp_path / "run" / "checkpoint_best.pt").write_bytes(b"")
    assert resolve_init_weights("./run/model", tmp_path) == (tmp_path / "run" / "model" / "model.pt").resolve()
    assert resolve_init_weights("run/checkpoint_best.pt", tmp_path) == (tmp_path / "run" / "checkpoint_best.pt").resolve()
    with pytest.raises(ConfigError, match="outside"):
        resolve_init_weights("../elsewhere/model.pt", tmp_path / "run")
    with pytest.raises(ConfigError, match="not a weights file"):
        resolve_init_weights("./run", tmp_path)
