"""The evaluation cascade, APGD-T and the masking checks on the attack that actually ran;
the scaled-model test: logit scaling must not inflate the default robust accuracy."""
from __future__ import annotations

import argparse
import copy
import warnings

import numpy as np
import pytest

import npadv
from npadv import Tensor, nn, optim
from npadv.attacks import (
    ATTACKS,
    SUITES,
    Attack,
    AttackSpec,
    GradientMaskingWarning,
    apgd,
    apgd_targeted,
    check_attack_gradients,
    check_ce_vs_margin,
    check_gradient_free,
    dlr_targeted_loss,
    evaluate,
    fgsm,
    norm_per_example,
    suite,
)
from npadv.attacks.evaluate import _margin_twin
from npadv.attacks.registry import registry
from npadv.cli import UsageError, _eval_attacks, _eval_parser
from npadv.data import iterate_batches, load_mnist_5k


@pytest.fixture(scope="module")
def linear_mnist():
    """A softmax-regression classifier trained for two epochs (well under a second) on
    MNIST-5k, a copy with its (last and only) layer ×1e4, and 50 test images."""
    x_train, y_train, x_test, y_test = load_mnist_5k()
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10, rng=np.random.default_rng(0)))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(2):
        for xb, yb in iterate_batches(x_train, y_train, 64, seed=epoch):
            opt.zero_grad()
            npadv.functional.cross_entropy(model(Tensor(xb)), yb).backward()
            opt.step()
    scaled = copy.deepcopy(model)
    scaled[1].weight.data *= 1e4
    scaled[1].bias.data *= 1e4
    return model, scaled, x_test[:50], y_test[:50]


EPS = 0.06


# ---- the scaled-model test ------------------------------------------------------------
def test_logit_scaling_does_not_inflate_the_default_robust_accuracy(linear_mnist):
    model, scaled, x, y = linear_mnist
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)       # the sane model: quiet
        plain = evaluate(model, x, y, eps=EPS)
    with pytest.warns(GradientMaskingWarning):                        # the CE stage is masked
        big = evaluate(scaled, x, y, eps=EPS)
    assert plain.cascade and list(plain.attack_accuracy)[0].startswith("apgd(")
    assert big.clean_accuracy == plain.clean_accuracy > 0.8
    assert plain.robust_accuracy < plain.clean_accuracy - 0.1          # ε is not trivial
    assert abs(big.robust_accuracy - plain.robust_accuracy) <= 0.02


def test_a_cross_entropy_only_evaluation_of_the_scaled_model_warns(linear_mnist):
    model, scaled, x, y = linear_mnist
    ce_only = [Attack("apgd", EPS, steps=20, rng=0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        plain = evaluate(model, x, y, ce_only)
    with pytest.warns(GradientMaskingWarning) as record:
        inflated = evaluate(scaled, x, y, ce_only)
    assert inflated.robust_accuracy > plain.robust_accuracy + 0.05    # what it would hide
    messages = " ".join(str(w.message) for w in record)
    assert "exactly zero" in messages and "softmax saturates" in messages
    assert "more examples robust than apgd(" in messages and "loss=dlr" in messages


# ---- the cascade ------------------------------------------------------------------------
def recording_attack(name: str, log: list, flip: int) -> AttackSpec:
    """The declaration of an attack that records how many examples it was given and breaks
    the first `flip` of them (moving them to the box corner the test model misclassifies)."""
    def attack(model, x, y, eps, lo=0.0, hi=1.0):
        log.append(len(x))
        out = x.copy()
        out[:flip] = 1.0
        return out
    return AttackSpec(name=name, run=attack, title=name.upper(), paper="none",
                      summary="records its batch sizes", norms=("linf",), losses=("ce",))


class SumModel(nn.Module):
    """Two classes: class 1 iff the mean of the input is above 0.75."""

    def forward(self, x):
        s = x.data.reshape(len(x.data), -1).mean(axis=1, keepdims=True) - 0.75
        return Tensor(s * np.array([[-1.0, 1.0]]))


def test_each_stage_runs_only_on_the_examples_still_unbroken(monkeypatch):
    log: list[int] = []
    monkeypatch.setitem(ATTACKS, "a", recording_attack("a", log, 3))
    monkeypatch.setitem(ATTACKS, "b", recording_attack("b", log, 2))
    x = np.full((10, 4), 0.5)
    y = np.zeros(10, dtype=np.int64)
    y[9] = 1                                                  # one clean mistake
    attacks = [Attack("a", 0.1), Attack("b", 0.1), Attack("a", 0.1)]
    report = evaluate(SumModel(), x, y, attacks, cascade=True, checks=False)
    assert log == [9, 6, 4]
    assert list(report.attack_accuracy.values()) == [0.6, 0.4, 0.1]
    assert report.robust_accuracy == 0.1 and report.robust.sum() == 1
    assert "after a(eps=0.1)" in str(report)
    log.clear()
    independent = evaluate(SumModel(), x, y, attacks, checks=False)
    assert log == [9, 9, 9] and independent.robust_accuracy == 0.6


def test_suites_and_their_arguments():
    assert [name for name, _ in SUITES["standard"]] == ["apgd", "apgd-t", "square"]
    stages = suite("standard", 0.3, seed=4)
    assert stages[1].get("n_targets") == 9 and stages[2].get("n_queries") == 5000
    assert all(a.eps == 0.3 and a.get("rng") == 4 for a in stages)
    x, y = np.full((2, 1, 4, 4), 0.5), np.array([0, 1])
    with pytest.raises(ValueError, match="needs eps"):
        evaluate(SumModel(), x, y)
    with pytest.raises(ValueError, match="unknown suite"):
        evaluate(SumModel(), x, y, "strongest", eps=0.1)
    with pytest.raises(ValueError, match="carry their own eps"):
        evaluate(SumModel(), x, y, [], eps=0.1)


def test_quick_suite_on_a_trained_mlp_is_quiet_and_orders_its_stages():
    x_train, y_train, x_test, y_test = load_mnist_5k()
    model = npadv.mlp(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for start in range(0, 2048, 64):
        opt.zero_grad()
        npadv.functional.cross_entropy(model(Tensor(x_train[start:start + 64])),
                                       y_train[start:start + 64]).backward()
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        report = evaluate(model, x_test[:40], y_test[:40], "quick", eps=0.05)
    accs = list(report.attack_accuracy.values())
    assert report.clean_accuracy >= accs[0] >= accs[1] >= accs[2] == report.robust_accuracy
    assert report.robust_accuracy < report.clean_accuracy


# ---- APGD-T -------------------------------------------------------------------------------
def test_dlr_targeted_loss_against_numpy_and_its_invariances():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20, 6))
    y, t = rng.integers(0, 6, 20), rng.integers(0, 6, 20)
    got = dlr_targeted_loss(Tensor(z), y, t).data
    s = np.sort(z, axis=1)[:, ::-1]
    rows = np.arange(20)
    expected = -(z[rows, y] - z[rows, t]) / (s[:, 0] - 0.5 * (s[:, 2] + s[:, 3]) + 1e-12)
    assert np.allclose(got, expected)
    assert np.allclose(dlr_targeted_loss(Tensor(7.5 * z + 3), y, t).data, got)
    assert np.array_equal(got > 0, z[rows, t] > z[rows, y])
    with pytest.raises(ValueError, match="at least 4 classes"):
        dlr_targeted_loss(Tensor(z[:, :3]), y % 3, t % 3)


def test_apgd_targeted_stays_feasible_and_beats_apgd_ce_on_the_scaled_model(linear_mnist):
    model, scaled, x, y = linear_mnist
    x_t = apgd_targeted(scaled, x, y, EPS, steps=20, n_targets=3, rng=0)
    assert x_t.dtype == x.dtype and x_t.min() >= 0 and x_t.max() <= 1
    slack = 4 * np.finfo(np.float32).eps          # x ± ε rounded in float32, |x| ≤ 1
    assert np.all(norm_per_example(x_t.astype(np.float64) - x, "linf") <= EPS + slack)
    x_ce = apgd(scaled, x, y, EPS, steps=20, rng=0)

    def accuracy(m, xa):
        return (m(Tensor(xa)).data.argmax(axis=1) == y).mean()

    assert accuracy(scaled, x_t) < accuracy(scaled, x_ce) - 0.05
    x_plain = apgd_targeted(model, x, y, EPS, steps=20, n_targets=3, rng=0)
    assert abs(accuracy(model, x_plain) - accuracy(scaled, x_t)) <= 0.02   # scale-free loss


# ---- the checks on synthetic numbers ------------------------------------------------
def test_masking_checks_name_the_cause(linear_mnist):
    model, scaled, x, y = linear_mnist
    assert check_attack_gradients(model, x, y, "ce", "A") == []
    [saturated] = check_attack_gradients(scaled, x, y, "ce", "A")
    assert saturated.startswith("A: ") and "softmax saturates" in saturated
    assert check_attack_gradients(scaled, x, y, "cw", "A") == []

    class Rounded(nn.Module):
        def forward(self, x):
            return model(Tensor(np.round(x.data)))

    [masked] = check_attack_gradients(Rounded(), x, y, "ce", "A")
    assert "non-differentiable" in masked
    assert len(check_ce_vs_margin("ce", 0.50, "dlr", 0.40)) == 1
    assert check_ce_vs_margin("ce", 0.42, "dlr", 0.40) == []
    assert len(check_gradient_free("apgd-t", 0.50, "square", 0.30)) == 1
    assert check_gradient_free("apgd-t", 0.31, "square", 0.30) == []


# ---- the declarations: one per attack, read by Attack, the checks and `npadv eval` ----
def test_each_declaration_gives_the_loss_an_attack_follows_and_its_margin_twin():
    assert list(ATTACKS) == ["fgsm", "fgm", "pgd", "apgd", "apgd-t", "square"]
    for name, spec in ATTACKS.items():
        assert spec.name == name and Attack(name, 0.1).loss == spec.default_loss
    assert Attack("apgd-t", 0.1).loss == "dlr" and Attack("square", 0.1).loss is None
    assert Attack("pgd", 0.1, loss="cw").loss == "cw" and ATTACKS["square"].gradient_free
    assert _margin_twin(Attack("pgd", 0.1, steps=3), 10).label == "pgd(eps=0.1, steps=3, loss=cw)"
    assert _margin_twin(Attack("apgd", 0.1), 3).label == "apgd(eps=0.1, loss=dlr)"
    assert _margin_twin(Attack("apgd", 0.1), 2) is None                 # DLR needs 3 classes
    assert _margin_twin(Attack("apgd", 0.1, loss="dlr"), 10) is None
    assert _margin_twin(Attack("fgsm", 0.1), 10) is None


def test_a_declaration_must_agree_with_its_function():
    about = {"title": "T", "paper": "none", "summary": "none"}
    with pytest.raises(ValueError, match="parameter 'norm'"):     # fgsm has no norm option
        AttackSpec(name="f", run=fgsm, norms=("linf", "l2"), losses=("ce",), **about)
    with pytest.raises(ValueError, match="'restarts'"):
        AttackSpec(name="t", run=apgd_targeted, norms=("linf", "l2"), losses=("dlr",),
                   cli_restarts=True, **about)
    with pytest.raises(ValueError, match="margin_loss"):
        AttackSpec(name="f", run=fgsm, norms=("linf",), losses=("ce",), margin_loss="cw",
                   **about)
    with pytest.raises(ValueError, match="registered twice"):
        registry(ATTACKS["pgd"], ATTACKS["pgd"])
    with pytest.raises(ValueError, match="not registered"):
        registry(ATTACKS["apgd"])                                   # its --targeted: apgd-t


def eval_args(*argv: str) -> argparse.Namespace:
    """`npadv eval` flags, parsed by its own parser."""
    parser = argparse.ArgumentParser()
    _eval_parser(parser.add_subparsers())
    return parser.parse_args(["eval", "--checkpoint", "c.npz", *argv])


def test_npadv_eval_builds_each_attack_from_its_declaration():
    args = eval_args("--attack", "fgsm", "pgd", "apgd", "apgd-t", "square", "--seed", "3",
                     "--norm", "linf")
    assert [a.label for a in _eval_attacks(args, 0.1)[0]] == [
        "fgsm(eps=0.1)", "pgd(eps=0.1, norm=linf, restarts=1, rng=3, steps=40)",
        "apgd(eps=0.1, norm=linf, restarts=1, rng=3, steps=100)",
        "apgd-t(eps=0.1, norm=linf, rng=3, steps=100)", "square(eps=0.1, rng=3)"]
    args = eval_args("--attack", "pgd", "apgd", "square", "--targeted", "--loss", "dlr",
                     "--norm", "linf", "--steps", "5", "--restarts", "2", "--queries", "50")
    assert [a.label for a in _eval_attacks(args, 0.2)[0]] == [
        "pgd(eps=0.2, norm=linf, restarts=2, rng=0, steps=5, loss=dlr)",
        "apgd-t(eps=0.2, norm=linf, rng=0, steps=5)", "square(eps=0.2, rng=0, n_queries=50)"]


@pytest.mark.parametrize("argv, message", [
    (["--attack", "apgd", "--loss", "cw"], "--loss cw goes with pgd; apgd takes --loss ce or dlr"),
    (["--attack", "fgsm", "--norm", "l2"], "--attack fgsm is an L∞ attack; use --norm linf"),
    (["--attack", "square", "--norm", "l1"], "--attack square is an L∞ attack; use --norm linf"),
    (["--attack", "apgd", "--norm", "l1"], "--attack apgd supports --norm linf or l2"),
    (["--attack", "apgd", "--targeted", "--norm", "l1"],
     "--attack apgd supports --norm linf or l2"),
    (["--attack", "pgd", "--targeted"], "--targeted applies to --attack apgd (APGD-T)"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_npadv_eval_refuses_what_an_attack_does_not_declare(argv, message):
    with pytest.raises(UsageError) as refused:
        _eval_attacks(eval_args(*argv), 0.1)
    assert str(refused.value) == message


def test_a_new_attack_is_one_declaration_and_one_registration(monkeypatch):
    def noise(model, x, y, eps, steps=1, restarts=1, lo=0.0, hi=1.0, rng=None):
        """Random signs of size ε: the weakest L∞ attack (steps and restarts unused)."""
        signs = np.random.default_rng(rng).choice([-1.0, 1.0], size=x.shape)
        return np.clip(x + eps * signs, lo, hi)

    monkeypatch.setitem(ATTACKS, "noise", AttackSpec(                 # the one registration
        name="noise", run=noise, title="Noise", paper="none", summary="random signs",
        norms=("linf",), cli_steps=7, cli_restarts=True))
    attack = Attack("noise", 0.1, rng=0)
    assert attack.loss is None                                        # gradient-free
    report = evaluate(SumModel(), np.full((4, 4), 0.5), np.zeros(4, dtype=np.int64), [attack],
                      checks=False)
    assert report.attack_accuracy == {"noise(eps=0.1, rng=0)": 1.0}
    specs, _ = _eval_attacks(eval_args("--attack", "noise", "--seed", "4"), 0.1)
    assert [a.label for a in specs] == ["noise(eps=0.1, restarts=1, rng=4, steps=7)"]
    with pytest.raises(UsageError, match="--attack noise is an L∞ attack"):
        _eval_attacks(eval_args("--attack", "noise", "--norm", "l2"), 0.1)


# ---- worker processes ------------------------------------------------------------------
class Unimportable(nn.Module):
    """A model class the workers cannot import (tests/ is not on their path)."""

    def __init__(self):
        self.inner = npadv.mlp(seed=0)

    def forward(self, x):
        return self.inner(x)


def test_workers_give_the_results_of_one_process_example_for_example():
    net = npadv.mlp(seed=3)
    x_train, y_train, x, y = load_mnist_5k()
    optimizer = optim.SGD(net.parameters(), 0.1)
    for xb, yb in iterate_batches(x_train[:1000], y_train[:1000], 100, seed=0):
        optimizer.zero_grad()
        npadv.functional.cross_entropy(net(Tensor(xb)), yb).backward()
        optimizer.step()
    x, y = x[:90], y[:90]
    one = evaluate(net, x, y, "quick", eps=0.03, batch_size=20)
    seen = []
    two = evaluate(net, x, y, "quick", eps=0.03, batch_size=20, workers=2,
                   on_batch=lambda done, seconds: seen.append(done))
    assert 0 < one.robust_accuracy < one.clean_accuracy      # some examples broken, some not
    np.testing.assert_array_equal(two.robust, one.robust)
    assert two.attack_accuracy == one.attack_accuracy and two.warnings == one.warnings
    assert len(seen) == 5 and seen[-1] == 90                 # every batch, counted once
    assert all(a < b for a, b in zip(seen, seen[1:], strict=False))


def test_a_failing_worker_is_reported_with_its_traceback():
    from npadv.workers import WorkerError

    x = np.zeros((4, 1, 28, 28), dtype=np.float32)
    with pytest.raises(WorkerError, match="No module named 'test_evaluate'"):
        evaluate(Unimportable(), x, np.zeros(4, int), "quick", eps=0.1, batch_size=2,
                 workers=2)
    with pytest.raises(ValueError, match="workers"):
        evaluate(npadv.mlp(), x, np.zeros(4, int), "quick", eps=0.1, workers=0)
