"""Low-poly triangle meshes for synthetic scenes: primitives, rigid transforms and merging.

A `Mesh` keeps per-vertex normals and texture coordinates. Flat faces (box sides, caps) get their
own vertices so their normals stay sharp; curved surfaces share vertices so they shade smoothly.
Hand-written because the primitives are a few lines each and trimesh/open3d would be a heavy
dependency for boxes and cylinders (Open3D does not even run on CPU here, see ENVIRONMENT.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


class MeshError(ValueError):
    """A mesh's arrays have the wrong shape, type or indices."""


@dataclass(frozen=True)
class Mesh:
    """Triangles in the object's own frame (metres).

    vertices (V,3) float32, faces (F,3) int32 indices into vertices, normals (V,3) float32 unit
    vectors, uvs (V,2) float32 texture coordinates (repeat outside [0,1]).
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray | None = None

    def __post_init__(self):
        v = np.ascontiguousarray(self.vertices, dtype=np.float32)
        f = np.ascontiguousarray(self.faces, dtype=np.int32)
        n = np.ascontiguousarray(self.normals, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != 3:
            raise MeshError(f"vertices must be (V,3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3:
            raise MeshError(f"faces must be (F,3), got {f.shape}")
        if n.shape != v.shape:
            raise MeshError(f"normals must match vertices {v.shape}, got {n.shape}")
        if f.size and (f.min() < 0 or f.max() >= len(v)):
            raise MeshError(f"face indices must lie in [0, {len(v)}), got [{f.min()}, {f.max()}]")
        if not np.all(np.isfinite(v)):
            raise MeshError("vertices contain NaN or inf")
        uv = None
        if self.uvs is not None:
            uv = np.ascontiguousarray(self.uvs, dtype=np.float32)
            if uv.shape != (len(v), 2):
                raise MeshError(f"uvs must be ({len(v)},2), got {uv.shape}")
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "faces", f)
        object.__setattr__(self, "normals", n)
        object.__setattr__(self, "uvs", uv)

    @property
    def triangle_count(self) -> int:
        return len(self.faces)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min xyz, max xyz) of the vertices."""
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    def uvs_or_zeros(self) -> np.ndarray:
        return self.uvs if self.uvs is not None else np.zeros((len(self.vertices), 2), np.float32)

    @cached_property
    def interleaved_triangles(self) -> np.ndarray:
        """(3F, 8) float32 rows of position, normal, uv per triangle corner (unindexed), the layout
        the GL renderer uploads; computed once per mesh (meshes are immutable)."""
        f = self.faces.reshape(-1)
        rows = np.concatenate([self.vertices[f], self.normals[f], self.uvs_or_zeros()[f]], axis=1)
        rows.flags.writeable = False
        return rows


def as_matrix(transform) -> np.ndarray:
    """A 4x4 float64 matrix from a 4x4 array or anything with `rotation` and `translation`."""
    if hasattr(transform, "rotation") and hasattr(transform, "translation"):
        m = np.eye(4)
        m[:3, :3] = np.asarray(transform.rotation, dtype=np.float64)
        m[:3, 3] = np.asarray(transform.translation, dtype=np.float64).reshape(3)
        return m
    m = np.asarray(transform, dtype=np.float64)
    if m.shape != (4, 4):
        raise MeshError(f"transform must be a 4x4 matrix or a RigidTransform, got shape {m.shape}")
    return m


def transform(mesh: Mesh, matrix) -> Mesh:
    """The mesh with `p' = A p + t` applied (A may scale; normals use the inverse transpose)."""
    m = as_matrix(matrix)
    a, t = m[:3, :3], m[:3, 3]
    if abs(np.linalg.det(a)) < 1e-12:
        raise MeshError("transform is singular")
    vertices = mesh.vertices @ a.T + t
    normals = mesh.normals @ np.linalg.inv(a)  # (A^-T n)^T = n^T A^-1
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    faces = mesh.faces if np.linalg.det(a) > 0 else mesh.faces[:, ::-1]  # keep outward winding
    return Mesh(vertices, faces, normals, mesh.uvs)


def translated(mesh: Mesh, xyz) -> Mesh:
    m = np.eye(4)
    m[:3, 3] = xyz
    return transform(mesh, m)


def merge(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all triangles of `meshes` (uvs kept only if every mesh has them)."""
    if not meshes:
        raise MeshError("merge needs at least one mesh")
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    uvs = None
    if all(m.uvs is not None for m in meshes):
        uvs = np.concatenate([m.uvs for m in meshes])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
        np.concatenate([m.normals for m in meshes]),
        uvs,
    )


def box(size) -> Mesh:
    """Axis-aligned box of size (sx, sy, sz) centred on the origin; 24 vertices, 12 triangles."""
    half = np.asarray(size, dtype=np.float64).reshape(3) / 2
    if np.any(half <= 0):
        raise MeshError(f"box size must be positive, got {size}")
    vertices, normals, uvs, faces = [], [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            u_axis, v_axis = [a for a in range(3) if a != axis]
            if sign < 0:  # keep counter-clockwise winding seen from outside
                u_axis, v_axis = v_axis, u_axis
            base = len(vertices)
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = normal * half
                p[u_axis] = du * half[u_axis]
                p[v_axis] = dv * half[v_axis]
                vertices.append(p)
                normals.append(normal)
                # uv in metres so textures tile at a fixed physical scale
                uvs.append((p[u_axis] + half[u_axis], p[v_axis] + half[v_axis]))
            faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return Mesh(np.array(vertices), np.array(faces), np.array(normals), np.array(uvs))


def plane(size_x: float, size_y: float, uv_scale: float = 1.0) -> Mesh:
    """Rectangle in z=0 facing +z, centred on the origin; uv = metres * uv_scale."""
    if size_x <= 0 or size_y <= 0:
        raise MeshError(f"plane size must be positive, got {size_x}x{size_y}")
    hx, hy = size_x / 2, size_y / 2
    v = np.array([(-hx, -hy, 0), (hx, -hy, 0), (hx, hy, 0), (-hx, hy, 0)], np.float64)
    return Mesh(v, np.array([(0, 1, 2), (0, 2, 3)]), np.tile((0.0, 0.0, 1.0), (4, 1)),
                (v[:, :2] + (hx, hy)) * uv_scale)


def cylinder(radius: float, height: float, segments: int = 12) -> Mesh:
    """Cylinder along z, centred on the origin, with smooth sides and flat caps."""
    if radius <= 0 or height <= 0 or segments < 3:
        raise MeshError(f"cylinder needs radius>0, height>0, segments>=3; got {radius}, {height}, {segments}")
    angles = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros(segments)], axis=1)
    h = height / 2
    side_v = np.concatenate([ring * radius + (0, 0, -h), ring * radius + (0, 0, h)])
    side_n = np.concatenate([ring, ring])
    side_uv = np.concatenate([np.stack([angles * radius, np.zeros(segments)], 1),
                              np.stack([angles * radius, np.full(segments, height)], 1)])
    i = np.arange(segments)
    j = (i + 1) % segments
    side_f = np.concatenate([np.stack([i, j, j + segments], 1), np.stack([i, j + segments, i + segments], 1)])
    parts = [Mesh(side_v, side_f, side_n, side_uv)]
    for sign in (-1.0, 1.0):
        centre = np.array([[0, 0, sign * h]])
        v = np.concatenate([centre, ring * radius + (0, 0, sign * h)])
        n = np.tile((0.0, 0.0, sign), (segments + 1, 1))
        f = np.stack([np.zeros(segments, int), i + 1, j + 1], 1)
        if sign < 0:
            f = f[:, ::-1]
        parts.append(Mesh(v, f, n, v[:, :2] + radius))
    return merge(parts)


def sphere(radius: float, rings: int = 8, segments: int = 12) -> Mesh:
    """UV sphere centred on the origin with smooth normals."""
    if radius <= 0 or rings < 2 or segments < 3:
        raise MeshError(f"sphere needs radius>0, rings>=2, segments>=3; got {radius}, {rings}, {segments}")
    theta = np.linspace(0, np.pi, rings + 1)  # from +z pole to -z pole
    phi = np.linspace(0, 2 * np.pi, segments + 1)  # seam duplicated for continuous uvs
    t, p = np.meshgrid(theta, phi, indexing="ij")
    n = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    uv = np.stack([p / (2 * np.pi), t / np.pi], -1).reshape(-1, 2)
    cols = segments + 1
    r, c = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    a, b = r * cols + c, r * cols + c + 1
    d, e = (r + 1) * cols + c, (r + 1) * cols + c + 1
    faces = np.concatenate([np.stack([a, d, e], -1).reshape(-1, 3), np.stack([a, e, b], -1).reshape(-1, 3)])
    return Mesh(n * radius, faces, n, uv)


def ellipsoid(radii, rings: int = 8, segments: int = 12) -> Mesh:
    """Sphere scaled to semi-axes (rx, ry, rz)."""
    radii = np.asarray(radii, dtype=np.float64).reshape(3)
    if np.any(radii <= 0):
        raise MeshError(f"ellipsoid radii must be positive, got {radii}")
    return transform(sphere(1.0, rings, segments), np.diag([*radii, 1.0]))


def capsule(radius: float, length: float, rings: int = 8, segments: int = 12) -> Mesh:
    """Capsule along z: a cylinder of `length` between two hemispheres (total length+2*radius)."""
    if length <= 0:
        return sphere(radius, rings, segments)
    # An even ring count puts a vertex ring on the equator; moving the two hemispheres apart turns
    # the band of triangles below that ring into the cylindrical middle.
    ball = sphere(radius, rings + rings % 2, segments)
    v = ball.vertices.copy()
    v[:, 2] += np.where(v[:, 2] >= -1e-9 * radius, length / 2, -length / 2)
    return Mesh(v, ball.faces, ball.normals, ball.uvs)


def cylinder_between(p0, p1, radius: float, segments: int = 10) -> Mesh:
    """A cylinder whose axis runs from point p0 to point p1 (struts, bars, arms)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    if length <= 0:
        raise MeshError("cylinder_between needs two distinct points")
    z = axis / length
    helper = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    m[:3, 3] = (p0 + p1) / 2
    return transform(cylinder(radius, length, segments), m)
