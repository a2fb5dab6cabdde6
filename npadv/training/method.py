"""What the training loop asks of a method: one minibatch step, and a few optional hooks.

    class MyMethod(Method):
        name = "mine"
        def step(self, model, optimizer, x, y, rng) -> float: ...   # one minibatch

`eps` is the radius the loop's ε ramp may set before each step (None: the method has no
radius to ramp). `epoch_divisor` divides the number of epochs (Free AT's m). The state
hooks save and restore what the method carries between minibatches, for checkpoints.
"""
from __future__ import annotations

import numpy as np


class Method:
    """Base class of the training methods; subclasses define `name` and `step`."""

    name: str = "method"
    eps: float | None = None
    epoch_divisor: int = 1

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """Train on one minibatch x: (B, ...), y: (B,); return its loss."""
        raise NotImplementedError

    def end_of_epoch(self, model, x_train: np.ndarray, y_train: np.ndarray,
                     epoch: int) -> str | None:
        """Called after each epoch; a non-empty string stops training and says why."""
        return None

    def settings(self) -> dict:
        """The method's scalar attributes (its settings, as long as no step has run)."""
        return {k: v for k, v in sorted(vars(self).items())
                if isinstance(v, (bool, int, float, str, type(None)))}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        pass


class StepFollowsEps:
    """A step α stored as the ratio α/ε, so that when the loop ramps ε the step follows."""

    eps: float
    alpha_ratio: float

    def set_alpha(self, alpha: float | None, default_ratio: float) -> None:
        """α at the target ε (None: default_ratio·ε)."""
        self.alpha_ratio = alpha / self.eps if alpha is not None and self.eps > 0 \
            else default_ratio

    @property
    def alpha(self) -> float:
        return self.alpha_ratio * self.eps
