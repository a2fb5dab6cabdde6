"""Pieces the training methods share: one pass, and the box."""
from __future__ import annotations

import numpy as np

from ..engine import Tensor
from ..engine import functional as F


def loss_backward(model, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> float:
    """One full pass: forward x, mean cross-entropy, backward (scaled by `scale`) into .grad.

    Parameter gradients accumulate; the caller zeroes them. Returns the loss.
    """
    loss = F.cross_entropy(model(Tensor(x)), y)
    loss.backward(np.asarray(scale, dtype=loss.dtype))
    return float(loss.data)


def clip_box(v: np.ndarray, lo, hi) -> np.ndarray:
    """v clipped to [lo, hi]; lo and hi are numbers, arrays or None (no bound on that side)."""
    return v if lo is None and hi is None else np.clip(v, lo, hi)


def box_delta(delta: np.ndarray, x: np.ndarray, lo: float | None, hi: float | None
              ) -> np.ndarray:
    """δ clipped to [lo − x, hi − x], so that x + δ is in range.

    Each entry only moves towards 0, so neither |δ| nor a per-example norm of δ grows.
    """
    return clip_box(delta, None if lo is None else lo - x, None if hi is None else hi - x)
