"""Fast adversarial training: FGSM with a random start, and an early-stopping guard.

Wong, Rice, Kolter, "Fast is better than free: Revisiting adversarial training",
ICLR 2020, Algorithm 3 (FGSM adversarial training with random initialisation):

    1: for minibatch (x, y):
    2:   δ ~ U(−ε, ε)ⁿ                                   (x + δ kept in [lo, hi])
    3:   one pass at x + δ: g_δ = ∇_δ L(θ; x + δ, y)
    4:   δ ← clip(δ + α·sign(g_δ), −ε, ε); keep x + δ in [lo, hi]
    5:   one pass at x + δ: θ ← θ − τ·∇_θ L(θ; x + δ, y)

Paper's MNIST: ε = 0.3, α = 0.375 = 1.25ε. Cost: 2 full passes per minibatch.

The known failure is "catastrophic overfitting": within an epoch, PGD accuracy collapses
to ~0 while FGSM accuracy soars. The paper's remedy is early stopping on a PGD check of
a small piece of training data (their code: the first training batch, stop when PGD
accuracy drops by more than 0.2). The guard here, run after every epoch:

    6:   a ← accuracy under PGD-10 (α = ε/4, fixed seed) on the first n training examples
    7:   if a > a_best: a_best ← a; θ_best ← θ
    8:   if a < a_best − margin: θ ← θ_best; stop training

ε in line 6 is the target ε given at construction (not the ramped one), so every epoch is
measured against the same threat.
"""
from __future__ import annotations

import numpy as np

from ..attacks.gradients import correct, input_gradient
from ..attacks.pgd import pgd
from ..attacks.projections import Ball
from ..nn import evaluating
from .common import loss_backward
from .method import (
    IMAGE_EPS,
    Method,
    StepFollowsEps,
    check_count,
    check_eps,
    check_radius,
)


class FastAT(StepFollowsEps, Method):
    """FGSM-RS adversarial training with the catastrophic-overfitting guard.

    Attributes:
        eps: L∞ radius; the loop may overwrite it before a step (ε ramp).
        alpha_ratio: the FGSM step as a multiple of ε (1.25 in the paper).
        lo, hi: the valid input range (None = unbounded on that side).
        guard: run the PGD check in end_of_epoch.
        guard_eps: ε of the check (the ε given at construction unless set).
        guard_margin: stop when PGD accuracy falls more than this below the best (absolute).
        guard_n: size of the fixed check subset (the first guard_n training examples).
        guard_seed: seed of the check's PGD random starts.
        best_acc, best_epoch, best_weights: the guard's memory (checkpointed).
    """

    name, title, paper = "fast", "Fast AT (FGSM-RS)", "Wong, Rice, Kolter, ICLR 2020"
    summary = ("FGSM from a uniform random start, with the catastrophic-overfitting guard; "
               "2 passes")
    claim = "FGSM with a random start reaches PGD-AT's robustness at a fraction of its cost"
    claim_kind = "time"
    claim_ratio = 1 / 4
    claim_ratio_says = "2 passes a step against PGD-7-AT's 8"
    flags = {"alpha": "FGSM step α at the target ε",
             "guard": "after each epoch, stop on a PGD-10 accuracy drop and restore the best",
             "guard_margin": "the drop (absolute) below the best that stops training"}
    derived = {"alpha": "1.25ε"}

    def __init__(self, eps: float = IMAGE_EPS, alpha: float | None = None, lo: float | None = 0.0,
                 hi: float | None = 1.0, guard: bool = True, guard_margin: float = 0.2,
                 guard_n: int = 256, guard_steps: int = 10, guard_seed: int = 0,
                 guard_eps: float | None = None):
        """alpha: the FGSM step at this ε (default 1.25ε).

        Raises ValueError for a radius or step that is not a finite number >= 0 (see
        `check_radius`), a guard count or seed that is not an integer in range, or an α/ε
        that overflows.
        """
        check_eps(eps)
        check_radius(guard_margin, "guard_margin")
        check_count(guard_n, "guard_n", 1)
        check_count(guard_steps, "guard_steps", 0)
        check_count(guard_seed, "guard_seed", 0)
        if guard_eps is not None:
            check_radius(guard_eps, "guard_eps")
        self.eps, self.lo, self.hi = eps, lo, hi
        self.set_alpha(alpha, 1.25)
        self.guard, self.guard_margin, self.guard_n = guard, guard_margin, guard_n
        self.guard_steps, self.guard_seed = guard_steps, guard_seed
        self.guard_eps = eps if guard_eps is None else guard_eps
        self.best_acc = -np.inf
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None
        self.guard_log: dict = {}             # the last epoch's guard accuracy, for the log

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns L(x + δ)."""
        S = Ball(self.eps, "linf", self.lo, self.hi)                   # the ε-ball ∩ box
        x_adv = S.sample(x, rng)                                       # 2: x + δ, δ ~ U(−ε, ε)
        _, g_delta, _ = input_gradient(model, x_adv, y)                # 3: g_δ (θ untouched)
        x_adv = S.project(x_adv + self.alpha * np.sign(g_delta), x)    # 4: clip to ball, box
        optimizer.zero_grad()
        loss = loss_backward(model, x_adv, y)                          # 5: ∇_θ L(x + δ)
        optimizer.step()                                               # 5: θ ← θ − τ·∇_θ L
        return loss

    # ---- the guard -------------------------------------------------------------------
    def guard_accuracy(self, model, x: np.ndarray, y: np.ndarray) -> float:
        """6: accuracy under L∞ PGD (guard_steps steps, α = ε/4, seeded start), eval mode."""
        eps = self.guard_eps
        with evaluating(model):
            x_adv = pgd(model, x, y, eps, alpha=eps / 4, steps=self.guard_steps, norm="linf",
                        random_start=True, lo=self.lo, hi=self.hi,
                        rng=np.random.default_rng(self.guard_seed))
            return float(np.mean(correct(model, x_adv, y)))

    def end_of_epoch(self, model, x_train: np.ndarray, y_train: np.ndarray,
                     epoch: int) -> str | None:
        """Run the guard; on a collapse restore the best weights and return the reason."""
        if not self.guard:
            return None
        n = self.guard_n
        acc = self.guard_accuracy(model, x_train[:n], np.asarray(y_train[:n]))   # 6
        self.guard_log = {"guard_acc": acc}
        if acc > self.best_acc:                                                  # 7
            self.best_acc, self.best_epoch = acc, epoch
            self.best_weights = model.state_dict()
            return None
        if acc < self.best_acc - self.guard_margin:                              # 8
            model.load_state_dict(self.best_weights)
            return (f"catastrophic overfitting: PGD accuracy {acc:.2f} < best "
                    f"{self.best_acc:.2f} − {self.guard_margin:.2f} at epoch {epoch}; "
                    f"restored epoch {self.best_epoch} weights")
        return None

    def epoch_log(self) -> dict:
        """The guard's PGD accuracy this epoch and the epoch of its best so far."""
        return {**self.guard_log, "guard_best_epoch": self.best_epoch} if self.guard_log else {}

    # ---- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The guard's best score, its epoch and (if any) a copy of the best weights."""
        state = {"best_acc": np.array(self.best_acc), "best_epoch": np.array(self.best_epoch)}
        for name, value in (self.best_weights or {}).items():
            state["best_weights." + name] = value.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """The inverse of state_dict. A best_acc that is missing or None (strict JSON's null
        for a value that is not finite) is -inf: no guard check has run yet."""
        best_acc = state.get("best_acc")
        self.best_acc = -np.inf if best_acc is None else float(best_acc)
        self.best_epoch = int(state.get("best_epoch", 0))
        prefix = "best_weights."
        weights = {k[len(prefix):]: np.array(v) for k, v in state.items() if k.startswith(prefix)}
        self.best_weights = weights or None
