"""Domain randomisation: ranges for lights, materials, textures, backgrounds, intrinsics and sensor
effects, the samplers that draw from them, and the camera helpers the scene generators share.

`DomainRandomization()` holds the training ranges; `DomainRandomization.out_of_distribution()`
returns lighting/materials/backgrounds/sensor effects deliberately OUTSIDE those ranges (dim or
coloured light, very shiny or very dark materials, saturated backgrounds, strong blur and noise):
the project's stand-in for the sim-to-real gap when evaluating models trained on the default.
Every sampler draws only from the `rng` it is given, so frames are reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import cv2
import numpy as np

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim.scene import Light, Material

Range = tuple[float, float]


@dataclass(frozen=True)
class DomainRandomization:
    """Uniform ranges (low, high) for everything a scene generator randomises."""

    # lights
    light_count: tuple[int, int] = (1, 3)
    light_intensity: Range = (0.5, 1.2)
    light_ambient: Range = (0.1, 0.35)
    light_color_saturation: Range = (0.0, 0.25)  # 0 = white
    light_elevation_deg: Range = (25.0, 85.0)  # angle of the light above the horizon
    # materials
    material_value: Range = (0.15, 0.95)  # brightness of base colours
    material_saturation: Range = (0.0, 0.8)
    specular: Range = (0.0, 0.8)
    shininess: Range = (4.0, 64.0)
    texture_probability: float = 0.5
    # backgrounds / textures: procedural (no image data sets can be downloaded here)
    background_value: Range = (0.2, 0.9)
    background_saturation: Range = (0.0, 0.6)
    # intrinsics: horizontal field of view and principal point offset (fraction of the size)
    horizontal_fov_deg: Range = (55.0, 90.0)
    aspect_jitter: Range = (0.98, 1.02)  # fy/fx
    principal_point_jitter: float = 0.03
    # sensor effects
    exposure: Range = (0.75, 1.3)
    gamma: Range = (0.85, 1.15)
    noise_sigma: Range = (0.0, 4.0)  # additive Gaussian, 8-bit levels
    motion_blur_probability: float = 0.2
    motion_blur_length_px: Range = (2.0, 7.0)
    defocus_blur_probability: float = 0.15
    defocus_sigma_px: Range = (0.4, 1.2)

    @classmethod
    def out_of_distribution(cls) -> "DomainRandomization":
        """Ranges outside the training ones (see module docstring)."""
        return replace(
            cls(),
            light_intensity=(1.4, 2.2),
            light_ambient=(0.0, 0.06),
            light_color_saturation=(0.4, 0.7),
            light_elevation_deg=(5.0, 20.0),
            material_value=(0.03, 0.12),
            material_saturation=(0.85, 1.0),
            specular=(1.2, 2.5),
            shininess=(80.0, 200.0),
            texture_probability=0.9,
            background_value=(0.92, 1.0),
            background_saturation=(0.7, 1.0),
            horizontal_fov_deg=(95.0, 110.0),
            exposure=(1.4, 1.8),
            gamma=(0.6, 0.75),
            noise_sigma=(6.0, 12.0),
            motion_blur_probability=0.5,
            motion_blur_length_px=(8.0, 14.0),
            defocus_blur_probability=0.3,
            defocus_sigma_px=(1.5, 2.5),
        )

    #: The presets `preset` knows: the image tasks (dolly, drone, people) render these.
    PRESETS: ClassVar[tuple[str, ...]] = ("default", "ood")

    @classmethod
    def preset(cls, name: str) -> "DomainRandomization":
        if name == "default":
            return cls()
        if name == "ood":
            return cls.out_of_distribution()
        raise ValueError(f"unknown randomisation preset {name!r}; expected one of {cls.PRESETS}")


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def hsv_color(hue: float, saturation: float, value: float) -> np.ndarray:
    """An RGB colour in [0,1]; `hue` in OpenCV's units (0-180), saturation and value in [0,1]."""
    hsv = np.array([[[hue, saturation * 255, value * 255]]], dtype=np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def random_color(rng: np.random.Generator, value: Range, saturation: Range) -> np.ndarray:
    """An RGB colour in [0,1] from a random hue with value/saturation from the ranges."""
    hue = rng.uniform(0, 180)
    saturation_drawn = _uniform(rng, saturation)
    return hsv_color(hue, saturation_drawn, _uniform(rng, value))


def random_lights(rng: np.random.Generator, dr: DomainRandomization) -> list[Light]:
    """Directional lights from above (world z up) at random azimuths; ambient split between them."""
    n = int(rng.integers(dr.light_count[0], dr.light_count[1] + 1))
    lights = []
    for i in range(n):
        azimuth = rng.uniform(0, 2 * np.pi)
        elevation = np.radians(_uniform(rng, dr.light_elevation_deg))
        direction = -np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                               np.sin(elevation)])
        color = random_color(rng, (1.0, 1.0), dr.light_color_saturation)
        intensity = _uniform(rng, dr.light_intensity) / (1.0 + 0.5 * i)  # a key light and weaker fills
        lights.append(Light(direction, color, intensity, _uniform(rng, dr.light_ambient) / n))
    return lights


def random_texture(rng: np.random.Generator, base: np.ndarray | None = None, size: int = 64) -> np.ndarray:
    """A procedural HxWx3 uint8 texture: checker, stripes, or smooth noise, around colour `base`."""
    base = np.asarray(base if base is not None else rng.uniform(0.2, 0.9, 3), np.float32)
    kind = int(rng.integers(0, 3))
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == 0:
        cells = int(rng.choice([2, 4, 8]))
        pattern = (((xx * cells // size) + (yy * cells // size)) % 2).astype(np.float32)
    elif kind == 1:
        period = int(rng.choice([4, 8, 16]))
        pattern = ((xx + yy * int(rng.integers(0, 2))) // period % 2).astype(np.float32)
    else:
        coarse = rng.uniform(0, 1, (size // 8, size // 8)).astype(np.float32)
        pattern = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    contrast = rng.uniform(0.2, 0.7)
    other = np.clip(base * (1 - contrast) + rng.uniform(0, 1, 3) * contrast, 0, 1)
    texture = base * (1 - pattern[..., None]) + other * pattern[..., None]
    # textures multiply the material colour: keep them bright, the colour carries the hue
    texture = texture / max(float(texture.max()), 1e-3)
    return np.clip(texture * 255 + 0.5, 0, 255).astype(np.uint8)


def random_material(rng: np.random.Generator, dr: DomainRandomization, textured: bool | None = None,
                    base_color=None) -> Material:
    color = base_color if base_color is not None else random_color(rng, dr.material_value, dr.material_saturation)
    if textured is None:
        textured = rng.uniform() < dr.texture_probability
    texture = random_texture(rng) if textured else None
    return Material(color, _uniform(rng, dr.specular), _uniform(rng, dr.shininess), texture)


def random_background(rng: np.random.Generator, dr: DomainRandomization, width: int, height: int,
                      kind: str = "any") -> np.ndarray:
    """A procedural HxWx3 uint8 background.

    kind "sky": vertical gradient with soft clouds; "indoor": walls/shelves of random rectangles;
    "any": either, or a blurred noise field."""
    kinds = ("sky", "indoor", "noise") if kind == "any" else (kind,)
    kind = kinds[int(rng.integers(0, len(kinds)))]
    # Drawn at a quarter of the size and upsampled: backgrounds are out of focus anyway, and
    # full-size float arithmetic would cost more than the render itself.
    full_size = (width, height)
    width, height = max(width // 4, 8), max(height // 4, 8)
    top = random_color(rng, dr.background_value, dr.background_saturation)
    bottom = random_color(rng, dr.background_value, dr.background_saturation)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    if kind == "sky":
        clouds = cv2.resize(rng.uniform(0, 1, (6, 8)).astype(np.float32), (width, height),
                            interpolation=cv2.INTER_CUBIC)
        amount = rng.uniform(0, 0.5)
        image = image * (1 - amount * clouds[..., None]) + amount * clouds[..., None]
    elif kind == "indoor":
        for _ in range(int(rng.integers(4, 14))):
            x0, y0 = rng.integers(0, width), rng.integers(0, height)
            w, h = rng.integers(width // 20, width // 2), rng.integers(height // 20, height // 2)
            image[y0:y0 + h, x0:x0 + w] = random_color(rng, dr.background_value, dr.background_saturation)
    else:
        noise = cv2.resize(rng.uniform(0, 1, (12, 16, 3)).astype(np.float32), (width, height),
                           interpolation=cv2.INTER_LINEAR)
        image = 0.5 * image + 0.5 * noise
    small = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(small, full_size, interpolation=cv2.INTER_LINEAR)


def random_camera(rng: np.random.Generator, dr: DomainRandomization, width: int, height: int) -> CameraModel:
    """A pinhole CameraModel (no distortion) with randomised field of view and principal point."""
    fov = np.radians(_uniform(rng, dr.horizontal_fov_deg))
    fx = (width / 2) / np.tan(fov / 2)
    fy = fx * _uniform(rng, dr.aspect_jitter)
    jitter = dr.principal_point_jitter
    cx = (width - 1) / 2 + rng.uniform(-jitter, jitter) * width
    cy = (height - 1) / 2 + rng.uniform(-jitter, jitter) * height
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    return CameraModel(K, np.zeros(5), width, height)


def look_at(eye, target, up=(0.0, 0.0, 1.0), roll: float = 0.0) -> RigidTransform:
    """T_world_camera of an optical frame (z forward, x right, y down) at `eye` looking at `target`,
    with world `up` pointing up in the image, then rolled by `roll` radians about the view axis."""
    eye, target, up = (np.asarray(a, float) for a in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:  # looking straight along up: pick any sideways axis
        x = np.cross(z, [1.0, 0, 0] if abs(z[0]) < 0.9 else [0, 1.0, 0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    c, s = np.cos(roll), np.sin(roll)
    R = R @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return RigidTransform(R, eye)


def apply_sensor_effects(rgb: np.ndarray, rng: np.random.Generator, dr: DomainRandomization) -> np.ndarray:
    """Exposure, gamma, motion or defocus blur and Gaussian noise on an HxWx3 uint8 image.
    Labels (depth, masks) are untouched: they describe the scene, not the sensor."""
    exposure, gamma = _uniform(rng, dr.exposure), _uniform(rng, dr.gamma)
    levels = np.arange(256, dtype=np.float32) / 255.0
    lut = np.clip(np.clip(levels * exposure, 0, 1) ** gamma * 255 + 0.5, 0, 255).astype(np.uint8)
    image = cv2.LUT(rgb, lut)  # a table lookup: the per-pixel pow would cost ~20 ms at 640x480
    if rng.uniform() < dr.motion_blur_probability:
        length = _uniform(rng, dr.motion_blur_length_px)
        size = int(np.ceil(length)) | 1
        kernel = np.zeros((size, size), np.float32)
        kernel[size // 2, :] = 1.0
        rotation = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (size, size))
        image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
    elif rng.uniform() < dr.defocus_blur_probability:
        image = cv2.GaussianBlur(image, (0, 0), _uniform(rng, dr.defocus_sigma_px))
    sigma = _uniform(rng, dr.noise_sigma)
    if sigma > 0:
        image = cv2.add(image, gaussian_noise(rng, image.shape, sigma), dtype=cv2.CV_8U)  # saturating, rounds
    return image


def gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """float32 N(0, sigma^2) noise of `shape`, determined by one draw from `rng`.

    Drawn with OpenCV's generator seeded from `rng`: numpy's standard_normal costs ~12 ms for a
    640x480x3 frame, cv2.randn ~4 ms. The seed is set right before the fill, so the noise depends
    only on `rng` (OpenCV's default generator is per thread)."""
    seed = int(rng.integers(0, 2**31 - 1))
    noise = np.empty((int(np.prod(shape[:-1])), shape[-1]) if len(shape) > 1 else shape, np.float32)
    cv2.setRNGSeed(seed)
    cv2.randn(noise, 0.0, float(sigma))  # a 2D single-channel array: randn's scalars apply to channel 0 only
    return noise.reshape(shape)
