import math

import numpy as np
import pytest

from ros2_pose.geometry.transforms import (
    RigidTransform,
    axis_angle_to_matrix,
    check_rotation_matrix,
    matrix_from_quat_xyzw,
    matrix_from_rotation_6d,
    matrix_from_rotation_6d_torch,
    matrix_to_axis_angle,
    quat_wxyz_to_xyzw,
    quat_xyzw_from_matrix,
    quat_xyzw_to_wxyz,
    rigid_from_axis_angle_translation,
    rotation_6d_from_matrix,
    rotation_6d_from_matrix_torch,
    rotation_error_deg,
    translation_error,
)

ROT_Z_90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
HALF_SQRT2 = math.sqrt(0.5)


def random_rotations(count, seed=0):
    rng = np.random.default_rng(seed)
    return axis_angle_to_matrix(rng.uniform(-math.pi, math.pi, size=(count, 3)) / math.sqrt(3))


def test_quaternion_of_90_deg_about_z_is_ros_xyzw():
    np.testing.assert_allclose(quat_xyzw_from_matrix(ROT_Z_90), [0, 0, HALF_SQRT2, HALF_SQRT2], atol=1e-12)
    np.testing.assert_allclose(matrix_from_quat_xyzw([0, 0, HALF_SQRT2, HALF_SQRT2]), ROT_Z_90, atol=1e-12)
    # rotating the x axis by it gives the y axis: the matrix acts on column vectors
    np.testing.assert_allclose(ROT_Z_90 @ [1, 0, 0], [0, 1, 0])


def test_quaternion_reordering_and_sign_canonicalisation():
    np.testing.assert_array_equal(quat_xyzw_to_wxyz([1, 2, 3, 4]), [4, 1, 2, 3])
    np.testing.assert_array_equal(quat_wxyz_to_xyzw([4, 1, 2, 3]), [1, 2, 3, 4])
    np.testing.assert_array_equal(quat_xyzw_to_wxyz([[1, 2, 3, 4]]), [[4, 1, 2, 3]])
    # 270 deg about z: transforms3d may hand back w < 0; we always return w >= 0
    quat = quat_xyzw_from_matrix(ROT_Z_90.T)
    assert quat[3] >= 0
    np.testing.assert_allclose(quat, [0, 0, -HALF_SQRT2, HALF_SQRT2], atol=1e-12)
    for rotation in random_rotations(50):
        quat = quat_xyzw_from_matrix(rotation)
        assert quat[3] >= 0 and abs(np.linalg.norm(quat) - 1) < 1e-12
        np.testing.assert_allclose(matrix_from_quat_xyzw(quat), rotation, atol=1e-12)
        np.testing.assert_allclose(matrix_from_quat_xyzw(-quat), rotation, atol=1e-12)


def test_matrix_from_quaternion_normalises_and_rejects_zero_or_nan():
    np.testing.assert_allclose(matrix_from_quat_xyzw([0, 0, 3.0, 3.0]), ROT_Z_90, atol=1e-12)
    with pytest.raises(ValueError, match="zero norm"):
        matrix_from_quat_xyzw([0, 0, 0, 0])
    with pytest.raises(ValueError, match="finite"):
        matrix_from_quat_xyzw([0, 0, np.nan, 1])
    with pytest.raises(ValueError, match="shape"):
        matrix_from_quat_xyzw([0, 0, 1])


def test_rigid_transform_compose_inverse_apply():
    rng = np.random.default_rng(1)
    rotations = random_rotations(3, seed=2)
    t_ab = RigidTransform(rotations[0], rng.normal(size=3))
    t_bc = RigidTransform(rotations[1], rng.normal(size=3))
    points_c = rng.normal(size=(10, 3))
    t_ac = t_ab @ t_bc
    np.testing.assert_allclose(t_ac.apply(points_c), t_ab.apply(t_bc.apply(points_c)), atol=1e-12)
    np.testing.assert_allclose(t_ac.as_matrix(), t_ab.as_matrix() @ t_bc.as_matrix(), atol=1e-12)
    assert (t_ac @ t_ac.inverse()).allclose(RigidTransform.identity(), 1e-12, 1e-12)
    assert RigidTransform.from_matrix(t_ac.as_matrix()).allclose(t_ac)
    assert RigidTransform.from_quat_xyzw(t_ac.quat_xyzw, t_ac.translation).allclose(t_ac, 1e-12, 0)
    np.testing.assert_allclose(t_ab.apply(points_c[0]), t_ab.apply(points_c[:1])[0])
    # child -> parent: an object 2 m in front of the camera, rotated 90 deg about z
    t_camera_object = RigidTransform(ROT_Z_90, [0, 0, 2])
    np.testing.assert_allclose(t_camera_object.apply([1, 0, 0]), [0, 1, 2], atol=1e-12)


def test_rigid_transform_is_immutable_and_validated():
    transform = RigidTransform(np.eye(3), [1, 2, 3])
    with pytest.raises(ValueError):
        transform.translation[0] = 5
    with pytest.raises(ValueError, match="orthonormal"):
        RigidTransform(np.eye(3) * 1.01, [0, 0, 0])
    with pytest.raises(ValueError, match="determinant"):
        RigidTransform(np.diag([1.0, 1.0, -1.0]), [0, 0, 0])
    with pytest.raises(ValueError, match="finite"):
        RigidTransform(np.eye(3), [0, np.inf, 0])
    with pytest.raises(ValueError, match="shape"):
        RigidTransform(np.eye(3), [0, 0])
    bad = np.eye(4)
    bad[3, 0] = 1
    with pytest.raises(ValueError, match="last row"):
        RigidTransform.from_matrix(bad)
    with pytest.raises(TypeError):
        transform.compose(np.eye(4))


def test_rotation_error_known_cases_and_batches():
    assert rotation_error_deg(np.eye(3), ROT_Z_90) == pytest.approx(90.0)
    assert rotation_error_deg(np.eye(3), np.diag([1.0, -1.0, -1.0])) == pytest.approx(180.0)
    assert rotation_error_deg(ROT_Z_90, ROT_Z_90) == pytest.approx(0.0, abs=1e-12)
    tiny = axis_angle_to_matrix([0, 0, math.radians(1e-6)])
    assert rotation_error_deg(np.eye(3), tiny) == pytest.approx(1e-6, rel=1e-6)  # precise near 0
    rotations = random_rotations(8)
    angles = np.degrees(np.linalg.norm(np.stack([matrix_to_axis_angle(r) for r in rotations]), axis=1))
    np.testing.assert_allclose(rotation_error_deg(np.broadcast_to(np.eye(3), (8, 3, 3)), rotations), angles, atol=1e-9)
    assert translation_error([0, 0, 0], [3, 4, 0]) == pytest.approx(5.0)
    np.testing.assert_allclose(translation_error(np.zeros((2, 3)), [[1, 0, 0], [0, 2, 0]]), [1, 2])


def test_rotation_6d_round_trip_and_gram_schmidt():
    rotations = random_rotations(20)
    x6 = rotation_6d_from_matrix(rotations)
    assert x6.shape == (20, 6)
    np.testing.assert_allclose(matrix_from_rotation_6d(x6), rotations, atol=1e-12)
    # a non-orthonormal 6D vector still gives a proper rotation whose first column follows a1
    rotation = matrix_from_rotation_6d([2, 0, 0, 1, 1, 0])
    np.testing.assert_allclose(rotation, np.eye(3), atol=1e-12)
    check_rotation_matrix(matrix_from_rotation_6d(np.random.default_rng(3).normal(size=6)))
    with pytest.raises(ValueError, match="collinear"):
        matrix_from_rotation_6d([1, 0, 0, 2, 0, 0])
    with pytest.raises(ValueError, match="zero first column"):
        matrix_from_rotation_6d([0, 0, 0, 1, 0, 0])


def test_rotation_6d_torch_matches_numpy_and_gradients_flow():
    torch = pytest.importorskip("torch")
    x6 = torch.tensor(np.random.default_rng(4).normal(size=(5, 6)), dtype=torch.float64, requires_grad=True)
    rotations = matrix_from_rotation_6d_torch(x6)
    np.testing.assert_allclose(rotations.detach().numpy(), matrix_from_rotation_6d(x6.detach().numpy()), atol=1e-12)
    target = torch.tensor(random_rotations(5, seed=5))
    loss = ((rotations - target) ** 2).sum()
    loss.backward()
    assert x6.grad is not None and torch.isfinite(x6.grad).all() and x6.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(matrix_from_rotation_6d_torch, (x6.detach()[:2].clone().requires_grad_(),))
    np.testing.assert_allclose(rotation_6d_from_matrix_torch(target).numpy(), rotation_6d_from_matrix(target.numpy()))


def test_axis_angle_and_rigid_from_rvec_tvec():
    np.testing.assert_allclose(axis_angle_to_matrix([0, 0, math.pi / 2]), ROT_Z_90, atol=1e-12)
    assert axis_angle_to_matrix(np.zeros((0, 3))).shape == (0, 3, 3)
    np.testing.assert_allclose(matrix_to_axis_angle(ROT_Z_90), [0, 0, math.pi / 2], atol=1e-12)
    transform = rigid_from_axis_angle_translation(np.array([[0.0], [0.0], [math.pi / 2]]), [1, 2, 3])
    np.testing.assert_allclose(transform.apply([1, 0, 0]), [1, 3, 3], atol=1e-12)
    with pytest.raises(ValueError, match="finite"):
        axis_angle_to_matrix([np.nan, 0, 0])


def test_closed_form_quaternion_matches_transforms3d():
    """The hand-written conversion (Shepperd) against transforms3d's eigen-solver, on random
    rotations, on each branch of the closed form (180 deg about x, y, z and near them) and on
    matrices perturbed within the rotation tolerance."""
    import cv2
    import transforms3d.quaternions as t3d

    def reference(rotation):
        wxyz = t3d.mat2quat(rotation)
        return quat_wxyz_to_xyzw(wxyz if wxyz[0] >= 0 else -wxyz)

    rng = np.random.default_rng(3)
    cases = list(random_rotations(500))
    for axis in np.eye(3):
        for angle in (np.pi, np.pi - 1e-4, np.pi / 2, 1e-9):
            cases.append(cv2.Rodrigues(axis * angle)[0])
    for rotation in cases:
        ours = quat_xyzw_from_matrix(rotation)
        expected = reference(rotation)
        if abs(expected[3]) < 1e-9:  # w = 0: q and -q are both canonical
            expected = expected if np.dot(expected, ours) >= 0 else -expected
        np.testing.assert_allclose(ours, expected, atol=1e-12)
    for rotation in random_rotations(100):
        noisy = rotation + rng.uniform(-2e-6, 2e-6, (3, 3))
        np.testing.assert_allclose(quat_xyzw_from_matrix(noisy), reference(noisy), atol=5e-6)
