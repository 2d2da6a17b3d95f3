"""An independent NumPy z-buffer rasteriser: the test oracle of the GL renderer and its fallback.

Pixel centres sit at integer coordinates (OpenCV): pixel (u, v) is covered by a triangle when the
point (u, v) lies inside its projection. Depth is perspective-correct camera z (metres), shading is
the same Phong model as the GL shader (per-pixel normals, nearest-texel textures). Triangles are
clipped against the near plane so floors that pass under the camera draw correctly.

Written by hand on purpose: the oracle must share no code with the GL path, and no maintained
Python package offers a CPU rasteriser with metric depth and integer ids (pyrender/Open3D need GL).
It loops over triangles in Python, so it is meant for small images and low-poly scenes.
"""
from __future__ import annotations

import numpy as np

from ros2_pose.sim.scene import RenderedFrame, Scene, camera_matrix, pose_matrix

DEFAULT_NEAR = 0.05


def _clip_weights_against_near(z: np.ndarray, near: float) -> list[np.ndarray]:
    """Sub-triangles of a triangle with camera depths z (3,) that lie at z >= near, each as a 3x3
    matrix whose rows are barycentric weights over the original vertices (Sutherland-Hodgman)."""
    polygon = []
    corners = np.eye(3)
    for i in range(3):
        j = (i + 1) % 3
        zi, zj = z[i], z[j]
        if zi >= near:
            polygon.append(corners[i])
        if (zi >= near) != (zj >= near):
            t = (near - zi) / (zj - zi)
            polygon.append(corners[i] * (1 - t) + corners[j] * t)
    return [np.stack([polygon[0], polygon[k], polygon[k + 1]]) for k in range(1, len(polygon) - 1)]


def shade_phong(normals, positions, albedo, specular, shininess, light_dirs, light_colors, ambient):
    """Per-pixel Phong in the camera frame; the GL fragment shader computes the same thing.

    normals/positions (N,3) camera frame, albedo (N,3), specular/shininess (N,), light_dirs (L,3)
    directions the light travels (camera frame, unit), light_colors (L,3) colour*intensity,
    ambient (3,). Returns linear RGB (N,3), not clamped.
    """
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    view = -positions / np.maximum(np.linalg.norm(positions, axis=1, keepdims=True), 1e-12)
    n = np.where((np.sum(n * view, axis=1) < 0)[:, None], -n, n)  # two-sided surfaces
    colour = albedo * ambient
    for d, c in zip(light_dirs, light_colors):
        ndl = np.maximum(n @ -d, 0.0)
        colour = colour + albedo * c * ndl[:, None]
        reflected = d - 2.0 * (n @ d)[:, None] * n
        highlight = np.power(np.maximum(np.sum(reflected * view, axis=1), 0.0), shininess)
        colour = colour + (specular * highlight * (ndl > 0))[:, None] * c
    return colour


def lights_in_camera(scene: Scene, R_camera_world: np.ndarray):
    """(directions (L,3), colours*intensity (L,3), ambient (3,)) of the scene's lights, camera frame."""
    if scene.lights:
        dirs = np.stack([R_camera_world @ l.direction for l in scene.lights])
        cols = np.stack([l.color * l.intensity for l in scene.lights])
        ambient = np.sum([l.color * l.ambient for l in scene.lights], axis=0)
    else:
        dirs, cols, ambient = np.zeros((0, 3)), np.zeros((0, 3)), np.ones(3)
    return dirs, cols, ambient


def rasterize(scene: Scene, camera, T_world_camera, width: int, height: int,
              near: float = DEFAULT_NEAR, far: float = 1000.0, shade: bool = True) -> RenderedFrame:
    """Render `scene` seen from `T_world_camera` with intrinsics `camera` (CameraModel or 3x3 K).

    With shade=False the rgb is the flat base colour (faster; masks and depth are the same)."""
    K = camera_matrix(camera)
    T_camera_world = np.linalg.inv(pose_matrix(T_world_camera))
    zbuf = np.full((height, width), np.inf)
    tri_index = np.full((height, width), -1, np.int64)
    bary = np.zeros((height, width, 3))

    # Gather every triangle in camera coordinates, with where it came from.
    tri_cam, tri_obj, tri_local = [], [], []
    for k, obj in enumerate(scene.objects):
        M = T_camera_world @ obj.world_matrix()
        v = obj.mesh.vertices.astype(np.float64) @ M[:3, :3].T + M[:3, 3]
        tri_cam.append(v[obj.mesh.faces])
        tri_obj.append(np.full(len(obj.mesh.faces), k))
        tri_local.append(np.arange(len(obj.mesh.faces)))
    if tri_cam:
        tri_cam = np.concatenate(tri_cam)
        tri_obj = np.concatenate(tri_obj)
        tri_local = np.concatenate(tri_local)
    else:
        tri_cam = np.zeros((0, 3, 3))

    # Raster triangles: (source triangle, 3x3 weights over its vertices).
    raster = []
    z = tri_cam[:, :, 2]
    inside = z >= near
    for t in np.nonzero(inside.all(axis=1) & (z.min(axis=1) <= far))[0]:
        raster.append((t, None))
    for t in np.nonzero(inside.any(axis=1) & ~inside.all(axis=1))[0]:
        for w in _clip_weights_against_near(z[t], near):
            raster.append((t, w))

    fx, fy, s, cx, cy = K[0, 0], K[1, 1], K[0, 1], K[0, 2], K[1, 2]
    for t, w in raster:
        p = tri_cam[t] if w is None else w @ tri_cam[t]
        u = fx * p[:, 0] / p[:, 2] + s * p[:, 1] / p[:, 2] + cx
        vv = fy * p[:, 1] / p[:, 2] + cy
        area = (u[1] - u[0]) * (vv[2] - vv[0]) - (u[2] - u[0]) * (vv[1] - vv[0])
        if abs(area) < 1e-12:
            continue
        u0, u1 = max(int(np.ceil(u.min())), 0), min(int(np.floor(u.max())), width - 1)
        v0, v1 = max(int(np.ceil(vv.min())), 0), min(int(np.floor(vv.max())), height - 1)
        if u0 > u1 or v0 > v1:
            continue
        gu, gv = np.meshgrid(np.arange(u0, u1 + 1, dtype=np.float64), np.arange(v0, v1 + 1, dtype=np.float64))
        # Screen-space barycentrics from edge functions, normalised by the signed area.
        b0 = ((u[1] - gu) * (vv[2] - gv) - (u[2] - gu) * (vv[1] - gv)) / area
        b1 = ((u[2] - gu) * (vv[0] - gv) - (u[0] - gu) * (vv[2] - gv)) / area
        b2 = 1.0 - b0 - b1
        covered = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
        if not covered.any():
            continue
        inv_z = b0 / p[0, 2] + b1 / p[1, 2] + b2 / p[2, 2]  # 1/z is affine in screen space
        depth = 1.0 / np.where(covered, inv_z, 1.0)
        win = covered & (depth < zbuf[v0:v1 + 1, u0:u1 + 1]) & (depth <= far)
        if not win.any():
            continue
        perspective = np.stack([b0 / p[0, 2], b1 / p[1, 2], b2 / p[2, 2]], -1) * depth[..., None]
        if w is not None:
            perspective = perspective @ w  # weights over the original (unclipped) vertices
        zbuf[v0:v1 + 1, u0:u1 + 1][win] = depth[win]
        tri_index[v0:v1 + 1, u0:u1 + 1][win] = t
        bary[v0:v1 + 1, u0:u1 + 1][win] = perspective[win]

    hit = tri_index >= 0
    depth_out = np.where(hit, zbuf, 0.0).astype(np.float32)
    seg = np.zeros((height, width), np.uint16)
    rgb = scene.background_image(width, height).copy()
    if not hit.any():
        return RenderedFrame(rgb, depth_out, seg)

    pix_tri = tri_index[hit]
    pix_bary = bary[hit]
    pix_obj = tri_obj[pix_tri]
    seg_ids = np.array([o.segment_id for o in scene.objects], np.uint16)
    seg[hit] = seg_ids[pix_obj]

    albedo = np.zeros((len(pix_tri), 3))
    normals = np.zeros((len(pix_tri), 3))
    specular = np.zeros(len(pix_tri))
    shininess = np.ones(len(pix_tri))
    for k, obj in enumerate(scene.objects):
        sel = pix_obj == k
        if not sel.any():
            continue
        mat = obj.material
        faces = obj.mesh.faces[tri_local[pix_tri[sel]]]
        b = pix_bary[sel][..., None]
        albedo[sel] = mat.base_color
        specular[sel] = mat.specular
        shininess[sel] = mat.shininess
        if shade:
            M = T_camera_world @ obj.world_matrix()
            normal_matrix = np.linalg.inv(M[:3, :3]).T
            normals[sel] = np.sum(obj.mesh.normals[faces] * b, axis=1) @ normal_matrix.T
            if mat.texture is not None:
                uv = np.sum(obj.mesh.uvs_or_zeros()[faces] * b, axis=1)
                th, tw = mat.texture.shape[:2]
                col = np.floor(uv[:, 0] * tw).astype(np.int64) % tw
                row = np.floor(uv[:, 1] * th).astype(np.int64) % th
                albedo[sel] = albedo[sel] * mat.texture[row, col] / 255.0
    if shade:
        R_cw = T_camera_world[:3, :3]
        dirs, cols, ambient = lights_in_camera(scene, R_cw)
        positions = np.sum(tri_cam[pix_tri] * pix_bary[..., None], axis=1)
        colour = shade_phong(normals, positions, albedo, specular, shininess, dirs, cols, ambient)
    else:
        colour = albedo
    rgb[hit] = np.clip(colour * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return RenderedFrame(rgb, depth_out, seg)
