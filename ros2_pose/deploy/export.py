"""ONNX export with named inputs/outputs and a dynamic batch axis, and the ONNX Runtime parity check.

torch 2.13's default (dynamo) exporter needs `onnxscript`, which is not a dependency of this
project; the TorchScript-based exporter (`dynamo=False`) handles every network here and is what
we use.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model

PARITY_FILE = "onnx_parity.json"
DEFAULT_PARITY_TOLERANCE = 1e-4


class OutputOrderAdapter(torch.nn.Module):
    """Calls `model(**inputs)` and returns a tuple in `output_names` order, whether the model
    returns a dict (looked up by name), a tuple/list (taken in order) or one tensor. Export and the
    torch runner both go through it, so output naming never depends on dict ordering.
    Positional arguments are matched to `input_names` (the ONNX tracer passes inputs positionally)."""

    def __init__(self, model: torch.nn.Module, output_names: list[str], input_names: list[str] = ()):
        super().__init__()
        self.model = model
        self.output_names = list(output_names)
        self.input_names = list(input_names)

    def forward(self, *args, **inputs):
        if len(args) > len(self.input_names):
            raise TypeError(f"{len(args)} positional inputs, but only {self.input_names} are named")
        inputs.update(zip(self.input_names, args))
        result = self.model(**inputs)
        if isinstance(result, Mapping):
            missing = [n for n in self.output_names if n not in result]
            if missing:
                raise KeyError(f"model output has keys {sorted(result)}, missing declared outputs {missing}")
            return tuple(result[n] for n in self.output_names)
        if isinstance(result, torch.Tensor):
            result = (result,)
        if len(result) != len(self.output_names):
            raise ValueError(f"model returned {len(result)} outputs, declared {len(self.output_names)}: "
                             f"{self.output_names}")
        return tuple(result)


def _as_tensors(inputs: Mapping[str, "np.ndarray | torch.Tensor"], device="cpu") -> dict[str, torch.Tensor]:
    return {name: (value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))).to(device)
            for name, value in inputs.items()}


def export_onnx(model: torch.nn.Module, example_inputs: Mapping[str, "torch.Tensor | np.ndarray"],
                path: str | Path, output_names: list[str], dynamic_batch: bool = True,
                opset: int = 17) -> Path:
    """Export `model` (forward takes the inputs as keyword arguments) to ONNX at `path` and check
    the result with onnx.checker. Inputs and outputs carry their names; axis 0 is `batch`."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = _as_tensors(example_inputs)
    input_names = list(inputs)
    adapter = OutputOrderAdapter(model, output_names, input_names).eval()
    dynamic_axes = {name: {0: "batch"} for name in input_names + list(output_names)} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns that it is the legacy one; that is a deliberate choice here.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(adapter, tuple(inputs.values()), str(path), input_names=input_names,
                          output_names=list(output_names), dynamic_axes=dynamic_axes,
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    onnx_model = onnx.load(str(path))
    onnx.checker.check_model(onnx_model)
    exported_inputs = [i.name for i in onnx_model.graph.input]
    exported_outputs = [o.name for o in onnx_model.graph.output]
    if exported_inputs != input_names or exported_outputs != list(output_names):
        raise RuntimeError(f"exported graph has inputs {exported_inputs} / outputs {exported_outputs}, "
                           f"expected {input_names} / {list(output_names)}")
    return path


def check_parity(model: torch.nn.Module, onnx_path: str | Path,
                 inputs: Mapping[str, "np.ndarray | torch.Tensor"]) -> dict[str, float]:
    """Max absolute difference per output between ONNX Runtime (CPU) and PyTorch on `inputs`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    output_names = [o.name for o in session.get_outputs()]
    arrays = {name: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
              for name, v in inputs.items()}
    onnx_outputs = session.run(output_names, arrays)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        torch_outputs = OutputOrderAdapter(model, output_names).eval()(**_as_tensors(arrays, device))
    errors = {}
    for name, expected, got in zip(output_names, torch_outputs, onnx_outputs):
        expected = expected.detach().float().cpu().numpy()
        if expected.shape != got.shape:
            raise RuntimeError(f"output {name!r}: torch shape {expected.shape}, ONNX Runtime shape {got.shape}")
        errors[name] = float(np.max(np.abs(expected - got))) if expected.size else 0.0
    return errors


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_model_folder(spec: ModelSpec, out: str | Path | None = None, opset: int = 17,
                        dynamic_batch: bool = True, tolerance: float = DEFAULT_PARITY_TOLERANCE) -> dict:
    """Re-export model.onnx from model.pt + model.yaml, check parity at batch 1 (and 2 when the batch
    is dynamic) and record it in onnx_parity.json beside the ONNX file. Returns that record; its
    `passed` is False when any error exceeds `tolerance`."""
    config = spec.load_config()
    model = build_torch_model(config, spec.require("weights"))
    onnx_path = Path(out) if out is not None else spec.onnx
    if onnx_path is None:
        raise ValueError("no output path: give `out` or a model folder")
    export_onnx(model, config.example_inputs(batch=1), onnx_path, config.output_names,
                dynamic_batch=dynamic_batch, opset=opset)
    batches = (1, 2) if dynamic_batch else (1,)
    parity: dict[str, float] = {}
    for batch in batches:
        for name, error in check_parity(model, onnx_path, config.example_inputs(batch=batch, seed=batch)).items():
            parity[name] = max(parity.get(name, 0.0), error)
    record = {
        "onnx": onnx_path.name,
        "onnx_sha256": file_sha256(onnx_path),
        "opset": opset,
        "dynamic_batch": dynamic_batch,
        "torch_version": torch.__version__,
        "checked_batches": list(batches),
        "parity_max_abs_error": parity,
        "tolerance": tolerance,
        "passed": all(error <= tolerance for error in parity.values()),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(onnx_path.parent / PARITY_FILE, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=2)
    record["parity"] = parity
    return record
