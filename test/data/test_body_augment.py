import numpy as np
import pytest

from ros2_pose.data.body_augment import (AugmentationConfigError, SpatialAugmentParams, apply_transform,
                                         build_transform, left_right_permutation, sample_transform)
from ros2_pose.sim.skeleton import BODYPOSE18_KEYPOINTS, COCO_KEYPOINTS


def test_left_right_permutation_swaps_partners_in_both_orders():
    perm = left_right_permutation(COCO_KEYPOINTS)
    assert COCO_KEYPOINTS[perm[COCO_KEYPOINTS.index("left_wrist")]] == "right_wrist"
    assert perm[0] == 0
    perm18 = left_right_permutation(BODYPOSE18_KEYPOINTS)
    assert BODYPOSE18_KEYPOINTS[perm18[BODYPOSE18_KEYPOINTS.index("right_ear")]] == "left_ear"
    assert perm18[BODYPOSE18_KEYPOINTS.index("neck")] == BODYPOSE18_KEYPOINTS.index("neck")


def test_flip_mirrors_image_mask_and_keypoints_and_swaps_left_right():
    image = np.zeros((40, 60, 3), np.uint8)
    image[10, 5] = 255
    mask = np.zeros((40, 60), np.uint8)
    mask[10, 5] = 1
    kp = np.zeros((1, 17, 3))
    kp[0, COCO_KEYPOINTS.index("left_wrist")] = (5, 10, 2)
    kp[0, COCO_KEYPOINTS.index("right_wrist")] = (50, 30, 1)
    t = build_transform((29.5, 19.5), 1.0, 0.0, (0, 0), flip_x=True, flip_y=False, output_hw=(40, 60))
    out, out_mask, out_kp = apply_transform(t, image, mask, kp, (40, 60), left_right_permutation(COCO_KEYPOINTS))
    assert out[10, 54].tolist() == [255, 255, 255] and out_mask[10, 54] == 1
    # The point that was the left wrist is now at the mirrored place and is called the right wrist.
    np.testing.assert_allclose(out_kp[0, COCO_KEYPOINTS.index("right_wrist")], (54, 10, 2))
    np.testing.assert_allclose(out_kp[0, COCO_KEYPOINTS.index("left_wrist")], (9, 30, 1))
    both = build_transform((29.5, 19.5), 1.0, 0.0, (0, 0), flip_x=True, flip_y=True, output_hw=(40, 60))
    assert not both.swap_left_right


def test_person_centric_rotation_zoom_translation_move_everything_together():
    rng = np.random.default_rng(0)
    params = SpatialAugmentParams(zoom_prob=1.0, zoom_ratio_min=0.8, zoom_ratio_max=1.2)
    image = np.zeros((120, 160, 3), np.uint8)
    kp = np.zeros((1, 17, 3))
    kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = np.linspace(50, 110, 17), np.linspace(20, 100, 17), 2
    for x, y in kp[0, :, :2].astype(int):
        image[y - 1:y + 2, x - 1:x + 2] = 200
    for _ in range(5):
        t = sample_transform(rng, params, (120, 160), (64, 64), center=(80, 60), person_height=80)
        out, _, out_kp = apply_transform(t, image, None, kp, (64, 64), left_right_permutation(COCO_KEYPOINTS))
        inside = (out_kp[0, :, 0] >= 1) & (out_kp[0, :, 0] <= 62) & (out_kp[0, :, 1] >= 1) & (out_kp[0, :, 1] <= 62)
        for x, y in out_kp[0, inside, :2]:   # each moved keypoint lands on its (blurred) bright pixel
            assert out[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].max() > 0
    # Person-centric scaling: a person of 80 px becomes 0.6 * 64 px tall without zoom.
    t = sample_transform(rng, SpatialAugmentParams.identity(), (120, 160), (64, 64), center=(80, 60), person_height=80)
    np.testing.assert_allclose(np.abs(np.linalg.det(t.matrix[:, :2])), (0.6 * 64 / 80) ** 2)
    np.testing.assert_allclose(t.matrix @ [80, 60, 1], [31.5, 31.5])


def test_bad_parameters_are_refused():
    with pytest.raises(AugmentationConfigError, match="probability"):
        SpatialAugmentParams(flip_lr_prob=2)
    with pytest.raises(AugmentationConfigError, match="unknown spatial_aug_params"):
        SpatialAugmentParams.from_dict({"flip_prob": 0.5})
    with pytest.raises(AugmentationConfigError, match="centre"):
        sample_transform(np.random.default_rng(0), SpatialAugmentParams(), (10, 10), (8, 8))
