"""Two quadcopter models with named 3D keypoints, and scenes of them in flight.

Frame `drone`: origin at the body centre, x forward (camera side), y left, z up. Sizes follow the
real aircraft's bounding boxes (L x W x H): "drone_large" = DJI Mavic 2 Enterprise (322 x 242 x
84 mm), "drone_small" = Ryze Tello (98 x 92.5 x 41 mm). Parts: 0 body and arms, 1 rotors,
2 camera, 3 landing gear.

Keypoint visibility (COCO): 2 visible, 1 inside the image but hidden (by the drone itself or by
another object, from the depth test), 0 outside the image or behind the camera.
Segmentation object indices: drone k (k = 0, 1, ...) is object k+1; a ground plane, if any, is 10.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_pose.data.bag_messages import ObjectKeypointsSpec
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix
from ros2_pose.sim import mesh as meshes
from ros2_pose.sim.randomization import (DomainRandomization, apply_sensor_effects, random_background,
                                         random_camera, random_lights, random_material, random_texture)
from ros2_pose.sim.renderer import Renderer
from ros2_pose.sim.scene import Material, Scene, SceneObject, segment_id
from ros2_pose.sim.tasks import SimDetection, SimFrame, box_from_mask, projected_box

KEYPOINT_NAMES = (
    "rotor_front_left", "rotor_front_right", "rotor_rear_left", "rotor_rear_right",
    "body_front", "body_rear", "body_top", "camera", "gear_left", "gear_right",
)
BODY_PART, ROTOR_PART, CAMERA_PART, GEAR_PART = 0, 1, 2, 3
GROUND_OBJECT = 10
NOT_LABELLED, OCCLUDED, VISIBLE = 0, 1, 2


@dataclass(frozen=True)
class DroneModel:
    """Proportions of a quadcopter; overall size = (length, width, height) in metres."""

    name: str
    length: float
    width: float
    height: float
    body_length_fraction: float  # of the overall length
    body_width_fraction: float

    def rotor_radius(self) -> float:
        return min(self.length, self.width) * 0.2

    def rotor_centres(self) -> np.ndarray:
        """(4,3) hub tops: front-left, front-right, rear-left, rear-right."""
        r = self.rotor_radius()
        hx, hy = self.length / 2 - r, self.width / 2 - r
        z = self.height / 2 - self.height * 0.05
        return np.array([[hx, hy, z], [hx, -hy, z], [-hx, hy, z], [-hx, -hy, z]])

    def body_size(self) -> np.ndarray:
        return np.array([self.length * self.body_length_fraction, self.width * self.body_width_fraction,
                         self.height * 0.45])

    def keypoints(self) -> np.ndarray:
        """(10,3) keypoints in the drone frame, in KEYPOINT_NAMES order, on the mesh's surface."""
        body = self.body_size()
        body_z = self.height * 0.05
        gear_y = body[1] * 0.4
        cam_r = self.height * 0.15
        return np.concatenate([
            self.rotor_centres(),
            [[body[0] / 2, 0, body_z], [-body[0] / 2, 0, body_z], [0, 0, body_z + body[2] / 2],
             [body[0] / 2 + cam_r * 2, 0, body_z - body[2] / 2 + 0.0],
             [0, gear_y, -self.height / 2], [0, -gear_y, -self.height / 2]],
        ])

    def meshes(self) -> dict[int, meshes.Mesh]:
        body = self.body_size()
        body_z = self.height * 0.05
        kp = self.keypoints()
        parts = {BODY_PART: [meshes.translated(meshes.box(body), (0, 0, body_z))],
                 ROTOR_PART: [], CAMERA_PART: [], GEAR_PART: []}
        arm_r = self.height * 0.06
        rotor_r = self.rotor_radius()
        hub_h = self.height * 0.12
        for hub in kp[:4]:
            root = np.array([np.sign(hub[0]) * body[0] * 0.3, np.sign(hub[1]) * body[1] * 0.3, body_z])
            motor = hub - (0, 0, hub_h)
            parts[BODY_PART].append(meshes.cylinder_between(root, motor, arm_r, segments=6))
            parts[BODY_PART].append(meshes.cylinder_between(motor - (0, 0, hub_h), motor, arm_r * 1.6, segments=8))
            # propeller disc (blurred spinning blades) and hub cap, whose top centre is the keypoint
            parts[ROTOR_PART].append(meshes.translated(meshes.cylinder(rotor_r, self.height * 0.02, 16),
                                                       motor + (0, 0, self.height * 0.01)))
            parts[ROTOR_PART].append(meshes.cylinder_between(motor, hub, arm_r * 0.9, segments=8))
        cam_r = self.height * 0.15
        cam_centre = kp[7] - (cam_r, 0, 0)
        parts[CAMERA_PART].append(meshes.translated(meshes.sphere(cam_r, 6, 10), cam_centre))
        parts[CAMERA_PART].append(meshes.cylinder_between(cam_centre + (0, 0, cam_r), (cam_centre[0], 0, body_z), cam_r * 0.4, 6))
        leg_r = self.height * 0.04
        for gear in kp[8:10]:
            top = np.array([0, gear[1], body_z - body[2] / 2])
            foot = gear + (0, 0, leg_r)
            parts[GEAR_PART].append(meshes.cylinder_between(top + (body[0] * 0.25, 0, 0), foot, leg_r, 6))
            parts[GEAR_PART].append(meshes.cylinder_between(top - (body[0] * 0.25, 0, 0), foot, leg_r, 6))
            parts[GEAR_PART].append(meshes.cylinder_between(foot - (body[0] * 0.35, 0, 0), foot + (body[0] * 0.35, 0, 0), leg_r, 6))
        return {p: meshes.merge(ms) for p, ms in parts.items()}


MODELS = {
    "drone_large": DroneModel("drone_large", 0.322, 0.242, 0.084, 0.55, 0.38),
    "drone_small": DroneModel("drone_small", 0.098, 0.0925, 0.041, 0.6, 0.45),
}
# Distances (m) at which each model is placed: the far end leaves the small one a few pixels.
DISTANCE_RANGES = {"drone_large": (0.8, 40.0), "drone_small": (0.4, 15.0)}


def keypoint_visibility(camera: CameraModel, points_camera: np.ndarray, depth: np.ndarray,
                        tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (K,2), COCO visibility (K,)) of 3D points on surfaces (camera frame).

    A point inside the image is occluded when every pixel of its 3x3 neighbourhood shows a surface
    nearer than the point (by more than `tolerance` metres plus 1% of its depth); checking the
    neighbourhood keeps points on silhouettes and on few-pixel drones visible."""
    pixels = camera.project(points_camera)
    visibility = np.zeros(len(points_camera), np.uint8)
    h, w = depth.shape
    for k, (p, z) in enumerate(zip(pixels, points_camera[:, 2])):
        if not np.all(np.isfinite(p)) or z <= 0:
            continue
        u, v = int(np.round(p[0])), int(np.round(p[1]))
        if not (0 <= u < w and 0 <= v < h):
            continue
        patch = depth[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2]
        nearer = (patch > 0) & (patch < z - tolerance - 0.01 * z)
        visibility[k] = OCCLUDED if nearer.all() else VISIBLE
    pixels = np.where(np.isfinite(pixels), pixels, 0.0)
    return pixels, visibility


def random_attitude(rng: np.random.Generator, max_tilt_deg: float = 25.0) -> np.ndarray:
    """Yaw anywhere, roll and pitch within +-max_tilt (a flying multirotor)."""
    yaw = axis_angle_to_matrix([0, 0, rng.uniform(-np.pi, np.pi)])
    tilt = axis_angle_to_matrix(np.radians(rng.uniform(-max_tilt_deg, max_tilt_deg, 3) * (1, 1, 0)))
    return yaw @ tilt


MIN_FLIGHT_HEIGHT_M = 0.3  # drone centre above the ground plane z = 0


class DroneTask:
    """One or two drones (large and/or small) in flight against sky or indoor backgrounds.

    The tracked pose is the first drone's. `SimFrame.keypoints` holds one ObjectKeypointsSpec per
    drone with its box from the segmentation (the projected keypoints' box if it covers no pixel).
    `extra`: `box_full` of the first drone (projection of its mesh, clipped), `distance`, `model`.
    """

    name = "drone"
    presets = DomainRandomization.PRESETS
    class_names = tuple(MODELS)

    def __init__(self, width: int = 640, height: int = 480, preset: str = "default", backend: str = "auto",
                 max_drones: int = 2):
        self.width, self.height, self.backend = width, height, backend
        self.randomization = DomainRandomization.preset(preset)
        self.max_drones = max_drones
        self._renderer: Renderer | None = None
        self._meshes = {name: model.meshes() for name, model in MODELS.items()}

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.width, self.height, self.backend)
        return self._renderer

    def build_scene(self, rng: np.random.Generator):
        dr = self.randomization
        camera = random_camera(rng, dr, self.width, self.height)
        # Camera looks up-ish into the sky outdoors, or level indoors.
        indoor = rng.uniform() < 0.4
        pitch_up = np.radians(rng.uniform(-10, 15) if indoor else rng.uniform(0, 50))
        yaw = rng.uniform(-np.pi, np.pi)
        # optical frame looking along world +x (yaw 0), then pitched up and yawed
        R_level = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
        R = axis_angle_to_matrix([0, 0, yaw]) @ axis_angle_to_matrix([0, -pitch_up, 0]) @ R_level
        T_world_camera = RigidTransform(R, np.array([0.0, 0.0, rng.uniform(1.0, 2.0)]))

        names = list(MODELS)
        count = int(rng.integers(1, self.max_drones + 1))
        drones = []
        objects = []
        for k in range(count):
            name = names[int(rng.integers(0, len(names)))]
            lo, hi = DISTANCE_RANGES[name]
            if indoor:
                hi = min(hi, 10.0)
            distance = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            # a random pixel (some just outside the image: partly visible drones) along whose ray it flies
            u = rng.uniform(-0.05, 1.05) * self.width
            v = rng.uniform(-0.05, 1.05) * self.height
            ray = np.linalg.solve(camera.K, [u, v, 1.0])
            ray_world = T_world_camera.rotation @ (ray / np.linalg.norm(ray))
            camera_z = T_world_camera.translation[2]
            if ray_world[2] < 0:
                # A ray that goes down meets the ground (z = 0, drawn or not): the drone flies at least
                # MIN_FLIGHT_HEIGHT_M above it, so it is never buried in the ground plane.
                distance = min(distance, max(0.0, (MIN_FLIGHT_HEIGHT_M - camera_z) / ray_world[2]))
            position = T_world_camera.translation + ray_world * distance
            position[2] = max(position[2], MIN_FLIGHT_HEIGHT_M)
            T_world_drone = RigidTransform(random_attitude(rng), position)
            body = random_material(rng, dr, textured=False)
            dark = Material(np.full(3, rng.uniform(0.02, 0.2), np.float32), body.specular, body.shininess)
            materials = {BODY_PART: body, ROTOR_PART: dark, CAMERA_PART: dark, GEAR_PART: body}
            for part, m in self._meshes[name].items():
                objects.append(SceneObject(f"drone_{k}/{part}", m, T_world_drone, materials[part],
                                           segment_id(k + 1, part)))
            drones.append((name, T_world_drone))
        if not indoor and rng.uniform() < 0.5:
            ground = random_material(rng, dr, textured=False)
            ground.texture = random_texture(rng, size=128)
            objects.append(SceneObject("ground", meshes.plane(400.0, 400.0, uv_scale=0.2),
                                       RigidTransform.identity(), ground, segment_id(GROUND_OBJECT)))
        background = random_background(rng, dr, self.width, self.height, kind="indoor" if indoor else "sky")
        return Scene(objects, random_lights(rng, dr), background), camera, T_world_camera, drones

    def generate(self, rng: np.random.Generator, index: int) -> SimFrame:
        scene, camera, T_world_camera, drones = self.build_scene(rng)
        frame = self.renderer.render(scene, camera, T_world_camera)
        rgb = apply_sensor_effects(frame.rgb, rng, self.randomization)
        T_camera_world = T_world_camera.inverse()
        keypoints, detections, objects = [], [], {}
        for k, (name, T_world_drone) in enumerate(drones):
            T_camera_drone = T_camera_world @ T_world_drone
            model = MODELS[name]
            xy, visibility = keypoint_visibility(camera, T_camera_drone.apply(model.keypoints()), frame.depth)
            box = box_from_mask(frame.mask(k + 1))
            frame_name = "drone" if k == 0 else f"drone_{k}"
            objects[frame_name] = T_world_drone
            if box is None:
                labelled = visibility > 0
                if not labelled.any():
                    continue  # not in view at all
                box = (*xy[labelled].min(axis=0), *xy[labelled].max(axis=0))
            detections.append(SimDetection(name, k + 1, tuple(float(b) for b in box), 1.0))
            keypoints.append(ObjectKeypointsSpec(name, box, KEYPOINT_NAMES, xy, visibility, instance_id=k + 1))
        name0, T_world_drone0 = drones[0]
        T_camera_drone0 = T_camera_world @ T_world_drone0
        vertices = np.concatenate([m.vertices for m in self._meshes[name0].values()])
        full = projected_box(camera, T_camera_drone0.apply(vertices), clip=True)
        return SimFrame(
            rgb=rgb, depth=frame.depth, segmentation=frame.segmentation, camera=camera,
            T_world_camera=T_world_camera, objects=objects, tracked_pose=T_camera_drone0,
            tracked_frame="drone", detections=detections, keypoints=keypoints,
            extra={"box_full": np.full(4, np.nan) if full is None else np.asarray(full),
                   "distance": float(np.linalg.norm(T_camera_drone0.translation)),
                   "model": name0})
