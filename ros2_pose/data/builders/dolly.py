"""The dolly pose model's dataset: whole-image detector input plus ground-truth crops with pose.

Field names are the contract with the dolly model (models/dolly_pose.py):
  det_image (N,160,160,3) u8   whole image letterboxed (RoiCrop of the full-image box, black padding)
  det_box (N,4) f32             the dolly's visible box in det_image pixels, normalised to [0, 1]
  det_valid (N,) bool           the dolly is visible in this frame
  crop (N,128,128,3) u8         RoiCrop of the (optionally jittered) ground-truth box
  box_norm (N,4) f32            RoiCrop.normalized_box of that box (image size -> [0, 1])
  crop_matrix (N,2,3) f32       image pixel -> crop pixel affine
  K (N,3,3) f32                 camera intrinsics of the full image
  rotation (N,3,3) f32, translation (N,3) f32   T_camera_dolly (optical frame)
  mask (N,64,64) u8             dolly frame (part 0, no wheels) in crop coordinates, 0/1
  distance (N,) f32             |translation| in metres
  visible_fraction (N,) f32     visible box area / area of the whole dolly's projected box, unclipped
                                (1 when nothing hides or truncates it; see `full_projected_box`)
  pose_valid (N,) bool          crop, mask and pose fields are meaningful (zero otherwise)
  stamp_ns (N,) i64, frame_index (N,) i32, sequence (N,) i32
A frame yields `crops_per_frame` rows (each with its own box jitter).

Masks and the visible box come from /camera/segmentation when the bag has it (our simulator's bags).
A robot's bag has no segmentation, only a ground-truth pose of the dolly (TF from motion capture or
fiducials, or a pose topic): then `masks="projected"` (what "auto" falls back to) renders the
dolly model at that pose with the frame's intrinsics, alone. Such masks and boxes know self-occlusion
(wheels in front of the frame) and truncation at the image border, not occlusion by other objects; the
manifest counts which source each row used (`mask_sources`). The images are assumed rectified (the
renderer is a pinhole camera, without the CameraInfo's distortion).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.data.builders.frames import (BuildOptions, BuildResult, Frame, FramePlan, SplitOptions,
                                            finish_dataset)
from ros2_pose.data.dataset import DatasetWriter, FieldSpec
from ros2_pose.geometry.crop import RoiCrop

MASK_SOURCES = ("auto", "segmentation", "projected")

DET_SIZE, CROP_SIZE, MASK_SIZE = 160, 128, 64
FRAME_PART, WHEEL_PART = 0, 1
PARTS_PER_OBJECT = 256


@dataclass
class DollyOptions:
    crops_per_frame: int = 1
    box_jitter: float = 0.0        # max shift of the box centre and change of its size, x box size
    object_index: int | None = None  # dolly's object index in /camera/segmentation (None: detections' instance_id, else 1)
    seed: int = 0
    masks: str = "auto"            # one of MASK_SOURCES (see the module docstring)


def fields() -> dict[str, FieldSpec]:
    f = FieldSpec.of
    return {
        "det_image": f(np.uint8, (DET_SIZE, DET_SIZE, 3)), "det_box": f(np.float32, (4,)),
        "det_valid": f(np.bool_, ()), "crop": f(np.uint8, (CROP_SIZE, CROP_SIZE, 3)),
        "box_norm": f(np.float32, (4,)), "crop_matrix": f(np.float32, (2, 3)), "K": f(np.float32, (3, 3)),
        "rotation": f(np.float32, (3, 3)), "translation": f(np.float32, (3,)),
        "mask": f(np.uint8, (MASK_SIZE, MASK_SIZE)), "distance": f(np.float32, ()),
        "visible_fraction": f(np.float32, ()), "pose_valid": f(np.bool_, ()),
        "stamp_ns": f(np.int64, ()), "frame_index": f(np.int32, ()), "sequence": f(np.int32, ()),
    }


def full_projected_box(camera, T_camera_dolly: np.ndarray) -> np.ndarray | None:
    """Unclipped image box of the whole dolly (the product model's bounding-box corners, see
    ros2_pose.sim.dolly.DollyGeometry), or None when a corner is behind the camera. The
    ground-truth detections of the sim are *visible* boxes, so they cannot tell how much is hidden.
    """
    from ros2_pose.sim.dolly import DollyGeometry

    corners = DollyGeometry().corners()
    points = corners @ T_camera_dolly[:3, :3].T + T_camera_dolly[:3, 3]
    if np.any(points[:, 2] <= 0):
        return None
    pixels = camera.project(points)
    return np.concatenate([pixels.min(axis=0), pixels.max(axis=0)])


class ProjectedSegmentation:
    """Segmentation of the dolly model alone at a known pose, in the /camera/segmentation encoding
    (object 1: 256 = frame, 257 = wheels). One renderer per image size, made on first use."""

    def __init__(self):
        self._renderers = {}
        self._scene = None

    def __call__(self, camera, T_camera_dolly: np.ndarray, width: int, height: int) -> np.ndarray:
        from ros2_pose.geometry.transforms import RigidTransform
        from ros2_pose.sim.dolly import DollyGeometry, dolly_meshes
        from ros2_pose.sim.renderer import Renderer
        from ros2_pose.sim.scene import Scene, SceneObject, segment_id

        if self._scene is None:
            self._scene = Scene([SceneObject(f"dolly/{part}", mesh, RigidTransform.identity(), segment_id=segment_id(1, part))
                                 for part, mesh in dolly_meshes(DollyGeometry()).items()])
        renderer = self._renderers.get((width, height))
        if renderer is None:
            renderer = self._renderers[(width, height)] = Renderer(width, height)
        T_dolly_camera = RigidTransform.from_matrix(np.linalg.inv(T_camera_dolly))
        return renderer.render(self._scene, camera, T_dolly_camera).segmentation

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Pixel-edge box (x_min, y_min, x_max, y_max) of a boolean mask, None if empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return np.array([xs.min() - 0.5, ys.min() - 0.5, xs.max() + 0.5, ys.max() + 0.5])


def jitter_box(box: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Shift the centre and scale the sides by up to `amount` x the box's size (uniform)."""
    if amount <= 0:
        return box
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2 + rng.uniform(-amount, amount) * w, (box[1] + box[3]) / 2 + rng.uniform(-amount, amount) * h
    w, h = w * (1 + rng.uniform(-amount, amount)), h * (1 + rng.uniform(-amount, amount))
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _detection_of(frame: Frame, class_id: str):
    detections = frame.plan.light.get("detections")
    if detections is None:
        return None
    for d in detections.detections:
        if d.class_id == class_id:
            return d
    return None


def mask_source(frame: Frame, options: DollyOptions) -> str:
    """Where a frame's masks and visible box come from: "segmentation" or "projected" (from the pose)."""
    return "projected" if options.masks == "projected" or frame.segmentation is None else "segmentation"


def frame_samples(frame: Frame, options: DollyOptions, class_id: str, rng: np.random.Generator,
                  project: ProjectedSegmentation | None = None) -> list[dict]:
    """The `crops_per_frame` rows of one frame. `project` renders the segmentation from the pose
    when the frame has none (or masks are "projected")."""
    image, seg = frame.image, frame.segmentation
    height, width = image.shape[:2]
    T = frame.plan.T_camera_object
    pose_ok = bool(T is not None and np.all(np.isfinite(T)) and T[2, 3] > 0)
    detection = _detection_of(frame, class_id)
    object_index = options.object_index
    if mask_source(frame, options) == "projected":
        if project is None:
            raise ValueError("frame has no segmentation and no projector was given")
        seg = project(frame.camera, T, width, height) if pose_ok else np.zeros((height, width), np.uint16)
        object_index = 1
    elif object_index is None:
        object_index = detection.instance_id if detection is not None and detection.instance_id >= 1 else 1
    objects = seg // PARTS_PER_OBJECT
    visible = objects == object_index
    visible_box = mask_box(visible)
    if detection is not None:
        b = detection.box
        gt_box = np.array([b.x_min, b.y_min, b.x_max, b.y_max], dtype=np.float64)
    else:
        gt_box = visible_box
    letterbox = RoiCrop.whole_image(width, height, DET_SIZE)
    det = {"det_image": letterbox.apply(image), "det_valid": visible_box is not None,
           "det_box": np.zeros(4, np.float32)}
    if visible_box is not None:
        corners = letterbox.image_to_crop(visible_box.reshape(2, 2))
        det["det_box"] = np.clip((corners.reshape(4) + 0.5) / DET_SIZE, 0.0, 1.0).astype(np.float32)
    common = {"K": frame.K.astype(np.float32), "stamp_ns": frame.stamp_ns,
              "frame_index": frame.plan.ordinal, "sequence": frame.plan.sequence,
              "rotation": T[:3, :3].astype(np.float32), "translation": T[:3, 3].astype(np.float32),
              "distance": np.float32(np.linalg.norm(T[:3, 3]))}
    rows = []
    for _ in range(options.crops_per_frame):
        row = {**det, **common}
        valid = visible_box is not None and gt_box is not None and pose_ok and gt_box[2] > gt_box[0] and gt_box[3] > gt_box[1]
        row["pose_valid"] = valid
        if valid:
            box = jitter_box(gt_box, options.box_jitter, rng)
            crop = RoiCrop.from_box(box, size=CROP_SIZE)
            frame_mask = (seg == object_index * PARTS_PER_OBJECT + FRAME_PART).astype(np.uint8)
            row.update(crop=crop.apply(image), box_norm=crop.normalized_box(width, height),
                       crop_matrix=crop.matrix.astype(np.float32),
                       mask=RoiCrop(crop.box, MASK_SIZE).apply(frame_mask, interpolation=cv2.INTER_NEAREST))
            full_box = full_projected_box(frame.camera, T)
            full_area = (full_box[2] - full_box[0]) * (full_box[3] - full_box[1]) if full_box is not None else 0.0
            vis_area = (visible_box[2] - visible_box[0]) * (visible_box[3] - visible_box[1])
            row["visible_fraction"] = np.float32(np.clip(vis_area / full_area, 0.0, 1.0) if full_area > 0 else 1.0)
        rows.append(row)
    return rows


def build(bags: Sequence[str | Path], out: str | Path, options: BuildOptions | None = None,
          dolly: DollyOptions | None = None, split: SplitOptions | None = None) -> BuildResult:
    started = time.perf_counter()
    options = options or BuildOptions(object_frame="dolly")
    dolly = dolly or DollyOptions()
    split = split or SplitOptions()
    if dolly.crops_per_frame < 1:
        raise ValueError(f"crops_per_frame must be >= 1, got {dolly.crops_per_frame}")
    if not 0 <= dolly.box_jitter < 0.5:
        raise ValueError(f"box_jitter must be in [0, 0.5), got {dolly.box_jitter}")
    if dolly.masks not in MASK_SOURCES:
        raise ValueError(f"masks must be one of {MASK_SOURCES}, got {dolly.masks!r}")
    if options.gt_source == "none":
        raise ValueError("the dolly dataset needs the dolly's ground-truth pose (gt_source 'tf' or 'topic')")
    required = ("segmentation",) if dolly.masks == "segmentation" else ()
    optional = ("detections",) + (("segmentation",) if dolly.masks == "auto" else ())
    plan = FramePlan.scan(bags, streams=required, options=options, optional=optional)
    writer = DatasetWriter(out, "dolly", fields(), count=len(plan.frames) * dolly.crops_per_frame)
    rng = np.random.default_rng(dolly.seed)
    groups, sequences = [], []
    project = ProjectedSegmentation()
    mask_sources = {"segmentation": 0, "projected": 0}
    try:
        for frame in plan.decoded_frames():
            mask_sources[mask_source(frame, dolly)] += dolly.crops_per_frame
            for j, row in enumerate(frame_samples(frame, dolly, options.object_frame, rng, project)):
                writer.write(frame.plan.ordinal * dolly.crops_per_frame + j, row)
    finally:
        project.close()
    for f in plan.frames:
        groups += [f.ordinal] * dolly.crops_per_frame
        sequences += [f.sequence] * dolly.crops_per_frame
    return finish_dataset(writer, plan, split, {"task": vars(dolly)}, groups, sequences, started,
                          extra={"mask_sources": mask_sources})


DEFAULT_OBJECT_FRAME = "dolly"


def build_from_args(args, options: BuildOptions, split: SplitOptions) -> BuildResult:
    """`ros2-pose dataset build dolly ...`"""
    return build(args.bags, args.out, options,
                 DollyOptions(crops_per_frame=args.crops_per_frame, box_jitter=args.box_jitter,
                              object_index=args.object_index, seed=args.seed, masks=args.masks), split)
