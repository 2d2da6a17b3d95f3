"""Training monocular depth + ego-motion: self-supervised (view synthesis), supervised depth, and the
seed's pose-from-frozen-depth-features experiment, all through the shared epoch loop (`fit`).

Data: the motion dataset's arrays (ros2_pose/data/builders/motion.py, as ArrayDataset resolves them),
one row per sample of T frames:
  frames (N, T, H, W, 3) uint8, K (N, T, 3, 3), optional depths (N, T, H, W) float32 metres (0 =
  unknown) and relative_poses (N, T-1, 4, 4) = T_c0_ck (frame k's camera pose in frame 0's camera).
The target is frame `target_index` (default the middle one, T // 2); the other frames are the sources.
``arrays_from_sim_frames`` makes the same arrays straight from simulated sequences.

Modes (config["mode"]):
- "self_supervised": DepthNet + PoseNet trained by the multi-scale photometric loss alone.
- "supervised": DepthNet trained on ground-truth depth (L1 of log depth over known pixels); the pose
  network by `pose_supervision`: "photometric" warps with the *ground-truth* depth (the seed's first
  experiment) or "ground_truth" regresses the relative pose.
- "pose_from_depth_features": a trained DepthNet (``depth_state``) is frozen; only the
  PoseFromDepthFeatures head trains, by `pose_supervision` (photometric warps use ground-truth depth
  when the data has it, the frozen network's depth otherwise).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from kornia.geometry.conversions import rotation_matrix_to_axis_angle
from torch import nn

from ros2_pose.evaluation.depth_metrics import evaluate_depth, relative_motion_errors
from ros2_pose.geometry.warping import se3_from_6dof
from ros2_pose.losses.photometric import multi_scale_photometric_loss, photometric_reprojection_loss
from ros2_pose.models.depth_egomotion import DepthNet, PoseFromDepthFeatures, PoseNet, disparity_to_depth
from ros2_pose.training.augment import photometric_augment
from ros2_pose.training.loop import fit

MODES = ("self_supervised", "supervised", "pose_from_depth_features")
POSE_SUPERVISION = ("photometric", "ground_truth")
#: The validation number that picks the best checkpoint (TrainingRun(monitor=..., mode=...)): it
#: exists in every mode and needs no ground truth.
MONITOR, MONITOR_MODE = "val_photometric_loss", "min"

DEFAULTS: dict[str, Any] = {
    "data": None,                        # motion dataset folder, or a list of them trained on together
    "seed": 0,
    "epochs": 20,
    "batch_size": 8,
    "mode": "self_supervised",
    "pose_supervision": "photometric",   # supervised / pose_from_depth_features modes
    "target_index": None,                # None: the middle frame of each sample
    "depth_model": {"channels": [16, 32, 64, 128, 256], "num_scales": 4, "min_depth": 0.1, "max_depth": 20.0},
    "pose_model": {"fusion": "early", "channels": [16, 32, 64, 128, 256], "head_width": 128},
    # pose_from_depth_features: the encoder stage whose features the pose head taps (0 = the
    # finest; None = the deepest), see PoseFromDepthFeatures
    "depth_feature_level": None,
    # pose_rotation_weight: the rotation term of the ground-truth pose loss (supervised_pose_loss)
    "loss": {"ssim_weight": 0.85, "smoothness_weight": 1.0e-3, "automask": True, "pose_rotation_weight": 1.0},
    "optimizer": {"lr": 2.0e-4, "weight_decay": 0.0},
    "eval": {"min_depth": 0.1, "max_depth": 20.0, "batch_size": 32},
    # strength of the lighting change drawn per training sample (photometric_augment; shared by the
    # sample's frames): brightness and contrast +-40 % x strength, colour gain +-15 % x strength
    "augment": 0.0,
}


class DepthEgoMotionDataError(ValueError):
    """Training arrays that lack a field the chosen mode needs or have inconsistent shapes."""


class DepthEgoMotionModel(nn.Module):
    """The two networks trained together (one optimiser, one checkpoint): `depth` and `pose`."""

    def __init__(self, depth: DepthNet, pose: nn.Module):
        super().__init__()
        self.depth, self.pose = depth, pose

    def forward(self, target: torch.Tensor, sources: torch.Tensor) -> dict[str, Any]:
        return {"disparities": self.depth.disparities(target), "pose": self.pose(target, sources)["pose"]}


def build_model(config: dict[str, Any], num_sources: int, depth_state: dict | None = None) -> DepthEgoMotionModel:
    """The networks of `config` for samples with `num_sources` source frames."""
    mode = config["mode"]
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    depth = DepthNet(**config["depth_model"])
    if mode == "pose_from_depth_features":
        if depth_state is None:
            raise ValueError("mode 'pose_from_depth_features' needs a trained DepthNet: pass depth_state "
                             "(load_depth_state(checkpoint))")
        depth.load_state_dict(depth_state)
        for parameter in depth.parameters():
            parameter.requires_grad_(False)
        pose = PoseFromDepthFeatures.from_depth_net(depth, num_sources, config["pose_model"]["head_width"],
                                                    config["depth_feature_level"])
        return DepthEgoMotionModel(depth, pose)
    return DepthEgoMotionModel(depth, PoseNet(num_sources, **config["pose_model"]))


def load_depth_state(path) -> dict[str, torch.Tensor]:
    """A DepthNet state dict from a depth-egomotion run checkpoint (its model's `depth.*` entries)
    or from a plain DepthNet state dict (model.pt). The caller resolves and checks the path."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    depth = {k[len("depth."):]: v for k, v in state.items() if k.startswith("depth.")}
    state = depth or state
    if not any(k.startswith("encoder.") for k in state):
        raise ValueError(f"{path} holds no DepthNet weights (no encoder.* or depth.encoder.* entries)")
    return state


# ----------------------------------------------------------------------------------------- data
def arrays_from_sim_frames(sequences: list[list], frames_per_sample: int = 3, distance: int = 1) -> dict[str, np.ndarray]:
    """Motion-dataset arrays from simulated sequences (lists of consecutive SimFrames, e.g. from
    ros2_pose.sim.motion.MotionTask): every window of `frames_per_sample` frames `distance` apart."""
    frames, depths, K, relative = [], [], [], []
    for sequence in sequences:
        span = distance * (frames_per_sample - 1)
        for start in range(len(sequence) - span):
            window = sequence[start:start + span + 1:distance]
            first = window[0].T_world_camera.inverse()
            frames.append(np.stack([f.rgb for f in window]))
            depths.append(np.stack([np.nan_to_num(f.depth, nan=0.0) for f in window]).astype(np.float32))
            K.append(np.stack([f.camera.K for f in window]).astype(np.float32))
            relative.append(np.stack([(first @ f.T_world_camera).as_matrix() for f in window[1:]]).astype(np.float32))
    if not frames:
        raise DepthEgoMotionDataError(f"no window of {frames_per_sample} frames {distance} apart in the sequences")
    return {"frames": np.stack(frames), "depths": np.stack(depths), "K": np.stack(K),
            "relative_poses": np.stack(relative)}


def _check_arrays(arrays: dict[str, np.ndarray], need: tuple[str, ...], name: str) -> tuple[int, int]:
    missing = [field for field in ("frames", "K", *need) if field not in arrays]
    if missing:
        raise DepthEgoMotionDataError(f"{name} arrays lack {missing} (have {sorted(arrays)})")
    frames = arrays["frames"]
    if frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[1] < 2:
        raise DepthEgoMotionDataError(f"{name} frames must be N x T x H x W x 3 with T >= 2, got {frames.shape}")
    n, t = frames.shape[:2]
    if arrays["K"].shape != (n, t, 3, 3):
        raise DepthEgoMotionDataError(f"{name} K must be {(n, t, 3, 3)}, got {arrays['K'].shape}")
    if "depths" in arrays and arrays["depths"].shape != frames.shape[:4]:
        raise DepthEgoMotionDataError(f"{name} depths must be {frames.shape[:4]}, got {arrays['depths'].shape}")
    if "relative_poses" in arrays and arrays["relative_poses"].shape != (n, t - 1, 4, 4):
        raise DepthEgoMotionDataError(f"{name} relative_poses must be {(n, t - 1, 4, 4)}, "
                                      f"got {arrays['relative_poses'].shape}")
    return n, t


class SampleBatcher:
    """Turns rows of the arrays into target/sources tensors, K and ground truth for one batch;
    with `augment` > 0 each sample's frames get one random lighting change (photometric_augment)."""

    def __init__(self, arrays: dict[str, np.ndarray], target_index: int | None, augment: float = 0.0,
                 generator: torch.Generator | None = None):
        self.arrays = arrays
        self.augment, self.generator = float(augment), generator
        if self.augment > 0 and generator is None:
            raise ValueError("augment > 0 needs a torch.Generator")
        self.frames_per_sample = arrays["frames"].shape[1]
        self.target = self.frames_per_sample // 2 if target_index is None else int(target_index)
        if not 0 <= self.target < self.frames_per_sample:
            raise DepthEgoMotionDataError(f"target_index {target_index} is outside 0..{self.frames_per_sample - 1}")
        self.sources = [k for k in range(self.frames_per_sample) if k != self.target]

    def __call__(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        frames = torch.from_numpy(np.ascontiguousarray(self.arrays["frames"][idx])).permute(0, 1, 4, 2, 3)
        frames = photometric_augment(frames.float().div_(255.0), self.generator, self.augment)
        batch = {"target": frames[:, self.target], "sources": frames[:, self.sources],
                 "K": torch.from_numpy(np.asarray(self.arrays["K"][idx][:, self.target], np.float32))}
        if "depths" in self.arrays:
            batch["depth"] = torch.from_numpy(np.asarray(self.arrays["depths"][idx][:, self.target], np.float32))[:, None]
        if "relative_poses" in self.arrays:
            batch["T_target_to_sources"] = torch.from_numpy(self.target_to_sources(idx))
        return batch

    def target_to_sources(self, idx: np.ndarray) -> np.ndarray:
        """N x S x 4 x 4 ground truth T_target_to_source = inv(T_c0_cs) @ T_c0_ct from relative_poses."""
        relative = np.asarray(self.arrays["relative_poses"][idx], np.float64)
        poses = np.concatenate([np.broadcast_to(np.eye(4), (len(relative), 1, 4, 4)), relative], axis=1)
        target = poses[:, self.target]
        return np.stack([np.linalg.inv(poses[:, s]) @ target for s in self.sources], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------- losses
def supervised_depth_loss(disparities: list[torch.Tensor], gt_depth: torch.Tensor, min_depth: float,
                          max_depth: float) -> torch.Tensor:
    """Mean over scales of |log depth - log gt| on known ground truth (predictions upsampled)."""
    known = torch.isfinite(gt_depth) & (gt_depth > 0)
    if not known.any():
        raise DepthEgoMotionDataError("a batch has no known ground-truth depth; supervised depth needs some")
    log_gt = torch.log(torch.where(known, gt_depth, torch.ones_like(gt_depth)).clamp(min_depth, max_depth))
    total = gt_depth.new_zeros(())
    for disparity in disparities:
        full = nn.functional.interpolate(disparity, size=gt_depth.shape[-2:], mode="bilinear", align_corners=False)
        error = (torch.log(disparity_to_depth(full, min_depth, max_depth)) - log_gt).abs()
        total = total + error[known].mean()
    return total / len(disparities)


def supervised_pose_loss(pose_6dof: torch.Tensor, T_true: torch.Tensor, rotation_weight: float = 1.0) -> torch.Tensor:
    """L1 of the rotation vector (radians, times `rotation_weight`) + L1 of the translation (m),
    summed over the axes and averaged over sources and samples.

    Not the squared rotation-matrix difference (used until the seventh session): for the 0.5-3 deg
    a camera turns between frames it is ~2 theta^2, a few 1e-4 against centimetres of translation,
    and its gradient vanishes with the error; one epoch on the turning set left the rotation error
    where predicting none leaves it (2.79 vs 2.9 deg).
    """
    true_rotation = rotation_matrix_to_axis_angle(T_true[..., :3, :3].reshape(-1, 3, 3)).view(*T_true.shape[:2], 3)
    rotation = (pose_6dof[..., :3] - true_rotation).abs().sum(-1).mean()
    translation = (pose_6dof[..., 3:] - T_true[..., :3, 3]).abs().sum(-1).mean()
    return rotation_weight * rotation + translation


def _poses(pose_6dof: torch.Tensor) -> torch.Tensor:
    return se3_from_6dof(pose_6dof.reshape(-1, 6)).view(*pose_6dof.shape[:2], 4, 4)


def training_loss(model: DepthEgoMotionModel, batch: dict[str, torch.Tensor], config: dict[str, Any]
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch for config["mode"] (see the module docstring); (loss, parts to log)."""
    mode, loss_cfg, depth_cfg = config["mode"], config["loss"], config["depth_model"]
    photometric = dict(automask=loss_cfg["automask"], alpha=loss_cfg["ssim_weight"])
    if mode == "self_supervised":
        out = model(batch["target"], batch["sources"])
        return multi_scale_photometric_loss(batch["target"], batch["sources"], out["disparities"], _poses(out["pose"]),
                                            batch["K"], depth_cfg["min_depth"], depth_cfg["max_depth"],
                                            loss_cfg["smoothness_weight"], **photometric)
    parts: dict[str, float] = {}
    if mode == "supervised":
        out = model(batch["target"], batch["sources"])
        total = supervised_depth_loss(out["disparities"], batch["depth"], depth_cfg["min_depth"], depth_cfg["max_depth"])
        parts["depth"] = total.item()
        warp_depth = batch["depth"]
    else:  # pose_from_depth_features: the depth network is frozen, only the pose head learns
        out = {"pose": model.pose(batch["target"], batch["sources"])["pose"]}
        total = batch["target"].new_zeros(())
        if "depth" in batch:
            warp_depth = batch["depth"]
        else:
            with torch.no_grad():
                warp_depth = model.depth(batch["target"])["depth"]
    if config["pose_supervision"] == "ground_truth":
        pose_loss = supervised_pose_loss(out["pose"], batch["T_target_to_sources"], loss_cfg["pose_rotation_weight"])
    else:
        pose_loss = photometric_reprojection_loss(batch["target"], batch["sources"], warp_depth, _poses(out["pose"]),
                                                  batch["K"], **photometric).loss
    parts["pose"] = pose_loss.item()
    return total + pose_loss, parts


def required_fields(config: dict[str, Any]) -> tuple[str, ...]:
    """Fields beyond frames and K that training in config's mode needs."""
    need = []
    if config["mode"] == "supervised":
        need.append("depths")
    if config["mode"] != "self_supervised" and config["pose_supervision"] == "ground_truth":
        need.append("relative_poses")
    if config["pose_supervision"] not in POSE_SUPERVISION:
        raise ValueError(f"pose_supervision must be one of {POSE_SUPERVISION}, got {config['pose_supervision']!r}")
    return tuple(need)


# ----------------------------------------------------------------------------------------- evaluation
#: Below this depth_variation the depth network answers every image with one map: collapsed.
#: Measured on 64 training images: the collapsed self-supervised run 5e-8, an untrained network
#: 2e-3, the shipped one 0.13.
COLLAPSED_DEPTH_VARIATION = 1e-5


def depth_variation(depths: np.ndarray) -> float:
    """How much a network's depth maps (N x H x W) differ between images: the standard deviation of
    log depth across the images, averaged over pixels. 0 for a network that returns one map
    whatever it sees - the flat-depth collapse the photometric loss allows at small baselines
    (docs/RESULTS.md: a self-supervised run did this in its first epoch, silently)."""
    if len(depths) < 2:
        return float("nan")
    return float(np.log(np.maximum(depths, 1e-6)).std(axis=0).mean())


def describe_validation(row: dict[str, float]) -> str:
    """One log line for a validation row of `evaluate` (val_ prefixed), with a warning when the
    depth network has collapsed."""
    text = f"val photometric {row['val_photometric_loss']:.4f}"
    if "val_abs_rel" in row:
        text += f"  abs-rel {row['val_abs_rel']:.3f}"
    if "val_rpe_rotation_deg_rmse" in row:
        text += f"  RPE {row['val_rpe_translation_rmse'] * 100:.1f} cm / {row['val_rpe_rotation_deg_rmse']:.2f} deg"
    if row.get("val_depth_variation", 1.0) < COLLAPSED_DEPTH_VARIATION:
        text += (f"  WARNING: depth collapsed (the same map for every validation image, variation "
                 f"{row['val_depth_variation']:.1e}); this run will not learn depth")
    return text


def evaluate(model: DepthEgoMotionModel, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> dict[str, float]:
    """Validation numbers: the photometric loss of the predictions (self-supervised loss), depth
    metrics with median scaling (when the arrays hold depth) and RPE of the predicted motion (when
    they hold relative poses; one least-squares scale in self-supervised mode, metric otherwise)."""
    model.eval()
    batcher = SampleBatcher(arrays, config["target_index"])
    depth_cfg, loss_cfg, eval_cfg = config["depth_model"], config["loss"], config["eval"]
    n = len(arrays["frames"])
    losses, weights, depths, poses = [], [], [], []
    with torch.no_grad():
        for start in range(0, n, int(eval_cfg["batch_size"])):
            batch = batcher(np.arange(start, min(n, start + int(eval_cfg["batch_size"]))))
            out = model(batch["target"], batch["sources"])
            loss, _ = multi_scale_photometric_loss(batch["target"], batch["sources"], out["disparities"][:1],
                                                   _poses(out["pose"]), batch["K"], depth_cfg["min_depth"],
                                                   depth_cfg["max_depth"], 0.0, loss_cfg["automask"],
                                                   loss_cfg["ssim_weight"])
            losses.append(loss.item())
            weights.append(len(batch["target"]))
            depths.append(disparity_to_depth(out["disparities"][0], depth_cfg["min_depth"], depth_cfg["max_depth"])[:, 0])
            poses.append(_poses(out["pose"]))
    predicted_depths = torch.cat(depths).numpy()
    metrics = {"photometric_loss": float(np.average(losses, weights=weights)),
               "depth_variation": depth_variation(predicted_depths)}
    if "depths" in arrays:
        gt = np.asarray(arrays["depths"][:, batcher.target], np.float64)
        scores = evaluate_depth(predicted_depths, gt, eval_cfg["min_depth"], eval_cfg["max_depth"])
        metrics.update({k: scores[k] for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1")})
    if "relative_poses" in arrays:
        pred = torch.cat(poses).numpy().reshape(-1, 4, 4)
        gt = batcher.target_to_sources(np.arange(n)).reshape(-1, 4, 4)
        rpe = relative_motion_errors(gt, pred, scale="global" if config["mode"] == "self_supervised" else "none")
        metrics.update({k: rpe[k] for k in ("rpe_translation_rmse", "rpe_rotation_deg_rmse")})
    return metrics


def train_depth_egomotion(train_arrays: dict[str, np.ndarray], val_arrays: dict[str, np.ndarray],
                          config: dict[str, Any], run, resume_state: dict | None = None,
                          depth_state: dict | None = None,
                          progress: Callable[[str], None] = print,
                          init_networks: dict[str, nn.Module] | None = None) -> DepthEgoMotionModel:
    """Train (or continue) in config["mode"]; `run` is a ros2_pose.training.run.TrainingRun, whose
    checkpoints hold the DepthEgoMotionModel state dict (`depth.*`, `pose.*`). `depth_state`: the
    trained DepthNet for mode "pose_from_depth_features" (see load_depth_state). `init_networks`:
    {"depth": DepthNet, "pose": PoseNet} to start from (a fine-tune, e.g. the shipped models on
    one's own bags), each optional; their architectures must be config's."""
    need = required_fields(config)
    n_train, frames_per_sample = _check_arrays(train_arrays, need, "training")
    _, val_frames = _check_arrays(val_arrays, need, "validation")
    if val_frames != frames_per_sample:
        raise DepthEgoMotionDataError(f"training samples have {frames_per_sample} frames, validation {val_frames}")
    model = build_model(config, frames_per_sample - 1, depth_state)
    for name, network in (init_networks or {}).items():
        try:
            getattr(model, name).load_state_dict(network.state_dict())
        except RuntimeError as exc:  # shapes: another width, or another number of source frames
            from ros2_pose.training.run import ConfigError

            raise ConfigError(f"init_from {name}: its weights do not fit this run's {name} network "
                              f"({frames_per_sample - 1} source frames): {exc}") from None
    batcher = SampleBatcher(train_arrays, config["target_index"], config["augment"],
                            torch.Generator().manual_seed(int(config["seed"])))

    def step(idx):
        model.train()
        return training_loss(model, batcher(idx), config)

    def validate():
        return evaluate(model, val_arrays, config)

    return fit(model, n_train, step, validate, config, run, resume_state, describe_validation, progress)
