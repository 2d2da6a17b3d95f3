import numpy as np
import pytest

from ros2_pose.evaluation.pose_metrics import (angular_distance, average_distance, model_diagonal,
                                               normalised_position_error, projection_distance, summarise_pose_metrics)
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix

CAMERA = CameraModel([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]], width=640, height=480)
CUBE = np.array([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (-0.05, 0.05)])  # diagonal 0.3
TRUTH = RigidTransform(np.eye(3), [0.0, 0.0, 2.0])


def test_each_metric_on_hand_computed_cases():
    shifted = RigidTransform(np.eye(3), [0.03, 0.0, 2.04])  # 5 cm off
    assert normalised_position_error(shifted, TRUTH) == pytest.approx(0.05 / 2.0)
    assert average_distance(shifted, TRUTH, CUBE) == pytest.approx(0.05)
    sideways = RigidTransform(np.eye(3), [0.002, 0.0, 2.0])  # 2 mm sideways at 2 m = 0.5 px at f=500
    assert projection_distance(sideways, TRUTH, CUBE, CAMERA) == pytest.approx(np.mean(500 * 0.002 / (2.0 + CUBE[:, 2])))
    turned = RigidTransform(axis_angle_to_matrix([0, 0, np.radians(3.0)]), TRUTH.translation)
    assert angular_distance(turned, TRUTH) == pytest.approx(np.radians(3.0))
    assert model_diagonal(CUBE) == pytest.approx(0.3)


def test_summary_thresholds_and_failures():
    estimates = [
        TRUTH,                                                                   # perfect
        RigidTransform(axis_angle_to_matrix([0, 0, np.radians(3.0)]), [0.0, 0.0, 2.03]),  # 3 deg, 3 cm
        None,                                                                    # PnP failed
        RigidTransform(np.eye(3), [0.0, 0.0, 2.012]),                           # 1.2 cm deep: ADD 1.2 cm
    ]
    summary = summarise_pose_metrics(estimates, [TRUTH] * 4, CUBE, CAMERA)
    assert summary["count"] == 4 and summary["valid"] == 75.0
    assert summary["ACC2"] == 50.0 and summary["ACC5"] == 75.0
    # ADD thresholds: 2% and 5% of 0.3 m = 6 mm and 15 mm.
    assert summary["ADD2"] == 25.0 and summary["ADD5"] == 50.0
    assert summary["NPE"] == pytest.approx(np.mean([0, 0.015, 0.006]))
    assert summary["AD"] == pytest.approx(np.radians(3.0) / 3)
    assert 25.0 <= summary["Proj2"] <= summary["Proj5"] <= 75.0


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="as many estimates"):
        summarise_pose_metrics([TRUTH], [TRUTH, TRUTH], CUBE, CAMERA)
