"""assert_projection: check a projection onto {‖p − x‖ ≤ ε} ∩ [lo, hi] by its defining
properties, with no reference implementation.

    1. feasible        lo ≤ p ≤ hi and ‖p − x‖ ≤ ε
    2. idempotent      Π(p) = p
    3. optimal         ⟨z − p, y − p⟩ ≤ 0 for feasible y (the variational inequality that
                       characterises the nearest point of a convex set)
    4. nearest         ‖z − p‖₂ ≤ ‖z − y‖₂ for the same y

The feasible y are built without the projection under test: a proposal w is clipped to
the box offsets [lo − x, hi − x] (x lies in the box, so the clip only shrinks |wᵢ|) and
then scaled towards 0 until ‖w‖ ≤ ε; y = x + w. Proposals: 0, s·(z − x) for several s,
p − x plus small noise, soft-thresholded and clipped z − x, and random points of the ball.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ProjectionError", "assert_projection"]

# relative tolerance of the checks, by the dtype of the projected points
_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 2e-5}


class ProjectionError(AssertionError):
    pass


def _norm(v: np.ndarray, norm: str) -> np.ndarray:
    """(N, D) -> (N,)."""
    if norm == "linf":
        return np.max(np.abs(v), axis=1, initial=0.0)
    return np.sqrt(np.sum(v * v, axis=1)) if norm == "l2" else np.sum(np.abs(v), axis=1)


def _feasible(w, norm, e, a, b):
    """x-offsets made feasible: clip to the box offsets [a, b], then shrink into the ball."""
    w = np.clip(w, a, b)
    r = _norm(w, norm)
    scale = np.divide(e, r, out=np.ones_like(r), where=r > e)   # shrink only what is outside
    return w * scale[:, None]


def _proposals(z, x, p, norm, e, rng, samples):
    """Offsets from x to try as y − x, each (N, D)."""
    w = z - x
    out = [np.zeros_like(w)]
    out += [s * w for s in (0.25, 0.5, 0.75, 0.9, 0.99, 1.0, 1.5, 4.0)]
    mag = np.abs(w)
    for q in (0.25, 0.5, 0.75, 0.9):
        t = np.quantile(mag, q, axis=1, keepdims=True)
        out.append(np.sign(w) * np.maximum(mag - t, 0.0))   # soft threshold
        out.append(np.clip(w, -t, t))                        # hard clip
    scale = np.maximum(e, 1e-12)[:, None]
    for spread in (1e-4, 1e-3, 1e-2, 1e-1):
        for _ in range(max(1, samples // 4)):
            out.append(p - x + spread * scale * rng.standard_normal(w.shape))
    for _ in range(samples):
        out.append(scale * rng.standard_normal(w.shape) * rng.random((len(w), 1)) ** 2)
    return out


def assert_projection(project: Callable, norm: str, eps, lo, hi, points, *,
                      samples: int = 16, seed: int = 0, rtol: float | None = None) -> None:
    """Check `project(z, x, eps, norm, lo, hi)` at points = (z, x), both (N, ...) arrays.

    eps: float or (N,); lo, hi: floats, arrays broadcastable to x, or None (no bound).
    Tolerances scale with rtol, by default 1e-9 for float64 outputs, 2e-5 for float32.
    Raises ProjectionError naming the property, the example and the numbers.
    """
    z_in, x_in = (np.asarray(a) for a in points)
    p_out = np.asarray(project(z_in, x_in, eps, norm, lo, hi))
    if p_out.shape != z_in.shape:
        raise ProjectionError(f"projection has shape {p_out.shape}, expected {z_in.shape}")
    tol = _RTOL.get(p_out.dtype, 2e-5) if rtol is None else rtol
    n = len(z_in)
    z, x, p = (a.reshape(n, -1).astype(np.float64) for a in (z_in, x_in, p_out))
    e = np.broadcast_to(np.asarray(eps, dtype=np.float64), (n,))
    a, b = (np.broadcast_to(np.float64(fill) if bound is None else bound, z_in.shape)
            .reshape(n, -1).astype(np.float64) for bound, fill in ((lo, -np.inf), (hi, np.inf)))
    size = 1.0 + np.max(np.abs(x), axis=1, initial=0.0) + np.where(np.isfinite(e), e, 0)

    # 1. feasible
    outside = np.maximum(a - p, p - b).max(axis=1, initial=-np.inf)
    if np.any(outside > tol * size):
        i = int(np.argmax(outside - tol * size))
        raise ProjectionError(f"infeasible: example {i} leaves the box [lo, hi] by "
                              f"{float(outside[i])!r}")
    r = _norm(p - x, norm)
    if np.any(r > e + tol * size):
        i = int(np.argmax(r - e))
        raise ProjectionError(f"infeasible: example {i} has ‖p − x‖ = {float(r[i])!r} > "
                              f"eps = {float(e[i])!r}")
    # 2. idempotent
    again = np.asarray(project(p_out, x_in, eps, norm, lo, hi)).reshape(n, -1)
    moved = np.max(np.abs(again - p), axis=1, initial=0.0)
    if np.any(moved > tol * size):
        i = int(np.argmax(moved))
        raise ProjectionError(f"not idempotent: projecting example {i} again moves it by "
                              f"{float(moved[i])!r}")
    # 3. optimal and 4. nearest, against feasible points y
    rng = np.random.default_rng(seed)
    c_off, d_off = a - x, b - x
    dist = np.sqrt(np.sum((z - p) ** 2, axis=1))
    for w in _proposals(z, x, p, norm, e, rng, samples):
        y = x + _feasible(w, norm, e, c_off, d_off)
        s = y - p
        inner = np.sum((z - p) * s, axis=1)
        scale = (size + dist) * (size + np.sqrt(np.sum(s * s, axis=1)))
        if np.any(inner > tol * scale):
            i = int(np.argmax(inner - tol * scale))
            raise ProjectionError(
                f"not the nearest point: example {i} has ⟨z − p, y − p⟩ = {float(inner[i])!r} > 0 "
                f"for a feasible y = {y[i].tolist()} (p = {p[i].tolist()}, "
                f"z = {z[i].tolist()})")
        closer = np.sqrt(np.sum((z - y) ** 2, axis=1))
        if np.any(closer < dist - tol * (size + dist)):
            i = int(np.argmax(dist - closer))
            raise ProjectionError(f"not the nearest point: example {i} has a feasible y "
                                  f"{float(closer[i])!r} from z, p is {float(dist[i])!r} from z")
