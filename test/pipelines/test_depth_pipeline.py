"""DepthEgoMotionPipeline with real (tiny) networks run by the real runner: odometry integrates a
known constant motion for pairs and triplets (with the first window's poses backfilled), stamps that
go back or jump restart it, NaN never comes out, and the floor-plane camera height matches a rendered
scene's ground truth."""
import numpy as np
import pytest
import torch

from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.deploy.runner import create_runner
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.models.depth_egomotion import POSE_SCALE, DepthNet, PoseNet
from ros2_pose.pipelines import depth_egomotion as pe
from ros2_pose.training.tasks.depth import depth_model_config, pose_model_config
from ros2_pose.training.depth_egomotion import DEFAULTS
from ros2_pose.training.run import merge_config

W, H = 48, 32
TINY = [4, 8, 8, 16]
CAMERA = CameraModel(np.array([[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]), None, W, H)
MOTION = np.array([0.02, -0.03, 0.01, 0.05, -0.01, 0.2])   # rotation vector (rad), translation


def _config(fusion="early"):
    return merge_config(DEFAULTS, {"depth_model": {"channels": TINY, "num_scales": 2},
                                   "pose_model": {"channels": TINY, "head_width": 8, "fusion": fusion}})


def constant_motion_models(folder, source_vectors, nan_depth=False):
    """A random tiny DepthNet and a PoseNet whose output is `source_vectors` (S x 6) whatever it sees
    (last layer zero weights, bias = vectors / POSE_SCALE): a network with a known answer."""
    torch.manual_seed(0)
    config = _config()
    depth = DepthNet(**config["depth_model"]).eval()
    if nan_depth:
        with torch.no_grad():
            depth.heads[0].bias.fill_(float("nan"))
    vectors = np.asarray(source_vectors, np.float32)
    pose = PoseNet(len(vectors), **config["pose_model"]).eval()
    with torch.no_grad():
        pose.head.out.weight.zero_()
        pose.head.out.bias.copy_(torch.from_numpy(vectors.reshape(-1) / POSE_SCALE))
    write_model_folder(folder / "depth", depth, depth_model_config(config["depth_model"], W, H), export=False)
    write_model_folder(folder / "pose", pose, pose_model_config(config, len(vectors), W, H), export=False)
    return create_runner(folder / "depth", backend="torch"), create_runner(folder / "pose", backend="torch")


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (H, W, 3), np.uint8) for _ in range(n)]


def _log(matrix):
    import cv2
    return np.concatenate([cv2.Rodrigues(matrix[:3, :3])[0].ravel(), matrix[:3, 3]])


def test_window_poses_give_the_motion_between_any_two_frames():
    rng = np.random.default_rng(1)
    cameras = [pe.transform_from_6dof(rng.normal(0, 0.2, 6)) for _ in range(3)]   # T_world_ck
    target = 1
    # the network's answer for source k: T_{c_k c_target} (target points into source k)
    outputs = [np.linalg.inv(cameras[k]) @ cameras[target] for k in (0, 2)]
    poses = pe.window_camera_poses(np.array([_log(m) for m in outputs]), target)
    expected = np.linalg.inv(cameras[1]) @ cameras[2]
    np.testing.assert_allclose(pe.motion_between(poses, 1, 2), expected, atol=1e-9)
    np.testing.assert_allclose(pe.motion_between(poses, 0, 2), np.linalg.inv(cameras[0]) @ cameras[2], atol=1e-9)


def test_pairs_integrate_a_constant_motion(tmp_path):
    depth, pose = constant_motion_models(tmp_path, [MOTION])
    pipeline = pe.DepthEgoMotionPipeline(depth, pose, metric_scale=2.0)
    M = pe.transform_from_6dof(MOTION)
    M[:3, 3] *= 2.0
    results = [pipeline.process(frame, CAMERA, 1_000_000_000 + i * 33_000_000) for i, frame in enumerate(_frames(5))]
    assert [r.status for r in results] == ["first_frame"] + ["ok"] * 4
    np.testing.assert_allclose(results[-1].pose.as_matrix(), np.linalg.matrix_power(M, 4), atol=1e-5)
    np.testing.assert_allclose(results[2].motion.as_matrix(), M, atol=1e-5)
    assert results[0].depth.shape == (H, W) and results[0].depth.dtype == np.float32
    assert np.isfinite(results[0].depth).all() and (results[0].depth > 0).all()


def test_depth_is_written_into_the_callers_buffer_and_the_twist_comes_with_the_motion(tmp_path):
    depth, pose = constant_motion_models(tmp_path, [MOTION])
    pipeline = pe.DepthEgoMotionPipeline(depth, pose, metric_scale=2.0)
    frames = _frames(2)
    reference = pe.DepthEgoMotionPipeline(depth, pose, metric_scale=2.0).process(frames[0], CAMERA, 1).depth
    buffer = np.zeros((H, W), np.float32)
    first = pipeline.process(frames[0], CAMERA, 1, depth_out=buffer)
    assert first.depth is buffer and first.twist is None          # no elapsed time, no velocity
    np.testing.assert_array_equal(buffer, reference)
    second = pipeline.process(frames[1], CAMERA, 1 + 50_000_000, depth_out=buffer)
    np.testing.assert_allclose(second.twist, pe.twist_from_motion(second.motion, 0.05))
    with pytest.raises(ValueError, match="buffer"):
        pipeline.process(frames[0], CAMERA, 1 + 100_000_000, depth_out=np.zeros((H, W), np.float64))


def test_metric_depth_is_finite_by_construction():
    depth = np.full((4, 6), 2.0, np.float32)
    np.testing.assert_array_equal(pe.DepthEgoMotionPipeline.metric_depth(depth, 1.5, (8, 12)), np.full((8, 12), 3.0))
    for scale in (np.inf, np.nan, 0.0, -1.0, 2e38):              # 2e38 x 2 overflows float32
        with pytest.raises(pe.NonFiniteOutputError, match="finite metric depth"):
            pe.DepthEgoMotionPipeline.metric_depth(depth, scale, (8, 12))


def test_triplets_backfill_the_first_window_then_integrate(tmp_path):
    M = pe.transform_from_6dof(MOTION)
    # camera moving by M per frame; target = the middle frame: source 0 sees it at M, source 2 at M^-1
    depth, pose = constant_motion_models(tmp_path, [_log(M), _log(np.linalg.inv(M))])
    pipeline = pe.DepthEgoMotionPipeline(depth, pose)
    assert pipeline.frames_per_sample == 3 and pipeline.target_index == 1
    results = [pipeline.process(frame, CAMERA, i * 33_000_000 + 1) for i, frame in enumerate(_frames(5))]
    assert [r.status for r in results] == ["first_frame", "filling_window", "ok", "ok", "ok"]
    assert results[1].pose is None and results[1].depth is not None
    np.testing.assert_allclose(results[2].backfilled_poses[0].as_matrix(), M, atol=1e-5)
    for k in (2, 3, 4):
        np.testing.assert_allclose(results[k].pose.as_matrix(), np.linalg.matrix_power(M, k), atol=1e-5)


def test_odometry_baseline_reads_the_motion_across_frames_of_the_window(tmp_path):
    rng = np.random.default_rng(3)
    # an inconsistent network: the two sources' answers are unrelated, so every chain shows which
    # window motion it integrated
    a, b = pe.transform_from_6dof(rng.normal(0, 0.1, 6)), pe.transform_from_6dof(rng.normal(0, 0.1, 6))
    depth, pose = constant_motion_models(tmp_path, [_log(a), _log(b)])
    poses = pe.window_camera_poses(np.array([_log(a), _log(b)]), 1)
    m01, m12, m02 = (pe.motion_between(poses, i, j) for i, j in ((0, 1), (1, 2), (0, 2)))
    frames = _frames(5)

    def run(baseline):
        pipeline = pe.DepthEgoMotionPipeline(depth, pose, odometry_baseline=baseline)
        return [pipeline.process(frame, CAMERA, i * 33_000_000 + 1) for i, frame in enumerate(frames)]

    one, two = run(1), run(2)
    # the first window is the same for both: frame 1 backfilled at m01, frame 2 at m02
    for results in (one, two):
        np.testing.assert_allclose(results[2].backfilled_poses[0].as_matrix(), m01, atol=1e-5)
        np.testing.assert_allclose(results[2].pose.as_matrix(), m02, atol=1e-5)
    np.testing.assert_allclose(one[4].pose.as_matrix(), m02 @ m12 @ m12, atol=1e-5)
    np.testing.assert_allclose(two[3].pose.as_matrix(), m01 @ m02, atol=1e-5)     # frame 1's chain
    np.testing.assert_allclose(two[4].pose.as_matrix(), m02 @ m02, atol=1e-5)     # frame 2's chain
    # the frame-to-frame motion (twist) still joins consecutive frames
    np.testing.assert_allclose(two[4].motion.as_matrix(), np.linalg.inv(m01 @ m02) @ m02 @ m02, atol=1e-5)
    for bad in (0, 3, 1.5):
        with pytest.raises(ValueError, match="odometry_baseline"):
            pe.DepthEgoMotionPipeline(depth, pose, odometry_baseline=bad)


def test_time_going_back_or_jumping_restarts_odometry(tmp_path):
    depth, pose = constant_motion_models(tmp_path, [MOTION])
    pipeline = pe.DepthEgoMotionPipeline(depth, pose, max_time_gap_s=0.5)
    frames = _frames(3)
    for stamp in (10**9, 10**9 + 33_000_000, 10**9 + 66_000_000):
        result = pipeline.process(frames[0], CAMERA, stamp)
    assert result.status == "ok" and result.reset_reason is None
    looped = pipeline.process(frames[1], CAMERA, 10**9)           # a bag starting over
    assert "backwards" in looped.reset_reason and looped.status == "first_frame"
    assert looped.pose.allclose(pe.RigidTransform.identity())
    pipeline.process(frames[2], CAMERA, 10**9 + 33_000_000)
    jumped = pipeline.process(frames[0], CAMERA, 10**9 + 2_000_000_000)
    assert "jumped" in jumped.reset_reason and jumped.pose.allclose(pe.RigidTransform.identity())
    assert pipeline.resets == 2


def test_non_finite_depth_is_an_error_not_an_output(tmp_path):
    depth, pose = constant_motion_models(tmp_path, [MOTION], nan_depth=True)
    pipeline = pe.DepthEgoMotionPipeline(depth, pose)
    with pytest.raises(pe.NonFiniteOutputError):
        pipeline.process(_frames(1)[0], CAMERA, 1)


def test_bad_inputs_are_named(tmp_path):
    depth, pose = constant_motion_models(tmp_path, [MOTION])
    pipeline = pe.DepthEgoMotionPipeline(depth, pose)
    with pytest.raises(pe.EgoMotionInputError, match="camera is 48x32"):
        pipeline.process(np.zeros((64, 48, 3), np.uint8), CAMERA, 1)
    with pytest.raises(pe.EgoMotionInputError, match="uint8 RGB"):
        pipeline.process(np.zeros((H, W), np.uint8), CAMERA, 1)
    with pytest.raises(ValueError, match="camera_height_m"):
        pe.DepthEgoMotionPipeline(depth, pose, scale_mode="camera_height")


def test_floor_plane_gives_the_rendered_camera_height():
    """A heuristic: it needs floor in the lower image rows, so single frames can pick a furniture top;
    the median over frames (what the pipeline uses) is the camera height."""
    from ros2_pose.sim import motion
    from ros2_pose.sim.tasks import frame_rng

    task = motion.MotionTask(160, 120, config=motion.MotionConfig(sequence_length=4, texture_size=64))
    frames = [task.generate(frame_rng(seed, i), i) for seed in (2, 3, 4, 5) for i in (0, 4)]
    ratios = []
    for frame in frames:
        height = pe.camera_height_from_depth(frame.depth, frame.camera)
        if height is not None:
            ratios.append(height / frame.T_world_camera.translation[2])
    ratios = np.array(ratios)
    assert len(ratios) >= 6
    assert np.median(ratios) == pytest.approx(1.0, abs=0.03)
    assert np.mean(np.abs(ratios - 1) < 0.05) >= 0.5
    # the estimate is in the depth's own units: it scales with the depth
    frame = frames[2]
    scaled = pe.camera_height_from_depth(frame.depth * 3.0, frame.camera)
    assert scaled == pytest.approx(3.0 * pe.camera_height_from_depth(frame.depth, frame.camera), rel=0.02)
