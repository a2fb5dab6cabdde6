"""The property-testing kit (npadv.testing) against deliberately wrong backward passes and
projections: each mutant must fail, each correct version must pass."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from npadv import Tensor, ops
from npadv import functional as F
from npadv.attacks.projections import project
from npadv.testing import (
    GradcheckError,
    ProjectionError,
    arrays,
    assert_gradients,
    assert_projection,
    assert_vjp,
    ball_points,
    broadcast_property,
    broadcastable_shapes,
    conv2d_property,
    conv_cases,
    gradient_property,
    labelled_batches,
    minimal_failure,
    pool2d_property,
    pool_cases,
    projection_property,
)

# Deterministic under every profile, and small: each search stops at the first failure.
SEARCH = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), print_blob=False,
                  report_multiple_bugs=False)


# ----------------------------------------------------------------------------- mutant ops

def relu_tie_as_one(a: Tensor) -> Tensor:
    """relu whose gradient at exactly 0 is 1 (the kink assigned to the rising side)."""
    return Tensor.from_op(a.data * (a.data > 0), (a,), lambda g: (g * (a.data >= 0),))


def relu_block(relu):
    """relu(relu(x) @ w): a ReLU layer feeding another; with w < 0 and x = 0 the second
    pre-activation is 0 on a whole neighbourhood, so the gradient must be 0 there."""
    return lambda x, w: relu(ops.matmul(relu(x), w))


@st.composite
def relu_block_inputs(draw):
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    return draw(arrays((n, k), zeros=True, ties=True)), draw(arrays((k, m)))


def _pairs(*values):
    return [(v, v) if isinstance(v, int) else tuple(v) for v in values]


def _taps(a, kh, kw, sh, sw, ho, wo):
    """The (kh·kw) strided views a[..., i + sh·r, j + sw·q] of shape (N, C, Ho, Wo)."""
    for i in range(kh):
        for j in range(kw):
            yield a[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def max_pool_tied(share: bool):
    """max_pool2d whose backward sends a window's gradient to every tap equal to the max:
    whole (share=False, wrong: the gradient is counted once per tied tap) or split equally
    (share=True, a valid subgradient: the kit accepts it)."""
    def pool(x, kernel, stride, padding):
        (kh, kw), (sh, sw), (ph, pw) = _pairs(kernel, stride, padding)
        xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        out = F.max_pool2d(x.data, kernel, stride, padding).data
        ho, wo = out.shape[2:]

        def vjp(g):
            count = sum((tap == out).astype(float) for tap in _taps(xp, kh, kw, sh, sw, ho, wo))
            dxp = np.zeros_like(xp)
            for tap, dtap in zip(_taps(xp, kh, kw, sh, sw, ho, wo),
                                 _taps(dxp, kh, kw, sh, sw, ho, wo), strict=True):
                dtap += g * (tap == out) / (count if share else 1)
            return (dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]],)

        return Tensor.from_op(out, (x,), vjp)

    pool.__name__ = "max_pool_split_ties" if share else "max_pool_every_tied_tap"
    return pool


def add_without_size1_sum(a: Tensor, b: Tensor) -> Tensor:
    """a + b whose backward sums away extra leading axes but, for a size-1 axis, keeps the
    first slice of the gradient instead of the sum over the broadcast axis."""
    def unbroadcast(g, shape):
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        return g[tuple(slice(0, 1) if s == 1 else slice(None) for s in shape)]

    return Tensor.from_op(a.data + b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def conv2d_gather(flip: bool = True, crop: int = 0):
    """conv2d whose input gradient is the full correlation of the dilated upstream gradient
    with rot180(w) (flip=True), cropped at `padding + crop`: flip=False and crop=1 are the
    two mutants."""
    def conv(x, w, b, stride=1, padding=0):
        (sh, sw), (ph, pw) = _pairs(stride, padding)
        out = F.conv2d(x.data, w.data, b.data, stride, padding).data
        n, c, h, wd = x.shape
        kh, kw = w.shape[2:]
        hp, wp = h + 2 * ph, wd + 2 * pw
        xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)))

        def vjp(g):
            ho, wo = g.shape[2:]
            gw = np.stack([np.einsum("nfij,ncij->fc", g, tap)
                           for tap in _taps(xp, kh, kw, sh, sw, ho, wo)], axis=-1)
            gdp = np.zeros(g.shape[:2] + (hp + kh, wp + kw))  # one spare row and column
            rows = slice(kh - 1, kh - 1 + sh * (ho - 1) + 1, sh)
            gdp[:, :, rows, kw - 1:kw - 1 + sw * (wo - 1) + 1:sw] = g
            wk = w.data[:, :, ::-1, ::-1] if flip else w.data
            dxp = sum(np.einsum("nfyz,fc->ncyz", gdp[:, :, i:i + hp + 1, j:j + wp + 1],
                                wk[:, :, i, j]) for i in range(kh) for j in range(kw))
            gx = dxp[:, :, ph + crop:ph + crop + h, pw + crop:pw + crop + wd]
            return gx, gw.reshape(w.shape), g.sum(axis=(0, 2, 3))

        return Tensor.from_op(out, (x, w, b), vjp)

    conv.__name__ = {(True, 0): "conv2d_gather", (False, 0): "conv2d_kernel_not_flipped",
                     (True, 1): "conv2d_padding_off_by_one"}[(flip, crop)]
    return conv


def exp_vjp_from_input(a: Tensor) -> Tensor:
    """exp whose backward multiplies by the input instead of the output exp(a)."""
    return Tensor.from_op(np.exp(a.data), (a,), lambda g: (g * a.data,))


# ----------------------------------------------------------------------------- mutant projections

def _rows(z, x, eps):
    n = len(x)
    return (z - x).reshape(n, -1), np.broadcast_to(np.asarray(eps, np.float64), (n,))[:, None]


def l2_rescale_then_clip(z, x, eps, norm, lo, hi):
    """Project onto the L2 ball by rescaling, then clip to the box: feasible, not nearest."""
    w, e = _rows(z, x, eps)
    r = np.linalg.norm(w, axis=1, keepdims=True)
    w = w * np.minimum(1.0, np.divide(e, r, out=np.ones_like(r), where=r > 0))
    return np.clip(x + w.reshape(x.shape), lo, hi)


def l1_rescale(z, x, eps, norm, lo, hi):
    """Onto the L1 ball by rescaling z − x instead of soft-thresholding it."""
    w, e = _rows(z, x, eps)
    r = np.abs(w).sum(axis=1, keepdims=True)
    w = w * np.minimum(1.0, np.divide(e, r, out=np.ones_like(r), where=r > 0))
    return np.clip(x + w.reshape(x.shape), lo, hi)


def linf_without_box(z, x, eps, norm, lo, hi):
    """Onto the L∞ ball only: the box is ignored."""
    e = np.broadcast_to(np.asarray(eps, np.float64), (len(x),)).reshape((-1,) + (1,) * (x.ndim - 1))
    return np.clip(z, x - e, x + e)


class Mutant(NamedTuple):
    """A wrong op or projection, its correct version, and how the kit tests either."""
    wrong: Callable
    right: Callable
    prop: Callable                  # op -> a @given property
    norm: str | None = None         # projections: the norm; ops: None
    call: Callable | None = None    # (op, drawn case) -> (f, inputs) for a single gradcheck


def _pool_call(pool, case):
    return (lambda x: pool(x, case.kernel, case.stride, case.padding)), (case.x,)


def _conv_call(conv, case):
    return ((lambda x, w, b: conv(x, w, b, stride=case.stride, padding=case.padding)),
            (case.x, case.w, case.b))


def _op_call(op, case):
    return op, tuple(case)


def _projection(wrong, norm):
    return Mutant(wrong, project, lambda p: projection_property(p, norm), norm)


MUTANTS = {
    "relu_grad_at_0_is_1": Mutant(
        relu_block(relu_tie_as_one), relu_block(ops.relu),
        lambda op: gradient_property(op, relu_block_inputs()), call=_op_call),
    "max_pool_every_tied_tap": Mutant(
        max_pool_tied(share=False), F.max_pool2d, pool2d_property, call=_pool_call),
    "broadcast_without_size1_sum": Mutant(
        add_without_size1_sum, ops.add, broadcast_property, call=_op_call),
    "conv_kernel_not_flipped": Mutant(
        conv2d_gather(flip=False), conv2d_gather(), conv2d_property, call=_conv_call),
    "conv_padding_off_by_one": Mutant(
        conv2d_gather(crop=1), F.conv2d, conv2d_property, call=_conv_call),
    "exp_vjp_uses_input": Mutant(
        exp_vjp_from_input, ops.exp, lambda op: gradient_property(op, arrays()),
        call=_op_call),
    "l2_rescale_then_clip": _projection(l2_rescale_then_clip, "l2"),
    "l1_rescale": _projection(l1_rescale, "l1"),
    "linf_without_box": _projection(linf_without_box, "linf"),
}


@pytest.mark.parametrize("name", MUTANTS)
def test_kit_catches_mutant(name):
    m = MUTANTS[name]
    with pytest.raises((GradcheckError, ProjectionError)):
        SEARCH(m.prop(m.wrong))()


@pytest.mark.parametrize("name", MUTANTS)
def test_correct_version_passes(name):
    m = MUTANTS[name]
    SEARCH(m.prop(m.right))()


def test_split_ties_are_a_valid_subgradient():
    # Sharing a tied window's gradient equally is in the subdifferential of max (ops.max does
    # it); only handing every tied tap the whole gradient is wrong.
    SEARCH(pool2d_property(max_pool_tied(share=True)))()
    SEARCH(gradient_property(lambda t: ops.max(t, axis=-1), arrays(ties=True)))()


def test_single_point_gradcheck_misses_tie_bugs():
    # At a random continuous input there are no ties and no exact zeros.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 4, 4))
    assert_gradients(lambda t: max_pool_tied(share=False)(t, 2, 2, 0), x)
    assert_gradients(relu_block(relu_tie_as_one), rng.standard_normal((2, 3)),
                     rng.standard_normal((3, 2)))
    with pytest.raises(GradcheckError, match="tie-preserving"):
        assert_vjp(lambda t: max_pool_tied(share=False)(t, 2, 2, 0), np.ones((1, 1, 2, 2)))


# ----------------------------------------------------------------------------- near kinks

# relu(relu(x) @ w) here is flat on both sides of a bump about 1e-13 wide around the point
# (x[0, 0] sits on relu's kink, the second pre-activation 2.27e-13 from it), and backprop
# gives the slope inside the bump, -0.0139 along the first random direction; at the step
# 1e-6 the finite differences see only the flat outside.
NEAR_TWO_KINKS = (np.array([[0.0, 2.27e-13]]), np.array([[0.0, -1.0], [0.0, 1.0]]))

test_relu_block_near_two_kinks = SEARCH(example(case=NEAR_TWO_KINKS)(
    gradient_property(relu_block(ops.relu), relu_block_inputs())))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_points_within_the_step_of_a_kink_are_kinks(dtype):
    x, w = (a.astype(dtype) for a in NEAR_TWO_KINKS)
    f = relu_block(ops.relu)
    # x[0, 1] is 2.27e-13 from relu's kink: skipped; the other five elements compared
    assert assert_gradients(f, x, w) == (5, 1)
    # 3 cotangents × (2 random + 2 tie-preserving + 1 joint) directions: 9 cross a kink
    assert assert_vjp(f, x, w) == (6, 9)
    # the plain check still compares there, and says why it disagrees
    with pytest.raises(GradcheckError, match=r"random direction 0: expected .* = 0\.0 .*"
                                             r"got -0\.0138.*a kink lies within the step"):
        assert_vjp(f, x, w, kinks="compare")


def test_rounding_residue_next_to_a_kink_is_a_kink():
    # 0.1·3 − 0.3 = 5.55e-17 in float64 (0 in exact arithmetic): a bump far below the
    # rounding of the sums, next to relu's kink at x[0, 0] = 0. Every seed used to raise.
    x, w = np.array([[0.0, 0.1, 0.3]]), np.array([[-1.0], [3.0], [-1.0]])
    assert 0 < relu_block(ops.relu)(Tensor(x), Tensor(w)).data.item() < 1e-16
    for seed in range(10):
        assert assert_vjp(relu_block(ops.relu), x, w, seed=seed) == (0, 15)


def test_kink_under_the_kink_tests_limit_is_not_an_error():
    # Moving x[0, 1] = 0 up adds 7.5e-7·relu(t) to an output near 9: a kink whose jump,
    # 7.5e-7·v[0, 2] = 4.8e-7, is under the kink test's limit (atol plus the rounding noise
    # n(h) = 4.1e-7 of outputs near 9), while half of it, 2.4e-7, is above atol alone.
    x, w = np.array([[3.0, 0.0]]), np.array([[0.0, 0.0, 3.0], [0.0, 0.0, 7.5e-7]])
    assert assert_gradients(relu_block(ops.relu), x, w) == (6, 2)
    with pytest.raises(GradcheckError, match=r"element \(0, 1\): expected 2\.39\d*e-07 "
                                             r"\(finite difference\), got 0\.0"):
        assert_gradients(relu_block(ops.relu), x, w, kinks="compare")


def doubled(a: Tensor, grad: float) -> Tensor:
    """2a, with a backward that multiplies by `grad` (2 is right)."""
    return Tensor.from_op(2 * a.data, (a,), lambda g: (grad * g,))


@pytest.mark.parametrize("a", [1e-5, 1e-7, 1e-9])
def test_wrong_backward_near_a_kink_is_caught(a):
    # relu's kink lies a from the point: inside the stencil ±2h for 1e-7 and 1e-9, so the
    # check moves to a step below a/2. The slope is 3v, the wrong backward says 4v.
    v = np.random.default_rng(0).standard_normal(1).item()
    x = np.array([a])
    assert assert_gradients(lambda t: ops.relu(t) + doubled(t, 2.0), x) == (1, 0)
    with pytest.raises(GradcheckError) as caught:
        assert_gradients(lambda t: ops.relu(t) + doubled(t, 3.0), x)
    expected, got = (float(n) for n in
                     re.search(r"expected (\S+) .*got (\S+) ", str(caught.value)).groups())
    assert expected == pytest.approx(3 * v) and got == pytest.approx(4 * v)
    assert ("at step" in str(caught.value)) == (a < 2e-6)
    # at the kink itself there is no derivative to compare with
    assert assert_gradients(lambda t: ops.relu(t) + doubled(t, 3.0), np.zeros(1)) == (0, 1)


def test_wrong_backward_on_the_outputs_without_a_kink_is_caught():
    # Moving x[1, 0] = 0 up turns on relu(0.5·t) and relu(2·t) (kinks) but leaves
    # relu(-2·t) = 0 flat: there the gradient must be 0, and relu_tie_as_one gives
    # v[1, 0]·(-2).
    x, w = np.array([[-1.0], [0.0]]), np.array([[-2.0, 0.5, 2.0]])
    v = np.random.default_rng(0).standard_normal((2, 3))
    assert assert_gradients(relu_block(ops.relu), x, w) == (4, 1)
    with pytest.raises(GradcheckError, match=r"element \(1, 0\) \(the 4 of 6 outputs smooth "
                                             r"along it\): expected 0\.0 .*got (\S+) ") as caught:
        assert_gradients(relu_block(relu_tie_as_one), x, w)
    got = float(re.search(r"got (\S+) ", str(caught.value)).group(1))
    assert got == pytest.approx(-2 * v[1, 0])


# ----------------------------------------------------------------------------- minimal failures

def test_minimal_failure_returns_a_failing_case():
    prop = pool2d_property(max_pool_tied(share=False))
    case, error = minimal_failure(prop, SEARCH)
    assert isinstance(error, GradcheckError) and "tie-preserving" in str(error)
    assert np.unique(case.x).size < case.x.size            # the tie the bug needs
    assert case.x.size == 2 and case.kernel in ((1, 2), (2, 1))   # shrunk to one window
    with pytest.raises(GradcheckError):
        prop.check(case)
    case, error = minimal_failure(MUTANTS["relu_grad_at_0_is_1"].prop(relu_block(relu_tie_as_one)),
                                  SEARCH)
    assert case[0].tolist() == [[0.0]] and case[1].item() < 0 and isinstance(error, GradcheckError)
    case, error = minimal_failure(projection_property(linf_without_box, "linf"), SEARCH)
    assert isinstance(error, ProjectionError)
    assert np.any((case.z < case.lo) | (case.z > case.hi))   # the box is what it ignores


def test_minimal_failure_is_none_for_correct_versions():
    assert minimal_failure(pool2d_property(F.max_pool2d), SEARCH) is None
    assert minimal_failure(projection_property(project, "linf"), SEARCH) is None


# ----------------------------------------------------------------------------- assertions

def test_gradient_error_names_input_element_expected_and_got():
    def cube_as_square(a, b):  # forward a·b³, backward for b claims a·3b (not 3b²)
        return Tensor.from_op(a.data * b.data ** 3, (a, b),
                              lambda g: (g * b.data ** 3, g * a.data * 3 * b.data))

    with pytest.raises(GradcheckError, match=r"input 1 wrong at element \(1,\): expected "
                                             r"-?[0-9.]+ .*got -?[0-9.]+"):
        assert_gradients(cube_as_square, np.array([1.0, 2.0]), np.array([1.0, 2.0]))


def test_float32_inputs_get_float32_tolerances():
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    assert_gradients(ops.tanh, x)
    assert_vjp(ops.tanh, x)
    with pytest.raises(GradcheckError):
        assert_gradients(exp_vjp_from_input, x)


def test_kinks_are_counted_not_compared():
    report = assert_gradients(ops.relu, np.array([0.0, 1.0, -2.0, 0.0]))
    assert report == (2, 2)
    with pytest.raises(GradcheckError, match=r"element \(0,\)"):
        assert_gradients(ops.relu, np.array([0.0, 1.0]), kinks="compare")


def test_wrong_gradient_shape_is_reported():
    def keeps_broadcast(a, b):
        return Tensor.from_op(a.data + b.data, (a, b), lambda g: (g, g))

    with pytest.raises(GradcheckError, match="shape"):
        assert_gradients(keeps_broadcast, np.ones((2, 3)), np.ones((1, 3)))


@pytest.mark.parametrize("result", [lambda t: t.data * 2.0, lambda t: float(t.data.sum()),
                                    lambda t: None],
                         ids=["ndarray", "float", "None"])
def test_gradient_checks_need_f_to_return_a_tensor(result):
    from npadv.testing.gradcheck import gradcheck, vjp_check

    x = np.array([0.5, -1.0, 2.0])
    name = type(result(Tensor(x))).__name__
    for check in (lambda f: gradcheck(f, [x]), lambda f: vjp_check(f, [x]),
                  lambda f: assert_gradients(f, x), lambda f: assert_vjp(f, x)):
        with pytest.raises(TypeError, match=rf"f must return a Tensor \(npadv.Tensor\).*"
                                            rf"got {name}"):
            check(result)


def test_assert_projection_messages():
    x = np.full((1, 2), 0.9)
    z = np.array([[2.0, 1.0]])
    with pytest.raises(ProjectionError, match="nearest"):
        assert_projection(l2_rescale_then_clip, "l2", 0.3, 0.0, 1.0, (z, x))
    with pytest.raises(ProjectionError, match="box"):
        assert_projection(linf_without_box, "linf", 0.3, 0.0, 1.0, (z, x))
    with pytest.raises(ProjectionError, match="idempotent"):
        assert_projection(lambda z, x, e, n, lo, hi: (x + z) / 2, "l2", 0.3, 0.0, 1.0,
                          (np.array([[0.7, 0.5]]), np.array([[0.5, 0.5]])))


# ----------------------------------------------------------------------------- strategies

@SEARCH
@given(case=conv_cases())
def test_conv_cases_are_valid(case):
    assert F.conv2d(case.x, case.w, case.b, case.stride, case.padding).shape[2:] >= (1, 1)


@SEARCH
@given(case=pool_cases())
def test_pool_cases_are_valid(case):
    out = F.max_pool2d(case.x, case.kernel, case.stride, case.padding).data
    assert np.all(np.isfinite(out)) and max(case.padding) <= max(case.kernel) // 2


@SEARCH
@given(shapes=broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes):
    np.broadcast_shapes(*shapes)
    assert len(shapes) == 3


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("where", ["inside", "outside", "boundary"])
def test_ball_points_lie_where_asked(norm, where):
    @SEARCH
    @given(case=ball_points(norm, box=True, where=where))
    def check(case):
        n = len(case.x)
        d = (case.z - case.x).reshape(n, -1)
        r = {"linf": np.abs(d).max(axis=1), "l1": np.abs(d).sum(axis=1),
             "l2": np.linalg.norm(d, axis=1)}[norm]
        e = np.broadcast_to(case.eps, (n,))
        inside_box = np.all((case.z >= 0) & (case.z <= 1), axis=tuple(range(1, case.z.ndim)))
        on_face = np.any((case.z == 0) | (case.z == 1), axis=tuple(range(1, case.z.ndim)))
        exact = 1e-14 if norm == "l2" else 0.0   # the L2 sphere holds up to rounding
        if where == "inside":
            assert np.all(r <= e) and np.all(inside_box)
        elif where == "outside":
            assert np.all((r > e) | ~inside_box)
        else:
            assert np.all(inside_box) and np.all(r <= e + exact)
            assert np.all((np.abs(r - e) <= exact) | on_face)

    check()


@SEARCH
@given(batch=labelled_batches(classes=4, feature_shape=(4,)))
def test_labelled_batches_and_cross_entropy(batch):
    x, y = batch
    assert len(x) == len(y) and x.min() >= 0 and x.max() <= 1
    assert y.dtype == np.int64 and 0 <= y.min() and y.max() < 4
    assert_gradients(lambda t: F.cross_entropy(t, y), x)
