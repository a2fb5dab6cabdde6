"""The arguments every attack shares, checked once: model, x, y, ε, norm, steps, box."""
from __future__ import annotations

import numpy as np

from ..engine import functional as F
from .gradients import predict
from .projections import check_norm


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
    norm = check_norm(norm)
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


def check_restarts(restarts: int) -> int:
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts}")
    return int(restarts)
