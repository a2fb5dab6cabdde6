"""Square Attack: a gradient-free attack by random search over square-shaped updates (L∞).

Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, Algorithm 1 with the L∞ sampling of
Algorithm 2. It only queries the model's logits, so no gradient masking can fool it. The
loss is the margin L = max_{j≠y} z_j − z_y, maximised (the paper minimises its negative);
L > 0 exactly when the example is misclassified. S = ε-ball ∩ box, Π_S its projection,
images x: (C, H, W), N the query budget:

     1: x̂ ← Π_S(x + δ₀), δ₀ vertical stripes of width 1: δ₀[c, :, w] ~ U{−ε, ε}
     2: L* ← L(f(x̂), y), i ← 1
     3: while i < N and L* ≤ 0 (x̂ is not adversarial):
     4:     h ← max(round(√(p_i·H·W)), 1), at most min(H, W)     (side of the square)
     5:     r ~ U{0, …, H − h}, s ~ U{0, …, W − h}                   (its corner)
     6:     δ ← 0; δ[c, r:r+h, s:s+h] ← ρ_c with ρ_c ~ U{−2ε, 2ε} for each channel c
     7:     x_new ← Π_S(x̂ + δ)                  (the square's pixels go to x ± ε, clipped)
     8:     L_new ← L(f(x_new), y)
     9:     if L_new > L*: x̂ ← x_new, L* ← L_new
    10:     i ← i + 1

Schedule of p (the share of pixels a square covers): p_i = p_init, halved after each of
the iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a 10,000-query budget,
the milestones scaled by N/10,000 for other budgets. Since x̂ stays in the ball, line 7
sets each pixel of the square to its corner of ball ∩ box, clip(x ± ε), and leaves the
rest of x̂ as it is. As in the authors' code, signs that would change no pixel of x̂ (the
square already at those corners) are redrawn.

Every example has its own square, signs and loss; the loop is vectorised over the
examples still unbroken, and only those are queried (a broken example keeps its first
adversarial point). Queries per example: 1 at line 2, then 1 per iteration, at most N.
A query of line 8 differs from x̂ in one square only: for a CNN that allows it, the model's
first conv blocks are recomputed near the square alone, from x̂'s cached activations
(local_forward.py; the same logits as the full forward).
"""
from __future__ import annotations

import numpy as np

from .arguments import check_attack_inputs, check_count, threat_set
from .gradients import predict
from .local_forward import LocalForward
from .losses import cw_loss
from .projections import Ball
from .registry import AttackSpec
from .restarts import Seed, restart_rng

MILESTONES = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)    # of a 10,000-query budget
REDRAWS = 10                                                # tries for signs that change x̂


def p_schedule(i: int, n_queries: int, p_init: float) -> float:
    """p_i: p_init halved once for each milestone, scaled to n_queries, that i is past."""
    i_scaled = int(i / n_queries * 10_000)
    return p_init / 2 ** sum(i_scaled > m for m in MILESTONES)


def margin(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """max_{j≠y} z_j − z_y per example (the CW loss, as an array). (N, K), (N,) -> (N,)."""
    return cw_loss(logits, y).data


def _corners(rng, n: int, h_img: int, w_img: int, side: int) -> tuple:
    """Line 5: the top-left corner (r, s) (n,) each of one side×side square per example."""
    r = rng.integers(0, h_img - side + 1, size=n)
    s = rng.integers(0, w_img - side + 1, size=n)
    return r, s


def _squares(r: np.ndarray, s: np.ndarray, side: int) -> tuple:
    """The squares at corners (r, s) as an index: for a (n, C, H, W), a[index] is
    (n, side, side, C), each example's square."""
    steps = np.arange(side)
    return (np.arange(len(r))[:, None, None], slice(None), (r[:, None] + steps)[:, :, None],
            (s[:, None] + steps)[:, None, :])


def square(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, n_queries: int = 5000,
           p_init: float = 0.8, lo: float | None = 0.0, hi: float | None = 1.0,
           rng: Seed = None, return_loss: bool = False):
    """Square Attack (untargeted, L∞) with at most n_queries model queries per example.

    Args:
        model: callable, Tensor (N, C, H, W) -> logits Tensor (N, K); only its outputs are
            used (no gradients), in whatever mode it is in.
        x: (N, C, H, W) float32/64 clean images in [lo, hi]. y: (N,) int labels.
        eps: L∞ radius ≥ 0, or the threat set as a Ball (an L∞ one; lo, hi are its own).
        n_queries: budget N ≥ 1 per example (5000 in AutoAttack).
        p_init: initial share of pixels a square covers, in (0, 1] (0.8 in AutoAttack).
        lo, hi: the box (None for no bound). rng: None, an int seed or a Generator.
        return_loss: also return the margin max_{j≠y} z_j − z_y at the returned points.

    Returns:
        x_adv (N, C, H, W) with x's dtype inside ball and box: each example's first
        misclassified point, else its highest-margin point; with return_loss,
        (x_adv, margin (N,)).
    """
    ball = threat_set(SQUARE, eps, "linf", lo, hi)                              # S
    x, y = check_attack_inputs(model, x, y, ball)
    if x.ndim != 4:
        raise ValueError(f"square expects images (N, C, H, W), got shape {x.shape}")
    check_count(n_queries, "n_queries", 1)
    if not 0 < p_init <= 1:
        raise ValueError(f"p_init must be in (0, 1], got {p_init}")
    rng = restart_rng(rng, 0)
    n, channels, h_img, w_img = x.shape
    if ball.eps == 0 or n == 0:
        return (x.copy(), margin(predict(model, x), y)) if return_loss else x.copy()

    # Π_S(x̂ + δ) with |δ| ≥ 2ε puts a pixel at its corner of ball ∩ box, clip(x ± ε):
    # computed once, exactly, so that every proposal is a choice per pixel of x̂ or a corner.
    upper = ball.project(x + ball.eps, x)
    lower = ball.project(x - ball.eps, x)
    stripes = rng.random((n, channels, 1, w_img)) < 0.5
    x_best = np.where(stripes, upper, lower)                                     # 1
    loss_best = margin(predict(model, x_best), y)                                # 2
    # The examples still unbroken (loss ≤ 0) and their rows, kept apart from the finished ones.
    todo = np.flatnonzero(loss_best <= 0)
    x_cur, loss_cur, y_cur = x_best[todo], loss_best[todo], y[todo]
    up, down = upper[todo], lower[todo]
    # Line 8's queries, each x̂ with one square changed, recomputed only near the square
    # when the model allows it (local_forward.py: the same logits, bit for bit).
    local = LocalForward.build(model, x_cur) if todo.size else None
    for i in range(1, int(n_queries)):                                           # 3, 10
        if todo.size == 0:
            break
        side = max(int(round(np.sqrt(p_schedule(i, n_queries, p_init) * h_img * w_img))), 1)
        side = min(side, h_img, w_img)                                           # 4
        r, s = _corners(rng, todo.size, h_img, w_img, side)                      # 5
        square_at = _squares(r, s, side)
        inside, up_in, down_in = x_cur[square_at], up[square_at], down[square_at]
        rho_up = rng.random((todo.size, 1, 1, channels)) < 0.5                   # 6: ρ_c = +2ε?
        for _ in range(REDRAWS):
            new_in = np.where(rho_up, up_in, down_in)                            # 7
            same = (new_in == inside).reshape(todo.size, -1).all(axis=1)
            if not same.any():
                break
            rho_up[same] = rng.random((int(same.sum()), 1, 1, channels)) < 0.5
        x_new = x_cur.copy()
        x_new[square_at] = new_in
        logits = predict(model, x_new) if local is None else local.query(x_new, r, s, side)
        loss_new = margin(logits, y_cur)                                         # 8
        improved = loss_new > loss_cur                                           # 9
        x_cur[improved], loss_cur[improved] = x_new[improved], loss_new[improved]
        if local is not None:
            local.accept(improved)
        broken = loss_cur > 0
        if broken.any():                                     # 3: these leave the loop
            x_best[todo], loss_best[todo] = x_cur, loss_cur
            keep = ~broken
            todo, x_cur, loss_cur, y_cur = todo[keep], x_cur[keep], loss_cur[keep], y_cur[keep]
            up, down = up[keep], down[keep]
            if local is not None:
                local.keep(keep)
    x_best[todo], loss_best[todo] = x_cur, loss_cur
    return (x_best, loss_best) if return_loss else x_best


# square's declaration (registry.py), registered in evaluate.py's ATTACKS
SQUARE = AttackSpec(
    name="square", run=square, title="Square",
    paper="Andriushchenko, Croce, Flammarion, Hein, ECCV 2020",
    summary="gradient-free random search over square-shaped updates", norms=("linf",),
    losses=(), cli_queries=True)
