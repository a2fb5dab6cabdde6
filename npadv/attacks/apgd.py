"""Auto-PGD (APGD): PGD with momentum and a step size that adapts per example.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, Algorithm 1 (P_S = projection onto ball ∩ box,
s = steepest_step: sign(∇f) for L∞, ∇f/‖∇f‖₂ for L2; α = 0.75; η starts at 2ε):

     1: input f, S, x⁽⁰⁾, η, N_iter, W = {w₀, …, w_n}
     2: x⁽¹⁾ ← P_S(x⁽⁰⁾ + η·s(∇f(x⁽⁰⁾)))
     3: f_max ← max{f(x⁽⁰⁾), f(x⁽¹⁾)}
     4: x_max ← the argmax of line 3
     5: for k = 1 to N_iter − 1:
     6:     z⁽ᵏ⁺¹⁾ ← P_S(x⁽ᵏ⁾ + η·s(∇f(x⁽ᵏ⁾)))
     7:     x⁽ᵏ⁺¹⁾ ← P_S(x⁽ᵏ⁾ + α(z⁽ᵏ⁺¹⁾ − x⁽ᵏ⁾) + (1 − α)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾))
     8:     if f(x⁽ᵏ⁺¹⁾) > f_max:
     9:         x_max ← x⁽ᵏ⁺¹⁾, f_max ← f(x⁽ᵏ⁺¹⁾)
    11:     if k + 1 ∈ W and (Condition 1 or Condition 2):
    13:         η ← η/2, x⁽ᵏ⁺¹⁾ ← x_max
    17: output x_max, f_max

Checkpoints w_j = ⌈p_j·N_iter⌉ with p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03,
0.06). At checkpoint w_j:
    Condition 1: #{i ∈ [w_{j−1}, w_j) : f(x⁽ⁱ⁺¹⁾) > f(x⁽ⁱ⁾)} < ρ·(w_j − w_{j−1})
    Condition 2: η was not halved at w_{j−1} and f_max has not increased since w_{j−1}.
As in the authors' code, Condition 2 cannot fire at the first checkpoint, after halving
the gradient at x_max is reused, and x⁽ᵏ⁻¹⁾ is not reset; the next increase of Condition 1
is then counted against f_max, the loss of the point actually restarted from. Lines 2 and
6-7 coincide because α = 1 at the first step. Every quantity (η, x_max, f_max, the
conditions) is per example.

Returned points: each example gets its best iterate, a misclassified one before any
correctly classified one, else the highest loss. Restarts run only on the examples not yet
misclassified; restart r with an int seed s starts from default_rng(s + r), like pgd.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from .arguments import check_attack_inputs, check_restarts, threat_set
from .gradients import attack_success, input_gradient, predict
from .losses import get_loss
from .projections import Ball, per_example, steepest_step
from .registry import AttackSpec
from .restarts import Seed, WorstCase, better, restart_rng

MOMENTUM = 0.75


def checkpoints(steps: int) -> list[int]:
    """The checkpoint iterations W = [w₀ = 0, w₁, …] ⊂ [0, steps] of APGD, without repeats."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    w = [math.ceil(pj * steps - 1e-9) for pj in p]   # - 1e-9: 0.41·100 is 41.000000000000007
    return sorted({wj for wj in w if wj <= steps})


class _Best:
    """Per-example best points so far; `grad` is kept only when asked for (x_max needs it)."""

    def __init__(self, x, loss, success, grad=None):
        self.x, self.loss, self.success = x.copy(), loss.copy(), success.copy()
        self.grad = None if grad is None else grad.copy()

    def update(self, idx, mask, x, loss, success, grad=None):
        """Take the new values (rows of the examples idx) where mask (len(idx),) holds."""
        at = idx[mask]
        self.x[at], self.loss[at], self.success[at] = x[mask], loss[mask], success[mask]
        if self.grad is not None:
            self.grad[at] = grad[mask]


def _halve(increases, h, rho, halved_last, f_max, f_max_last) -> np.ndarray:
    """(N,) bool: Condition 1 or Condition 2 holds at a checkpoint h iterations after the last."""
    condition1 = increases < rho * h
    condition2 = ~halved_last & (f_max <= f_max_last)
    return condition1 | condition2


def _momentum_step(x_cur, x_prev, g, eta, a, x, ball: Ball) -> np.ndarray:
    """Lines 6-7: z = P(x⁽ᵏ⁾ + η·s(g)); x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + a(z − x⁽ᵏ⁾) + (1 − a)(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)),
    P = Π_S for S = ball around x."""
    z = ball.project(x_cur + per_example(eta, x.ndim) * steepest_step(g, ball.norm), x)
    return ball.project(x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev), x)


def _apgd_run(model, x, y, start, ball: Ball, steps, loss, rho, early_stop, target=None):
    """One APGD run from `start` in S = ball around x. Returns (x_out, loss, success) of
    each example's best point.

    With early_stop, an example leaves the batch at its first misclassified iterate.
    target: (N,) int, or None; if given, the loss is called as loss(logits, labels, target)
    with the targets of the examples still in the batch (APGD-T's targeted DLR).
    """
    n = len(x)

    def f(i, x_i):
        """Line 8's f and its gradient at x_i, the iterates of the examples i."""
        loss_i = loss if target is None else partial(loss, target=target[i])
        return input_gradient(model, x_i, y[i], loss_i)

    loss_cur, g_cur, logits = f(np.arange(n), start)
    success = attack_success(logits, y)
    x_max = _Best(start, loss_cur, success, g_cur)           # 3-4: highest loss so far
    out = _Best(start, loss_cur, success)                    # returned: success, then loss
    x_cur, x_prev = start.copy(), start.copy()
    eta = np.full(n, 2 * ball.eps, dtype=x.dtype)
    W = set(checkpoints(steps)) - {0}
    increases = np.zeros(n, dtype=np.int64)
    halved_last, f_max_last, w_last = np.ones(n, dtype=bool), x_max.loss.copy(), 0
    for k in range(steps):                                   # iteration k makes x^(k+1)
        i = np.flatnonzero(~out.success) if early_stop else np.arange(n)
        if i.size == 0:
            break
        a = 1.0 if k == 0 else MOMENTUM
        x_next = _momentum_step(x_cur[i], x_prev[i], g_cur[i], eta[i], a, x[i], ball)  # 2, 6-7
        loss_next, g_next, logits = f(i, x_next)
        success = attack_success(logits, y[i])
        increases[i] += loss_next > loss_cur[i]
        x_max.update(i, loss_next > x_max.loss[i], x_next, loss_next, success, g_next)   # 8-9
        out.update(i, better(success, loss_next, out.success[i], out.loss[i]), x_next,
                   loss_next, success)
        x_prev[i], x_cur[i], loss_cur[i], g_cur[i] = x_cur[i], x_next, loss_next, g_next
        if k + 1 in W:                                                                   # 11
            halve = _halve(increases, k + 1 - w_last, rho, halved_last, x_max.loss, f_max_last)
            eta = np.where(halve, eta / 2, eta).astype(x.dtype)                          # 13
            x_cur[halve], g_cur[halve] = x_max.x[halve], x_max.grad[halve]
            loss_cur[halve] = x_max.loss[halve]
            halved_last, f_max_last, w_last = halve, x_max.loss.copy(), k + 1
            increases[:] = 0
    return out.x, out.loss, out.success


def apgd(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, norm: str = "linf",
         steps: int = 100, loss: str = "ce", rho: float = 0.75, restarts: int = 1,
         lo: float | None = 0.0, hi: float | None = 1.0, rng: Seed = None,
         early_stop: bool = False, return_loss: bool = False):
    """Auto-PGD (untargeted), L∞ or L2.

    Args:
        model: callable, Tensor (N, ...) -> logits Tensor (N, K); run in its current mode,
            parameters, their .grad and the mode left unchanged.
        x: (N, ...) float32/64 clean inputs in [lo, hi]. y: (N,) int labels.
        eps: radius ≥ 0, or the threat set as a Ball (norm, lo, hi are then its own).
        norm: 'linf' or 'l2'. steps: N_iter ≥ 0 (gradient evaluations after the one at the
            start).
        loss: 'ce' (cross-entropy) or 'dlr' (difference of logits ratio; needs K ≥ 3).
        rho: Condition 1 threshold in (0, 1].
        restarts: runs from fresh random starts (uniform in the ball, projected to the box).
        lo, hi: the box (None for no bound). rng: None, an int seed or a Generator.
        early_stop: drop an example from the batch at its first misclassified iterate. The
            set of misclassified examples, hence robust accuracy, is the same as without it
            (each example's run is independent); only the points returned for them differ.
        return_loss: also return the per-example loss at the returned points.

    Returns:
        x_adv (N, ...) with x's dtype inside ball and box; with return_loss, (x_adv, loss (N,)).
    """
    ball = threat_set(APGD, eps, norm, lo, hi)          # S, in a norm APGD declares
    x, y = check_attack_inputs(model, x, y, ball, steps)
    APGD.check_loss(loss)                                # a loss APGD declares
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    restarts = check_restarts(restarts)
    if ball.eps == 0:                                    # the ball is the point x itself
        return (x.copy(), get_loss(loss)(predict(model, x), y).data) if return_loss else x.copy()
    worst = WorstCase(x)
    for r in range(restarts):
        start = ball.sample(x, restart_rng(rng, r))
        todo = np.flatnonzero(~worst.success)
        if todo.size == 0:
            break
        worst.keep(todo, *_apgd_run(model, x[todo], y[todo], start[todo], ball, steps, loss,
                                    rho, early_stop), first=r == 0)
    return (worst.x, worst.loss) if return_loss else worst.x


# apgd's declaration (registry.py), registered in evaluate.py's ATTACKS
APGD = AttackSpec(
    name="apgd", run=apgd, title="APGD", paper="Croce & Hein, ICML 2020",
    summary="PGD with momentum and a step size that adapts per example",
    norms=("linf", "l2"), losses=("ce", "dlr"), margin_loss="dlr", margin_min_classes=3,
    cli_steps=100, cli_restarts=True, cli_targeted="apgd-t")
