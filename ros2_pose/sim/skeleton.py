"""Human skeletons: keypoint orders (COCO-17, BodyPoseNet/OpenPose-18) and an articulated body model.

Pure kinematics plus the body's capsule/ellipsoid meshes; no rendering here (people.py renders).

The body model works in the person's own frame: x forward, y left, z up (REP 103), origin on the
floor below the pelvis, soles touching z = 0. Segment lengths are fractions of the standing height
(Drillis & Contini anthropometric ratios) with a few per cent of per-person variation. Joint angles
come from pose families (standing, walking, arms raised, crouching, sitting) sampled inside
anatomical ranges. Written by hand: SMPL-like body models need downloadable weights, which this
project cannot use, and the forward kinematics of a 16-segment tree is a page of code.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from transforms3d.axangles import axangle2mat

# ----------------------------------------------------------------------------------------------
# Keypoint orders
# ----------------------------------------------------------------------------------------------

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# Limbs as 1-based keypoint indices, exactly as in COCO's person_keypoints JSON `skeleton`.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)

# The 18-joint order of OpenPose's COCO model, which NVIDIA's BodyPoseNet also uses.
BODYPOSE18_KEYPOINTS: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
# The 19 limbs (part affinity fields) of that model, 0-based into BODYPOSE18_KEYPOINTS.
BODYPOSE18_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
NECK = BODYPOSE18_KEYPOINTS.index("neck")
# For each BodyPose-18 joint, its COCO-17 index; -1 for the neck (the shoulders' midpoint).
COCO_INDEX_OF_BODYPOSE18: tuple[int, ...] = tuple(
    -1 if name == "neck" else COCO_KEYPOINTS.index(name) for name in BODYPOSE18_KEYPOINTS)
BODYPOSE18_INDEX_OF_COCO: tuple[int, ...] = tuple(BODYPOSE18_KEYPOINTS.index(n) for n in COCO_KEYPOINTS)


class KeypointFormatError(ValueError):
    """Keypoint arrays of the wrong shape for the requested conversion."""


def _check_keypoints(keypoints, count: int, name: str) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2] != count or kp.shape[-1] not in (2, 3):
        raise KeypointFormatError(f"{name} must be (..., {count}, 2 or 3) [x, y(, v)], got {kp.shape}")
    return kp


def coco17_to_bodypose18(keypoints) -> np.ndarray:
    """(..., 17, 2|3) COCO keypoints -> (..., 18, same) BodyPose-18 keypoints.

    The neck is the midpoint of the shoulders; its visibility is the lower of the two shoulders'
    (0 if either is unlabelled, so a half-known neck is never invented), its position 0 then.
    """
    kp = _check_keypoints(keypoints, len(COCO_KEYPOINTS), "COCO keypoints")
    out = np.zeros(kp.shape[:-2] + (len(BODYPOSE18_KEYPOINTS), kp.shape[-1]))
    for j, c in enumerate(COCO_INDEX_OF_BODYPOSE18):
        if c >= 0:
            out[..., j, :] = kp[..., c, :]
    left, right = kp[..., COCO_KEYPOINTS.index("left_shoulder"), :], kp[..., COCO_KEYPOINTS.index("right_shoulder"), :]
    neck = (left + right) / 2
    if kp.shape[-1] == 3:
        visibility = np.minimum(left[..., 2], right[..., 2])
        neck[..., 2] = visibility
        neck[..., :2] *= (visibility > 0)[..., None]
    out[..., NECK, :] = neck
    return out


def bodypose18_to_coco17(keypoints) -> np.ndarray:
    """(..., 18, 2|3) BodyPose-18 keypoints -> (..., 17, same) COCO keypoints (the neck is dropped)."""
    kp = _check_keypoints(keypoints, len(BODYPOSE18_KEYPOINTS), "BodyPose-18 keypoints")
    return kp[..., list(BODYPOSE18_INDEX_OF_COCO), :].copy()


# ----------------------------------------------------------------------------------------------
# Body proportions
# ----------------------------------------------------------------------------------------------

# Segment lengths as fractions of standing height (Drillis & Contini; Winter, "Biomechanics and
# motor control of human movement", fig. 4.1).
_NOMINAL_FRACTIONS = {
    "ankle_height": 0.039,      # sole to ankle joint
    "shank": 0.246,             # knee to ankle
    "thigh": 0.245,             # hip to knee
    "torso": 0.288,             # hip line to shoulder line
    "neck": 0.070,              # shoulder line to the head's pivot (atlas)
    "upper_arm": 0.186,
    "forearm": 0.146,
    "hand": 0.108,
    "foot": 0.152,
    "shoulder_half_width": 0.129,
    "hip_half_width": 0.053,    # hip joint centres, not the hips' outline
    "head_depth": 0.058,        # head ellipsoid semi-axes: front-back, left-right, up-down
    "head_breadth": 0.046,
    "head_height": 0.066,
    "chest_depth": 0.060,       # torso ellipsoid semi-axes
    "chest_breadth": 0.095,
    "pelvis_breadth": 0.095,
    "pelvis_depth": 0.058,
    "upper_arm_radius": 0.026,
    "forearm_radius": 0.021,
    "hand_radius": 0.018,
    "thigh_radius": 0.043,
    "shank_radius": 0.030,
    "neck_radius": 0.030,
    "foot_radius": 0.022,
}


@dataclass(frozen=True)
class BodyProportions:
    """Segment lengths and body part radii of one person, in metres."""

    height: float
    ankle_height: float
    shank: float
    thigh: float
    torso: float
    neck: float
    upper_arm: float
    forearm: float
    hand: float
    foot: float
    shoulder_half_width: float
    hip_half_width: float
    head_depth: float
    head_breadth: float
    head_height: float
    chest_depth: float
    chest_breadth: float
    pelvis_breadth: float
    pelvis_depth: float
    upper_arm_radius: float
    forearm_radius: float
    hand_radius: float
    thigh_radius: float
    shank_radius: float
    neck_radius: float
    foot_radius: float

    @classmethod
    def nominal(cls, height: float = 1.75) -> "BodyProportions":
        if not 0.5 < height < 2.6:
            raise ValueError(f"a person's height must be in (0.5, 2.6) m, got {height}")
        return cls(height=height, **{k: f * height for k, f in _NOMINAL_FRACTIONS.items()})


def sample_proportions(rng: np.random.Generator, height_range: tuple[float, float] = (1.5, 1.95),
                       variation: float = 0.05) -> BodyProportions:
    """A random adult: height uniform in `height_range`, every ratio scaled by 1 +- `variation`
    (girths twice as much: builds differ more than bone lengths)."""
    lo, hi = height_range
    if not 0.5 < lo <= hi < 2.6:
        raise ValueError(f"height_range must satisfy 0.5 < lo <= hi < 2.6 m, got {height_range}")
    height = float(rng.uniform(lo, hi))
    values = {}
    for key, fraction in _NOMINAL_FRACTIONS.items():
        spread = 2 * variation if ("radius" in key or "depth" in key or "breadth" in key) else variation
        values[key] = fraction * height * float(rng.uniform(1 - spread, 1 + spread))
    return BodyProportions(height=height, **values)


# ----------------------------------------------------------------------------------------------
# Joint angles
# ----------------------------------------------------------------------------------------------

POSE_FAMILIES: tuple[str, ...] = ("standing", "walking", "arms_raised", "crouching", "sitting")


@dataclass(frozen=True)
class JointAngles:
    """Joint angles in radians. Arm/leg angles per side; positive flexion moves the limb forward
    (knee flexion bends the shank backward), positive abduction away from the body."""

    torso_lean: float = 0.0        # forward bend of the spine
    torso_side: float = 0.0        # sideways bend (towards the right for positive)
    torso_twist: float = 0.0       # chest yaw relative to the pelvis (to the left for positive)
    head_pitch: float = 0.0        # nod down for positive
    head_yaw: float = 0.0          # look left for positive
    head_roll: float = 0.0
    left_shoulder_flex: float = 0.0
    left_shoulder_abduct: float = 0.0
    left_shoulder_twist: float = 0.0
    left_elbow_flex: float = 0.0
    right_shoulder_flex: float = 0.0
    right_shoulder_abduct: float = 0.0
    right_shoulder_twist: float = 0.0
    right_elbow_flex: float = 0.0
    left_hip_flex: float = 0.0
    left_hip_abduct: float = 0.0
    left_hip_twist: float = 0.0
    left_knee_flex: float = 0.0
    right_hip_flex: float = 0.0
    right_hip_abduct: float = 0.0
    right_hip_twist: float = 0.0
    right_knee_flex: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value):
                raise ValueError(f"JointAngles.{f.name} must be finite, got {value}")


# Anatomical limits (radians) that every sampled or user-given pose is clipped to.
_LIMITS_DEG = {
    "torso_lean": (-25, 80), "torso_side": (-30, 30), "torso_twist": (-45, 45),
    "head_pitch": (-45, 60), "head_yaw": (-75, 75), "head_roll": (-30, 30),
    "shoulder_flex": (-50, 180), "shoulder_abduct": (-10, 170), "shoulder_twist": (-70, 70),
    "elbow_flex": (0, 150), "hip_flex": (-25, 125), "hip_abduct": (-15, 45), "hip_twist": (-35, 35),
    "knee_flex": (0, 150),
}


def _limit_key(name: str) -> str:
    return name.removeprefix("left_").removeprefix("right_")


def clip_to_limits(angles: JointAngles) -> JointAngles:
    """The angles clipped to anatomical ranges (a joint never bends the wrong way)."""
    values = {}
    for f in fields(angles):
        lo, hi = _LIMITS_DEG[_limit_key(f.name)]
        values[f.name] = float(np.clip(getattr(angles, f.name), np.radians(lo), np.radians(hi)))
    return JointAngles(**values)


def sample_joint_angles(rng: np.random.Generator, family: str | None = None) -> tuple[str, JointAngles]:
    """(family, angles) of a random plausible pose; `family` None picks one of POSE_FAMILIES."""
    if family is None:
        family = POSE_FAMILIES[int(rng.choice(len(POSE_FAMILIES), p=[0.3, 0.3, 0.15, 0.1, 0.15]))]
    if family not in POSE_FAMILIES:
        raise ValueError(f"unknown pose family {family!r}; expected one of {POSE_FAMILIES}")

    def deg(lo, hi):
        return float(np.radians(rng.uniform(lo, hi)))

    a = dict(
        torso_lean=deg(-5, 10), torso_side=deg(-6, 6), torso_twist=deg(-15, 15),
        head_pitch=deg(-15, 25), head_yaw=deg(-50, 50), head_roll=deg(-10, 10),
    )
    for side in ("left", "right"):
        a |= {f"{side}_shoulder_flex": deg(-15, 25), f"{side}_shoulder_abduct": deg(3, 20),
              f"{side}_shoulder_twist": deg(-20, 30), f"{side}_elbow_flex": deg(5, 40),
              f"{side}_hip_flex": deg(-5, 10), f"{side}_hip_abduct": deg(0, 10),
              f"{side}_hip_twist": deg(-10, 15), f"{side}_knee_flex": deg(0, 10)}
    if family == "walking":
        front, back = ("left", "right") if rng.random() < 0.5 else ("right", "left")
        a[f"{front}_hip_flex"], a[f"{front}_knee_flex"] = deg(15, 35), deg(5, 25)
        a[f"{back}_hip_flex"], a[f"{back}_knee_flex"] = deg(-20, -5), deg(10, 60)
        # arms swing against the legs
        a[f"{back}_shoulder_flex"], a[f"{front}_shoulder_flex"] = deg(10, 35), deg(-30, -5)
        a["torso_lean"] = deg(0, 10)
    elif family == "arms_raised":
        for side in ("left", "right"):
            if rng.random() < 0.75:  # one or both arms up, forward or sideways
                if rng.random() < 0.5:
                    a[f"{side}_shoulder_flex"], a[f"{side}_shoulder_abduct"] = deg(90, 175), deg(0, 30)
                else:
                    a[f"{side}_shoulder_flex"], a[f"{side}_shoulder_abduct"] = deg(-10, 30), deg(70, 165)
                a[f"{side}_elbow_flex"] = deg(0, 100)
    elif family == "crouching":
        a["torso_lean"] = deg(25, 60)
        a["head_pitch"] = deg(-35, 0)  # look up to compensate for the lean
        for side in ("left", "right"):
            a[f"{side}_hip_flex"] = deg(80, 115)
            a[f"{side}_knee_flex"] = deg(100, 140)
            a[f"{side}_hip_abduct"] = deg(5, 30)
            a[f"{side}_shoulder_flex"] = deg(20, 80)
            a[f"{side}_elbow_flex"] = deg(20, 90)
    elif family == "sitting":
        a["torso_lean"] = deg(-10, 15)
        for side in ("left", "right"):
            a[f"{side}_hip_flex"] = deg(80, 100)
            a[f"{side}_knee_flex"] = deg(75, 105)
            a[f"{side}_hip_abduct"] = deg(0, 20)
            a[f"{side}_shoulder_flex"] = deg(0, 50)
            a[f"{side}_elbow_flex"] = deg(30, 100)
    return family, clip_to_limits(JointAngles(**a))


# ----------------------------------------------------------------------------------------------
# Forward kinematics
# ----------------------------------------------------------------------------------------------

JOINTS: tuple[str, ...] = (
    "pelvis", "spine", "neck", "head", "head_top",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_heel", "right_heel", "left_toe", "right_toe",
)
FACE_KEYPOINTS: tuple[str, ...] = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
# Face keypoints as directions from the head centre (head frame), placed on the head's surface.
_FACE_DIRECTIONS = {
    "nose": (1.0, 0.0, -0.25),
    "left_eye": (0.9, 0.38, 0.08), "right_eye": (0.9, -0.38, 0.08),
    "left_ear": (-0.1, 1.0, 0.0), "right_ear": (-0.1, -1.0, 0.0),
}
_X, _Y, _Z = np.eye(3)


def _rot(axis, angle: float) -> np.ndarray:
    return axangle2mat(axis, angle) if angle != 0.0 else np.eye(3)


def _on_ellipsoid(direction, radii) -> np.ndarray:
    """The point of the ellipsoid with semi-axes `radii` in the given direction from its centre."""
    d = np.asarray(direction, float)
    return d / np.sqrt(np.sum((d / radii) ** 2))


@dataclass(frozen=True)
class BodyPart:
    """One rigid body part as a primitive in the person frame: a capsule from `start` to `end`
    with `radius`, or an ellipsoid centred at `start` with semi-axes `radii` along the columns
    of `rotation`."""

    name: str
    part_index: int
    kind: str  # "capsule" | "ellipsoid"
    start: np.ndarray
    end: np.ndarray | None = None
    radius: float = 0.0
    radii: np.ndarray | None = None
    rotation: np.ndarray | None = None


# Part indices start at 1 so that segmentation ids (object*256 + part) are never a bare object id.
BODY_PARTS: tuple[str, ...] = (
    "head", "neck", "torso", "pelvis", "left_upper_arm", "right_upper_arm", "left_forearm",
    "right_forearm", "left_hand", "right_hand", "left_thigh", "right_thigh", "left_shank",
    "right_shank", "left_foot", "right_foot",
)
PART_INDEX: dict[str, int] = {name: i + 1 for i, name in enumerate(BODY_PARTS)}
# The parts whose surface lies right around each COCO keypoint (for visibility tests).
KEYPOINT_PARTS: dict[str, tuple[str, ...]] = {
    "nose": ("head",), "left_eye": ("head",), "right_eye": ("head",),
    "left_ear": ("head",), "right_ear": ("head",),
    **{f"{s}_shoulder": ("torso", f"{s}_upper_arm") for s in ("left", "right")},
    **{f"{s}_elbow": (f"{s}_upper_arm", f"{s}_forearm") for s in ("left", "right")},
    **{f"{s}_wrist": (f"{s}_forearm", f"{s}_hand") for s in ("left", "right")},
    **{f"{s}_hip": ("pelvis", f"{s}_thigh") for s in ("left", "right")},
    **{f"{s}_knee": (f"{s}_thigh", f"{s}_shank") for s in ("left", "right")},
    **{f"{s}_ankle": (f"{s}_shank", f"{s}_foot") for s in ("left", "right")},
}


@dataclass(frozen=True)
class PersonPose:
    """A posed body in the person frame (x forward, y left, z up, soles on z = 0)."""

    family: str
    proportions: BodyProportions
    angles: JointAngles
    joints: dict[str, np.ndarray]
    parts: tuple[BodyPart, ...]

    @property
    def coco_keypoints(self) -> np.ndarray:
        """(17, 3) COCO keypoint positions in the person frame."""
        return np.stack([self.joints[name] for name in COCO_KEYPOINTS])

    def keypoint_surface_depth(self) -> np.ndarray:
        """(17,) how far below the body's surface each COCO keypoint may lie (metres): the largest
        radius of the parts around it; nose and eyes lie on the surface (0). Real ears stick out
        of the head's side; the ellipsoid head has none, so near the silhouette the head surface
        seen around an ear keypoint may be up to the head's half-width in front of it."""
        by_name = {p.name: p for p in self.parts}
        depth = []
        for name in COCO_KEYPOINTS:
            if name.endswith("_ear"):
                depth.append(self.proportions.head_breadth)
                continue
            radii = [by_name[part].radius for part in KEYPOINT_PARTS[name] if by_name[part].kind == "capsule"]
            depth.append(max(radii) if radii and name not in FACE_KEYPOINTS else 0.0)
        return np.asarray(depth)

    def seat_height(self) -> float | None:
        """Height of the underside of the pelvis when sitting (a stool fits there), else None."""
        if self.family != "sitting":
            return None
        return float(self.joints["pelvis"][2] - self.proportions.pelvis_depth * 0.9)


def pose_person(proportions: BodyProportions, angles: JointAngles, family: str = "custom") -> PersonPose:
    """Forward kinematics: joint positions and body part primitives in the person frame."""
    p, a = proportions, clip_to_limits(angles)
    j: dict[str, np.ndarray] = {}
    hip_height = p.ankle_height + p.shank + p.thigh
    r_pelvis = _rot(_Z, -0.3 * a.torso_twist)  # the pelvis turns a little against the chest
    j["pelvis"] = np.array([0.0, 0.0, hip_height])
    r_chest = r_pelvis @ _rot(_Z, a.torso_twist) @ _rot(_Y, a.torso_lean) @ _rot(_X, a.torso_side)
    j["spine"] = j["pelvis"] + r_chest @ (0, 0, 0.45 * p.torso)
    j["neck"] = j["pelvis"] + r_chest @ (0, 0, p.torso)
    r_neck = r_chest @ _rot(_Y, 0.5 * a.head_pitch)
    head_pivot = j["neck"] + r_neck @ (0, 0, p.neck)
    r_head = r_chest @ _rot(_Z, a.head_yaw) @ _rot(_Y, a.head_pitch) @ _rot(_X, a.head_roll)
    head_radii = np.array([p.head_depth, p.head_breadth, p.head_height])
    head_centre = head_pivot + r_head @ (0.15 * p.head_depth, 0, 0.6 * p.head_height)
    j["head"] = head_centre
    j["head_top"] = head_centre + r_head @ (0, 0, p.head_height)
    for name, direction in _FACE_DIRECTIONS.items():
        j[name] = head_centre + r_head @ _on_ellipsoid(direction, head_radii)

    parts = [
        BodyPart("head", PART_INDEX["head"], "ellipsoid", head_centre, radii=head_radii, rotation=r_head),
        BodyPart("neck", PART_INDEX["neck"], "capsule", j["neck"], head_pivot + r_head @ (0, 0, 0.2 * p.head_height),
                 p.neck_radius),
        # chest and pelvis ellipsoids overlap deeply so the waist is not pinched to a point
        BodyPart("torso", PART_INDEX["torso"], "ellipsoid", j["pelvis"] + r_chest @ (0, 0, 0.56 * p.torso),
                 radii=np.array([p.chest_depth, p.chest_breadth, 0.5 * p.torso]), rotation=r_chest),
        BodyPart("pelvis", PART_INDEX["pelvis"], "ellipsoid", j["pelvis"] + r_pelvis @ (0, 0, 0.06 * p.torso),
                 radii=np.array([p.pelvis_depth, p.pelvis_breadth, 0.26 * p.torso]), rotation=r_pelvis),
    ]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        flex, abduct = getattr(a, f"{side}_shoulder_flex"), getattr(a, f"{side}_shoulder_abduct")
        r_upper = (r_chest @ _rot(-_Y, flex) @ _rot(sign * _X, abduct)
                   @ _rot(sign * _Z, getattr(a, f"{side}_shoulder_twist")))
        shoulder = j["neck"] + r_chest @ (0, sign * p.shoulder_half_width, -0.02 * p.torso)
        elbow = shoulder + r_upper @ (0, 0, -p.upper_arm)
        r_fore = r_upper @ _rot(-_Y, getattr(a, f"{side}_elbow_flex"))
        wrist = elbow + r_fore @ (0, 0, -p.forearm)
        hand = wrist + r_fore @ (0, 0, -0.6 * p.hand)
        j |= {f"{side}_shoulder": shoulder, f"{side}_elbow": elbow, f"{side}_wrist": wrist, f"{side}_hand": hand}

        r_thigh = (r_pelvis @ _rot(-_Y, getattr(a, f"{side}_hip_flex")) @ _rot(sign * _X, getattr(a, f"{side}_hip_abduct"))
                   @ _rot(sign * _Z, getattr(a, f"{side}_hip_twist")))
        hip = j["pelvis"] + r_pelvis @ (0, sign * p.hip_half_width, 0)
        knee = hip + r_thigh @ (0, 0, -p.thigh)
        r_shank = r_thigh @ _rot(_Y, getattr(a, f"{side}_knee_flex"))
        ankle = knee + r_shank @ (0, 0, -p.shank)
        # The foot stays level (flat on the floor), pointing where the thigh's twist points it.
        r_foot = r_pelvis @ _rot(sign * _Z, getattr(a, f"{side}_hip_twist") + sign * np.radians(8))
        heel = ankle + r_foot @ (-0.2 * p.foot, 0, -0.55 * p.ankle_height)
        toe = ankle + r_foot @ (0.72 * p.foot, 0, -0.55 * p.ankle_height)
        j |= {f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle,
              f"{side}_heel": heel, f"{side}_toe": toe}
        parts += [
            BodyPart(f"{side}_upper_arm", PART_INDEX[f"{side}_upper_arm"], "capsule", shoulder, elbow, p.upper_arm_radius),
            BodyPart(f"{side}_forearm", PART_INDEX[f"{side}_forearm"], "capsule", elbow, wrist, p.forearm_radius),
            BodyPart(f"{side}_hand", PART_INDEX[f"{side}_hand"], "capsule", wrist + r_fore @ (0, 0, -0.25 * p.hand),
                     hand, p.hand_radius),
            BodyPart(f"{side}_thigh", PART_INDEX[f"{side}_thigh"], "capsule", hip, knee, p.thigh_radius),
            BodyPart(f"{side}_shank", PART_INDEX[f"{side}_shank"], "capsule", knee, ankle, p.shank_radius),
            BodyPart(f"{side}_foot", PART_INDEX[f"{side}_foot"], "capsule", heel, toe, p.foot_radius),
        ]
    # Put the lowest sole on the floor: everything moves up or down together.
    soles = [part.start[2] - part.radius for part in parts if part.name.endswith("_foot")]
    soles += [part.end[2] - part.radius for part in parts if part.name.endswith("_foot")]
    lift = np.array([0.0, 0.0, -min(soles)])
    j = {name: np.asarray(v, float) + lift for name, v in j.items()}
    parts = tuple(BodyPart(q.name, q.part_index, q.kind, q.start + lift,
                           None if q.end is None else q.end + lift, q.radius, q.radii, q.rotation)
                  for q in parts)
    return PersonPose(family, proportions, a, j, parts)


def random_person(rng: np.random.Generator, family: str | None = None,
                  height_range: tuple[float, float] = (1.5, 1.95)) -> PersonPose:
    """A random person in a random (or the given) pose family."""
    proportions = sample_proportions(rng, height_range)
    # Rejection sampling: a pose whose hands (or anything but the feet) would sink into the floor
    # is drawn again; a handful of tries always suffices for the families above.
    for _ in range(100):
        chosen, angles = sample_joint_angles(rng, family)
        person = pose_person(proportions, angles, chosen)
        if lowest_point(person, exclude=("left_foot", "right_foot")) >= 0.0:
            return person
    raise RuntimeError(f"no {family} pose kept every body part above the floor in 100 tries")


def lowest_point(person: PersonPose, exclude: tuple[str, ...] = ()) -> float:
    """The lowest z of the body's surface (parts named in `exclude` left out)."""
    lows = []
    for q in person.parts:
        if q.name in exclude:
            continue
        if q.kind == "capsule":
            lows.append(min(q.start[2], q.end[2]) - q.radius)
        else:  # an ellipsoid's lowest point: centre minus its half-extent along z
            lows.append(q.start[2] - float(np.sqrt(np.sum((q.rotation[2, :] * q.radii) ** 2))))
    return float(min(lows))


def part_mesh(part: BodyPart, detail: int = 10):
    """The part's triangle mesh in the person frame (ros2_pose.sim.mesh primitives)."""
    from ros2_pose.sim.mesh import capsule, ellipsoid, transform

    m = np.eye(4)
    if part.kind == "ellipsoid":
        m[:3, :3], m[:3, 3] = part.rotation, part.start
        return transform(ellipsoid(part.radii, rings=max(4, detail - 2), segments=detail), m)
    if part.kind != "capsule":
        raise ValueError(f"unknown body part kind {part.kind!r}")
    axis = part.end - part.start
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-9 else _Z
    helper = _X if abs(z[0]) < 0.9 else _Y
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    m[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    m[:3, 3] = (part.start + part.end) / 2
    return transform(capsule(part.radius, length, rings=max(4, detail - 4), segments=detail), m)
