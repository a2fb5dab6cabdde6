"""The arguments every attack shares, checked once: model, x, y, the threat set, steps.

An attack takes its threat set S in one of two forms, `eps` with `norm`, `lo`, `hi`, or
eps=Ball(eps, norm, lo, hi); `threat_set` turns either into the Ball the attack runs in.
"""
from __future__ import annotations

import numpy as np

from ..engine import functional as F
from .gradients import predict
from .projections import Ball
from .registry import AttackSpec


def threat_set(attack: AttackSpec, eps: float | Ball, norm: str, lo: float | None,
               hi: float | None) -> Ball:
    """The Ball the attack declared by `attack` runs in: eps itself if it is a Ball, else
    Ball(eps, norm, lo, hi).

    With a Ball, norm, lo and hi take its values: each must be left at the function's
    default or equal the ball's. Raises ValueError for a value that disagrees with the
    ball, for a bad eps, norm or box (see Ball), and for a norm the attack does not support.
    """
    if isinstance(eps, Ball):
        ball = eps
        for option, value in (("norm", norm), ("lo", lo), ("hi", hi)):
            if value != attack.default(option, value) and value != getattr(ball, option):
                raise ValueError(
                    f"{attack.run.__name__} got eps={ball} and {option}={value!r}, which "
                    f"disagrees with the ball's {option}={getattr(ball, option)!r}; give the "
                    "threat set once: a Ball alone, or eps with norm, lo and hi")
    else:
        ball = Ball(eps, norm, lo, hi)
    attack.check_norm(ball.norm)
    return ball


def check_count(value, name: str, minimum: int) -> int:
    """`value` as an int if it is an integer (not a bool) >= minimum; ValueError naming
    `name` otherwise. For steps, restarts, queries, targets and the methods' counts."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_attack_inputs(model, x, y, ball: Ball | None = None, steps: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Validate an attack's arguments; return (x, y as int64).

    ball: the threat set (its eps, norm and box were checked when it was made); None to
    check x and y alone. Raises ValueError (with the reason) for: x not a float array with
    a batch axis, NaN or inf in x, a y whose length differs from x's, steps not an integer
    >= 0, an eps too large for x's dtype (x ± eps or its square would overflow), x outside
    the ball's box, a model whose output is not logits (N, C), and labels outside the
    model's classes (checked on the logits of the first example). TypeError for non-integer
    labels.
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
    if steps is not None:
        check_count(steps, "steps", 0)
    widest = float(np.sqrt(float(np.finfo(x.dtype).max)))    # eps² is still finite in x's dtype
    if ball is not None and ball.eps > widest:
        raise ValueError(f"eps = {ball.eps:g} is too large for {x.dtype} inputs: x ± eps and "
                         f"its square overflow (at most {widest:.3g})")
    lo, hi = (None, None) if ball is None else (ball.lo, ball.hi)
    if (lo is not None and (x < lo).any()) or (hi is not None and (x > hi).any()):
        raise ValueError(f"x lies outside the box [{lo}, {hi}]; pass lo/hi=None for no box")
    if len(x):
        num_classes = predict(model, x[:1]).shape[1]
        y = F.check_labels(y, num_classes, len(x))
    return x, y.astype(np.int64)


def check_restarts(restarts: int) -> int:
    return check_count(restarts, "restarts", 1)
