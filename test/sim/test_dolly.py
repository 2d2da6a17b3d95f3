"""Dolly geometry, wheel part segmentation and scene ground truth."""
import numpy as np
import pytest

from ros2_pose.sim.dolly import (DOLLY_OBJECT, FRAME_PART, WHEEL_PART, DollyGeometry, DollyTask,
                                 dolly_meshes)
from ros2_pose.sim.tasks import frame_rng
from ros2_pose.sim.scene import segment_id


def test_dolly_mesh_sits_on_the_floor_with_its_origin_centred():
    g = DollyGeometry(length=1.0, width=0.6, height=0.2)
    parts = dolly_meshes(g)
    everything = np.concatenate([m.vertices for m in parts.values()])
    assert everything[:, 2].min() == pytest.approx(0.0, abs=1e-6)  # wheels touch the floor
    frame_part = parts[FRAME_PART].vertices
    # The frame's top is at `height` except the push plate standing on the rear bar.
    assert frame_part[frame_part[:, 0] > -0.45, 2].max() == pytest.approx(0.2, abs=1e-6)
    corners = g.corners()
    assert np.allclose(everything.min(axis=0), corners.min(axis=0), atol=1e-6)
    assert np.allclose(everything.max(axis=0), corners.max(axis=0), atol=1e-6)
    assert np.allclose(everything[:, 1].min(), -0.3) and np.allclose(everything[:, 1].max(), 0.3)
    # wheels are entirely below the frame bars
    assert parts[WHEEL_PART].vertices[:, 2].max() < g.height - g.bar + 1e-6


def test_dolly_is_not_symmetric_under_a_half_turn():
    # A half turn about z must not map the dolly onto itself, or its yaw would be ambiguous.
    vertices = np.concatenate([m.vertices for m in dolly_meshes(DollyGeometry()).values()])
    turned = vertices * [-1, -1, 1]
    extent = lambda v: np.concatenate([v.min(axis=0), v.max(axis=0)])
    assert np.abs(extent(turned) - extent(vertices)).max() > 0.1


@pytest.fixture(scope="module")
def frames():
    task = DollyTask(160, 120)
    return [task.generate(frame_rng(3, i), i) for i in range(6)]


def test_wheels_are_their_own_segment(frames):
    wheel_pixels = sum(int((f.segmentation == segment_id(DOLLY_OBJECT, WHEEL_PART)).sum()) for f in frames)
    frame_pixels = sum(int((f.segmentation == segment_id(DOLLY_OBJECT, FRAME_PART)).sum()) for f in frames)
    assert wheel_pixels > 0 and frame_pixels > wheel_pixels


def test_ground_truth_is_consistent(frames):
    for f in frames:
        T = f.tracked_pose
        assert np.allclose((f.T_world_camera.inverse() @ f.objects["dolly"]).as_matrix(), T.as_matrix())
        assert 0.3 * 0.99 <= f.extra["distance"] <= 6.0 * 1.01 + 0.3
        assert 0.0 <= f.extra["visible_fraction"] <= 1.0 + 1e-9
        dolly = (f.segmentation // 256) == DOLLY_OBJECT
        if dolly.any():
            x0, y0, x1, y1 = f.extra["box_visible"]
            rows, cols = np.nonzero(dolly)
            assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max(), rows.max())
            assert f.detections[0].class_id == "dolly"
            # the dolly origin projects inside the full box when it is in front of the camera
            fx0, fy0, fx1, fy1 = f.extra["box_full"]
            assert fx0 <= x0 + 1 and fy0 <= y0 + 1 and fx1 >= x1 - 1 and fy1 >= y1 - 1
        assert ((f.depth > 0) == (f.segmentation > 0)).all()


def test_out_of_distribution_preset_is_outside_training_ranges():
    from ros2_pose.sim.randomization import DomainRandomization

    train, ood = DomainRandomization(), DomainRandomization.out_of_distribution()
    for name in ("light_intensity", "light_ambient", "specular", "shininess", "background_value", "noise_sigma"):
        lo, hi = getattr(train, name)
        olo, ohi = getattr(ood, name)
        assert ohi < lo or olo > hi, name
