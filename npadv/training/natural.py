"""Natural (standard) training: minimise the mean cross-entropy on clean inputs.

    1: for minibatch (x, y):
    2:   θ ← θ − τ·∇_θ L(θ; x, y)        # one pass
"""
from __future__ import annotations

import numpy as np

from .common import loss_backward
from .method import Method


class Natural(Method):
    """One full pass and one optimiser step per minibatch."""

    name, title, paper = "natural", "natural training", ""
    summary = "clean cross-entropy; 1 pass per minibatch"

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        optimizer.zero_grad()
        loss = loss_backward(model, x, y)   # 2: ∇_θ L(θ; x, y)
        optimizer.step()                    # 2: θ ← θ − τ·∇_θ L
        return loss
