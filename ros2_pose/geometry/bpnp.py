"""Differentiable PnP layers for end-to-end keypoint -> pose training (seed 003, BPnP by Chen et al. 2020).

Pose convention: a batch of poses is (B, 6) = (axis-angle rotation vector, translation) of
T_camera_object, i.e. OpenCV's (rvec, tvec); `pose_to_rotation_translation` turns it into (R, t).

- `bpnp(keypoints_2d, points_3d, K, variant="exact")`: the forward pass solves PnP with OpenCV per
  batch item (ros2_pose.geometry.pnp, SQPnP + LM) and polishes the answer with Gauss-Newton steps in
  float64, so it is the minimiser y* of the reprojection objective
      o(x, y, z, K) = sum_i || pi(z_i | y, K) - x_i ||^2
  to machine precision. The backward pass uses the implicit function theorem on the optimality
  condition f = do/dy = 0:  dy*/dtheta = -(df/dy)^-1 df/dtheta  for theta in {x, z, K}.
  variant="exact" differentiates f = 2 J^T r fully (df/dy is the true Hessian of o, including the
  second derivatives of the projection weighted by the residuals).
  variant="faster" is BPnP's "fast" version that the seed compares: the projection Jacobian J in
  the coefficients f = J^T r is treated as a constant, i.e. the higher-order derivatives through
  the coefficients' graph are dropped: df/dy ~ J^T J (Gauss-Newton) and df/dtheta ~ J^T dr/dtheta.
  The dropped terms are proportional to the residuals r, so both agree when the keypoints fit
  exactly and differ slightly on noisy keypoints.
- `epnp(keypoints_2d, points_3d, K)`: EPnP (Lepetit et al. 2009) written in torch ops — control
  points, the 2N x 12 system, its null space from an eigen-decomposition, the scale from control-point
  distances, Procrustes — plus optional unrolled Gauss-Newton steps; autograd differentiates it
  directly (the seed's "EPnP" alternative). Returns (R, t).

Everything here is torch; backward computations run in float64 whatever the input dtype.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ros2_pose.geometry.pnp import is_collinear, refine_lm, solve_pnp
from ros2_pose.geometry.transforms import RigidTransform, axis_angle_to_matrix

VARIANTS = ("exact", "faster")
# Gauss-Newton steps that polish OpenCV's answer to the exact minimiser (the IFT needs f(y*) = 0).
_POLISH_STEPS = 10
_CONVERGED_STEP = 1e-14
# theta^2 below which the Rodrigues coefficients use their Taylor series (avoids 0/0 at theta = 0).
_SMALL_ANGLE2 = 1e-8


class BPnPError(RuntimeError):
    """The PnP forward pass has no valid pose for a batch item (too few or degenerate points)."""


# ------------------------------------------------------------------------------------------------
# Geometry in torch
# ------------------------------------------------------------------------------------------------

def axis_angle_to_matrix_torch(rotation_vector: torch.Tensor) -> torch.Tensor:
    """(..., 3) Rodrigues vectors -> (..., 3, 3) rotations, twice differentiable everywhere.

    Written here rather than taken from kornia because BPnP's exact backward needs *second*
    derivatives at and near zero rotation: the series branch keeps them finite.
    """
    theta2 = (rotation_vector * rotation_vector).sum(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < _SMALL_ANGLE2
    safe_theta2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe_theta2.sqrt()
    a = torch.where(small, 1 - theta2 / 6 + theta2 ** 2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 ** 2 / 720, (1 - torch.cos(theta)) / safe_theta2)
    rx, ry, rz = rotation_vector.unbind(-1)
    zero = torch.zeros_like(rx)
    skew = torch.stack([zero, -rz, ry, rz, zero, -rx, -ry, rx, zero], dim=-1).reshape(*rotation_vector.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotation_vector.dtype, device=rotation_vector.device)
    return eye + a * skew + b * (skew @ skew)


def pose_to_rotation_translation(pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 6) (rvec, t) -> rotations (B, 3, 3), translations (B, 3)."""
    if pose.shape[-1] != 6:
        raise ValueError(f"pose must have shape (B, 6) = (rotation vector, translation), got {tuple(pose.shape)}")
    return axis_angle_to_matrix_torch(pose[..., :3]), pose[..., 3:]


def project_points_torch(points_3d: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                         K: torch.Tensor) -> torch.Tensor:
    """pi(z | R, t, K): (B, N, 3) object points -> (B, N, 2) pixels (pinhole, no distortion).

    K's last row is taken as (0, 0, 1), as OpenCV does: only its top two rows enter.
    """
    camera_points = points_3d @ rotation.transpose(-1, -2) + translation[..., None, :]
    normalised = camera_points[..., :2] / camera_points[..., 2:3]
    return normalised @ K[..., :2, :2].transpose(-1, -2) + K[..., None, :2, 2]


def _broadcast(keypoints_2d, points_3d, K):
    if keypoints_2d.ndim != 3 or keypoints_2d.shape[-1] != 2:
        raise ValueError(f"keypoints_2d must have shape (B, N, 2), got {tuple(keypoints_2d.shape)}")
    batch, n = keypoints_2d.shape[:2]
    if points_3d.shape[-2:] != (n, 3) or points_3d.ndim not in (2, 3) or (points_3d.ndim == 3 and points_3d.shape[0] != batch):
        raise ValueError(f"points_3d must have shape ({n}, 3) or ({batch}, {n}, 3), got {tuple(points_3d.shape)}")
    if K.shape[-2:] != (3, 3) or K.ndim not in (2, 3) or (K.ndim == 3 and K.shape[0] != batch):
        raise ValueError(f"K must have shape (3, 3) or ({batch}, 3, 3), got {tuple(K.shape)}")
    return keypoints_2d, points_3d.expand(batch, n, 3), K.expand(batch, 3, 3)


def _objective(pose, keypoints_2d, points_3d, K) -> torch.Tensor:
    """(B,) sum of squared reprojection errors per item."""
    rotation, translation = pose_to_rotation_translation(pose)
    residual = project_points_torch(points_3d, rotation, translation, K) - keypoints_2d
    return (residual ** 2).sum(dim=(-2, -1))


def _gradient_and_hessian(pose, keypoints_2d, points_3d, K, create_graph: bool):
    """f = do/dy (B, 6) with its graph, and H = df/dy (B, 6, 6); items are independent, so summing
    over the batch before differentiating gives every item's own derivatives at once."""
    objective = _objective(pose, keypoints_2d, points_3d, K)
    (gradient,) = torch.autograd.grad(objective.sum(), pose, create_graph=True)
    rows = [torch.autograd.grad(gradient[:, j].sum(), pose, retain_graph=True, create_graph=create_graph)[0]
            for j in range(6)]
    return objective, gradient, torch.stack(rows, dim=1)


def _solve_symmetric(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """matrix^-1 rhs per item; the pseudo-inverse where an item's matrix is singular (never NaN)."""
    solution, info = torch.linalg.solve_ex(matrix, rhs.unsqueeze(-1))
    if bool((info != 0).any()) or not bool(torch.isfinite(solution).all()):
        solution = torch.linalg.pinv(matrix) @ rhs.unsqueeze(-1)
    return solution.squeeze(-1)


# ------------------------------------------------------------------------------------------------
# BPnP
# ------------------------------------------------------------------------------------------------

def _diagnosed_failure(b, z, x, k, initial) -> BPnPError:
    """The checked solver's reason why item `b` has no pose (it reports what went wrong)."""
    result = solve_pnp(z, x, k, method="iterative" if initial is not None else "sqpnp", initial_pose=initial)
    reason = result.reason if not result.success else "the least-squares pose puts points behind the camera"
    return BPnPError(f"batch item {b}: {reason}")


def solve_pose_batch(keypoints_2d: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor,
                     initial_pose: torch.Tensor | None = None, polish_steps: int = _POLISH_STEPS) -> torch.Tensor:
    """The forward pass of BPnP: (B, 6) float64 least-squares poses, without gradients.

    OpenCV SQPnP + LM per item (or LM from `initial_pose` when given), then batched Gauss-Newton
    steps on o that are kept only while they contract. Raises BPnPError naming the item that has
    no pose.

    The per-item OpenCV calls are bare and the checks (finite keypoints, degenerate points, points
    in front of the camera) run once for the whole batch: geometry.pnp.solve_pnp's per-call checks
    in Python cost several times the solve itself and made a batch little cheaper than one item at
    a time. An item that fails goes through solve_pnp for the reason. (LM is not left to the
    Gauss-Newton polish: with residuals of a few pixels Gauss-Newton converges only linearly and
    stops short of the stationary point that the implicit-function gradients assume.)
    """
    x, z, k = (t.detach().double().cpu() for t in _broadcast(keypoints_2d, points_3d, K))
    xn, zn, kn = x.numpy(), z.numpy(), k.numpy()
    guesses = None if initial_pose is None else initial_pose.detach().double().cpu().numpy().reshape(len(xn), 6)

    def initial(b):
        return None if guesses is None else RigidTransform(axis_angle_to_matrix(guesses[b, :3]), guesses[b, 3:])

    finite = np.isfinite(xn).all(axis=(1, 2)) & np.isfinite(zn).all(axis=(1, 2)) & np.isfinite(kn).all(axis=(1, 2))
    for b in np.flatnonzero(~finite):
        raise BPnPError(f"batch item {b}: non-finite keypoints, 3D points or intrinsics")
    for b in np.flatnonzero(is_collinear(zn) | is_collinear(xn)):
        raise _diagnosed_failure(b, zn[b], xn[b], kn[b], initial(b))
    poses = np.empty((len(xn), 6))
    for b in range(len(xn)):
        try:
            if guesses is None:
                ok, rvec, tvec = cv2.solvePnP(zn[b], xn[b], kn[b], None, flags=cv2.SOLVEPNP_SQPNP)
            else:
                ok, rvec, tvec = cv2.solvePnP(zn[b], xn[b], kn[b], None, guesses[b, :3].copy(), guesses[b, 3:].copy(),
                                              useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
            if ok:
                rvec, tvec = refine_lm(zn[b], xn[b], kn[b], None, rvec, tvec)
        except cv2.error:
            ok = False
        if not ok or not (np.isfinite(rvec).all() and np.isfinite(tvec).all()):
            raise _diagnosed_failure(b, zn[b], xn[b], kn[b], initial(b))
        poses[b, :3], poses[b, 3:] = rvec.reshape(3), tvec.reshape(3)
    pose = torch.from_numpy(poses)
    # Gauss-Newton in the rotation's tangent space (analytic Jacobian, far cheaper than Newton on
    # the rotation vector); its fixed point J^T r = 0 is the same stationary point in any chart.
    # Near the optimum the objective is flat to rounding, so progress is judged by the step length:
    # Gauss-Newton contracts towards the stationary point; a step no shorter than the previous one
    # means rounding has taken over and the item is done.
    rotation, translation = pose_to_rotation_translation(pose)
    previous_step = torch.full((len(pose),), float("inf"), dtype=torch.float64)
    for _ in range(polish_steps):
        new_rotation, new_translation, step = _gauss_newton_step(rotation, translation, z, x, k)
        step_length = step.norm(dim=-1)
        contracting = step_length < previous_step
        rotation = torch.where(contracting[:, None, None], new_rotation, rotation)
        translation = torch.where(contracting[:, None], new_translation, translation)
        previous_step = torch.where(contracting, step_length, torch.zeros_like(step_length))
        if float(previous_step.max()) < _CONVERGED_STEP:
            break
    depths = (z @ rotation.transpose(1, 2) + translation[:, None, :])[..., 2]
    for b in np.flatnonzero((depths <= 0).any(dim=1).numpy()):
        raise _diagnosed_failure(b, zn[b], xn[b], kn[b], initial(b))
    rotation_vectors = np.stack([cv2.Rodrigues(r)[0].reshape(3) for r in rotation.numpy()])
    return torch.cat([torch.from_numpy(rotation_vectors), translation], dim=-1)


class _BPnPFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keypoints_2d, points_3d, K, variant, initial_pose):
        pose = solve_pose_batch(keypoints_2d, points_3d, K, initial_pose)
        ctx.variant = variant
        ctx.save_for_backward(keypoints_2d, points_3d, K, pose)
        return pose.to(dtype=keypoints_2d.dtype, device=keypoints_2d.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pose):
        keypoints_2d, points_3d, K, pose = ctx.saved_tensors
        wanted = ctx.needs_input_grad[:3]
        with torch.enable_grad():
            inputs = [t.detach().double().cpu().requires_grad_(need) for t, need in zip((keypoints_2d, points_3d, K), wanted)]
            x, z, k = _broadcast(*inputs)
            y = pose.detach().double().requires_grad_(True)
            if ctx.variant == "exact":
                _, coefficients, hessian = _gradient_and_hessian(y, x, z, k, create_graph=False)
            else:
                # Gauss-Newton form: f = J^T r with J held constant (BPnP's fast variant).
                rotation, translation = pose_to_rotation_translation(y)
                residual = (project_points_torch(z, rotation, translation, k) - x).reshape(len(y), -1)
                jacobian = _projection_jacobian(y.detach(), z.detach(), k.detach())
                coefficients = torch.einsum("bmj,bm->bj", jacobian, residual)
                hessian = jacobian.transpose(1, 2) @ jacobian
            v = _solve_symmetric(hessian.detach(), grad_pose.detach().double().cpu())
            sources = [t for t, need in zip(inputs, wanted) if need]
            grads = torch.autograd.grad((coefficients * v).sum(), sources, allow_unused=True) if sources else []
        grads = iter(grads)
        out = []
        for tensor, need in zip((keypoints_2d, points_3d, K), wanted):
            g = next(grads) if need else None
            out.append(None if g is None else (-g).to(dtype=tensor.dtype, device=tensor.device))
        return (*out, None, None)


def _left_jacobian_so3(rotation_vector: torch.Tensor) -> torch.Tensor:
    """(B, 3) -> (B, 3, 3) J_l with exp(r + d) ~ exp(J_l d) exp(r): maps rotation-vector changes
    to tangent-space (left) rotations."""
    theta2 = rotation_vector.pow(2).sum(-1)[:, None, None]
    small = theta2 < _SMALL_ANGLE2
    safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe.sqrt()
    a = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe)
    b = torch.where(small, 1 / 6 - theta2 / 120, (theta - torch.sin(theta)) / (safe * theta))
    rx, ry, rz = rotation_vector.unbind(-1)
    zero = torch.zeros_like(rx)
    skew = torch.stack([zero, -rz, ry, rz, zero, -rx, -ry, rx, zero], dim=-1).reshape(-1, 3, 3)
    return torch.eye(3, dtype=rotation_vector.dtype) + a * skew + b * (skew @ skew)


def _projection_jacobian(pose: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """d pi / d y as (B, 2N, 6) for y = (rvec, t): the tangent-space Jacobian times J_l."""
    rotation, translation = pose_to_rotation_translation(pose)
    tangent, _ = _tangent_jacobian(rotation, translation, points_3d, K)
    return torch.cat([tangent[..., :3] @ _left_jacobian_so3(pose[:, :3])[:, None], tangent[..., 3:]], dim=-1).reshape(len(pose), -1, 6)


def bpnp(keypoints_2d: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor, variant: str = "exact",
         initial_pose: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable PnP: (B, N, 2) pixels, (N, 3) or (B, N, 3) object points, (3, 3) or (B, 3, 3) K
    -> (B, 6) poses (rvec, t) with gradients to all three inputs. See the module docstring."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    _broadcast(keypoints_2d, points_3d, K)
    return _BPnPFunction.apply(keypoints_2d, points_3d, K, variant, initial_pose)


# ------------------------------------------------------------------------------------------------
# Differentiable EPnP
# ------------------------------------------------------------------------------------------------

def _procrustes(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R, t minimising sum ||R source_i + t - target_i||^2 (Kabsch with the reflection fixed)."""
    source_mean, target_mean = source.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
    covariance = (target - target_mean).transpose(1, 2) @ (source - source_mean)
    u, _, vh = torch.linalg.svd(covariance)
    sign = torch.det(u @ vh)
    correction = torch.diag_embed(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], dim=-1))
    rotation = u @ correction @ vh
    translation = target_mean.squeeze(1) - (rotation @ source_mean.transpose(1, 2)).squeeze(-1)
    return rotation, translation


def _tangent_jacobian(rotation, translation, points_3d, K):
    """d(pixels)/d(omega, t) as (B, N, 2, 6) for R <- exp(omega) R, t <- t + dt, and the pixels."""
    camera_points = points_3d @ rotation.transpose(1, 2) + translation[:, None, :]
    px, py, pz = camera_points.unbind(-1)
    zero = torch.zeros_like(pz)
    # d(pixel)/d(camera point) = K[:2, :2] @ d(x/z, y/z)/d(x, y, z)
    d_normalised = torch.stack([torch.stack([1 / pz, zero, -px / pz ** 2], dim=-1),
                                torch.stack([zero, 1 / pz, -py / pz ** 2], dim=-1)], dim=-2)  # (B, N, 2, 3)
    d_pixel = K[:, None, :2, :2] @ d_normalised
    # d(camera point)/d(omega) = -[R z]_x, d/dt = I
    rx_, ry_, rz_ = (camera_points - translation[:, None, :]).unbind(-1)
    minus_skew = torch.stack([zero, rz_, -ry_, -rz_, zero, rx_, ry_, -rx_, zero], dim=-1).reshape(*pz.shape, 3, 3)
    eye = torch.eye(3, dtype=pz.dtype, device=pz.device).expand(*pz.shape, 3, 3)
    pixels = camera_points[..., :2] / camera_points[..., 2:3] @ K[:, :2, :2].transpose(1, 2) + K[:, None, :2, 2]
    return d_pixel @ torch.cat([minus_skew, eye], dim=-1), pixels


def _gauss_newton_step(rotation, translation, points_3d, keypoints_2d, K):
    """One (unrollable) Gauss-Newton step on the reprojection error, rotation updated on the left;
    returns the new rotation, translation and the (B, 6) step taken."""
    jacobian, pixels = _tangent_jacobian(rotation, translation, points_3d, K)
    jacobian = jacobian.reshape(len(rotation), -1, 6)
    residual = (pixels - keypoints_2d).reshape(len(rotation), -1)
    step = _solve_symmetric(jacobian.transpose(1, 2) @ jacobian, torch.einsum("bmj,bm->bj", jacobian, residual))
    rotation = axis_angle_to_matrix_torch(-step[:, :3]) @ rotation
    return rotation, translation - step[:, 3:], step


def epnp(keypoints_2d: torch.Tensor, points_3d: torch.Tensor, K: torch.Tensor,
         refine_steps: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """EPnP in torch ops, differentiable by autograd: -> rotations (B, 3, 3), translations (B, 3).

    Control points: the centroid plus one offset per object axis, scaled by the points' spread
    along it (not EPnP's principal axes: their order and sign flip with the data, and eigenvector
    gradients blow up when two spreads are equal; any non-degenerate frame gives the same
    solution for exact data). Null-space dimensions 1 and 2 are tried (2 covers the near
    weak-perspective case of small, distant drones) and the candidate with the lower reprojection
    error is kept; `refine_steps` unrolled Gauss-Newton steps then minimise the reprojection error
    (0 = plain EPnP, as in the seed's PyTorch3D comparison).
    """
    x, z, k = _broadcast(keypoints_2d, points_3d, K)
    batch, n = x.shape[:2]
    if n < 4:
        raise ValueError(f"EPnP needs at least 4 points, got {n}")
    centroid = z.mean(dim=1, keepdim=True)
    spread = (z - centroid).pow(2).mean(dim=1).sqrt()  # (B, 3)
    if bool((spread <= 1e-9 * spread.amax(dim=-1, keepdim=True)).any()):
        raise ValueError("EPnP needs 3D points spread along all three axes; these are planar along an object axis")
    control = torch.cat([centroid, centroid + torch.diag_embed(spread)], dim=1)  # (B, 4, 3)
    local = (z - centroid) / spread[:, None, :]
    alphas = torch.cat([1 - local.sum(dim=-1, keepdim=True), local], dim=-1)  # (B, N, 4)

    homogeneous = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    normalised = homogeneous @ torch.linalg.inv(k).transpose(1, 2)  # (B, N, 3), last coordinate 1
    zeros = torch.zeros_like(alphas)
    # Each point gives two equations in the 12 camera-frame control coordinates (4 x (X, Y, Z)).
    row_u = torch.stack([alphas, zeros, -alphas * normalised[..., 0:1]], dim=-1).reshape(batch, n, 12)
    row_v = torch.stack([zeros, alphas, -alphas * normalised[..., 1:2]], dim=-1).reshape(batch, n, 12)
    system = torch.cat([row_u, row_v], dim=1)
    _, eigenvectors = torch.linalg.eigh(system.transpose(1, 2) @ system)
    kernel = eigenvectors[..., :2].transpose(1, 2).reshape(batch, 2, 4, 3)  # two smallest, as control points

    pairs = torch.combinations(torch.arange(4), 2)
    world_distance2 = (control[:, pairs[:, 0]] - control[:, pairs[:, 1]]).pow(2).sum(-1)  # (B, 6)
    difference = kernel[:, :, pairs[:, 0]] - kernel[:, :, pairs[:, 1]]  # (B, 2, 6, 3)
    # Dimension 1: beta from matching control-point distances in least squares.
    d1 = difference[:, 0].pow(2).sum(-1).sqrt()
    beta = (d1 * world_distance2.sqrt()).sum(-1) / d1.pow(2).sum(-1)
    candidates = [beta[:, None, None] * kernel[:, 0]]
    # Dimension 2: linearised (beta11, beta12, beta22) from the six distance constraints.
    v1, v2 = difference[:, 0], difference[:, 1]
    system_2 = torch.stack([v1.pow(2).sum(-1), 2 * (v1 * v2).sum(-1), v2.pow(2).sum(-1)], dim=-1)  # (B, 6, 3)
    betas = torch.linalg.lstsq(system_2, world_distance2.unsqueeze(-1)).solution.squeeze(-1)
    beta1 = betas[:, 0].abs().clamp_min(1e-12).sqrt()
    beta2 = betas[:, 1] / beta1
    candidates.append(beta1[:, None, None] * kernel[:, 0] + beta2[:, None, None] * kernel[:, 1])

    best_rotation = best_translation = best_error = None
    for control_camera in candidates:
        camera_points = alphas @ control_camera
        # The null space has no sign: keep the solution in front of the camera.
        sign = torch.where(camera_points[..., 2].mean(-1) < 0, -1.0, 1.0).to(camera_points.dtype)
        rotation, translation = _procrustes(z, camera_points * sign[:, None, None])
        error = (project_points_torch(z, rotation, translation, k) - x).pow(2).sum(dim=(-2, -1))
        if best_error is None:
            best_rotation, best_translation, best_error = rotation, translation, error
        else:
            better = error < best_error
            best_rotation = torch.where(better[:, None, None], rotation, best_rotation)
            best_translation = torch.where(better[:, None], translation, best_translation)
            best_error = torch.where(better, error, best_error)
    rotation, translation = best_rotation, best_translation
    for _ in range(refine_steps):
        rotation, translation, _ = _gauss_newton_step(rotation, translation, z, x, k)
    return rotation, translation
