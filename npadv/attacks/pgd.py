"""Projected gradient descent (PGD).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018. The inner maximisation max_{δ∈S} L(f(x+δ), y), with
S = {δ : ‖δ‖ ≤ ε, lo ≤ x+δ ≤ hi}, by K steps of projected steepest ascent:

    1: δ₀ ~ U(ball) projected into the box            (or δ₀ = 0 without random start)
    2: for k = 0 .. K−1:
    3:     g ← ∇ₓ L(f(x+δ_k), y)                      (per-example loss: ce, cw or dlr)
    4:     δ_{k+1} ← Π_S(δ_k + α·s(g))               (s = steepest_step: sign for L∞,
                                                      g/‖g‖₂ for L2, sparse top-q for L1)
    5: repeat from 1 for every restart; keep each example's worst case

`pgd_steps` is lines 2-4 as they stand, in S given as a Ball (projections.py). `pgd` adds,
around it, the restarts of line 5 (restarts.py: each example keeps its worst case),
targeted mode (descend the loss towards the target labels, step −α·s(g)) and early
stopping, which freezes an example at the first iterate where the attack succeeds and
skips it in later restarts.
"""
from __future__ import annotations

import numpy as np

from .arguments import check_attack_inputs, check_restarts, threat_set
from .gradients import attack_success, input_gradient, predict
from .losses import get_loss
from .projections import Ball, steepest_step
from .registry import AttackSpec
from .restarts import Seed, WorstCase, restart_rng


def ascent_step(model, x, y, x_adv, ball: Ball, alpha, loss="ce", q=None):
    """Lines 3-4 once (α < 0 descends). Returns (the next iterate, the logits at x_adv)."""
    _, g, logits = input_gradient(model, x_adv, y, loss)                        # 3
    step = (alpha * steepest_step(g, ball.norm, q)).astype(x.dtype)
    return ball.project(x_adv + step, x), logits                                # 4


def pgd_steps(model, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray, ball: Ball,
              alpha: float, steps: int, **step_args) -> np.ndarray:
    """Lines 2-4: K steps of projected steepest ascent from x_adv in S = ball around x.
    Returns the last iterate.

    step_args: loss, q, as for `ascent_step`.
    """
    for _ in range(steps):                                                      # 2
        x_adv, _ = ascent_step(model, x, y, x_adv, ball, alpha, **step_args)    # 3-4
    return x_adv


def pgd_steps_early_stop(model, x, y, x_adv, ball, alpha, steps, targeted=False, **step_args):
    """`pgd_steps`, but an example leaves the batch at its first successful iterate."""
    x_adv, done = x_adv.copy(), np.zeros(len(x), dtype=bool)
    for _ in range(steps):
        live = np.flatnonzero(~done)
        if live.size == 0:
            break
        x_next, logits = ascent_step(model, x[live], y[live], x_adv[live], ball, alpha,
                                     **step_args)
        hit = attack_success(logits, y[live], targeted)
        done[live[hit]] = True
        x_adv[live[~hit]] = x_next[~hit]
    return x_adv


def pgd(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, alpha: float | None = None,
        steps: int = 10, norm: str = "linf", random_start: bool = True, restarts: int = 1,
        targeted: bool = False, loss: str = "ce", early_stop: bool = False,
        lo: float | None = 0.0, hi: float | None = 1.0, rng: Seed = None,
        l1_quantile: float | None = None, return_loss: bool = False):
    """Projected gradient ascent on the per-example loss, in the ε-ball ∩ box.

    Args:
        model: callable, Tensor (N, ...) -> logits Tensor (N, K). Run in whatever mode it is
            in; its parameters, their .grad and its mode are left unchanged.
        x: (N, ...) float32/64 clean inputs in [lo, hi]. y: (N,) int labels (targets if
            targeted).
        eps: radius ≥ 0, or the threat set as a Ball (norm, lo, hi are then its own).
        alpha: step size (default 2.5·ε/steps). steps: K ≥ 0.
        norm: 'linf', 'l2' or 'l1' (the L1 step is the sparse top-q step, q = l1_quantile).
        random_start: start uniformly in the ball (projected into the box), else at x.
        restarts: number of runs; each example keeps its worst case (see restarts.py).
        targeted: descend the loss towards the classes y.
        loss: 'ce' (cross-entropy), 'cw' (margin max_{j≠y} z_j − z_y) or 'dlr'.
        early_stop: freeze examples once the attack succeeds.
        lo, hi: the box; None for no bound (e.g. embeddings).
        rng: None, an int seed (restart r uses seed + r) or a np.random.Generator.
        return_loss: also return the per-example loss at the returned points.

    Returns:
        x_adv (N, ...) with x's dtype, ‖x_adv − x‖ ≤ ε and lo ≤ x_adv ≤ hi; with
        return_loss=True, (x_adv, loss (N,)).
    """
    ball = threat_set(PGD, eps, norm, lo, hi)                                  # S
    x, y = check_attack_inputs(model, x, y, ball, steps)
    restarts = check_restarts(restarts)
    loss_fn = get_loss(loss)
    if alpha is None:
        alpha = 2.5 * ball.eps / steps if steps else 0.0
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if ball.eps == 0:                                # the ball is the point x itself
        return (x.copy(), loss_fn(predict(model, x), y).data) if return_loss else x.copy()
    sign = -1.0 if targeted else 1.0
    worst = WorstCase(x, sign)
    for r in range(restarts):                                                   # 5
        start = ball.sample(x, restart_rng(rng, r)) if random_start else x.copy()  # 1
        todo = np.flatnonzero(~worst.success) if early_stop else np.arange(len(x))
        if todo.size == 0:
            break
        step_args = {"loss": loss, "q": l1_quantile}
        if early_stop:
            x_r = pgd_steps_early_stop(model, x[todo], y[todo], start[todo], ball,
                                       sign * alpha, steps, targeted, **step_args)
        else:
            x_r = pgd_steps(model, x, y, start, ball, sign * alpha, steps, **step_args)  # 2-4
        if restarts == 1 and not return_loss:   # one run: its result is the worst case
            return x_r
        logits = predict(model, x_r)
        worst.keep(todo, x_r, loss_fn(logits, y[todo]).data,
                   attack_success(logits, y[todo], targeted), first=r == 0)
    return (worst.x, worst.loss) if return_loss else worst.x


# pgd's declaration (registry.py), registered in evaluate.py's ATTACKS
PGD = AttackSpec(
    name="pgd", run=pgd, title="PGD", paper="Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018",
    summary="K steps of projected steepest ascent, with restarts", norms=("linf", "l2", "l1"),
    losses=("ce", "cw", "dlr"), margin_loss="cw", margin_min_classes=2,
    cli_steps=40, cli_restarts=True)
