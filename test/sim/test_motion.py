"""Camera-motion scenes: determinism per sequence, robot-speed limits, staying inside the room,
static segments, and the physical check that ground-truth depth + pose reproduce frame t from t+1."""
import cv2
import numpy as np
import pytest

from ros2_pose.geometry.transforms import rotation_error_deg
from ros2_pose.sim import motion
from ros2_pose.sim.tasks import frame_rng

W, H = 160, 120
CONFIG = motion.MotionConfig(sequence_length=12, texture_size=128)


@pytest.fixture(scope="module")
def task():
    return motion.MotionTask(W, H, config=CONFIG)


def test_frames_belong_to_a_sequence_fixed_by_seed_and_index(task):
    n = CONFIG.sequence_length
    other = motion.MotionTask(W, H, config=CONFIG)  # a second "worker" generating out of order
    for index in (n + 5, 3, n + 4):
        a = task.generate(frame_rng(11, index), index)
        b = other.generate(frame_rng(11, index), index)
        assert a.T_world_camera.allclose(b.T_world_camera)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        assert a.extra["sequence"] == index // n and a.extra["frame_in_sequence"] == index % n
    # consecutive frames of one sequence are 1/30 s apart; another seed is another trajectory
    f4, f5 = task.generate(frame_rng(11, n + 4), n + 4), task.generate(frame_rng(11, n + 5), n + 5)
    assert f5.extra["time_s"] - f4.extra["time_s"] == pytest.approx(1 / 30)
    assert np.linalg.norm(f5.T_world_camera.translation - f4.T_world_camera.translation) < 1.5 / 30 + 1e-9
    assert not task.generate(frame_rng(12, n + 4), n + 4).T_world_camera.allclose(f4.T_world_camera, 1e-3, 1e-3)


def _inside_furniture(environment, p):
    for obj in environment.objects:
        if obj.name.startswith("furniture"):
            lo, hi = obj.mesh.bounds()
            centre = obj.world_matrix()[:3, 3]
            if np.all(p >= centre + lo - 0.2) and np.all(p <= centre + hi + 0.2):
                return True
    return False


def test_trajectories_keep_robot_speeds_and_stay_inside_the_room():
    config = motion.MotionConfig(sequence_length=150, texture_size=16)
    max_speed, max_yaw, speeds = 0.0, 0.0, []
    for sequence in range(8):
        rng = motion.sequence_rng(frame_rng(3, 0), sequence)
        env = motion.build_environment(rng, config)
        traj = motion.make_trajectory(rng, env, config)
        dt = 1 / config.fps
        v = np.linalg.norm(np.diff(traj.positions, axis=0), axis=1) / dt
        speeds.append(v.mean())
        max_speed = max(max_speed, v.max())
        rates = rotation_error_deg(traj.rotations[1:], traj.rotations[:-1]) / dt
        max_yaw = max(max_yaw, float(np.max(rates)))
        # smooth: no jerks in speed between frames (acceleration under 3 m/s^2)
        assert np.max(np.abs(np.diff(v))) / dt < 3.0
        # pitch/roll small: the optical y axis (down) stays within a few degrees of world down
        down = traj.rotations[:, :, 1]
        tilt = np.degrees(np.arccos(np.clip(-down[:, 2], -1, 1)))
        assert tilt.max() < 2 * config.max_pitch_roll_deg
        for p in traj.positions:
            assert np.all(p >= config.clearance - 1e-6) and np.all(p <= env.size - config.clearance + 1e-6)
            assert not _inside_furniture(env, p)
    assert max_speed <= 1.5 + 1e-6 and max_yaw <= 45.0 * 1.05
    assert 0.2 <= np.mean(speeds) <= 1.5 and max(speeds) > 0.35


def test_static_segments_hold_the_camera_still():
    config = motion.MotionConfig(sequence_length=60, static_segment_probability=1.0, texture_size=16)
    rng = motion.sequence_rng(frame_rng(4, 0), 0)
    env = motion.build_environment(rng, config)
    traj = motion.make_trajectory(rng, env, config)
    static = np.flatnonzero(traj.static)
    assert len(static) >= 10  # at least 0.33 s of pause at 30 Hz
    for i in static:
        np.testing.assert_allclose(traj.positions[i], traj.positions[i - 1], atol=1e-12)
        np.testing.assert_allclose(traj.rotations[i], traj.rotations[i - 1], atol=1e-12)
    assert np.linalg.norm(traj.positions[-1] - traj.positions[0]) > 0.1  # it moved outside the pause


def _warp_next_into_current(current, following, depth_scale=1.0):
    """frame t+1's image resampled at where frame t's pixels land in t+1 (cv2.remap)."""
    camera = current.camera
    points_t = camera.depth_to_points(current.depth * depth_scale).reshape(-1, 3)
    T_next_current = following.T_world_camera.inverse() @ current.T_world_camera
    points_next = T_next_current.apply(np.nan_to_num(points_t))
    pixels = camera.project(points_next).reshape(H, W, 2).astype(np.float32)
    warped = cv2.remap(following.rgb, pixels[..., 0], pixels[..., 1], cv2.INTER_LINEAR)
    # valid: known depth, lands inside t+1, and is not hidden there (depth test against t+1's depth)
    inside = np.all(np.isfinite(pixels), -1) & (pixels[..., 0] >= 0) & (pixels[..., 0] <= W - 1) \
        & (pixels[..., 1] >= 0) & (pixels[..., 1] <= H - 1)
    seen_depth = cv2.remap(following.depth, np.nan_to_num(pixels[..., 0]), np.nan_to_num(pixels[..., 1]),
                           cv2.INTER_NEAREST)
    z_next = points_next[:, 2].reshape(H, W)
    valid = (current.depth > 0) & inside & (np.abs(seen_depth - z_next) < 0.03 * z_next)
    return warped, valid


def test_ground_truth_depth_and_pose_reproduce_the_previous_frame(task):
    errors, identity_errors, wrong_depth_errors = [], [], []
    for index in (0, 5, 12, 20):
        current = task.generate(frame_rng(5, index), index)
        following = task.generate(frame_rng(5, index + 3), index + 3)  # 0.1 s apart
        warped, valid = _warp_next_into_current(current, following)
        assert valid.mean() > 0.6
        diff = np.abs(warped.astype(np.float32) - current.rgb.astype(np.float32)).mean(-1) / 255
        still = np.abs(following.rgb.astype(np.float32) - current.rgb.astype(np.float32)).mean(-1) / 255
        wrong, _ = _warp_next_into_current(current, following, depth_scale=0.5)
        wrong_diff = np.abs(wrong.astype(np.float32) - current.rgb.astype(np.float32)).mean(-1) / 255
        errors.append(diff[valid].mean())
        identity_errors.append(still[valid].mean())
        wrong_depth_errors.append(wrong_diff[valid].mean())
    errors, identity_errors = np.array(errors), np.array(identity_errors)
    # low absolute error (under 4 grey levels; bilinear resampling of texture leaves ~1-2) ...
    assert np.all(errors < 0.015), errors
    # ... and far below not warping at all, or warping with the wrong depth
    assert np.mean(errors) < 0.4 * np.mean(identity_errors), (errors, identity_errors)
    assert np.mean(errors) < 0.6 * np.mean(wrong_depth_errors), (errors, wrong_depth_errors)


def _rotation_per_frame_deg(config, sequences=6):
    rates = []
    for sequence in range(sequences):
        rng = motion.sequence_rng(frame_rng(5, 0), sequence)
        traj = motion.make_trajectory(rng, motion.build_environment(rng, config), config)
        rates.append(rotation_error_deg(traj.rotations[1:], traj.rotations[:-1]))
    return np.concatenate(rates)


def test_turning_preset_makes_rotation_dominate_within_the_yaw_limit():
    base = motion.MotionConfig(sequence_length=90, texture_size=16)
    turning = motion.MotionConfig.for_preset("turning", base)
    assert turning.sequence_length == 90 and turning.max_yaw_rate_deg == 120.0
    default_rates, turning_rates = _rotation_per_frame_deg(base), _rotation_per_frame_deg(turning)
    assert np.mean(turning_rates) > 2.5 * np.mean(default_rates)
    # roll and pitch add a little to the yaw limit
    assert np.max(turning_rates) * turning.fps < turning.max_yaw_rate_deg + 10
    with pytest.raises(ValueError, match="motion preset"):
        motion.MotionConfig.for_preset("fast")
    with pytest.raises(ValueError, match="yaw rate"):
        motion.MotionConfig(look_around_deg=(0, 60), look_around_hz=(0.1, 0.5))
    from ros2_pose.sim.tasks import make_task
    with pytest.raises(ValueError, match="turning"):
        make_task("dolly", preset="turning")


def test_ood_preset_shows_the_same_rooms_under_dim_tinted_light():
    rng = lambda: motion.sequence_rng(frame_rng(9, 0), 0)  # noqa: E731
    default = motion.build_environment(rng(), CONFIG)
    ood = motion.build_environment(rng(), motion.MotionConfig.for_preset("ood", CONFIG))
    np.testing.assert_array_equal(default.size, ood.size)
    assert [o.name for o in default.objects] == [o.name for o in ood.objects]
    assert ood.lights[0].intensity < 0.5 <= default.lights[0].intensity
    assert ood.lights[0].ambient < 0.3 <= default.lights[0].ambient
    assert np.ptp(ood.lights[0].color) > 0.2 and np.ptp(default.lights[0].color) == 0
    bright = motion.MotionTask(W, H, config=CONFIG).generate(frame_rng(9, 2), 2)
    dim = motion.MotionTask(W, H, preset="ood", config=CONFIG).generate(frame_rng(9, 2), 2)
    assert bright.T_world_camera.allclose(dim.T_world_camera)
    assert dim.rgb.mean() < 0.75 * bright.rgb.mean()


def test_sequence_length_option_reaches_the_task_in_every_worker():
    from ros2_pose.sim.tasks import iter_frames, make_task

    for workers in (1, 2):
        frames = list(iter_frames("motion", 5, seed=3, workers=workers, width=48, height=36, sequence_length=2))
        assert [frame.extra["sequence"] for _, frame in frames] == [0, 0, 1, 1, 2]
    assert make_task("motion", 48, 36).config.sequence_length == motion.MotionConfig().sequence_length
    with pytest.raises(ValueError, match="motion option"):
        make_task("drone", 48, 36, sequence_length=2)


def test_presets_belong_to_their_task_and_a_wrong_one_leaves_no_bag(tmp_path, capsys):
    from ros2_pose.cli.main import main
    from ros2_pose.sim.tasks import TASKS, task_class
    from ros2_pose.sim.writer import render_bag

    assert {name: task_class(name).presets for name in TASKS} == {
        "dolly": ("default", "ood"), "drone": ("default", "ood"), "people": ("default", "ood"),
        "motion": ("default", "ood", "turning")}
    with pytest.raises(ValueError, match="sim task 'people' renders the presets default, ood; not 'turning'"):
        render_bag("people", 2, tmp_path / "bag", preset="turning", progress=False)
    assert not (tmp_path / "bag").exists()
    assert main(["sim", "dolly", "--frames", "2", "--out", str(tmp_path / "cli_bag"), "--preset", "turning"]) == 2
    assert "sim task 'dolly' renders the presets default, ood; not 'turning'" in capsys.readouterr().err
    assert not (tmp_path / "cli_bag").exists()
