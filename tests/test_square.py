"""Square Attack: points inside ball ∩ box, the query budget, seeding, and a broken linear
model."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npadv
from npadv import Tensor, nn
from npadv.attacks import norm_per_example, square
from npadv.attacks.square import margin, p_schedule

SHAPE = (2, 5, 4)                                         # C, H, W (not square on purpose)


def tiny_net(dtype=np.float64, seed: int = 0, classes: int = 3) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(40, 16, flatten=True, rng=rng, dtype=dtype), nn.ReLU(),
                         nn.Linear(16, classes, rng=rng, dtype=dtype))


NET = tiny_net()


def in_ball(x_adv, x, eps) -> bool:
    """‖x_adv − x‖∞ ≤ ε up to a few units in the last place of x (the projection clips to
    x ± ε rounded in x's dtype, so the slack scales with |x|, not with ε)."""
    slack = 4 * np.finfo(x.dtype).eps * max(1.0, float(np.abs(x).max(initial=0.0)))
    return bool(np.all(norm_per_example(x_adv.astype(np.float64) - x, "linf") <= eps + slack))


class Counting(nn.Module):
    """Counts the examples it is queried on."""

    def __init__(self, inner):
        self.inner, self.queries = inner, 0

    def forward(self, x):
        self.queries += len(x)
        return self.inner(x)


@settings(max_examples=30)
@given(x=st.integers(1, 4).flatmap(lambda n: hnp.arrays(
           np.float64, (n, *SHAPE), elements=st.one_of(st.floats(0, 1),
                                                        st.sampled_from([0.0, 1.0])))),
       eps=st.one_of(st.just(0.0), st.floats(0, 0.6)), seed=st.integers(0, 3))
def test_square_stays_in_ball_and_box(x, eps, seed):
    y = np.arange(len(x)) % 3
    x_adv = square(NET, x, y, eps, n_queries=30, rng=seed)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert in_ball(x_adv, x, eps)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_square_float32_box_and_no_box():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (6, *SHAPE)).astype(np.float32)
    net = tiny_net(np.float32)
    y = np.arange(6) % 3
    x_adv = square(net, x, y, 0.3, n_queries=50, lo=0.1, hi=0.9, rng=0)
    assert x_adv.dtype == np.float32
    assert in_ball(x_adv, x, 0.3)
    assert x_adv.min() >= 0.1 and x_adv.max() <= 0.9
    free = square(net, x, y, 0.3, n_queries=50, lo=None, hi=None, rng=0)
    assert in_ball(free, x, 0.3)


def linear_data(n: int = 60, seed: int = 0):
    """Three classes of 1×8×8 images: x = 0.5 + (26/256)·t_y + noise, t_k a ±1 pattern and the
    noise a multiple of 1/256 in [−8/256, 8/256], and the matching undefended linear
    classifier z_k = t_k · x. Every value is a multiple of 1/256, so every logit, margin and
    ball corner x ± ε (for ε a multiple of 1/256) is exact in float64 whatever the order of
    summation: the attack takes the same path with every BLAS kernel."""
    rng = np.random.default_rng(seed)
    templates = rng.choice([-1.0, 1.0], size=(3, 64))
    y = np.arange(n) % 3
    x = (128 + 26 * templates[y] + rng.integers(-8, 9, (n, 64))) / 256
    model = nn.Sequential(nn.Linear(64, 3, flatten=True, dtype=np.float64))
    model[0].weight.data = templates.copy()
    model[0].bias.data = np.zeros(3)
    return model, x.reshape(n, 1, 8, 8), y


def exact_robust_accuracy(model, x, y, eps) -> float:
    """The exact L∞ robust accuracy of the linear model: against class k the worst point is
    x − ε·sign(w_y − w_k) (the data stays inside the box at these ε)."""
    w = model[0].weight.data
    robust = np.ones(len(x), dtype=bool)
    for k in range(w.shape[0]):
        x_k = x - eps * np.sign(w[y] - w[k]).reshape(x.shape)
        robust &= (model(Tensor(x_k)).data.argmax(axis=1) == y) | (y == k)
    return float(robust.mean())


# ε = 26/256 and 32/256: exact robust accuracy 1/3 and 0. The data are exact in float64
# (linear_data), so the verdict is the same under every BLAS kernel; checked with
#   for c in Haswell SkylakeX Zen Prescott; do OPENBLAS_CORETYPE=$c \
#       python -m pytest -q -n 0 tests/test_square.py; done
@pytest.mark.parametrize("eps", [26 / 256, 32 / 256])
def test_square_breaks_an_undefended_linear_model(eps):
    model, x, y = linear_data()
    clean = (model(Tensor(x)).data.argmax(axis=1) == y).mean()
    x_adv = square(model, x, y, eps, n_queries=300, rng=0)
    robust = (model(Tensor(x_adv)).data.argmax(axis=1) == y).mean()
    exact = exact_robust_accuracy(model, x, y, eps)
    assert clean == 1.0 and exact <= 0.34
    assert exact <= robust <= exact + 0.05, (robust, exact)   # reaches the true worst case
    assert in_ball(x_adv, x, eps)


def test_square_queries_only_unbroken_examples():
    model, x, y = linear_data(n=12)
    counting = Counting(model)
    square(counting, x, (y + 1) % 3, 0.05, n_queries=40, rng=0)    # all wrong from the start
    assert counting.queries == 1 + len(x)                          # input check + line 2
    counting.queries = 0
    x_adv = square(counting, x, y, 1e-4, n_queries=40, rng=0)      # too small to break any
    assert counting.queries == 1 + len(x) * 40
    assert (model(Tensor(x_adv)).data.argmax(axis=1) == y).all()


def test_square_is_seeded_and_improves_the_margin():
    model, x, y = linear_data(n=12)
    a, loss_a = square(model, x, y, 0.03, n_queries=60, rng=5, return_loss=True)
    b = square(model, x, y, 0.03, n_queries=60, rng=5)
    assert np.array_equal(a, b)
    start = margin(model(Tensor(x)).data, y)
    assert np.all(loss_a > start)                 # the stripes and squares push every margin
    assert np.allclose(loss_a, margin(model(Tensor(a)).data, y))


def test_p_schedule_halves_at_the_scaled_milestones():
    assert p_schedule(10, 10_000, 0.8) == 0.8 and p_schedule(11, 10_000, 0.8) == 0.4
    assert p_schedule(9_999, 10_000, 0.8) == pytest.approx(0.8 / 512)
    assert p_schedule(5, 5000, 0.8) == 0.8 and p_schedule(6, 5000, 0.8) == 0.4


def test_square_argument_errors():
    x = np.full((2, *SHAPE), 0.5)
    with pytest.raises(ValueError, match="images"):
        square(nn.Sequential(nn.Linear(40, 3, dtype=np.float64)), x.reshape(2, 40), [0, 1], 0.1)
    with pytest.raises(ValueError, match="n_queries"):
        square(NET, x, [0, 1], 0.1, n_queries=0)
    with pytest.raises(ValueError, match="p_init"):
        square(NET, x, [0, 1], 0.1, p_init=1.5)


# ---- local queries (local_forward.py) ---------------------------------------------------
def dyadic_cnn(seed: int) -> nn.Sequential:
    """small_cnn in float64 with every weight and bias a small multiple of 1/64: with inputs
    on a grid of 1/8, every product and sum of its forward pass is exact in float64, so any
    summation order (any BLAS kernel, any batch layout) gives the same logits, bit for bit."""
    net = npadv.small_cnn(seed=seed, dtype=np.float64).eval()
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p.data[...] = rng.integers(-3, 4, p.data.shape) / 64
    return net


def grid_images(rng, n: int) -> np.ndarray:
    return rng.integers(0, 9, (n, 1, 28, 28)) / 8


def test_local_queries_give_the_full_forwards_logits():
    from npadv.attacks.gradients import predict
    from npadv.attacks.local_forward import LocalForward

    net = dyadic_cnn(1)
    rng = np.random.default_rng(1)
    x_hat = grid_images(rng, 12)
    local = LocalForward.build(net, x_hat)
    assert local is not None
    np.testing.assert_array_equal(local.logits, predict(net, x_hat))
    for step in range(24):
        side, n = int(rng.choice([1, 2, 3, 5, 9, 17, 28])), len(x_hat)
        r, s = rng.integers(0, 28 - side + 1, n), rng.integers(0, 28 - side + 1, n)
        x_new = x_hat.copy()
        for i in range(n):
            x_new[i, :, r[i]:r[i] + side, s[i]:s[i] + side] = rng.integers(0, 9, (side, side)) / 8
        np.testing.assert_array_equal(local.query(x_new, r, s, side), predict(net, x_new))
        take = rng.random(n) < 0.5
        local.accept(take)
        x_hat[take] = x_new[take]
        if step % 8 == 7:                           # examples leave, as broken ones do
            keep = np.arange(n) != step % n
            local.keep(keep)
            x_hat = x_hat[keep]


def test_local_queries_of_a_trained_float32_model_agree_to_rounding():
    # with real weights the local and the full forward sum in different orders only where
    # the BLAS does: their logits agree to float32 rounding
    from npadv.attacks.gradients import predict
    from npadv.attacks.local_forward import LocalForward

    net = npadv.small_cnn(seed=2, dtype=np.float32).eval()
    rng = np.random.default_rng(2)
    x_hat = rng.random((8, 1, 28, 28)).astype(np.float32)
    local = LocalForward.build(net, x_hat)
    for side in (1, 4, 11, 28):
        r, s = rng.integers(0, 28 - side + 1, 8), rng.integers(0, 28 - side + 1, 8)
        x_new = x_hat.copy()
        for i in range(8):
            x_new[i, :, r[i]:r[i] + side, s[i]:s[i] + side] = rng.random((side, side))
        z_full = predict(net, x_new)
        assert np.abs(z_full - predict(net, x_hat)).max() > 1e-3      # the square matters
        np.testing.assert_allclose(local.query(x_new, r, s, side), z_full, rtol=1e-4,
                                   atol=1e-5)


def test_square_with_and_without_local_queries_is_the_same(monkeypatch):
    import sys

    square_module = sys.modules["npadv.attacks.square"]
    net = dyadic_cnn(3)
    rng = np.random.default_rng(4)
    x = grid_images(rng, 16)
    y = net(Tensor(x)).data.argmax(1)                # correct at first, then some broken
    local_x, local_loss = square(net, x, y, 0.25, n_queries=150, rng=5, return_loss=True)
    monkeypatch.setattr(square_module.LocalForward, "build", lambda model, x: None)
    full_x, full_loss = square(net, x, y, 0.25, n_queries=150, rng=5, return_loss=True)
    assert 0 < (full_loss > 0).mean() < 1
    np.testing.assert_array_equal(local_x, full_x)
    np.testing.assert_array_equal(local_loss, full_loss)


def test_local_queries_only_for_models_they_fit():
    from npadv.attacks.local_forward import LocalForward

    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    assert LocalForward.build(NET, np.zeros((2, *SHAPE))) is None          # no conv
    assert LocalForward.build(npadv.small_cnn().eval(), x.astype(np.float64)) is None
    assert LocalForward.build(npadv.small_cnn().train(), x) is None        # train mode
    assert LocalForward.build(npadv.small_cnn().eval(), x) is not None
