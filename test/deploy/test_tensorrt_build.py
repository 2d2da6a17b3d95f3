"""TensorRT build-and-run: runs only where `import tensorrt` works and a CUDA GPU is present."""
import cv2
import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here (`import tensorrt` failed); "
                                             "engine build/run is tested on machines that have it")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("TensorRT imports but no CUDA GPU is visible", allow_module_level=True)

from ros2_pose.deploy.calibration import CalibrationBatches, CalibrationCache, ImagePreprocess  # noqa: E402
from ros2_pose.deploy.engine_cache import EngineCache  # noqa: E402
from ros2_pose.deploy.export import file_sha256  # noqa: E402
from ros2_pose.deploy.runner import create_runner  # noqa: E402
from ros2_pose.deploy.tensorrt_engine import (build_engine, default_profiles, deserialize_engine,  # noqa: E402
                                              make_calibrator, onnx_input_shapes)


@pytest.fixture(scope="module")
def inputs():
    return {"image": np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)}


def test_fp32_engine_matches_onnxruntime_and_is_cached(reference_model, tmp_path, inputs):
    runner = create_runner(reference_model, backend="tensorrt", precision="fp32", device="cuda",
                           engine_dir=tmp_path, warmup=2)
    reference = create_runner(reference_model, backend="onnxruntime").run(inputs)
    outputs = runner.run(inputs)
    for name in reference:
        np.testing.assert_allclose(outputs[name], reference[name], atol=1e-3)
    assert runner.describe()["backend"] == "tensorrt"
    engines = list(tmp_path.glob("model.*.engine"))
    assert len(engines) == 1 and EngineCache.read_sidecar(engines[0]).tensorrt_version == trt.__version__
    again = create_runner(reference_model, backend="tensorrt", precision="fp32", device="cuda",
                          engine_dir=tmp_path, build_engine_if_missing=False)
    np.testing.assert_allclose(again.run(inputs)["pose"], outputs["pose"], atol=1e-6)


def test_fp16_engine_is_close_to_fp32(reference_model, tmp_path, inputs):
    runner = create_runner(reference_model, backend="tensorrt", precision="fp16", device="cuda", engine_dir=tmp_path)
    reference = create_runner(reference_model, backend="onnxruntime").run(inputs)
    np.testing.assert_allclose(runner.run(inputs)["pose"], reference["pose"], atol=5e-2)


def test_int8_build_calibrates_and_writes_the_cache(reference_model, tmp_path):
    images = tmp_path / "calib"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        cv2.imwrite(str(images / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    onnx = reference_model / "model.onnx"
    batches = CalibrationBatches(images, ImagePreprocess(64, 64), batch_size=2)
    cache_path = tmp_path / "model.calib"
    calibrator = make_calibrator(onnx, batches, cache_path)
    profiles = default_profiles(onnx_input_shapes(onnx), max_batch=2)
    engine_bytes = build_engine(onnx, "int8", 256, profiles, calibrator=calibrator)
    assert deserialize_engine(engine_bytes) is not None
    assert calibrator.batches_served == 4
    table = CalibrationCache(cache_path, file_sha256(onnx)).read()
    assert table and cache_path.read_bytes() == table
    # Second build reads the cache and needs no images.
    assert build_engine(onnx, "int8", 256, profiles, calibrator=make_calibrator(onnx, None, cache_path))
