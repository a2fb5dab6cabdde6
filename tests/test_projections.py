"""Tests for npadv.attacks.projections: exact ball-and-box projection, random starts,
steepest-ascent steps and per-example norms."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import minimize

from npadv.attacks.projections import (
    Ball,
    check_norm,
    norm_per_example,
    project,
    random_start,
    steepest_step,
)
from npadv.testing import assert_projection, projection_property

NORMS = ["linf", "l2", "l1"]
ORD = {"linf": np.inf, "l2": 2, "l1": 1}
# The scipy oracle is the slow part: cap its example count (lowering only).
ORACLE_EXAMPLES = min(settings().max_examples, 60)


# ----------------------------------------------------------------------------- strategies

@st.composite
def batch_shapes(draw, max_features=20):
    """(N, D), (N, T, d) or (N, C, H, W) with N in 1..4 and at most max_features features."""
    n = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["flat", "seq", "image"]))
    if kind == "flat":
        return (n, draw(st.integers(1, max_features)))
    if kind == "seq":
        t = draw(st.integers(1, 4))
        return (n, t, draw(st.integers(1, max(1, max_features // t))))
    ch = draw(st.integers(1, 2))
    h = draw(st.integers(1, min(4, max_features // ch)))
    return (n, ch, h, draw(st.integers(1, max(1, max_features // (ch * h)))))


@st.composite
def problems(draw, box, max_features=20, eps_min=0.0):
    """(z, x, eps, lo, hi): centre x inside the box, z anywhere from very near to far away."""
    shape = draw(batch_shapes(max_features))
    centre = st.floats(0.0, 1.0) if box else st.floats(-2.0, 2.0)
    x = draw(hnp.arrays(np.float64, shape, elements=centre))
    scale = draw(st.sampled_from([1e-3, 0.1, 1.0, 3.0, 30.0]))
    noise = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0, 1.0)))
    z = x + scale * noise
    radius = st.floats(eps_min, 2.0)
    eps = draw(st.one_of(radius, hnp.arrays(np.float64, (shape[0],), elements=radius)))
    lo, hi = (0.0, 1.0) if box else (None, None)
    return z, x, eps, lo, hi


# ----------------------------------------------------------------------------- helpers

def eps_vec(eps, n):
    return np.broadcast_to(np.asarray(eps, dtype=np.float64), (n,))


def flat(a):
    return np.asarray(a, dtype=np.float64).reshape(a.shape[0], -1)


def assert_feasible(p, x, eps, norm, lo, hi):
    """Exact guarantee of `project` (L∞: up to rounding x ± eps once in p's dtype), plus an
    independent norm evaluation."""
    e = eps_vec(eps, p.shape[0])
    d = flat(p) - flat(x)
    if norm == "linf":
        e = e + np.spacing((np.max(np.abs(flat(x)), axis=1) + e).astype(p.dtype))
    assert np.all(norm_per_example(d, norm) <= e)
    assert np.all(np.linalg.norm(d, ord=ORD[norm], axis=1) <= e * (1 + 1e-12))
    if lo is not None:
        assert np.all(p >= lo)
    if hi is not None:
        assert np.all(p <= hi)


def ball_then_clip(z, x, eps, norm, lo, hi):
    """What many libraries do: project onto the ball, then clip. Feasible but not nearest."""
    w = flat(z) - flat(x)
    if norm == "l2":
        w = w * np.minimum(1.0, eps / np.linalg.norm(w, axis=1))[:, None]
    else:
        raise NotImplementedError(norm)
    return np.clip(flat(x) + w, lo, hi).reshape(z.shape)


def oracle(z, c, eps, norm, lo, hi):
    """Nearest point of {||v - c|| <= eps, lo <= v <= hi} to z (1-D) with scipy SLSQP.

    L2 keeps its quadratic constraint; L1 uses split variables (v, t) with |v - c| <= t and
    sum(t) <= eps; L-inf uses the linear constraints |v - c| <= eps, box as bounds.
    """
    d = z.size
    box = [(lo, hi)] * d

    def fun(u):
        return 0.5 * np.sum((u[:d] - z) ** 2)

    def jac(u):
        g = np.zeros_like(u)
        g[:d] = u[:d] - z
        return g

    opts = {"ftol": 1e-15, "maxiter": 1000}
    if norm == "l2":
        w = z - c
        nw = np.linalg.norm(w)
        start = c + w * min(1.0, eps / nw) if nw > 0 else c.copy()
        start = np.clip(start, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        cons = [{"type": "ineq", "fun": lambda u: eps**2 - np.sum((u - c) ** 2),
                 "jac": lambda u: -2.0 * (u - c)}]
        res = minimize(fun, start, jac=jac, bounds=box, constraints=cons, method="SLSQP",
                       options=opts)
        return res.x, res.success
    eye = np.eye(d)
    if norm == "l1":
        a = np.block([[-eye, eye], [eye, eye], [np.zeros((1, d)), -np.ones((1, d))]])
        b = np.concatenate([c, -c, [eps]])
        bounds = box + [(0.0, None)] * d
        start = np.concatenate([c, np.zeros(d)])
    else:
        a = np.vstack([-eye, eye])
        b = np.concatenate([c + eps, eps - c])
        bounds = box
        start = c.copy()
    cons = [{"type": "ineq", "fun": lambda u: a @ u + b, "jac": lambda u: a}]
    res = minimize(fun, start, jac=jac, bounds=bounds, constraints=cons, method="SLSQP",
                   options=opts)
    return res.x[:d], res.success


# ----------------------------------------------------------------------------- project: properties

# Feasible, idempotent, the variational inequality and nearest among sampled feasible points,
# with z inside, outside and exactly on the boundary of the ball ∩ box (npadv.testing).
test_linf_projection = projection_property(project, "linf")
test_l2_projection = projection_property(project, "l2")
test_l1_projection = projection_property(project, "l1")
test_l2_projection_without_box = projection_property(project, "l2", box=False)
test_l1_projection_without_box = projection_property(project, "l1", box=False)
test_l2_projection_float32 = projection_property(project, "l2", dtype=np.float32)


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_projection_properties_on_random_problems(norm, box, data, seed):
    """The same checks on centres anywhere in the box and z from 1e-3 to 30 away."""
    z, x, eps, lo, hi = data.draw(problems(box))
    assert_projection(project, norm, eps, lo, hi, (z, x), seed=seed)


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data())
def test_projection_is_feasible(norm, box, data):
    z, x, eps, lo, hi = data.draw(problems(box))
    p = project(z, x, eps, norm, lo, hi)
    assert p.shape == z.shape and p.dtype == np.float64
    assert_feasible(p, x, eps, norm, lo, hi)


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@settings(max_examples=ORACLE_EXAMPLES)
@given(data=st.data())
def test_matches_scipy_oracle(norm, box, data):
    z, x, eps, lo, hi = data.draw(problems(box, max_features=6, eps_min=0.01))
    p = flat(project(z, x, eps, norm, lo, hi))
    zf, xf, e = flat(z), flat(x), eps_vec(eps, z.shape[0])
    checked = 0
    for i in range(zf.shape[0]):
        ref, ok = oracle(zf[i], xf[i], e[i], norm, lo, hi)
        if not ok:  # the oracle is the reference: skip rows where it did not converge
            continue
        checked += 1
        # Ours is feasible (tested above), so it must be at least as close to z as the oracle.
        d_ours, d_ref = np.sum((p[i] - zf[i]) ** 2), np.sum((ref - zf[i]) ** 2)
        assert d_ours <= d_ref + 1e-9 * (1 + d_ref)
        # And near the oracle's point: for the nearest point p* of a convex set and any
        # feasible v, ||v − p*||² ≤ ||v − z||² − ||p* − z||². With v = ref this bounds the
        # distance by the oracle's own excess, however loosely SLSQP converged (it may stop
        # a few 1e-6 short of a bound).
        gap = np.sum((p[i] - ref) ** 2)
        assert gap <= max(d_ref - d_ours, 0.0) + 1e-10 * (1 + d_ref), (p[i], ref)
    assume(checked > 0)


# ----------------------------------------------------------------------------- project: examples

def test_ball_then_clip_is_not_nearest_l2():
    # Centre near the top of the box: the clip on coordinate 0 frees budget that the exact
    # projection spends on coordinate 1.
    x = np.array([[0.9, 0.5]])
    z = np.array([[2.0, 1.0]])
    eps = 0.3
    naive = ball_then_clip(z, x, eps, "l2", 0.0, 1.0)
    exact = project(z, x, eps, "l2", 0.0, 1.0)
    # KKT by hand: coordinate 0 stops at hi = 1 (uses 0.1), the rest goes to coordinate 1.
    np.testing.assert_allclose(exact, [[1.0, 0.5 + np.sqrt(0.3**2 - 0.1**2)]], rtol=0,
                               atol=1e-12)
    assert_feasible(naive, x, eps, "l2", 0.0, 1.0)
    d_naive = np.linalg.norm(naive - z)
    d_exact = np.linalg.norm(exact - z)
    # Ball step: 0.3 * (1.1, 0.5) / sqrt(1.46), then coordinate 0 is clipped from 1.173 to 1.
    np.testing.assert_allclose(naive, [[1.0, 0.5 + 0.15 / np.sqrt(1.46)]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(d_naive, np.sqrt(1 + (0.5 - 0.15 / np.sqrt(1.46)) ** 2), atol=1e-12)
    np.testing.assert_allclose(d_exact, np.sqrt(1 + (0.5 - np.sqrt(0.08)) ** 2), atol=1e-12)
    assert d_exact < d_naive - 0.04


def test_l1_box_example():
    # Exact: coordinate 0 is capped at 1 (uses 0.1 of the budget), coordinate 1 gets 0.2.
    # Ball-then-clip would soft-threshold to (1.2, 0.5) and clip to (1.0, 0.5).
    out = project(np.array([[2.0, 1.0]]), np.array([[0.9, 0.5]]), 0.3, "l1", 0.0, 1.0)
    np.testing.assert_allclose(out, [[1.0, 0.7]], rtol=0, atol=1e-12)


def test_linf_example_and_unclipped_points_are_returned_unchanged():
    x = np.array([[0.1, 0.5, 0.95]])
    z = np.array([[-1.0, 0.55, 2.0]])
    np.testing.assert_array_equal(project(z, x, 0.2, "linf", 0.0, 1.0), [[0.0, 0.55, 1.0]])
    np.testing.assert_array_equal(project(z, x, 0.2, "linf"), [[-0.1, 0.55, 1.15]])
    inside = np.array([[0.15, 0.45, 0.9]])
    for norm in NORMS:
        np.testing.assert_array_equal(project(inside, x, 0.2, norm, 0.0, 1.0), inside)


def test_eps_zero_returns_x_exactly():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = rng.random((3, 1, 4, 4)).astype(dtype)
        z = (x + rng.standard_normal(x.shape)).astype(dtype)
        for norm in NORMS:
            np.testing.assert_array_equal(project(z, x, 0.0, norm, 0.0, 1.0), x)
            np.testing.assert_array_equal(project(z, x, 0.0, norm), x)
            p = project(z, x, np.array([0.0, 0.5, 0.0]), norm, 0.0, 1.0)
            np.testing.assert_array_equal(p[[0, 2]], x[[0, 2]])
            assert not np.array_equal(p[1], x[1])


def test_per_example_eps_equals_separate_calls():
    rng = np.random.default_rng(2)
    x = rng.random((4, 7))
    z = x + 2 * rng.standard_normal((4, 7))
    eps = np.array([0.05, 0.3, 1.0, 2.5])
    for norm in NORMS:
        together = project(z, x, eps, norm, 0.0, 1.0)
        for i in range(4):
            alone = project(z[i:i + 1], x[i:i + 1], eps[i], norm, 0.0, 1.0)
            np.testing.assert_array_equal(together[i:i + 1], alone)


def test_per_feature_box_bounds():
    rng = np.random.default_rng(3)
    lo = np.array([0.0, -1.0, 0.2, 0.5]).reshape(1, 4, 1)
    hi = np.array([1.0, 0.0, 0.3, 0.5]).reshape(1, 4, 1)
    x = rng.uniform(lo, hi, size=(3, 4, 2))
    z = x + 3 * rng.standard_normal(x.shape)
    for norm in NORMS:
        p = project(z, x, 0.4, norm, lo, hi)
        assert_feasible(p, x, 0.4, norm, np.broadcast_to(lo, p.shape), np.broadcast_to(hi, p.shape))
        assert np.all(p[:, 3] == 0.5)  # degenerate interval lo == hi
        ys = [project(x + rng.standard_normal(x.shape), x, 0.4, norm, lo, hi) for _ in range(20)]
        for y in ys:
            assert np.all(np.sum(flat(z - p) * flat(y - p), axis=1) <= 1e-9)


def test_norm_names_are_exactly_linf_l2_l1():
    for name in NORMS:
        assert check_norm(name) == name
    x = np.full((2, 5), 0.5)
    for other in [np.inf, "Linf", "inf", 2, "L2", "2", 1, 1.0, "l1 "]:
        with pytest.raises(ValueError, match="'linf', 'l2', 'l1'"):
            project(x, x, 0.3, other, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linf_is_two_clips_bit_for_bit(dtype):
    rng = np.random.default_rng(4)
    x = rng.random((64, 3, 5, 5)).astype(dtype)
    z = (x + rng.standard_normal(x.shape)).astype(dtype)
    for eps in (0.1, 0.3, np.linspace(0, 1, 64), 1e-9, 0.0):
        e = np.broadcast_to(np.asarray(eps, dtype), (64,)).reshape(-1, 1, 1, 1)
        p = project(z, x, eps, "linf", 0.0, 1.0)
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, np.clip(np.clip(z, x - e, x + e), 0.0, 1.0))
        np.testing.assert_array_equal(project(z, x, eps, "linf"), np.clip(z, x - e, x + e))


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data())
def test_float32_preserved_and_feasible(norm, box, data):
    z, x, eps, lo, hi = data.draw(problems(box))
    z32, x32 = z.astype(np.float32), x.astype(np.float32)
    p32 = project(z32, x32, eps, norm, lo, hi)
    assert p32.dtype == np.float32
    assert_feasible(p32, x32, eps, norm, lo, hi)
    # Same answer as the float64 projection of the same inputs, up to one float32 ulp (plus
    # float64 rounding of x + delta, which matters only for eps ~ 1e-16). L∞ rounds x ± eps
    # in float32: one ulp of |x| + eps.
    p64 = project(z32.astype(np.float64), x32.astype(np.float64), eps, norm, lo, hi)
    atol = np.spacing(np.float32(np.abs(x32).max() + np.max(eps))) if norm == "linf" else 1e-14
    np.testing.assert_allclose(p32, p64, rtol=1.2e-7, atol=atol)


def test_float32_tiny_eps_stays_feasible():
    # eps far below the float32 spacing around x: rounding must not leave the L2 or L1 ball.
    x = np.full((2, 6), 0.7, dtype=np.float32)
    z = np.full((2, 6), 0.9, dtype=np.float32)
    for norm in ("l2", "l1"):
        for eps in (1e-9, 3e-8, 1e-7):
            p = project(z, x, eps, norm, 0.0, 1.0)
            assert p.dtype == np.float32
            assert_feasible(p, x, eps, norm, 0.0, 1.0)


def test_bad_arguments_raise():
    x = np.full((2, 3), 0.5)
    z = np.zeros((2, 3))
    cases = [
        dict(eps=-0.1),
        dict(eps=np.nan),
        dict(eps=np.array([0.1, 0.2, 0.3])),
        dict(eps=np.array([[0.1], [0.2]])),
        dict(norm="l3"),
        dict(norm=3),
        dict(norm=True),
        dict(lo=0.6, hi=1.0),      # centre outside the box
        dict(lo=1.0, hi=0.0),      # empty box
        dict(lo=np.nan),
        dict(lo=np.zeros(4)),      # does not broadcast
    ]
    for kw in cases:
        args = {"eps": 0.1, "norm": "l2", "lo": 0.0, "hi": 1.0, **kw}
        with pytest.raises(ValueError):
            project(z, x, **args)
    with pytest.raises(ValueError, match="shape mismatch"):
        project(np.zeros((2, 4)), x, 0.1, "l2")
    with pytest.raises(ValueError, match="NaN"):
        project(np.where(np.eye(2, 3) > 0, np.nan, 0.0), x, 0.1, "l1")
    with pytest.raises(ValueError, match="NaN"):
        project(z, np.where(np.eye(2, 3) > 0, np.nan, 0.5), 0.1, "linf")
    with pytest.raises(ValueError, match="inf"):
        project(np.full((2, 3), np.inf), x, 0.1, "linf")
    with pytest.raises(ValueError, match="eps must be >= 0"):
        project(z, x, -1.0, "linf")
    with pytest.raises(ValueError, match="unknown norm"):
        project(z, x, 0.1, "l0")
    with pytest.raises(ValueError):
        project(np.float64(0.5), np.float64(0.5), 0.1, "l2")  # no batch axis


def test_empty_batch():
    out = project(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), 0.1, "l2")
    assert out.shape == (0, 3) and out.dtype == np.float32


# ----------------------------------------------------------------------------- random_start

@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), f32=st.booleans())
def test_random_start_in_ball_and_box(norm, box, data, seed, f32):
    _, x, eps, lo, hi = data.draw(problems(box))
    if f32:
        x = x.astype(np.float32)
    s = random_start(x, eps, norm, np.random.default_rng(seed), lo, hi)
    assert s.shape == x.shape and s.dtype == x.dtype
    assert_feasible(s, x, eps, norm, lo, hi)


@pytest.mark.parametrize("norm", NORMS)
def test_random_start_moves(norm):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 0.8, size=(50, 1, 3, 3))
    s = random_start(x, 0.1, norm, rng, 0.0, 1.0)
    assert np.all(np.any(s != x, axis=(1, 2, 3)))
    # Not all on the sphere either: the radius is spread over (0, eps].
    r = norm_per_example(s - x, norm)
    assert r.min() < 0.09 and r.max() > 0.05


def test_random_start_linf_is_uniform_in_cube():
    n, d, eps = 20000, 3, 0.5
    delta = random_start(np.zeros((n, d)), eps, "linf", np.random.default_rng(6))
    assert np.abs(delta).max() <= eps
    # U(-eps, eps): mean 0, variance eps^2 / 3, half the mass within eps / 2 of the centre.
    # A Gaussian, clipped Gaussian or zero start fails at least one of these.
    assert abs(delta.mean()) < 0.01
    np.testing.assert_allclose(delta.var(axis=0), eps**2 / 3, rtol=0.03)
    np.testing.assert_allclose(np.mean(np.abs(delta) <= eps / 2), 0.5, atol=0.01)
    np.testing.assert_allclose(np.mean(np.abs(delta) > 0.9 * eps), 0.1, atol=0.01)


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_random_start_l2_radius_law(d):
    n, eps = 20000, 2.0
    delta = random_start(np.zeros((n, d)), eps, "l2", np.random.default_rng(7 + d))
    r = np.linalg.norm(delta, axis=1)
    assert r.max() <= eps
    frac = np.mean(r <= eps / 2)
    sd = np.sqrt(0.5**d * (1 - 0.5**d) / n)
    assert abs(frac - 0.5**d) < 4 * sd + 1e-3
    # Uniform in the ball: isotropic with E[delta_i^2] = eps^2 / (d + 2).
    np.testing.assert_allclose(np.mean(delta**2, axis=0), eps**2 / (d + 2), rtol=0.05)
    assert np.all(np.abs(delta.mean(axis=0)) < 0.03)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_random_start_l1_is_uniform_in_ball(d):
    n, eps = 20000, 1.5
    delta = random_start(np.zeros((n, d)), eps, "l1", np.random.default_rng(11 + d))
    r = np.sum(np.abs(delta), axis=1)
    assert r.max() <= eps
    frac = np.mean(r <= eps / 2)
    sd = np.sqrt(0.5**d * (1 - 0.5**d) / n)
    assert abs(frac - 0.5**d) < 4 * sd + 1e-3
    # Uniform in the L1 ball: E[delta_i^2] = 2 eps^2 / ((d + 1)(d + 2)).
    np.testing.assert_allclose(np.mean(delta**2, axis=0), 2 * eps**2 / ((d + 1) * (d + 2)),
                               rtol=0.05)


def test_random_start_bad_arguments():
    x = np.full((2, 3), 0.5)
    with pytest.raises(TypeError):
        random_start(x, 0.1, "l2", 0)
    with pytest.raises(ValueError):
        random_start(x, np.inf, "l2", np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_start(x, -0.1, "l2", np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_start(x, 0.1, "l7", np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_start(x, 0.1, "l2", np.random.default_rng(0), lo=0.6, hi=1.0)


def test_random_start_is_reproducible():
    x = np.full((3, 4), 0.5, dtype=np.float32)
    a = random_start(x, 0.2, "l1", np.random.default_rng(42), 0.0, 1.0)
    b = random_start(x, 0.2, "l1", np.random.default_rng(42), 0.0, 1.0)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- steepest_step

def test_steepest_step_linf_is_sign():
    g = np.array([[0.3, -2.0, 0.0, 1e-30], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    s = steepest_step(g, "linf")
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s, [[1, -1, 0, 1], [0, 0, 0, 0]])


def test_steepest_step_l2_unit_and_parallel():
    rng = np.random.default_rng(8)
    g = rng.standard_normal((4, 2, 3, 3))
    g[2] = 0.0
    s = steepest_step(g, "l2")
    n = norm_per_example(s, "l2")
    np.testing.assert_allclose(n, [1, 1, 0, 1], atol=1e-12)
    gn = norm_per_example(g, "l2")
    np.testing.assert_allclose(s * gn[:, None, None, None], g, atol=1e-12)


def test_steepest_step_l1_top1_picks_largest_coordinate():
    g = np.array([[0.5, -3.0, 2.9, 0.1], [4.0, 1.0, -4.0, 0.0]])
    s = steepest_step(g, "l1", q=1.0)
    # Row 0: only the largest |g| survives; row 1 has a tie, split in half.
    np.testing.assert_array_equal(s, [[0, -1, 0, 0], [0.5, 0, -0.5, 0]])
    np.testing.assert_allclose(np.sum(g * s, axis=1), [3.0, 4.0])


def test_steepest_step_l1_default_keeps_top_percent():
    rng = np.random.default_rng(9)
    mags = np.stack([rng.permutation(np.arange(1.0, 1001.0)) for _ in range(3)])
    g = mags * rng.choice([-1.0, 1.0], size=mags.shape)
    s = steepest_step(g.reshape(3, 10, 100), "l1").reshape(3, 1000)
    # The 99th percentile of 1..1000 is 990.01, so 991..1000 are kept: 10 entries of 1/10.
    np.testing.assert_array_equal(np.count_nonzero(s, axis=1), [10, 10, 10])
    np.testing.assert_allclose(np.abs(s).sum(axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(np.sum(g * s, axis=1), 995.5, atol=1e-12)
    assert np.all(np.sign(s[s != 0]) == np.sign(g[s != 0]))


@pytest.mark.parametrize("norm", NORMS)
def test_steepest_step_zero_gradient(norm):
    g = np.zeros((2, 1, 3, 3), dtype=np.float32)
    s = steepest_step(g, norm)
    assert s.dtype == np.float32 and s.shape == g.shape
    np.testing.assert_array_equal(s, 0.0)


# Entries are 0 or of magnitude >= 1e-100, so g * step never underflows.
@given(g=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 30)),
                    elements=st.floats(-10, 10).map(lambda v: 0.0 if abs(v) < 1e-100 else v)),
       q=st.floats(0.0, 1.0))
def test_steepest_step_properties(g, q):
    nz = np.any(g != 0, axis=1)
    gmax = np.max(np.abs(g), axis=1)
    # L-inf and L2: <g, step> is the dual norm (L1 resp. L2) of g.
    s = steepest_step(g, "linf")
    np.testing.assert_allclose(np.sum(g * s, axis=1), np.sum(np.abs(g), axis=1), rtol=1e-12)
    s = steepest_step(g, "l2")
    g2 = np.linalg.norm(g, axis=1)
    floor = np.maximum(g2, 1e-12)  # gradients below 1e-12 are scaled by 1e12, not normalised
    np.testing.assert_allclose(norm_per_example(s, "l2"), g2 / floor, rtol=1e-12)
    np.testing.assert_allclose(np.sum(g * s, axis=1), g2**2 / floor, rtol=1e-12)
    # L1: unit L1 norm, <g, step> is the mean |g| over kept entries, between the q-quantile
    # of |g| and max |g| (the dual norm, reached for q = 1).
    s = steepest_step(g, "l1", q=q)
    np.testing.assert_allclose(norm_per_example(s, "l1"), nz.astype(float), atol=1e-12)
    gain = np.sum(g * s, axis=1)
    qv = np.quantile(np.abs(g), q, axis=1)
    assert np.all(gain[nz] <= gmax[nz] * (1 + 1e-12))
    assert np.all(gain[nz] >= qv[nz] * (1 - 1e-12))
    np.testing.assert_allclose(np.sum(g * steepest_step(g, "l1", q=1.0), axis=1), gmax,
                               rtol=1e-12)


def test_steepest_step_bad_arguments():
    with pytest.raises(ValueError, match="NaN"):
        steepest_step(np.array([[np.nan, 1.0]]), "l2")
    with pytest.raises(ValueError, match="q"):
        steepest_step(np.ones((1, 4)), "l1", q=99)
    with pytest.raises(ValueError, match="unknown norm"):
        steepest_step(np.ones((1, 4)), "max")


# ----------------------------------------------------------------------------- norm_per_example

@pytest.mark.parametrize("norm", NORMS)
def test_norm_per_example_matches_linalg(norm):
    rng = np.random.default_rng(10)
    v = rng.standard_normal((3, 2, 4, 5)).astype(np.float32)
    got = norm_per_example(v, norm)
    assert got.shape == (3,) and got.dtype == np.float64
    want = np.linalg.norm(v.reshape(3, -1).astype(np.float64), ord=ORD[norm], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    np.testing.assert_allclose(norm_per_example(np.array([[3.0, -4.0]]), norm),
                               {"linf": 4.0, "l2": 5.0, "l1": 7.0}[norm])


def test_per_example_reshapes_for_broadcasting():
    from npadv.attacks.projections import per_example

    v = np.array([1.0, 2.0])
    assert per_example(v, 4).shape == (2, 1, 1, 1)
    np.testing.assert_array_equal(per_example(v, 3) * np.ones((2, 3, 4)),
                                  np.stack([np.ones((3, 4)), 2 * np.ones((3, 4))]))


def test_l2_without_box_is_the_plain_rescaling():
    rng = np.random.default_rng(0)
    z, c = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7))
    out = project(z, c, 0.5, "l2")
    d = z - c
    expected = c + d * np.minimum(1, 0.5 / np.linalg.norm(d, axis=1))[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert np.all(np.linalg.norm(out - c, axis=1) <= 0.5)


# ----------------------------------------------------------------------------- Ball

def scalar_eps(eps) -> float:
    """One radius for a Ball from a problem's ε (a scalar or one per example)."""
    return float(np.max(eps))


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data(), f32=st.booleans())
def test_ball_project_is_project_lands_inside_and_is_idempotent(norm, box, data, f32):
    z, x, eps, lo, hi = data.draw(problems(box))
    if f32:
        z, x = z.astype(np.float32), x.astype(np.float32)
    ball = Ball(scalar_eps(eps), norm, lo, hi)
    p = ball.project(z, x)
    np.testing.assert_array_equal(p, project(z, x, ball.eps, norm, lo, hi))
    assert ball.contains(p, x).all()
    np.testing.assert_array_equal(ball.project(p, x), p)                  # Π_S(Π_S(z)) = Π_S(z)


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("norm", NORMS)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1), f32=st.booleans())
def test_ball_sample_is_random_start_and_inside(norm, box, data, seed, f32):
    _, x, eps, lo, hi = data.draw(problems(box))
    if f32:
        x = x.astype(np.float32)
    ball = Ball(scalar_eps(eps), norm, lo, hi)
    s = ball.sample(x, np.random.default_rng(seed))
    np.testing.assert_array_equal(s, random_start(x, ball.eps, norm, np.random.default_rng(seed),
                                                  lo, hi))
    assert ball.contains(s, x).all()


@pytest.mark.parametrize("norm", NORMS)
def test_ball_contains_refuses_points_outside_the_ball_or_the_box(norm):
    x = np.full((3, 4), 0.5)
    ball = Ball(0.2, norm)
    z = x.copy()
    z[0, 0] += 0.45                                 # outside the ball in every norm
    z[1, 1] = 0.5 + 0.2 * (1 + 1e-9)               # just past ε, one coordinate
    z[2] = 0.5 + 0.2 / 8                            # inside in every norm (‖·‖₁ ≈ 0.1)
    np.testing.assert_array_equal(ball.contains(z, x), [False, False, True])
    np.testing.assert_array_equal(ball.contains(z, x, tol=0.1), [False, True, True])
    edge = np.ones((1, 4))
    assert not Ball(0.2, norm, 0.0, 0.9).contains(edge, edge - 0.1)[0]   # above hi
    assert Ball(0.2, norm, 0.0, None).contains(edge, edge - 0.1 / 4)[0]  # no upper bound


def test_ball_is_a_checked_frozen_value():
    assert Ball(0.1, "l2", 0, 1) == Ball(0.1, "l2")                     # bounds become floats
    assert Ball(np.float32(0.5), "linf").eps == 0.5 and type(Ball(1, "l1").eps) is float
    with pytest.raises(AttributeError):
        Ball(0.1, "l2").eps = 0.2
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        Ball(-0.1, "linf")
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        Ball(np.inf, "linf")
    with pytest.raises(ValueError, match="eps must be a scalar"):
        Ball(np.ones(3), "linf")
    with pytest.raises(ValueError, match="unknown norm"):
        Ball(0.1, "l3")
    with pytest.raises(ValueError, match="empty box"):
        Ball(0.1, "linf", lo=1.0, hi=0.0)
    with pytest.raises(ValueError, match="lo must be a number or None"):
        Ball(0.1, "linf", lo=np.zeros(3))
    with pytest.raises(ValueError, match="hi contains NaN"):
        Ball(0.1, "linf", hi=np.nan)
    with pytest.raises(ValueError, match="shape mismatch"):
        Ball(0.1, "linf").contains(np.zeros((2, 3)), np.zeros((2, 4)))
