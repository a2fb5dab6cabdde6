"""Per-example attack losses: cross-entropy, the Carlini-Wagner margin and DLR.

Losses map logits z: (N, K) and labels y: (N,) to a Tensor of per-example losses (N,),
built from npadv ops so that they can be differentiated:

    ce    cross-entropy −log softmax(z)_y                       (Goodfellow et al., ICLR 2015)
    cw    margin max_{j≠y} z_j − z_y                           (Carlini & Wagner, S&P 2017)
    dlr   −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)        (Croce & Hein, ICML 2020)

with π the classes sorted by decreasing logit. cw and dlr are > 0 exactly when the example
is misclassified; dlr is also invariant to shifting and rescaling the logits.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine import Tensor, as_tensor
from ..engine import functional as F

LossFn = Callable[[Tensor, np.ndarray], Tensor]



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
