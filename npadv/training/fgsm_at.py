"""FGSM adversarial training.

Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
Section 5: train on the mixed objective J̃ = c·L(x) + (1 − c)·L(x + ε·sign(∇ₓL(x))).

    1: for minibatch (x, y):
    2:   one pass at x: ∇_θ c·L(x) into .grad, and g_x = ∇ₓL(x)
    3:   x_adv ← clip(x + ε·sign(g_x), lo, hi)
    4:   one pass at x_adv: ∇_θ (1 − c)·L(x_adv) added into .grad
    5:   θ ← θ − τ·∇_θ [c·L(x) + (1 − c)·L(x_adv)]

Paper settings: c = 0.5, MNIST ε = 0.25. Cost: 2 full passes per minibatch. Line 2 does
double duty: the backward of c·L(x) yields both the clean term's parameter gradient and
c·∇ₓL, whose sign is that of ∇ₓL for c > 0 (for c = 0 the pass is run unscaled and its
parameter gradient dropped).
"""
from __future__ import annotations

import numpy as np

from ..attacks.projections import Ball
from ..engine import Tensor
from ..engine import functional as F
from .common import loss_backward
from .method import IMAGE_EPS, Method, check_eps


class FGSMAT(Method):
    """FGSM adversarial training with the clean/adversarial mix c.

    Attributes:
        eps: L∞ radius; the loop may overwrite it before a step (ε ramp).
        c: weight of the clean loss, in [0, 1].
        lo, hi: the valid input range (None = unbounded on that side).
    """

    name, title, paper = "fgsm", "FGSM-AT", "Goodfellow, Shlens, Szegedy, ICLR 2015"
    summary = "c·L(x) + (1 − c)·L(x + ε·sign ∇ₓL); 2 passes"
    flags = {"c": "weight c of the clean loss"}

    def __init__(self, eps: float = IMAGE_EPS, c: float = 0.5, lo: float | None = 0.0,
                 hi: float | None = 1.0):
        check_eps(eps)
        if isinstance(c, (bool, np.bool_)) or not 0 <= c <= 1:
            raise ValueError(f"the clean-loss weight c must be in [0, 1], got {c}")
        self.eps, self.c, self.lo, self.hi = eps, c, lo, hi

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns J̃ (mean CE mix)."""
        c = self.c
        optimizer.zero_grad()
        xt = Tensor(x, requires_grad=True)
        clean = F.cross_entropy(model(xt), y)
        clean.backward(np.asarray(c if c > 0 else 1.0, dtype=clean.dtype))   # 2: ∇_θ c·L(x)
        g_x = xt.grad                                                          # 2: ∝ ∇ₓL(x)
        if c == 0:
            optimizer.zero_grad()
        S = Ball(self.eps, "linf", self.lo, self.hi)                           # the ε-ball ∩ box
        x_adv = S.project(x + self.eps * np.sign(g_x), x)                      # 3: clip to box
        adv = loss_backward(model, x_adv, y, scale=1 - c)                    # 4: ∇_θ (1−c)·L
        optimizer.step()                                                       # 5
        return c * float(clean.data) + (1 - c) * adv
