"""One inference interface over torch, ONNX Runtime and TensorRT.

    runner = create_runner("dolly_pose", backend="tensorrt", precision="fp16", device="cuda",
                           fallback="onnxruntime")
    outputs = runner.run({"image": batch})          # dict[str, np.ndarray] -> dict[str, np.ndarray]
    if not outputs_finite(outputs): ...             # NaN/Inf are reported, never hidden

A backend that cannot run here raises BackendUnavailableError with the reason. Falling back to
another backend happens only when the caller asks for it (`fallback=`); it is logged and shows in
`describe()`, so nobody mistakes ONNX Runtime fp32 numbers for TensorRT fp16 ones.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ros2_pose.deploy.model_spec import ModelSpec, resolve_model_spec

LOG = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
DEVICES = ("cpu", "cuda")


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine (library missing, no GPU, ...)."""


class PrecisionUnsupportedError(ValueError):
    """The backend does not run the requested precision."""


class RunnerInputError(ValueError):
    """run() was given inputs with wrong names, dtypes or ranks."""


def outputs_finite(outputs: Mapping[str, np.ndarray]) -> bool:
    """True when every output value is finite (no NaN/Inf). Nodes check this before publishing."""
    return all(np.isfinite(value).all() for value in outputs.values())


def nonfinite_outputs(outputs: Mapping[str, np.ndarray]) -> list[str]:
    """Names of the outputs holding NaN or Inf (for the error message / diagnostics)."""
    return [name for name, value in outputs.items() if not np.isfinite(value).all()]


class Runner:
    """Common part of every backend: names, input checking, description."""

    backend: str = ""

    def __init__(self, spec: ModelSpec, precision: str, device: str):
        self.spec = spec
        self.precision = precision
        self.device = device
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._input_dtypes: dict[str, np.dtype] = {}
        self._input_ranks: dict[str, int] = {}
        self._example_shapes: dict[str, tuple[int, ...]] = {}
        self.fallback_reason: str | None = None
        self.requested: dict[str, str] = {"backend": self.backend, "precision": precision, "device": device}

    # -- public -------------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._checked_inputs(inputs))

    def describe(self) -> dict[str, Any]:
        info = {"backend": self.backend, "precision": self.precision, "device": self.device,
                "model": self.spec.name, "inputs": list(self.input_names), "outputs": list(self.output_names)}
        info.update(self._details())
        if self.fallback_reason is not None:
            info["requested"] = dict(self.requested)
            info["fallback_reason"] = self.fallback_reason
        return info

    def example_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Random batch-1 inputs of the model's declared shapes (warm-up, benchmarks, smoke tests)."""
        if set(self._example_shapes) != set(self.input_names):
            raise ValueError(f"model {self.spec.name!r} declares no concrete shape for "
                             f"{sorted(set(self.input_names) - set(self._example_shapes))} (add it to model.yaml)")
        rng = np.random.default_rng(seed)
        return {name: rng.standard_normal(self._example_shapes[name]).astype(self._input_dtypes.get(name, np.float32))
                for name in self.input_names}

    def warmup(self, iterations: int) -> None:
        if iterations <= 0:
            return
        if set(self._example_shapes) != set(self.input_names):
            raise ValueError(f"warm-up needs concrete input shapes; model {self.spec.name!r} declares "
                             f"none for {sorted(set(self.input_names) - set(self._example_shapes))} "
                             f"(add them to model.yaml `inputs`, or pass warmup=0)")
        zeros = {name: np.zeros(self._example_shapes[name], self._input_dtypes.get(name, np.float32))
                 for name in self.input_names}
        for _ in range(iterations):
            self._run(zeros)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    # -- for subclasses -----------------------------------------------------------------------
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _details(self) -> dict[str, Any]:
        return {}

    def _checked_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(inputs) != set(self.input_names):
            raise RunnerInputError(f"model {self.spec.name!r} takes inputs {self.input_names}, "
                                   f"got {sorted(inputs)}")
        checked = {}
        for name in self.input_names:
            value = np.asarray(inputs[name])
            expected = self._input_dtypes.get(name, np.dtype(np.float32))
            if value.dtype != expected:
                # Widening/narrowing between float types is a safe, expected conversion (e.g. float64
                # from a preprocessing step); anything else is a caller bug.
                if not (np.issubdtype(value.dtype, np.floating) and np.issubdtype(expected, np.floating)):
                    raise RunnerInputError(f"input {name!r}: dtype {value.dtype}, expected {expected}")
                value = value.astype(expected)
            rank = self._input_ranks.get(name)
            if rank is not None and value.ndim != rank:
                raise RunnerInputError(f"input {name!r}: shape {value.shape} has rank {value.ndim}, "
                                       f"expected rank {rank}")
            checked[name] = np.ascontiguousarray(value)
        return checked

    def _take_shapes_from_config(self) -> None:
        config = self.spec.config_if_present()
        if config is None:
            return
        for tensor in config.inputs:
            self._input_ranks.setdefault(tensor.name, len(tensor.shape))
            try:
                self._example_shapes[tensor.name] = tensor.concrete_shape(batch=1)
            except ValueError:
                pass


class TorchRunner(Runner):
    backend = "torch"

    def __init__(self, spec: ModelSpec, precision: str, device: str):
        super().__init__(spec, precision, device)
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(f"torch backend: `import torch` failed: {exc}") from exc
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("torch backend: device=cuda requested but torch sees no CUDA device "
                                          f"(torch {torch.__version__})")
        if precision == "int8" or (precision == "fp16" and device != "cuda"):
            raise PrecisionUnsupportedError(
                f"torch backend runs fp32 (and fp16 on cuda), not {precision} on {device}; "
                f"use the tensorrt backend for fp16/int8")
        from ros2_pose.deploy.export import OutputOrderAdapter
        from ros2_pose.deploy.model_spec import build_torch_model

        config = spec.load_config()
        model = build_torch_model(config, spec.require("weights"), device=device)
        if precision == "fp16":
            model = model.half()
        self._torch = torch
        self._module = OutputOrderAdapter(model, config.output_names).eval()
        self.input_names = config.input_names
        self.output_names = config.output_names
        self._input_dtypes = {t.name: np.dtype(t.dtype) for t in config.inputs}
        self._take_shapes_from_config()

    def _run(self, inputs):
        torch = self._torch
        tensors = {}
        for name, value in inputs.items():
            tensor = torch.from_numpy(value).to(self.device)
            if self.precision == "fp16" and tensor.is_floating_point():
                tensor = tensor.half()
            tensors[name] = tensor
        with torch.no_grad():
            outputs = self._module(**tensors)
        return {name: out.detach().float().cpu().numpy() if out.is_floating_point() else out.cpu().numpy()
                for name, out in zip(self.output_names, outputs)}

    def _details(self):
        return {"torch_version": self._torch.__version__}


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
              "tensor(bool)": np.bool_}


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, spec: ModelSpec, precision: str, device: str, intra_op_threads: int | None = None):
        super().__init__(spec, precision, device)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f"onnxruntime backend: `import onnxruntime` failed: {exc}") from exc
        if precision != "fp32":
            raise PrecisionUnsupportedError(
                f"onnxruntime backend runs the exported fp32 graph only, not {precision}; "
                f"use the tensorrt backend for fp16/int8")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    f"onnxruntime backend: device=cuda requested but this onnxruntime {ort.__version__} "
                    f"has no CUDAExecutionProvider (available: {ort.get_available_providers()})")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = int(intra_op_threads)
        onnx_path = spec.require("onnx")
        self._session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self._ort_version = ort.__version__
        self.intra_op_threads = intra_op_threads
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]
        for tensor in self._session.get_inputs():
            if tensor.type in _ORT_TYPES:
                self._input_dtypes[tensor.name] = np.dtype(_ORT_TYPES[tensor.type])
            self._input_ranks[tensor.name] = len(tensor.shape)
            if all(isinstance(d, int) and d > 0 for d in tensor.shape[1:]):
                self._example_shapes[tensor.name] = (1, *tensor.shape[1:])
        self._take_shapes_from_config()

    def _run(self, inputs):
        return dict(zip(self.output_names, self._session.run(self.output_names, inputs)))

    def _details(self):
        return {"onnx": str(self.spec.onnx), "providers": self._session.get_providers(),
                "onnxruntime_version": self._ort_version, "intra_op_threads": self.intra_op_threads}


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(self, spec: ModelSpec, precision: str, device: str, engine_dir: str | Path | None = None,
                 build_if_missing: bool = True, workspace_mb: int = 1024, max_batch: int = 1,
                 calibration_cache: str | Path | None = None):
        super().__init__(spec, precision, device)
        from ros2_pose.deploy import tensorrt_engine

        trt = tensorrt_engine.import_tensorrt()  # BackendUnavailableError with the import error
        if device != "cuda":
            raise BackendUnavailableError(f"tensorrt backend needs device=cuda, got device={device}")
        gpu = tensorrt_engine.current_gpu_name()
        onnx_path = spec.require("onnx")
        engine_dir = Path(engine_dir) if engine_dir is not None else tensorrt_engine.default_engine_dir()
        self._executor, self.engine_path = tensorrt_engine.load_engine_for(
            onnx_path, precision, engine_dir, gpu_name=gpu, build_if_missing=build_if_missing,
            workspace_mb=workspace_mb, max_batch=max_batch, calibration_cache=calibration_cache)
        self._trt_version = trt.__version__
        self.input_names = list(self._executor.input_names)
        self.output_names = list(self._executor.output_names)
        self._input_dtypes = dict(self._executor.input_dtypes)
        self._input_ranks = {n: len(s) for n, s in self._executor.input_shapes.items()}
        self._example_shapes = {n: tuple(1 if d < 0 else d for d in s)
                                for n, s in self._executor.input_shapes.items()}
        self._gpu = gpu

    def _run(self, inputs):
        return self._executor.run(inputs)

    def _details(self):
        return {"engine": str(self.engine_path), "tensorrt_version": self._trt_version, "gpu": self._gpu,
                "tensorrt_api": self._executor.api}


def create_runner(model_spec: "ModelSpec | str | Path", backend: str = "onnxruntime", precision: str = "fp32",
                  device: str = "cpu", warmup: int = 0, fallback: str | None = None,
                  intra_op_threads: int | None = None, engine_dir: str | Path | None = None,
                  build_engine_if_missing: bool = True) -> Runner:
    """Load `model_spec` (shipped-model name, model folder, `.onnx` file or ModelSpec) on `backend`.

    `fallback="onnxruntime"` lets a BackendUnavailableError of the requested backend fall back to
    ONNX Runtime fp32 (on cuda when its CUDA provider exists, else cpu), logged as a warning and
    recorded in `describe()["fallback_reason"]`. Without it the error propagates.
    """
    for value, allowed, what in ((backend, BACKENDS, "backend"), (precision, PRECISIONS, "precision"),
                                 (device, DEVICES, "device")):
        if value not in allowed:
            raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    if fallback is not None and fallback not in BACKENDS:
        raise ValueError(f"fallback must be None or one of {BACKENDS}, got {fallback!r}")
    spec = resolve_model_spec(model_spec)
    try:
        runner = _construct(spec, backend, precision, device, intra_op_threads, engine_dir,
                            build_engine_if_missing)
    except BackendUnavailableError as exc:
        if fallback is None or fallback == backend:
            raise
        fallback_device = device
        fallback_precision = "fp32" if fallback == "onnxruntime" else precision
        try:
            runner = _construct(spec, fallback, fallback_precision, fallback_device, intra_op_threads,
                                engine_dir, build_engine_if_missing)
        except BackendUnavailableError:
            if fallback_device == "cpu":
                raise
            fallback_device = "cpu"
            runner = _construct(spec, fallback, fallback_precision, fallback_device, intra_op_threads,
                                engine_dir, build_engine_if_missing)
        runner.fallback_reason = str(exc)
        runner.requested = {"backend": backend, "precision": precision, "device": device}
        LOG.warning("model %s: backend %s/%s/%s unavailable (%s); falling back to %s/%s/%s", spec.name,
                    backend, precision, device, exc, runner.backend, runner.precision, runner.device)
    runner.warmup(warmup)
    return runner


def _construct(spec, backend, precision, device, intra_op_threads, engine_dir, build_engine_if_missing) -> Runner:
    if backend == "torch":
        return TorchRunner(spec, precision, device)
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(spec, precision, device, intra_op_threads=intra_op_threads)
    return TensorRTRunner(spec, precision, device, engine_dir=engine_dir, build_if_missing=build_engine_if_missing)
