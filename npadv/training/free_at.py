"""Free adversarial training ("free" = the attack's gradients come with the training ones).

Shafahi, Najibi, Ghiasi, Xu, Dickerson, Studer, Davis, Taylor, Goldstein, "Adversarial
Training for Free!", NeurIPS 2019, Algorithm 1:

    1: δ ← 0                                         (allocated once, batch-shaped)
    2: for epoch in 1 .. N_ep / m:
    3:   for minibatch (x, y):
    4:     repeat m times:
    5:       one pass at x + δ: g_θ = ∇_θ L(θ; x + δ, y),  g_δ = ∇_δ L(θ; x + δ, y)
    6:       θ ← θ − τ·g_θ                           (an optimiser step every replay)
    7:       δ ← clip(δ + ε·sign(g_δ), −ε, ε);  keep x + δ in [lo, hi]

Paper settings: CIFAR m = 8, ImageNet m = 4; the step is ε itself. Cost: m full passes
per minibatch, and the loop runs epochs / m epochs (epoch_divisor = m), so the total
number of passes matches natural training's.

δ is never reset: the perturbation built on one minibatch starts the next one (and the
next epoch). A smaller last batch uses the leading part of δ. Because δ meets a new x at
every minibatch, line 5 evaluates at clip(x + δ, lo, hi) (as the authors' code does) and
g_δ is the input gradient at that point; line 7 then projects δ so that x + δ is in range
for the current x, so the clip in line 5 only acts on a minibatch's first replay. (The
authors' code differentiates through the clip, which zeroes g_δ where it is active; we
keep the input gradient there, so that such coordinates can still move inwards.)
"""
from __future__ import annotations

import numpy as np

from ..engine import Tensor
from ..engine import functional as F
from .common import box_delta, clip_box
from .method import IMAGE_EPS, Method, check_count, check_eps


class FreeAT(Method):
    """Free-m adversarial training (L∞).

    Attributes:
        eps: L∞ radius and step; the loop may overwrite it before a step (ε ramp).
        replays: m, the number of replays of each minibatch (also epoch_divisor).
        lo, hi: the valid input range (None = unbounded on that side).
        delta: the persistent perturbation, (B_max, ...) like the first minibatch, or None
            before the first step (checkpointed).
    """

    name, title, paper = "free", "Free AT", "Shafahi et al., NeurIPS 2019"
    summary = ("m replays of each minibatch, each one pass that steps θ and δ; epochs ÷ m; "
               "m passes")
    claim = "Free-m reaches PGD-AT's robustness at about the cost of natural training"
    claim_kind = "time"
    claim_ratio = 1 / 8
    claim_ratio_says = "the cost of natural training: 1 pass a step against PGD-7-AT's 8"
    flags = {"replays": "replays m of each minibatch (the epochs are divided by m)"}

    def __init__(self, eps: float = IMAGE_EPS, replays: int = 8, lo: float | None = 0.0,
                 hi: float | None = 1.0):
        check_eps(eps)
        replays = check_count(replays, "replays", 1)
        self.eps, self.replays, self.lo, self.hi = eps, replays, lo, hi
        self.delta: np.ndarray | None = None

    @property
    def epoch_divisor(self) -> int:
        return self.replays

    def _delta_for(self, x: np.ndarray) -> np.ndarray:
        """1: δ ← 0 on first use; grown with zeros if a batch is ever larger than δ."""
        if self.delta is None or self.delta.shape[1:] != x.shape[1:]:
            self.delta = np.zeros_like(x)
        elif len(self.delta) < len(x):
            pad = np.zeros((len(x) - len(self.delta),) + x.shape[1:], dtype=self.delta.dtype)
            self.delta = np.concatenate([self.delta, pad])
        return self.delta

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch, replayed m times. x: (B, ...) float in [lo, hi]; y: (B,) int.

        Returns the mean of the m replay losses. rng is unused (Free AT is deterministic).
        """
        B, eps = len(x), self.eps
        delta = self._delta_for(x)
        losses = []
        for _ in range(self.replays):                                    # 4
            xt = Tensor(clip_box(x + delta[:B], self.lo, self.hi), requires_grad=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xt), y)                         # 5: one pass at x + δ
            loss.backward()                                              # 5: g_θ and g_δ
            optimizer.step()                                             # 6: θ ← θ − τ·g_θ
            g_delta = xt.grad                                            # 5: g_δ
            d = np.clip(delta[:B] + eps * np.sign(g_delta), -eps, eps)   # 7: clip to [−ε, ε]
            delta[:B] = box_delta(d, x, self.lo, self.hi)               # 7: x + δ in range
            losses.append(float(loss.data))
        return float(np.mean(losses))

    def state_dict(self) -> dict[str, np.ndarray]:
        return {} if self.delta is None else {"delta": self.delta.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.delta = np.array(state["delta"]) if "delta" in state else None
