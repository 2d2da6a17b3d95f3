import importlib.util
import logging
import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from ros2_pose.deploy.model_spec import (ArchitectureNotAllowedError, ModelSpec, build_torch_model,
                                         load_model_config, resolve_architecture)
from ros2_pose.deploy.runner import (BackendUnavailableError, PrecisionUnsupportedError, RunnerInputError,
                                     create_runner, nonfinite_outputs, outputs_finite)

TENSORRT_IMPORTABLE = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def image_batch():
    return {"image": np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)}


def test_torch_and_onnxruntime_runners_agree(reference_model, image_batch):
    torch_runner = create_runner(reference_model, backend="torch", warmup=1)
    ort_runner = create_runner(reference_model, backend="onnxruntime", warmup=1, intra_op_threads=1)
    assert torch_runner.input_names == ort_runner.input_names == ["image"]
    assert torch_runner.output_names == ort_runner.output_names == ["heatmaps", "pose"]
    a, b = torch_runner.run(image_batch), ort_runner.run(image_batch)
    assert a["heatmaps"].shape == (2, 4, 16, 16) and a["pose"].shape == (2, 6)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-4)
    assert outputs_finite(a)
    assert ort_runner.describe()["intra_op_threads"] == 1
    assert torch_runner.describe()["backend"] == "torch" and "fallback_reason" not in torch_runner.describe()


def test_runner_loads_the_shipped_weights_not_fresh_ones(reference_model, image_batch):
    spec = ModelSpec.from_folder(reference_model)
    fresh = build_torch_model(spec.load_config(), weights=None)
    with torch.no_grad():
        fresh_pose = fresh(image=torch.from_numpy(image_batch["image"]))["pose"].numpy()
    loaded = create_runner(reference_model, backend="torch").run(image_batch)["pose"]
    assert np.abs(fresh_pose - loaded).max() > 1e-3


def test_onnx_file_alone_is_a_model_spec(reference_model, image_batch):
    runner = create_runner(reference_model / "model.onnx")
    assert runner.run(image_batch)["pose"].shape == (2, 6)


def test_float64_inputs_are_converted_and_wrong_inputs_refused(reference_model):
    runner = create_runner(reference_model)
    assert runner.run({"image": np.zeros((1, 3, 64, 64))})["pose"].dtype == np.float32
    with pytest.raises(RunnerInputError, match="takes inputs"):
        runner.run({"img": np.zeros((1, 3, 64, 64), np.float32)})
    with pytest.raises(RunnerInputError, match="rank"):
        runner.run({"image": np.zeros((3, 64, 64), np.float32)})
    with pytest.raises(RunnerInputError, match="dtype"):
        runner.run({"image": np.zeros((1, 3, 64, 64), np.int32)})


def test_nonfinite_outputs_are_reported():
    outputs = {"pose": np.array([[0.0, np.nan]]), "heatmaps": np.ones((1, 2))}
    assert not outputs_finite(outputs)
    assert nonfinite_outputs(outputs) == ["pose"]
    assert outputs_finite({"pose": np.zeros(3)})


@pytest.mark.skipif(TENSORRT_IMPORTABLE, reason="TensorRT imports here; this tests its absence")
def test_missing_tensorrt_raises_backend_unavailable(reference_model):
    with pytest.raises(BackendUnavailableError, match="import tensorrt"):
        create_runner(reference_model, backend="tensorrt", precision="fp16", device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only case")
def test_cuda_on_a_cpu_machine_is_unavailable_not_silently_cpu(reference_model):
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        create_runner(reference_model, backend="torch", device="cuda")
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
            create_runner(reference_model, backend="onnxruntime", device="cuda")


@pytest.mark.skipif(TENSORRT_IMPORTABLE or torch.cuda.is_available(), reason="needs a machine without TensorRT/GPU")
def test_fallback_only_when_asked_and_logged_and_described(reference_model, image_batch, caplog):
    with caplog.at_level(logging.WARNING, logger="ros2_pose.deploy.runner"):
        runner = create_runner(reference_model, backend="tensorrt", precision="fp16", device="cuda",
                               fallback="onnxruntime")
    assert runner.backend == "onnxruntime" and runner.precision == "fp32" and runner.device == "cpu"
    info = runner.describe()
    assert info["requested"] == {"backend": "tensorrt", "precision": "fp16", "device": "cuda"}
    assert "tensorrt" in info["fallback_reason"].lower()
    assert any("falling back to onnxruntime" in r.getMessage() for r in caplog.records)
    assert runner.run(image_batch)["pose"].shape == (2, 6)


def test_unsupported_precisions_are_refused(reference_model):
    with pytest.raises(PrecisionUnsupportedError):
        create_runner(reference_model, backend="onnxruntime", precision="int8")
    with pytest.raises(PrecisionUnsupportedError):
        create_runner(reference_model, backend="torch", precision="fp16", device="cpu")
    with pytest.raises(ValueError, match="backend must be"):
        create_runner(reference_model, backend="tflite")


@pytest.mark.parametrize("architecture", [
    "os:system",                                        # outside the package
    "ros2_pose.modelsevil:Net",                         # prefix trick
    "ros2_pose.models.tiny_reference:_conv_bn_relu",    # inside, but not an nn.Module class
    "ros2_pose.models.tiny_reference:torch",            # a module attribute, not a class
    "ros2_pose.models..x:Y",
])
def test_architectures_outside_ros2_pose_models_are_refused(architecture):
    with pytest.raises(ArchitectureNotAllowedError):
        resolve_architecture(architecture)


def test_model_yaml_naming_a_foreign_architecture_is_refused_before_import(reference_model, tmp_path):
    folder = tmp_path / "evil"
    shutil.copytree(reference_model, folder)
    config = yaml.safe_load((folder / "model.yaml").read_text())
    config["architecture"] = "subprocess:Popen"
    (folder / "model.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ArchitectureNotAllowedError, match="ros2_pose.models"):
        create_runner(folder, backend="torch")


class _NotAStateDict:
    """Pickling an instance of this is what weights_only loading must refuse."""


def test_weights_are_loaded_with_weights_only(reference_model, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(reference_model, folder)
    torch.save({"payload": _NotAStateDict()}, folder / "model.pt")
    with pytest.raises(pickle.UnpicklingError):
        create_runner(folder, backend="torch")


def test_missing_model_file_names_it_and_lists_the_folder(reference_model, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(reference_model, folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(FileNotFoundError) as error:
        create_runner(folder, backend="onnxruntime")
    assert "model.onnx" in str(error.value) and "model.pt" in str(error.value)
    with pytest.raises(FileNotFoundError, match="no shipped model"):
        create_runner("no_such_shipped_model")


def test_model_yaml_errors_are_specific(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump({"architecture": "ros2_pose.models.tiny_reference:TinyReferenceNet",
                                    "inputs": {"image": [1, 3, "h", "w"]}, "outputs": {"pose": [1, 6]}}))
    config = load_model_config(path)
    with pytest.raises(ValueError, match="dynamic axis 2"):
        config.example_inputs()
    path.write_text(yaml.safe_dump({"architecture": "x", "inputs": []}))
    with pytest.raises(ValueError, match="missing `outputs`"):
        load_model_config(path)
