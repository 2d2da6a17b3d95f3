"""`ros2-pose sim motion`: camera trajectories through static textured rooms and corridors.

Ground truth for ego-motion / self-supervised depth: every frame has metric depth and
T_world_camera, the scene is static and matte (no specular highlights), so warping frame t+1 into
frame t with depth and relative pose reproduces frame t's image (view synthesis holds).

Frames come in sequences of `sequence_length` at `fps`: frame `index` is frame
`index % sequence_length` of sequence `index // sequence_length`, whose room and trajectory are
drawn from a generator seeded by (the run's seed, sequence number) - the run's seed is read from
the per-frame generator's SeedSequence (tasks.frame_rng) - so parallel workers agree on it.

Trajectories: a cubic B-spline through random control points inside the room's free box (walls
minus furniture minus a clearance). A B-spline never leaves the convex hull of its control points,
so the camera cannot pass through a wall or furniture. It is traversed at a smoothly varying
speed in `speed_range`, slowed where the path curves so the yaw rate stays under its limit; the
camera looks along the path plus a slow look-around, with small pitch and roll oscillations.
Optional static segments (a smooth stop, a pause, a smooth start) give zero-motion frames for
testing automatic masking.

Presets (`MotionConfig.for_preset`, `ros2-pose sim motion --preset`): "default" (the training
ranges); "ood", the same rooms and paths under dim, tinted light outside the training ranges (the
appearance shift of the other tasks' ood presets); "turning", the default appearance with a fast
look-around (25-45 deg at 0.2-0.35 Hz, up to ~3 deg per frame) on the path, so that rotation,
not forward motion, dominates the frame-to-frame motion.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import BSpline

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim.mesh import box
from ros2_pose.sim.randomization import hsv_color, random_color
from ros2_pose.sim.scene import Light, Material, Scene, SceneObject, segment_id
from ros2_pose.sim.tasks import SimFrame

# Optical frame (z forward, x right, y down) in the robot's body frame (x forward, y left, z up).
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
MAX_ACCELERATION = 1.5  # m/s^2, a mobile robot's gentle acceleration and braking
_SEQUENCE_STREAM = 0x5E0  # spawn-key tag that keeps sequence streams apart from frame streams


@dataclass(frozen=True)
class MotionConfig:
    sequence_length: int = 60
    fps: float = 30.0
    speed_range: tuple[float, float] = (0.2, 1.5)       # m/s
    max_yaw_rate_deg: float = 45.0                       # deg/s
    max_pitch_roll_deg: float = 5.0
    corridor_probability: float = 0.35
    clearance: float = 0.45                              # metres kept from walls and furniture
    camera_height: tuple[float, float] = (0.3, 1.7)
    static_segment_probability: float = 0.0              # chance a sequence has one pause
    static_duration_s: tuple[float, float] = (0.5, 1.0)
    horizontal_fov_deg: float = 70.0
    texture_size: int = 256
    look_around_deg: tuple[float, float] = (0.0, 20.0)    # amplitude of the yaw look-around
    look_around_hz: tuple[float, float] = (0.05, 0.15)
    key_light: tuple[float, float] = (0.5, 0.8)          # intensity of the light from above
    ambient: tuple[float, float] = (0.3, 0.45)
    fill_light: tuple[float, float] = (0.15, 0.3)
    light_tint_saturation: tuple[float, float] = (0.0, 0.0)  # 0: white light

    def __post_init__(self):
        # The look-around alone must leave yaw rate for the path's bends (make_trajectory).
        peak = self.look_around_deg[1] * 2 * np.pi * self.look_around_hz[1]
        if peak >= self.max_yaw_rate_deg:
            raise ValueError(f"look-around up to {peak:.0f} deg/s leaves no yaw rate under max_yaw_rate_deg "
                             f"{self.max_yaw_rate_deg}")

    @classmethod
    def for_preset(cls, preset: str, base: "MotionConfig | None" = None) -> "MotionConfig":
        """`base` (default: the default config) with the changes of `preset` (see module doc)."""
        if preset not in PRESET_CHANGES:
            raise ValueError(f"motion preset must be one of {sorted(PRESET_CHANGES)}, got {preset!r}")
        return dataclasses.replace(base or cls(), **PRESET_CHANGES[preset])


PRESET_CHANGES: dict[str, dict] = {
    "default": {},
    # Training light: key 0.5-0.8, ambient 0.3-0.45, white. Here every range lies below it, tinted.
    "ood": {"key_light": (0.25, 0.45), "ambient": (0.12, 0.25), "fill_light": (0.05, 0.12),
            "light_tint_saturation": (0.25, 0.5)},
    "turning": {"look_around_deg": (25.0, 45.0), "look_around_hz": (0.2, 0.35), "max_yaw_rate_deg": 120.0},
}


@dataclass(frozen=True)
class Environment:
    """An axis-aligned room [0, size] with its drawable objects and the camera's free box."""

    kind: str
    size: np.ndarray
    objects: tuple[SceneObject, ...]
    lights: tuple[Light, ...]
    free_min: np.ndarray
    free_max: np.ndarray


@dataclass(frozen=True)
class CameraTrajectory:
    """Per-frame camera poses of one sequence (T_world_camera, optical frame) and timing."""

    times: np.ndarray           # (N,) seconds
    positions: np.ndarray       # (N, 3) world
    rotations: np.ndarray       # (N, 3, 3) R_world_optical
    static: np.ndarray          # (N,) bool: frame inside a pause (no motion since the previous)

    def pose(self, i: int) -> RigidTransform:
        return RigidTransform(self.rotations[i], self.positions[i])


def sequence_rng(frame_rng: np.random.Generator, sequence: int) -> np.random.Generator:
    """A generator for sequence `sequence` of the run `frame_rng` belongs to (see module doc)."""
    seed_seq = getattr(frame_rng.bit_generator, "seed_seq", None)
    if not isinstance(seed_seq, np.random.SeedSequence):
        raise ValueError("MotionTask needs a generator made from a SeedSequence (tasks.frame_rng), "
                         "to find the run's seed that fixes each sequence's room and trajectory")
    return np.random.default_rng(np.random.SeedSequence(entropy=seed_seq.entropy,
                                                        spawn_key=(_SEQUENCE_STREAM, int(sequence))))


# ---------------------------------------------------------------------------------- textures
def procedural_texture(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A richly detailed HxWx3 uint8 texture (tiles, planks, bricks or blotches over multi-scale
    noise). Photometric losses need texture at every scale, so flat walls never appear."""
    noise = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 0.5), (16, 0.3), (64, 0.2)):  # fractal value noise
        grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
        noise += weight * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size]
    kind = int(rng.integers(0, 4))
    if kind == 0:  # tiles with grout lines and per-tile shade
        n = int(rng.choice([2, 4, 8]))
        tile = size // n
        shade = rng.uniform(0.75, 1.0, (n, n))[yy // tile, xx // tile]
        grout = ((yy % tile) < 2) | ((xx % tile) < 2)
        pattern = np.where(grout, 0.45, shade)
    elif kind == 1:  # wooden planks
        n = int(rng.choice([4, 8]))
        plank = size // n
        shade = rng.uniform(0.6, 1.0, n)[yy // plank]
        grain = 0.15 * np.sin(xx * rng.uniform(0.05, 0.2) + 6 * noise)
        pattern = shade + grain - 0.3 * ((yy % plank) < 2)
    elif kind == 2:  # bricks in offset rows
        rows, cols = 8, 4
        bh, bw = size // rows, size // cols
        offset = (yy // bh % 2) * (bw // 2)
        shade = rng.uniform(0.65, 1.0, (rows, cols + 1))[yy // bh, (xx + offset) // bw]
        mortar = ((yy % bh) < 3) | (((xx + offset) % bw) < 3)
        pattern = np.where(mortar, 0.5, shade)
    else:  # blotches: random discs and rectangles
        pattern = np.full((size, size), 0.8, np.float32)
        for _ in range(40):
            c = rng.integers(0, size, 2)
            r = int(rng.integers(size // 40, size // 8))
            if rng.uniform() < 0.5:
                cv2.circle(pattern, (int(c[0]), int(c[1])), r, float(rng.uniform(0.3, 1.0)), -1)
            else:
                cv2.rectangle(pattern, (int(c[0]), int(c[1])), (int(c[0]) + 2 * r, int(c[1]) + r),
                              float(rng.uniform(0.3, 1.0)), -1)
    pattern = np.clip(pattern + 0.25 * noise, 0.05, 1.0)
    a, b = random_color(rng, (0.6, 1.0), (0.0, 0.7)), random_color(rng, (0.05, 0.4), (0.0, 0.7))
    image = a * pattern[..., None] + b * (1 - pattern[..., None])
    return np.clip(image / max(float(image.max()), 1e-3) * 255 + 0.5, 0, 255).astype(np.uint8)


def _matte(rng: np.random.Generator, size: int, brightness=(0.7, 1.0)) -> Material:
    # specular 0: shading depends on the light and the normal only, never on the viewpoint
    return Material(np.full(3, rng.uniform(*brightness)), 0.0, 1.0, procedural_texture(rng, size))


# ---------------------------------------------------------------------------------- rooms
def build_environment(rng: np.random.Generator, config: MotionConfig) -> Environment:
    """A room (4-9 x 3.5-8 m) or corridor (10-25 x 1.8-3 m) with textured surfaces and furniture
    standing against the walls, and the free box the camera may move in."""
    corridor = rng.uniform() < config.corridor_probability
    if corridor:
        size = np.array([rng.uniform(10, 25), rng.uniform(1.8, 3.0), rng.uniform(2.4, 3.0)])
    else:
        size = np.array([rng.uniform(4, 9), rng.uniform(3.5, 8), rng.uniform(2.5, 3.5)])
    lx, ly, lz = size
    t = 0.2  # wall thickness (outside the room)
    objects: list[SceneObject] = []

    def add(name, mesh_size, centre, material, yaw=0.0):
        c, s = np.cos(yaw), np.sin(yaw)
        pose = RigidTransform(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), np.asarray(centre, float))
        # uvs of mesh.box are in metres; textures repeat every metre, scaled per object
        objects.append(SceneObject(name, box(mesh_size), pose, material, segment_id(len(objects) + 1)))

    ts = config.texture_size
    add("floor", (lx + 2 * t, ly + 2 * t, t), (lx / 2, ly / 2, -t / 2), _matte(rng, ts))
    add("ceiling", (lx + 2 * t, ly + 2 * t, t), (lx / 2, ly / 2, lz + t / 2), _matte(rng, ts))
    add("wall_x0", (t, ly, lz), (-t / 2, ly / 2, lz / 2), _matte(rng, ts))
    add("wall_x1", (t, ly, lz), (lx + t / 2, ly / 2, lz / 2), _matte(rng, ts))
    add("wall_y0", (lx, t, lz), (lx / 2, -t / 2, lz / 2), _matte(rng, ts))
    add("wall_y1", (lx, t, lz), (lx / 2, ly + t / 2, lz / 2), _matte(rng, ts))

    # Furniture against the walls; each wall's band grows to the deepest piece on it.
    band = {"x0": 0.0, "x1": 0.0, "y0": 0.0, "y1": 0.0}
    count = int(rng.integers(2, 5) if corridor else rng.integers(3, 9))
    for k in range(count):
        wall = ("y0", "y1")[k % 2] if corridor else ("x0", "x1", "y0", "y1")[int(rng.integers(0, 4))]
        along = lx if wall in ("y0", "y1") else ly
        depth = rng.uniform(0.3, 0.5) if corridor else rng.uniform(0.35, 0.9)
        width = min(rng.uniform(0.5, 2.0), 0.8 * along)
        height = rng.uniform(0.4, min(2.2, lz - 0.1))
        free_width = (ly if wall in ("y0", "y1") else lx) - 2 * max(depth, 0.0) - 2 * config.clearance
        if free_width < 0.4:  # would block the corridor: leave that wall bare
            continue
        pos = rng.uniform(width / 2, along - width / 2)
        if wall in ("y0", "y1"):
            y = depth / 2 if wall == "y0" else ly - depth / 2
            add(f"furniture_{k}", (width, depth, height), (pos, y, height / 2), _matte(rng, ts, (0.5, 1.0)))
        else:
            x = depth / 2 if wall == "x0" else lx - depth / 2
            add(f"furniture_{k}", (depth, width, height), (x, pos, height / 2), _matte(rng, ts, (0.5, 1.0)))
        band[wall] = max(band[wall], depth)
    c = config.clearance
    free_min = np.array([band["x0"] + c, band["y0"] + c, max(config.camera_height[0], c)])
    free_max = np.array([lx - band["x1"] - c, ly - band["y1"] - c, min(config.camera_height[1], lz - c)])
    if np.any(free_max - free_min < 0.2):
        raise RuntimeError(f"room {size} left no free space for the camera")  # cannot happen with the ranges above

    azimuth = rng.uniform(0, 2 * np.pi)
    key, ambient = rng.uniform(*config.key_light), rng.uniform(*config.ambient)
    fill = rng.uniform(*config.fill_light)
    colour = np.ones(3)
    if config.light_tint_saturation[1] > 0:
        # No extra draw (the trajectory, drawn next from the same generator, stays the default
        # preset's): the hue follows the key light's azimuth, the saturation is mid-range.
        colour = hsv_color(azimuth / (2 * np.pi) * 180, float(np.mean(config.light_tint_saturation)), 1.0)
    lights = (Light((np.cos(azimuth) * 0.4, np.sin(azimuth) * 0.4, -1.0), tuple(colour), key, ambient),
              Light((-np.cos(azimuth), -np.sin(azimuth), -0.3), tuple(colour), fill, 0.0))
    return Environment("corridor" if corridor else "room", size, tuple(objects), lights, free_min, free_max)


# ---------------------------------------------------------------------------------- trajectories
def _control_points(rng, free_min, free_max, length_needed: float) -> np.ndarray:
    """2D control points inside the free box: a wandering walk with steps of 0.8-2 m and turns of
    at most 70 degrees when the box allows it."""
    lo, hi = free_min[:2], free_max[:2]
    points = [rng.uniform(lo, hi)]
    heading = rng.uniform(-np.pi, np.pi)
    travelled = 0.0
    while travelled < length_needed or len(points) < 4:
        for attempt in range(30):
            turn = np.radians(70) if attempt < 15 else np.pi
            h = heading + rng.uniform(-turn, turn)
            step = rng.uniform(0.8, 2.0)
            candidate = points[-1] + step * np.array([np.cos(h), np.sin(h)])
            if np.all(candidate >= lo) and np.all(candidate <= hi):
                break
        else:  # cramped: any point of the box far enough away
            candidate = rng.uniform(lo, hi)
            h = np.arctan2(*(candidate - points[-1])[::-1])
        travelled += float(np.linalg.norm(candidate - points[-1]))
        heading = h
        points.append(candidate)
    return np.array(points)


def _smooth_step(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def make_trajectory(rng: np.random.Generator, environment: Environment, config: MotionConfig) -> CameraTrajectory:
    """The camera poses of one sequence in `environment` (see the module docstring)."""
    n = config.sequence_length
    dt = 1.0 / config.fps
    duration = (n - 1) * dt
    v_lo, v_hi = config.speed_range
    yaw_budget = np.radians(config.max_yaw_rate_deg)

    # Motion clock: runs at rate 1 except in a pause, entered and left with smooth ramps.
    fine = 20  # integration sub-steps per frame
    t_fine = np.arange((n - 1) * fine + 1) * dt / fine
    rate = np.ones_like(t_fine)
    if rng.uniform() < config.static_segment_probability:
        pause = rng.uniform(*config.static_duration_s)
        ramp = 0.6
        start = rng.uniform(0.1 * duration, max(0.1 * duration, duration - pause - 2 * ramp - 0.1 * duration))
        rate = 1 - _smooth_step((t_fine - start) / ramp) + _smooth_step((t_fine - start - ramp - pause) / ramp)
    clock = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 * dt / fine)])

    # Path: clamped cubic B-spline through control points in the free box.
    pts = _control_points(rng, environment.free_min, environment.free_max, v_hi * duration + 2.0)
    knots = np.concatenate([[0, 0, 0], np.linspace(0, 1, len(pts) - 2), [1, 1, 1]])
    spline = BSpline(knots, pts, 3)
    u = np.linspace(0, 1, 4000)
    d1, d2 = spline.derivative(1)(u), spline.derivative(2)(u)
    speed_u = np.linalg.norm(d1, axis=1)
    arc = np.concatenate([[0], np.cumsum((speed_u[1:] + speed_u[:-1]) / 2 * np.diff(u))])
    curvature = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / np.maximum(speed_u, 1e-9) ** 3
    # look-ahead: the speed cap anticipates a bend 0.4 m away
    window = max(1, int(0.4 / max(arc[-1] / len(u), 1e-6)))
    curvature = cv2.dilate(curvature.astype(np.float32)[None], np.ones((1, 2 * window + 1), np.uint8))[0]

    look_amp, look_freq = np.radians(rng.uniform(*config.look_around_deg)), rng.uniform(*config.look_around_hz)
    look_phase = rng.uniform(0, 2 * np.pi)
    turn_budget = 0.9 * (yaw_budget - look_amp * 2 * np.pi * look_freq)
    v_mean = rng.uniform(max(v_lo, 0.4), 0.8 * v_hi)
    v_amp, v_freq, v_phase = rng.uniform(0, 0.3), rng.uniform(0.05, 0.2), rng.uniform(0, 2 * np.pi)

    # Speed cap along the path: slow enough for the yaw budget in bends, and reached from further
    # back with at most MAX_ACCELERATION of braking (backward pass: v(s)^2 <= v(s+ds)^2 + 2 a ds).
    cap = np.minimum(turn_budget / np.maximum(curvature, 1e-9), v_hi)
    ds = np.diff(arc)
    for i in range(len(cap) - 2, -1, -1):
        cap[i] = min(cap[i], np.sqrt(cap[i + 1] ** 2 + 2 * MAX_ACCELERATION * ds[i]))
    s = np.zeros_like(clock)
    v = 0.5 * v_lo
    for i in range(1, len(clock)):  # integrate ds/dclock, accelerating gently
        target = np.clip(v_mean * (1 + v_amp * np.sin(2 * np.pi * v_freq * clock[i - 1] + v_phase)), v_lo, v_hi)
        step = clock[i] - clock[i - 1]
        v = min(target, float(np.interp(s[i - 1], arc, cap)), v + MAX_ACCELERATION * dt / fine)
        s[i] = min(s[i - 1] + v * step, arc[-1])
    s, clock = s[::fine], clock[::fine]

    u_frames = np.interp(s, arc, u)
    xy = spline(u_frames)
    tangent = spline.derivative(1)(u_frames)
    heading = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))
    yaw = heading + look_amp * np.sin(2 * np.pi * look_freq * clock + look_phase)

    z_lo, z_hi = environment.free_min[2], environment.free_max[2]
    z_amp = min(0.1, (z_hi - z_lo) / 4)
    z0 = rng.uniform(z_lo + z_amp, z_hi - z_amp)
    z = z0 + z_amp * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * clock + rng.uniform(0, 2 * np.pi))
    tilt = np.radians(config.max_pitch_roll_deg)
    pitch = rng.uniform(-0.5, 0.5) * tilt + 0.5 * tilt * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * clock
                                                                  + rng.uniform(0, 2 * np.pi))
    roll = 0.6 * tilt * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * clock + rng.uniform(0, 2 * np.pi))

    from transforms3d.euler import euler2mat

    rotations = np.stack([euler2mat(a, b, c, "rzyx") @ R_BODY_OPTICAL for a, b, c in zip(yaw, pitch, roll)])
    positions = np.column_stack([xy, z])
    static = np.concatenate([[False], np.diff(clock) < 1e-9])
    return CameraTrajectory(np.arange(n) * dt, positions, rotations, static)


# ---------------------------------------------------------------------------------- task
class MotionTask:
    """Consecutive frames of a camera moving through a static textured room (see module doc)."""

    name = "motion"
    presets = tuple(PRESET_CHANGES)

    def __init__(self, width: int = 640, height: int = 480, preset: str = "default", backend: str = "auto",
                 config: MotionConfig | None = None, sequence_length: int | None = None):
        self.width, self.height, self.backend, self.preset = int(width), int(height), backend, preset
        self.config = MotionConfig.for_preset(preset, config)
        if sequence_length is not None:
            self.config = dataclasses.replace(self.config, sequence_length=int(sequence_length))
        if self.config.sequence_length < 2:
            raise ValueError(f"sequence_length must be >= 2, got {self.config.sequence_length}")
        fx = (self.width / 2) / np.tan(np.radians(self.config.horizontal_fov_deg) / 2)
        self.camera = CameraModel(np.array([[fx, 0, (self.width - 1) / 2], [0, fx, (self.height - 1) / 2], [0, 0, 1]]),
                                  np.zeros(5), self.width, self.height)
        self._renderer = None
        self._sequences: OrderedDict = OrderedDict()  # a few recent (environment, trajectory)s

    def sequence(self, rng: np.random.Generator, sequence: int) -> tuple[Environment, CameraTrajectory]:
        key = (getattr(rng.bit_generator, "seed_seq", None).entropy if hasattr(rng.bit_generator, "seed_seq")
               else None, sequence)
        if key not in self._sequences:
            seq_rng = sequence_rng(rng, sequence)
            environment = build_environment(seq_rng, self.config)
            self._sequences[key] = (environment, make_trajectory(seq_rng, environment, self.config))
            while len(self._sequences) > 4:
                self._sequences.popitem(last=False)
        return self._sequences[key]

    def generate(self, rng: np.random.Generator, index: int) -> SimFrame:
        from ros2_pose.sim.renderer import Renderer

        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        if self._renderer is None:
            self._renderer = Renderer(self.width, self.height, self.backend)
        n = self.config.sequence_length
        environment, trajectory = self.sequence(rng, index // n)
        i = index % n
        T_world_camera = trajectory.pose(i)
        scene = Scene(list(environment.objects), list(environment.lights), (0.0, 0.0, 0.0))
        rendered = self._renderer.render(scene, self.camera, T_world_camera)
        return SimFrame(
            rgb=rendered.rgb, depth=rendered.depth, segmentation=rendered.segmentation, camera=self.camera,
            T_world_camera=T_world_camera,
            extra={"sequence": index // n, "frame_in_sequence": i, "time_s": float(trajectory.times[i]),
                   "static": bool(trajectory.static[i]), "room_size": environment.size.copy(),
                   "environment": environment.kind},
        )
