"""Train a drone keypoint heatmap network (hourglass / HRNet / HigherHRNet) with l_h, l_m or l_p."""
from __future__ import annotations

from pathlib import Path

from ros2_pose.training.tasks._common import add_training_arguments, run_training

DEFAULTS = {
    "data": None,                      # dataset folder or list of folders (ros2-pose dataset build drone)
    "seed": 1989,                      # the seed's
    "epochs": 44,                      # the seed's
    "batch_size": 24,                  # the seed's
    "drone_model": "drone_large",      # drone_large | drone_small: one network per drone model
    "loss": "l_h",                     # l_h | l_m (l_h + beta * l_proj) | l_p (l_reg + l_proj)
    "heatmap_loss": "l1",              # l1 (the seed's best) | mse | kl
    "beta": 1.0e-5,                    # l_m's weight of l_proj (the seed's greedy search)
    "pnp": "bpnp",                     # differentiable PnP for l_m / l_p: bpnp | bpnp_faster | epnp
    "train_decoder": "center_of_mass", # differentiable keypoint decoder for l_m / l_p: center_of_mass | soft_argmax
    "sigma": 2.0,                      # Gaussian target sigma, heatmap cells
    "augment": 1.0,                    # photometric augmentation strength (0 = off)
    "init_weights": None,              # weights to start from (e.g. an l_h run before l_m): a shipped model's
                                       # name, or a model.pt, checkpoint or model folder inside the config's folder
    "crop": {"margin": 0.25, "min_box_px": 12.0, "jitter_scale": 0.15, "jitter_center": 0.1,
             "whole_image_fraction": 0.2},
    "model": {"backbone": "hrnet", "input_size": 128, "kwargs": None},
    "optimizer": {"lr": 1.0e-3, "weight_decay": 0.0},
    "eval": {"decoder": "argmax_subpixel", "pnp_method": "sqpnp", "confidence_threshold": 0.1,
             "ransac": False},         # validation on ground-truth-box crops, all confident keypoints
}
FIELDS = ["image", "keypoints", "visibility", "keypoints_3d", "box", "K", "rotation", "translation", "pose_valid"]


def add_arguments(parser):
    add_training_arguments(parser, default_config="config/train/drone_large.yaml", several_datasets=True)


def run(args) -> int:
    from ros2_pose.training.drone import calibrated_model_info, drone_model_config, train_keypoint_network

    def write_drone_info(folder: Path, config: dict, train: dict, val: dict) -> None:
        # The model folder also says which drone and 3D keypoints the network is for, how to
        # scale its coarse pass's boxes (pipelines.drone), calibrated on the validation frames, and
        # the image-blind keypoint template of its training crops (the floor it must beat).
        info = calibrated_model_info(folder, config, train, val)
        print(f"wrote {info.write(folder)} (coarse_box_scale {info.coarse_box_scale:.3f})")

    return run_training(args, DEFAULTS, FIELDS, valid_field="pose_valid", train_fn=train_keypoint_network,
                        monitor="val_selection", mode="max", model_config_fn=drone_model_config,
                        finish_model_folder=write_drone_info)
