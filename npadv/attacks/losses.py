"""Per-example attack losses, and the input gradient an attack follows.

Losses map logits z: (N, K) and labels y: (N,) to a Tensor of per-example losses (N,),
built from npadv ops so that they can be differentiated:

    ce    cross-entropy −log softmax(z)_y                       (Goodfellow et al., ICLR 2015)
    cw    margin max_{j≠y} z_j − z_y                           (Carlini & Wagner, S&P 2017)
    dlr   −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)        (Croce & Hein, ICML 2020)

with π the classes sorted by decreasing logit. cw and dlr are > 0 exactly when the example
is misclassified; dlr is also invariant to shifting and rescaling the logits.

`input_gradient` evaluates a loss and its gradient with respect to the input without side
effects on the model: the parameters' `.grad` fields and `requires_grad` flags are as
before, and the model's train/eval mode is never touched (the model runs in whatever mode
it is in). `check_attack_inputs` validates the arguments every attack shares.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import functional as F
from .. import tensor as _tensor
from ..nn import frozen
from ..tensor import Tensor, as_tensor, enable_grad
from .projections import _canonical_norm

LossFn = Callable[[Tensor, np.ndarray], Tensor]


# ---- losses ------------------------------------------------------------------------
def _sorted_classes(z: np.ndarray) -> np.ndarray:
    """Class indices sorted by decreasing logit. z: (N, K) -> (N, K) int64."""
    return np.argsort(-z, axis=1, kind="stable")


def _best_other_class(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmax_{j≠y} z_j per example. z: (N, K), y: (N,) -> (N,) int64."""
    order = _sorted_classes(z)
    return np.where(order[:, 0] == y, order[:, 1], order[:, 0])


def _logits_and_labels(logits, y, min_classes: int, what: str) -> tuple[Tensor, np.ndarray]:
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"{what} expects logits of shape (N, K), got {logits.shape}")
    n, k = logits.shape
    if k < min_classes:
        raise ValueError(f"{what} needs at least {min_classes} classes, got {k}")
    return logits, F.check_labels(y, k, n)


def ce_loss(logits, y) -> Tensor:
    """Cross-entropy per example. logits: (N, K) float; y: (N,) int -> (N,) float."""
    return F.cross_entropy(logits, y, reduction="none")


def cw_loss(logits, y) -> Tensor:
    """Carlini-Wagner margin max_{j≠y} z_j − z_y per example. (N, K), (N,) -> (N,).

    Positive iff the example is misclassified (ignoring exact ties).
    """
    z, y = _logits_and_labels(logits, y, 2, "cw_loss")
    rows = np.arange(len(y))
    other = _best_other_class(z.data, y)
    return z[rows, other] - z[rows, y]


def dlr_loss(logits, y) -> Tensor:
    """Difference-of-logits-ratio loss per example. (N, K), (N,) -> (N,); needs K ≥ 3.

    DLR(z, y) = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12), π sorting z decreasingly.
    """
    z, y = _logits_and_labels(logits, y, 3, "dlr_loss")
    rows = np.arange(len(y))
    order = _sorted_classes(z.data)
    other = np.where(order[:, 0] == y, order[:, 1], order[:, 0])
    spread = z[rows, order[:, 0]] - z[rows, order[:, 2]] + 1e-12
    return (z[rows, other] - z[rows, y]) / spread


LOSSES: dict[str, LossFn] = {"ce": ce_loss, "cw": cw_loss, "dlr": dlr_loss}


def get_loss(name: str) -> LossFn:
    """The per-example loss called `name` ('ce', 'cw' or 'dlr')."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name]


# ---- the input gradient, without side effects ------------------------------------------
def _graph_leaves(root: Tensor, exclude: Tensor) -> list[Tensor]:
    """Leaf tensors requiring grad that `root` depends on, except `exclude`."""
    leaves, seen, stack = [], {id(exclude)}, [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node._vjp is None and node.requires_grad:
            leaves.append(node)
        stack.extend(node._parents)
    return leaves


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
    with enable_grad(), frozen(model):
        logits = model(xt)
        per_example = loss_fn(logits, y)
        if per_example.requires_grad:
            leaves = _graph_leaves(per_example, exclude=xt)
            saved = [(t, t.grad) for t in leaves]
            try:
                per_example.sum().backward()
            finally:
                for t, grad in saved:
                    t.grad = grad
    grad = xt.grad if xt.grad is not None else np.zeros_like(xt.data)
    return per_example.data.copy(), grad.astype(xt.dtype, copy=False), as_tensor(logits).data


def predict(model, x: np.ndarray) -> np.ndarray:
    """Logits of the model at x, without recording a graph. x: (N, ...) -> (N, K)."""
    with _tensor.no_grad():
        return as_tensor(model(Tensor(np.array(x)))).data


def correct(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) bool: the model classifies x correctly (no graph recorded)."""
    return predict(model, x).argmax(axis=1) == y


def attack_success(logits: np.ndarray, y: np.ndarray, targeted: bool = False) -> np.ndarray:
    """(N,) bool: misclassified (untargeted), or classified as the target y (targeted)."""
    pred = logits.argmax(axis=1)
    return pred == y if targeted else pred != y


# ---- arguments every attack shares ------------------------------------------------------
def check_attack_inputs(model, x, y, eps: float, norm: str = "linf", steps: int | None = None,
                        lo: float | None = None, hi: float | None = None
                        ) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Validate an attack's arguments; return (x, y as int64, eps as float, canonical norm).

    Raises ValueError (with the reason) for: x not a float array with a batch axis, NaN or
    inf in x, x outside [lo, hi], lo > hi, eps negative or not finite, an unknown norm,
    steps < 0, a y whose length differs from x's, and labels outside the model's classes
    (checked on the logits of the first example). TypeError for non-integer labels.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.ndim < 1:
        raise ValueError(f"x must be a float array (N, ...), got dtype {x.dtype}, shape {x.shape}")
    if np.isnan(x).any() or np.isinf(x).any():
        raise ValueError("x contains NaN or inf")
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise ValueError(f"y must have shape ({len(x)},) to match x, got {y.shape}")
    if not np.isscalar(eps) and np.ndim(eps) != 0:
        raise ValueError(f"eps must be a scalar, got shape {np.shape(eps)}")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    norm = _canonical_norm(norm)
    if steps is not None and (int(steps) != steps or steps < 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"empty box: lo = {lo} > hi = {hi}")
    if (lo is not None and (x < lo).any()) or (hi is not None and (x > hi).any()):
        raise ValueError(f"x lies outside the box [{lo}, {hi}]; pass lo/hi=None for no box")
    if len(x):
        num_classes = predict(model, x[:1]).shape[1]
        y = F.check_labels(y, num_classes, len(x))
    return x, y.astype(np.int64), eps, norm
