"""Neural-network functions: activations, the fused log-softmax cross-entropy,
linear, embedding lookup and dropout. conv2d, max_pool2d and relu_max_pool2d live in conv.py."""
from __future__ import annotations

import numpy as np

from . import ops
from .conv import conv2d, max_pool2d, relu_max_pool2d  # noqa: F401  (re-exported)
from .flops import add_flops
from .tensor import Tensor, as_tensor, needs_grad

relu = ops.relu
tanh = ops.tanh
sigmoid = ops.sigmoid


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """Stable log-softmax over the last axis: finite for logits of ±1e4."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax(x) -> Tensor:
    """log softmax over the last axis. x: (..., K)."""
    x = as_tensor(x)
    out = _log_softmax(x.data)

    def vjp(g):
        return (g - np.exp(out) * g.sum(axis=-1, keepdims=True),)

    return Tensor.from_op(out, (x,), vjp)


def check_labels(y, num_classes: int, n: int) -> np.ndarray:
    """Validate integer class labels y: (n,) in [0, num_classes); return them as int64."""
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise TypeError(f"labels must be integers, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels out of range: found {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
    return y.astype(np.int64, copy=False)


def cross_entropy(logits, y, reduction: str = "mean") -> Tensor:
    """Fused log-softmax + negative log-likelihood.

    logits: (N, K) float; y: (N,) int in [0, K). reduction: "mean" | "sum" | "none" (-> (N,)).
    The gradient is (softmax − onehot(y)), scaled by the reduction.

    Raises ValueError for K = 0, and for an empty batch (N = 0) with reduction "mean",
    whose mean over no examples is undefined ("sum" gives 0 and "none" a (0,) array).
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, K), got {logits.shape}")
    n, k = logits.shape
    if k == 0:
        raise ValueError(f"cross_entropy needs at least one class, got logits {logits.shape}")
    if n == 0 and reduction == "mean":
        raise ValueError(f"cross_entropy: empty batch (logits {logits.shape}); the mean "
                         "over 0 examples is undefined")
    y = check_labels(y, k, n)
    logp = _log_softmax(logits.data)
    rows = np.arange(n)
    losses = -logp[rows, y]
    if reduction == "none":
        out, scale = losses, None
    elif reduction == "sum":
        out, scale = losses.sum(), 1.0
    elif reduction == "mean":
        out, scale = losses.mean(), 1.0 / n
    else:
        raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'sum' or 'none'")

    def vjp(g):
        dlogits = np.exp(logp)
        dlogits[rows, y] -= 1
        weight = g[:, None] if scale is None else g * scale
        return ((dlogits * weight).astype(logits.dtype, copy=False),)

    return Tensor.from_op(np.asarray(out, dtype=logits.dtype), (logits,), vjp)


def linear(x, w, b=None) -> Tensor:
    """x @ w.T + b. x: (..., in); w: (out, in); b: (out,) or None -> (..., out).

    One op (as matmul, transpose and add would compute it): gx = g @ w, gw = gᵀ @ x,
    gb = Σ g over the batch; gx is skipped when x does not require a gradient.
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    if x.ndim < 1 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input {x.shape} does not fit weight {w.shape}")
    out = x.data @ w.data.T                                              # (..., out)
    if b is not None and b.dtype == out.dtype:
        out += b.data                                                    # in place: no copy
    elif b is not None:
        out = out + b.data
    flops = 2 * out.size * w.shape[1]
    add_flops(flops)

    def vjp(g):
        g2 = g.reshape(-1, g.shape[-1])                                  # (batch, out)
        gx = gw = gb = None
        if needs_grad(x):
            gx = (g @ w.data).astype(x.dtype, copy=False)
            add_flops(flops)
        if needs_grad(w):
            gw = (g2.T @ x.data.reshape(-1, x.shape[-1])).astype(w.dtype, copy=False)
            add_flops(flops)
        if b is not None and needs_grad(b):
            gb = g2.sum(axis=0).astype(b.dtype, copy=False)
        return gx, gw, gb

    parents = (x, w) if b is None else (x, w, b)
    return Tensor.from_op(out, parents, vjp)


def embedding(ids, table) -> Tensor:
    """Rows of `table` at `ids`. ids: int array of any shape; table: (V, d) -> (*ids.shape, d).

    Repeated indices accumulate their gradients into the same row.
    """
    table = as_tensor(table)
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError(
            f"embedding ids out of range: {ids.min()}..{ids.max()} for {table.shape[0]} rows")

    def vjp(g):
        gt = np.zeros_like(table.data)
        np.add.at(gt, ids.ravel(), g.reshape(-1, table.shape[1]))
        return (gt,)

    return Tensor.from_op(table.data[ids], (table,), vjp)


def dropout(x, p: float, training: bool, rng: np.random.Generator) -> Tensor:
    """Inverted dropout: zero each entry with probability p and scale the rest by 1/(1−p).

    The identity when not training or p == 0.
    """
    x = as_tensor(x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return ops.mul(x, keep)
