"""YOPO: You Only Propagate Once.

Zhang, Zhang, Lu, Zhu, Dong, "You Only Propagate Once: Accelerating Adversarial Training
via Maximal Principle", NeurIPS 2019. With the model f = g ∘ f0 (f0 = model[0], the first
layer), Pontryagin's maximum principle says the adversary couples to the network only
through f0: with the adjoint p = ∂L/∂z₀ at z₀ = f0(x + η) held fixed, the Hamiltonian
H(η) = ⟨p, f0(x + η)⟩ has ∇_η H = ∇_η L at the point where p was taken. YOPO-m-n:

    1: for minibatch (x, y):
    2:   η ~ U(−ε, ε)                                  (fresh per minibatch; x + η in [lo, hi])
    3:   for j in 1 .. m:
    4:     one full pass at x + η: accumulate ∇_θ L for the layers after f0; p ← ∂L/∂z₀
    5:     repeat n times:                             (first-layer forward/backward only)
    6:       η ← Π(η + α·sign(∇_η ⟨p, f0(x + η)⟩))
    7:     accumulate ∇_θ₀ ⟨p, f0(x + η)⟩ for the first layer   (η after the n updates)
    8:   θ ← θ − τ·(accumulated gradients)/m           (one optimiser step)

Π projects onto {‖η‖∞ ≤ ε, lo ≤ x + η ≤ hi}. Reference MNIST configuration (YOPO-5-10):
ε = 0.3, α = 0.01, m = 5, n = 10; CIFAR-10 YOPO-5-3: ε = 8/255, α = 2/255 = ε/4.

Exact cost: m full passes + m·n first-layer passes per minibatch. The full pass of line 4
backpropagates through f0 into x + η anyway, and there p was just taken, so its input
gradient IS ∇_η H at the current η: the first of the n updates of line 6 uses it, the
other n − 1 take one first-layer pass each, and line 7 is the n-th first-layer pass (at
the η after all n updates, as in the box). The reference code computes the same η
iterates and gradients with n + 1 first-layer passes (it recomputes the first one).
While n > 0, f0's parameters are frozen during lines 4-6, so they receive only the
Hamiltonian gradient of line 7 (the reference instead saves and restores the first
layer's weight gradient around the full pass); with n = 0 the full pass itself supplies
∇_θ₀ L = ∇_θ₀ H.

Learning rate. L is the mean cross-entropy over the batch; each of the m rounds adds its
gradient, and line 8 divides the sum by m (the average over the m rounds), so the
optimiser's lr means what it means for natural training. The reference sums and scales
lr by 1/m instead: the same update for plain SGD and momentum (with weight decay wd,
averaging with wd equals summing with lr/m and weight decay m·wd).
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from ..attacks.projections import Ball
from ..engine import Tensor, grad
from ..engine import functional as F
from ..nn import frozen
from .method import (
    IMAGE_EPS,
    Method,
    StepFollowsEps,
    check_count,
    check_eps,
)


def full_pass(f0, g, x_eta: np.ndarray, y: np.ndarray, train_f0: bool = False
              ) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Line 4: one forward/backward through g ∘ f0 at x + η.

    Args:
        f0: the first layer (model[0]); g: the rest (model[1:]).
        x_eta: (B, ...) float, the point x + η. y: (B,) int.
        train_f0: let f0's parameters receive ∇_θ₀ L too (else they are frozen and only the
            input gradient flows through f0).
    Returns:
        (L, p, ∇_η L): the mean cross-entropy, the adjoint p = ∂L/∂z₀ with z₀'s shape, and
        the input gradient (x_eta's shape), or None when train_f0 and f0 is not needed for
        it. The parameters of g (and of f0 if train_f0) accumulate ∇_θ L into .grad.
    """
    xt = Tensor(x_eta, requires_grad=not train_f0)
    with nullcontext() if train_f0 else frozen(f0):
        z0 = f0(xt).retain_grad()
        loss = F.cross_entropy(g(z0), y)
        loss.backward()
    return float(loss.data), z0.grad, xt.grad


def hamiltonian_pass(f0, x_eta: np.ndarray, p: np.ndarray, train_f0: bool = False
                     ) -> np.ndarray | None:
    """One first-layer forward/backward of H = ⟨p, f0(x + η)⟩ (lines 6 and 7).

    x_eta: (B, ...) float, the point x + η; p: the adjoint, f0's output shape.
    train_f0=False: returns ∇_η H (x_eta's shape); f0's parameters are untouched.
    train_f0=True: accumulates ∇_θ₀ H into f0's parameters' .grad and returns None.
    """
    if not train_f0:
        xt = Tensor(x_eta, requires_grad=True)
        return grad(f0(xt), xt, p)      # the upstream gradient p makes this ∇_η⟨p, f0(x + η)⟩
    f0(Tensor(x_eta)).backward(p)
    return None


class YOPO(StepFollowsEps, Method):
    """YOPO-m-n adversarial training (L∞).

    Attributes:
        eps: L∞ radius; the loop may overwrite it before a step (ε ramp).
        m: full passes per minibatch. n: cheap first-layer updates of η after each.
        alpha_ratio: the η step as a multiple of ε (α = alpha_ratio·ε follows a ramp).
        lo, hi: the valid input range (None = unbounded on that side).
    The model must be a Sequential: f0 = model[0], g = model[1:].
    """

    name, title, paper = "yopo", "YOPO", "Zhang, Zhang, Lu, Zhu, Dong, NeurIPS 2019"
    summary = ("m full passes, each followed by n updates of δ through the first layer "
               "alone; m full and m·n first-layer passes")
    claim = "YOPO reaches PGD-AT's robustness in about 1/5 of its time"
    claim_kind = "time"
    claim_ratio = 1 / 5
    claim_ratio_says = "the paper's own figure"
    flags = {"alpha": "step η of δ at the target ε", "yopo_m": "full passes m",
             "yopo_n": "first-layer updates n per full pass"}
    params = {"yopo_m": "m", "yopo_n": "n"}
    derived = {"alpha": "ε/4"}

    def __init__(self, eps: float = IMAGE_EPS, m: int = 5, n: int = 3, alpha: float | None = None,
                 lo: float | None = 0.0, hi: float | None = 1.0):
        """alpha: the η step at this ε (default ε/4, the reference's YOPO-5-3 ratio)."""
        check_eps(eps)
        m = check_count(m, "m (yopo_m)", 1)
        n = check_count(n, "n (yopo_n)", 0)
        self.eps, self.m, self.n, self.lo, self.hi = eps, m, n, lo, hi
        self.set_alpha(alpha, 0.25)

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int.

        Returns the mean of the m full-pass losses.
        """
        f0, g = model[0], model[1:]
        alpha, m, n = self.alpha, self.m, self.n
        S = Ball(self.eps, "linf", self.lo, self.hi)                       # the ε-ball ∩ box
        optimizer.zero_grad()
        x_eta = S.sample(x, rng)                                           # 2: x + η
        losses = []
        for _ in range(m):                                                 # 3
            loss, p, g_eta = full_pass(f0, g, x_eta, y, train_f0=n == 0)   # 4: ∇_θ L, p
            losses.append(loss)
            for k in range(n):                                             # 5
                if k > 0:
                    g_eta = hamiltonian_pass(f0, x_eta, p)                 # 6: ∇_η H
                x_eta = S.project(x_eta + alpha * np.sign(g_eta), x)      # 6: Π(η + α·sign)
            if n > 0 and f0.parameters():
                hamiltonian_pass(f0, x_eta, p, train_f0=True)              # 7: ∇_θ₀ H
        for param in model.parameters():                                   # 8: average over m
            if param.grad is not None:
                param.grad = param.grad / m
        optimizer.step()                                                   # 8
        return float(np.mean(losses))
