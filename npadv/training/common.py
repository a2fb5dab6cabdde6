"""Pieces every training method shares: one pass, and the input gradient."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import Tensor


def loss_backward(model, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> float:
    """One full pass: forward x, mean cross-entropy, backward (scaled by `scale`) into .grad.

    Parameter gradients accumulate; the caller zeroes them. Returns the loss.
    """
    loss = F.cross_entropy(model(Tensor(x)), y)
    loss.backward(np.asarray(scale, dtype=loss.dtype))
    return float(loss.data)


def loss_and_input_grad(model, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """One full pass at x returning (mean loss, ∇ₓL); parameter gradients accumulate too."""
    xt = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(model(xt), y)
    loss.backward()
    return float(loss.data), xt.grad
