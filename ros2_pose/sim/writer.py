"""SimFrames -> a rosbag2 bag with the topics of DESIGN.md ("Bags written by `ros2-pose sim`").

Stamps are `START_NS + index * 1e9 / fps`, so the same frames give the same bag bytes-for-bytes in
its messages whatever the wall clock says.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ros2_pose.data import bag_messages as bm
from ros2_pose.data.bags import BagWriter
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim.tasks import SimFrame

START_NS = 1_700_000_000 * bm.NS_PER_S
WORLD_FRAME = "world"
CAMERA_LINK = "camera_link"
OPTICAL_FRAME = "camera_optical_frame"
# REP 103: camera_link is x forward, y left, z up; the optical frame is z forward, x right, y down.
T_LINK_OPTICAL = RigidTransform(np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]]), np.zeros(3))

TOPIC_IMAGE = "/camera/image_raw"
TOPIC_CAMERA_INFO = "/camera/camera_info"
TOPIC_DEPTH = "/camera/depth/image"
TOPIC_SEGMENTATION = "/camera/segmentation"
TOPIC_TF = "/tf"
TOPIC_TF_STATIC = "/tf_static"
TOPIC_POSE = "/ground_truth/pose"
TOPIC_DETECTIONS = "/ground_truth/detections"
TOPIC_KEYPOINTS = "/ground_truth/keypoints"
TOPIC_SKELETONS = "/ground_truth/skeletons"


# Frames of different camera trajectories (SimFrame.extra["sequence"]) are this far apart in time,
# so every consumer sees a time jump where the camera teleports (as at the loop of a real bag) and
# never pairs frames across it.
SEQUENCE_GAP_S = 10.0


def frame_stamp_ns(index: int, fps: float, sequence: int = 0) -> int:
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return START_NS + int(round(index * 1e9 / fps)) + int(sequence * SEQUENCE_GAP_S * 1e9)


class SimBagWriter:
    """Writes SimFrames in index order into a bag: `with SimBagWriter(path) as w: w.write(i, frame)`."""

    def __init__(self, path: str | Path, storage: str = "mcap", fps: float = 30.0, overwrite: bool = False,
                 compress: bool = False, dense: bool = True):
        self.bag = BagWriter(path, storage=storage, overwrite=overwrite, compress=compress)
        # dense=False leaves out the per-pixel ground truth (depth, segmentation): a bag for
        # replaying through nodes and evaluating poses, a third of the size.
        self.dense = dense
        self.fps = fps
        self._static_written = False

    def __enter__(self) -> "SimBagWriter":
        self.bag.open()
        return self

    def __exit__(self, *exc) -> None:
        self.bag.close()

    def write(self, index: int, frame: SimFrame) -> None:
        stamp = frame_stamp_ns(index, self.fps, int(frame.extra.get("sequence", 0)) if frame.extra else 0)
        bag = self.bag
        if not self._static_written:
            bag.write(TOPIC_TF_STATIC, bm.tf_message(
                [bm.transform_stamped_msg(T_LINK_OPTICAL, CAMERA_LINK, OPTICAL_FRAME, stamp)]), stamp)
            self._static_written = True
        cam = frame.camera
        # camera_info before its image: a replay then delivers the intrinsics of a frame before the
        # frame itself (every simulated frame has its own camera).
        bag.write(TOPIC_CAMERA_INFO, bm.camera_info_msg(cam.K, cam.D, cam.width, cam.height, stamp, OPTICAL_FRAME),
                  stamp)
        bag.write(TOPIC_IMAGE, bm.image_msg(frame.rgb, "rgb8", stamp, OPTICAL_FRAME), stamp)
        if self.dense:
            bag.write(TOPIC_DEPTH, bm.image_msg(frame.depth.astype(np.float32), "32FC1", stamp, OPTICAL_FRAME), stamp)
            bag.write(TOPIC_SEGMENTATION, bm.image_msg(frame.segmentation.astype(np.uint16), "16UC1", stamp,
                                                       OPTICAL_FRAME), stamp)
        T_world_link = frame.T_world_camera @ T_LINK_OPTICAL.inverse()
        transforms = [bm.transform_stamped_msg(T_world_link, WORLD_FRAME, CAMERA_LINK, stamp)]
        transforms += [bm.transform_stamped_msg(T, WORLD_FRAME, name, stamp) for name, T in frame.objects.items()]
        bag.write(TOPIC_TF, bm.tf_message(transforms), stamp)
        if frame.tracked_pose is not None:
            bag.write(TOPIC_POSE, bm.pose_stamped_msg(frame.tracked_pose, stamp, OPTICAL_FRAME), stamp)
        dets = frame.detections
        bag.write(TOPIC_DETECTIONS, bm.detection_array_msg(
            [d.box for d in dets], [d.class_id for d in dets], stamp, OPTICAL_FRAME,
            scores=[d.score for d in dets], instance_ids=[d.instance_id for d in dets]), stamp)
        if frame.keypoints is not None:
            bag.write(TOPIC_KEYPOINTS, bm.object_keypoints_array_msg(frame.keypoints, stamp, OPTICAL_FRAME), stamp)
        if frame.skeletons is not None:
            limbs = frame.skeleton_limbs if frame.skeleton_limbs is not None else np.zeros((0, 2), np.int64)
            bag.write(TOPIC_SKELETONS, bm.skeleton_array_msg(frame.skeletons, frame.skeleton_joint_names, limbs,
                                                             stamp, OPTICAL_FRAME), stamp)


def render_bag(task: str, frames: int, out: str | Path, seed: int = 0, workers: int = 1, storage: str = "mcap",
               fps: float = 30.0, overwrite: bool = False, progress: bool = True, compress: bool = False,
               dense: bool = True, **options) -> Path:
    """Render `frames` frames of `task` (deterministic in `seed`) into a bag at `out`.

    `options` go to the task (width, height, preset, backend). Used by `ros2-pose sim` and by the
    evaluation commands that render their standard held-out sets on first use.
    """
    from tqdm import tqdm

    from ros2_pose.sim.tasks import check_preset, iter_frames

    # before creating the bag: a missing task or a preset it does not render leaves nothing behind
    check_preset(task, options.get("preset", "default"))
    with SimBagWriter(out, storage=storage, fps=fps, overwrite=overwrite, compress=compress, dense=dense) as writer:
        generated = iter_frames(task, frames, seed=seed, workers=workers, **options)
        for index, frame in tqdm(generated, total=frames, desc=f"sim {task}", unit="frame", disable=not progress):
            writer.write(index, frame)
    return Path(out)
