"""Fixtures of the deployment tests: the tiny reference model written once per session."""
import pytest

from ros2_pose.deploy.reference_model import write_reference_model


@pytest.fixture(scope="session")
def reference_model(tmp_path_factory):
    """A model folder (model.pt, model.yaml, model.onnx, onnx_parity.json) of TinyReferenceNet."""
    return write_reference_model(tmp_path_factory.mktemp("reference_model") / "tiny_reference")

