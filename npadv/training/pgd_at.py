"""PGD adversarial training.

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018: min_θ E max_{‖δ‖∞ ≤ ε} L(θ; x + δ, y), the inner max
approximated by projected gradient ascent.

    1: for minibatch (x, y):
    2:   δ₀ ~ U(−ε, ε)                                  (random start; x + δ₀ kept in [lo, hi])
    3:   for k in 1 .. K:                                (one pass each)
    4:     δ_k ← Π(δ_{k−1} + α·sign(∇_δ L(θ; x + δ_{k−1}, y)))
    5:   θ ← θ − τ·∇_θ L(θ; x + δ_K, y)                  (one pass; x + δ_K only, no clean term)

Π projects onto {‖δ‖∞ ≤ ε, lo ≤ x + δ ≤ hi}. Paper's MNIST: ε = 0.3, α = 0.01, K = 40.
Cost: K + 1 full passes per minibatch. With K = 0 and no random start this is natural
training, bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..attacks.pgd import pgd
from .common import loss_backward
from .method import (
    IMAGE_EPS,
    Method,
    StepFollowsEps,
    check_count,
    check_eps,
)


class PGDAT(StepFollowsEps, Method):
    """PGD-K adversarial training (L∞).

    Attributes:
        eps: L∞ radius; the loop may overwrite it before a step (ε ramp).
        alpha_ratio: the step as a multiple of ε, so α = alpha_ratio·ε follows a ramp.
        steps: K, the number of ascent steps.
        random_start: draw δ₀ uniformly in the ball (on in the paper).
        lo, hi: the valid input range (None = unbounded on that side).
    """

    name, title, paper = "pgd", "PGD-AT", "Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018"
    summary = "train on the point of a K-step L∞ PGD from a random start; K + 1 passes"
    claim = "PGD-AT gives robustness to the attacks of its threat model"
    claim_kind = "reference"
    flags = {"alpha": "attack step α at the target ε", "steps": "ascent steps K",
             "random_start": "start δ uniformly in the ε-ball"}
    derived = {"alpha": "2.5ε/K"}

    def __init__(self, eps: float = IMAGE_EPS, alpha: float | None = None, steps: int = 10,
                 random_start: bool = True, lo: float | None = 0.0, hi: float | None = 1.0):
        """alpha: the step at this ε (default 2.5ε/K, so K steps can cross the ball)."""
        check_eps(eps)
        steps = check_count(steps, "steps", 0)
        self.eps, self.steps, self.random_start = eps, steps, random_start
        self.set_alpha(alpha, 2.5 / max(steps, 1))
        self.lo, self.hi = lo, hi

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns L(x + δ_K)."""
        x_adv = x                                                # x + δ_K
        if self.steps > 0 or self.random_start:
            x_adv = pgd(model, x, y, self.eps, alpha=self.alpha, steps=self.steps,  # 2-4
                        norm="linf", random_start=self.random_start, lo=self.lo,
                        hi=self.hi, rng=rng)
        optimizer.zero_grad()
        loss = loss_backward(model, x_adv, y)                    # 5: ∇_θ L(θ; x + δ_K, y)
        optimizer.step()                                         # 5: θ ← θ − τ·∇_θ L
        return loss
