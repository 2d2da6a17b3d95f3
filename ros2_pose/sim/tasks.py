"""The synthetic-data tasks `ros2-pose sim <task>` knows, and the frame each one produces.

A task is a class with `__init__(width=640, height=480, preset="default", backend="auto")`, a
`presets` tuple (the preset names it renders) and
`generate(rng: np.random.Generator, index: int) -> SimFrame`. `generate` must draw all its
randomness from `rng`, so a frame depends only on (seed, index) and not on which worker made it.
Tasks create their `Renderer` lazily on the first `generate`, inside the process that renders.

Registry entries are "module:Class" strings imported on use, so a task whose module is missing or
broken fails alone with a message saying which one (`TaskUnavailableError`).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from ros2_pose.data.bag_messages import ObjectKeypointsSpec, PersonSpec
from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform

TASKS: dict[str, str] = {
    "dolly": "ros2_pose.sim.dolly:DollyTask",
    "drone": "ros2_pose.sim.drone:DroneTask",
    "people": "ros2_pose.sim.people:PeopleTask",
    "motion": "ros2_pose.sim.motion:MotionTask",
}


class TaskUnavailableError(RuntimeError):
    """A registered task's module or class cannot be imported."""


class SimDetection(NamedTuple):
    """A ground-truth 2D box: class name (e.g. "dolly"), instance id, (x_min, y_min, x_max, y_max)
    pixels of the visible part, score (1.0 for ground truth)."""

    class_id: str
    instance_id: int
    box: tuple[float, float, float, float]
    score: float = 1.0


@dataclass
class SimFrame:
    """One rendered frame and its ground truth.

    rgb HxWx3 uint8, depth HxW float32 metres (0 = background), segmentation HxW uint16
    (object_index*256 + part_index). `objects` maps TF frame names to T_world_object;
    `tracked_pose` is T_camera_object of the task's tracked object (`tracked_frame`), or None.
    `keypoints` (drones) and `skeletons` (people; with `skeleton_joint_names`/`skeleton_limbs`) use
    the ROS-free specs of ros2_pose.data.bag_messages; a task that has them sets a list on every
    frame (empty when nothing is in view), so its bag has the topic on every frame. `extra` holds task-specific ground truth
    (arrays or numbers), e.g. the dolly's visibility fraction.
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    camera: CameraModel
    T_world_camera: RigidTransform
    objects: dict[str, RigidTransform] = field(default_factory=dict)
    tracked_pose: RigidTransform | None = None
    tracked_frame: str | None = None
    detections: list[SimDetection] = field(default_factory=list)
    keypoints: list[ObjectKeypointsSpec] | None = None  # None: the task has no keypoints topic
    skeletons: list[PersonSpec] | None = None  # None: the task has no skeletons topic
    skeleton_joint_names: list[str] = field(default_factory=list)
    skeleton_limbs: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SimTask(Protocol):
    name: str
    presets: tuple[str, ...]
    width: int
    height: int

    def generate(self, rng: np.random.Generator, index: int) -> SimFrame: ...


def task_class(name: str):
    """The class registered for task `name` (imported now)."""
    if name not in TASKS:
        raise KeyError(f"unknown sim task {name!r}; known tasks: {sorted(TASKS)}")
    module_name, _, class_name = TASKS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # a dependency of the module is missing: show the real error
        raise TaskUnavailableError(
            f"sim task {name!r} needs module {module_name}, which does not exist in this checkout") from exc
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise TaskUnavailableError(f"sim task {name!r}: {module_name} defines no {class_name}") from exc


def check_preset(name: str, preset: str) -> None:
    """ValueError unless task `name` renders `preset` (its class's `presets`); callers check before
    they create a bag or start workers, so a wrong preset leaves nothing behind."""
    presets = tuple(task_class(name).presets)
    if preset not in presets:
        raise ValueError(f"sim task {name!r} renders the presets {', '.join(presets)}; not {preset!r}")


def make_task(name: str, width: int = 640, height: int = 480, preset: str = "default",
              backend: str = "auto", sequence_length: int | None = None) -> SimTask:
    """Task `name`'s renderer; `sequence_length` (motion only): frames per room and trajectory
    (default MotionConfig's)."""
    check_preset(name, preset)
    if sequence_length is None:
        return task_class(name)(width=width, height=height, preset=preset, backend=backend)
    if name != "motion":
        raise ValueError(f"sequence_length is a motion option; sim task {name!r} has no sequences")
    return task_class(name)(width=width, height=height, preset=preset, backend=backend,
                            sequence_length=int(sequence_length))


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for frame `index` of a run seeded with `seed`: independent streams per frame,
    so output does not depend on worker count or order."""
    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),)))


def box_from_mask(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x_min, y_min, x_max, y_max) of a boolean mask's pixels (pixel centres), or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])


def projected_box(camera: CameraModel, points_camera: np.ndarray, clip: bool = True):
    """Box of 3D points (camera frame) projected into the image, or None if none is in front.
    With clip=True the box is limited to the image."""
    pixels = camera.project(points_camera)
    pixels = pixels[np.all(np.isfinite(pixels), axis=1)]
    if len(pixels) == 0:
        return None
    x0, y0 = pixels.min(axis=0)
    x1, y1 = pixels.max(axis=0)
    if clip:
        x0, x1 = np.clip([x0, x1], 0, camera.width - 1)
        y0, y1 = np.clip([y0, y1], 0, camera.height - 1)
    return float(x0), float(y0), float(x1), float(y1)


# -- generating many frames -------------------------------------------------------------------
# Worker processes hand the per-pixel arrays (2.7 MB a frame at 640x480) to the parent through a
# ring of shared-memory slots; only the small rest of the SimFrame is pickled. Sending whole frames
# through Pool's pipe cost the parent ~14 ms and each worker ~19 ms of CPU per 640x480 frame, more
# than rendering it.
_DENSE_FIELDS = (("rgb", np.uint8, 3), ("depth", np.float32, 0), ("segmentation", np.uint16, 0))
_WORKER: dict[str, Any] = {}


def _dense_layout(width: int, height: int) -> tuple[list[tuple[str, np.dtype, tuple, int]], int]:
    """[(field, dtype, shape, byte offset)] of one slot and the slot size in bytes."""
    layout, offset = [], 0
    for name, dtype, channels in _DENSE_FIELDS:
        shape = (height, width, channels) if channels else (height, width)
        layout.append((name, np.dtype(dtype), shape, offset))
        offset += int(np.prod(shape)) * np.dtype(dtype).itemsize
        offset = -(-offset // 64) * 64  # keep every array cache-line aligned
    return layout, offset


def _slot_arrays(buffer, slot: int, layout, slot_bytes: int) -> dict[str, np.ndarray]:
    return {name: np.ndarray(shape, dtype, buffer=buffer, offset=slot * slot_bytes + offset)
            for name, dtype, shape, offset in layout}


def _init_worker(name: str, options: dict, shm_name: str, width: int, height: int) -> None:
    import os
    from multiprocessing import shared_memory

    import cv2

    # llvmpipe and OpenCV would each start one thread per core in every worker; the workers are the
    # parallelism.
    os.environ["LP_NUM_THREADS"] = "1"
    cv2.setNumThreads(1)
    _WORKER["task"] = make_task(name, **options)
    # The parent owns and unlinks the block. Attaching registers it again with the resource tracker,
    # which spawned workers share with the parent (a set of names), so it is still unlinked once.
    _WORKER["shm"] = shared_memory.SharedMemory(name=shm_name)
    _WORKER["layout"] = _dense_layout(width, height)


def _generate_in_worker(job: tuple[int, int, int]) -> tuple[int, SimFrame, list[str]]:
    """Render frame `index` and put its dense arrays into shared-memory slot `slot`; returns the
    frame without those arrays and the names of the fields that went through the slot (a field of
    another shape or dtype than the layout stays in the pickled frame)."""
    seed, index, slot = job
    frame = _WORKER["task"].generate(frame_rng(seed, index), index)
    layout, slot_bytes = _WORKER["layout"]
    shared = []
    for name, target in _slot_arrays(_WORKER["shm"].buf, slot, layout, slot_bytes).items():
        value = getattr(frame, name)
        if isinstance(value, np.ndarray) and value.shape == target.shape and value.dtype == target.dtype:
            target[...] = value
            setattr(frame, name, None)
            shared.append(name)
    return index, frame, shared


def iter_frames(name: str, count: int, seed: int = 0, workers: int = 1, start: int = 0, **options):
    """Yield (index, SimFrame) for indices start..start+count-1, in order. With workers > 1 the
    frames are rendered by that many processes (each with its own GL context); frame `i` is the
    same whatever the worker count, because it depends only on frame_rng(seed, i). At most
    3 * workers frames are in flight, so a slow consumer does not pile frames up in memory."""
    if count < 0 or workers < 1:
        raise ValueError(f"need count >= 0 and workers >= 1, got count={count}, workers={workers}")
    check_preset(name, options.get("preset", "default"))  # in the parent: a missing task or preset, clearly
    indices = range(start, start + count)
    if workers == 1:
        task = make_task(name, **options)
        for index in indices:
            yield index, task.generate(frame_rng(seed, index), index)
        return
    import multiprocessing
    from collections import deque
    from multiprocessing import shared_memory

    width, height = int(options.get("width", 640)), int(options.get("height", 480))
    layout, slot_bytes = _dense_layout(width, height)
    slots = 3 * workers
    shm = shared_memory.SharedMemory(create=True, size=slots * slot_bytes)
    try:
        # spawn: a forked child would inherit the parent's GL/thread state
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker,
                      initargs=(name, options, shm.name, width, height)) as pool:
            pending: deque = deque()
            jobs = iter(indices)
            for index in jobs:  # fill every slot
                pending.append(pool.apply_async(_generate_in_worker, ((seed, index, len(pending)),)))
                if len(pending) == slots:
                    break
            next_slot = 0
            while pending:
                index, frame, shared = pending.popleft().get()
                for field_name, array in _slot_arrays(shm.buf, next_slot, layout, slot_bytes).items():
                    if field_name in shared:
                        setattr(frame, field_name, array.copy())  # the slot is reused next
                del array
                following = next(jobs, None)
                if following is not None:  # the slot just read is free again
                    pending.append(pool.apply_async(_generate_in_worker, ((seed, following, next_slot),)))
                next_slot = (next_slot + 1) % slots
                yield index, frame
    finally:
        shm.close()
        shm.unlink()
