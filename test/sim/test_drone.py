"""Drone models, keypoints and their visibility."""
import numpy as np
import pytest

from ros2_pose.geometry.camera import CameraModel
from ros2_pose.geometry.transforms import RigidTransform
from ros2_pose.sim.drone import (KEYPOINT_NAMES, MODELS, OCCLUDED, VISIBLE, DroneTask,
                                 keypoint_visibility)
from ros2_pose.sim.renderer import Renderer
from ros2_pose.sim.scene import Light, Material, Scene, SceneObject, segment_id
from ros2_pose.sim.tasks import frame_rng


@pytest.mark.parametrize("name,size", [("drone_large", (0.322, 0.242, 0.084)), ("drone_small", (0.098, 0.0925, 0.041))])
def test_models_have_real_sizes_and_keypoints_on_the_body(name, size):
    model = MODELS[name]
    vertices = np.concatenate([m.vertices for m in model.meshes().values()])
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    assert np.allclose(extent, size, rtol=0.12)
    kp = model.keypoints()
    assert kp.shape == (len(KEYPOINT_NAMES), 3)
    # each keypoint lies on (within 2 mm of) a mesh vertex or face: check distance to nearest vertex
    # relative to size, and that it lies inside the bounding box
    assert np.all(kp >= vertices.min(axis=0) - 1e-6) and np.all(kp <= vertices.max(axis=0) + 1e-6)


def _top_down_view(renderer, model, from_above: bool):
    """The drone 1 m away, seen from straight above or straight below."""
    K = np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]])
    camera = CameraModel(K, np.zeros(5), 160, 120)
    # optical z points down (from above) or up (from below)
    R = np.diag([1.0, -1.0, -1.0]) if from_above else np.eye(3)
    T_world_camera = RigidTransform(R, np.array([0, 0, 1.0 if from_above else -1.0]))
    objects = [SceneObject(f"p{p}", m, RigidTransform.identity(), Material(), segment_id(1, p))
               for p, m in model.meshes().items()]
    frame = renderer.render(Scene(objects, [Light()]), camera, T_world_camera)
    points = T_world_camera.inverse().apply(model.keypoints())
    return frame, keypoint_visibility(camera, points, frame.depth)


def test_self_occlusion_top_and_bottom():
    renderer = Renderer(160, 120)
    model = MODELS["drone_large"]
    top = KEYPOINT_NAMES.index("body_top")
    gear = KEYPOINT_NAMES.index("gear_left")
    hubs = [KEYPOINT_NAMES.index(n) for n in KEYPOINT_NAMES if n.startswith("rotor")]
    frame, (xy, vis) = _top_down_view(renderer, model, from_above=True)
    assert vis[top] == VISIBLE and all(vis[h] == VISIBLE for h in hubs)
    assert vis[gear] == OCCLUDED  # under the body
    # visible keypoints land on the drone's pixels
    for (x, y), v in zip(xy, vis):
        if v == VISIBLE:
            patch = frame.segmentation[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2]
            assert (patch // 256 == 1).any()
    _, (_, vis_below) = _top_down_view(renderer, model, from_above=False)
    assert vis_below[top] == OCCLUDED and vis_below[gear] == VISIBLE


def test_drone_frames_label_keypoints_sanely():
    task = DroneTask(160, 120)
    small_boxes = []
    for i in range(6):
        f = task.generate(frame_rng(5, i), i)
        assert f.keypoints is not None
        for spec in f.keypoints:
            inside = (spec.xy[:, 0] >= -0.5) & (spec.xy[:, 0] < 159.5) & (spec.xy[:, 1] >= -0.5) & (spec.xy[:, 1] < 119.5)
            assert np.all(spec.visibility[~inside] == 0)
            assert spec.class_id in MODELS
            x0, y0, x1, y1 = spec.box
            assert x0 <= x1 and y0 <= y1
            small_boxes.append(max(x1 - x0, y1 - y0))
        assert np.isfinite(f.tracked_pose.translation).all()
    assert min(small_boxes) < 20  # far drones cover only a few pixels


def test_drones_always_fly_above_the_ground_plane():
    from ros2_pose.sim.drone import MIN_FLIGHT_HEIGHT_M

    task = DroneTask(160, 120)
    heights = []
    for i in range(200):  # scene building only: cheap, and enough draws to hit downward rays
        _, _, _, drones = task.build_scene(frame_rng(11, i))
        heights += [T.translation[2] for _, T in drones]
    assert min(heights) >= MIN_FLIGHT_HEIGHT_M - 1e-9
