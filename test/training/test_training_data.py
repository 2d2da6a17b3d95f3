"""Training on several dataset folders at once (`--data A B`): splits concatenated, mismatches refused."""
import argparse

import numpy as np
import pytest

from ros2_pose.data.dataset import DatasetError, DatasetWriter, FieldSpec
from ros2_pose.training.tasks import dolly as dolly_task
from ros2_pose.training.tasks import dolly_detector as detector_task
from ros2_pose.training.tasks import drone as drone_task
from ros2_pose.training.tasks._common import dataset_folders, load_splits


def write(folder, values, task="toy", shape=(2,), fractions=(0.5, 0.5, 0.0)):
    writer = DatasetWriter(folder, task, {"x": FieldSpec.of(np.float32, shape), "ok": (np.bool_, ())},
                           count=len(values))
    for value in values:
        writer.append({"x": np.full(shape, value, np.float32), "ok": value >= 0})
    writer.finish(fractions=fractions, guard=0)
    return str(folder)


def test_splits_of_several_datasets_are_concatenated_in_order(tmp_path):
    a = write(tmp_path / "a", [0, 1, 2, 3, -1, 5])
    b = write(tmp_path / "b", [10, 11, 12, 13], fractions=(1.0, 0.0, 0.0))  # training-only dataset
    train = load_splits([a, b], "train", ["x", "ok"], valid_field="ok")
    single = load_splits([a], "train", ["x", "ok"], valid_field="ok")
    assert set(train) == {"x"}
    values = train["x"][:, 0].tolist()
    assert values[:len(single["x"])] == single["x"][:, 0].tolist()
    assert values[len(single["x"]):] == [10, 11, 12, 13]
    assert -1 not in values  # invalid rows are dropped in every folder
    # b has no validation samples; a's are still used, and b alone has none at all.
    assert len(load_splits([a, b], "val", ["x", "ok"], valid_field="ok")["x"]) > 0
    with pytest.raises(ValueError, match="no usable samples"):
        load_splits([b], "val", ["x", "ok"], valid_field="ok")


def test_mismatched_datasets_are_refused(tmp_path):
    a = write(tmp_path / "a", [0, 1, 2, 3])
    other_task = write(tmp_path / "c", [0, 1, 2, 3], task="other")
    other_shape = write(tmp_path / "d", [0, 1, 2, 3], shape=(3,))
    with pytest.raises(DatasetError, match="different tasks"):
        load_splits([a, other_task], "train", ["x"], valid_field=None)
    with pytest.raises(ValueError, match="disagree on sample shapes"):
        load_splits([a, other_shape], "train", ["x"], valid_field=None)
    with pytest.raises(DatasetError):
        load_splits([a, str(tmp_path / "missing")], "train", ["x"], valid_field=None)


def test_config_data_may_be_one_folder_or_a_list():
    assert dataset_folders("data/x") == ["data/x"]
    assert dataset_folders(["data/x", "data/y"]) == ["data/x", "data/y"]
    with pytest.raises(SystemExit, match="no dataset"):
        dataset_folders(None)
    with pytest.raises(SystemExit, match="listed twice"):
        dataset_folders(["data/x", "data/../data/x"])


@pytest.mark.parametrize("task", [dolly_task, detector_task, drone_task])
def test_array_dataset_tasks_take_several_folders_on_the_command_line(task):
    parser = argparse.ArgumentParser()
    task.add_arguments(parser)
    assert parser.parse_args(["--data", "a", "b", "--out", "run"]).data == ["a", "b"]
