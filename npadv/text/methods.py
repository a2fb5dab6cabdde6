"""Adversarial training on word embeddings: natural, FGM, PGD-K and FreeLB-K.

All four take one minibatch (ids (B, T) int64, mask (B, T) float32, y (B,) int64) and a
model with `embed(ids) -> e (B, T, d)` and `head(e, mask) -> logits (B, C)` (see
npadv.text.models); they zero the gradients, take one optimiser step and return the loss.
Perturbations live in embedding space, are measured in L2 per example over all its
non-pad tokens × dims, and are exactly 0 at padded positions (mask = 0).

FGM: Miyato, Dai, Goodfellow, "Adversarial Training Methods for Semi-Supervised Text
Classification", ICLR 2017 (Sec. 3):

    F1: one pass at e:  ∇_θ L(e) and g = ∇_e L(e)         (g is a constant: no 2nd order)
    F2: r ← ε·g/‖g‖₂                                      (per example, over non-pad entries)
    F3: one pass at e + r:  ∇_θ L(e + r)
    F4: θ ← θ − τ·(∇_θ L(e) + λ·∇_θ L(e + r)),  λ = 1     (2 passes)

    The reference code divides g by max|g| before taking the norm and adds 1e-6 inside the
    square root. We keep the first (it only rescales g, so it changes nothing but the
    range of the intermediate numbers) and drop the second, so ‖r‖₂ = ε for g ≠ 0 up to
    rounding (`npadv.attacks.fgsm.l2_normalize`); an example with g = 0 gets r = 0.
    `fgm_perturbation`, which returns r, also pulls an r that rounding left just outside
    the ball back in; the FGM step trains at e + ε·g/‖g‖₂ as computed.

PGD-K on embeddings: Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning
Models Resistant to Adversarial Attacks", ICLR 2018, with the L2 ball and no box:

    P1: δ₀ ← 0, or uniform in {‖δ‖₂ ≤ ε} over the non-pad entries (random start)
    P2: for k = 0 .. K−1:
    P3:   g ← ∇_δ L(e + δ_k)                              (θ frozen)
    P4:   δ_{k+1} ← Π_ε(δ_k + α·g/‖g‖₂)                   (projection onto the L2 ball)
    P5: one pass at e + δ_K: θ ← θ − τ·∇_θ L(e + δ_K)    (K + 1 passes)

FreeLB-K: Zhu, Cheng, Gan, Sun, Goldstein, Liu, "FreeLB: Enhanced Adversarial Training for
Natural Language Understanding", ICLR 2020, Algorithm 1, as implemented (and numbered) in
`npadv.training.freelb.freelb_step`, which this module calls with the model's head, its
embeddings and the padding mask; δ₀ = U(−1, 1)·mask·σ/√(Lᵢ·d), Lᵢ the non-pad length of
example i. K passes.

Natural: one pass at e, θ ← θ − τ·∇_θ L(e).
"""
from __future__ import annotations

import numpy as np

from ..attacks.arguments import check_count
from ..attacks.fgsm import l2_normalize
from ..attacks.gradients import input_gradient
from ..attacks.projections import (
    Ball,
    check_radius,
    norm_per_example,
    per_example,
    steepest_step,
)
from ..engine import Tensor, as_tensor
from ..engine import functional as F
from ..training.freelb import FreeLB, freelb_step
from ..training.method import Method, StepFollowsEps, check_eps


def _head(model, mask: np.ndarray):
    """model.head with the mask bound: a callable Tensor (B, T, d) -> logits (B, C)."""
    return lambda e: model.head(e, mask)


def _keep(mask: np.ndarray, dtype) -> np.ndarray:
    """(B, T) mask -> (B, T, 1) of dtype, to broadcast over the embedding dims."""
    return np.asarray(mask, dtype=dtype)[:, :, None]



def _project_ball(delta: np.ndarray, eps: float) -> np.ndarray:
    """Π_ε: the nearest point of the L2 ball {‖δ_i‖₂ ≤ ε} (no box), per example; δ: (B, T, d)."""
    return Ball(eps, "l2", lo=None, hi=None).project(delta, np.zeros_like(delta))


# ---- perturbations (no parameter update) ----------------------------------------------
def fgm_perturbation(model, ids: np.ndarray, mask: np.ndarray, y: np.ndarray, eps: float,
                     e: np.ndarray | None = None) -> np.ndarray:
    """FGM's r = ε·g/‖g‖₂ with g = ∇_e L at the clean embeddings (lines F1–F2, one pass).

    Args:
        model: has embed(ids) and head(e, mask).
        ids: (B, T) int; mask: (B, T) 1/0; y: (B,) int; eps: ε ≥ 0.
        e: (B, T, d) embeddings to use instead of model.embed(ids) (optional).

    Returns:
        r: (B, T, d) in the embeddings' dtype; 0 at padded positions, ‖r_i‖₂ = ε up to the
        rounding of the embeddings' dtype for every example with g_i ≠ 0 (the r of FGM's
        training step, line F2, the same numbers), and r_i = 0 otherwise. Parameter
        gradients are untouched.

    Raises:
        ValueError: eps is not a finite number >= 0 (see `check_radius`).
    """
    check_radius(eps, "eps")
    e = model.embed(ids).data if e is None else np.asarray(e)
    _, g, _ = input_gradient(_head(model, mask), e, y)                   # F1: g = ∇_e L
    return eps * l2_normalize(g, _keep(mask, g.dtype))                   # F2


def pgd_embedding(model, ids: np.ndarray, mask: np.ndarray, y: np.ndarray, eps: float,
                  steps: int, alpha: float | None = None, random_start: bool = False,
                  rng: np.random.Generator | None = None, early_stop: bool = False,
                  e: np.ndarray | None = None) -> np.ndarray:
    """L2 PGD on the embeddings (lines P1–P4): the perturbation δ_K.

    Args:
        model: has embed(ids) and head(e, mask); its parameters are frozen meanwhile.
        ids: (B, T) int; mask: (B, T) 1/0; y: (B,) int.
        eps: ε ≥ 0, the L2 radius per example (over non-pad tokens × dims).
        steps: K ≥ 0. alpha: α, the L2 step (default 2.5ε/K).
        random_start: start uniformly in the masked ε-ball (needs rng) instead of at 0.
        early_stop: freeze an example at the first iterate that misclassifies it (for
            evaluation: then e + δ_K is misclassified whenever some iterate was).
        e: (B, T, d) embeddings to use instead of model.embed(ids) (optional).

    Returns:
        δ: (B, T, d) in the embeddings' dtype, ‖δ_i‖₂ ≤ ε, exactly 0 at padded positions.
        K passes (forward and backward through the head), no parameter gradient.

    Raises:
        ValueError: eps or alpha is not a finite number >= 0 (see `check_radius`), or
            steps is not an integer >= 0.
    """
    check_radius(eps, "eps")
    check_count(steps, "steps", 0)
    if alpha is not None:
        check_radius(alpha, "alpha")
    e = model.embed(ids).data if e is None else np.asarray(e)
    alpha = 2.5 * eps / max(steps, 1) if alpha is None else alpha
    keep = np.broadcast_to(_keep(mask, e.dtype), e.shape)
    head = _head(model, mask)
    delta = np.zeros_like(e)                                             # P1: δ₀ = 0
    if random_start and eps > 0:
        if rng is None:
            raise ValueError("PGD with a random start needs an rng")
        u = rng.standard_normal(e.shape) * keep                          # P1: uniform in ball
        dims = keep.reshape(len(e), -1).sum(axis=1)                      # Lᵢ·d
        radius = eps * rng.random(len(e)) ** (1.0 / np.maximum(dims, 1))
        norm = np.maximum(norm_per_example(u, "l2"), 1e-30)
        delta = _project_ball((u * per_example(radius / norm, 3)).astype(e.dtype), eps)
    frozen = np.zeros(len(e), dtype=bool)
    for _ in range(steps):                                               # P2
        _, g, logits = input_gradient(head, e + delta, y)                # P3: g = ∇_δ L
        if early_stop:
            frozen |= logits.argmax(axis=1) != y
            if frozen.all():
                break
        step = alpha * steepest_step(g * keep, "l2")                     # P4: α·g/‖g‖₂
        moved = _project_ball(delta + step.astype(e.dtype), eps)         # P4: Π_ε
        delta = np.where(per_example(frozen, 3), delta, moved)
    return delta


# ---- the methods: one minibatch step each, returning the loss -----------------------------
TEXT_EPS = 1.0   # the default ε of every text method: an L2 radius per sentence (see above)


class TextNatural(Method):
    """Natural training on text: one pass at e, θ ← θ − τ·∇_θ L(e)."""

    name, task, title, paper = "natural", "text", "natural training", ""
    summary = "clean cross-entropy; 1 pass per minibatch"

    def step(self, model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None) -> float:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids, mask), y)
        loss.backward()
        optimizer.step()
        return float(loss.data)


class FGM(Method):
    """FGM adversarial training (lines F1–F4). Two passes; the step returns L(e) + L(e + r).

    Attributes:
        eps: ε, the L2 norm of r per example; the loop may overwrite it (ε ramp).
    """

    name, task, title, paper = "fgm", "text", "FGM", "Miyato, Dai, Goodfellow, ICLR 2017"
    norm = "l2"
    summary = "one pass for ∇_e L, then a pass at e + ε·g/‖g‖₂, both losses summed; 2 passes"

    def __init__(self, eps: float = TEXT_EPS):
        check_eps(eps)
        self.eps = eps

    def step(self, model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None) -> float:
        optimizer.zero_grad()
        e = model.embed(ids).retain_grad()      # (B, T, d); its graph reaches the table
        clean = F.cross_entropy(model.head(e, mask), y)
        clean.backward()                        # F1: ∇_θ L(e) and g = ∇_e L, in one pass
        r = self.eps * l2_normalize(e.grad, _keep(mask, e.dtype))        # F2: r = ε·g/‖g‖₂
        adv = F.cross_entropy(model.head(e + r, mask), y)                # F3: L(e + r)
        adv.backward()                                                   # F3: ∇_θ L(e + r)
        optimizer.step()                                                 # F4
        return float(clean.data) + float(adv.data)


class TextPGD(StepFollowsEps, Method):
    """PGD-K adversarial training on embeddings (lines P1–P5). K + 1 passes; the step
    returns L(e + δ_K).

    Attributes:
        eps: ε, the L2 radius per example; the loop may overwrite it (ε ramp).
        alpha_ratio: the L2 step as a multiple of ε. steps: K.
        random_start: start uniformly in the ε-ball instead of at 0.
    """

    name, task, title = "pgd", "text", "PGD-AT on embeddings"
    norm = "l2"
    paper = "Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018"
    summary = "train on the point of a K-step L2 PGD on the embeddings; K + 1 passes"
    flags = {"alpha": "L2 attack step α at the target ε", "steps": "ascent steps K",
             "random_start": "start δ uniformly in the ε-ball (else at 0)"}
    derived = {"alpha": "2.5ε/K"}

    def __init__(self, eps: float = TEXT_EPS, steps: int = 3, alpha: float | None = None,
                 random_start: bool = False):
        check_eps(eps)
        steps = check_count(steps, "steps", 0)
        self.eps, self.steps, self.random_start = eps, steps, random_start
        self.set_alpha(alpha, 2.5 / max(steps, 1))

    def step(self, model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None) -> float:
        optimizer.zero_grad()
        e = model.embed(ids)
        delta = pgd_embedding(model, ids, mask, y, self.eps, self.steps, self.alpha,
                              self.random_start, rng, e=e.data)          # P1–P4
        loss = F.cross_entropy(model.head(e + delta, mask), y)           # P5
        loss.backward()
        optimizer.step()
        return float(loss.data)


class TextFreeLB(FreeLB):
    """FreeLB-K on the embeddings via `npadv.training.freelb.freelb_step`. K passes; the step
    returns the mean of the K losses. The paper, flags and summary are image FreeLB's.

    Attributes as freelb_step: K ascent steps, alpha = adv-lr, sigma = adv-init-mag (δ₀
    scaled by σ/√(Lᵢ·d), Lᵢ = non-pad length), max_norm = adv-max-norm (0 = unbounded),
    no box on the embeddings. alpha and max_norm default to ε/2 and ε, so that FreeLB's
    perturbations stay in the ball of PGD's and FGM's. Like image FreeLB it has no `eps`
    attribute for the loop's ε ramp to set (max_norm 0 would mean unbounded).
    """

    name, task = "freelb", "text"
    claim = ""
    derived = {"adv_lr": "ε/2", "adv_max_norm": "ε"}

    def __init__(self, eps: float = TEXT_EPS, K: int = 3, alpha: float | None = None,
                 sigma: float = 0.0, max_norm: float | None = None):
        check_eps(eps)
        super().__init__(K, eps / 2 if alpha is None else alpha, sigma,
                         eps if max_norm is None else max_norm, lo=None, hi=None)

    deltas: list | None = None    # set to a list to record the perturbations (see step)

    def step(self, model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None) -> float:
        """If self.deltas is a list, the perturbation each pass sees, δ_{t−1} = (e + δ_{t−1})
        − e as a (B, T, d) array, is appended to it (K arrays): exact where δ is 0
        (padding), elsewhere up to the rounding of one addition and subtraction."""
        e = model.embed(ids)              # one lookup; all K backward passes reach the table

        def head(z: Tensor) -> Tensor:
            if self.deltas is not None:
                self.deltas.append(as_tensor(z).data - e.data)
            return model.head(z, mask)

        return freelb_step(head, e, y, optimizer, self.K, self.alpha, self.sigma,
                           self.max_norm, rng, mask=mask)
