"""A warehouse dolly (flat transport frame on four casters) and randomised scenes around it.

Frame `dolly`: origin at the centre of the frame's footprint ON THE FLOOR (z = 0 is the floor the
casters stand on), x forward along the long side, y left, z up. The frame (perimeter bars, cross
bars, caster mounting plates) is part 0; the four casters (fork + wheel) are part 1, so a mask
decoder can be trained on the frame without the wheels (which swivel on a real dolly).

Segmentation object indices in dolly scenes: 1 dolly, 2 floor, 3.. clutter and distractors.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim import mesh as meshes
from ros2_pose.sim.randomization import (DomainRandomization, apply_sensor_effects, look_at,
                                         random_background, random_camera, random_lights,
                                         random_material, random_texture)
from ros2_pose.sim.renderer import Renderer
from ros2_pose.sim.scene import Scene, SceneObject, segment_id
from ros2_pose.sim.tasks import SimDetection, SimFrame, box_from_mask, projected_box

DOLLY_OBJECT = 1
FLOOR_OBJECT = 2
FIRST_CLUTTER_OBJECT = 3
FRAME_PART = 0
WHEEL_PART = 1
PARTS = {FRAME_PART: "frame", WHEEL_PART: "wheels"}
CLASS_NAME = "dolly"


@dataclass(frozen=True)
class DollyGeometry:
    """Dimensions in metres of THE dolly the product looks for. `height` is the top of the frame above
    the floor.

    One physical model, not a family: a monocular pose network reads depth from apparent size, so
    randomising the dolly's dimensions would make its distance ambiguous (appearance is randomised
    instead). The model is deliberately asymmetric - a tow bar sticks out at the front (+x) and a
    raised push plate stands at the rear (-x), and the cross bars are not evenly spaced - because a
    rectangular frame on four casters looks the same after a half turn and its yaw would be
    ambiguous by 180 degrees.
    """

    length: float = 0.9  # along x, frame only (the tow bar adds `tow_bar_length` in front)
    width: float = 0.6  # along y
    height: float = 0.2
    bar: float = 0.035  # square bar cross-section
    cross_bar_positions: tuple[float, ...] = (0.3, 0.62)  # fractions of the length from the rear end
    wheel_radius: float = 0.055
    tow_bar_length: float = 0.22
    push_plate_height: float = 0.12  # above the frame's top

    def corners(self) -> np.ndarray:
        """The 8 corners of the dolly's bounding box (tow bar and push plate included), dolly frame."""
        x_max = self.length / 2 + self.tow_bar_length
        z_max = self.height + self.push_plate_height
        return np.array([[x, y, z] for x in (-self.length / 2, x_max)
                         for y in (-self.width / 2, self.width / 2) for z in (0.0, z_max)])


def caster_positions(g: DollyGeometry) -> np.ndarray:
    """(4,2) x,y of the caster axes, just inside the frame corners."""
    inset = g.bar / 2 + g.wheel_radius * 0.9
    return np.array([[sx * (g.length / 2 - inset), sy * (g.width / 2 - inset)]
                     for sx in (1, -1) for sy in (1, -1)])


@lru_cache(maxsize=8)
def dolly_meshes(g: DollyGeometry) -> dict[int, meshes.Mesh]:
    """{part_index: mesh} of a dolly in its own frame (see module docstring). Cached: the geometry
    is frozen and meshes are immutable, and building ~40 parts costs ~15 ms a frame. Callers must
    not modify the returned dict."""
    L, W, H, b = g.length, g.width, g.height, g.bar
    zc = H - b / 2  # centre height of the bars
    frame = [
        meshes.translated(meshes.box((L, b, b)), (0, W / 2 - b / 2, zc)),
        meshes.translated(meshes.box((L, b, b)), (0, -W / 2 + b / 2, zc)),
        meshes.translated(meshes.box((b, W - 2 * b, b)), (L / 2 - b / 2, 0, zc)),
        meshes.translated(meshes.box((b, W - 2 * b, b)), (-L / 2 + b / 2, 0, zc)),
    ]
    for fraction in g.cross_bar_positions:
        frame.append(meshes.translated(meshes.box((b, W - 2 * b, b * 0.8)), (-L / 2 + fraction * L, 0, zc)))
    # Tow bar at the front: a bar along x from the front end with a ring-like cross piece at its tip.
    tow = g.tow_bar_length
    frame.append(meshes.translated(meshes.box((tow, b * 0.8, b * 0.8)), (L / 2 + tow / 2, 0, zc)))
    frame.append(meshes.translated(meshes.box((b * 0.8, W * 0.25, b * 0.8)), (L / 2 + tow - b * 0.4, 0, zc)))
    # Push plate at the rear: a flat plate standing on the rear bar.
    plate_h = g.push_plate_height
    frame.append(meshes.translated(meshes.box((b * 0.5, W - 2 * b, plate_h)), (-L / 2 + b / 2, 0, H + plate_h / 2)))
    wheels = []
    plate = g.wheel_radius * 2.2
    fork_top = H - b
    wheel_bottom_gap = 0.0  # wheels stand on the floor
    for x, y in caster_positions(g):
        frame.append(meshes.translated(meshes.box((plate, plate, 0.006)), (x, y, fork_top - 0.003)))
        # fork: two cheeks either side of the wheel and a swivel block on top
        r = g.wheel_radius
        cheek_h = fork_top - 0.006 - (wheel_bottom_gap + r)
        wheel_w = r * 0.6
        swivel = r * 0.5
        wheels.append(meshes.translated(meshes.box((swivel, swivel, swivel * 0.6)),
                                        (x, y, fork_top - 0.006 - swivel * 0.3)))
        for side in (-1, 1):
            wheels.append(meshes.translated(meshes.box((r * 0.9, 0.006, cheek_h)),
                                            (x, y + side * (wheel_w / 2 + 0.004), r + cheek_h / 2)))
        wheel = meshes.cylinder(r, wheel_w, segments=16)  # a multiple of 4: a vertex touches the floor
        axle_along_y = np.array([[1, 0, 0, x], [0, 0, -1, y], [0, 1, 0, r], [0, 0, 0, 1]], float)
        wheels.append(meshes.transform(wheel, axle_along_y))
    return {FRAME_PART: meshes.merge(frame), WHEEL_PART: meshes.merge(wheels)}


def _yaw_pose(x: float, y: float, z: float, yaw: float) -> RigidTransform:
    c, s = np.cos(yaw), np.sin(yaw)
    return RigidTransform(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]), np.array([x, y, z]))


class DollyTask:
    """Scenes of one dolly on a textured floor among clutter, seen from a robot-height camera.

    Ground truth in `SimFrame.extra`: `box_visible` (all parts, from segmentation), `box_frame_visible`
    (frame part only), `box_full` (projection of the whole dolly's bounding box, clipped to the
    image), `visible_fraction` (see `generate`), `distance` (m, camera to dolly origin), `dolly_size`
    (length, width, height). Masks are in the segmentation: dolly = 256 (frame) and 257 (wheels).
    """

    name = "dolly"
    presets = DomainRandomization.PRESETS
    class_names = (CLASS_NAME,)

    def __init__(self, width: int = 640, height: int = 480, preset: str = "default", backend: str = "auto",
                 distance_range: tuple[float, float] = (0.3, 6.0),
                 camera_height_range: tuple[float, float] = (0.2, 1.5)):
        self.width, self.height, self.backend = width, height, backend
        self.randomization = DomainRandomization.preset(preset)
        self.distance_range = distance_range
        self.camera_height_range = camera_height_range
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.width, self.height, self.backend)
        return self._renderer

    def build_scene(self, rng: np.random.Generator):
        """(scene, camera, T_world_camera, T_world_dolly, geometry): everything random but the render."""
        dr = self.randomization
        g = DollyGeometry()
        T_world_dolly = _yaw_pose(0.0, 0.0, 0.0, rng.uniform(-np.pi, np.pi))
        dolly_material = random_material(rng, dr, textured=False)
        wheel_material = random_material(rng, dr, textured=False,
                                         base_color=np.full(3, rng.uniform(0.05, 0.3), np.float32))
        objects = [SceneObject(f"dolly/{PARTS[p]}", m, T_world_dolly,
                               dolly_material if p == FRAME_PART else wheel_material, segment_id(DOLLY_OBJECT, p))
                   for p, m in dolly_meshes(g).items()]

        # Camera: log-uniform distance so close range (partial views) is well represented.
        lo, hi = self.distance_range
        distance = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        cam_height = rng.uniform(*self.camera_height_range)
        horizontal = np.sqrt(max(distance ** 2 - (cam_height - g.height / 2) ** 2, 0.05 ** 2))
        azimuth = rng.uniform(-np.pi, np.pi)
        eye = np.array([horizontal * np.cos(azimuth), horizontal * np.sin(azimuth), cam_height])
        # Aim near the dolly, not always at its centre; closer views wander more (partial views).
        wander = min(0.3, 0.25 * distance) * rng.uniform(-1, 1, 3) * (1, 1, 0.3)
        target = np.array([0.0, 0.0, g.height / 2]) + wander
        T_world_camera = look_at(eye, target, roll=np.radians(rng.uniform(-5, 5)))
        camera = random_camera(rng, dr, self.width, self.height)

        floor_texture = random_texture(rng, size=128)
        floor_material = random_material(rng, dr, textured=False)
        floor_material.texture = floor_texture
        floor_material.specular = min(floor_material.specular, 0.3)
        objects.append(SceneObject("floor", meshes.plane(60.0, 60.0, uv_scale=rng.uniform(0.3, 2.0)),
                                   RigidTransform.identity(), floor_material, segment_id(FLOOR_OBJECT)))

        index = FIRST_CLUTTER_OBJECT
        if rng.uniform() < 0.3:  # a load on the dolly: occludes the frame from above
            size = (g.length * rng.uniform(0.3, 0.9), g.width * rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.5))
            load = meshes.translated(meshes.box(size), (rng.uniform(-0.1, 0.1) * g.length, 0, g.height + size[2] / 2))
            objects.append(SceneObject("load", load, T_world_dolly, random_material(rng, dr), segment_id(index)))
            index += 1
        dolly_radius = np.hypot(g.length / 2 + g.tow_bar_length, g.width / 2)
        for _ in range(int(rng.integers(0, 9))):
            kind = rng.uniform()
            if kind < 0.6:
                size = rng.uniform(0.1, 0.8, 3)
                m, footprint = meshes.translated(meshes.box(size), (0, 0, size[2] / 2)), np.hypot(*size[:2]) / 2
            elif kind < 0.85:
                r, h = rng.uniform(0.05, 0.3), rng.uniform(0.2, 1.2)
                m, footprint = meshes.translated(meshes.cylinder(r, h), (0, 0, h / 2)), r
            else:  # thin bars lying on the floor: distractors for the dolly's bar structure
                length = rng.uniform(0.4, 1.5)
                bar = rng.uniform(0.02, 0.06)
                m, footprint = meshes.translated(meshes.box((length, bar, bar)), (0, 0, bar / 2)), length / 2
            for _attempt in range(10):
                xy = rng.uniform(-6, 6, 2)
                if (np.linalg.norm(xy) > dolly_radius + footprint + 0.05
                        and np.linalg.norm(xy - eye[:2]) > footprint + 0.3):
                    objects.append(SceneObject(f"clutter_{index}", m, _yaw_pose(*xy, 0.0, rng.uniform(-np.pi, np.pi)),
                                               random_material(rng, dr), segment_id(index)))
                    index += 1
                    break
        background = random_background(rng, dr, self.width, self.height, kind="indoor")
        scene = Scene(objects, random_lights(rng, dr), background)
        return scene, camera, T_world_camera, T_world_dolly, g

    def generate(self, rng: np.random.Generator, index: int) -> SimFrame:
        scene, camera, T_world_camera, T_world_dolly, g = self.build_scene(rng)
        frame = self.renderer.render(scene, camera, T_world_camera)
        rgb = apply_sensor_effects(frame.rgb, rng, self.randomization)
        T_camera_dolly = T_world_camera.inverse() @ T_world_dolly

        dolly_mask = frame.mask(DOLLY_OBJECT)
        frame_mask = frame.mask(DOLLY_OBJECT, FRAME_PART)
        # Occlusion: visible pixels / pixels of the dolly rendered alone (same camera).
        alone = Scene([o for o in scene.objects if o.segment_id // 256 == DOLLY_OBJECT], scene.lights)
        unoccluded = self.renderer.coverage(alone, camera, T_world_camera)
        # Truncation: share of the projected bounding box that lies inside the image.
        corners_camera = T_camera_dolly.apply(g.corners())
        full = projected_box(camera, corners_camera, clip=False)
        clipped = projected_box(camera, corners_camera, clip=True)
        in_image = 0.0
        if full is not None and np.all(corners_camera[:, 2] > 0):
            area = (full[2] - full[0]) * (full[3] - full[1])
            in_image = (clipped[2] - clipped[0]) * (clipped[3] - clipped[1]) / area if area > 0 else 0.0
        elif full is not None:
            in_image = 0.5  # corners behind the camera: very close and certainly truncated
        visible_fraction = (dolly_mask.sum() / unoccluded if unoccluded else 0.0) * in_image

        box_visible = box_from_mask(dolly_mask)
        detections = [] if box_visible is None else [SimDetection(CLASS_NAME, DOLLY_OBJECT, box_visible, 1.0)]
        return SimFrame(
            rgb=rgb, depth=frame.depth, segmentation=frame.segmentation, camera=camera,
            T_world_camera=T_world_camera, objects={"dolly": T_world_dolly},
            tracked_pose=T_camera_dolly, tracked_frame="dolly", detections=detections,
            extra={
                "box_visible": _box_or_nan(box_visible),
                "box_frame_visible": _box_or_nan(box_from_mask(frame_mask)),
                "box_full": _box_or_nan(clipped),
                "visible_fraction": float(visible_fraction),
                "distance": float(np.linalg.norm(T_camera_dolly.translation)),
                "dolly_size": np.array([g.length, g.width, g.height]),
            })


def _box_or_nan(box) -> np.ndarray:
    """A box as a (4,) array; NaN when there is none (arrays keep a fixed shape in datasets)."""
    return np.full(4, np.nan) if box is None else np.asarray(box, dtype=np.float64)
