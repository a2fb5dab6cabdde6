"""One-step attacks: FGSM and FGM.

FGSM: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples",
ICLR 2015. One signed-gradient step of size ε in the L∞ ball:

    1: g ← ∇ₓ L(f(x), y)
    2: x' ← clip(x + ε·sign(g), lo, hi)              (targeted: x − ε·sign(∇ₓ L(f(x), t)))

FGM: Miyato, Dai, Goodfellow, "Adversarial Training Methods for Semi-Supervised Text
Classification", ICLR 2017. One L2-normalised step, meant for embeddings (no box):

    1: g ← ∇ₑ L(f(e), y)                             (masked positions set to 0)
    2: r ← ε·g/‖g‖₂                                  (norm per example, over all its entries)
    3: e' ← e + r
"""
from __future__ import annotations

import numpy as np

from .arguments import check_attack_inputs, threat_set
from .gradients import input_gradient
from .projections import Ball, norm_per_example, project, steepest_step
from .registry import AttackSpec


def fgsm(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, targeted: bool = False,
         lo: float | None = 0.0, hi: float | None = 1.0) -> np.ndarray:
    """Fast gradient sign method (L∞).

    Args:
        model: callable, Tensor (N, ...) -> logits Tensor (N, K); run in its current mode.
        x: (N, ...) float32/64 clean inputs in [lo, hi].
        y: (N,) int labels; with targeted=True, the target classes.
        eps: L∞ radius ≥ 0, or the threat set as a Ball (an L∞ one; lo, hi are its own).
        targeted: descend the cross-entropy towards y instead of ascending it.
        lo, hi: the box (None for no bound on that side).

    Returns:
        (N, ...) adversarial inputs, same dtype as x, with ‖x' − x‖∞ ≤ ε and lo ≤ x' ≤ hi.
        eps = 0, or an empty batch (N = 0), returns a copy of x.
    """
    ball = threat_set(FGSM, eps, "linf", lo, hi)                      # S
    x, y = check_attack_inputs(model, x, y, ball)
    if len(x) == 0:                                   # no examples to attack
        return x.copy()
    _, g, _ = input_gradient(model, x, y, "ce")                       # 1
    direction = -1.0 if targeted else 1.0
    step = (direction * ball.eps) * steepest_step(g, "linf")
    return ball.project(x + step.astype(x.dtype), x)                  # 2


# fgsm's declaration (registry.py), registered in evaluate.py's ATTACKS
FGSM = AttackSpec(
    name="fgsm", run=fgsm, title="FGSM", paper="Goodfellow, Shlens, Szegedy, ICLR 2015",
    summary="one signed-gradient step of size ε", norms=("linf",), losses=("ce",))


def l2_normalize(g: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """g / ‖g‖₂ per example (over all non-batch axes); a zero row stays zero.

    g: (N, ...) float; mask: optional array broadcastable to g, zero where g is ignored
    (e.g. padding tokens), which are zeroed before the norm is taken. As in Miyato et al.'s
    reference code, g is first divided by its largest |entry| so that tiny or huge gradients
    normalise without underflow or overflow. Returns an array of g's shape and dtype.
    """
    g = np.asarray(g)
    if mask is not None:
        g = g * np.broadcast_to(np.asarray(mask, dtype=g.dtype), g.shape)
    if g.size == 0:
        return g.copy()
    axes = tuple(range(1, g.ndim))
    peak = np.abs(g).max(axis=axes, keepdims=True)
    scaled = g / np.where(peak > 0, peak, 1)
    norm = np.sqrt((scaled * scaled).sum(axis=axes, keepdims=True))
    return (scaled / np.where(norm > 0, norm, 1)).astype(g.dtype, copy=False)


def within_l2(z: np.ndarray, c: np.ndarray, eps: float) -> np.ndarray:
    """z with each example that rounding left outside the L2 ball ‖z_i − c_i‖₂ ≤ ε pulled
    back inside; the other examples are returned as they are.

    z, c: (N, ...) arrays of one shape and float dtype; the distance is measured in float64
    on the stored values, as `norm_per_example` and `Ball.contains` measure it. A row
    outside is replaced by its projection onto the ball (`project`), which scales it by
    ε/‖z_i − c_i‖₂ and rounds towards c_i: for a row outside by rounding alone, each entry
    moves by one or two units in the last place. Entries equal to c_i stay equal.
    Returns an array of z's dtype (z itself when every row is inside).
    """
    dist = norm_per_example(z.astype(np.float64) - c.astype(np.float64), "l2")
    out = np.flatnonzero(dist > eps)
    if out.size == 0:
        return z
    z = z.copy()
    z[out] = project(z[out], c[out], eps, "l2")
    return z


def fgm(model, x: np.ndarray, y: np.ndarray, eps: float | Ball, lo: float | None = None,
        hi: float | None = None, mask: np.ndarray | None = None) -> np.ndarray:
    """Fast gradient method: one L2-normalised gradient step x + ε·g/‖g‖₂.

    Args:
        model: callable, Tensor (N, ...) -> logits Tensor (N, K); run in its current mode.
        x: (N, ...) float inputs, e.g. word embeddings (N, T, d).
        y: (N,) int labels.
        eps: L2 radius ≥ 0 (per example, over all its entries), or a Ball (an L2 one; lo, hi
            are its own).
        lo, hi: optional box, clipped after the step (default: none).
        mask: optional array broadcastable to x, 0 at positions that must not move (e.g.
            (N, T, 1) with 0 at padding tokens); the gradient is zeroed there before the
            norm, so the whole ε goes to the unmasked positions.

    Returns:
        (N, ...) array of x's dtype: x + ε·g/‖g‖₂ (then clipped to the box if given), with
        ‖x' − x‖₂ ≤ ε for the stored values: an example that the rounding of ε·g/‖g‖₂ and
        of the sum left outside the ball is pulled back in (`within_l2`, one or two ulps per
        entry). An example with a zero gradient, and an empty batch, are returned unchanged.
    """
    ball = threat_set(FGM, eps, "l2", lo, hi)
    x, y = check_attack_inputs(model, x, y, ball)
    if mask is not None:
        try:
            np.broadcast_to(np.asarray(mask), x.shape)
        except ValueError:
            raise ValueError(f"mask of shape {np.shape(mask)} does not broadcast to x's shape "
                             f"{x.shape}") from None
    if len(x) == 0:                                   # no examples to attack
        return x.copy()
    _, g, _ = input_gradient(model, x, y, "ce")                       # 1
    r = ball.eps * l2_normalize(g, mask)                              # 2
    x_adv = (x + r).astype(x.dtype, copy=False)                       # 3
    x_adv = within_l2(x_adv, x, ball.eps)             # rounding never leaves the ball
    if ball.lo is not None or ball.hi is not None:
        x_adv = np.clip(x_adv, ball.lo, ball.hi)
    return x_adv


# fgm's declaration (registry.py), registered in evaluate.py's ATTACKS; not on the command
# line, which evaluates image models
FGM = AttackSpec(
    name="fgm", run=fgm, title="FGM", paper="Miyato, Dai, Goodfellow, ICLR 2017",
    summary="one L2-normalised gradient step of size ε, for embeddings", norms=("l2",),
    losses=("ce",), cli=False)
