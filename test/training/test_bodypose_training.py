import csv

import cv2
import numpy as np
import pytest
import torch

from ros2_pose.data.body_dataset import convert_body_dataset, load_dataset_spec
from ros2_pose.models.bodypose import BodyPoseNet
from ros2_pose.sim.coco_export import CocoWriter, PersonRecord
from ros2_pose.sim.skeleton import COCO_SKELETON
from ros2_pose.training.bodypose import (bodypose_loss, make_optimizer, merge_defaults, soft_start_annealing_lr,
                                         train_bodypose)
from ros2_pose.training.run import ConfigError

from body_specs import write_coco_spec


def make_dataset(root, images=4):
    rng = np.random.default_rng(0)
    with CocoWriter(root / "coco", image_format="png") as writer:
        for _ in range(images):
            rgb = np.full((64, 64, 3), 40, np.uint8)
            cx = rng.uniform(24, 40)
            kp = np.zeros((17, 3))
            kp[:, 0] = cx + np.linspace(-10, 10, 17)
            kp[:, 1] = np.linspace(6, 58, 17)
            kp[:, 2] = 2
            for a, b in COCO_SKELETON:
                cv2.line(rgb, tuple(int(v) for v in kp[a - 1, :2]), tuple(int(v) for v in kp[b - 1, :2]), (220, 180, 90), 2)
            writer.add(rgb, [PersonRecord(1, (cx - 12, 4, cx + 12, 60), kp)])
    write_coco_spec(root)
    convert_body_dataset(load_dataset_spec(root / "spec.json"), root / "data", val_fraction=0.0)
    return root / "data"


def tiny_config(data, epochs):
    return merge_defaults({
        "data": str(data), "num_epoch": epochs, "checkpoint_n_epoch": 1, "max_ckpt_to_keep": 2,
        "model": {"width": 4, "stages": 2, "kernel_regularization_factor": 0.0},
        "optimizer": {"learning_rate_schedule": {"soft_start": 0.0, "annealing": 1.0, "base_learning_rate": 0.05,
                                                 "min_learning_rate": 1e-4}},
        "dataloader": {"batch_size": 2, "image_dims": {"height": 64, "width": 64},
                       "augmentation_config": {"spatial_aug_params": {"rotate_deg_max": 10, "rotate_deg_min": -10,
                                                                      "translate_max_x": 4, "translate_min_x": -4,
                                                                      "translate_max_y": 4, "translate_min_y": -4}}},
    })


def test_soft_start_annealing_schedule_shape():
    lr = [soft_start_annealing_lr(p, 2e-5, 8e-8, 0.05, 0.5) for p in (0.0, 0.025, 0.05, 0.3, 0.5, 0.75, 1.0)]
    assert lr[0] == pytest.approx(8e-8) and lr[2] == pytest.approx(2e-5) and lr[3] == lr[4] == pytest.approx(2e-5)
    assert lr[0] < lr[1] < lr[2] and lr[4] > lr[5] > lr[6] and lr[6] == pytest.approx(8e-8)
    assert lr[1] == pytest.approx(np.sqrt(2e-5 * 8e-8))  # exponential ramp: geometric midpoint


def test_loss_covers_every_stage_and_ignores_masked_cells():
    target = torch.zeros(1, 19, 4, 4), torch.zeros(1, 38, 4, 4)
    stages = [(torch.ones(1, 19, 4, 4), torch.zeros(1, 38, 4, 4))] * 3
    mask = torch.ones(1, 4, 4)
    loss, parts = bodypose_loss(stages, *target, mask)
    assert float(loss) == pytest.approx(3 * 19) and parts["paf"] == 0
    assert float(bodypose_loss(stages, *target, torch.zeros(1, 4, 4))[0]) == 0


def test_optimizer_type_picks_sgd_or_adam_with_the_layer_multipliers():
    model = BodyPoseNet(width=4, stages=2)
    sgd = make_optimizer(model, merge_defaults({}))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    config = merge_defaults({"optimizer": {"type": "adam", "momentum": 0.8, "grad_weights_dict": {"layers.b0": 0.5}}})
    adam = make_optimizer(model, config)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.8, 0.999)
    assert {g["name"]: g["multiplier"] for g in adam.param_groups}["layers.b0.weight"] == 0.5
    with pytest.raises(ConfigError, match="optimizer.type"):
        make_optimizer(model, merge_defaults({"optimizer": {"type": "rmsprop"}}))
    with pytest.raises(ConfigError, match="use_nesterov"):
        make_optimizer(model, merge_defaults({"optimizer": {"type": "adam", "use_nesterov": True}}))


def test_tiny_training_run_lowers_the_loss_keeps_numbered_checkpoints_and_resumes(tmp_path):
    data = make_dataset(tmp_path)
    run = tmp_path / "run"
    train_bodypose(tiny_config(data, 2), run, progress=lambda _: None)
    rows = list(csv.DictReader(open(run / "curves.csv")))
    assert len(rows) == 2
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]
    assert (run / "model/model.pt").is_file() and (run / "model/model.yaml").is_file()
    messages = []
    train_bodypose(tiny_config(data, 3), run, progress=messages.append)
    assert "resumed after epoch 2" in messages
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0002.pt", "epoch_0003.pt"]
    rows = list(csv.DictReader(open(run / "curves.csv")))
    assert [int(float(r["epoch"])) for r in rows] == [0, 1, 2]


def test_pretrained_graph_loading(tmp_path):
    data = make_dataset(tmp_path, images=2)
    first = tmp_path / "first"
    train_bodypose(tiny_config(data, 1), first, progress=lambda _: None)
    config = tiny_config(data, 1)
    config.update(pretrained_weights=str(first / "model"), load_graph=True)
    model = train_bodypose(config, tmp_path / "second", progress=lambda _: None)
    assert isinstance(model, BodyPoseNet)


def test_several_datasets_train_together_in_order(tmp_path):
    from ros2_pose.training.bodypose import BodyPoseSamples

    first, second = make_dataset(tmp_path / "a", images=3), make_dataset(tmp_path / "b", images=2)
    config = dict(tiny_config(first, 1), data=[str(first), str(second)])
    both = BodyPoseSamples(config["data"], "train", config, augment=False)
    one = BodyPoseSamples(str(second), "train", config, augment=False)
    assert len(both) == 5 and len(one) == 2
    np.testing.assert_array_equal(both.item(3)["image"], one.item(0)["image"])
    for image, expected in zip(both.sample(4, 0), one.sample(1, 0)):
        np.testing.assert_array_equal(image, expected)
    with pytest.raises(IndexError):
        both.item(5)
    with pytest.raises(ConfigError, match="list of them"):
        BodyPoseSamples([str(first), 3], "train", config, augment=False)
    train_bodypose(config, tmp_path / "run", progress=lambda _: None)
    assert (tmp_path / "run" / "model" / "model.pt").is_file()
