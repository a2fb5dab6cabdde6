"""Auto-PGD: its checkpoints and step-size rule, restarts, and its strength against PGD-40
on a naturally trained small CNN."""
from __future__ import annotations

import numpy as np
import pytest

import npadv
from npadv import Tensor, nn, optim
from npadv.attacks import apgd, apgd_targeted, checkpoints, dlr_loss, pgd, random_start
from npadv.attacks.apgd import _halve
from npadv.data import iterate_batches, load_mnist_5k


def accuracy(model, x, y) -> float:
    with npadv.no_grad():
        return float((model(Tensor(x)).data.argmax(axis=1) == y).mean())


# ---- the schedule ------------------------------------------------------------------------
def test_checkpoints_follow_the_paper():
    # p = 0, .22, .41, .57, .70, .80, .87, .93, .99 (the step shrinks by .03 down to .06)
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1000)[:3] == [0, 220, 410]
    for n in (0, 1, 2, 5, 17, 250):
        w = checkpoints(n)
        assert w[0] == 0 and all(b > a for a, b in zip(w, w[1:], strict=False)) and w[-1] <= n


def test_halving_conditions():
    h, rho = 10, 0.75
    increases = np.array([7, 8, 8, 9])          # condition 1: fewer than 7.5 increases
    halved_last = np.array([False, False, True, False])
    f_max = np.array([1.0, 2.0, 2.0, 3.0])
    f_max_last = np.array([1.0, 2.0, 2.0, 2.5])  # condition 2: no halving and no progress
    np.testing.assert_array_equal(_halve(increases, h, rho, halved_last, f_max, f_max_last),
                                  [True, True, False, False])


# ---- behaviour on a small net --------------------------------------------------------------
def tiny_net(seed: int = 0) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(12, 16, flatten=True, rng=rng, dtype=np.float64), nn.ReLU(),
                         nn.Linear(16, 5, rng=rng, dtype=np.float64))


@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_apgd_never_returns_less_than_its_start(loss, norm):
    net = tiny_net(1)
    x = np.random.default_rng(2).random((40, 2, 3, 2))
    y = np.arange(40) % 5
    x_adv, best = apgd(net, x, y, 0.1, norm=norm, steps=12, loss=loss, rng=3, return_loss=True)
    start = random_start(x, 0.1, norm, np.random.default_rng(3), 0.0, 1.0)
    z = net(Tensor(start))
    at_start = (dlr_loss(z, y) if loss == "dlr"
                else npadv.functional.cross_entropy(z, y, "none")).data
    fooled = net(Tensor(x_adv)).data.argmax(1) != y
    assert np.all(best[~fooled] >= at_start[~fooled])
    assert fooled.mean() >= (z.data.argmax(1) != y).mean()


def test_apgd_restarts_only_add_successes():
    net = tiny_net(4)
    x = np.random.default_rng(5).random((60, 2, 3, 2))
    y = np.arange(60) % 5
    one = net(Tensor(apgd(net, x, y, 0.08, steps=8, rng=7))).data.argmax(1) != y
    three = net(Tensor(apgd(net, x, y, 0.08, steps=8, restarts=3, rng=7))).data.argmax(1) != y
    assert np.all(three[one])


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", ["apgd", "apgd-t"])
def test_early_stop_does_not_change_which_examples_are_fooled(attack, norm):
    # an example's run does not depend on the others (and APGD-T's next target runs on the
    # examples no earlier one fooled, from starts drawn for them): the same examples are
    # fooled with and without early_stop, and the unfooled end where they did
    net = tiny_net(6)
    x = np.random.default_rng(8).random((80, 2, 3, 2))
    y = np.arange(80) % 5
    eps = 0.1 if norm == "linf" else 0.3

    def run(**kw):
        if attack == "apgd":
            return apgd(net, x, y, eps, norm=norm, steps=15, restarts=2, rng=9, **kw)
        return apgd_targeted(net, x, y, eps, norm=norm, steps=12, n_targets=4, rng=11, **kw)

    full, loss_full = run(return_loss=True)
    early, loss_early = run(early_stop=True, return_loss=True)
    fooled = net(Tensor(full)).data.argmax(1) != y
    assert 0 < fooled.mean() < 1
    np.testing.assert_array_equal(net(Tensor(early)).data.argmax(1) != y, fooled)
    np.testing.assert_array_equal(early[~fooled], full[~fooled])
    np.testing.assert_array_equal(loss_early[~fooled], loss_full[~fooled])


# ---- against PGD-40 on a trained small CNN --------------------------------------------------
@pytest.fixture(scope="module")
def trained_cnn():
    """small_cnn trained naturally for 2 epochs on MNIST-5k; 200 test images."""
    x_train, y_train, x_test, y_test = load_mnist_5k()
    model = npadv.small_cnn(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(2):
        for xb, yb in iterate_batches(x_train, y_train, 128, seed=epoch):
            opt.zero_grad()
            npadv.functional.cross_entropy(model(Tensor(xb)), yb).backward()
            opt.step()
    model.eval()
    return model, x_test[:200], y_test[:200]


@pytest.mark.slow
def test_apgd_is_at_least_as_strong_as_pgd40(trained_cnn):
    model, x, y = trained_cnn
    clean = accuracy(model, x, y)
    assert clean > 0.85
    # early stopping keeps every success of either attack (and saves time)
    acc_pgd = accuracy(model, pgd(model, x, y, 0.1, steps=40, early_stop=True, rng=0), y)
    acc_apgd = accuracy(model, apgd(model, x, y, 0.1, steps=100, early_stop=True, rng=0), y)
    assert acc_apgd <= acc_pgd < clean
