"""What the training loop asks of a method: one minibatch step, and a few optional hooks.

    class MyMethod(Method):
        name, title, paper = "mine", "My AT", "Me et al., 2027"
        summary = "what one minibatch step does, and its passes"
        flags = {"steps": "ascent steps K"}        # the settings users may give, with help
        def __init__(self, eps: float = 0.1, steps: int = 3, lo=0.0, hi=1.0): ...
        def step(self, model, optimizer, x, y, rng) -> float: ...   # one minibatch

A method declares itself once, in its class: its name (the CLI's --method), the task it
trains (image: a minibatch is (x, y); text: (ids, mask, y), and step takes them in that
order), its paper, a one-line summary, the paper's claim, and `flags`, the settings a user
may give by keyword with their help. Each flag is a constructor parameter of the same name,
unless `params` maps it to another (YOPO's yopo_m is its m). The constructor's signature
holds every default; where a default is None and derived from other settings, `derived`
says how (e.g. α = 2.5ε/K). npadv.methods lists the classes and reads all of this for
build_method, the CLI's help and the README's table.

`eps` is the radius the loop's ε ramp may set before each step (None: the method has no
radius to ramp). `epoch_divisor` divides the number of epochs (Free AT's m). The state
hooks save and restore what the method carries between minibatches, for checkpoints.
"""
from __future__ import annotations

import math

import numpy as np

from ..attacks.arguments import check_count
from ..attacks.projections import check_radius

__all__ = ["IMAGE_EPS", "Method", "StepFollowsEps", "check_count", "check_eps", "check_radius"]

IMAGE_EPS = 0.1   # the default L∞ radius of every image method (the papers' MNIST runs use 0.3)
_MIN_NORMAL = float(np.finfo(np.float64).tiny)      # 2.2e-308; smaller and nonzero: subnormal


def check_eps(eps, name: str = "eps") -> float:
    """A method's radius ε as a float: a usable radius (`check_radius`: finite, >= 0, at
    most 1e150) that is 0 or at least the smallest normal float64, 2.2e-308, since step
    sizes are stored as ratios α/ε and dividing by a subnormal overflows. ValueError
    naming `name` otherwise."""
    value = check_radius(eps, name)
    if 0 < value < _MIN_NORMAL:
        raise ValueError(f"{name} must be 0 or at least {_MIN_NORMAL:.3g} (smaller values "
                         f"are subnormal and overflow when divided by), got {value:.3g}")
    return value


class Method:
    """Base class of the training methods; subclasses define `name` and `step`."""

    name: str = "method"
    task: str = "image"
    title: str = ""
    paper: str = ""
    summary: str = ""
    claim: str = ""
    claim_kind: str | None = None   # how the comparison judges the claim: "time" (reaches
    # PGD-AT's robustness in less time), "robustness" (at least PGD-AT's robustness at a
    # small clean cost), "reference" (PGD-AT itself); None: not judged on L∞ images
    claim_ratio: float | None = None  # "time" claims: the claimed time to robustness as a
    # fraction of PGD-7-AT's (YOPO: 1/5)
    claim_ratio_says: str = ""        # where that fraction comes from, in a few words
    flags: dict[str, str] = {}
    params: dict[str, str] = {}
    derived: dict[str, str] = {}

    eps: float | None = None
    norm: str = "linf"            # the norm of the ball eps is the radius of
    epoch_divisor: int = 1

    def step(self, model, optimizer, x: np.ndarray, y: np.ndarray,
             rng: np.random.Generator) -> float:
        """Train on one minibatch x: (B, ...), y: (B,); return its loss."""
        raise NotImplementedError

    def end_of_epoch(self, model, x_train: np.ndarray, y_train: np.ndarray,
                     epoch: int) -> str | None:
        """Called after each epoch; a non-empty string stops training and says why."""
        return None

    def epoch_log(self) -> dict:
        """Figures of the method's own, logged with the epoch that just ended (after
        end_of_epoch): numbers, strings or None."""
        return {}

    def threat_model(self) -> dict | None:
        """{"norm", "eps"}: the ball it trains against, at its (target) ε; None if it has
        none (natural training). Recorded in checkpoints; `npadv eval` defaults to it."""
        return None if self.eps is None else {"norm": self.norm, "eps": float(self.eps)}

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
        """α at the target ε (None: default_ratio·ε).

        Raises ValueError for an alpha that is not a usable step (see `check_radius`), or
        one so large against ε that the ratio α/ε overflows.
        """
        if alpha is not None:
            check_radius(alpha, "alpha")
        if alpha is not None and self.eps > 0:
            ratio = alpha / self.eps
            if not math.isfinite(ratio):
                raise ValueError(f"alpha / eps = {alpha:g} / {self.eps:g} overflows; give a "
                                 "smaller alpha or a larger eps")
            self.alpha_ratio = ratio
        else:
            self.alpha_ratio = default_ratio

    @property
    def alpha(self) -> float:
        return self.alpha_ratio * self.eps
