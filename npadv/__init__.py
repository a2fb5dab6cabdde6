"""npadv: adversarial training in pure NumPy.

Its own reverse-mode autograd (npadv.engine: Tensor, grad), layers (npadv.nn), reference
models, attacks (npadv.attacks) and training methods (npadv.training), each written like
its paper.
"""
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import nn, optim
from .cost import CostMeter, cost
from .engine import (
    Tensor,
    as_tensor,
    enable_grad,
    functional,
    grad,
    is_grad_enabled,
    no_grad,
    ops,
    unbroadcast,
)
from .models import build_model, madry_cnn, mlp, small_cnn

try:
    __version__ = _version("npadv")        # the one source is pyproject.toml
except PackageNotFoundError:               # imported from a source tree that is not installed
    __version__ = "unknown"

__all__ = [
    "Tensor", "as_tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast",
    "cost", "CostMeter", "functional", "ops", "nn", "optim", "mlp", "small_cnn", "madry_cnn",
    "build_model",
]
