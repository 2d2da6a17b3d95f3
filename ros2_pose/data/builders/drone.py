"""The drone keypoint model's dataset: resized whole images with 2D keypoints, visibility and pose.

Fields: image (N,H,W,3) u8 (the camera image resized to --image-size), keypoints (N,K,2) f32 in that
image's pixels, visibility (N,K) u8 (COCO 0/1/2), keypoints_3d (N,K,3) f32 in the drone frame,
box (N,4) f32 in that image's pixels, K (N,3,3) f32 of the resized image, rotation (N,3,3) and
translation (N,3) f32 (T_camera_drone), pose_valid (N,) bool, stamp_ns, frame_index, sequence.
The tracked drone is the keypoint object with instance_id 1 (the simulator's `drone` TF frame); its
3D keypoints come from `ros2_pose.sim.drone.MODELS[class_id]` unless given explicitly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.data.builders.frames import (BuildOptions, BuildResult, DatasetBuildError, Frame, FramePlan,
                                            SplitOptions, finish_dataset)
from ros2_pose.data.dataset import DatasetWriter, FieldSpec

DEFAULT_OBJECT_FRAME = "drone"


@dataclass
class DroneOptions:
    image_size: tuple[int, int] = (256, 192)          # width, height
    instance_id: int = 1
    model_keypoints: dict[str, np.ndarray] = field(default_factory=dict)  # class_id -> (K,3)


def _model_keypoints(class_id: str, options: DroneOptions) -> np.ndarray:
    if class_id in options.model_keypoints:
        return np.asarray(options.model_keypoints[class_id], dtype=np.float64)
    from ros2_pose.sim.drone import MODELS

    if class_id not in MODELS:
        raise DatasetBuildError(f"no 3D keypoints for class {class_id!r}: known drone models {sorted(MODELS)}")
    return MODELS[class_id].keypoints()


def _tracked(frame: Frame, options: DroneOptions):
    for obj in frame.plan.light["keypoints"].objects:
        if obj.instance_id == options.instance_id:
            return obj
    return None


def build(bags: Sequence[str | Path], out: str | Path, options: BuildOptions | None = None,
          drone: DroneOptions | None = None, split: SplitOptions | None = None) -> BuildResult:
    started = time.perf_counter()
    options = options or BuildOptions(object_frame=DEFAULT_OBJECT_FRAME)
    if options.gt_source == "none":
        raise DatasetBuildError("the drone dataset needs the drones' ground-truth poses (gt_source 'tf' or 'topic')")
    drone = drone or DroneOptions()
    split = split or SplitOptions()
    width, height = drone.image_size
    plan = FramePlan.scan(bags, streams=("keypoints",), options=options)
    n_keypoints = next((len(obj.keypoints) for planned in plan.frames
                        for obj in planned.light["keypoints"].objects if obj.instance_id == drone.instance_id), None)
    if n_keypoints is None:
        raise DatasetBuildError(f"no keypoint object with instance_id {drone.instance_id} in any matched frame")
    f = FieldSpec.of
    fields = {"image": f(np.uint8, (height, width, 3)), "keypoints": f(np.float32, (n_keypoints, 2)),
              "visibility": f(np.uint8, (n_keypoints,)), "keypoints_3d": f(np.float32, (n_keypoints, 3)),
              "box": f(np.float32, (4,)), "K": f(np.float32, (3, 3)), "rotation": f(np.float32, (3, 3)),
              "translation": f(np.float32, (3,)), "pose_valid": f(np.bool_, ()), "stamp_ns": f(np.int64, ()),
              "frame_index": f(np.int32, ()), "sequence": f(np.int32, ())}
    writer = DatasetWriter(out, "drone", fields, count=len(plan.frames))
    for frame in plan.decoded_frames():
        h, w = frame.image.shape[:2]
        sx, sy = width / w, height / h
        def to_resized(xy):
            # continuous pixel coordinates (centres at integers, image edge at -0.5) scale about -0.5
            return (np.asarray(xy, np.float64) + 0.5) * [sx, sy] - 0.5
        T = frame.plan.T_camera_object
        row = {"image": cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_AREA),
               "K": np.asarray(frame.camera.resized(width, height).K, np.float32),
               "rotation": T[:3, :3].astype(np.float32), "translation": T[:3, 3].astype(np.float32),
               "stamp_ns": frame.stamp_ns, "frame_index": frame.plan.ordinal, "sequence": frame.plan.sequence}
        obj = _tracked(frame, drone)
        if obj is not None and len(obj.keypoints) == n_keypoints:
            xy = np.array([[k.x, k.y] for k in obj.keypoints])
            row.update(keypoints=to_resized(xy).astype(np.float32),
                       visibility=np.array([k.visibility for k in obj.keypoints], np.uint8),
                       keypoints_3d=_model_keypoints(obj.class_id, drone).astype(np.float32),
                       box=to_resized([[obj.box.x_min, obj.box.y_min], [obj.box.x_max, obj.box.y_max]])
                       .reshape(4).astype(np.float32),
                       pose_valid=bool(np.all(np.isfinite(T)) and T[2, 3] > 0))
        writer.write(frame.plan.ordinal, row)
    return finish_dataset(writer, plan, split, {"task": {"image_size": list(drone.image_size),
                                                         "instance_id": drone.instance_id}},
                          [p.ordinal for p in plan.frames], [p.sequence for p in plan.frames], started)


def build_from_args(args, options: BuildOptions, split: SplitOptions) -> BuildResult:
    """`ros2-pose dataset build drone ...`"""
    return build(args.bags, args.out, options, DroneOptions(image_size=tuple(args.image_size or (256, 192))), split)
