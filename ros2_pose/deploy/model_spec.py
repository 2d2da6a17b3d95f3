"""Which files make up a model, what its model.yaml says, and how the torch module is rebuilt.

A shipped model folder (docs/DESIGN.md "Shipped models") holds `model.pt` (state dict),
`model.yaml` and `model.onnx`. model.yaml:

    architecture: ros2_pose.models.tiny_reference:TinyReferenceNet   # module:Class
    kwargs: {in_channels: 3, width: 8, num_keypoints: 4}             # constructor arguments
    inputs:                                                          # forward()'s keyword args
      - {name: image, shape: [batch, 3, 64, 64], dtype: float32}
    outputs:                                                         # forward()'s dict keys / tuple order
      - {name: heatmaps, shape: [batch, 4, 16, 16]}
      - {name: pose, shape: [batch, 6]}
    preprocess: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}   # optional, RGB in [0, 1]

`inputs`/`outputs` may also be written as a mapping `{name: shape}`. A dimension that is a string
(`batch`) or -1 is dynamic. Only classes inside the `ros2_pose.models` package may be named:
a config file must never be a way to import and run arbitrary code.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ros2_pose import resources

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "model.yaml"
ONNX_FILE = "model.onnx"
ALLOWED_ARCHITECTURE_PACKAGE = "ros2_pose.models"
_ARCHITECTURE_PATTERN = re.compile(
    r"^ros2_pose\.models(\.[A-Za-z_][A-Za-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*$")


class ArchitectureNotAllowedError(ValueError):
    """model.yaml names an architecture outside the ros2_pose.models package (or not an nn.Module)."""


class ModelConfigError(ValueError):
    """model.yaml is missing a field or has one of the wrong form."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # str or -1: dynamic dimension
    dtype: str = "float32"

    def concrete_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The shape with a dynamic leading (batch) axis set to `batch`; other dynamic axes refused."""
        shape = []
        for axis, dim in enumerate(self.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(batch)
            else:
                raise ModelConfigError(
                    f"tensor {self.name!r} has dynamic axis {axis} ({dim!r}); only the batch axis "
                    f"may be dynamic when a concrete example shape is needed")
        return tuple(shape)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The parsed model.yaml."""
    architecture: str
    kwargs: dict[str, Any]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    preprocess: dict[str, Any]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def example_inputs(self, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the declared shapes (for export, parity checks, warm-up, benchmarks)."""
        rng = np.random.default_rng(seed)
        return {t.name: rng.standard_normal(t.concrete_shape(batch)).astype(t.dtype) for t in self.inputs}

    def to_yaml_dict(self) -> dict[str, Any]:
        def tensors(specs):
            return [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in specs]
        data = {"architecture": self.architecture, "kwargs": dict(self.kwargs),
                "inputs": tensors(self.inputs), "outputs": tensors(self.outputs)}
        if self.preprocess:
            data["preprocess"] = dict(self.preprocess)
        return data


def _parse_tensors(value: Any, field: str, source: Path | str) -> tuple[TensorSpec, ...]:
    if isinstance(value, dict):
        value = [{"name": name, "shape": shape} for name, shape in value.items()]
    if not isinstance(value, list) or not value:
        raise ModelConfigError(f"{source}: `{field}` must be a non-empty list of {{name, shape}} "
                               f"or a mapping name -> shape, got {value!r}")
    specs = []
    for item in value:
        if not isinstance(item, dict) or "name" not in item or "shape" not in item:
            raise ModelConfigError(f"{source}: each entry of `{field}` needs `name` and `shape`, got {item!r}")
        shape = item["shape"]
        if not isinstance(shape, (list, tuple)) or not all(
                isinstance(d, str) or (isinstance(d, int) and (d > 0 or d == -1)) for d in shape):
            raise ModelConfigError(f"{source}: `{field}.{item['name']}.shape` must be a list of positive "
                                   f"ints, -1 or names of dynamic axes, got {shape!r}")
        dtype = str(item.get("dtype", "float32"))
        np.dtype(dtype)  # raises TypeError on nonsense
        specs.append(TensorSpec(str(item["name"]), tuple(shape), dtype))
    return tuple(specs)


def parse_model_config(data: dict[str, Any], source: Path | str = "model.yaml") -> ModelConfig:
    if not isinstance(data, dict):
        raise ModelConfigError(f"{source}: expected a mapping at the top level")
    for key in ("architecture", "inputs", "outputs"):
        if key not in data:
            raise ModelConfigError(f"{source}: missing `{key}` (see ros2_pose/deploy/model_spec.py)")
    kwargs = data.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ModelConfigError(f"{source}: `kwargs` must be a mapping, got {kwargs!r}")
    preprocess = data.get("preprocess") or {}
    if not isinstance(preprocess, dict):
        raise ModelConfigError(f"{source}: `preprocess` must be a mapping, got {preprocess!r}")
    return ModelConfig(architecture=str(data["architecture"]), kwargs=kwargs,
                       inputs=_parse_tensors(data["inputs"], "inputs", source),
                       outputs=_parse_tensors(data["outputs"], "outputs", source),
                       preprocess=preprocess)


def load_model_config(path: str | Path) -> ModelConfig:
    path = Path(path)
    with open(path, encoding="utf-8") as stream:
        return parse_model_config(yaml.safe_load(stream), path)


def resolve_architecture(architecture: str) -> type:
    """`ros2_pose.models.x:Class` -> the class; anything outside ros2_pose.models is refused
    before any import happens."""
    if not _ARCHITECTURE_PATTERN.match(architecture):
        raise ArchitectureNotAllowedError(
            f"architecture {architecture!r} refused: it must be `module:Class` with the module inside "
            f"the {ALLOWED_ARCHITECTURE_PACKAGE} package (configs may not import other code)")
    module_name, class_name = architecture.split(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    import torch  # local: model_spec is also used where only ONNX Runtime is needed
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ArchitectureNotAllowedError(
            f"{architecture!r} is not a torch.nn.Module subclass in {module_name}")
    return cls


def build_torch_model(config: ModelConfig, weights: str | Path | None = None, device: str = "cpu"):
    """Rebuild the network from model.yaml and load its state dict (weights_only=True), eval mode."""
    import torch
    model = resolve_architecture(config.architecture)(**config.kwargs)
    if weights is not None:
        state = torch.load(Path(weights), map_location=device, weights_only=True)
        if not isinstance(state, dict):
            raise ModelConfigError(f"{weights}: expected a state dict, found {type(state).__name__}")
        model.load_state_dict(state, strict=True)
    return model.to(device).eval()


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The files of one model. `folder` is a shipped-model folder; the others may be given alone."""
    folder: Path | None = None
    config: Path | None = None   # model.yaml
    weights: Path | None = None  # model.pt
    onnx: Path | None = None     # model.onnx

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ModelSpec":
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder {folder} does not exist")
        return cls(folder=folder, config=resources.resolve_inside(folder, CONFIG_FILE),
                   weights=resources.resolve_inside(folder, WEIGHTS_FILE),
                   onnx=resources.resolve_inside(folder, ONNX_FILE))

    @property
    def name(self) -> str:
        if self.folder is not None:
            return self.folder.name
        some = self.onnx or self.weights or self.config
        return some.stem if some is not None else "model"

    def require(self, kind: str) -> Path:
        """The path of `kind` ("config" | "weights" | "onnx"), or FileNotFoundError naming it and
        what its folder holds."""
        path = getattr(self, kind)
        if path is None:
            raise FileNotFoundError(f"model {self.name!r}: no {kind} file was given")
        path = Path(path)
        if not path.is_file():
            folder = path.parent
            held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
            raise FileNotFoundError(
                f"model file {path} does not exist ({folder} holds: {held or 'nothing'})")
        return path

    def load_config(self) -> ModelConfig:
        return load_model_config(self.require("config"))

    def config_if_present(self) -> ModelConfig | None:
        return self.load_config() if self.config is not None and Path(self.config).is_file() else None


def resolve_model_spec(spec: "ModelSpec | str | Path") -> ModelSpec:
    """A ModelSpec; a folder path; a `.onnx` file; or the name of a shipped model (models/<name>)."""
    if isinstance(spec, ModelSpec):
        return spec
    path = Path(spec)
    if path.is_dir():
        return ModelSpec.from_folder(path)
    if path.suffix == ".onnx":
        sibling_config = path.parent / CONFIG_FILE
        return ModelSpec(onnx=path, config=sibling_config if sibling_config.is_file() else None)
    if path.suffix or len(path.parts) > 1:
        raise FileNotFoundError(f"model {spec!s}: no such folder or .onnx file")
    return ModelSpec.from_folder(resources.model_dir(str(spec)))


def write_model_folder(folder: str | Path, model, config: ModelConfig, *, export: bool = True,
                       opset: int = 17) -> dict[str, float] | None:
    """Write model.pt + model.yaml (+ model.onnx and its parity when `export`) into `folder`:
    how a trained network becomes a shipped model. Returns the ONNX parity (max abs error per output)."""
    import torch
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)
    with open(folder / CONFIG_FILE, "w", encoding="utf-8") as stream:
        yaml.safe_dump(config.to_yaml_dict(), stream, sort_keys=False)
    if not export:
        return None
    from ros2_pose.deploy.export import export_model_folder
    return export_model_folder(ModelSpec.from_folder(folder), opset=opset)["parity"]
