"""What a renderer draws: objects with materials and poses, lights, a background; and what it returns.

Segmentation ids follow DESIGN.md: `segment_id = object_index * 256 + part_index`, 0 = background,
so object indices start at 1 and each object has at most 256 parts. Poses are `RigidTransform`s
(`p_world = R p_object + t`) or plain 4x4 matrices; `pose_matrix` turns either into a matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ros2_pose.sim.mesh import Mesh, as_matrix

MAX_PARTS = 256
MAX_OBJECTS = 65535 // MAX_PARTS  # segmentation is uint16


class SceneError(ValueError):
    """A scene description is malformed (bad colour, id, image shape...)."""


def segment_id(object_index: int, part_index: int = 0) -> int:
    """The uint16 segmentation value of part `part_index` of object `object_index` (>= 1)."""
    if not 1 <= object_index <= MAX_OBJECTS:
        raise SceneError(f"object_index must be in [1, {MAX_OBJECTS}] (0 is background), got {object_index}")
    if not 0 <= part_index < MAX_PARTS:
        raise SceneError(f"part_index must be in [0, {MAX_PARTS}), got {part_index}")
    return object_index * MAX_PARTS + part_index


def split_segment_id(segmentation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(object_index, part_index) arrays from segmentation values."""
    seg = np.asarray(segmentation)
    return seg // MAX_PARTS, seg % MAX_PARTS


def pose_matrix(pose) -> np.ndarray:
    """4x4 float64 matrix of a RigidTransform (rotation, translation) or of a 4x4 array."""
    return as_matrix(pose)


def _colour(value, name: str) -> np.ndarray:
    c = np.asarray(value, dtype=np.float32).reshape(-1)
    if c.shape != (3,) or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise SceneError(f"{name} must be 3 non-negative floats (linear RGB, 1 = full), got {value!r}")
    return c


@dataclass
class Material:
    """Phong material. base_color is RGB in [0,1]; `texture` (HxWx3 uint8) multiplies base_color,
    sampled with the mesh's uvs (repeating). specular is the strength of highlights (0 = matte;
    shiny metal bars ~0.5-1), shininess the Phong exponent (higher = smaller, sharper highlight)."""

    base_color: tuple[float, float, float] | np.ndarray = (0.6, 0.6, 0.6)
    specular: float = 0.1
    shininess: float = 16.0
    texture: np.ndarray | None = None

    def __post_init__(self):
        self.base_color = _colour(self.base_color, "Material.base_color")
        if not (np.isfinite(self.specular) and self.specular >= 0):
            raise SceneError(f"Material.specular must be >= 0, got {self.specular}")
        if not (np.isfinite(self.shininess) and self.shininess >= 1):
            raise SceneError(f"Material.shininess must be >= 1, got {self.shininess}")
        if self.texture is not None:
            tex = np.asarray(self.texture)
            if tex.dtype != np.uint8 or tex.ndim != 3 or tex.shape[2] != 3:
                raise SceneError(f"Material.texture must be HxWx3 uint8, got {tex.dtype} {tex.shape}")
            self.texture = np.ascontiguousarray(tex)


@dataclass
class SceneObject:
    """One rigid part to draw. `T_world_object` maps mesh coordinates into the world frame."""

    name: str
    mesh: Mesh
    T_world_object: object  # RigidTransform or 4x4 array
    material: Material = field(default_factory=Material)
    segment_id: int = 0

    def __post_init__(self):
        if not isinstance(self.mesh, Mesh):
            raise SceneError(f"SceneObject {self.name!r}: mesh must be a ros2_pose.sim.mesh.Mesh")
        if not 0 <= int(self.segment_id) <= 65535:
            raise SceneError(f"SceneObject {self.name!r}: segment_id must fit uint16, got {self.segment_id}")
        pose_matrix(self.T_world_object)  # fail here, not in the renderer

    def world_matrix(self) -> np.ndarray:
        return pose_matrix(self.T_world_object)


@dataclass
class Light:
    """Directional light. `direction` is where the light travels (world frame, e.g. (0,0,-1) from
    straight above); `ambient` is added to every surface regardless of direction."""

    direction: tuple[float, float, float] | np.ndarray = (0.3, 0.2, -1.0)
    color: tuple[float, float, float] | np.ndarray = (1.0, 1.0, 1.0)
    intensity: float = 1.0
    ambient: float = 0.2

    def __post_init__(self):
        d = np.asarray(self.direction, dtype=np.float64).reshape(-1)
        if d.shape != (3,) or not np.linalg.norm(d) > 1e-9:
            raise SceneError(f"Light.direction must be a non-zero 3-vector, got {self.direction!r}")
        self.direction = (d / np.linalg.norm(d)).astype(np.float32)
        self.color = _colour(self.color, "Light.color")
        if not (self.intensity >= 0 and self.ambient >= 0):
            raise SceneError(f"Light intensity and ambient must be >= 0, got {self.intensity}, {self.ambient}")


@dataclass
class Scene:
    """Objects, lights and what shows where nothing was drawn: an HxWx3 uint8 image (resized to the
    render size if needed) or an RGB colour in [0,1]."""

    objects: list[SceneObject] = field(default_factory=list)
    lights: list[Light] = field(default_factory=lambda: [Light()])
    background: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        bg = np.asarray(self.background)
        if bg.ndim == 3:
            if bg.dtype != np.uint8 or bg.shape[2] != 3:
                raise SceneError(f"Scene.background image must be HxWx3 uint8, got {bg.dtype} {bg.shape}")
        else:
            _colour(bg, "Scene.background colour")

    def background_image(self, width: int, height: int) -> np.ndarray:
        """The background as an HxWx3 uint8 image of the render size (may be a read-only view)."""
        bg = np.asarray(self.background)
        if bg.ndim == 3:
            if bg.shape[:2] == (height, width):
                return bg
            import cv2

            return cv2.resize(bg, (width, height), interpolation=cv2.INTER_AREA)
        colour = np.clip(np.asarray(bg, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.broadcast_to(colour, (height, width, 3))  # read-only view: callers copy if needed


@dataclass
class RenderedFrame:
    """rgb HxWx3 uint8; depth HxW float32 metres along the optical axis (0 where background);
    segmentation HxW uint16 segment ids (0 where background)."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray

    def mask(self, object_index: int, part_index: int | None = None) -> np.ndarray:
        """Pixels of one object (all its parts) or of one of its parts."""
        if part_index is None:
            return (self.segmentation // MAX_PARTS) == object_index
        return self.segmentation == segment_id(object_index, part_index)


def camera_matrix(camera) -> np.ndarray:
    """The 3x3 intrinsic matrix of a CameraModel-like object (attribute `K`) or of a 3x3 array."""
    K = np.asarray(getattr(camera, "K", camera), dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise SceneError(f"camera intrinsics must be a 3x3 matrix with fx, fy > 0, got {K!r}")
    return K
