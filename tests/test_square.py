"""Square Attack: points inside ball ∩ box, the query budget, seeding, and a broken linear
model."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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
