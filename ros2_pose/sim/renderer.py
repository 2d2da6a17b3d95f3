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

# The same Phong model as rasterizer_numpy.shade_phong. The light count is a compile-time constant
# (one program per count, see `_fragment_shader`): llvmpipe runs a loop bounded by a uniform about
# twice as slowly as the unrolled one, and fragment shading is most of the render time.
_FRAGMENT_SHADER_TEMPLATE = """
#version 330
uniform vec3 base_color;
uniform float specular;
uniform float shininess;
uniform bool use_texture;
uniform sampler2D albedo_texture;
const int LIGHT_COUNT = %(light_count)d;
uniform vec3 light_direction[%(array_size)d];
uniform vec3 light_color[%(array_size)d];
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
    for (int i = 0; i < LIGHT_COUNT; ++i) {
        float ndl = max(dot(n, -light_direction[i]), 0.0);
        color += albedo * light_color[i] * ndl;
        vec3 r = reflect(light_direction[i], n);
        if (ndl > 0.0) color += specular * pow(max(dot(r, view), 0.0), shininess) * light_color[i];
    }
    out_color = vec4(clamp(color, 0.0, 1.0), 1.0);
    out_depth = v_position.z;
    out_segment = segment;
}
"""


def _fragment_shader(light_count: int) -> str:
    return _FRAGMENT_SHADER_TEMPLATE % {"light_count": light_count, "array_size": max(light_count, 1)}

# Coverage pass (Renderer.coverage): only whether a pixel is drawn matters, so no shading at all.
_COVERAGE_FRAGMENT_SHADER = """
#version 330
in vec3 v_position;
layout(location = 1) out float out_depth;
void main() {
    out_depth = v_position.z;
}
"""
COVERAGE = "coverage"  # key of the coverage program in _GLResources.programs

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

    def coverage(self, scene: Scene, camera, T_world_camera) -> int:
        """How many pixels `scene`'s objects cover from this camera (what `render(...).depth > 0`
        counts), without the colour readback and background compositing of `render`."""
        K = camera_matrix(camera)
        if self._gl is None:
            frame = rasterize(scene, K, T_world_camera, self.width, self.height, self.near, self.far)
            return int(np.count_nonzero(frame.depth > 0))
        return self._gl.coverage(scene, K, pose_matrix(T_world_camera), self.near, self.far)

    def close(self) -> None:
        if self._gl is not None:
            self._gl.release()
            self._gl = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_uniform(uniforms: dict, name: str, data: bytes) -> None:
    if name in uniforms:  # absent when the compiler dropped it (unused with this light count)
        uniforms[name].write(data)


def _set_uniform(uniforms: dict, name: str, value) -> None:
    if name in uniforms:
        uniforms[name].value = value


class _GLResources:
    """Programs, framebuffer and a growing vertex buffer, reused across frames."""

    def __init__(self, ctx, width: int, height: int):
        import moderngl

        self._moderngl = moderngl
        self.ctx, self.width, self.height = ctx, width, height
        self.color = ctx.renderbuffer((width, height), 4, dtype="f1")
        self.depth_metres = ctx.renderbuffer((width, height), 1, dtype="f4")
        # R16UI: segment ids are uint16 (scene.MAX_OBJECTS), so the read needs no conversion
        self.segments = ctx.renderbuffer((width, height), 1, dtype="u2")
        self.zbuffer = ctx.depth_renderbuffer((width, height))
        self.fbo = ctx.framebuffer([self.color, self.depth_metres, self.segments], self.zbuffer)
        self.vbo = None
        self.capacity = 0
        # light count (or COVERAGE) -> [program, {uniform name: uniform}, vertex array on self.vbo or None]
        self.programs: dict[int | str, list] = {}
        # This frame's textures. Created fresh each frame: rewriting pooled textures that an earlier
        # frame sampled cost llvmpipe ~4 ms per write (it waits on their last use).
        self.frame_textures: list = []

    def _program(self, light_count: int | str):
        """(program, uniforms, vertex array) for scenes with `light_count` lights (or the COVERAGE
        program), compiled on first use. Uniforms the compiler dropped (e.g. the light arrays of the
        0-light program) are left out."""
        entry = self.programs.get(light_count)
        if entry is None:
            fragment = _COVERAGE_FRAGMENT_SHADER if light_count == COVERAGE else _fragment_shader(light_count)
            program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=fragment)
            uniforms = {name: program[name] for name in (
                "projection", "light_direction", "light_color", "ambient", "object_to_camera",
                "normal_to_camera", "base_color", "specular", "shininess", "segment", "use_texture",
                "albedo_texture") if name in program}
            entry = self.programs[light_count] = [program, uniforms, None]
        if entry[2] is None and self.vbo is not None:
            # attributes the compiler dropped (the 0-light program needs no normals) are skipped
            program, layout, names = entry[0], [], []
            for name, size in (("in_position", 3), ("in_normal", 3), ("in_uv", 2)):
                layout.append(f"{size}f" if name in program else f"{size}x4")
                names += [name] if name in program else []
            entry[2] = self.ctx.vertex_array(program, [(self.vbo, " ".join(layout), *names)])
        return entry

    def _upload(self, data: np.ndarray) -> None:
        nbytes = data.nbytes
        if nbytes > self.capacity:
            if self.vbo is not None:
                for entry in self.programs.values():
                    if entry[2] is not None:
                        entry[2].release()
                        entry[2] = None
                self.vbo.release()
            self.capacity = max(nbytes, 2 * self.capacity, 1 << 16)
            self.vbo = self.ctx.buffer(reserve=self.capacity, dynamic=True)
        self.vbo.write(data)

    def _textures(self, scene: Scene) -> list:
        """One GL texture per object (None where untextured), uploaded and mipmapped before any
        draw call of the frame (creating textures between draws stalled llvmpipe ~9 ms each); the
        previous frame's textures, read back by now, are released first."""
        for tex in self.frame_textures:
            tex.release()
        self.frame_textures = []
        textures = []
        for obj in scene.objects:
            image = obj.material.texture
            if image is None:
                textures.append(None)
                continue
            size = (image.shape[1], image.shape[0])
            tex = self.ctx.texture(size, 3, image, alignment=1)
            tex.repeat_x = tex.repeat_y = True
            # moderngl's default max level (1000) makes llvmpipe spend ~10 ms per texture
            tex.build_mipmaps(0, int(np.log2(max(size))))
            self.frame_textures.append(tex)
            textures.append(tex)
        return textures

    def _draw(self, scene: Scene, K, T_world_camera, near, far, coverage_only: bool = False) -> None:
        """Upload and draw `scene` into the framebuffer (cleared first). coverage_only: depth target
        only, unshaded (the colour and segmentation targets are left undefined)."""
        mgl = self._moderngl
        T_camera_world = np.linalg.inv(T_world_camera)
        # Interleave all objects' triangles (unindexed) into one buffer upload.
        chunks, ranges, first = [], [], 0
        for obj in scene.objects:
            chunk = obj.mesh.interleaved_triangles
            chunks.append(chunk)
            ranges.append((first, len(chunk)))
            first += len(chunk)
        if chunks:
            self._upload(np.concatenate(chunks) if len(chunks) > 1 else chunks[0])
        textures = [None] * len(scene.objects) if coverage_only else self._textures(scene)

        dirs, cols, ambient = lights_in_camera(scene, T_camera_world[:3, :3])
        if len(dirs) > MAX_LIGHTS:
            raise ValueError(f"at most {MAX_LIGHTS} lights are supported, scene has {len(dirs)}")
        _, u, vao = self._program(COVERAGE if coverage_only else len(dirs))
        ctx = self.ctx
        self.fbo.use()
        ctx.viewport = (0, 0, self.width, self.height)
        ctx.enable(mgl.DEPTH_TEST)
        ctx.disable(mgl.CULL_FACE)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        projection = opengl_projection(K, self.width, self.height, near, far)
        _write_uniform(u, "projection", projection.T.astype("f4").tobytes())
        if len(dirs):
            _write_uniform(u, "light_direction", np.asarray(dirs, np.float32).tobytes())
            _write_uniform(u, "light_color", np.asarray(cols, np.float32).tobytes())
        _set_uniform(u, "ambient", tuple(float(a) for a in ambient))
        _set_uniform(u, "albedo_texture", 0)
        for obj, (start, count), tex in zip(scene.objects, ranges, textures):
            M = T_camera_world @ obj.world_matrix()
            _write_uniform(u, "object_to_camera", M.T.astype("f4").tobytes())
            normal_to_camera = np.linalg.inv(M[:3, :3])  # stored transposed: (M^-T)^T
            _write_uniform(u, "normal_to_camera", normal_to_camera.astype("f4").tobytes())
            mat = obj.material
            _set_uniform(u, "base_color", tuple(float(c) for c in mat.base_color))
            _set_uniform(u, "specular", float(mat.specular))
            _set_uniform(u, "shininess", float(mat.shininess))
            _write_uniform(u, "segment", struct.pack("I", int(obj.segment_id)))
            _set_uniform(u, "use_texture", tex is not None)
            if tex is not None:
                tex.use(location=0)
            vao.render(mgl.TRIANGLES, vertices=count, first=start)

    def render(self, scene: Scene, K, T_world_camera, near, far) -> RenderedFrame:
        import cv2

        self._draw(scene, K, T_world_camera, near, far)
        h, w = self.height, self.width
        rgb = np.empty((h, w, 3), np.uint8)
        depth = np.empty((h, w), np.float32)  # cleared to 0: background pixels already hold 0
        seg = np.empty((h, w), np.uint16)
        self.fbo.read_into(rgb, components=3, attachment=0, alignment=1)
        self.fbo.read_into(depth, components=1, attachment=1, dtype="f4")
        self.fbo.read_into(seg, components=1, attachment=2, dtype="u2")
        out = np.array(scene.background_image(w, h), dtype=np.uint8, order="C", copy=True)
        # drawn pixels have camera z > near > 0; cv2.copyTo is ~50x faster than np.where here
        cv2.copyTo(rgb, (depth > 0).view(np.uint8), out)
        return RenderedFrame(out, depth, seg)

    def coverage(self, scene: Scene, K, T_world_camera, near, far) -> int:
        """Number of pixels `scene` covers: an unshaded pass, only depth is read back."""
        self._draw(scene, K, T_world_camera, near, far, coverage_only=True)
        depth = np.empty(self.width * self.height, np.float32)
        self.fbo.read_into(depth, components=1, attachment=1, dtype="f4")
        return int(np.count_nonzero(depth > 0))

    def release(self) -> None:
        for tex in self.frame_textures:
            tex.release()
        self.frame_textures = []
        for program, _, vao in self.programs.values():
            for res in (vao, program):
                if res is not None:
                    res.release()
        self.programs.clear()
        for res in (self.vbo, self.fbo, self.color, self.depth_metres, self.segments, self.zbuffer):
            if res is not None:
                res.release()
