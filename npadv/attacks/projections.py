"""Threat-model geometry: exact projection onto an eps-ball intersected with a box, uniform
random starts inside the ball, steepest-ascent directions and per-example norms.

An attack must keep its iterate in the set

    S = {x' : ||x' - x||_p <= eps}  intersected with  {x' : lo <= x' <= hi},

the eps-ball around the clean input ``x`` (the centre) and the valid data range (e.g. pixel
values in [0, 1]). Projected gradient methods need the *Euclidean projection* onto S, the
point of S nearest to the proposed iterate ``z``.

Why not "project onto the ball, then clip to the box"? Because the centre lies in the box,
clipping only ever moves a coordinate towards the centre, so the two-step result is in S;
but it is the nearest point of S only for L-inf, where the ball is itself a box and the
intersection of two boxes is a box. For L2 and L1 the clip throws away part of the eps
budget: coordinates that hit the box edge stop using their share, and the freed budget is
not handed back to the coordinates that could still move towards ``z``. The result is
strictly farther from ``z`` than necessary, the map is not a true projection (applying it
to points of S is fine, but it fails the variational inequality that characterises the
nearest point), and an attack built on it explores a smaller part of the threat model
than it claims. The exact projection solves the small KKT system instead:

* L-inf: clip to the box [max(x - eps, lo), min(x + eps, hi)].
* L2:    x'(lam) = clip((z + lam * x) / (1 + lam), lo, hi) with the smallest lam >= 0 such
         that ||x'(lam) - x||_2 <= eps. We search s = 1 / (1 + lam) in (0, 1] instead,
         x'(s) = x + clip(s * (z - x), lo - x, hi - x), whose distance to x grows
         monotonically with s: the largest feasible s is the smallest feasible lam.
* L1:    x'(tau) = x + clip(soft_threshold(z - x, tau), lo - x, hi - x) with the smallest
         tau >= 0 such that ||x'(tau) - x||_1 <= eps.

Both searches are bisections vectorised across the batch and run until the bracket ends
are adjacent doubles (at most a few hundred halvings, usually about 60), always keeping
the feasible end, so the answer is the exact projection up to float64 rounding.

Conventions for every function here: the first axis is the batch; norms and projections
act per example over all remaining axes, so (N, D) vectors, (N, C, H, W) images and
(N, T, d) sequences are all accepted. Work is done in float64 internally.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["project", "random_start", "steepest_step", "norm_per_example"]

_NORM_NAMES = {
    "linf": "linf", "inf": "linf", "l_inf": "linf", "l-inf": "linf",
    "l2": "l2", "2": "l2",
    "l1": "l1", "1": "l1",
}

# Bisection cap. Runs stop as soon as every bracket has collapsed to adjacent doubles
# (typically 55-70 halvings); the cap only bounds pathological cases such as tau* ~ 0.
_MAX_BISECT = 200
# Post-rounding repair passes: pass k shrinks by (1 - 2**(k - 52)), so the last reaches 0.
_MAX_REPAIR = 54
_DEFAULT_L1_QUANTILE = 0.99


def _canonical_norm(norm: Any) -> str:
    """Map 'linf'/'l2'/'l1' (any case) or np.inf/2/1 to 'linf'/'l2'/'l1'."""
    if isinstance(norm, str):
        key = norm.strip().lower()
        if key in _NORM_NAMES:
            return _NORM_NAMES[key]
    elif isinstance(norm, (int, float, np.integer, np.floating)) and not isinstance(
        norm, (bool, np.bool_)
    ):
        if norm == np.inf:
            return "linf"
        if norm == 2:
            return "l2"
        if norm == 1:
            return "l1"
    raise ValueError(f"unknown norm {norm!r}; expected 'linf', 'l2' or 'l1' (or np.inf, 2, 1)")


def _batch_dims(shape: tuple[int, ...], name: str) -> tuple[int, int]:
    """(N, D) for an array of `shape` with a leading batch axis."""
    if len(shape) < 1:
        raise ValueError(f"{name} must have a leading batch axis; got a 0-d array")
    n = shape[0]
    d = int(np.prod(shape[1:], dtype=np.int64))
    return n, d


def _row_norm(v: np.ndarray, norm: str) -> np.ndarray:
    """Per-row norm of a 2-D float64 array (N, D) -> (N,) float64."""
    if norm == "linf":
        return np.max(np.abs(v), axis=1, initial=0.0)
    if norm == "l2":
        return np.sqrt(np.sum(v * v, axis=1))
    return np.sum(np.abs(v), axis=1)


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    """Common floating dtype of the inputs; integer/bool inputs give float64."""
    dt = np.result_type(*arrays)
    if dt.kind == "f":
        return dt
    if dt.kind in "iub":
        return np.dtype(np.float64)
    raise ValueError(f"expected real-valued arrays, got dtype {dt}")


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        what = "NaN" if np.any(np.isnan(a)) else "inf"
        raise ValueError(f"{name} contains {what}; inputs must be finite")


def _eps_per_example(eps: Any, n: int) -> np.ndarray:
    """eps as a float64 array of shape (N,); scalar eps is broadcast."""
    try:
        e = np.asarray(eps, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"eps must be a number or an array of shape ({n},), got {eps!r}") from err
    if e.ndim == 0:
        e = np.full(n, float(e))
    elif e.shape != (n,):
        raise ValueError(f"eps must be a scalar or have shape (N,) = ({n},), got shape {e.shape}")
    if np.any(np.isnan(e)):
        raise ValueError("eps contains NaN")
    if np.any(e < 0):
        raise ValueError(f"eps must be >= 0, got {float(e.min())}")
    return e


def _box_bound(b: Any, shape: tuple[int, ...], n: int, d: int, default: float, name: str):
    """A box bound broadcast to `shape` and flattened to (N, D) float64."""
    if b is None:
        return np.full((n, d), default)
    arr = np.asarray(b, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} contains NaN")
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError as err:
        raise ValueError(
            f"{name} with shape {arr.shape} does not broadcast to the input shape {shape}"
        ) from err
    return np.array(arr.reshape(n, d), dtype=np.float64)


def _prepare(x_adv, x, eps, lo, hi):
    """Validate project() arguments and flatten them to (N, D) float64 arrays."""
    z_arr = np.asarray(x_adv)
    x_arr = np.asarray(x)
    if x_arr.shape != z_arr.shape:
        raise ValueError(f"shape mismatch: x_adv has shape {z_arr.shape}, x has {x_arr.shape}")
    n, d = _batch_dims(x_arr.shape, "x")
    dt = _float_dtype(z_arr, x_arr)
    z = z_arr.reshape(n, d).astype(np.float64)
    c = x_arr.reshape(n, d).astype(np.float64)
    _check_finite(z, "x_adv")
    _check_finite(c, "x")
    e = _eps_per_example(eps, n)
    lo2 = _box_bound(lo, x_arr.shape, n, d, -np.inf, "lo")
    hi2 = _box_bound(hi, x_arr.shape, n, d, np.inf, "hi")
    if np.any(lo2 > hi2):
        raise ValueError("empty box: lo > hi somewhere")
    if np.any(c < lo2) or np.any(c > hi2):
        raise ValueError("the centre x lies outside the box [lo, hi]; it must be feasible")
    return z, c, e, lo2, hi2, dt, x_arr.shape


def _project_linf(z, c, e, lo2, hi2):
    lower = np.maximum(c - e[:, None], lo2)
    upper = np.minimum(c + e[:, None], hi2)
    return np.clip(z, lower, upper)


def _project_l2(z, c, e, lo2, hi2):
    out = np.clip(z, lo2, hi2)
    r0 = _row_norm(out - c, "l2")
    act = np.flatnonzero((r0 > e) & (e > 0))
    if act.size == 0:
        return out
    ca, ea = c[act], e[act]
    w = z[act] - ca
    a, b = lo2[act] - ca, hi2[act] - ca
    # Distance at scale s is <= s * ||w||, so s = eps / ||w|| is feasible and s = 1 is not.
    s_lo = np.minimum(ea / _row_norm(w, "l2"), 1.0)
    # Without a box that scale is the answer (plain rescaling): no bisection for those rows.
    boxed = np.isfinite(a).any(axis=1) | np.isfinite(b).any(axis=1)
    s_hi = np.where(boxed, 1.0, s_lo)
    for _ in range(_MAX_BISECT):
        # Geometric midpoints while the bracket spans more than a factor 2 (tiny eps / far z),
        # arithmetic ones afterwards.
        mid = np.where(s_hi > 2.0 * s_lo, np.sqrt(s_lo) * np.sqrt(s_hi), 0.5 * (s_lo + s_hi))
        live = (mid > s_lo) & (mid < s_hi)
        if not live.any():
            break
        feas = _row_norm(np.clip(mid[:, None] * w, a, b), "l2") <= ea
        s_lo = np.where(live & feas, mid, s_lo)
        s_hi = np.where(live & ~feas, mid, s_hi)
    out[act] = ca + np.clip(s_lo[:, None] * w, a, b)
    return out


def _project_l1(z, c, e, lo2, hi2):
    out = np.clip(z, lo2, hi2)
    r0 = _row_norm(out - c, "l1")
    act = np.flatnonzero((r0 > e) & (e > 0))
    if act.size == 0:
        return out
    ca, ea = c[act], e[act]
    w = z[act] - ca
    a, b = lo2[act] - ca, hi2[act] - ca
    mag, sgn = np.abs(w), np.sign(w)

    def step(tau):
        return np.clip(sgn * np.maximum(mag - tau[:, None], 0.0), a, b)

    # tau = 0 is infeasible (r0 > eps); tau = max|w| gives the zero step, which is feasible.
    t_lo = np.zeros(act.size)
    t_hi = np.max(mag, axis=1)
    for _ in range(_MAX_BISECT):
        mid = 0.5 * (t_lo + t_hi)
        live = (mid > t_lo) & (mid < t_hi)
        if not live.any():
            break
        feas = _row_norm(step(mid), "l1") <= ea
        t_hi = np.where(live & feas, mid, t_hi)
        t_lo = np.where(live & ~feas, mid, t_lo)
    out[act] = ca + step(t_hi)
    return out


def _round_toward_centre(out, c, c_t, dt):
    """Cast float64 `out` to `dt`, rounding each coordinate towards the centre.

    The centre is representable in `dt`, so the rounded value lies between the centre and
    `out`: every |out_i - c_i| can only shrink and the box (which holds both) is kept.
    """
    if dt == np.float64:
        return out.copy()
    t = out.astype(dt)
    t64 = t.astype(np.float64)
    away = ((t64 > out) & (out >= c)) | ((t64 < out) & (out <= c))
    if away.any():
        t[away] = np.nextafter(t[away], c_t[away])
    return t


def _finalize(out, c, e, lo2, hi2, norm, dt):
    """Cast to `dt` and make the result exactly feasible as evaluated by norm_per_example.

    The solvers already keep the feasible end of each bracket, so this only undoes last-bit
    rounding (e.g. x + eps is not representable). L-inf: each offending coordinate is moved
    one representable number at a time towards the centre. L2/L1: offending rows are pulled
    towards the centre by a factor that starts at (1 - 2**-52) * eps / norm and grows
    geometrically; the final pass returns the centre. This costs at most a few units of
    float64 rounding of x (~1e-16 * |x| per coordinate), which only matters relative to the
    answer when eps itself is that small.
    """
    out = np.clip(out, lo2, hi2)
    c_t = c.astype(dt)
    res = _round_toward_centre(out, c, c_t, dt)
    for k in range(_MAX_REPAIR):
        if norm == "linf":
            over = np.abs(res.astype(np.float64) - c) > e[:, None]
            if not over.any():
                break
            res[over] = np.nextafter(res[over], c_t[over])
            continue
        r = _row_norm(res.astype(np.float64) - c, norm)
        bad = np.flatnonzero(r > e)
        if bad.size == 0:
            break
        factor = (e[bad] / r[bad]) * (1.0 - 2.0 ** (k - 52))
        moved = c[bad] + (out[bad] - c[bad]) * factor[:, None]
        out[bad] = np.clip(moved, lo2[bad], hi2[bad])
        res[bad] = _round_toward_centre(out[bad], c[bad], c_t[bad], dt)
    bad = _row_norm(res.astype(np.float64) - c, norm) > e
    bad |= e == 0
    res[bad] = c_t[bad]
    return res


def project(
    x_adv: np.ndarray,
    x: np.ndarray,
    eps: float | np.ndarray,
    norm: str | float = "linf",
    lo: float | np.ndarray | None = None,
    hi: float | np.ndarray | None = None,
) -> np.ndarray:
    """Exact Euclidean projection of `x_adv` onto {||. - x||_norm <= eps} intersected with [lo, hi].

    Args:
        x_adv: (N, ...) real array, the points to project (e.g. a PGD iterate).
        x: (N, ...) real array of the same shape, the ball centres (clean inputs). Each must
            lie inside the box, else ValueError.
        eps: radius >= 0, a scalar or a per-example array of shape (N,). eps = 0 returns
            x exactly; eps = inf means "box only".
        norm: 'linf', 'l2' or 'l1' (also np.inf, 2, 1).
        lo, hi: box bounds, scalars or arrays broadcastable to x.shape; None leaves that side
            unbounded.

    Returns:
        (N, ...) array of dtype result_type(x_adv, x) (float64 for integer inputs): for each
        example, the point of the feasible set nearest to x_adv in the Euclidean norm.

    Guarantees. Feasibility is exact, with no tolerance: lo <= out <= hi, and with
    d = out.astype(float64) - x.astype(float64), norm_per_example(d, norm) <= eps. Other
    ways of evaluating the norm (np.linalg.norm, another summation order, float32
    arithmetic) can differ by a few units in the last place (~1e-15 relative in float64).
    Optimality: the bisections stop at adjacent doubles, so the output matches the exact
    projection to ~1e-15 relative in float64; for float32 outputs each coordinate is then
    rounded towards x (at most one float32 ulp from the float64 answer).

    Raises:
        ValueError: shape mismatch, unknown norm, eps < 0 / NaN / wrong shape, NaN or inf in
            x_adv or x, NaN bounds, lo > hi, or x outside [lo, hi].
    """
    norm = _canonical_norm(norm)
    z, c, e, lo2, hi2, dt, shape = _prepare(x_adv, x, eps, lo, hi)
    if norm == "linf":
        out = _project_linf(z, c, e, lo2, hi2)
    elif norm == "l2":
        out = _project_l2(z, c, e, lo2, hi2)
    else:
        out = _project_l1(z, c, e, lo2, hi2)
    return _finalize(out, c, e, lo2, hi2, norm, dt).reshape(shape)


def random_start(
    x: np.ndarray,
    eps: float | np.ndarray,
    norm: str | float,
    rng: np.random.Generator,
    lo: float | np.ndarray | None = None,
    hi: float | np.ndarray | None = None,
) -> np.ndarray:
    """A point drawn uniformly from the eps-ball around each example, then projected into the box.

    Sampling (D = number of features per example):
        L-inf: x + U(-eps, eps)^D, uniform in the cube.
        L2:    x + eps * U^(1/D) * g / ||g||_2 with g ~ N(0, I): a uniform direction and the
               radius law of a uniform point in a D-ball (P(radius <= r) = (r / eps)^D).
        L1:    x + eps * U^(1/D) * l / ||l||_1 with l iid Laplace: l / ||l||_1 is uniform on the
               L1 sphere, and the same radius law makes the point uniform in the L1 ball.
    The sample is then passed through `project` with the box, so it lies in ball and box.

    Args:
        x: (N, ...) real array of centres, inside [lo, hi].
        eps: finite radius >= 0, scalar or shape (N,).
        norm: 'linf', 'l2' or 'l1' (also np.inf, 2, 1).
        rng: a np.random.Generator (the only source of randomness).
        lo, hi: box bounds as in `project`.

    Returns:
        (N, ...) array with x's dtype (float64 for integer x).

    Raises:
        ValueError: as `project`, and for infinite eps. TypeError: rng is not a Generator.
    """
    norm = _canonical_norm(norm)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x_arr = np.asarray(x)
    n, d = _batch_dims(x_arr.shape, "x")
    e = _eps_per_example(eps, n)
    if not np.all(np.isfinite(e)):
        raise ValueError("random_start needs a finite eps")
    dt = _float_dtype(x_arr)
    c = x_arr.reshape(n, d).astype(np.float64)
    _check_finite(c, "x")
    if norm == "linf":
        delta = rng.uniform(-1.0, 1.0, size=(n, d)) * e[:, None]
    else:
        if norm == "l2":
            u = rng.standard_normal((n, d))
        else:
            u = rng.laplace(size=(n, d))
        scale = np.maximum(_row_norm(u, norm), np.finfo(np.float64).tiny)
        radius = e * rng.random(n) ** (1.0 / max(d, 1))
        delta = u * (radius / scale)[:, None]
    start = (c + delta).astype(dt).reshape(x_arr.shape)
    return project(start, x_arr.astype(dt), e, norm, lo, hi)


def steepest_step(g: np.ndarray, norm: str | float, q: float | None = None) -> np.ndarray:
    """Unit-norm steepest-ascent direction of a gradient, per example.

    L-inf: sign(g).
    L2:    g / max(||g||_2, 1e-12).
    L1:    the sparse step of Tramer & Boneh (2019): keep the coordinates whose |g| is at least
           the q-quantile of |g| in that example (q = 0.99 by default, i.e. the top ~1%; q = 1
           keeps only the largest entry, ties included), set them to sign(g) / count and the
           rest to 0, so the step has L1 norm exactly 1. Zero coordinates are never kept.
    A zero gradient gives a zero step for every norm.

    Args:
        g: (N, ...) real array, e.g. the loss gradient with respect to the input.
        norm: 'linf', 'l2' or 'l1' (also np.inf, 2, 1).
        q: quantile level in [0, 1] for the L1 step (a fraction, not a percentage);
            ignored for L-inf and L2.

    Returns:
        (N, ...) array with g's dtype (float64 for integer g).

    Raises:
        ValueError: unknown norm, NaN/inf in g, q outside [0, 1].
    """
    norm = _canonical_norm(norm)
    g_arr = np.asarray(g)
    n, d = _batch_dims(g_arr.shape, "g")
    dt = _float_dtype(g_arr)
    g2 = g_arr.reshape(n, d).astype(np.float64)
    _check_finite(g2, "g")
    if q is None:
        q = _DEFAULT_L1_QUANTILE
    numeric = isinstance(q, (int, float, np.integer, np.floating)) and not isinstance(q, bool)
    if not (numeric and 0.0 <= q <= 1.0):
        raise ValueError(f"q must be a quantile level in [0, 1] (e.g. 0.99), got {q!r}")
    if d == 0 or n == 0:
        return np.zeros(g_arr.shape, dtype=dt)
    if norm == "linf":
        step = np.sign(g2)
    elif norm == "l2":
        step = g2 / np.maximum(_row_norm(g2, "l2"), 1e-12)[:, None]
    else:
        mag = np.abs(g2)
        thresh = np.quantile(mag, float(q), axis=1)
        keep = (mag >= thresh[:, None]) & (mag > 0)
        count = keep.sum(axis=1)
        step = np.where(keep, np.sign(g2), 0.0) / np.maximum(count, 1)[:, None]
    return step.astype(dt).reshape(g_arr.shape)


def per_example(v: np.ndarray, ndim: int) -> np.ndarray:
    """(N,) -> (N, 1, ..., 1) with `ndim` axes in all, to scale (N, ...) arrays per example."""
    return np.asarray(v).reshape((len(v),) + (1,) * (ndim - 1))


def norm_per_example(v: np.ndarray, norm: str | float) -> np.ndarray:
    """Norm of each example of `v` over all non-batch axes.

    Args:
        v: (N, ...) real array.
        norm: 'linf', 'l2' or 'l1' (also np.inf, 2, 1).

    Returns:
        (N,) float64 array (computed in float64; NaN entries propagate to their row). This is
        the measurement under which `project` guarantees ||out - x|| <= eps exactly.
    """
    norm = _canonical_norm(norm)
    v_arr = np.asarray(v)
    n, d = _batch_dims(v_arr.shape, "v")
    _float_dtype(v_arr)
    return _row_norm(v_arr.reshape(n, d).astype(np.float64), norm)
