"""Dolly networks of the shipped architectures whose output heads give a fixed answer.

They are real `CenterDetector` / `DollyPoseNet` modules, exported to ONNX by the same
`write_model_folder` as a trained model, so the nodes, the runner and ONNX Runtime run exactly what
they run for shipped models: only the last layers' weights are zeroed and their biases set, which
makes the answer independent of the image and known in advance. Used by the node tests (a known box
and pose to check stamps, frames and values against) and by `ros2-pose bench dolly --untrained`
(latency depends on the architecture only).

`poison_with_nan=True` puts a NaN in the pose head's bias: every pose output is then NaN, the case a
node must never publish.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ros2_pose.codecs.center_heatmap import STRIDE

IDENTITY_ROTATION_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # first two columns of the identity matrix


def write_fixed_detector(folder: str | Path, box_in_input: tuple[float, float, float, float] = (40, 40, 120, 120),
                         score_logit: float = 3.0, width: int = 4, input_size: int = 160) -> Path:
    """A CenterDetector that finds `box_in_input` (letterboxed-input pixels, x0 y0 x1 y1) with score
    sigmoid(score_logit) in every image; the model folder is written to `folder`."""
    import torch

    from ros2_pose.deploy.model_spec import write_model_folder
    from ros2_pose.models.center_detector import CenterDetector
    from ros2_pose.training.dolly import detector_model_config

    x0, y0, x1, y1 = (float(v) for v in box_in_input)
    if not (0 <= x0 < x1 <= input_size and 0 <= y0 < y1 <= input_size):
        raise ValueError(f"box {box_in_input} must lie inside the {input_size}x{input_size} input")
    torch.manual_seed(0)
    model = CenterDetector(width=width, input_size=input_size).eval()
    with torch.no_grad():
        for head in (model.heatmap, model.size, model.offset):
            head.weight.zero_()
        # All heatmap cells score the same, so the decoder's argmax picks cell (0, 0); the offset
        # (in cells) then moves the centre to the box's centre.
        model.heatmap.bias.fill_(score_logit)
        model.offset.bias.copy_(torch.tensor([(x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE]))
        model.size.bias.copy_(torch.tensor([(x1 - x0) / input_size, (y1 - y0) / input_size]))
    write_model_folder(folder, model, detector_model_config({"width": width, "input_size": input_size}))
    return Path(folder)


def write_fixed_pose_network(folder: str | Path, center_crop: tuple[float, float] = (0.5, 0.5),
                             log_depth_ratio: float = 0.0, rotation_6d=IDENTITY_ROTATION_6D,
                             width=(4, 4, 8, 8), poison_with_nan: bool = False) -> Path:
    """A DollyPoseNet whose rotation_6d, center_crop and log_depth_ratio are the given constants."""
    import torch

    from ros2_pose.deploy.model_spec import write_model_folder
    from ros2_pose.models.dolly_pose import DollyPoseNet
    from ros2_pose.training.dolly import pose_model_config

    kwargs = {"width": list(width) if not isinstance(width, str) else width}
    torch.manual_seed(0)
    model = DollyPoseNet(**kwargs).eval()
    last = model.head[-1]
    bias = np.concatenate([np.asarray(rotation_6d, np.float32), np.asarray(center_crop, np.float32),
                           [np.float32(log_depth_ratio)]])
    if poison_with_nan:
        bias[0] = np.nan
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.from_numpy(bias))
    # A NaN model's ONNX parity record says "passed: false" (NaN != NaN): expected for this model.
    write_model_folder(folder, model, pose_model_config(kwargs))
    return Path(folder)


def _cache_key() -> str:
    """Changes whenever the architectures, this module or torch change (then the models are rewritten)."""
    import hashlib

    import torch

    from ros2_pose.models import center_detector, dolly_pose

    digest = hashlib.sha256(torch.__version__.encode())
    for module_file in (center_detector.__file__, dolly_pose.__file__, __file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()


def fixed_model_set(root: str | Path) -> dict[str, Path]:
    """Folders `detector`, `pose` and `nan_pose` under `root` with the default fixed answers, written
    on the first call and reused while their key (architectures, torch version) still matches: the
    export takes seconds, and several test modules need the same models."""
    root = Path(root)
    marker = root / "KEY"
    folders = {"detector": root / "detector", "pose": root / "pose", "nan_pose": root / "nan_pose"}
    key = _cache_key()
    if marker.is_file() and marker.read_text() == key and all((f / "model.onnx").is_file() for f in folders.values()):
        return folders
    root.mkdir(parents=True, exist_ok=True)
    write_fixed_detector(folders["detector"])
    write_fixed_pose_network(folders["pose"])
    write_fixed_pose_network(folders["nan_pose"], poison_with_nan=True)
    marker.write_text(key)
    return folders
