"""Differentiable ops: each is a forward value plus its vector-Jacobian product.

Elementwise ops broadcast like NumPy; `unbroadcast` sums the gradient back to each
input's shape. A constant operand (ndarray or Python number) takes the Tensor's dtype,
so float32 stays float32.
"""
from __future__ import annotations

import numpy as np

from .flops import add_flops
from .tensor import Tensor, as_tensor, needs_grad, unbroadcast
from .workspace import recycled_like, scratch_like


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Make both operands Tensors; a constant takes the other operand's float dtype."""
    if not isinstance(a, Tensor):
        a = Tensor(np.asarray(a, dtype=b.dtype if b.dtype.kind == "f" else None))
    if not isinstance(b, Tensor):
        b = Tensor(np.asarray(b, dtype=a.dtype if a.dtype.kind == "f" else None))
    return a, b


# ---- elementwise binary ------------------------------------------------------------
def add(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data + b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))


def sub(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data - b.data, (a, b),
                          lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))


def mul(a, b) -> Tensor:
    a, b = _pair(a, b)
    return Tensor.from_op(a.data * b.data, (a, b),
                          lambda g: (unbroadcast(g * b.data, a.shape),
                                     unbroadcast(g * a.data, b.shape)))


def div(a, b) -> Tensor:
    a, b = _pair(a, b)
    out = a.data / b.data
    return Tensor.from_op(out, (a, b),
                          lambda g: (unbroadcast(g / b.data, a.shape),
                                     unbroadcast(-g * out / b.data, b.shape)))


def pow(a, b) -> Tensor:
    """a ** b; the gradient w.r.t. b needs a > 0 (it uses log a)."""
    a, b = _pair(a, b)
    out = a.data ** b.data

    def vjp(g):
        ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape)
        gb = None
        if needs_grad(b):
            gb = unbroadcast(g * out * np.log(a.data), b.shape)
        return ga, gb

    return Tensor.from_op(out, (a, b), vjp)


def matmul(a, b) -> Tensor:
    """a @ b for a: (..., M, K), b: (..., K, N) -> (..., M, N); FLOPs counted."""
    a, b = _pair(a, b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul needs operands with ndim >= 2, got {a.shape} and {b.shape}")
    out = a.data @ b.data
    k = a.shape[-1]
    add_flops(2 * out.size * k)

    def vjp(g):
        ga = gb = None
        if needs_grad(a):
            ga = unbroadcast(g @ np.swapaxes(b.data, -1, -2), a.shape)
            add_flops(2 * out.size * k)
        if needs_grad(b):
            gb = unbroadcast(np.swapaxes(a.data, -1, -2) @ g, b.shape)
            add_flops(2 * out.size * k)
        return ga, gb

    return Tensor.from_op(out, (a, b), vjp)


# ---- elementwise unary -------------------------------------------------------------
def neg(a: Tensor) -> Tensor:
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,))


def exp(a: Tensor) -> Tensor:
    out = np.exp(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    return Tensor.from_op(np.log(a.data), (a,), lambda g: (g / a.data,))


def relu(a: Tensor) -> Tensor:
    # outputs in reused memory, in the memory order of a and g (see workspace.py)
    out = np.maximum(a.data, 0, out=recycled_like(a.data))

    def vjp(g):
        positive = np.greater(out, 0, out=scratch_like("relu_mask", out, bool))
        return (np.multiply(g, positive, out=recycled_like(g)),)

    return Tensor.from_op(out, (a,), vjp)


def tanh(a: Tensor) -> Tensor:
    out = np.tanh(a.data)
    return Tensor.from_op(out, (a,), lambda g: (g * (1 - out * out),))


def sigmoid(a: Tensor) -> Tensor:
    # exp of -|x| only, so no overflow for large |x|
    e = np.exp(-np.abs(a.data))
    out = np.where(a.data >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
    return Tensor.from_op(out, (a,), lambda g: (g * out * (1 - out),))


def astype(a: Tensor, dtype) -> Tensor:
    return Tensor.from_op(a.data.astype(dtype), (a,), lambda g: (g.astype(a.dtype),))


# ---- reductions --------------------------------------------------------------------
def _expand(g: np.ndarray, shape, axis, keepdims: bool) -> np.ndarray:
    """Broadcast a reduced gradient back to `shape`."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Tensor.from_op(a.data.sum(axis=axis, keepdims=keepdims), (a,),
                          lambda g: (_expand(g, a.shape, axis, keepdims),))


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    out = a.data.mean(axis=axis, keepdims=keepdims)
    count = a.data.size // out.size if out.size else 1
    return Tensor.from_op(out, (a,), lambda g: (_expand(g / count, a.shape, axis, keepdims),))


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum; the gradient is shared equally among tied maxima."""
    out = a.data.max(axis=axis, keepdims=keepdims)

    def vjp(g):
        top = a.data == _expand(out, a.shape, axis, keepdims)
        share = top / top.sum(axis=axis, keepdims=True)
        return (_expand(g, a.shape, axis, keepdims) * share,)

    return Tensor.from_op(out, (a,), vjp)


# ---- shape -------------------------------------------------------------------------
def reshape(a: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Tensor.from_op(a.data.reshape(shape), (a,), lambda g: (g.reshape(a.shape),))


def transpose(a: Tensor, *axes) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    axes = axes or tuple(reversed(range(a.ndim)))
    inverse = np.argsort(axes)
    return Tensor.from_op(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),))


def concat(tensors, axis: int = -1) -> Tensor:
    """np.concatenate of Tensors along `axis`; the gradient is split back into the pieces."""
    tensors = [as_tensor(t) for t in tensors]
    axis = axis % tensors[0].ndim
    cuts = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    data = np.concatenate([t.data for t in tensors], axis=axis)
    return Tensor.from_op(data, tensors, lambda g: tuple(np.split(g, cuts, axis=axis)))


def getitem(a: Tensor, index) -> Tensor:
    """a[index], basic or advanced; repeated indices accumulate in the gradient."""
    if isinstance(index, Tensor):
        index = index.data

    def vjp(g):
        ga = np.zeros_like(a.data)
        np.add.at(ga, index, g)
        return (ga,)

    return Tensor.from_op(a.data[index], (a,), vjp)
