"""What an attack asks of the model: predictions, and the input gradient of a loss.

`input_gradient` evaluates a per-example loss and its gradient with respect to the input
through the engine's `grad`, which touches no `.grad` and computes no parameter gradient;
the model's train/eval mode is never touched (the model runs in whatever mode it is in).
"""
from __future__ import annotations

import numpy as np

from ..engine import Tensor, as_tensor, enable_grad, grad, no_grad
from .losses import LossFn, get_loss


class NonFiniteGradient(FloatingPointError):
    """The model, not its finite input, produced a NaN or inf gradient."""


def input_gradient(model, x: np.ndarray, y: np.ndarray, loss: str | LossFn = "ce"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example loss at x, its gradient with respect to x, and the logits.

    x: (N, ...) float; y: (N,) int; loss: a name in LOSSES or a function (logits, y) -> (N,).
    Returns (loss (N,), grad with x's shape and dtype, logits (N, K)). The gradient of the
    summed loss is taken, so each example's gradient is that of its own loss. A model whose
    output does not depend differentiably on x gives a zero gradient. No side effects on
    the model (see the module docstring).
    """
    loss_fn = get_loss(loss) if isinstance(loss, str) else loss
    xt = Tensor(np.array(x), requires_grad=True)
    with enable_grad():
        logits = model(xt)
        check_logits(logits, len(xt))
        per_example = loss_fn(logits, y)
        g = grad(per_example.sum(), xt)
    bad = (~np.isfinite(g.reshape(len(g), g[:1].size)).all(axis=1) if g.ndim
           else np.zeros(0))
    if bad.any():
        z = as_tensor(logits).data
        where = ("its logits are NaN or inf" if not np.isfinite(z).all()
                 else f"its logits reach |z| = {np.abs(z).max():.3g}")
        raise NonFiniteGradient(
            f"the model's input gradient is NaN or inf for {int(bad.sum())} of {len(bad)} "
            f"examples although the inputs are finite: {where}, so its weights overflow")
    return per_example.data.copy(), g.astype(xt.dtype, copy=False), as_tensor(logits).data


def predict(model, x: np.ndarray) -> np.ndarray:
    """Logits of the model at x, without recording a graph. x: (N, ...) -> (N, K).

    Raises ValueError if the model does not return logits of shape (N, K), K >= 1.
    """
    with no_grad():
        logits = as_tensor(model(Tensor(np.array(x)))).data
    check_logits(logits, len(x))
    return logits


def check_logits(logits, n: int) -> None:
    """ValueError unless `logits` (a Tensor or array) has shape (n, K) with K >= 1."""
    shape = np.shape(logits.data if isinstance(logits, Tensor) else logits)
    if len(shape) != 2 or shape[0] != n or shape[1] < 1:
        raise ValueError(f"the model must return logits of shape (N, C), C >= 1, for a "
                         f"batch of N inputs; for {n} inputs it returned shape {shape}")


def correct(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) bool: the model classifies x correctly (no graph recorded)."""
    return predict(model, x).argmax(axis=1) == y


def attack_success(logits: np.ndarray, y: np.ndarray, targeted: bool = False) -> np.ndarray:
    """(N,) bool: misclassified (untargeted), or classified as the target y (targeted)."""
    pred = logits.argmax(axis=1)
    return pred == y if targeted else pred != y
