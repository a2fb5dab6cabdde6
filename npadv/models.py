"""Reference models, each a Sequential whose first layer (f0 for YOPO) is model[0]."""
from __future__ import annotations

import numpy as np

from .engine import DEFAULT_DTYPE
from .nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential


def mlp(seed: int = 0, dtype=DEFAULT_DTYPE) -> Sequential:
    """784-256-256-10 with ReLU. x: (N, 1, 28, 28) or (N, 784) -> logits (N, 10)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Linear(784, 256, flatten=True, rng=rng, dtype=dtype), ReLU(),
        Linear(256, 256, rng=rng, dtype=dtype), ReLU(),
        Linear(256, 10, rng=rng, dtype=dtype),
    )


def small_cnn(seed: int = 0, dtype=DEFAULT_DTYPE) -> Sequential:
    """conv 1→16 5×5 pad 2, ReLU, pool 2; conv 16→32 5×5 pad 2, ReLU, pool 2; fc 1568→100, ReLU;
    fc 100→10. x: (N, 1, 28, 28) -> logits (N, 10)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 16, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Flatten(), Linear(1568, 100, rng=rng, dtype=dtype), ReLU(),
        Linear(100, 10, rng=rng, dtype=dtype),
    )


def madry_cnn(seed: int = 0, dtype=DEFAULT_DTYPE) -> Sequential:
    """Madry et al. (2018) MNIST model: conv 5×5-32 (same), ReLU, pool 2; conv 5×5-64 (same),
    ReLU, pool 2; fc 3136→1024, ReLU; fc 1024→10. x: (N, 1, 28, 28) -> logits (N, 10)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 32, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Flatten(), Linear(7 * 7 * 64, 1024, rng=rng, dtype=dtype), ReLU(),
        Linear(1024, 10, rng=rng, dtype=dtype),
    )


MODELS = {"mlp": mlp, "small-cnn": small_cnn, "madry-cnn": madry_cnn}


def build_model(name: str, seed: int = 0, dtype=DEFAULT_DTYPE) -> Sequential:
    """A reference model by name: 'mlp', 'small-cnn' or 'madry-cnn' (underscores also accepted)."""
    key = name.replace("_", "-")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[key](seed=seed, dtype=dtype)
