"""Skeleton tables, the articulated body model, and the people scenes' visibility labels."""
import numpy as np
import pytest

from ros2_pose.sim import skeleton as sk


def test_coco_order_and_skeleton_match_the_coco_json():
    assert sk.COCO_KEYPOINTS[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    assert sk.COCO_KEYPOINTS[5:] == tuple(
        f"{side}_{joint}" for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
        for side in ("left", "right"))
    assert len(sk.COCO_SKELETON) == 19
    # 1-based: every index in [1, 17], every keypoint on some limb, no duplicated limb
    flat = np.array(sk.COCO_SKELETON).ravel()
    assert flat.min() == 1 and flat.max() == 17 and set(flat) == set(range(1, 18))
    assert len({frozenset(pair) for pair in sk.COCO_SKELETON}) == 19
    names = {frozenset((sk.COCO_KEYPOINTS[a - 1], sk.COCO_KEYPOINTS[b - 1])) for a, b in sk.COCO_SKELETON}
    assert frozenset(("left_knee", "left_ankle")) in names
    assert frozenset(("left_shoulder", "right_shoulder")) in names


def test_bodypose18_limbs_and_mapping():
    assert len(sk.BODYPOSE18_KEYPOINTS) == 18 and sk.BODYPOSE18_KEYPOINTS[1] == "neck"
    assert len(sk.BODYPOSE18_LIMBS) == 19
    limbs = {frozenset((sk.BODYPOSE18_KEYPOINTS[a], sk.BODYPOSE18_KEYPOINTS[b])) for a, b in sk.BODYPOSE18_LIMBS}
    assert frozenset(("neck", "right_shoulder")) in limbs and frozenset(("nose", "neck")) in limbs
    # the limb graph connects all 18 joints
    seen, todo = {1}, [1]
    while todo:
        j = todo.pop()
        for a, b in sk.BODYPOSE18_LIMBS:
            for x, y in ((a, b), (b, a)):
                if x == j and y not in seen:
                    seen.add(y)
                    todo.append(y)
    assert seen == set(range(18))

    coco = np.zeros((2, 17, 3))
    coco[..., 0] = np.arange(17)
    coco[..., 1] = 100 + np.arange(17)
    coco[..., 2] = 2
    coco[1, 6, 2] = 0  # second person: right shoulder unlabelled -> neck unlabelled
    bp = sk.coco17_to_bodypose18(coco)
    assert bp.shape == (2, 18, 3)
    for j, name in enumerate(sk.BODYPOSE18_KEYPOINTS):
        if name != "neck":
            np.testing.assert_array_equal(bp[:, j], coco[:, sk.COCO_KEYPOINTS.index(name)])
    np.testing.assert_allclose(bp[0, 1], [5.5, 105.5, 2])
    np.testing.assert_array_equal(bp[1, 1], [0, 0, 0])
    np.testing.assert_array_equal(sk.bodypose18_to_coco17(bp), coco)
    with pytest.raises(sk.KeypointFormatError, match="17"):
        sk.coco17_to_bodypose18(np.zeros((18, 3)))


@pytest.mark.parametrize("family", sk.POSE_FAMILIES)
def test_random_people_have_plausible_bones_and_stand_on_the_floor(family):
    rng = np.random.default_rng(sk.POSE_FAMILIES.index(family))
    for _ in range(20):
        person = sk.random_person(rng, family)
        p, j = person.proportions, person.joints
        assert 1.5 <= p.height <= 1.95
        for a, b, lo, hi in (("left_shoulder", "left_elbow", 0.25, 0.4), ("right_elbow", "right_wrist", 0.2, 0.32),
                             ("left_hip", "left_knee", 0.34, 0.52), ("right_knee", "right_ankle", 0.34, 0.52),
                             ("left_shoulder", "right_shoulder", 0.36, 0.56), ("left_hip", "right_hip", 0.14, 0.22)):
            assert lo < np.linalg.norm(j[a] - j[b]) < hi, (family, a, b)
        # soles on the floor, nothing below it
        assert sk.lowest_point(person) == pytest.approx(0.0, abs=1e-9)
        feet = [q for q in person.parts if q.name.endswith("_foot")]
        assert min(min(q.start[2], q.end[2]) - q.radius for q in feet) == pytest.approx(0.0, abs=1e-9)
        top = j["head_top"][2]
        if family in ("standing", "walking", "arms_raised"):
            assert 0.88 * p.height < top < 1.03 * p.height
        else:
            assert 0.45 * p.height < top < 0.85 * p.height
        # anatomy: the nose is in front of the ears, eyes above the nose, knees never bend forward
        head_forward = j["nose"] - (j["left_ear"] + j["right_ear"]) / 2
        assert np.linalg.norm(head_forward) > 0.05
        assert j["left_eye"][2] > j["nose"][2] and j["right_eye"][2] > j["nose"][2]
        assert person.angles.left_knee_flex >= 0 and person.angles.right_knee_flex >= 0
        assert np.all(np.isfinite(person.coco_keypoints))


def test_left_is_left_and_arms_raised_go_up():
    p = sk.BodyProportions.nominal(1.75)
    person = sk.pose_person(p, sk.JointAngles())
    assert person.joints["left_shoulder"][1] > 0 > person.joints["right_shoulder"][1]  # +y is left
    assert person.joints["head_top"][2] == pytest.approx(1.75, abs=0.03)
    raised = sk.pose_person(p, sk.JointAngles(left_shoulder_flex=np.radians(170)))
    assert raised.joints["left_wrist"][2] > raised.joints["head_top"][2]
    forward = sk.pose_person(p, sk.JointAngles(right_elbow_flex=np.radians(90)))
    assert forward.joints["right_wrist"][0] > forward.joints["right_elbow"][0] + 0.2  # forearm points forward
    bent = sk.pose_person(p, sk.JointAngles(left_knee_flex=np.radians(80)))
    assert bent.joints["left_ankle"][0] < bent.joints["left_knee"][0] - 0.2  # shank goes backward
    # angles beyond anatomy are clipped, never bent the wrong way
    wrong = sk.pose_person(p, sk.JointAngles(left_knee_flex=np.radians(-60)))
    assert wrong.angles.left_knee_flex == 0.0


def test_body_parts_have_unique_indices_and_meshes_enclose_their_joints():
    person = sk.random_person(np.random.default_rng(5), "walking")
    indices = [q.part_index for q in person.parts]
    assert sorted(indices) == list(range(1, len(sk.BODY_PARTS) + 1))
    for q in person.parts:
        lo, hi = sk.part_mesh(q).bounds()
        anchor = q.start
        assert np.all(anchor >= lo - 1e-6) and np.all(anchor <= hi + 1e-6), q.name
    with pytest.raises(ValueError, match="height"):
        sk.sample_proportions(np.random.default_rng(0), (1.0, 3.0))


# ---------------------------------------------------------------------------------- people scenes
from ros2_pose.geometry.camera import CameraModel  # noqa: E402
from ros2_pose.geometry.transforms import RigidTransform  # noqa: E402
from ros2_pose.sim import people as ppl  # noqa: E402
from ros2_pose.sim.randomization import look_at  # noqa: E402
from ros2_pose.sim.renderer import Renderer  # noqa: E402
from ros2_pose.sim.scene import Material, Scene, SceneObject, segment_id  # noqa: E402
from ros2_pose.sim.tasks import frame_rng  # noqa: E402

W, H = 160, 120


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(W, H, "auto")
    yield r
    r.close()


def _camera():
    return CameraModel(np.array([[110.0, 0, 79.5], [0, 110.0, 59.5], [0, 0, 1]]), np.zeros(5), W, H)


def _render_people(renderer, placed, T_world_camera):
    objects = [SceneObject(f"p{p.object_index}/{q.name}", sk.part_mesh(q), p.T_world_person, Material((0.7, 0.5, 0.4)),
                           segment_id(p.object_index, q.part_index)) for p in placed for q in p.body.parts]
    frame = renderer.render(Scene(objects), _camera(), T_world_camera)
    return frame, ppl.label_people(frame.segmentation, frame.depth, _camera(), T_world_camera, placed)


def _yaw(angle, xyz):
    return ppl._yaw(angle, xyz)


def test_person_fully_behind_another_is_labelled_occluded(renderer):
    proportions = sk.BodyProportions.nominal(1.85)
    front_body = sk.pose_person(proportions, sk.JointAngles())
    back_body = sk.pose_person(sk.BodyProportions.nominal(1.55), sk.JointAngles())
    # camera at 1.2 m height looking along +x; the tall person at 3 m faces it, the short one right behind
    T_world_camera = look_at((0, 0, 1.2), (5, 0, 1.0))
    front = ppl.PlacedPerson(1, _yaw(np.pi, (3.0, 0, 0)), front_body, True)
    back = ppl.PlacedPerson(2, _yaw(np.pi, (6.0, 0, 0)), back_body, True)
    frame, labels = _render_people(renderer, [front, back], T_world_camera)
    by_id = {lab.person_id: lab for lab in labels}
    assert by_id[1].num_keypoints == 17 and np.all(by_id[1].keypoints[:, 2] == 2)  # facing the camera
    if 2 in by_id:  # a sliver may show between the legs; every keypoint is still hidden
        v = by_id[2].keypoints[:, 2]
        assert np.all(v == 1), v
    # alone, the short person is fully visible: the occluded flags came from the tall one
    _, alone = _render_people(renderer, [back], T_world_camera)
    assert np.all(alone[0].keypoints[:, 2] == 2)


def test_face_of_a_person_facing_away_is_self_occluded_and_outside_is_zero(renderer):
    body = sk.pose_person(sk.BodyProportions.nominal(1.75), sk.JointAngles())
    T_world_camera = look_at((0, 0, 1.5), (5, 0, 1.0))
    away = ppl.PlacedPerson(1, _yaw(0.0, (3.0, 0, 0)), body, True)  # facing +x, back to the camera
    _, (label,) = _render_people(renderer, [away], T_world_camera)
    names = sk.COCO_KEYPOINTS
    assert label.keypoints[names.index("nose"), 2] == 1
    assert label.keypoints[names.index("left_eye"), 2] == 1
    assert label.keypoints[names.index("left_shoulder"), 2] == 2
    # cut off at the image's right edge: the far-out keypoints are 0 with x = y = 0
    edge = ppl.PlacedPerson(1, _yaw(np.pi / 2, (2.5, -1.75, 0)), body, True)
    _, (label,) = _render_people(renderer, [edge], T_world_camera)
    v = label.keypoints[:, 2]
    assert np.any(v == 0) and np.any(v == 2)
    assert np.all(label.keypoints[v == 0, :2] == 0)
    # an unlabelled person keeps box and area but no keypoints
    _, (label,) = _render_people(renderer, [ppl.PlacedPerson(1, away.T_world_person, body, False)], T_world_camera)
    assert label.num_keypoints == 0 and label.area > 100 and label.box is not None


def test_people_task_labels_agree_with_segmentation_and_depth():
    task = ppl.PeopleTask(W, H, config=ppl.PeopleConfig(unlabelled_fraction=0.3, mesh_detail=8))
    seen = {0: 0, 1: 0, 2: 0}
    unlabelled = 0
    for index in range(6):
        frame = task.generate(frame_rng(7, index), index)
        assert frame.rgb.shape == (H, W, 3) and frame.skeleton_joint_names[-1] == "neck"
        assert frame.extra["people_placed"] >= len(frame.skeletons)
        for person, area in zip(frame.skeletons, frame.extra["person_area"]):
            mask = frame.segmentation // 256 == person.person_id
            assert mask.sum() == area > 0
            x0, y0, x1, y1 = person.box
            rows, cols = np.nonzero(mask)
            assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max(), rows.max())
            unlabelled += int(not np.any(person.visibility))
            for (x, y), v in zip(person.xy[:17], person.visibility[:17]):
                seen[int(v)] += 1
                if v == 0:
                    assert x == 0 and y == 0
                    continue
                assert -0.5 <= x < W - 0.5 and -0.5 <= y < H - 0.5
                r, c = int(round(y)), int(round(x))
                window = mask[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
                if v == 2:
                    assert window.any()
                    assert x0 - 1.5 <= x <= x1 + 1.5 and y0 - 1.5 <= y <= y1 + 1.5
            # the neck is the shoulders' midpoint
            ls, rs = sk.COCO_KEYPOINTS.index("left_shoulder"), sk.COCO_KEYPOINTS.index("right_shoulder")
            if person.visibility[ls] and person.visibility[rs]:
                np.testing.assert_allclose(person.xy[17], (person.xy[ls] + person.xy[rs]) / 2)
        assert set(frame.objects) == {f"person_{i}" for i in range(1, frame.extra["people_placed"] + 1)}
    assert seen[1] > 0 and seen[2] > seen[1]  # crowds occlude, but most joints are seen
    assert unlabelled > 0
