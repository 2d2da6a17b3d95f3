"""Train the dolly detector (whole image letterboxed to 160x160 -> dolly box and score)."""
from __future__ import annotations

from ros2_pose.training.tasks._common import add_training_arguments, run_training

DEFAULTS = {
    "data": None,
    "seed": 0,
    "epochs": 12,
    "batch_size": 32,
    "augment": 1.0,
    "score_threshold": 0.3,
    "model": {"width": 16, "input_size": 160},
    "init_from": None,                 # start from this model folder's architecture + weights (e.g. pruned)
    "optimizer": {"lr": 3.0e-3, "weight_decay": 1.0e-4},
}
FIELDS = ["det_image", "det_box", "det_valid"]


def add_arguments(parser):
    add_training_arguments(parser, default_config="config/train/dolly_detector.yaml", several_datasets=True, device=True)


def run(args) -> int:
    from ros2_pose.training.dolly import detector_model_config, train_detector

    return run_training(args, DEFAULTS, FIELDS, valid_field=None, train_fn=train_detector,
                        monitor="val_median_iou", mode="max", model_config_fn=detector_model_config,
                        # Dolly datasets hold several jittered crops per frame; the detector needs each frame once.
                        unique_field="frame_index")
