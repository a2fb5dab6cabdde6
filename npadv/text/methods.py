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
    range of the intermediate numbers) and drop the second, so ‖r‖₂ = ε exactly for g ≠ 0
    (`npadv.attacks.fgsm.l2_normalize`); an example with g = 0 gets r = 0.

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

from collections.abc import Callable
from functools import partial

import numpy as np

from ..attacks.fgsm import l2_normalize
from ..attacks.gradients import input_gradient
from ..attacks.projections import norm_per_example, per_example, project, steepest_step
from ..engine import Tensor, as_tensor
from ..engine import functional as F
from ..training.freelb import freelb_step

TextStep = Callable[..., float]


class _Head:
    """model.head with the mask bound: a callable Tensor (B, T, d) -> logits, whose
    parameters() are the model's (so that attacks can freeze them)."""

    def __init__(self, model, mask: np.ndarray):
        self.model, self.mask = model, mask

    def __call__(self, e) -> Tensor:
        return self.model.head(e, self.mask)

    def parameters(self):
        return self.model.parameters()


def _keep(mask: np.ndarray, dtype) -> np.ndarray:
    """(B, T) mask -> (B, T, 1) of dtype, to broadcast over the embedding dims."""
    return np.asarray(mask, dtype=dtype)[:, :, None]



def _project_ball(delta: np.ndarray, eps: float) -> np.ndarray:
    """Π_ε: the nearest point of the L2 ball {‖δ_i‖₂ ≤ ε} (no box), per example; δ: (B, T, d)."""
    return project(delta, np.zeros_like(delta), eps, "l2", lo=None, hi=None)


# ---- perturbations (no parameter update) ----------------------------------------------
def fgm_perturbation(model, ids: np.ndarray, mask: np.ndarray, y: np.ndarray, eps: float,
                     e: np.ndarray | None = None) -> np.ndarray:
    """FGM's r = ε·g/‖g‖₂ with g = ∇_e L at the clean embeddings (lines F1–F2, one pass).

    Args:
        model: has embed(ids) and head(e, mask).
        ids: (B, T) int; mask: (B, T) 1/0; y: (B,) int; eps: ε ≥ 0.
        e: (B, T, d) embeddings to use instead of model.embed(ids) (optional).

    Returns:
        r: (B, T, d) in the embeddings' dtype; 0 at padded positions, ‖r_i‖₂ = ε for every
        example with g_i ≠ 0 and r_i = 0 otherwise. Parameter gradients are untouched.
    """
    e = model.embed(ids).data if e is None else np.asarray(e)
    _, g, _ = input_gradient(_Head(model, mask), e, y)                   # F1: g = ∇_e L
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
    """
    e = model.embed(ids).data if e is None else np.asarray(e)
    if steps < 0 or eps < 0:
        raise ValueError(f"PGD needs steps >= 0 and eps >= 0, got {steps} and {eps}")
    alpha = 2.5 * eps / max(steps, 1) if alpha is None else alpha
    keep = np.broadcast_to(_keep(mask, e.dtype), e.shape)
    head = _Head(model, mask)
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


# ---- training steps: one minibatch each, returning the loss ---------------------------
def natural_step(model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
                 rng: np.random.Generator | None = None) -> float:
    """θ ← θ − τ·∇_θ L(e). One pass. Returns the loss."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(ids, mask), y)
    loss.backward()
    optimizer.step()
    return float(loss.data)


def fgm_step(model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None, eps: float = 1.0) -> float:
    """FGM adversarial training (lines F1–F4). Two passes. Returns L(e) + L(e + r)."""
    optimizer.zero_grad()
    e = model.embed(ids).retain_grad()          # (B, T, d); its graph reaches the table
    clean = F.cross_entropy(model.head(e, mask), y)
    clean.backward()                                                     # F1: ∇_θ L(e), ∇_e L
    r = eps * l2_normalize(e.grad, _keep(mask, e.dtype))                 # F2: r = ε·g/‖g‖₂
    adv = F.cross_entropy(model.head(e + r, mask), y)                    # F3: L(e + r)
    adv.backward()                                                       # F3: ∇_θ L(e + r)
    optimizer.step()                                                     # F4
    return float(clean.data) + float(adv.data)


def pgd_step(model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
             rng: np.random.Generator | None = None, eps: float = 1.0, steps: int = 3,
             alpha: float | None = None, random_start: bool = False) -> float:
    """PGD-K adversarial training on embeddings (lines P1–P5). K + 1 passes.

    Returns L(e + δ_K).
    """
    optimizer.zero_grad()
    e = model.embed(ids)
    delta = pgd_embedding(model, ids, mask, y, eps, steps, alpha, random_start, rng,
                          e=e.data)                                      # P1–P4
    loss = F.cross_entropy(model.head(e + delta, mask), y)               # P5
    loss.backward()
    optimizer.step()
    return float(loss.data)


def freelb_text_step(model, optimizer, ids: np.ndarray, mask: np.ndarray, y: np.ndarray,
                     rng: np.random.Generator | None = None, K: int = 3, alpha: float = 0.1,
                     sigma: float = 0.0, max_norm: float = 0.0,
                     deltas: list | None = None) -> float:
    """FreeLB-K on the embeddings via `npadv.training.freelb.freelb_step`. K passes.

    Args as freelb_step: K ascent steps, alpha = adv-lr, sigma = adv-init-mag (δ₀ scaled by
    σ/√(Lᵢ·d), Lᵢ = non-pad length), max_norm = adv-max-norm (0 = unbounded).
    deltas: if a list, the perturbation each pass sees, δ_{t−1} = (e + δ_{t−1}) − e as a
        (B, T, d) array, is appended to it (K arrays). Exact where δ is 0 (padding); elsewhere
        up to the rounding of one addition and subtraction.
    Returns the mean of the K losses.
    """
    e = model.embed(ids)                  # one lookup; all K backward passes reach the table

    def head(z: Tensor) -> Tensor:
        if deltas is not None:
            deltas.append(as_tensor(z).data - e.data)
        return model.head(z, mask)

    return freelb_step(head, e, y, optimizer, K, alpha, sigma, max_norm, rng, mask=mask)


# ---- by name ---------------------------------------------------------------------------
TEXT_METHODS = ("natural", "fgm", "pgd", "freelb")


def passes_per_batch(name: str, settings: dict) -> int:
    """Full passes one training step of method `name` makes (natural 1, FGM 2, PGD K+1,
    FreeLB K)."""
    return {"natural": 1, "fgm": 2, "pgd": settings.get("steps", 0) + 1,
            "freelb": settings.get("K", 0)}[name]


def text_method(name: str, **settings) -> TextStep:
    """The training step of method `name` with its settings bound:
    step(model, optimizer, ids, mask, y, rng) -> loss.

    Settings: fgm: eps; pgd: eps, steps, alpha, random_start; freelb: K, alpha, sigma,
    max_norm; natural: none. Unknown settings raise ValueError.
    """
    steps = {"natural": natural_step, "fgm": fgm_step, "pgd": pgd_step,
             "freelb": freelb_text_step}
    if name not in steps:
        raise ValueError(f"unknown text method {name!r}; use one of {TEXT_METHODS}")
    allowed = {"natural": set(), "fgm": {"eps"}, "pgd": {"eps", "steps", "alpha", "random_start"},
               "freelb": {"K", "alpha", "sigma", "max_norm"}}[name]
    unknown = set(settings) - allowed
    if unknown:
        raise ValueError(f"text method {name!r} does not take {sorted(unknown)}; "
                         f"it takes {sorted(allowed) or 'nothing'}")
    return partial(steps[name], **settings)
