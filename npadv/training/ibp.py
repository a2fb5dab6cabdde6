"""IBP training: minimise a loss on the certified bound, so that the bound becomes tight.

Gowal, Dvijotham, Stanforth, Bunel, Qin, Uesato, Arandjelovic, Mann, Kohli, "On the
Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models",
arXiv:1810.12715, 2018 (Sec. 3): the worst-case logits over the ε-ball, as interval bound
propagation bounds them (npadv.certify.ibp), enter a cross-entropy beside the clean one:

    1: for minibatch (x, y):
    2:   z = f(x)                                   (the clean logits)
    3:   m̲_j ≤ z_y − z_j over the ε-ball ∩ box      (interval bounds, last layer folded in)
    4:   ẑ_j = −m̲_j                                 (the worst-case logits; ẑ_y = 0)
    5:   L = κ·CE(z, y) + (1 − κ)·CE(ẑ, y)
    6:   θ ← θ − τ·∇_θ L                            (through the bounds: the model learns to
                                                     make them tight)

The schedules: ε rises from 0 to its target over the first epochs (the loop's --eps-ramp),
and κ falls with it from 1 to κ_final (0.5 in the paper): κ = 1 − (1 − κ_final)·ε/ε_target,
so a run starts as natural training and ends with half its loss on the bound. Without a
ramp, κ = κ_final from the first step. Cost: one clean pass and one bound pass (the bound
pass costs about two forward passes, for the centres and the radii, and its backward).
"""
from __future__ import annotations

import numpy as np

from ..certify.ibp import margin_lower_bounds
from ..engine import Tensor
from ..engine import functional as F
from .method import IMAGE_EPS, Method, check_eps, check_radius


class IBP(Method):
    """IBP training with the ε ramp and the κ schedule of Gowal et al.

    Attributes:
        eps: L∞ radius; the loop ramps it up from 0 (with --eps-ramp).
        eps_target: ε at the end of the ramp, which κ's schedule is measured against.
        kappa_final: the weight κ of the clean loss once ε has reached its target.
        lo, hi: the valid input range (None = unbounded on that side).
    """

    name, title = "ibp", "IBP training"
    paper = "Gowal, Dvijotham, Stanforth, Bunel, Qin, Uesato, Arandjelovic, Mann, Kohli, 2018"
    summary = ("κ·CE(f(x)) + (1 − κ)·CE of the worst-case logits that interval bounds allow "
               "in the ε-ball; κ falls from 1 as ε ramps up; 1 pass and 1 bound pass")
    claim = "IBP training makes models whose robustness can be certified"
    flags = {"kappa": "final weight κ of the clean loss (it falls from 1 during the ε ramp)"}
    params = {"kappa": "kappa_final"}

    def __init__(self, eps: float = IMAGE_EPS, kappa_final: float = 0.5,
                 lo: float | None = 0.0, hi: float | None = 1.0):
        check_eps(eps)
        kappa_final = check_radius(kappa_final, "kappa")
        if kappa_final > 1:
            raise ValueError(f"kappa must be in [0, 1], got {kappa_final}")
        self.eps, self.eps_target, self.kappa_final = eps, eps, kappa_final
        self.lo, self.hi = lo, hi

    @property
    def kappa(self) -> float:
        """κ at the current ε: 1 at ε = 0, κ_final at the target ε and beyond."""
        progress = min(1.0, self.eps / self.eps_target) if self.eps_target > 0 else 1.0
        return 1.0 - (1.0 - self.kappa_final) * progress

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns L."""
        kappa = self.kappa
        optimizer.zero_grad()
        loss = kappa * F.cross_entropy(model(Tensor(x)), y)                    # 2, 5
        if kappa < 1:
            margin = margin_lower_bounds(model, x, y, self.eps, self.lo, self.hi,
                                         trained=True)                          # 3
            loss = loss + (1 - kappa) * F.cross_entropy(-margin, y)             # 4, 5
        loss.backward()
        optimizer.step()                                                        # 6
        return float(loss.data)
