"""TensorRT engines: build from ONNX, deserialise, run. Written against the TensorRT 8.6 and 10
Python APIs (the versions on JetPack 6 and current x86 installs); the API path is chosen by version.

Device memory is handled with torch CUDA tensors (their data_ptr() is what TensorRT wants), which
avoids a pycuda/cuda-python dependency. Everything that needs no TensorRT (ONNX input shapes,
profile checks) is plain Python and tested without it.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ros2_pose.deploy.engine_cache import CachedEngine, EngineCache, EngineFingerprint
from ros2_pose.deploy.runner import BackendUnavailableError

LOG = logging.getLogger(__name__)

Shape = tuple[int, ...]
Profile = tuple[str, Shape, Shape, Shape]  # (input name, min, opt, max)


class OnnxParseError(RuntimeError):
    """TensorRT's ONNX parser rejected the model (the message lists the parser's errors)."""


class EngineBuildError(RuntimeError):
    """build_serialized_network failed or the build configuration is invalid."""


class ProfileError(ValueError):
    """An optimisation profile is inconsistent with the network inputs."""


def import_tensorrt():
    """`import tensorrt`, or BackendUnavailableError saying why not."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT is not available: `import tensorrt` failed ({exc}). Install TensorRT 8.6 or 10 "
            f"(JetPack ships it) to build and run engines; ONNX Runtime runs the model meanwhile.") from exc
    return trt


def tensorrt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def current_gpu_name() -> str:
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"the TensorRT path uses torch CUDA tensors; `import torch` failed: {exc}")
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"no CUDA device visible to torch {torch.__version__}: TensorRT needs a GPU")
    return torch.cuda.get_device_name(torch.cuda.current_device())


def default_engine_dir() -> Path:
    """$ROS2_POSE_ENGINE_DIR, else ~/.cache/ros2_pose/engines (model folders may be read-only)."""
    configured = os.environ.get("ROS2_POSE_ENGINE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "ros2_pose" / "engines"


# -- ONNX inputs and optimisation profiles (no TensorRT needed) ----------------------------------
def onnx_input_shapes(onnx_path: str | Path) -> dict[str, Shape]:
    """Graph inputs (initialisers excluded) -> shape with -1 for dynamic dimensions."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initialisers = {i.name for i in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in initialisers:
            continue
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in dims)
    return shapes


def parse_shape_argument(text: str) -> tuple[str, Shape]:
    """`image:1x3x128x128` -> ("image", (1, 3, 128, 128)) (the trtexec --minShapes syntax)."""
    name, sep, dims = text.rpartition(":")
    if not sep or not name or not dims:
        raise ProfileError(f"shape {text!r} must be NAME:DxDxD, e.g. image:1x3x128x128")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        raise ProfileError(f"shape {text!r}: dimensions must be integers separated by x") from None
    if any(d <= 0 for d in shape):
        raise ProfileError(f"shape {text!r}: dimensions must be positive")
    return name, shape


def default_profiles(input_shapes: dict[str, Shape], max_batch: int = 1, opt_batch: int | None = None) -> list[Profile]:
    """A profile per input whose only dynamic axis is the batch: min 1, opt `opt_batch`, max `max_batch`."""
    opt_batch = opt_batch or max_batch
    profiles = []
    for name, shape in input_shapes.items():
        if all(d > 0 for d in shape):
            continue
        if any(d < 0 for d in shape[1:]):
            raise ProfileError(f"input {name!r} {shape} has dynamic axes besides the batch: give "
                               f"--min/--opt/--max shapes for it")
        rest = tuple(shape[1:])
        profiles.append((name, (1, *rest), (opt_batch, *rest), (max_batch, *rest)))
    return profiles


def validate_profiles(profiles: Sequence[Profile], input_shapes: dict[str, Shape]) -> list[Profile]:
    """Check that every dynamic input has a profile and each profile fits its input's static dims."""
    by_name = {}
    for name, mn, opt, mx in profiles:
        if name not in input_shapes:
            raise ProfileError(f"profile for {name!r}, but the network's inputs are {sorted(input_shapes)}")
        network = input_shapes[name]
        for label, shape in (("min", mn), ("opt", opt), ("max", mx)):
            if len(shape) != len(network):
                raise ProfileError(f"{name!r} {label} shape {shape} has rank {len(shape)}, input is {network}")
            for axis, (dim, fixed) in enumerate(zip(shape, network)):
                if fixed > 0 and dim != fixed:
                    raise ProfileError(f"{name!r} {label} shape {shape}: axis {axis} is fixed at {fixed}")
        if not all(a <= b <= c for a, b, c in zip(mn, opt, mx)):
            raise ProfileError(f"{name!r}: need min <= opt <= max on every axis, got {mn} {opt} {mx}")
        by_name[name] = (name, tuple(mn), tuple(opt), tuple(mx))
    missing = [n for n, s in input_shapes.items() if any(d < 0 for d in s) and n not in by_name]
    if missing:
        raise ProfileError(f"inputs {missing} have dynamic dimensions and need --min/--opt/--max shapes")
    return list(by_name.values())


# -- building --------------------------------------------------------------------------------------
def _trt_logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def build_engine(onnx_path: str | Path, precision: str = "fp16", workspace_mb: int = 1024,
                 profiles: Sequence[Profile] = (), dla_core: int | None = None, calibrator=None) -> bytes:
    """Build a serialized TensorRT engine from `onnx_path`.

    `profiles` must cover every dynamic input (see default_profiles); `calibrator` (an
    EntropyCalibrator) is required for int8; `dla_core` runs on that DLA with GPU fallback.
    """
    trt = import_tensorrt()
    if precision not in ("fp32", "fp16", "int8"):
        raise EngineBuildError(f"precision must be fp32, fp16 or int8, got {precision!r}")
    profiles = validate_profiles(profiles, onnx_input_shapes(onnx_path))
    logger = _trt_logger(trt)
    builder = trt.Builder(logger)
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.x needs it set.
    flags = 0 if tensorrt_major(trt) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise OnnxParseError(f"TensorRT {trt.__version__} could not parse {onnx_path}:\n  " + "\n  ".join(errors))

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            LOG.warning("this GPU has no fast FP16; building %s anyway", precision)
        config.set_flag(trt.BuilderFlag.FP16)  # int8 engines keep fp16 for layers without int8 kernels
    if precision == "int8":
        if calibrator is None:
            raise EngineBuildError("int8 needs a calibrator (calibration images or bag, or a calibration cache)")
        if not builder.platform_has_fast_int8:
            LOG.warning("this GPU has no fast INT8; building int8 anyway")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    if dla_core is not None:
        if builder.num_DLA_cores <= dla_core:
            raise EngineBuildError(f"DLA core {dla_core} requested, this device has {builder.num_DLA_cores}")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if profiles:
        profile = builder.create_optimization_profile()
        for name, mn, opt, mx in profiles:
            profile.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(profile)
        if precision == "int8":
            config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build {onnx_path} ({precision}); "
                               f"see the TensorRT log above")
    return bytes(serialized)


def deserialize_engine(engine_bytes: bytes):
    """The ICudaEngine, or None when this TensorRT/GPU cannot load it (TensorRT returns None)."""
    return _runtime().deserialize_cuda_engine(engine_bytes)


@functools.lru_cache(maxsize=1)
def _runtime():
    """One trt.Runtime per process: engines must not outlive the runtime that deserialised them."""
    trt = import_tensorrt()
    return trt.Runtime(_trt_logger(trt))


def fingerprint_for(onnx_path: str | Path, precision: str, gpu_name: str, profiles: Sequence[Profile] = (),
                    dla_core: int | None = None, tensorrt_version: str | None = None) -> EngineFingerprint:
    from ros2_pose.deploy.export import file_sha256

    if tensorrt_version is None:
        tensorrt_version = import_tensorrt().__version__
    return EngineFingerprint(model_sha256=file_sha256(onnx_path), tensorrt_version=tensorrt_version,
                             gpu_name=gpu_name, precision=precision,
                             profiles=tuple((n, tuple(a), tuple(b), tuple(c)) for n, a, b, c in profiles),
                             dla_core=dla_core)


def make_calibrator(onnx_path: str | Path, batches, cache_path: str | Path, input_name: str | None = None):
    """EntropyCalibrator for `onnx_path` reading `batches` (CalibrationBatches or None when the
    cache exists) with its table cached at `cache_path`."""
    from ros2_pose.deploy.calibration import CalibrationCache
    from ros2_pose.deploy.export import file_sha256
    from ros2_pose.deploy.tensorrt_calibrator import EntropyCalibrator

    inputs = list(onnx_input_shapes(onnx_path))
    if input_name is None:
        if len(inputs) != 1:
            raise EngineBuildError(f"int8 calibration feeds one image input; this network has {inputs}")
        input_name = inputs[0]
    return EntropyCalibrator(batches, CalibrationCache(cache_path, file_sha256(onnx_path)), input_name)


def load_engine_for(onnx_path: str | Path, precision: str, engine_dir: str | Path, gpu_name: str,
                    build_if_missing: bool = True, workspace_mb: int = 1024, max_batch: int = 1,
                    calibration_cache: str | Path | None = None, dla_core: int | None = None):
    """(TensorRTExecutor, engine path) for the model through the engine cache; builds when allowed.
    int8 builds at run time only from an existing calibration cache (calibrate with `ros2-pose engine build`)."""
    onnx_path = Path(onnx_path)
    profiles = default_profiles(onnx_input_shapes(onnx_path), max_batch=max_batch)
    fingerprint = fingerprint_for(onnx_path, precision, gpu_name, profiles, dla_core)

    def build() -> bytes:
        calibrator = None
        if precision == "int8":
            if calibration_cache is None or not Path(calibration_cache).is_file():
                raise EngineBuildError(
                    f"int8 engine for {onnx_path} is not cached and no calibration cache was given; run "
                    f"`ros2-pose engine build --onnx {onnx_path} --precision int8 --calib-images DIR`")
            calibrator = make_calibrator(onnx_path, None, calibration_cache)
        LOG.warning("building TensorRT %s engine for %s (takes a while, once per machine)", precision, onnx_path)
        return build_engine(onnx_path, precision, workspace_mb, profiles, dla_core, calibrator)

    cached: CachedEngine = EngineCache(engine_dir).load(
        onnx_path.stem, fingerprint, deserialize_engine, build if build_if_missing else None, onnx_path)
    return TensorRTExecutor(cached.engine), cached.path


# -- running ----------------------------------------------------------------------------------------
class TensorRTExecutor:
    """Runs a deserialised engine on numpy inputs. TensorRT >= 10: named tensors
    (set_input_shape / set_tensor_address / execute_async_v3); 8.x: bindings + execute_async_v2."""

    def __init__(self, engine):
        import torch

        trt = import_tensorrt()
        self._trt, self._torch = trt, torch
        self.engine = engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        self.api = "tensors-v3" if tensorrt_major(trt) >= 10 else "bindings-v2"
        self.input_names, self.output_names = [], []
        self.input_shapes: dict[str, Shape] = {}
        self.input_dtypes: dict[str, np.dtype] = {}
        self._dtypes: dict[str, np.dtype] = {}
        self._binding_index: dict[str, int] = {}
        if self.api == "tensors-v3":
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                self._dtypes[name] = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                    self.input_names.append(name)
                    self.input_shapes[name] = tuple(engine.get_tensor_shape(name))
                else:
                    self.output_names.append(name)
        else:
            for i in range(engine.num_bindings):
                name = engine.get_binding_name(i)
                self._binding_index[name] = i
                self._dtypes[name] = np.dtype(trt.nptype(engine.get_binding_dtype(i)))
                if engine.binding_is_input(i):
                    self.input_names.append(name)
                    self.input_shapes[name] = tuple(engine.get_binding_shape(i))
                else:
                    self.output_names.append(name)
        self.input_dtypes = {n: self._dtypes[n] for n in self.input_names}
        self.stream = torch.cuda.Stream()

    def _torch_dtype(self, dtype: np.dtype):
        return self._torch.from_numpy(np.empty(0, dtype)).dtype

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        keep: list[Any] = []  # device tensors must live until the stream is done
        outputs: dict[str, Any] = {}
        with torch.cuda.stream(self.stream):
            if self.api == "tensors-v3":
                for name in self.input_names:
                    tensor = torch.from_numpy(np.ascontiguousarray(inputs[name], self._dtypes[name])).cuda()
                    keep.append(tensor)
                    if not self.context.set_input_shape(name, tuple(tensor.shape)):
                        raise ValueError(f"input {name!r} shape {tuple(tensor.shape)} is outside the engine's profile")
                    self.context.set_tensor_address(name, tensor.data_ptr())
                for name in self.output_names:
                    shape = tuple(self.context.get_tensor_shape(name))
                    outputs[name] = torch.empty(shape, dtype=self._torch_dtype(self._dtypes[name]), device="cuda")
                    self.context.set_tensor_address(name, outputs[name].data_ptr())
                ok = self.context.execute_async_v3(self.stream.cuda_stream)
            else:
                bindings = [0] * self.engine.num_bindings
                for name in self.input_names:
                    index = self._binding_index[name]
                    tensor = torch.from_numpy(np.ascontiguousarray(inputs[name], self._dtypes[name])).cuda()
                    keep.append(tensor)
                    if not self.context.set_binding_shape(index, tuple(tensor.shape)):
                        raise ValueError(f"input {name!r} shape {tuple(tensor.shape)} is outside the engine's profile")
                    bindings[index] = tensor.data_ptr()
                for name in self.output_names:
                    index = self._binding_index[name]
                    shape = tuple(self.context.get_binding_shape(index))
                    outputs[name] = torch.empty(shape, dtype=self._torch_dtype(self._dtypes[name]), device="cuda")
                    bindings[index] = outputs[name].data_ptr()
                ok = self.context.execute_async_v2(bindings, self.stream.cuda_stream)
        if not ok:
            raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
        self.stream.synchronize()
        return {name: outputs[name].cpu().numpy() for name in self.output_names}


def engine_summary(engine) -> dict[str, Any]:
    """Inputs/outputs with shapes and dtypes of a deserialised engine (for `ros2-pose engine info`)."""
    executor = TensorRTExecutor(engine)
    engine_obj = executor.engine
    io = {}
    for name in executor.input_names + executor.output_names:
        if executor.api == "tensors-v3":
            shape = tuple(engine_obj.get_tensor_shape(name))
        else:
            shape = tuple(engine_obj.get_binding_shape(executor._binding_index[name]))
        io[name] = {"mode": "input" if name in executor.input_names else "output", "shape": list(shape),
                    "dtype": str(executor._dtypes[name])}
    return {"api": executor.api, "tensors": io}
