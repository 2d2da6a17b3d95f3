"""Drone evaluation: per-camera aggregation of the seed's metrics, per-model rows, table and JSON."""
import json

import numpy as np
import pytest

from ros2_pose.evaluation.drone import (DroneEvaluation, DroneFrameRecord, metrics_table, summarise_with_cameras,
                                        write_json)
from ros2_pose.evaluation.pose_metrics import summarise_pose_metrics
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix
from ros2_pose.sim.drone import MODELS

POINTS = MODELS["drone_large"].keypoints()


def camera(f):
    return CameraModel(np.array([[f, 0, 320.0], [0, f, 240.0], [0, 0, 1]]), width=640, height=480)


def poses():
    truths = [RigidTransform(axis_angle_to_matrix([0.1 * i, 0.2, 0]), np.array([0.1 * i, 0, 3.0 + i])) for i in range(4)]
    estimates = [RigidTransform(truths[0].rotation, truths[0].translation + [0.01, 0, 0]),  # 1 cm off: ACC2 correct
                 RigidTransform(axis_angle_to_matrix([0.1, 0.2 + np.radians(4), 0]), truths[1].translation),
                 None,                                                         # failure: wrong everywhere
                 RigidTransform(truths[3].rotation, truths[3].translation + [0, 0, 0.5])]
    return estimates, truths


def test_same_camera_matches_summarise_pose_metrics():
    estimates, truths = poses()
    together = summarise_pose_metrics(estimates, truths, POINTS, camera(500))
    per_sample = summarise_with_cameras(estimates, truths, POINTS, [camera(500)] * 4)
    for key in ("NPE", "AD", "ACC2", "ACC5", "ADD2", "ADD5", "Proj2", "Proj5", "valid", "count"):
        assert per_sample[key] == pytest.approx(together[key]), key
    assert per_sample["valid"] == 75.0 and per_sample["ACC2"] == 25.0 and per_sample["ACC5"] == 50.0


def test_projection_metrics_use_each_samples_camera():
    estimates, truths = poses()
    short = summarise_with_cameras(estimates, truths, POINTS, [camera(100)] * 4)
    long = summarise_with_cameras(estimates, truths, POINTS, [camera(5000)] * 4)
    mixed = summarise_with_cameras(estimates, truths, POINTS, [camera(100), camera(100), camera(5000), camera(5000)])
    assert short["Proj2"] > long["Proj2"]
    assert short["ADD5"] == long["ADD5"] == mixed["ADD5"]  # metric errors do not depend on the camera
    with pytest.raises(ValueError, match="as many"):
        summarise_with_cameras(estimates, truths, POINTS, [camera(100)])


def test_rows_per_drone_model_table_and_json_without_infinity(tmp_path):
    estimates, truths = poses()
    evaluation = DroneEvaluation()
    for i, (e, t) in enumerate(zip(estimates, truths)):
        evaluation.records.append(DroneFrameRecord(i, "drone_large", 3.0, "ok" if e else "pnp_failed", t, e, camera(500), 5.0))
    evaluation.records.append(DroneFrameRecord(9, "drone_small", 1.0, "no_box", truths[0], None, camera(500), 3.0))
    metrics = evaluation.metrics({"drone_large": POINTS, "drone_small": MODELS["drone_small"].keypoints()})
    assert metrics["drone_large"]["count"] == 4 and metrics["drone_large"]["frames_pnp_failed"] == 1
    assert metrics["drone_small"]["valid"] == 0 and metrics["drone_small"]["NPE"] == float("inf")
    table = metrics_table(metrics)
    assert "| drone_large |" in table and "ADD5" in table.splitlines()[0]
    write_json({"per_drone_model": metrics}, tmp_path / "m.json")
    loaded = json.loads((tmp_path / "m.json").read_text())  # strict JSON: no Infinity
    assert loaded["per_drone_model"]["drone_small"]["NPE"] is None
    assert loaded["per_drone_model"]["drone_large"]["ACC5"] == 50.0
