"""Attacks: ball and box, exact special cases, closed-form worst cases of a linear model,
restarts, no side effects, argument errors, losses, and the evaluation with its checks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npadv
from npadv import Tensor, nn, optim
from npadv.attacks import (
    Attack,
    Ball,
    GradientMaskingWarning,
    apgd,
    apgd_targeted,
    check_eps_monotone,
    check_more_effort,
    check_pgd_vs_fgsm,
    cw_loss,
    dlr_loss,
    evaluate,
    fgm,
    fgsm,
    l2_normalize,
    norm_per_example,
    pgd,
    robust_accuracy_curve,
    square,
)
from npadv.data import load_mnist_5k
from npadv.testing.gradcheck import vjp_check


# ---- models ------------------------------------------------------------------------
def tiny_net(dtype=np.float64, seed: int = 0, classes: int = 4) -> nn.Sequential:
    """(N, 2, 3, 2) -> (N, classes): a small ReLU net, quick enough for hypothesis."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(12, 16, flatten=True, rng=rng, dtype=dtype), nn.ReLU(),
                         nn.Linear(16, classes, rng=rng, dtype=dtype))


class Logistic(nn.Module):
    """Binary logistic model with logits z = [0, w·x + b]: p(y = 1 | x) = σ(w·x + b)."""

    def __init__(self, w: np.ndarray, b: float):
        self.w = nn.Parameter(w.reshape(-1, 1))
        self.b = nn.Parameter(np.array([b], dtype=w.dtype))

    def forward(self, x):
        s = x @ self.w + self.b                                   # (N, 1)
        return s * Tensor(np.array([[0.0, 1.0]], dtype=s.dtype))  # (N, 2) = [0, s]


class Quantised(nn.Module):
    """A deliberately gradient-masked model: rounds its input (no gradient flows to x)."""

    def __init__(self, inner):
        self.inner = inner

    def forward(self, x):
        return self.inner(Tensor(np.round(x.data * 4) / 4))


NET = tiny_net()
SHAPE = (2, 3, 2)


def images(n_max: int = 4):
    """Hypothesis: (N, 2, 3, 2) float64 in [0, 1], often with entries at the box edges."""
    elems = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0]))
    return st.integers(1, n_max).flatmap(
        lambda n: hnp.arrays(np.float64, (n, *SHAPE), elements=elems))


def labels_for(x, classes: int = 4):
    return np.arange(len(x)) % classes


def assert_feasible(x_adv, x, eps, norm, lo=0.0, hi=1.0):
    """In the ball and the box. L∞ bounds are x ± eps rounded once to x's dtype, so a
    coordinate may sit one ulp of |x| + eps beyond eps (the projection's stated guarantee)."""
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    allowed = eps * (1 + 1e-12)
    if norm == "linf":
        allowed += np.spacing((np.abs(x).max() + eps).astype(x.dtype))
    assert np.all(norm_per_example(x_adv.astype(np.float64) - x, norm) <= allowed)
    if lo is not None:
        assert x_adv.min() >= lo
    if hi is not None:
        assert x_adv.max() <= hi


# ---- ball and box --------------------------------------------------------------------
@given(x=images(), eps=st.one_of(st.just(0.0), st.floats(0, 0.6)))
def test_fgsm_in_ball_and_box(x, eps):
    y = labels_for(x)
    x_adv = fgsm(NET, x, y, eps)
    assert_feasible(x_adv, x, eps, "linf")
    if eps == 0:
        np.testing.assert_array_equal(x_adv, x)


@given(x=images(), eps=st.one_of(st.just(0.0), st.floats(0, 1.5)),
       norm=st.sampled_from(["linf", "l2", "l1"]), seed=st.integers(0, 2**16))
@example(x=np.pad([[[[0.5]]]], ((0, 0), (0, 1), (0, 2), (0, 1))), eps=3.963076315720428e-07,
         norm="linf", seed=0)                    # x + ε rounds up by a fraction of an ulp
def test_pgd_in_ball_and_box(x, eps, norm, seed):
    y = labels_for(x)
    x_adv = pgd(NET, x, y, eps, steps=3, norm=norm, rng=seed, l1_quantile=0.8)
    assert_feasible(x_adv, x, eps, norm)
    if eps == 0:
        np.testing.assert_array_equal(x_adv, x)


@given(x=images(), eps=st.one_of(st.just(0.0), st.floats(0, 1.5)),
       norm=st.sampled_from(["linf", "l2"]), loss=st.sampled_from(["ce", "dlr"]),
       seed=st.integers(0, 2**16))
def test_apgd_in_ball_and_box(x, eps, norm, loss, seed):
    y = labels_for(x)
    x_adv = apgd(NET, x, y, eps, norm=norm, steps=5, loss=loss, rng=seed)
    assert_feasible(x_adv, x, eps, norm)
    if eps == 0:
        np.testing.assert_array_equal(x_adv, x)


@pytest.mark.parametrize("edge", [0.0, 1.0])
@pytest.mark.parametrize("attack", ["fgsm", "pgd-linf", "pgd-l2", "pgd-l1", "apgd-linf",
                                    "apgd-l2"])
def test_inputs_at_the_box_edges(edge, attack):
    x = np.full((3, *SHAPE), edge)
    y = labels_for(x)
    name, _, norm = attack.partition("-")
    norm = norm or "linf"
    run = {"fgsm": lambda: fgsm(NET, x, y, 0.3),
           "pgd": lambda: pgd(NET, x, y, 0.3, norm=norm, steps=4, rng=0),
           "apgd": lambda: apgd(NET, x, y, 0.3, norm=norm, steps=4, rng=0)}[name]
    assert_feasible(run(), x, 0.3, norm)


def test_float32_in_float32_out():
    net = tiny_net(np.float32)
    x = np.random.default_rng(0).random((5, *SHAPE), dtype=np.float32)
    y = labels_for(x)
    for x_adv in (fgsm(net, x, y, 0.1), pgd(net, x, y, 0.1, rng=0), fgm(net, x, y, 0.1),
                  apgd(net, x, y, 0.1, steps=3, rng=0)):
        assert x_adv.dtype == np.float32


# ---- exact special cases -------------------------------------------------------------
@given(x=images(), eps=st.floats(0, 0.6))
def test_one_step_pgd_is_fgsm(x, eps):
    y = labels_for(x)
    np.testing.assert_array_equal(pgd(NET, x, y, eps, alpha=eps, steps=1, random_start=False),
                                  fgsm(NET, x, y, eps))


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_random_start_moves_the_start(norm):
    x = np.random.default_rng(1).uniform(0.2, 0.8, (6, *SHAPE))
    y = labels_for(x)
    start = pgd(NET, x, y, 0.1, steps=0, norm=norm, rng=3)
    assert np.all(norm_per_example(start - x, norm) > 0)
    assert_feasible(start, x, 0.1, norm)
    np.testing.assert_array_equal(pgd(NET, x, y, 0.1, steps=0, norm=norm, random_start=False),
                                  x)


def test_targeted_fgsm_and_pgd_move_towards_the_target():
    net = tiny_net()
    x = np.random.default_rng(2).random((32, *SHAPE))
    target = np.full(32, 2)
    before = npadv.functional.cross_entropy(net(Tensor(x)), target, "none").data
    for x_adv in (fgsm(net, x, target, 0.05, targeted=True),
                  pgd(net, x, target, 0.05, targeted=True, rng=0)):
        after = npadv.functional.cross_entropy(net(Tensor(x_adv)), target, "none").data
        assert np.mean(after < before) > 0.9


# ---- a linear model: the worst case in closed form -------------------------------------
def linear_case(seed: int = 0, n: int = 8, d: int = 5):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    model = Logistic(w, b=0.3)
    x = rng.standard_normal((n, d))
    y = np.arange(n) % 2
    s = (2 * y - 1)[:, None]                      # +1 for label 1, −1 for label 0
    return model, x, y, w, s


def test_linear_model_worst_case_linf():
    model, x, y, w, s = linear_case()
    eps = 0.3
    expected = x - eps * np.sign(w) * s           # CE of label 1 falls as w·x rises
    np.testing.assert_allclose(pgd(model, x, y, eps, steps=10, lo=None, hi=None, rng=0),
                               expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fgsm(model, x, y, eps, lo=None, hi=None), expected,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(apgd(model, x, y, eps, steps=10, lo=None, hi=None, rng=0),
                               expected, rtol=0, atol=1e-6)


def test_linear_model_worst_case_l2():
    model, x, y, w, s = linear_case(seed=1)
    eps = 0.7
    expected = x - eps * w / np.linalg.norm(w) * s
    for kwargs in (dict(random_start=False), dict(alpha=eps, steps=60, rng=0)):
        x_adv = pgd(model, x, y, eps, norm="l2", lo=None, hi=None, **kwargs)
        np.testing.assert_allclose(x_adv, expected, rtol=0, atol=1e-6)
    x_adv = apgd(model, x, y, eps, norm="l2", steps=100, lo=None, hi=None, rng=0)
    np.testing.assert_allclose(x_adv, expected, rtol=0, atol=1e-6)


def test_fgm_on_the_linear_model_and_with_a_mask():
    model, x, y, w, s = linear_case(seed=2)
    expected = x - 0.5 * w / np.linalg.norm(w) * s
    np.testing.assert_allclose(fgm(model, x, y, 0.5), expected, rtol=0, atol=1e-12)
    mask = np.array([1, 1, 0, 1, 0.0])
    x_adv = fgm(model, x, y, 0.5, mask=mask)
    np.testing.assert_array_equal(x_adv[:, mask == 0], x[:, mask == 0])
    np.testing.assert_allclose(np.linalg.norm(x_adv - x, axis=1), 0.5, rtol=1e-12)


def test_l2_normalize():
    g = np.array([[3.0, 4.0], [0.0, 0.0], [1e-30, 0.0], [1e30, 1e30]])
    np.testing.assert_allclose(l2_normalize(g), [[0.6, 0.8], [0, 0], [1, 0],
                                                 [2**-0.5, 2**-0.5]])


# ---- restarts ------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_restarts_keep_each_examples_worst_case(norm):
    net = tiny_net(seed=4)
    x = np.random.default_rng(5).random((40, *SHAPE))
    y = labels_for(x)
    kwargs = dict(steps=3, norm=norm, loss="cw", return_loss=True)
    x_multi, loss_multi = pgd(net, x, y, 0.15, restarts=4, rng=10, **kwargs)
    singles = [pgd(net, x, y, 0.15, restarts=1, rng=10 + r, **kwargs) for r in range(4)]
    losses = np.stack([loss for _, loss in singles])
    assert np.all(loss_multi >= losses.max(axis=0))
    # restart r of the multi-restart run IS the single run with seed 10 + r
    chosen = np.stack([xs for xs, _ in singles])[losses.argmax(axis=0), np.arange(len(x))]
    np.testing.assert_array_equal(x_multi, chosen)
    assert len(np.unique(losses.argmax(axis=0))) > 1      # the starts really differ


def test_restarts_with_cross_entropy_keep_successes():
    net = tiny_net(seed=6)
    x = np.random.default_rng(7).random((60, *SHAPE))
    y = labels_for(x)
    x_multi, loss_multi = pgd(net, x, y, 0.2, steps=3, restarts=3, rng=0, return_loss=True)
    fooled_multi = net(Tensor(x_multi)).data.argmax(1) != y
    fooled_any = np.zeros(len(x), bool)
    for r in range(3):
        x_r, loss_r = pgd(net, x, y, 0.2, steps=3, rng=r, return_loss=True)
        fooled_r = net(Tensor(x_r)).data.argmax(1) != y
        fooled_any |= fooled_r
        assert np.all(loss_multi[~fooled_multi] >= loss_r[~fooled_multi])
    np.testing.assert_array_equal(fooled_multi, fooled_any)


def test_early_stop_freezes_misclassified_examples():
    net = tiny_net(seed=8)
    x = np.random.default_rng(9).random((50, *SHAPE))
    y = labels_for(x)
    x_adv = pgd(net, x, y, 0.3, steps=20, early_stop=True, restarts=2, rng=0)
    x_full = pgd(net, x, y, 0.3, steps=20, rng=0)
    fooled = net(Tensor(x_adv)).data.argmax(1) != y
    assert fooled.mean() >= (net(Tensor(x_full)).data.argmax(1) != y).mean() - 1e-12
    assert_feasible(x_adv, x, 0.3, "linf")


# ---- no side effects -----------------------------------------------------------------
def snapshot(model, *arrays):
    return ([p.data.copy() for p in model.parameters()],
            [None if p.grad is None else p.grad.copy() for p in model.parameters()],
            [p.requires_grad for p in model.parameters()],
            [m.training for m in model.modules()], [a.copy() for a in arrays])


def assert_same(a, b):
    for left, right in zip(a, b, strict=True):
        assert len(left) == len(right)
        for u, v in zip(left, right, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v)
            else:
                assert u == v


@pytest.mark.parametrize("training", [True, False])
def test_attacks_have_no_side_effects(training):
    net = tiny_net(seed=10)
    net.train(training)
    net[2].training = not training                     # a mixed mode must survive too
    x = np.random.default_rng(11).random((7, *SHAPE))
    y = labels_for(x)
    net.parameters()[0].grad = np.ones_like(net.parameters()[0].data)   # a pending gradient
    before = snapshot(net, x, y)
    fgsm(net, x, y, 0.1)
    fgm(net, x, y, 0.1)
    pgd(net, x, y, 0.1, restarts=2, early_stop=True, rng=0)
    apgd(net, x, y, 0.1, steps=4, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GradientMaskingWarning)
        evaluate(net, x, y, [Attack("fgsm", 0.1), Attack("pgd", 0.1, steps=3)])
    assert_same(before, snapshot(net, x, y))


def test_attack_inside_no_grad_still_works():
    model, x, y, w, s = linear_case()
    with npadv.no_grad():
        x_adv = fgsm(model, x, y, 0.3, lo=None, hi=None)
    np.testing.assert_allclose(x_adv, x - 0.3 * np.sign(w) * s)


# ---- the threat set as a Ball ----------------------------------------------------------
# (name, the call with eps, norm, lo, hi as arguments, the same call with eps a Ball)
BALL_CALLS = [
    ("fgsm", lambda m, x, y: fgsm(m, x, y, 0.1, lo=0.0, hi=1.0),
     lambda m, x, y: fgsm(m, x, y, Ball(0.1, "linf"))),
    ("fgm", lambda m, x, y: fgm(m, x, y, 0.5, lo=0.0, hi=1.0),
     lambda m, x, y: fgm(m, x, y, Ball(0.5, "l2"))),
    ("fgm-no-box", lambda m, x, y: fgm(m, x, y, 0.5),
     lambda m, x, y: fgm(m, x, y, Ball(0.5, "l2", None, None))),
    ("pgd-linf", lambda m, x, y: pgd(m, x, y, 0.1, steps=4, rng=0),
     lambda m, x, y: pgd(m, x, y, Ball(0.1, "linf"), steps=4, rng=0)),
    ("pgd-l2-restarts", lambda m, x, y: pgd(m, x, y, 0.8, steps=3, norm="l2", restarts=2, rng=1,
                                         return_loss=True),
     lambda m, x, y: pgd(m, x, y, Ball(0.8, "l2"), steps=3, restarts=2, rng=1, return_loss=True)),
    ("pgd-l1-box", lambda m, x, y: pgd(m, x, y, 2.0, steps=3, norm="l1", lo=0.1, hi=0.9, rng=2),
     lambda m, x, y: pgd(m, x, y, Ball(2.0, "l1", 0.1, 0.9), steps=3, rng=2)),
    ("pgd-early-stop", lambda m, x, y: pgd(m, x, y, 0.3, steps=5, early_stop=True, rng=3),
     lambda m, x, y: pgd(m, x, y, Ball(0.3, "linf"), steps=5, early_stop=True, rng=3)),
    ("apgd-linf", lambda m, x, y: apgd(m, x, y, 0.1, steps=6, restarts=2, rng=4),
     lambda m, x, y: apgd(m, x, y, Ball(0.1, "linf"), steps=6, restarts=2, rng=4)),
    ("apgd-l2-dlr", lambda m, x, y: apgd(m, x, y, 0.8, norm="l2", steps=6, loss="dlr", rng=5,
                                      return_loss=True),
     lambda m, x, y: apgd(m, x, y, Ball(0.8, "l2"), steps=6, loss="dlr", rng=5,
                       return_loss=True)),
    ("apgd-t", lambda m, x, y: apgd_targeted(m, x, y, 0.1, steps=4, n_targets=3, rng=6),
     lambda m, x, y: apgd_targeted(m, x, y, Ball(0.1, "linf"), steps=4, n_targets=3, rng=6)),
    ("square", lambda m, x, y: square(m, x, y, 0.1, n_queries=20, rng=7, return_loss=True),
     lambda m, x, y: square(m, x, y, Ball(0.1, "linf"), n_queries=20, rng=7, return_loss=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, with_eps, with_ball", BALL_CALLS,
                         ids=[name for name, _, _ in BALL_CALLS])
def test_an_attack_given_a_ball_is_the_same_attack_bit_for_bit(name, with_eps, with_ball,
                                                               dtype):
    net = tiny_net(dtype)
    x = (np.random.default_rng(12).random((6, *SHAPE)) * 0.8 + 0.1).astype(dtype)
    y = labels_for(x)
    old, new = with_eps(net, x, y), with_ball(net, x, y)
    for a, b in zip(old if isinstance(old, tuple) else [old],
                    new if isinstance(new, tuple) else [new], strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_a_ball_and_conflicting_norm_or_box_raise():
    x, y = np.full((3, *SHAPE), 0.5), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="norm='l1'.*disagrees with the ball's norm='l2'"):
        pgd(NET, x, y, Ball(0.1, "l2"), norm="l1")
    with pytest.raises(ValueError, match="lo=-1.0.*disagrees with the ball's lo=0.0"):
        pgd(NET, x, y, Ball(0.1, "linf"), lo=-1.0)
    with pytest.raises(ValueError, match="hi=None.*disagrees"):
        apgd(NET, x, y, Ball(0.1, "linf"), hi=None)
    with pytest.raises(ValueError, match="lo=0.0.*disagrees with the ball's lo=None"):
        fgm(NET, x, y, Ball(0.1, "l2", None, None), lo=0.0)
    with pytest.raises(ValueError, match="fgsm supports norm 'linf', got 'l2'"):
        fgsm(NET, x, y, Ball(0.1, "l2"))
    with pytest.raises(ValueError, match="square supports norm 'linf', got 'l1'"):
        square(NET, x, y, Ball(0.1, "l1"))
    with pytest.raises(ValueError, match="apgd supports norm 'linf' or 'l2', got 'l1'"):
        apgd(NET, x, y, Ball(0.1, "l1"))
    with pytest.raises(ValueError, match="apgd_targeted supports norm 'linf' or 'l2'"):
        apgd_targeted(NET, x, y, Ball(0.1, "l1"))
    with pytest.raises(ValueError, match="outside the box"):
        pgd(NET, x, y, Ball(0.1, "linf", lo=0.6, hi=1.0))
    # values that agree with the ball are no conflict
    same = pgd(NET, x, y, Ball(0.1, "l2", 0.0, 1.0), norm="l2", lo=0.0, hi=1, rng=0)
    np.testing.assert_array_equal(same, pgd(NET, x, y, 0.1, norm="l2", rng=0))


# ---- bad arguments -------------------------------------------------------------------
ATTACK_CALLS = {
    "fgsm": lambda x, y, **kw: fgsm(NET, x, y, **kw),
    "fgm": lambda x, y, **kw: fgm(NET, x, y, **kw),
    "pgd": lambda x, y, **kw: pgd(NET, x, y, **kw),
    "apgd": lambda x, y, **kw: apgd(NET, x, y, steps=2, **kw),
}


@pytest.mark.parametrize("name", sorted(ATTACK_CALLS))
def test_bad_arguments_raise_clear_errors(name):
    call = ATTACK_CALLS[name]
    x = np.full((3, *SHAPE), 0.5)
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="eps must be"):
        call(x, y, eps=-0.1)
    with pytest.raises(ValueError, match="labels out of range"):
        call(x, np.array([0, 1, 9]), eps=0.1)
    with pytest.raises(ValueError, match="shape"):
        call(x, np.array([0, 1]), eps=0.1)
    x_nan = x.copy()
    x_nan[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        call(x_nan, y, eps=0.1)
    if name != "fgm":
        with pytest.raises(ValueError, match="outside the box"):
            call(x + 1, y, eps=0.1)


def test_bad_norm_steps_and_restarts():
    x, y = np.full((3, *SHAPE), 0.5), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="unknown norm"):
        pgd(NET, x, y, 0.1, norm="l3")
    with pytest.raises(ValueError, match="steps must be"):
        pgd(NET, x, y, 0.1, steps=-1)
    with pytest.raises(ValueError, match="steps must be"):
        apgd(NET, x, y, 0.1, steps=-2)
    with pytest.raises(ValueError, match="restarts must be"):
        pgd(NET, x, y, 0.1, restarts=0)
    with pytest.raises(ValueError, match="apgd supports norm"):
        apgd(NET, x, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match="unknown loss"):
        pgd(NET, x, y, 0.1, loss="hinge")
    with pytest.raises(ValueError, match="mask"):
        fgm(NET, x, y, 0.1, mask=np.ones(5))
    with pytest.raises(ValueError, match="unknown attack"):
        Attack("deepfool", eps=0.1)
    with pytest.raises(TypeError, match="no option"):
        Attack("pgd", eps=0.1, stpes=10)


# ---- losses --------------------------------------------------------------------------
@given(z=hnp.arrays(np.float64, (5, 4), elements=st.floats(-5, 5)),
       y=hnp.arrays(np.int64, 5, elements=st.integers(0, 3)))
def test_margin_losses_against_numpy(z, y):
    rows = np.arange(5)
    others = np.where(np.arange(4) == y[:, None], -np.inf, z)
    margin = others.max(1) - z[rows, y]
    np.testing.assert_allclose(cw_loss(Tensor(z), y).data, margin, atol=1e-12)
    top = np.sort(z, axis=1)[:, ::-1]
    np.testing.assert_allclose(dlr_loss(Tensor(z), y).data,
                               margin / (top[:, 0] - top[:, 2] + 1e-12), atol=1e-9)


def test_dlr_is_shift_and_scale_invariant_and_positive_iff_misclassified():
    z = np.random.default_rng(12).standard_normal((50, 10))
    y = np.arange(50) % 10
    d = dlr_loss(Tensor(z), y).data
    np.testing.assert_allclose(dlr_loss(Tensor(3 * z + 7), y).data, d, rtol=1e-9)
    np.testing.assert_array_equal(d > 0, z.argmax(1) != y)


def test_loss_gradients_against_finite_differences():
    z = np.random.default_rng(13).standard_normal((6, 5)) * 3   # distinct logits, no ties
    y = np.array([0, 1, 2, 3, 4, 0])
    vjp_check(lambda t: cw_loss(t, y), [z])
    vjp_check(lambda t: dlr_loss(t, y), [z])


# ---- evaluation ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist_mlp():
    """An MLP trained for one epoch on MNIST-5k, and 100 test images."""
    x_train, y_train, x_test, y_test = load_mnist_5k()
    model = npadv.mlp(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = np.random.default_rng(0).permutation(len(x_train))
    for start in range(0, len(order), 64):
        idx = order[start:start + 64]
        opt.zero_grad()
        npadv.functional.cross_entropy(model(Tensor(x_train[idx])), y_train[idx]).backward()
        opt.step()
    return model, x_test[:100], y_test[:100]


def test_evaluate_orders_accuracies_and_is_quiet_on_a_sane_setup(mnist_mlp):
    model, x, y = mnist_mlp
    attacks = [Attack("fgsm", 0.05), Attack("pgd", 0.05, steps=10, rng=0),
               Attack("pgd", 0.05, steps=10, restarts=2, rng=0), Attack("apgd", 0.05, steps=10)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        report = evaluate(model, x, y, attacks, batch_size=64)
    assert report.warnings == []
    assert report.clean_accuracy > 0.8
    accs = list(report.attack_accuracy.values())
    assert all(report.robust_accuracy <= a <= report.clean_accuracy for a in accs)
    assert report.robust_accuracy == report.robust.mean()
    assert report.robust_accuracy < report.clean_accuracy
    assert "robust accuracy" in str(report)


def test_evaluate_warns_on_a_gradient_masked_model(mnist_mlp):
    model, x, y = mnist_mlp
    masked = Quantised(model)
    with pytest.warns(GradientMaskingWarning) as record:
        report = evaluate(masked, x, y, [Attack("pgd", 0.1, steps=5, rng=0)])
    assert any("zero or NaN" in w for w in report.warnings)
    assert any("whole box" in w for w in report.warnings)
    assert len(record) == len(report.warnings)


def test_robust_accuracy_curve(mnist_mlp):
    model, x, y = mnist_mlp
    curve = robust_accuracy_curve(model, x, y, [0.0, 0.05, 0.1, 0.2],
                                  Attack("pgd", 0.0, steps=5, rng=0))
    assert curve.accuracy[0] == curve.clean_accuracy
    assert np.all(np.diff(curve.accuracy) <= 0.02)
    assert curve.accuracy[-1] < 0.2
    assert curve.warnings == []


def test_checks_on_synthetic_numbers():
    assert len(check_eps_monotone([0.0, 0.1, 0.2], [0.9, 0.4, 0.6])) == 1
    assert check_eps_monotone([0.2, 0.0, 0.1], [0.1, 0.9, 0.4]) == []
    f, p = Attack("fgsm", 0.1), Attack("pgd", 0.1, steps=20)
    assert len(check_pgd_vs_fgsm([(f, 0.3), (p, 0.5)])) == 1
    assert check_pgd_vs_fgsm([(f, 0.3), (p, 0.2)]) == []
    p40, p40r = Attack("pgd", 0.1, steps=40), Attack("pgd", 0.1, steps=40, restarts=5)
    assert len(check_more_effort([(p, 0.2), (p40, 0.3)])) == 1
    assert len(check_more_effort([(p40, 0.2), (p40r, 0.25)])) == 1
    assert check_more_effort([(p, 0.3), (p40, 0.2), (p40r, 0.2)]) == []
    other_loss = Attack("pgd", 0.1, steps=40, loss="cw")       # not comparable
    assert check_more_effort([(p, 0.2), (other_loss, 0.3)]) == []


# ---- empty batches, malformed models, radii and counts out of range ------------------------
EVERY_ATTACK = {
    "fgsm": lambda m, x, y, eps: fgsm(m, x, y, eps),
    "fgm": lambda m, x, y, eps: fgm(m, x, y, eps),
    "pgd-linf": lambda m, x, y, eps: pgd(m, x, y, eps, steps=2, rng=0),
    "pgd-l2": lambda m, x, y, eps: pgd(m, x, y, eps, steps=2, norm="l2", rng=0),
    "pgd-l1": lambda m, x, y, eps: pgd(m, x, y, eps, steps=2, norm="l1", rng=0),
    "apgd": lambda m, x, y, eps: apgd(m, x, y, eps, steps=2, rng=0),
    "apgd-t": lambda m, x, y, eps: apgd_targeted(m, x, y, eps, steps=2, n_targets=2, rng=0),
    "square": lambda m, x, y, eps: square(m, x, y, eps, n_queries=3, rng=0),
    "evaluate": lambda m, x, y, eps: evaluate(m, x, y, [Attack("fgsm", eps=eps)],
                                              progress=False, checks=False),
}


@pytest.mark.parametrize("name", sorted(EVERY_ATTACK))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_empty_batch_gives_an_empty_result(name, dtype):
    """An attack has nothing to do on no examples; an accuracy over none is undefined."""
    x, y = np.zeros((0, *SHAPE), dtype), np.zeros(0, np.int64)
    if name == "evaluate":
        with pytest.raises(ValueError, match="at least one example"):
            EVERY_ATTACK[name](tiny_net(dtype), x, y, 0.1)
        return
    out = EVERY_ATTACK[name](tiny_net(dtype), x, y, 0.1)
    assert out.shape == x.shape and out.dtype == x.dtype


class FlatLogits(nn.Module):
    """A model that returns one number per example, (N,), instead of logits (N, C)."""

    def forward(self, x):
        return NET(x)[:, 0]


@pytest.mark.parametrize("name", sorted(EVERY_ATTACK))
def test_a_model_without_class_logits_is_one_value_error(name):
    x = np.full((3, *SHAPE), 0.5)
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\).*returned shape \(1,\)"):
        EVERY_ATTACK[name](FlatLogits(), x, labels_for(x), 0.1)


def test_predict_and_input_gradient_check_the_logits_shape():
    from npadv.attacks import input_gradient, predict

    x = np.full((3, *SHAPE), 0.5)
    for call in (lambda: predict(FlatLogits(), x),
                 lambda: input_gradient(FlatLogits(), x, labels_for(x))):
        with pytest.raises(ValueError, match=r"\(N, C\).*for 3 inputs it returned shape "
                                             r"\(3,\)"):
            call()


@pytest.mark.parametrize("name", sorted(set(EVERY_ATTACK) - {"evaluate"}))
@given(eps=st.sampled_from([-1.0, -1e-9, np.nan, np.inf, -np.inf, 1e300, 1.01e150]))
def test_a_radius_out_of_range_is_refused(name, eps):
    x = np.full((2, *SHAPE), 0.5)
    with pytest.raises(ValueError, match=r"eps must be (a finite number >= 0|at most 1e\+150)"):
        EVERY_ATTACK[name](NET, x, labels_for(x), eps)


def test_a_radius_too_large_for_float32_is_refused():
    x = np.full((2, *SHAPE), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"eps = 1e\+20 is too large for float32 inputs"):
        pgd(tiny_net(np.float32), x, labels_for(x), 1e20, norm="l1", lo=None, hi=None)


@given(bad=st.sampled_from([2.5, True, -1, "3", np.float64(2.0)]))
def test_counts_must_be_integers(bad):
    x = np.full((2, *SHAPE), 0.5)
    y = labels_for(x)
    for name, call in (("steps", lambda: pgd(NET, x, y, 0.1, steps=bad)),
                       ("steps", lambda: apgd(NET, x, y, 0.1, steps=bad)),
                       ("restarts", lambda: pgd(NET, x, y, 0.1, restarts=bad)),
                       ("n_targets", lambda: apgd_targeted(NET, x, y, 0.1, n_targets=bad)),
                       ("n_queries", lambda: square(NET, x, y, 0.1, n_queries=bad))):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= "):
            call()


@given(x=hnp.arrays(np.float32, (5, 7), elements=st.floats(-3, 3, width=32)),
       eps=st.floats(1e-3, 5.0), seed=st.integers(0, 100))
def test_fgm_without_a_box_never_exceeds_eps(x, eps, seed):
    rng = np.random.default_rng(seed)
    net = nn.Sequential(nn.Linear(7, 3, rng=rng, dtype=np.float32))
    y = np.arange(5) % 3
    x_adv = fgm(net, x, y, eps)
    assert x_adv.dtype == np.float32
    assert np.all(norm_per_example(x_adv.astype(np.float64) - x, "l2") <= eps)


def test_within_l2_changes_only_the_rows_outside():
    from npadv.attacks.fgsm import within_l2

    c = np.zeros((3, 4), np.float32)
    z = np.array([[0.5, 0.5, 0.5, 0.5],          # norm 1: inside
                  [0.6, 0.6, 0.6, 0.6],          # norm 1.2: outside
                  [0.0, 0.0, 0.0, 0.0]], np.float32)
    z[1] *= np.float32(1 / 1.2)
    z[1] = np.nextafter(z[1], np.float32(1))    # just outside by rounding
    assert norm_per_example(z.astype(np.float64), "l2")[1] > 1.0
    out = within_l2(z, c, 1.0)
    np.testing.assert_array_equal(out[[0, 2]], z[[0, 2]])
    assert np.all(norm_per_example(out.astype(np.float64), "l2") <= 1.0)
    assert np.all(np.abs(out[1] - z[1]) <= 2 * np.spacing(z[1]))
    inside = z[[0, 2]]
    assert within_l2(inside, c[[0, 2]], 1.0) is inside         # nothing to do: no copy
