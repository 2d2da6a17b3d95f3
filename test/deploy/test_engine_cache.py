"""Engine cache keys and stale-engine detection, and the TensorRT-free parts of engine building.
The cache takes the (de)serialiser as a function, so its logic runs here without TensorRT."""
import dataclasses
import importlib.util
import json

import pytest

from ros2_pose.cli.main import main as cli_main
from ros2_pose.deploy.engine_cache import (EngineCache, EngineFingerprint, EngineNotFoundError, StaleEngineError,
                                           rebuild_command)
from ros2_pose.deploy.tensorrt_engine import (ProfileError, default_profiles, onnx_input_shapes,
                                              parse_shape_argument, validate_profiles)

TENSORRT_IMPORTABLE = importlib.util.find_spec("tensorrt") is not None
HERE = EngineFingerprint(model_sha256="1" * 64, tensorrt_version="10.3.0", gpu_name="Orin", precision="fp16",
                         profiles=(("image", (1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64)),))


def _deserialize(engine_bytes):
    """Stand-in for trt.Runtime.deserialize_cuda_engine's contract: an engine, or None if unloadable."""
    return None if engine_bytes.startswith(b"CORRUPT") else {"engine": engine_bytes}


@pytest.mark.parametrize("field,value", [("model_sha256", "2" * 64), ("tensorrt_version", "8.6.1"),
                                         ("gpu_name", "H100"), ("precision", "int8"), ("dla_core", 0),
                                         ("profiles", ())])
def test_every_field_changes_the_key(field, value):
    other = dataclasses.replace(HERE, **{field: value})
    assert other.key != HERE.key
    assert len(HERE.differences(other)) == 1
    assert EngineFingerprint.from_dict(json.loads(json.dumps(other.to_dict()))) == other


def test_store_then_load_uses_the_cached_engine(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store("model", HERE, b"ENGINE-BYTES", onnx_path="model.onnx")
    assert path.name == f"model.{HERE.key}.engine" and cache.sidecar_path(path).is_file()
    built = []
    loaded = cache.load("model", HERE, _deserialize, build=lambda: built.append(1) or b"NEW")
    assert loaded.engine == {"engine": b"ENGINE-BYTES"} and not loaded.built and not built


def test_engine_from_another_tensorrt_is_reported_with_the_rebuild_command(tmp_path):
    cache = EngineCache(tmp_path)
    old = dataclasses.replace(HERE, tensorrt_version="8.6.1", gpu_name="Xavier")
    cache.store("model", old, b"OLD")
    with pytest.raises(StaleEngineError) as error:
        cache.load("model", HERE, _deserialize, onnx_path="models/x/model.onnx")
    message = str(error.value)
    assert "TensorRT version: engine built with 8.6.1, this machine has 10.3.0" in message
    assert "GPU: engine built for 'Xavier'" in message
    assert "model:" not in message  # same ONNX
    assert "ros2-pose engine build --onnx models/x/model.onnx --precision fp16" in message
    assert "--max image:4x3x64x64" in message


def test_sidecar_mismatch_at_the_same_path_is_stale(tmp_path):
    # Someone copied an engine from another machine under this machine's file name.
    cache = EngineCache(tmp_path)
    path = cache.store("model", HERE, b"X")
    foreign = dataclasses.replace(HERE, model_sha256="f" * 64)
    cache.sidecar_path(path).write_text(json.dumps({"fingerprint": foreign.to_dict()}))
    with pytest.raises(StaleEngineError, match="model: engine built from ONNX sha256 ffffffffffff"):
        cache.load("model", HERE, _deserialize)
    cache.sidecar_path(path).unlink()
    with pytest.raises(StaleEngineError, match="origin unknown"):
        cache.load("model", HERE, _deserialize)


def test_engine_that_does_not_deserialize_is_stale_or_rebuilt(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store("model", HERE, b"CORRUPT")
    with pytest.raises(StaleEngineError, match="did not deserialize"):
        cache.load("model", HERE, _deserialize)
    rebuilt = cache.load("model", HERE, _deserialize, build=lambda: b"FRESH")
    assert rebuilt.built and rebuilt.engine == {"engine": b"FRESH"}
    assert rebuilt.path.read_bytes() == b"FRESH"
    assert cache.load("model", HERE, _deserialize).engine == {"engine": b"FRESH"}


def test_missing_engine_is_built_when_allowed_else_not_found(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    with pytest.raises(EngineNotFoundError, match="ros2-pose engine build"):
        cache.load("model", HERE, _deserialize)
    result = cache.load("model", HERE, _deserialize, build=lambda: b"BUILT")
    assert result.built and json.loads(cache.sidecar_path(result.path).read_text())["size_bytes"] == 5


def test_rebuild_command_for_int8_and_dla():
    fingerprint = dataclasses.replace(HERE, precision="int8", dla_core=1, profiles=())
    command = rebuild_command("m.onnx", fingerprint, "/engines")
    assert command == "ros2-pose engine build --onnx m.onnx --precision int8 --dla-core 1 " \
                      "--calib-images <DIR> --out /engines"


def test_profiles_from_onnx_and_arguments(reference_model):
    shapes = onnx_input_shapes(reference_model / "model.onnx")
    assert shapes == {"image": (-1, 3, 64, 64)}
    profiles = default_profiles(shapes, max_batch=4, opt_batch=2)
    assert profiles == [("image", (1, 3, 64, 64), (2, 3, 64, 64), (4, 3, 64, 64))]
    assert validate_profiles(profiles, shapes) == profiles
    assert parse_shape_argument("image:1x3x64x64") == ("image", (1, 3, 64, 64))
    with pytest.raises(ProfileError, match="NAME:DxDxD"):
        parse_shape_argument("1x3x64x64")
    with pytest.raises(ProfileError, match="fixed at 64"):
        validate_profiles([("image", (1, 3, 32, 64), (1, 3, 64, 64), (1, 3, 64, 64))], shapes)
    with pytest.raises(ProfileError, match="min <= opt <= max"):
        validate_profiles([("image", (4, 3, 64, 64), (1, 3, 64, 64), (8, 3, 64, 64))], shapes)
    with pytest.raises(ProfileError, match="need --min/--opt/--max"):
        validate_profiles([], shapes)
    with pytest.raises(ProfileError, match="dynamic axes besides the batch"):
        default_profiles({"image": (-1, 3, -1, -1)})


def test_engine_build_cli_checks_arguments_before_needing_tensorrt(reference_model, tmp_path, capsys):
    onnx = str(reference_model / "model.onnx")
    assert cli_main(["engine", "build", "--onnx", onnx, "--out", str(tmp_path), "--min", "image:1x3x32x32",
                     "--opt", "image:1x3x64x64", "--max", "image:1x3x64x64"]) == 2
    assert "fixed at 64" in capsys.readouterr().err
    assert cli_main(["engine", "build", "--onnx", onnx, "--precision", "int8", "--out", str(tmp_path)]) == 2
    assert "--calib-images" in capsys.readouterr().err


@pytest.mark.skipif(TENSORRT_IMPORTABLE, reason="TensorRT imports here; this tests the message without it")
def test_engine_commands_exit_nonzero_without_tensorrt(reference_model, tmp_path, capsys):
    onnx = str(reference_model / "model.onnx")
    assert cli_main(["engine", "build", "--onnx", onnx, "--precision", "fp16", "--out", str(tmp_path)]) == 3
    assert "import tensorrt" in capsys.readouterr().err
    path = EngineCache(tmp_path).store("model", HERE, b"X")
    assert cli_main(["engine", "info", str(path)]) == 3
    captured = capsys.readouterr()
    assert '"gpu_name": "Orin"' in captured.out and "cannot load the engine here" in captured.err
