"""Training a drone keypoint heatmap network with l_h, l_m or l_p (seed 003: BPnP and HigherHRNet on UAVA).

One network per drone model (`drone_model: drone_large | drone_small`), as the seed trains and
reports M2ED and Tello separately: the two aircraft have different 3D keypoints and proportions, a
network that only ever sees one of them does not have to tell a near Tello from a far Mavic (same
pixel size, similar silhouette), and each can get the backbone that suits it (HigherHRNet for the
small one, per the seed's Table 4). The `drone_pose` node loads one folder per model.

Crop stage: every sample is a square crop around the drone's ground-truth box, jittered in scale
and centre (`crop`), so a drone of a few pixels fills the network input like a near one does; a
fraction of samples (`crop.whole_image_fraction`) is the whole image letterboxed, which teaches the
coarse pass that finds the box when no detector gives one (see ros2_pose.pipelines.drone). For far
small drones, build the dataset at the camera's resolution (`--image-size 640 480`) so the crop has
real pixels to work with.

Losses (ros2_pose.losses.keypoints): "l_h" heatmap loss on Gaussian targets (L1 by default: the
seed's best; every hourglass stack and both HigherHRNet resolutions are supervised); "l_m" =
l_h + beta * l_proj and "l_p" = l_reg + l_proj, with the pose from a differentiable PnP layer
(`pnp`: "bpnp" exact, "bpnp_faster", or "epnp") on the keypoints decoded by `train_decoder`
(centre of mass, the seed's choice; soft_argmax also works). PnP terms use only the samples whose
ten projected keypoints lie inside the crop (the seed's filter: soft decoding cannot reach points
outside the map). `init_weights` starts from a trained l_h model (the seed's Table 5 schedule: l_h
first, then l_m).

Data: a drone dataset (`ros2-pose dataset build drone`, fields in ros2_pose/data/builders/drone.py),
held in memory as arrays; crops are cut per batch with cv2.warpAffine.
"""
from __future__ import annotations

import dataclasses

from typing import Any, Callable

import numpy as np
import torch

from ros2_pose.codecs.decoders import decode_heatmaps
from ros2_pose.codecs.heatmaps import encode_gaussian_heatmaps, image_to_heatmap_coordinates
from ros2_pose.geometry.bpnp import BPnPError, bpnp, epnp, pose_to_rotation_translation, project_points_torch
from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.losses.keypoints import heatmap_loss
from ros2_pose.models.keypoint_backbones import HigherHRNet, HRNet, StackedHourglass
from ros2_pose.pipelines.drone import (CropSettings, DroneModelInfo, PnPSettings, crop_around_box,
                                       decode_crop_keypoints, network_input, solve_drone_pose)
from ros2_pose.training.augment import photometric_augment
from ros2_pose.training.loop import fit

BACKBONES = {"hourglass": StackedHourglass, "hrnet": HRNet, "higherhrnet": HigherHRNet}
LOSSES = ("l_h", "l_m", "l_p")
PNP_LAYERS = ("bpnp", "bpnp_faster", "epnp")
# The checkpoint kept is the one with the highest mean of these validation rates (%), the issue's
# targets: ADD5 alone stays at 0 for many epochs of a short CPU schedule (5 % of the small drone's
# diagonal is 7 mm) and would keep the first epoch's weights.
SELECTION_METRICS = ("ACC5", "ADD5", "Proj5")
# A dataset row belongs to a drone model when its 3D keypoints match the model's to this (metres).
_MODEL_MATCH_M = 1e-4


class DroneTrainingError(ValueError):
    """A drone training config or dataset that cannot be trained on."""


def check_config(config: dict[str, Any]) -> None:
    from ros2_pose.sim.drone import MODELS

    if config["drone_model"] not in MODELS:
        raise DroneTrainingError(f"drone_model must be one of {sorted(MODELS)}, got {config['drone_model']!r}")
    if config["loss"] not in LOSSES:
        raise DroneTrainingError(f"loss must be one of {LOSSES}, got {config['loss']!r}")
    if config["pnp"] not in PNP_LAYERS:
        raise DroneTrainingError(f"pnp must be one of {PNP_LAYERS}, got {config['pnp']!r}")
    if config["model"]["backbone"] not in BACKBONES:
        raise DroneTrainingError(f"model.backbone must be one of {sorted(BACKBONES)}, got {config['model']['backbone']!r}")
    if config["train_decoder"] not in ("center_of_mass", "soft_argmax"):
        raise DroneTrainingError("train_decoder must be center_of_mass or soft_argmax (differentiable in the "
                                 f"keypoint position), got {config['train_decoder']!r}")


def build_network(model_config: dict[str, Any], num_keypoints: int) -> torch.nn.Module:
    """The backbone named by `model_config['backbone']` with `model_config['kwargs']`."""
    cls = BACKBONES[model_config["backbone"]]
    return cls(num_keypoints, **dict(model_config.get("kwargs") or {}))


def drone_model_config(model_config: dict[str, Any], num_keypoints: int | None = None):
    """model.yaml of a trained network (for ros2_pose.deploy.model_spec.write_model_folder)."""
    from ros2_pose.deploy.model_spec import parse_model_config
    from ros2_pose.sim.drone import KEYPOINT_NAMES

    k = num_keypoints or len(KEYPOINT_NAMES)
    size = int(model_config["input_size"])
    cls = BACKBONES[model_config["backbone"]]
    cells = size // cls.output_stride
    kwargs = {"num_keypoints": k, **dict(model_config.get("kwargs") or {})}
    return parse_model_config({
        "architecture": f"ros2_pose.models.keypoint_backbones:{cls.__name__}", "kwargs": kwargs,
        "inputs": [{"name": "image", "shape": ["batch", 3, size, size]}],
        "outputs": [{"name": "heatmaps", "shape": ["batch", k, cells, cells]}]})


def drone_model_info(config: dict[str, Any]) -> DroneModelInfo:
    """The drone.yaml written beside a trained network."""
    from ros2_pose.sim.drone import KEYPOINT_NAMES, MODELS

    crop = config["crop"]
    return DroneModelInfo(config["drone_model"], KEYPOINT_NAMES, MODELS[config["drone_model"]].keypoints(),
                          CropSettings(int(config["model"]["input_size"]), float(crop["margin"]), float(crop["min_box_px"])),
                          BACKBONES[config["model"]["backbone"]].output_stride, config["model"]["backbone"])


def keypoint_template(arrays: dict[str, np.ndarray], info: DroneModelInfo) -> np.ndarray:
    """(K, 2) crop pixels: the mean of each keypoint's position in the crops around the samples'
    ground-truth boxes (the inference crop, no jitter). Placed in a crop, it is the pose estimate of
    a model that ignores the image (DronePosePipeline(keypoint_source="template"))."""
    if len(arrays["box"]) == 0:
        raise DroneTrainingError("a keypoint template needs at least one sample")
    return np.mean([info.crop.crop(box).image_to_crop(points)
                    for box, points in zip(arrays["box"], arrays["keypoints"])], axis=0)


def calibrated_model_info(model_folder: str | Path, config: dict[str, Any], train: dict[str, np.ndarray],
                          val: dict[str, np.ndarray], max_frames: int = 200) -> DroneModelInfo:
    """drone_model_info with the coarse pass's box scale calibrated on (up to `max_frames`)
    validation frames of this drone model, run through the exported ONNX model as the node runs it,
    and the keypoint template of its training samples."""
    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.pipelines.drone import DronePosePipeline, calibrate_coarse_box_scale

    info = drone_model_info(config)
    template = keypoint_template(select_rows(train, rows_of_drone_model(train, config["drone_model"])), info)
    info = dataclasses.replace(info, keypoint_template=template)
    rows = rows_of_drone_model(val, config["drone_model"])[:max_frames]
    pipeline = DronePosePipeline([(create_runner(model_folder, backend="onnxruntime", intra_op_threads=1), info)],
                                 decoder=config["eval"]["decoder"])
    scale = calibrate_coarse_box_scale(pipeline, config["drone_model"], (val["image"][i] for i in rows),
                                       (val["box"][i] for i in rows))
    return info if scale is None else dataclasses.replace(info, coarse_box_scale=scale)


def rows_of_drone_model(arrays: dict[str, np.ndarray], drone_model: str) -> np.ndarray:
    """Indices of the rows whose tracked drone is `drone_model` (matched by its 3D keypoints)."""
    from ros2_pose.sim.drone import MODELS

    reference = MODELS[drone_model].keypoints()
    points = np.asarray(arrays["keypoints_3d"], np.float64)
    if points.shape[1:] != reference.shape:
        raise DroneTrainingError(f"dataset keypoints_3d are {points.shape[1:]}, {drone_model} has {reference.shape}")
    return np.flatnonzero(np.abs(points - reference).max(axis=(1, 2)) < _MODEL_MATCH_M)


def select_rows(arrays: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.asarray(values)[rows] for name, values in arrays.items()}


def sample_crops(arrays: dict[str, np.ndarray], idx: np.ndarray, size: int, crop_config: dict[str, Any],
                 rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """Crops (B, S, S, 3) u8 with their cameras K_crop (B, 3, 3) and keypoints (B, K, 2) in crop pixels.

    `rng` None: the plain crop around the box (validation); otherwise jittered crops, and whole
    letterboxed images with probability `whole_image_fraction`."""
    crops, cameras, keypoints = [], [], []
    for i in idx:
        image = arrays["image"][i]
        height, width = image.shape[:2]
        box = np.asarray(arrays["box"][i], np.float64)
        if rng is not None and rng.uniform() < crop_config["whole_image_fraction"]:
            crop = RoiCrop.whole_image(width, height, size)
        else:
            if rng is not None:
                side = max(box[2] - box[0], box[3] - box[1], 1.0)
                scale = np.exp(rng.uniform(-1, 1) * crop_config["jitter_scale"])
                shift = rng.uniform(-1, 1, 2) * crop_config["jitter_center"] * side
                centre = (box[:2] + box[2:]) / 2 + shift
                half = (box[2:] - box[:2]) / 2 * scale
                box = np.concatenate([centre - half, centre + half])
            crop = crop_around_box(box, size, crop_config["margin"], crop_config["min_box_px"])
        crops.append(crop.apply(image))
        A = np.vstack([crop.matrix, [0.0, 0.0, 1.0]])
        cameras.append(A @ np.asarray(arrays["K"][i], np.float64))
        keypoints.append(crop.image_to_crop(arrays["keypoints"][i]))
    return {"crop": np.stack(crops), "K_crop": np.stack(cameras), "keypoints": np.stack(keypoints)}


def heatmap_supervision(outputs: dict[str, torch.Tensor], keypoints_crop: np.ndarray, visibility: np.ndarray,
                        size: int, sigma: float, kind: str) -> torch.Tensor:
    """l_h over every supervised output: all hourglass stacks, both HigherHRNet resolutions."""
    if "stack_heatmaps" in outputs:
        maps = list(outputs["stack_heatmaps"].unbind(dim=1))
        strides = [size // maps[0].shape[-1]] * len(maps)
    elif "heatmaps_half" in outputs:
        maps = [outputs["heatmaps_quarter"], outputs["heatmaps_half"]]
        strides = [size // m.shape[-1] for m in maps]
    else:
        maps = [outputs["heatmaps"]]
        strides = [size // maps[0].shape[-1]]
    losses = []
    for predicted, stride in zip(maps, strides):
        cells = predicted.shape[-2:]
        target, weights = encode_gaussian_heatmaps(image_to_heatmap_coordinates(keypoints_crop, stride),
                                                   cells[0], cells[1], sigma, visibility)
        losses.append(heatmap_loss(predicted, torch.from_numpy(target), kind, torch.from_numpy(weights)))
    return torch.stack(losses).mean()


def differentiable_pose(keypoints: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor,
                        layer: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R (M,3,3), t (M,3), kept item indices (M,)) from a differentiable PnP layer.

    BPnP's forward pass has no pose for degenerate keypoints (early in training they can collapse);
    those items are dropped one by one rather than failing the batch."""
    if layer == "epnp":
        rotation, translation = epnp(keypoints, points_3d, K)
        finite = torch.isfinite(rotation).flatten(1).all(1) & torch.isfinite(translation).all(1)
        kept = torch.nonzero(finite).flatten()
        return rotation[kept], translation[kept], kept
    variant = "exact" if layer == "bpnp" else "faster"
    try:
        pose = bpnp(keypoints, points_3d, K, variant=variant)
        kept = torch.arange(len(keypoints))
    except BPnPError:
        poses, indices = [], []
        for b in range(len(keypoints)):
            try:
                poses.append(bpnp(keypoints[b:b + 1], points_3d[b:b + 1], K[b:b + 1], variant=variant))
                indices.append(b)
            except BPnPError:
                continue
        if not poses:
            empty = keypoints.new_zeros((0, 3))
            return keypoints.new_zeros((0, 3, 3)), empty, torch.zeros(0, dtype=torch.long)
        pose, kept = torch.cat(poses), torch.tensor(indices)
    rotation, translation = pose_to_rotation_translation(pose)
    return rotation, translation, kept


def pnp_terms(heatmaps: torch.Tensor, stride: int, points_3d: torch.Tensor, K_crop: torch.Tensor,
              rotation_true: torch.Tensor, translation_true: torch.Tensor, size: int, config: dict[str, Any]):
    """l_proj and l_reg (summed squared crop pixels, mean over the samples that have a pose) and the
    number of samples they cover. Computed from (R, t) rather than losses.keypoints' (rvec, t) form
    because EPnP returns rotation matrices."""
    xy, _ = decode_heatmaps(heatmaps, config["train_decoder"])
    predicted = xy * stride + (stride - 1) / 2.0  # heatmap -> crop pixels (codecs.heatmaps' map, in torch)
    truth = project_points_torch(points_3d, rotation_true, translation_true, K_crop)
    inside = ((truth > -0.5) & (truth < size - 0.5)).all(dim=-1).all(dim=-1)
    rows = torch.nonzero(inside).flatten()
    zero = heatmaps.sum() * 0.0
    if len(rows) == 0:
        return zero, zero, 0
    rotation, translation, kept = differentiable_pose(predicted[rows], points_3d[rows], K_crop[rows], config["pnp"])
    if len(kept) == 0:
        return zero, zero, 0
    rows = rows[kept]
    projected = project_points_torch(points_3d[rows], rotation, translation, K_crop[rows])
    l_proj = (projected - truth[rows]).pow(2).sum(dim=(-2, -1)).mean()
    l_reg = (predicted[rows] - projected).pow(2).sum(dim=(-2, -1)).mean()
    return l_proj, l_reg, len(rows)


def predict_poses(model: torch.nn.Module, arrays: dict[str, np.ndarray], info: DroneModelInfo, decoder: str,
                  pnp: PnPSettings, batch_size: int = 32) -> tuple[list, np.ndarray]:
    """Poses (RigidTransform or None) of ground-truth-box crops through the inference path, and the
    mean keypoint error in dataset-image pixels per sample (over labelled keypoints)."""
    model.eval()
    poses, errors = [], []
    rows = np.arange(len(arrays["image"]))
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            idx = rows[start:start + batch_size]
            crops = [info.crop.crop(arrays["box"][i]) for i in idx]
            images = np.stack([c.apply(arrays["image"][i]) for c, i in zip(crops, idx)])
            heatmaps = model(torch.from_numpy(network_input(images)))["heatmaps"].numpy()
            xy, confidence = decode_crop_keypoints(heatmaps, info.output_stride, decoder)
            for crop, i, points, conf in zip(crops, idx, xy, confidence):
                image_points = crop.crop_to_image(points)
                labelled = np.asarray(arrays["visibility"][i]) > 0
                difference = np.linalg.norm(image_points - arrays["keypoints"][i], axis=1)
                errors.append(float(difference[labelled].mean()) if labelled.any() else np.nan)
                status, result, _ = solve_drone_pose(image_points, conf, info.keypoints_3d, arrays["K"][i], pnp)
                poses.append(result.pose if status == "ok" else None)
    return poses, np.asarray(errors)


def validation_metrics(model, val: dict[str, np.ndarray], info: DroneModelInfo, config: dict[str, Any]) -> dict[str, float]:
    from ros2_pose.evaluation.drone import summarise_with_cameras
    from ros2_pose.geometry.camera import CameraModel

    pnp = PnPSettings(config["eval"]["pnp_method"], ransac=bool(config["eval"]["ransac"]),
                      confidence_threshold=config["eval"]["confidence_threshold"])
    poses, errors = predict_poses(model, val, info, config["eval"]["decoder"], pnp)
    height, width = val["image"].shape[1:3]
    truths = [RigidTransform(r.astype(np.float64), t.astype(np.float64)) for r, t in zip(val["rotation"], val["translation"])]
    cameras = [CameraModel(K.astype(np.float64), width=width, height=height) for K in val["K"]]
    summary = summarise_with_cameras(poses, truths, info.keypoints_3d, cameras)
    finite = errors[np.isfinite(errors)]
    rates = {key: summary[key] for key in SELECTION_METRICS}
    return {"keypoint_px": float(finite.mean()) if len(finite) else float("nan"), **rates,
            "valid": summary["valid"], "selection": float(np.mean(list(rates.values())))}


def load_initial_weights(model: torch.nn.Module, path: str) -> None:
    """A model.pt (state dict) or a run checkpoint ({'model': state dict}), loaded with weights_only."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    model.load_state_dict(state)


def make_training_step(model: torch.nn.Module, train: dict[str, np.ndarray], config: dict[str, Any],
                       stride: int) -> Callable[[np.ndarray], tuple[torch.Tensor, dict[str, float]]]:
    """The `fit` step of the keypoint network: crops of the rows `idx`, photometric augmentation,
    forward pass, and the loss of config['loss'] (l_h, l_m = l_h + beta l_proj, l_p = l_reg +
    l_proj, the PnP layer in the loop for the last two). Also what `bench drone_training` times."""
    size = int(config["model"]["input_size"])
    generator = torch.Generator().manual_seed(int(config["seed"]))
    points_3d_all = torch.from_numpy(np.asarray(train["keypoints_3d"], np.float64))
    rotations = torch.from_numpy(np.asarray(train["rotation"], np.float64))
    translations = torch.from_numpy(np.asarray(train["translation"], np.float64))
    step_counter = [0]

    def step(idx):
        rng = np.random.default_rng([int(config["seed"]), step_counter[0]])
        step_counter[0] += 1
        batch = sample_crops(train, idx, size, config["crop"], rng)
        images = photometric_augment(torch.from_numpy(network_input(batch["crop"])), generator, config["augment"])
        outputs = model(images)
        parts, loss = {}, None
        if config["loss"] in ("l_h", "l_m"):
            loss = heatmap_supervision(outputs, batch["keypoints"], train["visibility"][idx], size,
                                       config["sigma"], config["heatmap_loss"])
            parts["heatmap"] = loss.item()
        if config["loss"] in ("l_m", "l_p"):
            l_proj, l_reg, count = pnp_terms(outputs["heatmaps"].double(), stride, points_3d_all[idx],
                                             torch.from_numpy(batch["K_crop"]), rotations[idx], translations[idx],
                                             size, config)
            parts.update(projection=l_proj.item(), pnp_samples=float(count))
            if config["loss"] == "l_m":
                loss = loss + config["beta"] * l_proj.float()
            else:
                parts["regularisation"] = l_reg.item()
                loss = (l_reg + l_proj).float()
        return loss, parts
    return step


def train_keypoint_network(train: dict[str, np.ndarray], val: dict[str, np.ndarray], config: dict[str, Any], run,
                           resume_state: dict | None = None, progress: Callable[[str], None] = print) -> torch.nn.Module:
    """Train (or continue) the heatmap network of config['drone_model']; `run` is a TrainingRun."""
    check_config(config)
    train = select_rows(train, rows_of_drone_model(train, config["drone_model"]))
    val = select_rows(val, rows_of_drone_model(val, config["drone_model"]))
    if len(train["image"]) == 0 or len(val["image"]) == 0:
        raise DroneTrainingError(f"no {config['drone_model']} samples in the {'train' if len(train['image']) == 0 else 'val'} "
                                 "split of the dataset")
    progress(f"{config['drone_model']}: {len(train['image'])} training and {len(val['image'])} validation samples")
    model = build_network(config["model"], train["keypoints"].shape[1])
    if config["init_weights"] and resume_state is None:
        load_initial_weights(model, config["init_weights"])
    info = drone_model_info(config)
    step = make_training_step(model, train, config, info.output_stride)

    def validate():
        return validation_metrics(model, val, info, config)

    describe = lambda row: (f"val keypoints {row['val_keypoint_px']:.2f} px  ADD5 {row['val_ADD5']:.1f}%  "
                            f"Proj5 {row['val_Proj5']:.1f}%  ACC5 {row['val_ACC5']:.1f}%  posed {row['val_valid']:.0f}%")
    return fit(model, len(train["image"]), step, validate, config, run, resume_state, describe, progress)
