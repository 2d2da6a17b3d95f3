"""`ros2-pose sim people`: several articulated people per image, with COCO keypoint labels.

Each frame places 1-6 random people (skeleton.random_person) on a floor, alone or in a crowd, in
an indoor room (textured floor and walls, furniture boxes) or outdoors (ground + sky), renders
RGB + depth + segmentation, and labels every person from what was rendered:

- visibility 2 (visible): the keypoint projects into the image, and a pixel next to it shows this
  person at a depth that agrees with the keypoint (within the radius of the body part around it);
- visibility 1 (occluded): inside the image but hidden by another person, an object, or the
  person's own body (e.g. the nose of someone facing away);
- visibility 0 (not labelled): outside the image or behind the camera (x = y = 0 then, as COCO).

A fraction of people is left unlabelled on purpose (all keypoints 0, num_keypoints = 0, box and
mask still given), like COCO's unannotated people, so training code that masks them is exercised.
Segmentation ids: person i (1-based object index) part p -> i * 256 + p, parts in
`skeleton.BODY_PARTS`; furniture, stools, floor and walls get object indices after the people.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim import skeleton as sk
from ros2_pose.sim.mesh import box, plane
from ros2_pose.sim.randomization import (DomainRandomization, apply_sensor_effects, look_at, random_background,
                                         random_camera, random_color, random_lights, random_material,
                                         random_texture)
from ros2_pose.sim.scene import MAX_PARTS, Material, Scene, SceneObject, segment_id
from ros2_pose.sim.tasks import SimDetection, SimFrame, box_from_mask

# Joints published on /ground_truth/skeletons: COCO order, then the neck for 18-joint models.
SKELETON_JOINT_NAMES: tuple[str, ...] = sk.COCO_KEYPOINTS + ("neck",)
SKELETON_LIMBS = np.array(sk.COCO_SKELETON, dtype=np.int64) - 1  # 0-based, as SkeletonArray wants


@dataclass(frozen=True)
class PeopleConfig:
    people_per_image: tuple[int, int] = (1, 6)
    unlabelled_fraction: float = 0.15
    crowd_probability: float = 0.5          # people bunched in a group (much mutual occlusion)
    indoor_probability: float = 0.6
    camera_height: tuple[float, float] = (0.9, 3.0)
    distance: tuple[float, float] = (2.0, 9.0)  # from the camera to the people, along the floor
    min_separation: float = 0.5             # between two people's pelvis centres (no interpenetration)
    furniture: tuple[int, int] = (0, 3)
    depth_margin: float = 0.04              # metres of slack in the "depth agrees" test
    mesh_detail: int = 10


@dataclass
class PlacedPerson:
    """A person in the scene: object index (segmentation), pose in the world, body, label flag."""

    object_index: int
    T_world_person: RigidTransform
    body: sk.PersonPose
    labelled: bool


@dataclass
class PersonLabel:
    """What an annotator would write for one person seen in the image.

    keypoints (17, 3): x, y (OpenCV pixels, = COCO pixel indices), v; box (x_min, y_min, x_max,
    y_max) over the person's visible pixels (pixel centres); area in pixels; labelled False for the
    intentionally unannotated people (their keypoints are all zero)."""

    person_id: int
    keypoints: np.ndarray
    box: tuple[float, float, float, float]
    area: int
    labelled: bool

    @property
    def num_keypoints(self) -> int:
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))

    def bodypose18(self) -> np.ndarray:
        """(18, 3) keypoints in BodyPose-18 order (neck = shoulders' midpoint)."""
        return sk.coco17_to_bodypose18(self.keypoints)


def label_people(segmentation: np.ndarray, depth: np.ndarray, camera: CameraModel,
                 T_world_camera: RigidTransform, people: list[PlacedPerson],
                 depth_margin: float = 0.04) -> list[PersonLabel]:
    """Labels of the people with at least one visible pixel (see the module docstring)."""
    height, width = segmentation.shape
    if depth.shape != segmentation.shape:
        raise ValueError(f"depth {depth.shape} and segmentation {segmentation.shape} must have the same size")
    objects = segmentation // MAX_PARTS
    T_camera_world = T_world_camera.inverse()
    labels = []
    for person in people:
        mask = objects == person.object_index
        area = int(np.count_nonzero(mask))
        if area == 0:
            continue
        keypoints = np.zeros((len(sk.COCO_KEYPOINTS), 3))
        if person.labelled:
            points = T_camera_world.apply(person.T_world_person.apply(person.body.coco_keypoints))
            pixels = camera.project(points)
            surface = person.body.keypoint_surface_depth()
            for k, ((u, v), z) in enumerate(zip(pixels, points[:, 2])):
                if not (np.isfinite(u) and -0.5 <= u < width - 0.5 and -0.5 <= v < height - 0.5):
                    continue  # outside the image or behind the camera: not labelled
                col, row = int(round(u)), int(round(v))
                if segmentation[row, col] == 0:
                    # the joint of a thin limb at the silhouette's edge may round onto the
                    # background: look at its 3x3 neighbourhood instead (never past an occluder)
                    rows = slice(max(row - 1, 0), min(row + 2, height))
                    cols = slice(max(col - 1, 0), min(col + 2, width))
                else:
                    rows, cols = slice(row, row + 1), slice(col, col + 1)
                gap = z - depth[rows, cols]  # > 0: the surface seen there is in front of the joint
                agrees = mask[rows, cols] & (np.abs(gap) <= surface[k] + depth_margin)
                keypoints[k] = (u, v, 2 if agrees.any() else 1)
        labels.append(PersonLabel(person.object_index, keypoints, box_from_mask(mask), area, person.labelled))
    return labels


# Part groups that share one clothing material.
_CLOTHING_GROUPS = {
    "skin": ("head", "neck", "left_hand", "right_hand"),
    "top": ("torso", "left_upper_arm", "right_upper_arm"),
    "sleeves": ("left_forearm", "right_forearm"),
    "bottom": ("pelvis", "left_thigh", "right_thigh"),
    "legs": ("left_shank", "right_shank"),
    "shoes": ("left_foot", "right_foot"),
}


def _person_materials(rng: np.random.Generator, dr: DomainRandomization) -> dict[str, Material]:
    """Clothing colours per part: skin tone, top, long or short sleeves, trousers or shorts, shoes."""
    tone = rng.uniform(0.25, 0.95)
    skin = Material(np.array([0.95, 0.72, 0.58]) * tone + np.array([0.05, 0.03, 0.02]), 0.05, 8.0)
    top = random_material(rng, dr)
    bottom = random_material(rng, dr)
    shoes = Material(random_color(rng, (0.05, 0.6), (0.0, 0.4)), 0.2, 16.0)
    group = {"skin": skin, "top": top, "bottom": bottom, "shoes": shoes,
             "sleeves": top if rng.uniform() < 0.6 else skin,
             "legs": bottom if rng.uniform() < 0.8 else skin}
    return {part: group[g] for g, parts in _CLOTHING_GROUPS.items() for part in parts}


def _yaw(angle: float, xyz) -> RigidTransform:
    c, s = np.cos(angle), np.sin(angle)
    return RigidTransform(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), np.asarray(xyz, float))


class PeopleTask:
    """Frames of several people with COCO-17 (+ neck) keypoints, boxes, areas and masks."""

    name = "people"
    presets = DomainRandomization.PRESETS

    def __init__(self, width: int = 640, height: int = 480, preset: str = "default", backend: str = "auto",
                 config: PeopleConfig | None = None):
        self.width, self.height, self.backend = int(width), int(height), backend
        self.randomization = DomainRandomization.preset(preset)
        self.config = config or PeopleConfig()
        lo, hi = self.config.people_per_image
        if not 1 <= lo <= hi:
            raise ValueError(f"people_per_image must be 1 <= low <= high, got {self.config.people_per_image}")
        self._renderer = None

    # ------------------------------------------------------------------ scene
    def _place(self, rng: np.random.Generator, camera: CameraModel, count: int) -> list[tuple[float, float]]:
        """Floor positions (x forward from the camera, y left) inside the horizontal field of view."""
        cfg = self.config
        half_fov = np.arctan2(camera.width / 2, camera.fx)
        crowd = rng.uniform() < cfg.crowd_probability
        centre_d = rng.uniform(cfg.distance[0] + 0.8, cfg.distance[1] - 0.8)
        centre_y = rng.uniform(-0.5, 0.5) * centre_d * np.tan(half_fov)
        positions: list[tuple[float, float]] = []
        for _ in range(count * 50):
            if len(positions) == count:
                break
            if crowd:
                x, y = centre_d + rng.normal(0, 0.9), centre_y + rng.normal(0, 0.8)
            else:
                x = rng.uniform(*cfg.distance)
                y = rng.uniform(-0.85, 0.85) * x * np.tan(half_fov)
            if not cfg.distance[0] <= x <= cfg.distance[1] + 1.0:
                continue
            if all(np.hypot(x - px, y - py) >= cfg.min_separation for px, py in positions):
                positions.append((x, y))
        return positions

    def _environment(self, rng: np.random.Generator, first_index: int, people_xy, stools) -> tuple[list, np.ndarray]:
        """Floor, walls or sky, furniture and stools; returns (objects, background image)."""
        dr, cfg = self.randomization, self.config
        objects: list[SceneObject] = []
        index = first_index

        def add(name, mesh, pose, material):
            nonlocal index
            objects.append(SceneObject(name, mesh, pose, material, segment_id(index)))
            index += 1

        floor_material = Material(random_color(rng, (0.3, 0.9), (0.0, 0.5)), 0.05, 8.0,
                                  random_texture(rng, size=128))
        add("floor", plane(60.0, 60.0, uv_scale=rng.uniform(0.3, 1.5)), np.eye(4), floor_material)
        indoor = rng.uniform() < cfg.indoor_probability
        if indoor:
            back = rng.uniform(cfg.distance[1] + 1.5, cfg.distance[1] + 5.0)
            side = rng.uniform(5.0, 9.0)
            wall_height = rng.uniform(2.6, 4.0)
            wall_material = Material(random_color(rng, (0.4, 0.95), (0.0, 0.4)), 0.05, 8.0,
                                     random_texture(rng, size=128))
            for name, xyz, yaw, length in (("wall_back", (back, 0, wall_height / 2), 0.0, 2 * side),
                                           ("wall_left", (back / 2, side, wall_height / 2), np.pi / 2, back + 2),
                                           ("wall_right", (back / 2, -side, wall_height / 2), -np.pi / 2, back + 2)):
                add(name, box((0.1, length, wall_height)), _yaw(yaw, xyz), wall_material)
            background = random_background(rng, dr, self.width, self.height, "indoor")
        else:
            background = random_background(rng, dr, self.width, self.height, "sky")
        for k in range(int(rng.integers(cfg.furniture[0], cfg.furniture[1] + 1))):
            size = (rng.uniform(0.4, 1.5), rng.uniform(0.4, 1.5), rng.uniform(0.4, 1.6))
            for _ in range(20):  # furniture never overlaps a person's footprint
                x, y = rng.uniform(cfg.distance[0] - 0.5, cfg.distance[1] + 1), rng.uniform(-4, 4)
                if all(np.hypot(x - px, y - py) > 0.6 + max(size[:2]) / 2 for px, py in people_xy):
                    add(f"furniture_{k}", box(size), _yaw(rng.uniform(0, np.pi), (x, y, size[2] / 2)),
                        random_material(rng, dr))
                    break
        for k, (T_world_person, seat_height, depth) in enumerate(stools):
            stool = box((depth, 0.4, seat_height))
            pose = T_world_person @ RigidTransform(np.eye(3), np.array([-0.05, 0.0, seat_height / 2]))
            add(f"stool_{k}", stool, pose, random_material(rng, dr))
        return objects, background

    # ------------------------------------------------------------------ frames
    def generate(self, rng: np.random.Generator, index: int) -> SimFrame:
        from ros2_pose.sim.renderer import Renderer

        if self._renderer is None:
            self._renderer = Renderer(self.width, self.height, self.backend)
        dr, cfg = self.randomization, self.config
        camera = random_camera(rng, dr, self.width, self.height)
        count = int(rng.integers(cfg.people_per_image[0], cfg.people_per_image[1] + 1))
        positions = self._place(rng, camera, count)

        people: list[PlacedPerson] = []
        objects: list[SceneObject] = []
        stools = []
        for i, (x, y) in enumerate(positions):
            body = sk.random_person(rng)
            T_world_person = _yaw(rng.uniform(-np.pi, np.pi), (x, y, 0.0))
            person = PlacedPerson(i + 1, T_world_person, body, bool(rng.uniform() >= cfg.unlabelled_fraction))
            people.append(person)
            materials = _person_materials(rng, dr)
            for part in body.parts:
                objects.append(SceneObject(f"person_{i + 1}/{part.name}", sk.part_mesh(part, cfg.mesh_detail),
                                           T_world_person, materials[part.name],
                                           segment_id(person.object_index, part.part_index)))
            if body.seat_height() is not None:
                stools.append((T_world_person, body.seat_height(), 0.9 * body.proportions.thigh))
        environment, background = self._environment(rng, len(people) + 1, positions, stools)

        # Camera: standing on the floor behind the people, looking at the group's middle.
        camera_height = rng.uniform(*cfg.camera_height)
        xy = np.array(positions) if positions else np.array([[sum(cfg.distance) / 2, 0.0]])
        target = (xy[:, 0].mean(), xy[:, 1].mean(), rng.uniform(0.7, 1.2))
        T_world_camera = look_at((0.0, rng.uniform(-0.3, 0.3), camera_height), target,
                                 roll=np.radians(rng.uniform(-5, 5)))
        scene = Scene(objects + environment, random_lights(rng, dr), background)
        rendered = self._renderer.render(scene, camera, T_world_camera)
        labels = label_people(rendered.segmentation, rendered.depth, camera, T_world_camera, people,
                              cfg.depth_margin)
        rgb = apply_sensor_effects(rendered.rgb, rng, dr)

        from ros2_pose.data.bag_messages import PersonSpec

        skeletons, detections = [], []
        for label in labels:
            with_neck = np.concatenate([label.keypoints, label.bodypose18()[sk.NECK][None]])
            skeletons.append(PersonSpec(label.person_id, label.box, with_neck[:, :2].copy(),
                                        with_neck[:, 2].astype(np.uint8)))
            detections.append(SimDetection("person", label.person_id, label.box))
        return SimFrame(
            rgb=rgb, depth=rendered.depth, segmentation=rendered.segmentation, camera=camera,
            T_world_camera=T_world_camera,
            objects={f"person_{p.object_index}": p.T_world_person for p in people},
            detections=detections, skeletons=skeletons,
            skeleton_joint_names=list(SKELETON_JOINT_NAMES), skeleton_limbs=SKELETON_LIMBS.copy(),
            extra={
                "person_ids": np.array([lab.person_id for lab in labels], np.int32),
                "person_area": np.array([lab.area for lab in labels], np.int64),
                "person_labelled": np.array([lab.labelled for lab in labels], bool),
                "person_keypoints": (np.stack([lab.keypoints for lab in labels]) if labels
                                     else np.zeros((0, len(sk.COCO_KEYPOINTS), 3))),
                "people_placed": len(people),
            },
        )
