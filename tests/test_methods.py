"""The training methods: each against its algorithm box, its cost, and natural training.

Tiny float64 models on a few 1×6×6 images, so equalities can be asserted to 1e-12.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npadv
from npadv import Tensor, nn, optim
from npadv import functional as F
from npadv.methods import build_method, method_table, names
from npadv.testing import assert_gradients
from npadv.training.fast_at import FastAT
from npadv.training.fgsm_at import FGSMAT
from npadv.training.free_at import FreeAT
from npadv.training.freelb import FreeLB, freelb_step
from npadv.training.natural import Natural
from npadv.training.pgd_at import PGDAT
from npadv.training.trades import TRADES, kl_attack, kl_divergence, trades_loss
from npadv.training.yopo import YOPO, full_pass, hamiltonian_pass

EPS = 0.1


# ---- fixtures ------------------------------------------------------------------------
def tiny_cnn(seed: int = 1, classes: int = 3) -> nn.Sequential:
    """conv 1→3 3×3 (same), ReLU, flatten, fc 108→classes; float64."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU(),
                         nn.Flatten(), nn.Linear(108, classes, rng=rng, dtype=np.float64))


def loss_and_input_grad(model, x, y):
    """A reference pass: (mean loss, ∇ₓL) at x; parameter gradients accumulate too."""
    xt = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(model(xt), y)
    loss.backward()
    return float(loss.data), xt.grad


def batch(seed: int = 0, n: int = 4, interior: bool = False, classes: int = 3):
    """x: (n, 1, 6, 6) float64 in [0, 1] (in [0.3, 0.7] if interior); y: (n,) int64."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 0.7, (n, 1, 6, 6)) if interior else rng.uniform(0, 1, (n, 1, 6, 6))
    if not interior:
        x[:, :, 0, :2] = [0.0, 1.0]                       # some pixels on the box edges
    return x, rng.integers(0, classes, n)


class Record(nn.Module):
    """Identity layer that keeps a copy of every input it sees."""

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def forward(self, x):
        self.seen.append(np.array(x.data))
        return x


def recorded_cnn(seed: int = 1) -> tuple[nn.Sequential, Record]:
    record = Record()
    return nn.Sequential(record, *tiny_cnn(seed).layers), record


def one_step(method, model=None, x=None, y=None, lr: float = 0.1, momentum: float = 0.0,
             seed: int = 0):
    """Apply method.step once with SGD; return (model, optimizer, loss)."""
    model = tiny_cnn() if model is None else model
    if x is None:
        x, y = batch()
    opt = optim.SGD(model.parameters(), lr, momentum=momentum)
    loss = method.step(model, opt, x, y, np.random.default_rng(seed))
    return model, opt, loss


def assert_same_params(a, b, rtol=1e-12, atol=1e-15):
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=rtol, atol=atol, err_msg=name)


# ---- YOPO ------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [tiny_cnn, lambda: npadv.mlp(seed=2, dtype=np.float64)],
                         ids=["cnn", "mlp"])
@given(seed=st.integers(0, 2**16))
def test_yopo_hamiltonian_gradient_is_the_input_gradient(make, seed):
    """∇_η ⟨p, f0(x + η)⟩ at the η where p was taken equals backprop's ∇ₓL; the same
    holds for the first layer's parameters."""
    model = make()
    rng = np.random.default_rng(seed)
    shape = (3, 1, 6, 6) if isinstance(model[0], nn.Conv2d) else (3, 1, 28, 28)
    x_eta, y = rng.uniform(0, 1, shape), rng.integers(0, 3, 3)
    f0, g = model[0], model[1:]

    loss, p, g_full = full_pass(f0, g, x_eta, y)
    g_hamiltonian = hamiltonian_pass(f0, x_eta, p)
    model.zero_grad()
    loss_ref, g_ref = loss_and_input_grad(model, x_eta, y)
    theta0_ref = [q.grad.copy() for q in f0.parameters()]
    assert loss == pytest.approx(loss_ref, rel=1e-14)
    scale = np.abs(g_ref).max()
    assert np.abs(g_hamiltonian - g_ref).max() <= 1e-10 * scale
    assert np.abs(g_full - g_ref).max() <= 1e-10 * scale

    model.zero_grad()
    hamiltonian_pass(f0, x_eta, p, train_f0=True)
    for q, ref in zip(f0.parameters(), theta0_ref, strict=True):
        assert np.abs(q.grad - ref).max() <= 1e-10 * np.abs(ref).max()


def test_yopo_first_layer_gets_only_the_hamiltonian_gradient():
    """With n > 0 the full passes leave f0's parameters alone; f0's gradient is the mean of
    the m Hamiltonian gradients at the η after each round's n updates."""
    x, y = batch()
    model = tiny_cnn()
    f0, g = model[0], model[1:]
    method = YOPO(EPS, m=2, n=2)
    rng = np.random.default_rng(5)
    # replay the algorithm by hand with the public pieces, recording f0's expected gradient
    from npadv.attacks.projections import project, random_start
    x_eta = random_start(x, EPS, "linf", np.random.default_rng(5), 0.0, 1.0)
    expected = [np.zeros_like(q.data) for q in f0.parameters()]
    for _ in range(2):
        _, p, g_eta = full_pass(f0, g, x_eta, y)
        assert all(q.grad is None for q in f0.parameters())
        for k in range(2):
            if k > 0:
                g_eta = hamiltonian_pass(f0, x_eta, p)
            x_eta = project(x_eta + method.alpha * np.sign(g_eta), x, EPS, "linf", 0.0, 1.0)
        hamiltonian_pass(f0, x_eta, p, train_f0=True)
        for e, q in zip(expected, f0.parameters(), strict=True):
            e += q.grad
            q.grad = None
    model.zero_grad()

    opt = optim.SGD(model.parameters(), 0.0)          # lr 0: keep θ, inspect .grad
    method.step(model, opt, x, y, rng)
    for q, e in zip(f0.parameters(), expected, strict=True):
        np.testing.assert_allclose(q.grad, e / 2, rtol=1e-12, atol=1e-15)


# ---- equalities with natural training --------------------------------------------------
def test_freelb_k1_sigma0_is_natural_training():
    x, y = batch()
    a, _, loss_a = one_step(Natural(), tiny_cnn(), x, y, momentum=0.9)
    b, _, loss_b = one_step(FreeLB(K=1, alpha=0.7, sigma=0.0), tiny_cnn(), x, y, momentum=0.9)
    assert loss_a == loss_b
    assert_same_params(a, b)


def test_freelb_averages_the_k_parameter_gradients():
    """K = 2, σ = 0: the update uses (∇_θL(x) + ∇_θL(x + δ₁))/2, δ₁ = α·g/‖g‖₂ (per example)."""
    x, y = batch(interior=True)
    alpha = 0.3
    ref = tiny_cnn()
    ref.zero_grad()
    _, g = loss_and_input_grad(ref, x, y)
    norms = np.sqrt((g.reshape(len(g), -1) ** 2).sum(axis=1)).reshape(-1, 1, 1, 1)
    grads = [q.grad.copy() for q in ref.parameters()]
    ref.zero_grad()
    loss_and_input_grad(ref, x + alpha * g / norms, y)
    expected = [q.data - 0.1 * (g0 + q.grad) / 2
                for q, g0 in zip(ref.parameters(), grads, strict=True)]

    model, _, _ = one_step(FreeLB(K=2, alpha=alpha), tiny_cnn(), x, y)
    for q, e in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(q.data, e, rtol=1e-12, atol=1e-15)


def test_pgd_at_zero_steps_without_start_is_natural_training():
    x, y = batch()
    a, _, loss_a = one_step(Natural(), tiny_cnn(), x, y, momentum=0.9)
    b, _, loss_b = one_step(PGDAT(EPS, steps=0, random_start=False), tiny_cnn(), x, y,
                            momentum=0.9)
    assert loss_a == loss_b
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)


@pytest.mark.parametrize("method", [FGSMAT(0.0), FastAT(0.0), PGDAT(0.0, steps=3),
                                    YOPO(0.0, m=3, n=2)], ids=lambda m: m.name)
def test_eps_zero_is_natural_training(method):
    """With ε = 0 every perturbation vanishes and each method takes natural training's step
    (YOPO's average of m identical gradients, FGSM's c·g + (1 − c)·g)."""
    x, y = batch()
    a, _, _ = one_step(Natural(), tiny_cnn(), x, y)
    b, _, _ = one_step(method, tiny_cnn(), x, y)
    assert_same_params(a, b)


def test_free_eps_zero_is_m_natural_steps():
    x, y = batch()
    a = tiny_cnn()
    opt = optim.SGD(a.parameters(), 0.1, momentum=0.9)
    for _ in range(3):
        Natural().step(a, opt, x, y, np.random.default_rng(0))
    b, _, _ = one_step(FreeAT(0.0, replays=3), tiny_cnn(), x, y, momentum=0.9)
    assert_same_params(a, b)


# ---- Free AT -----------------------------------------------------------------------------
def test_free_steps_m_times_and_carries_delta_across_minibatches():
    m = 4
    model, record = recorded_cnn()
    method = FreeAT(EPS, replays=m)
    assert method.epoch_divisor == m
    opt = optim.SGD(model.parameters(), 0.05)
    x1, y1 = batch(0, n=4, interior=True)
    x2, y2 = batch(1, n=3, interior=True)                 # a smaller last batch

    method.step(model, opt, x1, y1, np.random.default_rng(0))
    assert opt.steps == m
    assert np.array_equal(record.seen[0], x1)             # δ starts at 0
    delta_prev = method.delta.copy()
    assert np.abs(delta_prev).max() == pytest.approx(EPS)  # nonzero, inside the ball
    assert np.abs(delta_prev).max() <= EPS
    # every replay after the first happened at x + δ of the previous replay
    assert all(np.abs(s - x1).max() <= EPS + 1e-15 for s in record.seen[1:m])
    assert not np.array_equal(record.seen[1], x1)

    record.seen.clear()
    method.step(model, opt, x2, y2, np.random.default_rng(1))
    assert opt.steps == 2 * m
    np.testing.assert_array_equal(record.seen[0], x2 + delta_prev[:3])   # leading part of δ
    assert np.array_equal(method.delta[3], delta_prev[3])                 # unused row kept

    restored = FreeAT(EPS, replays=m)
    restored.load_state_dict(method.state_dict())
    assert np.array_equal(restored.delta, method.delta)


def test_free_keeps_inputs_in_the_box():
    model, record = recorded_cnn()
    x, y = batch(3)                                       # pixels at 0 and 1
    method = FreeAT(0.3, replays=3)
    opt = optim.SGD(model.parameters(), 0.05)
    for seed in range(2):
        method.step(model, opt, x, y, np.random.default_rng(seed))
    for s in record.seen:
        assert s.min() >= 0 and s.max() <= 1
        assert np.abs(s - x).max() <= 0.3 + 1e-15


# ---- Fast AT -----------------------------------------------------------------------------
def test_fast_start_is_uniform_in_the_ball():
    """With α = 0 the training input is x + δ₀, and δ₀ covers [−ε, ε] uniformly."""
    model, record = recorded_cnn()
    x, y = batch(0, n=16, interior=True)
    one_step(FastAT(EPS, alpha=0.0), model, x, y)
    attack_input, train_input = record.seen
    assert np.array_equal(train_input, attack_input)
    delta0 = (train_input - x).ravel()
    assert np.abs(delta0).max() <= EPS + 1e-15
    assert delta0.min() < -0.9 * EPS and delta0.max() > 0.9 * EPS
    counts, _ = np.histogram(delta0, bins=4, range=(-EPS, EPS))
    assert np.all(np.abs(counts / delta0.size - 0.25) < 0.06), counts


def test_fast_output_lies_in_ball_and_box():
    model, record = recorded_cnn()
    x, y = batch(2, n=8)                                  # pixels on both box edges
    method = FastAT(0.3)
    assert method.alpha == pytest.approx(1.25 * 0.3)
    one_step(method, model, x, y)
    _, train_input = record.seen
    assert np.abs(train_input - x).max() <= 0.3 + 1e-15
    assert train_input.min() >= 0 and train_input.max() <= 1
    assert np.abs(train_input - x).max() > 0.29           # the FGSM step reached the edge


def test_fast_guard_restores_best_weights_and_stops(monkeypatch):
    model = tiny_cnn()
    x, y = batch(n=4)
    method = FastAT(EPS)
    script = iter([0.50, 0.81, 0.70, 0.02])
    monkeypatch.setattr(method, "guard_accuracy", lambda *args: next(script))
    snapshots = {}
    for epoch in (1, 2, 3):
        for q in model.parameters():
            q.data = q.data + 0.01 * epoch                # training moves the weights
        snapshots[epoch] = model.state_dict()
        assert method.end_of_epoch(model, x, y, epoch) is None
    assert method.best_acc == 0.81 and method.best_epoch == 2

    saved = method.state_dict()
    for q in model.parameters():
        q.data = q.data + 1.0
    reason = method.end_of_epoch(model, x, y, 4)
    assert reason == ("catastrophic overfitting: PGD accuracy 0.02 < best 0.81 − 0.20 at "
                      "epoch 4; restored epoch 2 weights")
    for name, value in model.state_dict().items():
        assert np.array_equal(value, snapshots[2][name])

    resumed = FastAT(EPS)
    resumed.load_state_dict(saved)
    assert resumed.best_acc == 0.81 and resumed.best_epoch == 2
    for name, value in resumed.best_weights.items():
        assert np.array_equal(value, snapshots[2][name])


def test_fast_guard_measures_pgd_accuracy():
    model = tiny_cnn()
    x, y = batch(n=8)
    method = FastAT(EPS, guard_n=5)
    acc = method.guard_accuracy(model, x[:5], y[:5])
    assert 0.0 <= acc <= 1.0 and acc * 5 == round(acc * 5)
    assert acc == method.guard_accuracy(model, x[:5], y[:5])   # fixed seed: repeatable
    assert all(q.grad is None for q in model.parameters())
    assert method.end_of_epoch(model, x, y, 1) is None and method.best_epoch == 1
    assert FastAT(EPS, guard=False).end_of_epoch(model, x, y, 1) is None


# ---- FGSM-AT -----------------------------------------------------------------------------
def test_fgsm_at_trains_on_the_mixed_objective():
    """θ moves along c·∇L(x) + (1 − c)·∇L(clip(x + ε·sign(∇ₓL(x))))."""
    x, y = batch()
    ref = tiny_cnn()
    _, g = loss_and_input_grad(ref, x, y)
    clean = [q.grad.copy() for q in ref.parameters()]
    ref.zero_grad()
    loss_and_input_grad(ref, np.clip(x + EPS * np.sign(g), 0, 1), y)
    expected = [q.data - 0.1 * (0.3 * gc + 0.7 * q.grad)
                for q, gc in zip(ref.parameters(), clean, strict=True)]
    model, _, _ = one_step(FGSMAT(EPS, c=0.3), tiny_cnn(), x, y)
    for q, e in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(q.data, e, rtol=1e-12, atol=1e-15)


# ---- FreeLB on embeddings ----------------------------------------------------------------
class MeanPool(nn.Module):
    """(B, T, d) -> (B, d), the mean over tokens."""

    def forward(self, z):
        return z.mean(axis=1)


def text_model(seed: int = 3):
    rng = np.random.default_rng(seed)
    record = Record()
    model = nn.Sequential(nn.Embedding(7, 4, rng=rng, dtype=np.float64), record, MeanPool(),
                          nn.Linear(4, 2, rng=rng, dtype=np.float64))
    return model, record


def test_freelb_on_embeddings_masks_padding_and_trains_the_table():
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 2, 0]])
    mask = (ids != 0)[..., None]
    y = np.array([0, 1])
    sigma, K = 0.5, 3

    results = []
    for as_callable in (False, True):
        model, record = text_model()
        emb, head = model[0], model[1:]
        table_before = emb.weight.data.copy()
        opt = optim.SGD(model.parameters(), 0.1)
        with npadv.cost() as c:
            e = (lambda emb=emb: emb(ids)) if as_callable else emb(ids)
            freelb_step(head, e, y, opt, K, alpha=0.2, sigma=sigma,
                        rng=np.random.default_rng(0), mask=mask)
        assert c.full_passes(model) == K and c.first_layer_passes(model) == 0
        clean = table_before[ids]
        deltas = [s - clean for s in record.seen]
        assert len(deltas) == K
        for d in deltas:
            assert np.all(d[~mask[..., 0]] == 0)          # padding never perturbed
        lengths = mask.sum(axis=(1, 2))
        norms0 = np.sqrt((deltas[0] ** 2).sum(axis=(1, 2)))
        assert np.all(norms0 <= sigma) and np.all(norms0 > 0)
        # the initial scale is σ/√(Lᵢ·d): entries stay within it
        bound = sigma / np.sqrt(lengths * 4)
        assert np.all(np.abs(deltas[0]).max(axis=(1, 2)) <= bound + 1e-15)
        assert not np.array_equal(emb.weight.data, table_before)   # the table trained
        results.append(model.state_dict())
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_freelb_max_norm_bounds_delta():
    model, record = recorded_cnn()
    x, y = batch(interior=True)
    one_step(FreeLB(K=4, alpha=1.0, max_norm=0.25, lo=None, hi=None), model, x, y)
    for s in record.seen:
        norms = np.sqrt(((s - x) ** 2).sum(axis=(1, 2, 3)))
        assert np.all(norms <= 0.25 + 1e-12)
    assert np.sqrt(((record.seen[-1] - x) ** 2).sum(axis=(1, 2, 3))).max() > 0.249


# ---- cost per minibatch --------------------------------------------------------------------
@pytest.mark.parametrize("name, flags, full, first, steps", [
    ("natural", {}, 1, 0, 1),
    ("fgsm", {}, 2, 0, 1),
    ("fast", {}, 2, 0, 1),
    ("pgd", {"steps": 4}, 5, 0, 1),
    ("pgd", {"steps": 0, "random_start": False}, 1, 0, 1),
    ("free", {"replays": 3}, 3, 0, 3),
    ("yopo", {"yopo_m": 3, "yopo_n": 2}, 3, 6, 1),
    ("yopo", {"yopo_m": 2, "yopo_n": 1}, 2, 2, 1),
    ("yopo", {"yopo_m": 2, "yopo_n": 0}, 2, 0, 1),
    ("freelb", {"freelb_k": 3}, 3, 0, 1),
    ("freelb", {"freelb_k": 2, "adv_init_mag": 1.0, "adv_max_norm": 0.5}, 2, 0, 1),
])
def test_cost_per_minibatch(name, flags, full, first, steps):
    method = build_method(name, **flags, **({} if name in ("natural", "freelb") else {"eps": EPS}))
    model = tiny_cnn()
    x, y = batch()
    opt = optim.SGD(model.parameters(), 0.05)
    with npadv.cost() as c:
        loss = method.step(model, opt, x, y, np.random.default_rng(0))
    assert (c.full_passes(model), c.first_layer_passes(model)) == (full, first)
    assert opt.steps == steps
    assert np.isfinite(loss)


# ---- the registry ------------------------------------------------------------------------
def test_registry_defaults():
    assert set(names("image")) == {"natural", "fgsm", "fast", "pgd", "free", "yopo", "freelb",
                                   "trades", "ibp"}
    assert set(names("text")) == {"natural", "fgm", "pgd", "freelb"}
    for name in names("image"):
        method = build_method(name, **({} if name in ("natural", "freelb") else {"eps": 0.2}))
        assert method.name == name and method.epoch_divisor >= 1
        assert method.state_dict() is not None
    assert build_method("fgsm", eps=0.2).c == 0.5
    assert build_method("fast", eps=0.2).alpha == pytest.approx(0.25)
    assert build_method("fast", eps=0.2).guard is True
    pgd = build_method("pgd", eps=0.2)
    assert (pgd.steps, pgd.random_start) == (10, True) and pgd.alpha == pytest.approx(0.05)
    free = build_method("free", eps=0.2)
    assert free.replays == free.epoch_divisor == 8
    yopo = build_method("yopo", eps=0.2)
    assert (yopo.m, yopo.n) == (5, 3) and yopo.alpha == pytest.approx(0.05)
    freelb = build_method("freelb")
    assert (freelb.K, freelb.alpha, freelb.sigma, freelb.max_norm) == (3, 0.5, 0.0, 0.0)
    assert freelb.eps is None            # no radius for the ε ramp to set


def test_registry_flags():
    assert build_method("pgd", eps=0.1, steps=4, alpha=None).alpha == pytest.approx(0.0625)
    assert build_method("yopo", eps=0.1, yopo_m=2, yopo_n=7).n == 7
    assert build_method("free", eps=0.1, replays=None).replays == 8
    with pytest.raises(ValueError, match="does not use --replays"):
        build_method("pgd", eps=0.1, replays=4)
    with pytest.raises(ValueError, match="unknown method"):
        build_method("mart")
    trades = build_method("trades", eps=0.2)
    assert (trades.steps, trades.beta) == (10, 6.0) and trades.alpha == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown method 'fgm' for the image task"):
        build_method("fgm")
    for name in ("natural", "freelb"):                    # no ε to set: refused, not ignored
        with pytest.raises(ValueError, match="does not use --eps"):
            build_method(name, eps=0.1)
    with pytest.raises(ValueError, match="does not use --lo"):
        build_method("fgm", task="text", lo=0.0)
    text_freelb = build_method("freelb", task="text", eps=0.6)
    assert (text_freelb.alpha, text_freelb.max_norm) == (0.3, 0.6)   # ε/2 and ε
    assert build_method("pgd", task="text").alpha == pytest.approx(2.5 / 3)


def test_every_declared_default_is_the_constructors():
    """A flag's shown default is its constructor default, or for None the derived rule, and
    that rule is what the constructor computes (α = 2.5ε/K, ε/4, 1.25ε, ε/2, ε)."""
    from npadv.methods import REGISTERED, accepted, defaults
    rules = {"1.25ε": 1.25 * 0.4, "2.5ε/K": None, "ε/4": 0.1, "ε/2": 0.2, "ε": 0.4}
    for cls in REGISTERED:
        eps = {"eps": 0.4} if "eps" in accepted(cls) else {}
        method = build_method(cls.name, task=cls.task, **eps)
        for flag, default in defaults(cls).items():
            if flag == "eps":
                continue                                     # given: 0.4
            value = getattr(method, cls.params.get(flag, flag))
            expected = default
            if isinstance(default, str):
                expected = rules[default] or 2.5 * 0.4 / method.steps
            assert value == pytest.approx(expected), (cls.name, flag)
        assert cls.paper or cls.name == "natural"
        assert cls.summary and set(cls.params) <= set(cls.flags)


def test_readme_method_table_matches_the_registry():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("<!-- methods: npadv.methods.method_table() -->\n")
    end = readme.index("<!-- /methods -->", start)
    assert readme[readme.index("\n", start) + 1:end] == method_table()


def test_alpha_follows_the_eps_ramp():
    """α given at the target ε scales with ε when the loop ramps ε."""
    for name in ("pgd", "fast", "yopo"):
        method = build_method(name, eps=0.2, alpha=0.08)
        assert method.alpha == pytest.approx(0.08)
        method.eps = 0.05
        assert method.alpha == pytest.approx(0.02)
    fast = FastAT(0.2)
    fast.eps = 0.05
    assert fast.guard_eps == 0.2                          # the guard keeps the target ε


def test_method_states_survive_a_checkpoint(tmp_path):
    from npadv.checkpoint import load_checkpoint, save_checkpoint

    model = tiny_cnn()
    x, y = batch()
    free = FreeAT(EPS, replays=2)
    one_step(free, model, x, y)
    fast = FastAT(EPS)
    fresh = FastAT(EPS).state_dict()                      # before any check: no weights
    fast.guard_accuracy = lambda *args: 0.5
    fast.end_of_epoch(model, x, y, 1)
    save_checkpoint(tmp_path / "c.npz", {"free": free.state_dict(), "fast": fast.state_dict(),
                                         "fresh": fresh}, {})
    parts, _ = load_checkpoint(tmp_path / "c.npz")
    free2, fast2, fresh2 = FreeAT(EPS, replays=2), FastAT(EPS), FastAT(EPS)
    free2.load_state_dict(parts["free"])
    fast2.load_state_dict(parts["fast"])
    fresh2.load_state_dict(parts.get("fresh", {}))
    assert np.array_equal(free2.delta, free.delta)
    assert (fast2.best_acc, fast2.best_epoch) == (0.5, 1)
    for name, value in model.state_dict().items():
        assert np.array_equal(fast2.best_weights[name], value)
    assert fresh2.best_weights is None and fresh2.best_acc == -np.inf


# ---- TRADES ----------------------------------------------------------------------------
def test_trades_with_beta_zero_is_natural_training():
    x, y = batch(seed=5)
    a, _, loss_a = one_step(Natural(), tiny_cnn(), x, y)
    b, _, loss_b = one_step(TRADES(EPS, steps=3, beta=0.0), tiny_cnn(), x, y)
    assert loss_a == loss_b
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)


@given(seed=st.integers(0, 2**16))
def test_trades_attack_increases_the_kl_and_stays_feasible(seed):
    model = tiny_cnn(seed=seed % 7 + 1)
    x, _ = batch(seed=seed)
    clean = npadv.attacks.predict(model, x)
    start = kl_attack(model, x, EPS, 0.025, 0, np.random.default_rng(seed))
    x_adv = kl_attack(model, x, EPS, 0.025, 10, np.random.default_rng(seed))
    kl = kl_divergence(clean, npadv.attacks.predict(model, x_adv)).data
    kl_start = kl_divergence(clean, npadv.attacks.predict(model, start)).data
    assert kl.sum() > kl_start.sum()
    assert np.all(np.abs(x_adv - x) <= EPS + 1e-12) and x_adv.min() >= 0 and x_adv.max() <= 1


@given(seed=st.integers(0, 2**16), beta=st.floats(0.0, 8.0))
def test_trades_loss_gradient_matches_finite_differences(seed, beta):
    model = tiny_cnn(seed=seed % 5 + 1)
    x, y = batch(seed=seed, interior=True)
    x_adv = x + np.random.default_rng(seed).uniform(-EPS, EPS, x.shape)
    # a ReLU network has kinks; one may lie within the difference step, so kinks are skipped
    report = assert_gradients(lambda a, b: trades_loss(model, a, b, y, beta), x, x_adv)
    assert report.checked >= 0.9 * (x.size + x_adv.size)



# ---- settings out of range -------------------------------------------------------------------
# (constructor, setting, its smallest value) for every count of every image method
COUNTS = [(FreeAT, "replays", 1), (PGDAT, "steps", 0), (TRADES, "steps", 0), (YOPO, "m", 1),
          (YOPO, "n", 0), (FreeLB, "K", 1), (FastAT, "guard_n", 1), (FastAT, "guard_steps", 0)]
# (constructor, setting) for every radius or step size
RADII = [(cls, "eps") for cls in (FGSMAT, FastAT, FreeAT, PGDAT, TRADES, YOPO)] + [
    (FastAT, "alpha"), (PGDAT, "alpha"), (TRADES, "alpha"), (YOPO, "alpha"), (TRADES, "beta"),
    (FreeLB, "alpha"), (FreeLB, "sigma"), (FreeLB, "max_norm"), (FastAT, "guard_eps"),
    (FastAT, "guard_margin")]


@pytest.mark.parametrize("cls, setting, minimum", COUNTS,
                         ids=[f"{c.__name__}-{s}" for c, s, _ in COUNTS])
@given(bad=st.sampled_from([2.5, True, False, "3", None, np.float64(3.0)]) | st.integers(-3, -1))
def test_a_count_must_be_an_integer_at_least_its_minimum(cls, setting, minimum, bad):
    if isinstance(bad, int) and not isinstance(bad, bool) and bad >= minimum:
        return
    with pytest.raises(ValueError, match=rf"^{setting}( \(\w+\))? must be an integer >= "
                                         rf"{minimum}, got"):
        cls(**{setting: bad})


@pytest.mark.parametrize("cls, setting", RADII, ids=[f"{c.__name__}-{s}" for c, s in RADII])
@given(bad=st.sampled_from([-1.0, -1e-300, np.nan, np.inf, -np.inf, 1e300, 1e151, True, "0.1"]))
def test_a_radius_must_be_finite_nonnegative_and_not_huge(cls, setting, bad):
    with pytest.raises(ValueError, match=rf"^{setting}( \(\w+\))? must be (a finite number "
                                         r">= 0|at most 1e\+150)"):
        cls(**{setting: bad})


@pytest.mark.parametrize("name", ["fgsm", "fast", "free", "pgd", "trades", "yopo"])
def test_a_subnormal_eps_is_refused(name):
    with pytest.raises(ValueError, match=r"^eps must be 0 or at least 2\.23e-308"):
        build_method(name, eps=1e-320)
    build_method(name, eps=0.0)                       # 0 is a radius: natural training


@pytest.mark.parametrize("name", ["fast", "pgd", "trades", "yopo"])
def test_an_alpha_whose_ratio_to_eps_overflows_is_refused(name):
    with pytest.raises(ValueError, match=r"^alpha / eps = 1e\+100 / 1e-300 overflows"):
        build_method(name, eps=1e-300, alpha=1e100)
    with pytest.raises(ValueError, match=r"^alpha must be at most 1e\+150"):
        build_method(name, alpha=1e300)


def test_free_at_with_a_fractional_replay_count_is_refused():
    with pytest.raises(ValueError, match=r"^replays must be an integer >= 1, got 2\.5$"):
        build_method("free", replays=2.5)


def test_freelb_step_checks_its_settings():
    model, (x, y) = tiny_cnn(), batch()
    opt = optim.SGD(model.parameters(), 0.1)
    with pytest.raises(ValueError, match="K must be an integer >= 1"):
        freelb_step(model, x, y, opt, 0, 0.1, 0.0, 0.0, None)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        freelb_step(model, x, y, opt, 2, np.nan, 0.0, 0.0, None)
