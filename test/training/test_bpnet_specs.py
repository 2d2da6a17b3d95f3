"""The BodyPoseNet spec files shipped in config/bpnet load with their defaults: the training specs
(including the stage-2 spec of the shipped model, which names its stage-1 model beside it), the
dataset specs and the inference spec."""
import pytest
import yaml

from ros2_pose.data.body_dataset import load_dataset_spec
from ros2_pose.pipelines.body_pose import BodyPoseInferenceConfig
from ros2_pose.resources import package_share
from ros2_pose.training.bodypose import DEFAULTS, dataset_folders
from ros2_pose.training.run import ConfigError, load_config, resolve_config_model

SPECS = package_share() / "config" / "bpnet"


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("train*.yaml")))
def test_training_specs_load(name):
    config = load_config(SPECS / name, DEFAULTS)
    assert config["num_epoch"] >= 1 and dataset_folders(config["data"])


def test_the_stage_two_spec_starts_from_the_model_beside_it(tmp_path):
    config = load_config(SPECS / "train_cpu_continue.yaml", DEFAULTS)
    assert config["pretrained_weights"] == "model"
    with pytest.raises(ConfigError):  # still in config/bpnet: no stage-1 model there
        resolve_config_model(config["pretrained_weights"], SPECS, key="pretrained_weights")
    (tmp_path / "model").mkdir()
    assert resolve_config_model("model", tmp_path, key="pretrained_weights") == (tmp_path / "model").resolve()


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.iterdir() if p.name.startswith("dataset_spec")))
def test_dataset_specs_load(name):
    spec = load_dataset_spec(SPECS / name)
    assert spec.data("train").images.name and spec.data("test").annotations.suffix == ".json"


def test_the_inference_spec_loads():
    config = BodyPoseInferenceConfig.from_dict(yaml.safe_load((SPECS / "infer.yaml").read_text()))
    assert tuple(config.input_shape) == (480, 640)
