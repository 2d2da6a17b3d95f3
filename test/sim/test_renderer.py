"""The GL renderer against the independent NumPy rasteriser, and the OpenCV pixel convention."""
import numpy as np
import pytest

from ros2_pose.sim import mesh
from ros2_pose.sim.rasterizer_numpy import rasterize
from ros2_pose.sim.renderer import Renderer, RendererUnavailableError
from ros2_pose.sim.scene import Light, Material, Scene, SceneObject, segment_id, split_segment_id

W, H = 160, 120
K = np.array([[150.0, 0, 79.5], [0, 140.0, 61.25], [0, 0, 1]])


def _pose(x, y, z, rotation=None):
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    if rotation is not None:
        m[:3, :3] = rotation
    return m


def _scene():
    tex = np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8)
    floor_rotation = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)  # plane normal -> -y (up)
    tilt = np.array([[np.cos(0.5), 0, np.sin(0.5)], [0, 1, 0], [-np.sin(0.5), 0, np.cos(0.5)]])
    objects = [
        SceneObject("box", mesh.box((0.5, 0.4, 0.3)), _pose(0, 0, 2, tilt),
                    Material((0.8, 0.2, 0.2), specular=0.8, shininess=20), segment_id(1, 0)),
        SceneObject("bar", mesh.cylinder(0.1, 0.6), _pose(0.3, 0.1, 1.6), Material((0.2, 0.8, 0.2)),
                    segment_id(1, 1)),
        SceneObject("capsule", mesh.capsule(0.1, 0.2), _pose(-0.4, -0.1, 1.5), Material((0.2, 0.2, 0.8)),
                    segment_id(2, 0)),
        # a floor that passes under the camera: exercises near-plane clipping
        SceneObject("floor", mesh.plane(20, 20, 2), _pose(0, 0.5, 2, floor_rotation),
                    Material((0.7, 0.7, 0.7), texture=tex), segment_id(3, 0)),
    ]
    return Scene(objects, [Light((0.3, 1.0, 0.5))], (0.1, 0.2, 0.3))


@pytest.fixture(scope="module")
def gl_renderer():
    try:
        return Renderer(W, H, "egl")
    except RendererUnavailableError as exc:
        pytest.skip(f"no EGL here: {exc}")


def test_gl_matches_numpy_oracle(gl_renderer):
    scene = _scene()
    gl = gl_renderer.render(scene, K, np.eye(4))
    ref = rasterize(scene, K, np.eye(4), W, H)
    ids = set(np.unique(ref.segmentation)) | set(np.unique(gl.segmentation))
    assert ids == {0, 256, 257, 512, 768}
    for sid in ids:
        a, b = gl.segmentation == sid, ref.segmentation == sid
        assert (a & b).sum() / (a | b).sum() > 0.98, sid
    both = (gl.depth > 0) & (ref.depth > 0)
    assert np.median(np.abs(gl.depth - ref.depth)[both]) < 1e-3
    assert ((gl.depth > 0) == (gl.segmentation > 0)).all()
    # same shading model: untextured colours agree (texture filtering differs: mipmaps vs nearest)
    untextured = (gl.segmentation == ref.segmentation) & np.isin(gl.segmentation, [256, 257, 512])
    assert np.abs(gl.rgb.astype(int) - ref.rgb)[untextured].mean() < 3
    # background colour where nothing was drawn
    assert (gl.rgb[gl.depth == 0] == np.floor(np.array([0.1, 0.2, 0.3]) * 255 + 0.5)).all()


def test_projection_uses_opencv_pixel_centres(gl_renderer):
    """A tiny square centred on the ray through pixel (u, v) must cover exactly pixel (u, v)."""
    for u, v in [(10, 20), (80, 60), (151, 3)]:
        z = 3.0
        ray = np.linalg.solve(K, [u, v, 1.0]) * z
        # 0.5 px wide: covers only the pixel whose centre is at (u, v)
        square = mesh.box((0.5 * z / K[0, 0], 0.5 * z / K[1, 1], 0.01))
        scene = Scene([SceneObject("dot", square, _pose(*ray), Material(), segment_id(1))], [Light()])
        for frame in (gl_renderer.render(scene, K, np.eye(4)), rasterize(scene, K, np.eye(4), W, H)):
            rows, cols = np.nonzero(frame.segmentation)
            assert list(zip(cols, rows)) == [(u, v)]
            assert frame.depth[v, u] == pytest.approx(z - 0.005, abs=1e-4)


def test_known_points_land_on_their_object(gl_renderer):
    scene = _scene()
    T_world_camera = _pose(0.05, -0.1, -0.2)
    frame = gl_renderer.render(scene, K, T_world_camera)
    box = scene.objects[0]
    corners = np.array([[x, y, -0.15] for x in (-0.2, 0.2) for y in (-0.15, 0.15)])  # box face points
    M = np.linalg.inv(T_world_camera) @ box.world_matrix()
    cam = corners @ M[:3, :3].T + M[:3, 3]
    uv = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
    for (u, v), p in zip(uv, cam):
        px = np.round([u, v]).astype(int)
        obj, _ = split_segment_id(frame.segmentation[px[1], px[0]])
        if frame.depth[px[1], px[0]] >= p[2] - 0.01:  # not hidden by something nearer
            assert obj == 1


def test_egl_missing_gives_clear_message_and_auto_falls_back(monkeypatch):
    import ros2_pose.sim.renderer as renderer

    def no_egl():
        raise RendererUnavailableError("could not create an EGL OpenGL 3.3 context (test)")

    monkeypatch.setattr(renderer, "_egl_context", no_egl)
    with pytest.raises(RendererUnavailableError, match="EGL"):
        Renderer(32, 24, "egl")
    with pytest.warns(RuntimeWarning, match="falling back to the NumPy rasteriser"):
        r = Renderer(32, 24, "auto")
    assert r.backend == "numpy" and "EGL" in r.fallback_reason
    frame = r.render(Scene([SceneObject("b", mesh.box((1, 1, 1)), _pose(0, 0, 3), Material(), 256)]),
                     np.array([[30.0, 0, 15.5], [0, 30, 11.5], [0, 0, 1]]), np.eye(4))
    assert frame.segmentation[12, 16] == 256 and frame.depth[12, 16] == pytest.approx(2.5, abs=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="backend"):
        Renderer(10, 10, "vulkan")
    with pytest.raises(mesh.MeshError):
        mesh.Mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]), np.zeros((3, 3)))
    from ros2_pose.sim.scene import SceneError
    with pytest.raises(SceneError):
        segment_id(0, 1)
    with pytest.raises(SceneError):
        Material(base_color=(1, 2))


@pytest.mark.parametrize("light_count", [0, 1, 3])
def test_every_light_count_matches_the_oracle(gl_renderer, light_count):
    """Each light count has its own compiled program; all must shade like the NumPy oracle."""
    directions = [(0.3, 1.0, 0.5), (-0.5, 0.4, 1.0), (0.1, -0.2, 1.0)][:light_count]
    base = _scene()
    scene = Scene(base.objects, [Light(d, intensity=0.6, ambient=0.1) for d in directions], base.background)
    gl = gl_renderer.render(scene, K, np.eye(4))
    ref = rasterize(scene, K, np.eye(4), W, H)
    untextured = (gl.segmentation == ref.segmentation) & np.isin(gl.segmentation, [256, 257, 512])
    assert untextured.sum() > 500
    assert np.abs(gl.rgb.astype(int) - ref.rgb)[untextured].mean() < 3


def test_reused_textures_and_buffers_give_the_same_frame_as_a_fresh_renderer(gl_renderer):
    """Pooled textures and the vertex buffer are rewritten per frame: a frame must not depend on
    what was rendered before it."""
    rng = np.random.default_rng(5)

    def textured_scene(seed):
        r = np.random.default_rng(seed)
        objects = [SceneObject(f"o{i}", mesh.box(r.uniform(0.2, 0.6, 3)), _pose(*r.uniform(-0.6, 0.6, 2), 2.5),
                               Material(r.uniform(0.3, 1, 3), texture=r.integers(0, 255, (16, 16, 3), dtype=np.uint8)),
                               segment_id(i + 1)) for i in range(int(r.integers(1, 4)))]
        return Scene(objects, [Light()], (0.2, 0.2, 0.2))

    scenes = [textured_scene(int(s)) for s in rng.integers(0, 1000, 4)]
    after_others = [gl_renderer.render(s, K, np.eye(4)) for s in scenes]
    with Renderer(W, H, "egl") as fresh:
        for scene, frame in zip(scenes[::-1], after_others[::-1]):
            alone = fresh.render(scene, K, np.eye(4))
            assert np.array_equal(alone.rgb, frame.rgb) and np.array_equal(alone.segmentation, frame.segmentation)


def test_coverage_counts_the_drawn_pixels(gl_renderer):
    scene = _scene()
    T_world_camera = _pose(0.05, -0.1, -0.2)
    frame = gl_renderer.render(scene, K, T_world_camera)
    assert gl_renderer.coverage(scene, K, T_world_camera) == int((frame.depth > 0).sum())
    objects_only = Scene([o for o in scene.objects if o.name != "floor"], scene.lights)
    covered = gl_renderer.coverage(objects_only, K, T_world_camera)
    assert covered == int((gl_renderer.render(objects_only, K, T_world_camera).depth > 0).sum())
    oracle = Renderer(W, H, "numpy")
    assert oracle.coverage(objects_only, K, T_world_camera) == int(
        (oracle.render(objects_only, K, T_world_camera).depth > 0).sum())
    assert abs(covered - oracle.coverage(objects_only, K, T_world_camera)) < 0.02 * covered
    assert 0 < covered < W * H


def test_sensor_noise_is_gaussian_in_every_channel_and_reproducible():
    from ros2_pose.sim.randomization import gaussian_noise

    noise = gaussian_noise(np.random.default_rng(1), (120, 160, 3), 4.0)
    assert noise.dtype == np.float32 and noise.shape == (120, 160, 3)
    assert np.allclose(noise.reshape(-1, 3).std(axis=0), 4.0, rtol=0.03)  # not just channel 0
    assert np.allclose(noise.reshape(-1, 3).mean(axis=0), 0.0, atol=0.1)
    assert np.array_equal(noise, gaussian_noise(np.random.default_rng(1), (120, 160, 3), 4.0))
    assert not np.array_equal(noise, gaussian_noise(np.random.default_rng(2), (120, 160, 3), 4.0))
