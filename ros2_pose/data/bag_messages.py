"""Build (and read back) the rosbags message objects that go into ros2_pose's bags, ROS-free.

The simulator and dataset builders work on numpy arrays and `RigidTransform`s; these constructors
turn them into the rosbags versions of the messages listed in docs/DESIGN.md, validating as they go
(finite numbers, matching lengths), so no bag ever holds a NaN pose or a box with four numbers
missing. Writing them is `BagWriter.write(topic, msg, stamp_ns)`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros2_pose.data.bag_types import typestore
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.images import array_to_image_fields

NS_PER_S = 1_000_000_000
# Number of distortion coefficients each CameraInfo distortion model carries.
DISTORTION_SIZES = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


def _type(name: str):
    return typestore().types[name]


def _finite(value, shape: tuple[int, ...] | None, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if shape is not None and array.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite, got {array.tolist()}")
    return array


# -- time and headers -------------------------------------------------------------------------
def time_msg(stamp_ns: int):
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f"stamps are nanoseconds >= 0, got {stamp_ns}")
    return _type("builtin_interfaces/msg/Time")(sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S)


def stamp_ns(msg: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time, or of a message's `header.stamp`."""
    stamp = msg.header.stamp if hasattr(msg, "header") else msg
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def header_msg(stamp_ns: int, frame_id: str):
    return _type("std_msgs/msg/Header")(stamp=time_msg(stamp_ns), frame_id=str(frame_id))


# -- sensor_msgs --------------------------------------------------------------------------------
def image_msg(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """sensor_msgs/Image from an HxW or HxWxC array (encoding checked against dtype/channels)."""
    fields = array_to_image_fields(array, encoding)
    fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
    return _type("sensor_msgs/msg/Image")(header=header_msg(stamp_ns, frame_id), **fields)


def camera_info_msg(K, D, width: int, height: int, stamp_ns: int, frame_id: str,
                    distortion_model: str = "plumb_bob"):
    """sensor_msgs/CameraInfo of an unrectified pinhole camera: K (3x3), D (model's length),
    R = identity, P = [K | 0] (a monocular camera)."""
    K = _finite(K, (3, 3), "camera matrix K")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"K must be [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0, got {K.tolist()}")
    if distortion_model not in DISTORTION_SIZES:
        raise ValueError(f"distortion_model must be one of {sorted(DISTORTION_SIZES)}, got {distortion_model!r}")
    D = _finite(D, None, "distortion D").ravel()
    if D.size != DISTORTION_SIZES[distortion_model]:
        raise ValueError(f"{distortion_model} needs {DISTORTION_SIZES[distortion_model]} distortion "
                         f"coefficients, got {D.size}")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    P = np.zeros((3, 4))
    P[:, :3] = K
    RegionOfInterest = _type("sensor_msgs/msg/RegionOfInterest")
    return _type("sensor_msgs/msg/CameraInfo")(
        header=header_msg(stamp_ns, frame_id), height=int(height), width=int(width),
        distortion_model=distortion_model, d=D, k=K.ravel(), r=np.eye(3).ravel(), p=P.ravel(),
        binning_x=0, binning_y=0,
        roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


# -- geometry_msgs / tf2_msgs ------------------------------------------------------------------
def _quaternion(transform: RigidTransform):
    x, y, z, w = (float(v) for v in transform.quat_xyzw)
    return _type("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w)


def _check_transform(transform: RigidTransform, what: str) -> RigidTransform:
    if not isinstance(transform, RigidTransform):
        raise TypeError(f"{what} must be a RigidTransform, got {type(transform).__name__}")
    _finite(transform.translation, (3,), f"{what} translation")
    _finite(transform.rotation, (3, 3), f"{what} rotation")
    return transform


def pose_stamped_msg(pose: RigidTransform, stamp_ns: int, frame_id: str):
    """geometry_msgs/PoseStamped: `pose` is the object's pose in `frame_id` (T_frame_object)."""
    _check_transform(pose, "pose")
    t = pose.translation
    Point, Pose = _type("geometry_msgs/msg/Point"), _type("geometry_msgs/msg/Pose")
    return _type("geometry_msgs/msg/PoseStamped")(
        header=header_msg(stamp_ns, frame_id),
        pose=Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])), orientation=_quaternion(pose)))


def transform_stamped_msg(transform: RigidTransform, parent_frame: str, child_frame: str, stamp_ns: int):
    """geometry_msgs/TransformStamped: `transform` maps child-frame points into the parent frame."""
    _check_transform(transform, f"transform {parent_frame} -> {child_frame}")
    if not parent_frame or not child_frame or parent_frame == child_frame:
        raise ValueError(f"a transform needs two different frame names, got {parent_frame!r} -> {child_frame!r}")
    t = transform.translation
    Vector3 = _type("geometry_msgs/msg/Vector3")
    return _type("geometry_msgs/msg/TransformStamped")(
        header=header_msg(stamp_ns, parent_frame), child_frame_id=child_frame,
        transform=_type("geometry_msgs/msg/Transform")(
            translation=Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])), rotation=_quaternion(transform)))


def tf_message(transforms: Sequence[Any]):
    """tf2_msgs/TFMessage of TransformStamped messages."""
    return _type("tf2_msgs/msg/TFMessage")(transforms=list(transforms))


def rigid_transform_from_msg(msg: Any) -> RigidTransform:
    """A RigidTransform from a Pose(Stamped) or Transform(Stamped) message (rosbags or rclpy)."""
    inner = getattr(msg, "pose", None) or getattr(msg, "transform", None) or msg
    position = getattr(inner, "position", None) or getattr(inner, "translation", None)
    orientation = getattr(inner, "orientation", None) or getattr(inner, "rotation", None)
    if position is None or orientation is None:
        raise TypeError(f"{type(msg).__name__} is not a Pose/Transform message")
    translation = _finite([position.x, position.y, position.z], (3,), "position")
    quat = _finite([orientation.x, orientation.y, orientation.z, orientation.w], (4,), "orientation")
    return RigidTransform.from_quat_xyzw(quat, translation)


# -- ros2_pose_msgs -----------------------------------------------------------------------------
def box_msg(box) -> Any:
    """BoundingBox2D from (x_min, y_min, x_max, y_max) pixels."""
    x0, y0, x1, y1 = _finite(box, (4,), "box (x_min, y_min, x_max, y_max)")
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box must have x_min <= x_max and y_min <= y_max, got {[x0, y0, x1, y1]}")
    return _type("ros2_pose_msgs/msg/BoundingBox2D")(x_min=float(x0), y_min=float(y0), x_max=float(x1), y_max=float(y1))


def detection_array_msg(boxes, class_ids: Sequence[str], stamp_ns: int, frame_id: str,
                        scores=None, instance_ids=None):
    """Detection2DArray from N boxes (N x 4), N class ids, optional N scores (default 1.0) and
    instance ids (default -1). Every detection carries the array's header."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    scores = np.ones(n) if scores is None else _finite(scores, (n,), "scores")
    instance_ids = np.full(n, -1) if instance_ids is None else np.asarray(instance_ids).reshape(-1)
    if len(class_ids) != n or len(instance_ids) != n:
        raise ValueError(f"{n} boxes need {n} class ids and instance ids, got {len(class_ids)} and {len(instance_ids)}")
    Detection = _type("ros2_pose_msgs/msg/Detection2D")
    header = header_msg(stamp_ns, frame_id)
    detections = [Detection(header=header, class_id=str(class_ids[i]), instance_id=int(instance_ids[i]),
                            score=float(scores[i]), box=box_msg(boxes[i])) for i in range(n)]
    return _type("ros2_pose_msgs/msg/Detection2DArray")(header=header, detections=detections)


def keypoint_msgs(names: Sequence[str], xy, visibility, confidence=None) -> list:
    """Keypoint2D messages from K names, K x 2 pixel coordinates and K COCO visibilities
    (0 not labelled, 1 occluded, 2 visible). Unlabelled points still need finite coordinates (use 0)."""
    k = len(names)
    xy = _finite(xy, (k, 2), "keypoint coordinates")
    visibility = np.asarray(visibility).reshape(-1)
    if visibility.shape != (k,) or not np.isin(visibility, (0, 1, 2)).all():
        raise ValueError(f"visibility must be {k} values in {{0, 1, 2}}, got {visibility.tolist()}")
    confidence = np.ones(k) if confidence is None else _finite(confidence, (k,), "keypoint confidence")
    Keypoint = _type("ros2_pose_msgs/msg/Keypoint2D")
    return [Keypoint(name=str(names[i]), x=float(xy[i, 0]), y=float(xy[i, 1]),
                     confidence=float(confidence[i]), visibility=int(visibility[i])) for i in range(k)]


@dataclass
class ObjectKeypointsSpec:
    """One object's keypoints, as the simulator knows them (ROS-free input to the builders below)."""
    class_id: str
    box: Sequence[float]
    names: Sequence[str]
    xy: np.ndarray
    visibility: np.ndarray
    instance_id: int = -1
    score: float = 1.0
    confidence: np.ndarray | None = field(default=None)


def object_keypoints_array_msg(objects: Sequence[ObjectKeypointsSpec], stamp_ns: int, frame_id: str):
    header = header_msg(stamp_ns, frame_id)
    ObjectKeypoints = _type("ros2_pose_msgs/msg/ObjectKeypoints")
    msgs = [ObjectKeypoints(header=header, class_id=o.class_id, instance_id=int(o.instance_id),
                            score=float(o.score), box=box_msg(o.box),
                            keypoints=keypoint_msgs(o.names, o.xy, o.visibility, o.confidence))
            for o in objects]
    return _type("ros2_pose_msgs/msg/ObjectKeypointsArray")(header=header, objects=msgs)


@dataclass
class PersonSpec:
    """One person's joints in the SkeletonArray's joint order."""
    person_id: int
    box: Sequence[float]
    xy: np.ndarray
    visibility: np.ndarray
    score: float = 1.0
    confidence: np.ndarray | None = field(default=None)


def skeleton_array_msg(people: Sequence[PersonSpec], joint_names: Sequence[str], limbs, stamp_ns: int,
                       frame_id: str):
    """SkeletonArray: `limbs` are (L, 2) index pairs into joint_names."""
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    if limbs.size and (limbs.min() < 0 or limbs.max() >= len(joint_names)):
        raise ValueError(f"limb indices must lie in [0, {len(joint_names)}), got {limbs.tolist()}")
    Skeleton = _type("ros2_pose_msgs/msg/Skeleton")
    skeletons = [Skeleton(person_id=int(p.person_id), score=float(p.score), box=box_msg(p.box),
                          keypoints=keypoint_msgs(joint_names, p.xy, p.visibility, p.confidence))
                 for p in people]
    return _type("ros2_pose_msgs/msg/SkeletonArray")(
        header=header_msg(stamp_ns, frame_id), joint_names=[str(n) for n in joint_names],
        limb_a=limbs[:, 0].astype(np.uint16), limb_b=limbs[:, 1].astype(np.uint16), skeletons=skeletons)


def restamp(msg: Any, stamp_ns: int) -> int:
    """Set every std_msgs/Header stamp inside `msg` (its own header, those of nested messages and of
    message lists, e.g. each TransformStamped of a TFMessage) to `stamp_ns`, in place. Returns how
    many headers were changed. Used by the bag player to replay a bag as if it were live."""
    fields = getattr(msg, "__dataclass_fields__", None)
    if fields is None:
        return 0
    if getattr(msg, "__msgtype__", "") == "std_msgs/msg/Header":
        msg.stamp = time_msg(stamp_ns)
        return 1
    changed = 0
    for name in fields:
        value = getattr(msg, name)
        if isinstance(value, list):
            changed += sum(restamp(item, stamp_ns) for item in value)
        else:
            changed += restamp(value, stamp_ns)
    return changed
