"""Threat-model geometry: the exact projection onto an ε-ball ∩ box, uniform random starts,
steepest-ascent steps and per-example norms.

An attack keeps its iterate in S = {x' : ‖x' − x‖ ≤ ε, lo ≤ x' ≤ hi}. The Euclidean
projection of z onto S (the centre x lies in the box):

    L∞: clip(z, max(x − ε, lo), min(x + ε, hi))                      two boxes: one clip
    L2: x + clip(s·(z − x), lo − x, hi − x), s ∈ (0, 1] the largest with ‖·‖₂ ≤ ε
    L1: x + clip(soft_threshold(z − x, τ), lo − x, hi − x), τ ≥ 0 the smallest with ‖·‖₁ ≤ ε

"Ball, then clip" is feasible but, for L2 and L1, not the nearest point: the clip spends
less than ε and never gives the rest back. s and τ are found by bisection, vectorised over
the batch, down to adjacent doubles (s = 1/(1 + λ) for the KKT multiplier λ).

The threat set as one value, Ball(eps, norm, lo, hi), is S around each centre x:

    ball.project(z, x)    Π_S(z), the nearest point of S         (`project`)
    ball.sample(x, rng)   a point uniform in the ε-ball, then Π_S  (`random_start`)
    ball.contains(z, x)   z ∈ S, per example

Every function takes a leading batch axis and acts per example over the other axes,
so (N, D), (N, C, H, W) and (N, T, d) arrays all work. Norm names: "linf", "l2", "l1".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Ball", "check_norm", "check_radius", "project", "random_start", "steepest_step",
           "norm_per_example", "per_example", "MAX_RADIUS"]

NORMS = ("linf", "l2", "l1")
MAX_RADIUS = 1e150
"""The largest radius or step size accepted: its square, and its sums over the entries of
an input, stay finite in float64."""
_MAX_BISECT = 200   # bisections stop at adjacent doubles (about 60 halvings); this only caps
_MAX_REPAIR = 54    # rounding-repair pass k shrinks by 1 − 2**(k − 52): the last returns x


def check_radius(value, name: str = "eps") -> float:
    """`value` as a float if it is a usable radius or step size; ValueError naming `name`.

    Usable: a real number (not a bool), finite, >= 0 and at most MAX_RADIUS (1e150: beyond
    it squares and sums over an input overflow float64).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    if v > MAX_RADIUS:
        raise ValueError(f"{name} must be at most {MAX_RADIUS:g} (larger values overflow "
                         f"float64 arithmetic), got {v:.3g}")
    return v


def check_norm(norm) -> str:
    """`norm` itself if it is "linf", "l2" or "l1"; ValueError otherwise."""
    if isinstance(norm, str) and norm in NORMS:
        return norm
    raise ValueError(f"unknown norm {norm!r}; expected one of 'linf', 'l2', 'l1'")


@dataclass(frozen=True)
class Ball:
    """S = {z : ‖z − x‖ ≤ eps, lo ≤ z ≤ hi} around each centre x (N, ...), one value for the
    threat set an attack keeps its iterates in.

    eps: finite radius ≥ 0, at most MAX_RADIUS (1e150). norm:
    "linf", "l2" or "l1". lo, hi: the box, numbers or None for no bound on that side.
    Raises ValueError for a bad eps (see `check_radius`), an unknown norm or lo > hi.
    """

    eps: float
    norm: str
    lo: float | None = 0.0
    hi: float | None = 1.0

    def __post_init__(self):
        eps = self.eps
        if not np.isscalar(eps) and np.ndim(eps) != 0:
            raise ValueError(f"eps must be a scalar, got shape {np.shape(eps)}")
        eps = check_radius(eps.item() if isinstance(eps, np.ndarray) else eps, "eps")
        check_norm(self.norm)
        lo = None if self.lo is None else _bound(self.lo, "lo")
        hi = None if self.hi is None else _bound(self.hi, "hi")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"empty box: lo = {lo} > hi = {hi}")
        for name, value in (("eps", eps), ("lo", lo), ("hi", hi)):    # frozen: set once here
            object.__setattr__(self, name, value)

    def project(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Π_S(z): the point of S around x nearest to z, per example (see `project`)."""
        return project(z, x, self.eps, self.norm, self.lo, self.hi)

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random start: uniform in the ε-ball around x, then Π_S (see `random_start`)."""
        return random_start(x, self.eps, self.norm, rng, self.lo, self.hi)

    def contains(self, z: np.ndarray, x: np.ndarray, tol: float | None = None) -> np.ndarray:
        """(N,) bool: z_i ∈ S around x_i, i.e. ‖z_i − x_i‖ ≤ ε + tol and lo − tol ≤ z_i ≤
        hi + tol, the norm taken in float64 as `norm_per_example` takes it.

        tol=None allows exactly what `project` guarantees: for L∞ one rounding of x ± ε to
        the arrays' dtype (one ulp of max |x_i| + ε per example), for L2 and L1 nothing.
        """
        z, x = np.asarray(z), np.asarray(x)
        if z.shape != x.shape:
            raise ValueError(f"shape mismatch: z has shape {z.shape}, x has {x.shape}")
        n, d = _rows(x, "x")
        dt = _float_dtype(z, x)
        z2, c = z.reshape(n, d).astype(np.float64), x.reshape(n, d).astype(np.float64)
        if tol is not None:
            slack, box_slack = np.full(n, float(tol)), float(tol)
        elif self.norm == "linf":
            top = np.max(np.abs(c), axis=1, initial=0.0) + self.eps
            slack, box_slack = np.spacing(top.astype(dt)).astype(np.float64), 0.0
        else:
            slack, box_slack = np.zeros(n), 0.0
        inside = _row_norm(z2 - c, self.norm) <= self.eps + slack
        if self.lo is not None:
            inside &= np.all(z2 >= self.lo - box_slack, axis=1)
        if self.hi is not None:
            inside &= np.all(z2 <= self.hi + box_slack, axis=1)
        return inside


def _bound(b, name: str) -> float:
    """A box bound of a Ball as a float; ValueError for an array, NaN or a non-number."""
    if not np.isscalar(b) and np.ndim(b) != 0:
        raise ValueError(f"{name} must be a number or None, got shape {np.shape(b)}")
    try:
        value = float(b)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number or None, got {b!r}") from err
    if np.isnan(value):
        raise ValueError(f"{name} contains NaN")
    return value


def per_example(v: np.ndarray, ndim: int) -> np.ndarray:
    """(N,) -> (N, 1, ..., 1) with `ndim` axes in all, to scale (N, ...) arrays per example."""
    return np.asarray(v).reshape((len(v),) + (1,) * (ndim - 1))


def _rows(a: np.ndarray, name: str) -> tuple[int, int]:
    """(N, D) of an array with a leading batch axis."""
    if a.ndim < 1:
        raise ValueError(f"{name} must have a leading batch axis; got a 0-d array")
    return a.shape[0], int(np.prod(a.shape[1:], dtype=np.int64))


def _row_norm(v: np.ndarray, norm: str) -> np.ndarray:
    """(N, D) float64 -> (N,) norms."""
    if norm == "linf":
        return np.max(np.abs(v), axis=1, initial=0.0)
    if norm == "l2":
        return np.sqrt(np.sum(v * v, axis=1))
    return np.sum(np.abs(v), axis=1)


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    dt = np.result_type(*arrays)
    if dt.kind not in "fiub":
        raise ValueError(f"expected real-valued arrays, got dtype {dt}")
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains {'NaN' if np.isnan(a).any() else 'inf'}; "
                         "inputs must be finite")


def _check_eps(eps, n: int) -> np.ndarray:
    """ε as (N,) float64, ≥ 0; a scalar is broadcast."""
    try:
        e = np.asarray(eps, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"eps must be a number or an array of shape ({n},), got {eps!r}") from err
    if e.ndim == 0:
        e = np.full(n, float(e))
    elif e.shape != (n,):
        raise ValueError(f"eps must be a scalar or have shape (N,) = ({n},), got shape {e.shape}")
    if np.isnan(e).any() or (e < 0).any():
        raise ValueError(f"eps must be >= 0 and not NaN, got {eps!r}")
    return e


def _check_box(x: np.ndarray, lo, hi) -> tuple[np.ndarray | None, np.ndarray | None]:
    """lo, hi as float64 arrays broadcastable to x (None = unbounded); x must lie inside."""
    bounds = []
    for b, name in ((lo, "lo"), (hi, "hi")):
        if b is not None:
            b = np.asarray(b, dtype=np.float64)
            if np.isnan(b).any():
                raise ValueError(f"{name} contains NaN")
            try:
                np.broadcast_shapes(b.shape, x.shape)
            except ValueError as err:
                raise ValueError(f"{name} with shape {b.shape} does not broadcast to the input "
                                 f"shape {x.shape}") from err
        bounds.append(b)
    lo, hi = bounds
    if lo is not None and hi is not None and np.any(lo > hi):
        raise ValueError("empty box: lo > hi somewhere")
    if (lo is not None and np.any(x < lo)) or (hi is not None and np.any(x > hi)):
        raise ValueError("the centre x lies outside the box [lo, hi]; it must be feasible")
    return lo, hi


def _inward(bound, dt, outside: float):
    """A float64 bound in dtype `dt`, rounded into the box (away from `outside`)."""
    if bound is None:
        return None
    t = bound.astype(dt)
    moved = t < bound if outside < 0 else t > bound
    return np.where(moved, np.nextafter(t, dt.type(-outside)), t) if moved.any() else t


def _project_linf(z, x, e, lo, hi):
    """Two clips in x's dtype: clip(z, max(x − ε, lo), min(x + ε, hi))."""
    e = per_example(e.astype(x.dtype), x.ndim)
    lower, upper = x - e, x + e
    if lo is not None:
        lower = np.maximum(lower, lo)
    if hi is not None:
        upper = np.minimum(upper, hi)
    return np.clip(z, lower, upper)


def _project_l2(z, c, e, lo, hi):
    """Rows of float64 (N, D) arrays: points z, centres c, box [lo, hi]."""
    out = np.clip(z, lo, hi)
    act = np.flatnonzero((_row_norm(out - c, "l2") > e) & (e > 0))
    if act.size == 0:
        return out
    c, ea, w = c[act], e[act], z[act] - c[act]
    a, b = lo[act] - c, hi[act] - c
    s_lo = np.minimum(ea / _row_norm(w, "l2"), 1.0)   # ‖clip(s·w)‖ ≤ s‖w‖: feasible
    boxed = np.isfinite(a).any(axis=1) | np.isfinite(b).any(axis=1)
    s_hi = np.where(boxed, 1.0, s_lo)                   # no box: s_lo is the answer
    for _ in range(_MAX_BISECT):
        # geometric midpoints while the bracket spans more than a factor 2, then arithmetic
        mid = np.where(s_hi > 2 * s_lo, np.sqrt(s_lo) * np.sqrt(s_hi), 0.5 * (s_lo + s_hi))
        live = (mid > s_lo) & (mid < s_hi)
        if not live.any():
            break
        feasible = _row_norm(np.clip(mid[:, None] * w, a, b), "l2") <= ea
        s_lo = np.where(live & feasible, mid, s_lo)
        s_hi = np.where(live & ~feasible, mid, s_hi)
    out[act] = c + np.clip(s_lo[:, None] * w, a, b)
    return out


def _project_l1(z, c, e, lo, hi):
    out = np.clip(z, lo, hi)
    act = np.flatnonzero((_row_norm(out - c, "l1") > e) & (e > 0))
    if act.size == 0:
        return out
    c, ea, w = c[act], e[act], z[act] - c[act]
    a, b = lo[act] - c, hi[act] - c

    def shrink(tau):                                    # clip(soft_threshold(w, τ), a, b)
        return np.clip(np.sign(w) * np.maximum(np.abs(w) - tau[:, None], 0.0), a, b)

    t_lo, t_hi = np.zeros(act.size), np.max(np.abs(w), axis=1)   # infeasible, feasible
    for _ in range(_MAX_BISECT):
        mid = 0.5 * (t_lo + t_hi)
        live = (mid > t_lo) & (mid < t_hi)
        if not live.any():
            break
        feasible = _row_norm(shrink(mid), "l1") <= ea
        t_hi = np.where(live & feasible, mid, t_hi)
        t_lo = np.where(live & ~feasible, mid, t_lo)
    out[act] = c + shrink(t_hi)
    return out


def _round_toward_centre(out, c, c_t, dt):
    """Cast float64 `out` to `dt`, rounding each coordinate towards the centre."""
    t = out.astype(dt)
    if dt == np.float64:
        return t
    t64 = t.astype(np.float64)
    away = ((t64 > out) & (out >= c)) | ((t64 < out) & (out <= c))
    t[away] = np.nextafter(t[away], c_t[away])
    return t


def _finalize(out, c, e, lo, hi, norm, dt):
    """Cast to `dt` with ‖out − x‖ ≤ ε exactly as norm_per_example measures it: rows that
    rounding pushed out are pulled towards x by a factor that grows each pass."""
    c_t = c.astype(dt)
    res = _round_toward_centre(out, c, c_t, dt)
    for k in range(_MAX_REPAIR):
        r = _row_norm(res.astype(np.float64) - c, norm)
        bad = np.flatnonzero(r > e)
        if bad.size == 0:
            break
        factor = (e[bad] / r[bad]) * (1.0 - 2.0 ** (k - 52))
        out[bad] = np.clip(c[bad] + (out[bad] - c[bad]) * factor[:, None], lo[bad], hi[bad])
        res[bad] = _round_toward_centre(out[bad], c[bad], c_t[bad], dt)
    bad = (_row_norm(res.astype(np.float64) - c, norm) > e) | (e == 0)
    res[bad] = c_t[bad]
    return res


def project(x_adv: np.ndarray, x: np.ndarray, eps: float | np.ndarray, norm: str = "linf",
            lo: float | np.ndarray | None = None,
            hi: float | np.ndarray | None = None) -> np.ndarray:
    """The point of {‖· − x‖ ≤ ε} ∩ [lo, hi] nearest to `x_adv`, per example.

    x_adv, x: (N, ...) real arrays of one shape; every x inside [lo, hi].
    eps: ≥ 0, scalar or (N,); 0 returns x, inf means the box alone.
    norm: "linf", "l2" or "l1". lo, hi: broadcastable to x.shape; None = unbounded.
    Returns (N, ...) of dtype result_type(x_adv, x) (float64 for integer inputs).

    L∞ is two clips in that dtype, ε rounded to it, so ‖out − x‖∞ ≤ ε up to that one
    rounding. L2 and L1 are solved in float64 to ~1e-15 relative and then rounded towards
    x, so that norm_per_example(out − x, norm) ≤ ε and lo ≤ out ≤ hi hold exactly.
    Raises ValueError for mismatched shapes, an unknown norm, a bad eps, NaN or inf
    inputs, NaN bounds, lo > hi, or x outside the box.
    """
    norm = check_norm(norm)
    z, x = np.asarray(x_adv), np.asarray(x)
    if z.shape != x.shape:
        raise ValueError(f"shape mismatch: x_adv has shape {z.shape}, x has {x.shape}")
    n, d = _rows(x, "x")
    dt = _float_dtype(z, x)
    z, x = z.astype(dt, copy=False), x.astype(dt, copy=False)
    _check_finite(z, "x_adv")
    _check_finite(x, "x")
    e = _check_eps(eps, n)
    lo, hi = _check_box(x, lo, hi)
    if norm == "linf":
        return _project_linf(z, x, e, _inward(lo, dt, -np.inf), _inward(hi, dt, np.inf))
    shape = x.shape
    z, c = z.reshape(n, d).astype(np.float64), x.reshape(n, d).astype(np.float64)
    lo = np.broadcast_to(-np.inf if lo is None else lo, shape).reshape(n, d)
    hi = np.broadcast_to(np.inf if hi is None else hi, shape).reshape(n, d)
    out = (_project_l2 if norm == "l2" else _project_l1)(z, c, e, lo, hi)
    return _finalize(np.clip(out, lo, hi), c, e, lo, hi, norm, dt).reshape(shape)


def random_start(x: np.ndarray, eps: float | np.ndarray, norm: str, rng: np.random.Generator,
                 lo: float | np.ndarray | None = None,
                 hi: float | np.ndarray | None = None) -> np.ndarray:
    """A point uniform in the ε-ball around each example, then projected into the box.

    L∞: x + U(−ε, ε)^D.  L2: x + ε·U^(1/D)·g/‖g‖₂, g ~ N(0, I).  L1: the same with g iid
    Laplace and ‖g‖₁ (g/‖g‖₁ is uniform on the L1 sphere). D = features per example.
    x: (N, ...) inside [lo, hi]; eps finite, ≥ 0, scalar or (N,); rng: np.random.Generator.
    Returns (N, ...) with x's dtype (float64 for integer x).
    """
    norm = check_norm(norm)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x = np.asarray(x)
    n, d = _rows(x, "x")
    e = _check_eps(eps, n)
    if not np.all(np.isfinite(e)):
        raise ValueError("random_start needs a finite eps")
    dt = _float_dtype(x)
    c = x.reshape(n, d).astype(np.float64)
    _check_finite(c, "x")
    if norm == "linf":
        delta = rng.uniform(-1.0, 1.0, size=(n, d)) * e[:, None]
    else:
        g = rng.standard_normal((n, d)) if norm == "l2" else rng.laplace(size=(n, d))
        radius = e * rng.random(n) ** (1.0 / max(d, 1))
        delta = g * (radius / np.maximum(_row_norm(g, norm), np.finfo(np.float64).tiny))[:, None]
    start = (c + delta).astype(dt).reshape(x.shape)
    return project(start, x.astype(dt), e, norm, lo, hi)


def steepest_step(g: np.ndarray, norm: str, q: float | None = None) -> np.ndarray:
    """The unit-norm direction s maximising ⟨g, s⟩, per example.

    L∞: sign(g).  L2: g / max(‖g‖₂, 1e-12).
    L1: the sparse step of Tramèr & Boneh (2019): sign(g)/count on the coordinates whose |g|
        reaches the q-quantile of |g| (q = 0.99 by default; q = 1 keeps only the largest,
        ties included), 0 elsewhere; zero coordinates are never kept.
    g: (N, ...) finite real array. Returns (N, ...) with g's dtype; a zero g gives 0.
    """
    norm = check_norm(norm)
    g = np.asarray(g)
    n, d = _rows(g, "g")
    dt = _float_dtype(g)
    g2 = g.reshape(n, d).astype(np.float64)
    _check_finite(g2, "g")
    q = 0.99 if q is None else q
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) \
            or not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be a quantile level in [0, 1] (e.g. 0.99), got {q!r}")
    if n == 0 or d == 0:
        return np.zeros(g.shape, dtype=dt)
    if norm == "linf":
        step = np.sign(g2)
    elif norm == "l2":
        step = g2 / np.maximum(_row_norm(g2, "l2"), 1e-12)[:, None]
    else:
        mag = np.abs(g2)
        keep = (mag >= np.quantile(mag, float(q), axis=1)[:, None]) & (mag > 0)
        step = np.where(keep, np.sign(g2), 0.0) / np.maximum(keep.sum(axis=1), 1)[:, None]
    return step.astype(dt).reshape(g.shape)


def norm_per_example(v: np.ndarray, norm: str) -> np.ndarray:
    """(N, ...) real -> (N,) float64 norms over the non-batch axes; the measure under which
    `project` guarantees ‖out − x‖ ≤ ε for L2 and L1."""
    norm = check_norm(norm)
    v = np.asarray(v)
    n, d = _rows(v, "v")
    _float_dtype(v)
    return _row_norm(v.reshape(n, d).astype(np.float64), norm)
