"""The engine: reverse-mode autograd on NumPy arrays, and its ops.

    tensor.py      Tensor, backward, grad, no_grad / enable_grad
    ops.py         elementwise, matmul, reductions, shapes (each a value and its VJP)
    conv.py        conv2d and max-pool (reference loops beside the im2col fast path)
    functional.py  linear, activations, softmax and cross-entropy
    workspace.py   reused arrays for the fast kernels
    flops.py       the FLOP counter the kernels report to

Nothing here knows about layers (npadv.nn), attacks or training.
"""
from . import functional, ops
from .flops import add_flops, counting_flops
from .tensor import (
    DEFAULT_DTYPE,
    Tensor,
    as_tensor,
    enable_grad,
    grad,
    is_grad_enabled,
    needs_grad,
    no_grad,
    unbroadcast,
)

__all__ = ["DEFAULT_DTYPE", "Tensor", "add_flops", "as_tensor", "counting_flops",
           "enable_grad", "functional", "grad", "is_grad_enabled", "needs_grad", "no_grad",
           "ops", "unbroadcast"]
