"""FreeLB: free large-batch adversarial training.

Zhu, Cheng, Gan, Sun, Goldstein, Liu, "FreeLB: Enhanced Adversarial Training for Natural
Language Understanding", ICLR 2020, Algorithm 1. e is the clean input of the perturbed
layer (word embeddings in the paper, pixels here), δ a perturbation of it:

    1: δ₀ ← U(−1, 1)·mask·σ/√(Lᵢ·d)       (Lᵢ·d = unmasked entries of example i; 0 if σ = 0)
    2: g ← 0
    3: for t in 1 .. K:
    4:   one pass at e + δ_{t−1}: g ← g + ∇_θ L(θ; e + δ_{t−1}, y)/K;  g_δ = ∇_δ L
    5:   δ_t ← δ_{t−1} + α·g_δ/‖g_δ‖₂            (per example over all its entries; ‖·‖ ≥ 1e-8)
    6:   if ε > 0: δ_t ← δ_t·min(1, ε/‖δ_t‖₂)   (per example; ε = max_norm, 0 = unbounded)
    7: θ ← θ − τ·g                               (one optimiser step)

There is no separate clean-loss term: with σ = 0 the first pass is the clean loss, and with
K = 1, σ = 0 FreeLB is natural training exactly. Cost: K full passes per minibatch (δ_K
of the last round is not computed: nothing would use it). Names in the authors' code:
adv-init-mag = σ, adv-lr = α, adv-max-norm = ε.

The box. The paper perturbs embeddings, which have no valid range. On pixels, when lo/hi
are given, δ is also projected after lines 1 and 6 so that e + δ stays in [lo, hi]
(coordinatewise towards e, so line 6's norm bound still holds).

Reuse on embeddings (text). `freelb_step` takes the perturbed layer's input in one of
three forms, so the embedding table's gradient flows in every pass:

    emb, head = model[0], model[1:]               # model: Embedding, encoder, classifier
    freelb_step(head, emb(ids), y, optimizer, K, alpha, mask=(ids != pad)[..., None])
        # a Tensor made by the embedding layer: its graph is reused by all K backward
        # passes, each adding ∇_table L/K to the table's .grad
    freelb_step(head, lambda: emb(ids), y, ...)   # or a callable, recomputed every pass
                                                  # (as the authors' code does)

`head` maps the perturbed (B, T, d) tensor to logits (B, C); if the encoder needs the
padding mask too, close over it: head = lambda z: encoder_and_classifier(z, mask).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..attacks.projections import norm_per_example, per_example
from ..engine import Tensor, as_tensor
from ..engine import functional as F
from .common import box_delta
from .method import Method, check_count, check_radius

Perturbable = np.ndarray | Tensor | Callable[[], Tensor]


def freelb_step(head, e: Perturbable, y: np.ndarray, optimizer, K: int, alpha: float,
                sigma: float = 0.0, max_norm: float = 0.0,
                rng: np.random.Generator | None = None, mask: np.ndarray | None = None,
                lo: float | None = None, hi: float | None = None) -> float:
    """One FreeLB-K minibatch: K ascent passes on δ, their θ-gradients averaged, one θ step.

    Args:
        head: callable, Tensor (B, ...) -> logits Tensor (B, C); the part of the model after
            the perturbed layer (the whole model for pixels).
        e: the clean input of head: an ndarray (pixels), a Tensor (e.g. an embedding layer's
            output; gradients flow back through it in every pass) or a zero-argument
            callable returning such a Tensor (recomputed for every pass).
        y: (B,) int labels.
        optimizer: zeroed here, stepped once at the end.
        K: ascent steps = passes (≥ 1). alpha: L2 step α of δ per example.
        sigma: σ, the initial magnitude (adv-init-mag); 0 starts at δ₀ = 0.
        max_norm: ε, the L2 bound on δ per example (adv-max-norm); 0 = unbounded.
        rng: needed when sigma > 0.
        mask: (B, T, 1) or (B, T), 1 for real tokens and 0 for padding; δ stays 0 at padded
            positions (at the start and in every step). None: every entry counts.
        lo, hi: a valid range for e + δ (pixels); None for embeddings.

    Returns:
        The mean of the K losses, i.e. the objective whose gradient g is.
    """
    K = check_count(K, "K", 1)
    for name, value in (("alpha", alpha), ("sigma", sigma), ("max_norm", max_norm)):
        check_radius(value, name)
    embed = e if callable(e) else None
    e_t = as_tensor(embed() if embed is not None else e)
    shape, ndim = e_t.shape, e_t.ndim
    B = shape[0]
    if mask is None:
        keep, count = 1.0, np.full(B, float(np.prod(shape[1:])))
    else:
        keep = np.asarray(mask, dtype=e_t.dtype)
        if keep.ndim == ndim - 1:
            keep = keep[..., None]
        keep = np.broadcast_to(keep, shape)
        count = np.maximum(keep.reshape(B, -1).sum(axis=1, dtype=np.float64), 1.0)

    delta = np.zeros(shape, dtype=e_t.dtype)                                        # 1
    if sigma > 0:
        if rng is None:
            raise ValueError("FreeLB with sigma > 0 needs an rng for the random start")
        magnitude = per_example(sigma / np.sqrt(count), ndim)
        delta = (rng.uniform(-1.0, 1.0, size=shape) * keep * magnitude).astype(e_t.dtype)
        delta = box_delta(delta, e_t.data, lo, hi)

    optimizer.zero_grad()                                                           # 2: g ← 0
    losses = []
    for t in range(K):                                                              # 3
        if t > 0 and embed is not None:
            e_t = as_tensor(embed())
        delta_t = Tensor(delta, requires_grad=True)
        loss = F.cross_entropy(head(e_t + delta_t), y)                              # 4
        loss.backward(np.asarray(1.0 / K, dtype=loss.dtype))                        # 4: ∇_θ L/K
        losses.append(float(loss.data))
        if t == K - 1:
            break                                                                   # δ_K unused
        g_delta = delta_t.grad * K * keep                                           # 4: ∇_δ L
        norm = np.maximum(norm_per_example(g_delta, "l2"), 1e-8)
        delta = delta + (alpha * g_delta / per_example(norm, ndim)).astype(delta.dtype)  # 5
        if max_norm > 0:                                                            # 6
            size = norm_per_example(delta, "l2")
            shrink = np.where(size > max_norm, max_norm / np.maximum(size, 1e-30), 1.0)
            delta = delta * per_example(shrink, ndim).astype(delta.dtype)
        delta = box_delta(delta, e_t.data, lo, hi)
    optimizer.step()                                                                # 7
    return float(np.mean(losses))


class FreeLB(Method):
    """FreeLB-K on pixels (the whole model is the head, x the perturbed input).

    Attributes:
        K: ascent steps (passes) per minibatch.
        alpha: the L2 step of δ per example (adv-lr).
        sigma: initial magnitude (adv-init-mag); 0 = start at δ = 0.
        max_norm: L2 bound on δ per example (adv-max-norm); 0 = unbounded.
        lo, hi: the valid pixel range kept for x + δ (None = unbounded).
    FreeLB has no `eps` attribute: its radius is max_norm, where 0 means unbounded, so the
    loop's ε ramp (which starts at 0) must not touch it.
    """

    name, title, paper = "freelb", "FreeLB", "Zhu, Cheng, Gan, Sun, Goldstein, Liu, ICLR 2020"
    summary = ("K L2 ascent steps on δ, the parameter gradients of all K passes averaged; "
               "K passes")
    claim = ("FreeLB improves generalisation (an L2, embedding-space method; its L∞ "
             "robustness is not claimed)")
    flags = {"freelb_k": "ascent steps K", "adv_lr": "L2 ascent step α (adv-lr)",
             "adv_init_mag": "initial perturbation magnitude σ (adv-init-mag)",
             "adv_max_norm": "L2 bound on δ per example, 0 = unbounded (adv-max-norm)"}
    params = {"freelb_k": "K", "adv_lr": "alpha", "adv_init_mag": "sigma",
              "adv_max_norm": "max_norm"}

    def __init__(self, K: int = 3, alpha: float = 0.5, sigma: float = 0.0,
                 max_norm: float = 0.0, lo: float | None = 0.0, hi: float | None = 1.0):
        K = check_count(K, "K (freelb_k)", 1)
        check_radius(alpha, "alpha (adv_lr)")
        check_radius(sigma, "sigma (adv_init_mag)")
        check_radius(max_norm, "max_norm (adv_max_norm)")
        self.K, self.alpha, self.sigma, self.max_norm = K, alpha, sigma, max_norm
        self.lo, self.hi = lo, hi

    def threat_model(self) -> dict | None:
        """The L2 ball of radius max_norm (None when unbounded, max_norm = 0)."""
        return {"norm": "l2", "eps": float(self.max_norm)} if self.max_norm > 0 else None

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """One minibatch. x: (B, ...) float in [lo, hi]; y: (B,) int. Returns the mean loss."""
        return freelb_step(model, x, y, optimizer, self.K, self.alpha, self.sigma,
                           self.max_norm, rng, lo=self.lo, hi=self.hi)
