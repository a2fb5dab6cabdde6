"""Interval bound propagation by its definition: sound (every point of the ball, its corners,
random points and PGD's worst point, lands inside the bounds), exact for one affine layer,
never contradicted by an attack, and a mutant bound is caught and shrunk."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from npadv import Tensor, nn
from npadv.attacks import apgd, fgsm, pgd, square
from npadv.certify import certify, input_box, interval_bounds, margin_bounds
from npadv.certify import ibp as ibp_module

SHAPE = (1, 6, 6)


def random_model(seed: int, kind: str) -> nn.Sequential:
    """A small float64 ReLU network on (N, 1, 6, 6) inputs, 3 classes."""
    rng = np.random.default_rng(seed)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(36, 12, flatten=True, rng=rng, dtype=np.float64),
                             nn.ReLU(), nn.Linear(12, 8, rng=rng, dtype=np.float64),
                             nn.ReLU(), nn.Linear(8, 3, rng=rng, dtype=np.float64))
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float64), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=1, rng=rng,
                                                    dtype=np.float64),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4, 6, rng=rng, dtype=np.float64),
                         nn.ReLU(), nn.Linear(6, 3, rng=rng, dtype=np.float64))


cases = st.builds(lambda seed, kind, eps, n: (seed, kind, eps, n),
                  st.integers(0, 10**6), st.sampled_from(["mlp", "cnn"]),
                  st.floats(0.0, 0.3), st.integers(1, 4))


def _logits(model, x):
    return model(Tensor(x)).data


def _ball_points(x, eps, rng, k=8):
    """Corners of the ball ∩ [0, 1] and uniform points inside it, (k, N, ...) each."""
    lower, upper = input_box(x, eps)
    corners = [np.where(rng.random(x.shape) < 0.5, lower, upper) for _ in range(k)]
    inside = [lower + rng.random(x.shape) * (upper - lower) for _ in range(k)]
    return corners + inside


@given(cases)
def test_every_point_of_the_ball_lies_within_the_bounds(case):
    seed, kind, eps, n = case
    model = random_model(seed, kind)
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE))
    y = _logits(model, x).argmax(axis=1)
    lower, upper = interval_bounds(model, x, eps)
    margin = margin_bounds(model, x, y, eps)
    worst = [pgd(model, x, y, eps, steps=10, loss="cw", rng=seed)]           # PGD's best
    for z in _ball_points(x, eps, rng) + worst:
        logits = _logits(model, z)
        assert np.all(logits >= lower - 1e-9) and np.all(logits <= upper + 1e-9)
        m = logits[np.arange(n), y][:, None] - logits
        m[np.arange(n), y] = np.inf                     # m_y = 0 is no constraint, nor m̲_y
        assert np.all(m >= margin - 1e-9)


@given(st.integers(0, 10**6), st.integers(1, 4), st.floats(0.0, 0.5))
def test_one_linear_layer_is_bounded_exactly(seed, d, eps):
    """Over a box, an affine map's range is attained at corners: the bounds equal the max
    and min over all 2^d corners of the ε-ball ∩ [0, 1]."""
    rng = np.random.default_rng(seed)
    layer = nn.Linear(d, 3, rng=rng, dtype=np.float64)
    model = nn.Sequential(layer)
    x = rng.random((1, d))
    lower, upper = interval_bounds(model, x, eps)
    lo_box, hi_box = input_box(x, eps)
    corners = np.array([np.where(np.array(bits), hi_box[0], lo_box[0])
                        for bits in itertools.product([0, 1], repeat=d)])
    values = _logits(model, corners)
    np.testing.assert_allclose(lower[0], values.min(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(upper[0], values.max(axis=0), rtol=0, atol=1e-12)
    y = np.array([int(rng.integers(3))])
    margins = values[:, y[0]][:, None] - values
    exact = margins.min(axis=0)
    exact[y[0]] = np.inf
    np.testing.assert_allclose(margin_bounds(model, x, y, eps)[0], exact, rtol=0, atol=1e-12)


@settings(max_examples=10)
@given(cases)
def test_no_certified_example_is_broken_by_an_attack(case):
    seed, kind, eps, n = case
    model = random_model(seed, kind)
    rng = np.random.default_rng(seed)
    x = rng.random((n + 4, *SHAPE))
    y = _logits(model, x).argmax(axis=1)
    eps = eps / 10                                  # small enough that some are certified
    certified = certify(model, x, y, eps)
    if not certified.any():
        return
    xc, yc = x[certified], y[certified]
    for attack in (lambda: fgsm(model, xc, yc, eps),
                   lambda: pgd(model, xc, yc, eps, steps=10, rng=seed),
                   lambda: apgd(model, xc, yc, eps, steps=10, loss="dlr", rng=seed),
                   lambda: square(model, xc, yc, eps, n_queries=50, rng=seed)):
        assert np.all(_logits(model, attack()).argmax(axis=1) == yc)


def test_certify_takes_batches_and_is_false_for_a_wrong_prediction():
    model = random_model(1, "cnn")
    x = np.random.default_rng(1).random((7, *SHAPE))
    y = _logits(model, x).argmax(axis=1)
    assert np.array_equal(certify(model, x, y, 1e-4, batch_size=3), certify(model, x, y, 1e-4))
    assert certify(model, x, y, 1e-4).all()                 # a tiny ball: all certified
    assert not certify(model, x, (y + 1) % 3, 1e-4).any()    # another class: never
    assert not certify(model, x, y, 1.0).any()               # the whole box: none


# ---- mutants: a wrong bound is caught, and hypothesis shrinks the case ------------------------
def _sound(case) -> bool:
    seed, kind, eps, n = case
    model = random_model(seed, kind)
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE))
    lower, upper = interval_bounds(model, x, eps)
    for z in _ball_points(x, eps, rng, k=4):
        logits = _logits(model, z)
        if np.any(logits < lower - 1e-9) or np.any(logits > upper + 1e-9):
            return False
    return True


def _exact(case) -> bool:
    seed, _, eps, _ = case
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(2, 2, rng=rng, dtype=np.float64))
    x = rng.random((1, 2))
    lower, _ = interval_bounds(model, x, eps)
    lo_box, hi_box = input_box(x, eps)
    corners = np.array([np.where(np.array(b), hi_box[0], lo_box[0])
                        for b in itertools.product([0, 1], repeat=2)])
    return bool(np.allclose(lower[0], _logits(model, corners).min(axis=0), atol=1e-12))


def _flipped_sign(layer, box, trained=False):
    lower, upper = box
    mu, r = (upper + lower) * 0.5, (upper - lower) * 0.5
    weight, bias = ibp_module._weights(layer, trained)
    mu_out = ibp_module._affine(layer, mu, weight, bias)
    r_out = ibp_module._affine(layer, r, weight, None)        # W r instead of |W| r
    return mu_out - r_out, mu_out + r_out


def _no_box(x, eps, lo=0.0, hi=1.0, dtype=np.float64):
    x = np.asarray(x, dtype=np.float64)
    return x - eps, x + eps                                   # forgets [lo, hi]


SEARCH = settings(max_examples=200, derandomize=True, database=None)


@pytest.mark.parametrize("mutant, prop", [("affine_bounds", _sound), ("input_box", _exact)])
def test_a_mutant_bound_is_caught_and_shrunk(mutant, prop, monkeypatch):
    with pytest.raises(NoSuchExample):                        # the real bounds never fail
        find(cases, lambda c: not prop(c), settings=SEARCH)
    monkeypatch.setattr(ibp_module, mutant,
                        _flipped_sign if mutant == "affine_bounds" else _no_box)
    if mutant == "affine_bounds":
        monkeypatch.setattr(ibp_module, "layer_bounds", lambda layer, box, trained=False: (
            _flipped_sign(layer, box) if isinstance(layer, (nn.Linear, nn.Conv2d))
            else ibp_module.monotone_bounds(layer, box)))
    case = find(cases, lambda c: not prop(c), settings=SEARCH)
    seed, kind, eps, n = case
    assert n == 1 and eps > 0                                  # shrunk to one example


def test_npadv_eval_certify_brackets_the_robust_accuracy(tmp_path, capsys, monkeypatch):
    import json

    from npadv.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "mlp", "--method", "fgsm", "--eps", "0.02", "--epochs",
                 "2", "--eval-size", "50", "--out", "run", "--no-progress"]) == 0
    assert main(["eval", "--checkpoint", "run/checkpoint.npz", "--attack", "pgd", "--steps",
                 "10", "--eps", "0.005", "0.02", "--n", "100", "--certify", "--json", "e.json",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "certified (IBP)" in out and "undecided" in out
    for result in json.loads((tmp_path / "e.json").read_text())["results"]:
        status = np.array(result["examples"])
        assert len(status) == 100 and set(status) <= {"certified", "broken", "undecided"}
        certified = np.mean(status == "certified")
        assert result["certified_accuracy"] == certified
        assert certified <= result["robust_accuracy"] == np.mean(status != "broken")
        assert result["undecided"] == pytest.approx(result["robust_accuracy"] - certified)
    small = json.loads((tmp_path / "e.json").read_text())["results"][0]
    assert small["certified_accuracy"] > 0                     # ε = 0.005: some are proven
    assert main(["eval", "--checkpoint", "run/checkpoint.npz", "--norm", "l2", "--certify",
                 "--no-progress"]) == 2


# ---- IBP training -------------------------------------------------------------------------------
def test_the_bound_is_differentiable_in_the_weights():
    """∇_θ of a loss on the margin bounds, through every layer, against finite differences."""
    from npadv.testing import assert_gradients

    model = random_model(3, "cnn")
    x = np.random.default_rng(3).random((2, *SHAPE))
    report = assert_gradients(_rebinding(model, x, np.array([0, 2])),
                              *[p.data.copy() for p in model.parameters()])
    assert report.checked > 0


def _rebinding(model, x, y):
    """f(*weights) -> the IBP loss with the model's parameters replaced by those Tensors."""
    from npadv.certify.ibp import margin_lower_bounds
    from npadv.engine import functional as F
    names = [name for name, _ in model.named_parameters()]

    def f(*weights):
        for name, w in zip(names, weights, strict=True):
            layer, attr = name.split(".")
            setattr(model[int(layer)], attr, w)
        return F.cross_entropy(-margin_lower_bounds(model, x, y, 0.05, trained=True), y)
    return f


def test_ibp_training_at_kappa_one_is_natural_training():
    from npadv import optim
    from npadv.methods import build_method
    x = np.random.default_rng(0).random((8, *SHAPE))
    y = np.arange(8) % 3
    models = [random_model(5, "cnn") for _ in range(2)]
    ibp = build_method("ibp", eps=0.1)
    ibp.eps = 0.0                                   # the start of the ε ramp: κ = 1
    assert ibp.kappa == 1.0
    for model, method in zip(models, (build_method("natural"), ibp), strict=True):
        method.step(model, optim.SGD(model.parameters(), 0.1), x, y, None)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    ibp.eps = 0.05
    assert ibp.kappa == pytest.approx(0.75)         # halfway up the ramp: halfway to 0.5


@pytest.mark.slow
def test_ibp_training_certifies_what_natural_training_cannot():
    """An MLP on 2,000 MNIST-5k digits, 6 epochs of Adam (ε ramped over 3): IBP training at
    ε = 0.1 certifies a good part of 300 test digits at ε = 0.05 (measured: 0.38); natural
    training certifies none."""
    import npadv
    from npadv.data import load_mnist_5k
    from npadv.methods import build_method
    from npadv.training import TrainConfig, train
    x, y, xt, yt = load_mnist_5k()
    data = (x[:2000], y[:2000], xt[:300], yt[:300])
    certified = {}
    for name in ("natural", "ibp"):
        model = npadv.mlp(seed=0)
        method = build_method(name, eps=0.1) if name == "ibp" else build_method(name)
        train(model, method, data, TrainConfig(epochs=6, eps_ramp=3, eval_size=50,
                                               optimizer="adam", lr=1e-3, weight_decay=0),
              progress=False)
        certified[name] = certify(model, xt[:300], yt[:300], 0.05).mean()
    assert certified["ibp"] >= 0.25 and certified["natural"] <= 0.05, certified


# ---- CROWN ---------------------------------------------------------------------------------
@given(cases)
def test_crown_is_sound(case):
    from npadv.certify import crown_margin_bounds
    seed, kind, eps, n = case
    model = random_model(seed, kind)
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SHAPE))
    y = _logits(model, x).argmax(axis=1)
    margin = crown_margin_bounds(model, x, y, eps)
    for z in _ball_points(x, eps, rng) + [pgd(model, x, y, eps, steps=10, loss="cw", rng=seed)]:
        logits = _logits(model, z)
        m = logits[np.arange(n), y][:, None] - logits
        m[np.arange(n), y] = np.inf
        assert np.all(m >= margin - 1e-9)


def test_crown_is_at_least_as_tight_as_ibp_and_mostly_tighter():
    """Over random models: the bound `crown.margin_bounds` certifies with is never below
    IBP's; CROWN's own bound (IBP's boxes inside) is above IBP's on most margins (measured
    over these 120 batches of 4: 871 of 960 margins tighter, 62 looser, the rest equal)."""
    from npadv.certify import crown, crown_margin_bounds, margin_bounds
    tighter = total = 0
    for seed in range(20):
        for kind in ("mlp", "cnn"):
            for eps in (0.01, 0.05, 0.2):
                model = random_model(seed, kind)
                x = np.random.default_rng(seed).random((4, *SHAPE))
                y = _logits(model, x).argmax(axis=1)
                by_ibp = margin_bounds(model, x, y, eps)
                assert np.all(crown.margin_bounds(model, x, y, eps) >= by_ibp)
                own = crown_margin_bounds(model, x, y, eps)
                finite = np.isfinite(by_ibp)
                tighter += int((own[finite] > by_ibp[finite]).sum())
                total += int(finite.sum())
    assert tighter >= 0.8 * total, (tighter, total)


def test_crown_certifies_where_ibp_cannot():
    import npadv
    from npadv.certify import crown
    from npadv.data import load_mnist_5k
    x = load_mnist_5k()[2][:100]
    model = npadv.mlp(seed=0)
    y = model(Tensor(x)).data.argmax(axis=1)
    by_crown, by_ibp = crown.certify(model, x, y, 0.001), certify(model, x, y, 0.001)
    assert np.all(by_crown >= by_ibp) and by_crown.sum() >= by_ibp.sum() + 20


@settings(max_examples=10)
@given(cases)
def test_no_crown_certified_example_is_broken_by_an_attack(case):
    from npadv.certify import crown
    seed, kind, eps, n = case
    model = random_model(seed, kind)
    x = np.random.default_rng(seed).random((n + 4, *SHAPE))
    y = _logits(model, x).argmax(axis=1)
    certified = crown.certify(model, x, y, eps / 5)
    if certified.any():
        xc, yc = x[certified], y[certified]
        for x_adv in (pgd(model, xc, yc, eps / 5, steps=10, rng=seed),
                      apgd(model, xc, yc, eps / 5, steps=10, loss="dlr", rng=seed),
                      square(model, xc, yc, eps / 5, n_queries=50, rng=seed)):
            assert np.all(_logits(model, x_adv).argmax(axis=1) == yc)
