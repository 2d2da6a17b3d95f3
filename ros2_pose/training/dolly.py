"""Training the dolly pipeline's two networks: the centre detector and the pose network.

Both read a dolly dataset (`ros2-pose dataset build dolly`, fields in ros2_pose/data/builders/dolly.py)
as whole arrays: a few thousand 128x128 crops fit in memory, and indexing numpy arrays per batch is
faster on two cores than a DataLoader with workers.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ros2_pose.geometry.transforms import matrix_from_rotation_6d_torch, rotation_error_deg
from ros2_pose.codecs.center_heatmap import decode_best_box, encode_targets
from ros2_pose.models.center_detector import CenterDetector, focal_loss
from ros2_pose.training.augment import photometric_augment
from ros2_pose.training.loop import fit, model_device
from ros2_pose.training.run import initial_model
from ros2_pose.codecs.dolly_pose import (CROP_SIZE, MASK_SIZE, allocentric_from_camera_rotation,
                                         camera_rotation_from_allocentric, center_crop_target,
                                         depth_ratio_target, translation_from_prediction)
from ros2_pose.models.dolly_pose import DollyPoseNet

# Pose AP as in the seed's Table 1: positive when translation error < 5 cm and rotation error < 5 deg.
AP_TRANSLATION_M = 0.05
AP_ROTATION_DEG = 5.0


def crop_cameras(K: np.ndarray, crop_matrix: np.ndarray) -> np.ndarray:
    """The crops' virtual cameras K_crop = A @ K (N x 3 x 3) for image->crop affines A (N x 2 x 3)."""
    A = np.zeros((len(K), 3, 3))
    A[:, :2] = crop_matrix
    A[:, 2, 2] = 1.0
    return A @ np.asarray(K, dtype=np.float64)


def pose_targets(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Regression targets of the pose network for a batch of dataset samples."""
    K_crop = crop_cameras(arrays["K"], arrays["crop_matrix"])
    translation = np.asarray(arrays["translation"], np.float64)
    return {
        "rotation": allocentric_from_camera_rotation(arrays["rotation"], K_crop).astype(np.float32),
        "center_crop": center_crop_target(translation, K_crop).astype(np.float32),
        "log_depth_ratio": depth_ratio_target(translation[:, 2], K_crop[:, 0, 0]).astype(np.float32)[:, None],
    }


def to_image_tensor(uint8_images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(uint8_images)).permute(0, 3, 1, 2).float().div_(255.0)


def pose_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], mask: torch.Tensor | None,
              weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    R = matrix_from_rotation_6d_torch(outputs["rotation_6d"])
    rotation = (R - targets["rotation"]).pow(2).sum(dim=(1, 2)).mean()
    center = nn.functional.smooth_l1_loss(outputs["center_crop"], targets["center_crop"], beta=0.02)
    depth = nn.functional.smooth_l1_loss(outputs["log_depth_ratio"], targets["log_depth_ratio"], beta=0.02)
    total = weights["rotation"] * rotation + weights["center"] * center + weights["depth"] * depth
    parts = {"rotation": rotation.item(), "center": center.item(), "depth": depth.item()}
    if mask is not None and weights["mask"] > 0:
        mask_loss = nn.functional.binary_cross_entropy_with_logits(outputs["mask_logits"], mask)
        total = total + weights["mask"] * mask_loss
        parts["mask"] = mask_loss.item()
    return total, parts


def mask_target(masks_uint8: np.ndarray) -> torch.Tensor:
    """Dataset masks (N x S x S, 0/1 or 0/255) -> N x 1 x MASK_SIZE x MASK_SIZE in [0, 1] (area average)."""
    m = torch.from_numpy(np.ascontiguousarray(masks_uint8)).float()
    if m.max() > 1:
        m = m / 255.0
    m = m[:, None]
    if m.shape[-1] != MASK_SIZE:
        m = nn.functional.adaptive_avg_pool2d(m, MASK_SIZE)
    return m


def predict_poses(model: DollyPoseNet, crops: np.ndarray, box_norm: np.ndarray, K_crop: np.ndarray,
                  batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(N x 3 x 3 rotations, N x 3 translations) from the torch model (on its device), in batches."""
    model.eval()
    device = model_device(model)
    rotations, translations = [], []
    with torch.no_grad():
        for start in range(0, len(crops), batch_size):
            sl = slice(start, start + batch_size)
            out = model(to_image_tensor(crops[sl]).to(device),
                        torch.from_numpy(np.asarray(box_norm[sl], np.float32)).to(device))
            out = {name: value.cpu() for name, value in out.items()}
            rotations.append(camera_rotation_from_allocentric(
                matrix_from_rotation_6d_torch(out["rotation_6d"]).numpy(), K_crop[sl]))
            translations.append(translation_from_prediction(out["center_crop"].numpy(),
                                                            out["log_depth_ratio"].numpy(), K_crop[sl]))
    return np.concatenate(rotations), np.concatenate(translations)


def pose_errors(R_pred, t_pred, R_true, t_true) -> dict[str, np.ndarray]:
    t_err = np.asarray(t_pred) - np.asarray(t_true)
    rot_err = np.asarray(rotation_error_deg(R_pred, R_true)).reshape(-1)
    return {"abs_x": np.abs(t_err[:, 0]), "abs_y": np.abs(t_err[:, 1]), "abs_z": np.abs(t_err[:, 2]),
            "translation": np.linalg.norm(t_err, axis=1), "rotation_deg": rot_err}


def summarise_pose_errors(errors: dict[str, np.ndarray]) -> dict[str, float]:
    positive = (errors["translation"] < AP_TRANSLATION_M) & (errors["rotation_deg"] < AP_ROTATION_DEG)
    return {"median_abs_x_m": float(np.median(errors["abs_x"])),
            "median_abs_y_m": float(np.median(errors["abs_y"])),
            "median_abs_z_m": float(np.median(errors["abs_z"])),
            "median_rotation_deg": float(np.median(errors["rotation_deg"])),
            "ap": float(positive.mean()), "samples": int(len(positive))}


def train_pose_network(train: dict[str, np.ndarray], val: dict[str, np.ndarray], config: dict[str, Any],
                       run, resume_state: dict | None = None, progress: Callable[[str], None] = print,
                       device: torch.device = torch.device("cpu")) -> DollyPoseNet:
    """Train (or continue) the pose network on `device`; `run` is a ros2_pose.training.run.TrainingRun.
    The arrays stay on the CPU; each batch is augmented there (the same random draws on any device)
    and then copied to `device`."""
    model = initial_model(config, DollyPoseNet).to(device)
    generator = torch.Generator().manual_seed(int(config["seed"]))
    targets_all = {k: torch.from_numpy(v) for k, v in pose_targets(train).items()}
    val_K_crop = crop_cameras(val["K"], val["crop_matrix"])

    def step(idx):
        crops = photometric_augment(to_image_tensor(train["crop"][idx]), generator, config["augment"])
        outputs = model(crops.to(device), torch.from_numpy(np.asarray(train["box_norm"][idx], np.float32)).to(device))
        masks = mask_target(train["mask"][idx]).to(device) if "mask" in train else None
        return pose_loss(outputs, {k: v[idx].to(device) for k, v in targets_all.items()}, masks, config["loss_weights"])

    def validate():
        R_pred, t_pred = predict_poses(model, val["crop"], val["box_norm"], val_K_crop)
        summary = summarise_pose_errors(pose_errors(R_pred, t_pred, val["rotation"], val["translation"]))
        return {"ap": summary["ap"], "median_rotation_deg": summary["median_rotation_deg"],
                "median_abs_z_m": summary["median_abs_z_m"]}

    describe = lambda row: (f"val AP {row['val_ap']:.3f}  rot {row['val_median_rotation_deg']:.2f} deg  "
                            f"|z| {row['val_median_abs_z_m'] * 100:.1f} cm")
    return fit(model, len(train["crop"]), step, validate, config, run, resume_state, describe, progress)


def detector_batch_targets(det_box: np.ndarray, det_valid: np.ndarray, input_size: int) -> dict[str, torch.Tensor]:
    boxes = np.asarray(det_box, np.float32) * input_size  # dataset boxes are normalised to [0, 1]
    return {k: torch.from_numpy(v) for k, v in encode_targets(boxes, det_valid, input_size).items()}


def detector_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                  size_weight: float = 5.0) -> tuple[torch.Tensor, dict[str, float]]:
    heat = focal_loss(outputs["heatmap_logits"], targets["heatmap"])
    reg_mask = targets["reg_mask"]
    count = reg_mask.sum().clamp(min=1.0)
    size = (nn.functional.l1_loss(outputs["size"], targets["size"], reduction="none") * reg_mask).sum() / count
    offset = (nn.functional.l1_loss(outputs["offset"], targets["offset"], reduction="none") * reg_mask).sum() / count
    total = heat + size_weight * size + offset
    return total, {"heatmap": heat.item(), "size": size.item(), "offset": offset.item()}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows of two N x 4 box arrays."""
    x1 = np.maximum(a[:, 0], b[:, 0])
    y1 = np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 2], b[:, 2])
    y2 = np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda box: np.clip(box[:, 2] - box[:, 0], 0, None) * np.clip(box[:, 3] - box[:, 1], 0, None)
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def evaluate_detector(model: CenterDetector, images: np.ndarray, det_box: np.ndarray, det_valid: np.ndarray,
                      score_threshold: float, batch_size: int = 128) -> dict[str, float]:
    model.eval()
    device = model_device(model)
    boxes, scores = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            out = model(to_image_tensor(images[start:start + batch_size]).to(device))
            out = {name: value.cpu() for name, value in out.items()}
            b, s = decode_best_box(out["heatmap_logits"].numpy(), out["size"].numpy(), out["offset"].numpy(),
                                   model.input_size)
            boxes.append(b)
            scores.append(s)
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    valid = np.asarray(det_valid, bool)
    iou = box_iou(boxes, np.asarray(det_box, np.float32) * model.input_size)
    detected = scores >= score_threshold
    return {"recall_iou50": float(((iou >= 0.5) & detected)[valid].mean()) if valid.any() else float("nan"),
            "median_iou": float(np.median(iou[valid])) if valid.any() else float("nan"),
            "false_positive_rate": float(detected[~valid].mean()) if (~valid).any() else 0.0}


def train_detector(train: dict[str, np.ndarray], val: dict[str, np.ndarray], config: dict[str, Any], run,
                   resume_state: dict | None = None, progress: Callable[[str], None] = print,
                   device: torch.device = torch.device("cpu")) -> CenterDetector:
    """Train (or continue) the detector on `device` (batches made on the CPU, as for the pose network)."""
    model = initial_model(config, CenterDetector).to(device)
    generator = torch.Generator().manual_seed(int(config["seed"]))

    def step(idx):
        images = photometric_augment(to_image_tensor(train["det_image"][idx]), generator, config["augment"])
        targets = detector_batch_targets(train["det_box"][idx], train["det_valid"][idx], model.input_size)
        return detector_loss(model(images.to(device)), {k: v.to(device) for k, v in targets.items()})

    def validate():
        return evaluate_detector(model, val["det_image"], val["det_box"], val["det_valid"], config["score_threshold"])

    describe = lambda row: (f"recall@0.5 {row['val_recall_iou50']:.3f}  median IoU {row['val_median_iou']:.3f}  "
                            f"FP {row['val_false_positive_rate']:.3f}")
    return fit(model, len(train["det_image"]), step, validate, config, run, resume_state, describe, progress)


def pose_model_config(model_kwargs: dict):
    """model.yaml of a trained pose network (for ros2_pose.deploy.model_spec.write_model_folder)."""
    from ros2_pose.deploy.model_spec import parse_model_config

    return parse_model_config({
        "architecture": "ros2_pose.models.dolly_pose:DollyPoseNet", "kwargs": dict(model_kwargs),
        "inputs": [{"name": "crop", "shape": ["batch", 3, CROP_SIZE, CROP_SIZE]}, {"name": "box", "shape": ["batch", 4]}],
        "outputs": [{"name": "rotation_6d", "shape": ["batch", 6]}, {"name": "center_crop", "shape": ["batch", 2]},
                    {"name": "log_depth_ratio", "shape": ["batch", 1]},
                    {"name": "mask_logits", "shape": ["batch", 1, MASK_SIZE, MASK_SIZE]}]})


def detector_model_config(model_kwargs: dict):
    """model.yaml of a trained detector."""
    from ros2_pose.deploy.model_spec import parse_model_config
    from ros2_pose.codecs.center_heatmap import STRIDE

    size = int(model_kwargs.get("input_size", 160))
    cells = size // STRIDE
    return parse_model_config({
        "architecture": "ros2_pose.models.center_detector:CenterDetector", "kwargs": dict(model_kwargs),
        "inputs": [{"name": "image", "shape": ["batch", 3, size, size]}],
        "outputs": [{"name": "heatmap_logits", "shape": ["batch", 1, cells, cells]},
                    {"name": "size", "shape": ["batch", 2, cells, cells]},
                    {"name": "offset", "shape": ["batch", 2, cells, cells]}]})
