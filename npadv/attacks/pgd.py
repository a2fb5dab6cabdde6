"""Projected gradient descent (PGD).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018. The inner maximisation max_{δ∈S} L(f(x+δ), y), with
S = {δ : ‖δ‖ ≤ ε, lo ≤ x+δ ≤ hi}, by K steps of projected steepest ascent:

    1: δ₀ ~ U(ball) projected into the box            (or δ₀ = 0 without random start)
    2: for k = 0 .. K−1:
    3:     g ← ∇ₓ L(f(x+δ_k), y)                      (per-example loss: ce or cw)
    4:     δ_{k+1} ← Π_S(δ_k + α·s(g))               (s = steepest_step: sign for L∞,
                                                      g/‖g‖₂ for L2, sparse top-q for L1)
    5: repeat from 1 for every restart; keep each example's worst case

Targeted mode descends the loss towards the target labels (step −α·s(g)). Early stopping
freezes an example at the first iterate where the attack succeeds (misclassified, or
classified as the target), and skips it in later restarts.

Restart selection: for each example a successful restart beats an unsuccessful one, and
between two equally successful restarts the higher loss wins (lower, when targeted). With
the cw loss, success and positive loss coincide, so this is simply the highest loss.

Seeding: with an integer seed s, restart r draws its start from default_rng(s + r), so it
is exactly the single-restart run with seed s + r (without early stopping).
"""
from __future__ import annotations

import numpy as np

from .losses import attack_success, check_attack_inputs, get_loss, input_gradient, predict
from .projections import project, steepest_step
from .projections import random_start as sample_start

Seed = int | np.random.Generator | None


def restart_rng(rng: Seed, r: int) -> np.random.Generator:
    """The generator for restart r: default_rng(seed + r) for an int seed, the generator
    itself (drawn from in sequence) for a Generator, a fresh unseeded one for None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng) + r)
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def better(success_new: np.ndarray, objective_new: np.ndarray, success_old: np.ndarray,
           objective_old: np.ndarray) -> np.ndarray:
    """(N,) bool: the new result beats the old one — success first, then higher objective."""
    return (success_new & ~success_old) | ((success_new == success_old)
                                           & (objective_new > objective_old))


def check_restarts(restarts: int) -> int:
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts}")
    return int(restarts)


def _pgd_run(model, x, y, start, eps, alpha, steps, norm, targeted, loss, early_stop, lo, hi,
             q) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One PGD run from `start`. Returns (x_adv, loss (N,), success (N,) bool) at x_adv."""
    x_adv = start.copy()
    direction = -1.0 if targeted else 1.0
    frozen = np.zeros(len(x), dtype=bool)
    for _ in range(steps):                                                      # 2
        idx = np.flatnonzero(~frozen)
        if idx.size == 0:
            break
        _, g, logits = input_gradient(model, x_adv[idx], y[idx], loss)          # 3
        if early_stop:
            hit = attack_success(logits, y[idx], targeted)
            frozen[idx[hit]] = True
            idx, g = idx[~hit], g[~hit]
        step = ((direction * alpha) * steepest_step(g, norm, q)).astype(x.dtype)
        x_adv[idx] = project(x_adv[idx] + step, x[idx], eps, norm, lo, hi)       # 4
    logits = predict(model, x_adv)
    final_loss = get_loss(loss)(logits, y).data
    return x_adv, final_loss, attack_success(logits, y, targeted)


def pgd(model, x: np.ndarray, y: np.ndarray, eps: float, alpha: float | None = None,
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
        eps: radius ≥ 0. alpha: step size (default 2.5·ε/steps). steps: K ≥ 0.
        norm: 'linf', 'l2' or 'l1' (the L1 step is the sparse top-q step, q = l1_quantile).
        random_start: start uniformly in the ball (projected into the box), else at x.
        restarts: number of runs; each example keeps its worst case (see module docstring).
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
    x, y, eps, norm = check_attack_inputs(model, x, y, eps, norm, steps, lo, hi)
    restarts = check_restarts(restarts)
    get_loss(loss)
    if alpha is None:
        alpha = 2.5 * eps / steps if steps else 0.0
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if eps == 0:                                     # the ball is the point x itself
        return (x.copy(), get_loss(loss)(predict(model, x), y).data) if return_loss else x.copy()
    sign = -1.0 if targeted else 1.0
    best_x, best_loss = x.copy(), np.full(len(x), np.nan, dtype=x.dtype)
    best_success = np.zeros(len(x), dtype=bool)
    for r in range(restarts):                                                   # 5
        start = (sample_start(x, eps, norm, restart_rng(rng, r), lo, hi)        # 1
                 if random_start else x.copy())
        todo = np.flatnonzero(~best_success) if early_stop else np.arange(len(x))
        if todo.size == 0:
            break
        x_r, loss_r, success_r = _pgd_run(model, x[todo], y[todo], start[todo], eps, alpha,
                                          steps, norm, targeted, loss, early_stop, lo, hi,
                                          l1_quantile)
        win = better(success_r, sign * loss_r, best_success[todo], sign * best_loss[todo])
        win |= np.full(len(todo), r == 0)
        best_x[todo[win]], best_loss[todo[win]] = x_r[win], loss_r[win]
        best_success[todo[win]] = success_r[win]
    return (best_x, best_loss) if return_loss else best_x
