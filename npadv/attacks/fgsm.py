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
from .projections import Ball, steepest_step
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
        eps = 0 returns a copy of x.
    """
    ball = threat_set(FGSM, eps, "linf", lo, hi)                      # S
    x, y = check_attack_inputs(model, x, y, ball)
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
        (N, ...) array of x's dtype: x + ε·g/‖g‖₂ (then clipped to the box if given). An
        example with a zero gradient is returned unchanged.
    """
    ball = threat_set(FGM, eps, "l2", lo, hi)
    x, y = check_attack_inputs(model, x, y, ball)
    if mask is not None:
        try:
            np.broadcast_to(np.asarray(mask), x.shape)
        except ValueError:
            raise ValueError(f"mask of shape {np.shape(mask)} does not broadcast to x's shape "
                             f"{x.shape}") from None
    _, g, _ = input_gradient(model, x, y, "ce")                       # 1
    r = ball.eps * l2_normalize(g, mask)                              # 2
    x_adv = (x + r).astype(x.dtype, copy=False)                       # 3
    if ball.lo is not None or ball.hi is not None:
        x_adv = np.clip(x_adv, ball.lo, ball.hi)
    return x_adv


# fgm's declaration (registry.py), registered in evaluate.py's ATTACKS; not on the command
# line, which evaluates image models
FGM = AttackSpec(
    name="fgm", run=fgm, title="FGM", paper="Miyato, Dai, Goodfellow, ICLR 2017",
    summary="one L2-normalised gradient step of size ε, for embeddings", norms=("l2",),
    losses=("ce",), cli=False)
