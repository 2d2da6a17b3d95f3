import numpy as np
import torch

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.crop import RoiCrop
from ros2_pose.codecs.center_heatmap import decode_best_box, encode_targets
from ros2_pose.models.center_detector import CenterDetector, focal_loss
from ros2_pose.models.dolly_pose import DollyPoseNet
from ros2_pose.codecs.dolly_pose import (MASK_SIZE, center_crop_target, depth_ratio_target,
                                         translation_from_prediction)

CAMERA = CameraModel(K=[[500, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], width=640, height=480)


def test_pose_net_shapes_and_half_width_is_smaller():
    full, half = DollyPoseNet("full"), DollyPoseNet("half")
    out = half(torch.rand(2, 3, 128, 128), torch.rand(2, 4))
    assert out["rotation_6d"].shape == (2, 6)
    assert out["center_crop"].shape == (2, 2)
    assert out["log_depth_ratio"].shape == (2, 1)
    assert out["mask_logits"].shape == (2, 1, MASK_SIZE, MASK_SIZE)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(half) < 0.6 * count(full)
    assert len([m for m in half.encoder.modules() if isinstance(m, torch.nn.Conv2d)]) == 4


def test_translation_targets_round_trip_through_the_crop_camera():
    rng = np.random.default_rng(0)
    translations = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-0.5, 0.5, 20), rng.uniform(0.5, 6, 20)])
    K_crop = []
    for t in translations:
        centre = CAMERA.project(t[None])[0]
        half_size = 400 / t[2]
        crop = RoiCrop.from_box([centre[0] - half_size, centre[1] - half_size * 0.6,
                                 centre[0] + half_size * 1.1, centre[1] + half_size])
        K_crop.append(crop.crop_camera(CAMERA).K)
    K_crop = np.array(K_crop)
    center = center_crop_target(translations, K_crop)
    log_ratio = depth_ratio_target(translations[:, 2], K_crop[:, 0, 0])
    # The crop is around the object: its projected origin is near the crop's centre (0.5, 0.5).
    assert np.all(np.abs(center - 0.5) < 0.3)
    np.testing.assert_allclose(translation_from_prediction(center, log_ratio, K_crop), translations, atol=1e-9)


def test_detector_targets_decode_back_to_the_box():
    boxes = np.array([[30.3, 40.1, 90.7, 75.2], [0, 0, 10, 10]], np.float32)
    targets = encode_targets(boxes, np.array([True, False]), 160)
    assert targets["heatmap"][0].max() == 1.0 and targets["heatmap"][1].max() == 0.0
    logits = np.log(np.clip(targets["heatmap"], 1e-6, 1 - 1e-6) / (1 - np.clip(targets["heatmap"], 1e-6, 1 - 1e-6)))
    decoded, scores = decode_best_box(logits, targets["size"], targets["offset"], 160)
    np.testing.assert_allclose(decoded[0], boxes[0], atol=1e-3)
    assert scores[0] > 0.99 and scores[1] < 0.01


def test_focal_loss_prefers_the_right_heatmap():
    targets = encode_targets(np.array([[40, 40, 80, 80]], np.float32), np.array([True]), 160)
    target = torch.from_numpy(targets["heatmap"])
    good = torch.logit(target.clamp(1e-3, 1 - 1e-3))
    assert float(focal_loss(good, target)) < float(focal_loss(torch.zeros_like(target) - 4, target))


def test_detector_output_shapes():
    out = CenterDetector(width=8, input_size=64)(torch.rand(1, 3, 64, 64))
    assert out["heatmap_logits"].shape == (1, 1, 16, 16)
    assert out["size"].shape == out["offset"].shape == (1, 2, 16, 16)


def test_allocentric_rotation_round_trip_and_centred_crop_is_identity():
    from ros2_pose.geometry.transforms import axis_angle_to_matrix
    from ros2_pose.codecs.dolly_pose import (allocentric_from_camera_rotation, camera_rotation_from_allocentric,
                                             crop_ray_rotation)

    centred = RoiCrop.from_box([319.5 - 50, 239.5 - 50, 319.5 + 50, 239.5 + 50]).crop_camera(CAMERA).K
    np.testing.assert_allclose(crop_ray_rotation(centred)[0], np.eye(3), atol=1e-9)
    corner = RoiCrop.from_box([0, 0, 100, 80]).crop_camera(CAMERA).K
    R_ray = crop_ray_rotation(corner)[0]
    ray = np.linalg.solve(corner, [63.5, 63.5, 1.0])
    np.testing.assert_allclose(R_ray @ [0, 0, 1], ray / np.linalg.norm(ray), atol=1e-9)
    R = axis_angle_to_matrix([0.3, -1.2, 0.5])
    R_allo = allocentric_from_camera_rotation(R, corner)
    np.testing.assert_allclose(camera_rotation_from_allocentric(R_allo, corner)[0], R, atol=1e-9)


def test_dataset_and_pipeline_share_the_network_input_sizes():
    from ros2_pose.data.builders import dolly as builder
    from ros2_pose.codecs.dolly_pose import CROP_SIZE
    from ros2_pose.pipelines.dolly import DETECTOR_INPUT_SIZE

    assert builder.DET_SIZE == DETECTOR_INPUT_SIZE and builder.CROP_SIZE == CROP_SIZE
