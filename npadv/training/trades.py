"""TRADES: a clean loss plus a robustness regulariser, the KL between clean and perturbed.

Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, "Theoretically Principled Trade-off between
Robustness and Accuracy", ICML 2019, Algorithm 1 (L∞):

    min_θ  E [ CE(f(x), y) + β · max_{x'∈S} KL(f(x) ‖ f(x')) ]

    1: for minibatch (x, y):
    2:   x' ← x + 0.001·N(0, I)                          (then kept in the box)
    3:   for k in 1 .. K:                                 (one pass each, f(x) held fixed)
    4:     x' ← Π(x' + α·sign(∇_{x'} KL(f(x) ‖ f(x'))))
    5:   θ ← θ − τ·∇_θ [CE(f(x), y) + β·KL(f(x) ‖ f(x'))]    (two forwards, one backward)

f(·) is the softmax of the logits and KL(p ‖ q) = Σ_c p_c (log p_c − log q_c), averaged
over the batch. Π projects onto {‖x' − x‖∞ ≤ ε, lo ≤ x' ≤ hi}. In line 5 both f(x) and
f(x') depend on θ, and the gradient flows through both. The attack of line 4 needs no
label: it pushes the prediction away from the clean one, wherever that is.

Paper settings: β = 1/λ = 6 (their Table 5); CIFAR-10 ε = 0.031, α = 0.007, K = 10;
MNIST ε = 0.3, α = 0.01, K = 40. Here α = ε/4 and K = 10 by default, as for PGD-AT.
Cost: K full passes for the attack, plus one backward through two forwards. With β = 0
this is natural training.
"""
from __future__ import annotations

import numpy as np

from ..attacks.gradients import input_gradient, predict
from ..attacks.projections import Ball
from ..engine import Tensor, as_tensor, ops
from ..engine import functional as F
from .method import (
    IMAGE_EPS,
    Method,
    StepFollowsEps,
    check_count,
    check_eps,
    check_radius,
)


def kl_divergence(p_logits, q_logits) -> Tensor:
    """KL(softmax(p) ‖ softmax(q)) per example. (N, K), (N, K) -> (N,)."""
    log_p, log_q = F.log_softmax(as_tensor(p_logits)), F.log_softmax(as_tensor(q_logits))
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=1)


def trades_loss(model, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, beta: float) -> Tensor:
    """Line 5's objective: mean CE(f(x), y) + β · mean KL(f(x) ‖ f(x_adv)), a scalar Tensor."""
    clean = model(x if isinstance(x, Tensor) else Tensor(x))
    adv = model(x_adv if isinstance(x_adv, Tensor) else Tensor(x_adv))
    return F.cross_entropy(clean, y) + beta * ops.mean(kl_divergence(clean, adv))


def kl_attack(model, x: np.ndarray, eps: float, alpha: float, steps: int,
              rng: np.random.Generator, lo: float | None = 0.0, hi: float | None = 1.0
              ) -> np.ndarray:
    """Lines 2-4: x' maximising KL(f(x) ‖ f(x')) in the ε-ball ∩ box. x: (B, ...) -> (B, ...)."""
    clean_logits = predict(model, x)                    # f(x), held fixed during the attack

    def kl_to_clean(logits, target_logits):
        return kl_divergence(Tensor(target_logits), logits)

    S = Ball(eps, "linf", lo, hi)                                        # the ε-ball ∩ box
    noise = (0.001 * rng.standard_normal(x.shape)).astype(x.dtype)
    x_adv = S.project(x + noise, x)                                                 # 2
    for _ in range(steps):                                                          # 3
        _, g, _ = input_gradient(model, x_adv, clean_logits, kl_to_clean)
        x_adv = S.project(x_adv + (alpha * np.sign(g)).astype(x.dtype), x)          # 4
    return x_adv


class TRADES(StepFollowsEps, Method):
    """TRADES adversarial training (L∞).

    Attributes:
        eps: L∞ radius; the loop may overwrite it before a step (ε ramp).
        alpha_ratio: the attack step as a multiple of ε, so α = alpha_ratio·ε follows a ramp.
        steps: K, the attack's steps.
        beta: β = 1/λ, the weight of the KL regulariser.
        lo, hi: the valid input range (None = unbounded on that side).
    """

    name, title, paper = "trades", "TRADES", "Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, ICML 2019"
    summary = ("CE(f(x)) + β·KL(f(x) ‖ f(x')), x' a K-step attack on the KL term; "
               "K + 1 passes")
    claim = ("TRADES trades a little clean accuracy for robustness at least as good as "
             "PGD-AT's")
    claim_kind = "robustness"
    flags = {"alpha": "attack step α at the target ε", "steps": "ascent steps K",
             "beta": "weight β of the KL term"}
    derived = {"alpha": "ε/4"}

    def __init__(self, eps: float = IMAGE_EPS, alpha: float | None = None, steps: int = 10,
                 beta: float = 6.0, lo: float | None = 0.0, hi: float | None = 1.0):
        """alpha: the attack step at this ε (default ε/4)."""
        check_eps(eps)
        steps = check_count(steps, "steps", 0)
        check_radius(beta, "beta")
        self.eps, self.steps, self.beta, self.lo, self.hi = eps, steps, beta, lo, hi
        self.set_alpha(alpha, 0.25)

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns line 5's loss."""
        x_adv = kl_attack(model, x, self.eps, self.alpha, self.steps, rng,        # 2-4
                          self.lo, self.hi)
        optimizer.zero_grad()
        loss = trades_loss(model, x, x_adv, y, self.beta)                         # 5
        loss.backward()
        optimizer.step()                                                           # 5
        return float(loss.data)
