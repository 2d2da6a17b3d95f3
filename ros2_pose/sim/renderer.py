"""Headless renderer: moderngl on Mesa EGL, with the NumPy rasteriser as the fallback.

One draw pass writes three render targets: colour (RGBA8, Phong shading with specular
highlights), metric depth (R32F camera z in metres) and segmentation (R32UI segment id); the
background image is composited where nothing was drawn. GL buffers and the context persist per
process, so a generator calls `render` once per frame without re-creating anything.

Projection (derived, and tested against the NumPy oracle): with camera coordinates in the OpenCV
optical frame (x right, y down, z forward) and pixel centres at integer coordinates,
    u = fx x/z + s y/z + cx,   v = fy y/z + cy.
GL rasterises pixel column i over window x in [i, i+1), so its centre is x_w = i + 0.5 = u + 0.5:
    x_ndc = 2 (u + 0.5) / W - 1  =>  clip_x = (2 fx / W) x + (2 s / W) y + (2 (cx + 0.5) / W - 1) z
and the same with (fy, cy + 0.5, H) for y, with clip_w = z. We map image row v to GL window row
y_w = v + 0.5 (no flip), so `glReadPixels`, which returns the bottom window row first, returns image
row 0 first. The flip mirrors triangle winding, which does not matter: culling is off and the
shader lights both sides.
"""
from __future__ import annotations

import os
import struct
import warnings

import numpy as np

from ros2_pose.sim.rasterizer_numpy import DEFAULT_NEAR, lights_in_camera, rasterize
from ros2_pose.sim.scene import RenderedFrame, Scene, camera_matrix, pose_matrix

BACKENDS = ("auto", "egl", "numpy")
MAX_LIGHTS = 8
DEFAULT_FAR = 200.0


class RendererUnavailableError(RuntimeError):
    """The requested rendering backend cannot run on this machine."""


def opengl_projection(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """4x4 matrix from OpenCV camera coordinates to GL clip coordinates (see module docstring)."""
    fx, fy, s, cx, cy = K[0, 0], K[1, 1], K[0, 1], K[0, 2], K[1, 2]
    P = np.zeros((4, 4))
    P[0] = (2 * fx / width, 2 * s / width, 2 * (cx + 0.5) / width - 1, 0)
    P[1] = (0, 2 * fy / height, 2 * (cy + 0.5) / height - 1, 0)
    P[2] = (0, 0, (far + near) / (far - near), -2 * far * near / (far - near))
    P[3] = (0, 0, 1, 0)
    return P


_VERTEX_SHADER = """
#version 330
uniform mat4 object_to_camera;
uniform mat3 normal_to_camera;
uniform mat4 projection;
in vec3 in_position;
in vec3 in_normal;
in vec2 in_uv;
out vec3 v_position;
out vec3 v_normal;
out vec2 v_uv;
void main() {
    vec4 p = object_to_camera * vec4(in_position, 1.0);
    v_position = p.xyz;
    v_normal = normal_to_camera * in_normal;
    v_uv = in_uv;
    gl_Position = projection * p;
}
"""

# The same Phong model as rasterizer_numpy.shade_phong.
_FRAGMENT_SHADER = """
#version 330
uniform vec3 base_color;
uniform float specular;
uniform float shininess;
uniform bool use_texture;
uniform sampler2D albedo_texture;
uniform int light_count;
uniform vec3 light_direction[%(max_lights)d];
uniform vec3 light_color[%(max_lights)d];
uniform vec3 ambient;
uniform uint segment;
in vec3 v_position;
in vec3 v_normal;
in vec2 v_uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out float out_depth;
layout(location = 2) out uint out_segment;
void main() {
    vec3 n = normalize(v_normal);
    vec3 view = normalize(-v_position);
    if (dot(n, view) < 0.0) n = -n;
    vec3 albedo = base_color;
    if (use_texture) albedo *= texture(albedo_texture, v_uv).rgb;
    vec3 color = albedo * ambient;
    for (int i = 0; i < light_count; ++i) {
        float ndl = max(dot(n, -light_direction[i]), 0.0);
        color += albedo * light_color[i] * ndl;
        vec3 r = reflect(light_direction[i], n);
        if (ndl > 0.0) color += specular * pow(max(dot(r, view), 0.0), shininess) * light_color[i];
    }
    out_color = vec4(clamp(color, 0.0, 1.0), 1.0);
    out_depth = v_position.z;
    out_segment = segment;
}
""" % {"max_lights": MAX_LIGHTS}

_FLOATS_PER_VERTEX = 8  # position 3, normal 3, uv 2

# One GL context per process (creating one costs ~1 s); worker processes each make their own.
_CONTEXT = {"pid": None, "ctx": None}


def _egl_context():
    if _CONTEXT["pid"] != os.getpid():
        # llvmpipe spawns one thread per core by default; worker processes share 2 cores here.
        os.environ.setdefault("LP_NUM_THREADS", "1")
        try:
            import moderngl
        except ImportError as exc:
            raise RendererUnavailableError(f"moderngl is not importable ({exc})") from exc
        try:
            ctx = moderngl.create_context(standalone=True, backend="egl", require=330)
        except Exception as exc:  # moderngl raises bare Exception for missing EGL/drivers
            raise RendererUnavailableError(
                f"could not create an EGL OpenGL 3.3 context ({exc}); install Mesa EGL "
                "(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) or use backend='numpy'") from exc
        _CONTEXT.update(pid=os.getpid(), ctx=ctx)
    return _CONTEXT["ctx"]


class Renderer:
    """Renders `Scene`s to RGB + metric depth + segmentation at a fixed size.

    backend: "egl" (moderngl, fails with RendererUnavailableError if EGL is missing), "numpy"
    (the oracle rasteriser, slow) or "auto" (EGL, else NumPy with a warning saying why).
    `self.backend` is the backend in use, `self.fallback_reason` why auto fell back (or None).
    """

    def __init__(self, width: int, height: int, backend: str = "auto",
                 near: float = DEFAULT_NEAR, far: float = DEFAULT_FAR):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
                and width > 0 and height > 0):
            raise ValueError(f"width and height must be positive integers, got {width}x{height}")
        if not 0 < near < far:
            raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
        self.width, self.height, self.near, self.far = int(width), int(height), near, far
        self.fallback_reason: str | None = None
        self._gl = None
        if backend in ("auto", "egl"):
            try:
                self._gl = _GLResources(_egl_context(), self.width, self.height)
                self.backend = "egl"
            except RendererUnavailableError as exc:
                if backend == "egl":
                    raise
                self.fallback_reason = str(exc)
                warnings.warn(f"EGL rendering unavailable, falling back to the NumPy rasteriser "
                              f"(slow): {exc}", RuntimeWarning, stacklevel=2)
                self.backend = "numpy"
        else:
            self.backend = "numpy"

    def render(self, scene: Scene, camera, T_world_camera) -> RenderedFrame:
        """Render `scene` from camera pose `T_world_camera` (optical frame) with intrinsics
        `camera` (a CameraModel or a 3x3 K; lens distortion is not rendered)."""
        K = camera_matrix(camera)
        if self._gl is None:
            return rasterize(scene, K, T_world_camera, self.width, self.height, self.near, self.far)
        return self._gl.render(scene, K, pose_matrix(T_world_camera), self.near, self.far)

    def close(self) -> None:
        if self._gl is not None:
            self._gl.release()
            self._gl = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _GLResources:
    """Program, framebuffer and a growing vertex buffer, reused across frames."""

    def __init__(self, ctx, width: int, height: int):
        import moderngl

        self._moderngl = moderngl
        self.ctx, self.width, self.height = ctx, width, height
        self.program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.color = ctx.renderbuffer((width, height), 4, dtype="f1")
        self.depth_metres = ctx.renderbuffer((width, height), 1, dtype="f4")
        self.segments = ctx.renderbuffer((width, height), 1, dtype="u4")
        self.zbuffer = ctx.depth_renderbuffer((width, height))
        self.fbo = ctx.framebuffer([self.color, self.depth_metres, self.segments], self.zbuffer)
        self.vbo = None
        self.vao = None
        self.capacity = 0

    def _upload(self, data: np.ndarray) -> None:
        nbytes = data.nbytes
        if nbytes > self.capacity:
            if self.vbo is not None:
                self.vao.release()
                self.vbo.release()
            self.capacity = max(nbytes, 2 * self.capacity, 1 << 16)
            self.vbo = self.ctx.buffer(reserve=self.capacity, dynamic=True)
            self.vao = self.ctx.vertex_array(
                self.program, [(self.vbo, "3f 3f 2f", "in_position", "in_normal", "in_uv")])
        self.vbo.write(data.tobytes())

    def render(self, scene: Scene, K, T_world_camera, near, far) -> RenderedFrame:
        mgl = self._moderngl
        T_camera_world = np.linalg.inv(T_world_camera)
        # Interleave all objects' triangles (unindexed) into one buffer upload.
        chunks, ranges, first = [], [], 0
        for obj in scene.objects:
            m = obj.mesh
            f = m.faces.reshape(-1)
            chunk = np.concatenate([m.vertices[f], m.normals[f], m.uvs_or_zeros()[f]], axis=1)
            chunks.append(chunk)
            ranges.append((first, len(f)))
            first += len(f)
        if chunks:
            self._upload(np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32))

        ctx, prog = self.ctx, self.program
        self.fbo.use()
        ctx.viewport = (0, 0, self.width, self.height)
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        prog["projection"].write(opengl_projection(K, self.width, self.height, near, far).T.astype("f4").tobytes())
        dirs, cols, ambient = lights_in_camera(scene, T_camera_world[:3, :3])
        if len(dirs) > MAX_LIGHTS:
            raise ValueError(f"at most {MAX_LIGHTS} lights are supported, scene has {len(dirs)}")
        prog["light_count"].value = len(dirs)
        if len(dirs):
            pad = np.zeros((MAX_LIGHTS, 3), np.float32)
            pad[:len(dirs)] = dirs
            prog["light_direction"].write(pad.tobytes())
            pad = np.zeros((MAX_LIGHTS, 3), np.float32)
            pad[:len(cols)] = cols
            prog["light_color"].write(pad.tobytes())
        prog["ambient"].value = tuple(float(a) for a in ambient)
        textures = []
        try:
            for obj, (start, count) in zip(scene.objects, ranges):
                M = T_camera_world @ obj.world_matrix()
                prog["object_to_camera"].write(M.T.astype("f4").tobytes())
                prog["normal_to_camera"].write(np.linalg.inv(M[:3, :3]).astype("f4").tobytes())  # (M^-T)^T
                mat = obj.material
                prog["base_color"].value = tuple(float(c) for c in mat.base_color)
                prog["specular"].value = float(mat.specular)
                prog["shininess"].value = float(mat.shininess)
                prog["segment"].write(struct.pack("I", int(obj.segment_id)))
                use_texture = mat.texture is not None
                prog["use_texture"].value = use_texture
                if use_texture:
                    tex = ctx.texture(mat.texture.shape[1::-1], 3, mat.texture.tobytes(), alignment=1)
                    # moderngl's default max level (1000) makes llvmpipe spend ~10 ms per texture
                    tex.build_mipmaps(0, int(np.log2(max(mat.texture.shape[:2]))))
                    tex.repeat_x = tex.repeat_y = True
                    textures.append(tex)
                    tex.use(location=0)
                    prog["albedo_texture"].value = 0
                self.vao.render(mgl.TRIANGLES, vertices=count, first=start)
            rgb = np.frombuffer(self.fbo.read(components=3, attachment=0, alignment=1), np.uint8)
            depth = np.frombuffer(self.fbo.read(components=1, attachment=1, dtype="f4"), np.float32)
            seg = np.frombuffer(self.fbo.read(components=1, attachment=2, dtype="u4"), np.uint32)
        finally:
            for tex in textures:
                tex.release()
        h, w = self.height, self.width
        depth = depth.reshape(h, w)
        drawn = depth > 0
        out = np.where(drawn[:, :, None], rgb.reshape(h, w, 3), scene.background_image(w, h))
        return RenderedFrame(out, np.where(drawn, depth, np.float32(0)), seg.reshape(h, w).astype(np.uint16))

    def release(self) -> None:
        for res in (self.vao, self.vbo, self.fbo, self.color, self.depth_metres, self.segments,
                    self.zbuffer, self.program):
            if res is not None:
                res.release()
