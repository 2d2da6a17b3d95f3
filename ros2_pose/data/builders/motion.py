"""The ego-motion model's dataset: frame pairs/triplets at chosen frame distances, images stored once.

Shared fields (one row per frame): images (F,H,W,3) u8 resized to --image-size (default 128x96),
depth (F,H,W) f32 metres (nearest-neighbour resized, 0 where unknown), frame_K (F,3,3) f32 of the
resized image, camera_pose (F,4,4) f32 T_world_optical from TF, frame_stamp_ns (F,) i64.

Ground truth is optional, because self-supervised training needs only images and intrinsics: depth
is used where the bags have it (all zeros = unknown otherwise), and with `gt_source="none"`
(`--gt-source none`) no TF is read and the poses are NaN. The manifest's parameters.task says which
the dataset has (`depth`, `ground_truth_pose`), and `train depth` uses what is there.
Per sample: frame_ids (N,T) i32 into the shared fields, relative_poses (N,T-1,4,4) f32 = T_c0_ck
(frame k's camera pose in frame 0's optical frame), distance (N,) i32 frames between neighbours,
sequence (N,) i32. ArrayDataset resolves `frames` = images[frame_ids], `depths`, `K`. A sample never
spans a sequence boundary (bag, looped recording, time jump).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ros2_pose.data.builders.frames import (BuildOptions, BuildResult, DatasetBuildError, FramePlan,
                                            SplitOptions, finish_dataset)
from ros2_pose.data.dataset import DatasetWriter, FieldSpec
from ros2_pose.data.sync import invert_transform

DEFAULT_OBJECT_FRAME = "camera_link"  # motion needs no object: ground truth is the camera's own pose


@dataclass
class MotionOptions:
    image_size: tuple[int, int] = (128, 96)    # width, height
    frames_per_sample: int = 2                 # 2 = pairs, 3 = triplets
    distances: tuple[int, ...] = (1,)          # frame distance(s) between neighbours; several = a mix


def plan_samples(sequences: np.ndarray, frames_per_sample: int, distances: Sequence[int]) -> list[tuple[list[int], int]]:
    """(frame ids, distance) of every window that stays inside one sequence."""
    samples = []
    n = len(sequences)
    for d in distances:
        if d < 1:
            raise ValueError(f"frame distances must be >= 1, got {d}")
        span = d * (frames_per_sample - 1)
        for start in range(n - span):
            ids = [start + k * d for k in range(frames_per_sample)]
            if sequences[ids[0]] == sequences[ids[-1]]:
                samples.append((ids, d))
    return samples


def build(bags: Sequence[str | Path], out: str | Path, options: BuildOptions | None = None,
          motion: MotionOptions | None = None, split: SplitOptions | None = None) -> BuildResult:
    started = time.perf_counter()
    options = options or BuildOptions()
    if options.gt_source not in ("tf", "none"):
        raise DatasetBuildError(f"motion ground truth is the camera's pose on TF (gt_source 'tf') or nothing "
                                f"('none': images for self-supervised training only), not {options.gt_source!r}")
    options.gt_target = "camera"
    has_pose = options.gt_source == "tf"
    motion = motion or MotionOptions()
    split = split or SplitOptions()
    if motion.frames_per_sample < 2:
        raise ValueError(f"frames_per_sample must be >= 2, got {motion.frames_per_sample}")
    width, height = motion.image_size
    plan = FramePlan.scan(bags, streams=(), options=options, optional=("depth",))
    has_depth = any("depth" in frame.stamps for frame in plan.frames)
    sequences = np.array([f.sequence for f in plan.frames])
    samples = plan_samples(sequences, motion.frames_per_sample, motion.distances)
    if not samples:
        raise DatasetBuildError(f"{len(plan.frames)} frames in {len(set(sequences.tolist()))} sequence(s) give no "
                                f"window of {motion.frames_per_sample} frames at distances {list(motion.distances)}")
    n_frames, T = len(plan.frames), motion.frames_per_sample
    f = FieldSpec.of
    fields = {"images": f(np.uint8, (height, width, 3), rows=n_frames), "depth": f(np.float32, (height, width), rows=n_frames),
              "frame_K": f(np.float32, (3, 3), rows=n_frames), "camera_pose": f(np.float32, (4, 4), rows=n_frames),
              "frame_stamp_ns": f(np.int64, (), rows=n_frames),
              "frame_ids": f(np.int32, (T,)), "relative_poses": f(np.float32, (T - 1, 4, 4)),
              "distance": f(np.int32, ()), "sequence": f(np.int32, ())}
    references = {"frames": {"source": "images", "index": "frame_ids"},
                  "depths": {"source": "depth", "index": "frame_ids"},
                  "K": {"source": "frame_K", "index": "frame_ids"}}
    writer = DatasetWriter(out, "motion", fields, count=len(samples), references=references)
    for frame in plan.decoded_frames():
        i = frame.plan.ordinal
        writer.write_shared("images", i, cv2.resize(frame.image, (width, height), interpolation=cv2.INTER_AREA))
        if frame.depth is None:  # no depth for this frame: 0 = unknown
            writer.write_shared("depth", i, np.zeros((height, width), np.float32))
        else:
            depth = np.nan_to_num(np.asarray(frame.depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            writer.write_shared("depth", i, cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST))
        writer.write_shared("frame_K", i, np.asarray(frame.camera.resized(width, height).K, np.float32))
        writer.write_shared("camera_pose", i, frame.plan.T_camera_object.astype(np.float32) if has_pose
                            else np.full((4, 4), np.nan, np.float32))
        writer.write_shared("frame_stamp_ns", i, frame.stamp_ns)
    poses = [p.T_camera_object for p in plan.frames]
    unknown_motion = np.full((T - 1, 4, 4), np.nan, np.float32)
    for s, (ids, d) in enumerate(samples):
        relative = (np.stack([invert_transform(poses[ids[0]]) @ poses[k] for k in ids[1:]]).astype(np.float32)
                    if has_pose else unknown_motion)
        writer.write(s, {"frame_ids": np.array(ids, np.int32), "distance": d, "sequence": sequences[ids[0]],
                         "relative_poses": relative})
    # a guard of the largest window keeps any frame from being used by samples of two splits
    split = SplitOptions(split.fractions, split.seed, max(split.guard, max(motion.distances) * (T - 1)), split.block_size)
    return finish_dataset(writer, plan, split, {"task": {"image_size": list(motion.image_size),
                                                         "frames_per_sample": T, "distances": list(motion.distances),
                                                         "depth": has_depth, "ground_truth_pose": has_pose}},
                          [ids[0] for ids, _ in samples], [sequences[ids[0]] for ids, _ in samples], started)


def build_from_args(args, options: BuildOptions, split: SplitOptions) -> BuildResult:
    """`ros2-pose dataset build motion ...`"""
    return build(args.bags, args.out, options,
                 MotionOptions(tuple(args.image_size or (128, 96)), args.frames_per_sample, tuple(args.distances)), split)
