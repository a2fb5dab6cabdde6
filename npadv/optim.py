"""Optimisers (SGD with momentum/Nesterov/weight decay, Adam) and learning-rate schedules.

The update rules follow PyTorch's, so settings carry over from papers' code:
    SGD:  g ← ∇ + wd·θ;  v ← μ·v + g;  θ ← θ − lr·(g + μ·v if nesterov else v)
    Adam: g ← ∇ + wd·θ;  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
          θ ← θ − lr·m̂/(√v̂ + eps) with bias-corrected m̂, v̂
A schedule is a callable from the (fractional) epoch t to a learning rate.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .nn import Parameter


class Optimizer:
    def __init__(self, params: Sequence[Parameter], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimiser got an empty parameter list")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = lr
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _buffers(self) -> dict[str, list[np.ndarray]]:
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Optimiser state as flat arrays (for npz checkpoints, no pickle)."""
        state = {"steps": np.array(self.steps), "lr": np.array(self.lr)}
        for name, bufs in self._buffers().items():
            for i, b in enumerate(bufs):
                state[f"{name}.{i}"] = b.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.steps, self.lr = int(state["steps"]), float(state["lr"])
        for name, bufs in self._buffers().items():
            for i, b in enumerate(bufs):
                key = f"{name}.{i}"
                if key not in state or state[key].shape != b.shape:
                    raise ValueError(f"optimiser state {key!r} missing or of the wrong shape")
                b[...] = state[key]


class SGD(Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def _buffers(self):
        return {"velocity": self.velocity}

    def step(self) -> None:
        self.steps += 1
        for p, v in zip(self.params, self.velocity, strict=True):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                # the first step starts the buffer at g, as PyTorch does
                v[...] = g if self.steps == 1 else self.momentum * v + g
                g = g + self.momentum * v if self.nesterov else v
            p.data -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def _buffers(self):
        return {"m": self.m, "v": self.v}

    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g * g
            p.data -= (self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)


# ---- schedules: t (fractional epoch) -> learning rate --------------------------------
class Constant:
    def __init__(self, lr: float):
        self.lr = lr

    def __call__(self, t: float) -> float:
        return self.lr


class MultiStep:
    """lr · gamma^(number of milestones ≤ t)."""

    def __init__(self, lr: float, milestones: Sequence[float], gamma: float = 0.1):
        self.lr, self.milestones, self.gamma = lr, sorted(milestones), gamma

    def __call__(self, t: float) -> float:
        return self.lr * self.gamma ** sum(t >= m for m in self.milestones)


class Cosine:
    """Cosine annealing from lr to lr_min over `total` epochs."""

    def __init__(self, lr: float, total: float, lr_min: float = 0.0):
        self.lr, self.total, self.lr_min = lr, total, lr_min

    def __call__(self, t: float) -> float:
        frac = min(max(t / self.total, 0.0), 1.0)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * frac))


class Cyclic:
    """Fast AT's piecewise-linear cycle: 0 → lr_max at `peak`·total → 0 at total (Wong 2020)."""

    def __init__(self, lr_max: float, total: float, peak: float = 0.4):
        self.lr_max, self.total, self.peak = lr_max, total, peak

    def __call__(self, t: float) -> float:
        return float(np.interp(t, [0, self.peak * self.total, self.total], [0, self.lr_max, 0]))
