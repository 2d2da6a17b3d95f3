"""A small bag whose labels are known exactly, for the builders' tests and `ros2-pose bench dataset`.

An axis-aligned cuboid ("dolly") faces the camera (rotation about the camera's optical axis only, so
its silhouette is the projected front face: a rectangle of whole pixels), moving at constant
velocity; its lower quarter is the "wheels" part. Ground truth is written both as
/ground_truth/pose and as TF at a motion-capture rate with stamps offset from the images, with
constant linear and angular velocity, so interpolated TF equals the pose topic exactly.
Drone-style keypoints (the front face's corners) and metric depth are written too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_pose.data import bag_messages as bm
from ros2_pose.data.bags import BagWriter
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix

OBJECT_INDEX = 1
FRAME_PART, WHEEL_PART = 0, 1
SIZE = np.array([0.6, 0.4, 0.3])            # cuboid extent x, y, z (m) in the object frame
# camera_link (x forward, z up) -> camera_optical_frame (z forward, x right, y down), REP 103
LINK_TO_OPTICAL = RigidTransform(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), np.zeros(3))
KEYPOINT_NAMES = ("top_left", "top_right", "bottom_right", "bottom_left")


@dataclass
class FixtureFrame:
    stamp_ns: int
    T_camera_object: RigidTransform
    box: np.ndarray                 # (x_min, y_min, x_max, y_max) pixel edges of the silhouette
    image: np.ndarray
    segmentation: np.ndarray


def intrinsics(width: int, height: int) -> np.ndarray:
    f = 1.1 * width
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def model_keypoints() -> np.ndarray:
    """The front face's corners in the object frame (x right, y down, z towards the back)."""
    hx, hy, hz = SIZE / 2
    return np.array([[-hx, -hy, -hz], [hx, -hy, -hz], [hx, hy, -hz], [-hx, hy, -hz]])


def render_frame(K: np.ndarray, T: RigidTransform, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, segmentation, depth, box, keypoints_xy) of the cuboid at pose T (roll about z allowed
    only by multiples of 90 degrees would keep it a rectangle, so the fixture rotates in yaw=0)."""
    corners = T.apply(model_keypoints())
    xy = (K @ (corners / corners[:, 2:3]).T).T[:, :2]
    x0, y0 = np.ceil(xy.min(0) - 1e-9).astype(int)
    x1, y1 = np.floor(xy.max(0) + 1e-9).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width - 1), min(y1, height - 1)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 40
    image[..., 1] = np.linspace(30, 90, width, dtype=np.uint8)[None, :]
    seg = np.zeros((height, width), np.uint16)
    depth = np.full((height, width), 5.0, np.float32)
    box = np.zeros(4)
    if x1 >= x0 and y1 >= y0:
        wheel_y = y0 + (3 * (y1 - y0 + 1)) // 4
        image[y0:y1 + 1, x0:x1 + 1] = (200, 60, 30)
        image[wheel_y:y1 + 1, x0:x1 + 1] = (20, 20, 20)
        seg[y0:y1 + 1, x0:x1 + 1] = OBJECT_INDEX * 256 + FRAME_PART
        seg[wheel_y:y1 + 1, x0:x1 + 1] = OBJECT_INDEX * 256 + WHEEL_PART
        depth[y0:y1 + 1, x0:x1 + 1] = corners[0, 2]
        box = np.array([x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5])
    return image, seg, depth, box, xy


def write_fixture_bag(path: str | Path, n_frames: int = 6, width: int = 160, height: int = 120,
                      fps: float = 10.0, tf_rate_hz: float = 40.0, storage: str = "mcap",
                      start_ns: int = 1_000_000_000, loop_at: int | None = None,
                      camera_info: bool = True, object_frame: str = "dolly",
                      rename: dict[str, str] | None = None) -> list[FixtureFrame]:
    """Write the bag; returns the truth of every image. `loop_at` restarts the stamps at that frame
    (a looped recording). Topics per docs/DESIGN.md; `rename` gives other topic and frame names
    (default name -> name, e.g. {"/camera/image_raw": "/cam/color", "world": "map"}), as a robot's bag has."""
    K = intrinsics(width, height)
    rename = rename or {}
    name = lambda default: rename.get(default, default)
    period = int(round(1e9 / fps))
    def camera_link_pose(t_s: float) -> RigidTransform:
        # the camera drives forward (its link x axis) at 0.5 m/s: ego-motion for the motion builder
        R = axis_angle_to_matrix([0.0, 0.0, 0.3])
        return RigidTransform(R, np.array([1.0, -2.0, 0.5]) + 0.5 * t_s * R[:, 0])

    def object_pose(t_s: float) -> RigidTransform:
        # constant velocity in the image plane and constant spin about the optical axis by 0 rad
        # (a roll would turn the silhouette); a constant spin about the object's y axis is fine for TF
        # interpolation but would change the silhouette, so the fixture keeps the rotation fixed
        return RigidTransform(np.eye(3), np.array([-0.3 + 0.25 * t_s, -0.05 + 0.05 * t_s, 3.0 + 0.2 * t_s]))

    frames: list[FixtureFrame] = []
    with BagWriter(path, storage=storage) as bag:
        bag.write(name("/tf_static"), bm.tf_message([bm.transform_stamped_msg(
            LINK_TO_OPTICAL, name("camera_link"), name("camera_optical_frame"), start_ns)]), start_ns)
        tf_period = int(round(1e9 / tf_rate_hz))
        for i in range(n_frames):
            k = i if loop_at is None or i < loop_at else i - loop_at
            stamp = start_ns + k * period
            recv = start_ns + i * period + 2_000_000  # receive (bag) time only ever grows
            t_s = (stamp - start_ns) / 1e9
            T = object_pose(t_s)
            image, seg, depth, box, xy = render_frame(K, T, width, height)
            # mocap samples bracketing the image stamp (offset by a third of the TF period)
            for j in (-1, 0):
                tf_stamp = stamp + (j * tf_period) + tf_period // 3
                if tf_stamp < start_ns:
                    continue
                tf_t = (tf_stamp - start_ns) / 1e9
                T_w_o = camera_link_pose(tf_t) @ LINK_TO_OPTICAL @ object_pose(tf_t)
                bag.write(name("/tf"), bm.tf_message([
                    bm.transform_stamped_msg(camera_link_pose(tf_t), name("world"), name("camera_link"), tf_stamp),
                    bm.transform_stamped_msg(T_w_o, name("world"), object_frame, tf_stamp)]), recv + j + 1)
            optical = name("camera_optical_frame")
            bag.write(name("/camera/image_raw"), bm.image_msg(image, "rgb8", stamp, optical), recv + 2)
            if camera_info:
                bag.write(name("/camera/camera_info"), bm.camera_info_msg(K, np.zeros(5), width, height, stamp,
                                                                   optical), recv + 3)
            bag.write(name("/camera/segmentation"), bm.image_msg(seg, "16UC1", stamp, optical), recv + 4)
            bag.write(name("/camera/depth/image"), bm.image_msg(depth, "32FC1", stamp, optical), recv + 5)
            bag.write(name("/ground_truth/pose"), bm.pose_stamped_msg(T, stamp, optical), recv + 6)
            bag.write(name("/ground_truth/detections"), bm.detection_array_msg(
                box.reshape(1, 4), [object_frame], stamp, optical, instance_ids=[OBJECT_INDEX]), recv + 7)
            vis = np.where((xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height), 2, 0)
            bag.write(name("/ground_truth/keypoints"), bm.object_keypoints_array_msg(
                [bm.ObjectKeypointsSpec(object_frame, box, KEYPOINT_NAMES, xy, vis, OBJECT_INDEX)],
                stamp, optical), recv + 8)
            frames.append(FixtureFrame(stamp, T, box, image, seg))
    return frames
