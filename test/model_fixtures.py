"""Shared fixtures with small real models (loaded by test/conftest.py for every test folder)."""
import pytest

from ros2_pose.demo.fixed_output_models import fixed_model_set


@pytest.fixture(scope="session")
def fixed_dolly_models(pytestconfig, tmp_path_factory):
    """Detector and pose networks of the shipped architectures with fixed outputs (plus a NaN one),
    exported to ONNX; reused across runs through pytest's cache (the export takes seconds)."""
    cache = getattr(pytestconfig, "cache", None)
    root = (cache.mkdir("ros2_pose_fixed_dolly_models") if cache is not None
            else tmp_path_factory.mktemp("fixed_dolly_models"))
    return fixed_model_set(root)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for the module: on the shared 2-core machines OpenMP's second thread
    spins against the other processes and makes tiny training steps ~10x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
