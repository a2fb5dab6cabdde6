"""APGD-T: Auto-PGD on the targeted DLR loss, one run per target class.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, Section 4 and eq. (7). With z the logits and π the
classes sorted by decreasing logit, the targeted DLR loss towards a class t is

    DLR_t(z, y) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)

which, like DLR, does not change when the logits are shifted or rescaled: a saturated
softmax cannot hide it (the cross-entropy gradient can vanish, this one cannot). Needs
K ≥ 4 classes.

     1: π ← the classes sorted by decreasing clean logit z(x)
     2: for j = 2 .. n_targets + 1:
     3:     t ← π_j                                  (the j-th most likely class)
     4:     x_j ← APGD maximising DLR_t, from a random start in ball ∩ box, run only on
                  the examples no earlier target has misclassified
     5:     keep each example's first misclassified point (else its highest loss)

Success is misclassification (argmax ≠ y), not reaching t: the target only steers the
search towards a nearby class, so each example gets n_targets differently aimed tries.
With an int seed s, target j starts from default_rng(s + j − 2).
"""
from __future__ import annotations

import numpy as np

from ..engine import Tensor, as_tensor
from .apgd import _apgd_run
from .arguments import check_attack_inputs, check_count, threat_set
from .gradients import predict
from .projections import Ball
from .registry import AttackSpec
from .restarts import Seed, WorstCase, restart_rng


def dlr_targeted_loss(logits, y, target) -> Tensor:
    """Targeted DLR per example. logits (N, K), y (N,), target (N,) int -> (N,); K ≥ 4.

    Maximising it moves z_t above z_y; it is > 0 exactly when z_t > z_y.
    """
    z, y, target = as_tensor(logits), np.asarray(y), np.asarray(target)
    if z.ndim != 2 or z.shape[1] < 4:
        raise ValueError(f"dlr_targeted_loss needs logits (N, K) with at least 4 classes, "
                         f"got shape {z.shape}")
    if y.shape != (len(z.data),) or target.shape != y.shape:
        raise ValueError(f"y and target must have shape ({len(z.data)},), got {y.shape} and "
                         f"{target.shape}")
    rows = np.arange(len(y))
    order = np.argsort(-z.data, axis=1, kind="stable")
    spread = (z[rows, order[:, 0]] - (z[rows, order[:, 2]] + z[rows, order[:, 3]]) * 0.5
              + 1e-12)
    return (z[rows, target] - z[rows, y]) / spread


def apgd_targeted(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, norm: str = "linf",
                  steps: int = 100, n_targets: int = 9, rho: float = 0.75,
                  lo: float | None = 0.0, hi: float | None = 1.0, rng: Seed = None,
                  early_stop: bool = False, return_loss: bool = False):
    """APGD-T (untargeted success, targeted DLR loss), L∞ or L2.

    Args:
        model: callable, Tensor (N, ...) -> logits Tensor (N, K), K ≥ 4; run in its current
            mode, parameters, their .grad and the mode left unchanged.
        x: (N, ...) float32/64 clean inputs in [lo, hi]. y: (N,) int labels.
        eps: radius ≥ 0, or the threat set as a Ball (norm, lo, hi are then its own).
        norm: 'linf' or 'l2'. steps: APGD iterations per target.
        n_targets: how many of the most likely other classes to aim at (at most K − 1;
            9 in AutoAttack's standard suite).
        rho: APGD's Condition 1 threshold. lo, hi: the box (None for no bound).
        rng: None, an int seed or a Generator.
        early_stop: drop an example from a target's run at its first misclassified iterate.
            Which examples each target misclassifies, hence which ones the next target runs
            on and its random starts, is the same as without it (each example's run is
            independent); only the points returned for them differ (as in apgd).
        return_loss: also return the per-example targeted DLR loss at the returned points
            (towards the target that produced it).

    Returns:
        x_adv (N, ...) with x's dtype inside ball and box; with return_loss, (x_adv, loss (N,)).
    """
    ball = threat_set(APGD_T, eps, norm, lo, hi)        # S, in a norm APGD_T declares
    x, y = check_attack_inputs(model, x, y, ball, steps)
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    check_count(n_targets, "n_targets", 1)
    worst = WorstCase(x)
    if len(x) == 0 or ball.eps == 0:
        return (worst.x, worst.loss) if return_loss else worst.x
    classes = np.argsort(-predict(model, x), axis=1, kind="stable")             # 1
    if classes.shape[1] < 4:
        raise ValueError(f"apgd_targeted needs at least 4 classes, got {classes.shape[1]}")
    for j in range(1, min(n_targets, classes.shape[1] - 1) + 1):                 # 2
        todo = np.flatnonzero(~worst.success)
        if todo.size == 0:
            break
        target = classes[todo, j]                                                # 3
        start = ball.sample(x[todo], restart_rng(rng, j - 1))
        worst.keep(todo, *_apgd_run(model, x[todo], y[todo], start, ball, steps,
                                    dlr_targeted_loss, rho, early_stop, target=target),
                   first=j == 1)                                                 # 4-5
    return (worst.x, worst.loss) if return_loss else worst.x


# apgd_targeted's declaration (registry.py), registered in evaluate.py's ATTACKS. It follows
# the targeted DLR loss; the untargeted "dlr" stands in for it in the masking checks.
APGD_T = AttackSpec(
    name="apgd-t", run=apgd_targeted, title="APGD-T", paper="Croce & Hein, ICML 2020",
    summary="targeted DLR over the 9 most likely other classes", norms=("linf", "l2"),
    losses=("dlr",), cli_steps=100)
