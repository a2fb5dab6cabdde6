"""Interval bound propagation: a certified lower bound on robust accuracy.

Gowal, Dvijotham, Stanforth, Bunel, Qin, Uesato, Arandjelovic, Mann, Kohli, "On the
Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models",
arXiv:1810.12715, 2018 (Sec. 3). Every activation z_k of a feed-forward network is
bounded elementwise, z̲_k ≤ z_k ≤ z̄_k, for all inputs in the threat set:

    1: z̲₀ = max(x − ε, lo),  z̄₀ = min(x + ε, hi)          (the ε-ball ∩ the box [lo, hi])
    2: for an affine layer z_k = W z_{k−1} + b (Linear, Conv2d):
    3:   μ = (z̄ + z̲)/2,  r = (z̄ − z̲)/2                   (centre and radius of the box)
    4:   μ' = W μ + b,  r' = |W| r,  z̲_k = μ' − r',  z̄_k = μ' + r'
    5: for a monotone layer z_k = h(z_{k−1}) (ReLU, max-pool, flatten):
    6:   z̲_k = h(z̲_{k−1}),  z̄_k = h(z̄_{k−1})
    7: the specification, the margin m_j = z_y − z_j of the logits z = W z_{K−1} + b, with
       the last layer folded into it (the paper's "elision"): c_j = W_y − W_j,
       d_j = b_y − b_j, and over the box of z_{K−1}:  m̲_j = c_j μ + d_j − |c_j| r
    8: certified ⇔ m̲_j > 0 for every j ≠ y: no input of the ball changes the prediction

Line 4 is the exact range of an affine map over a box (each output is a sum of terms that
each reach their extremes independently), so a single layer's bounds are tight; through
several layers they loosen, because the box forgets how the units depend on each other.

The bounds are computed in float64 from the model's weights, for the network in exact
arithmetic. A float32 model's own forward pass rounds; its logits may stray from the bounds
by that rounding (about 1e-6 relative), and an example certified with a margin below that
is certified for the exact network, not necessarily for every float32 evaluation of it.
"""
from __future__ import annotations

import math

import numpy as np

from ..attacks.projections import check_radius
from ..engine import Tensor, no_grad, ops
from ..engine import functional as F
from ..nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

Box = tuple[Tensor, Tensor]                   # (lower, upper), the same shape


def input_box(x: np.ndarray, eps: float, lo: float | None = 0.0,
              hi: float | None = 1.0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """1: the L∞ ball of radius eps around x, intersected with [lo, hi] (arrays of dtype)."""
    eps = check_radius(eps, "eps")
    x = np.asarray(x, dtype=np.float64)
    lower, upper = x - eps, x + eps
    if lo is not None:
        lower = np.maximum(lower, lo)
    if hi is not None:
        upper = np.minimum(upper, hi)
    return lower.astype(dtype, copy=False), upper.astype(dtype, copy=False)


def _abs(w: Tensor) -> Tensor:
    """|w| = relu(w) + relu(−w), differentiable with the engine's ops."""
    return ops.relu(w) + ops.relu(-w)


def _weights(layer, trained: bool) -> tuple[Tensor, Tensor | None]:
    """The layer's weight and bias: its Parameters (trained=True, to train through the
    bounds) or float64 copies (to certify)."""
    if trained:
        return layer.weight, layer.bias
    bias = None if layer.bias is None else Tensor(layer.bias.data.astype(np.float64))
    return Tensor(layer.weight.data.astype(np.float64)), bias


def _affine(layer, z: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The layer's affine map with the given weight and bias."""
    if isinstance(layer, Linear):
        if layer.flatten and z.ndim > 2:
            z = ops.reshape(z, z.shape[0], math.prod(z.shape[1:]))
        return F.linear(z, weight, bias)
    return F.conv2d(z, weight, bias, layer.stride, layer.padding)


def affine_bounds(layer, box: Box, trained: bool = False) -> Box:
    """Lines 3-4 for a Linear or Conv2d layer."""
    lower, upper = box
    mu, r = (upper + lower) * 0.5, (upper - lower) * 0.5                   # 3
    weight, bias = _weights(layer, trained)
    mu_out = _affine(layer, mu, weight, bias)                              # 4: W μ + b
    r_out = _affine(layer, r, _abs(weight), None)                          # 4: |W| r
    return mu_out - r_out, mu_out + r_out


def monotone_bounds(layer, box: Box) -> Box:
    """Lines 5-6 for a ReLU, MaxPool2d or Flatten layer."""
    if isinstance(layer, ReLU):
        return ops.relu(box[0]), ops.relu(box[1])
    if isinstance(layer, MaxPool2d):
        return tuple(F.max_pool2d(z, layer.kernel_size, layer.stride, layer.padding)
                     for z in box)
    if isinstance(layer, Flatten):
        return tuple(ops.reshape(z, z.shape[0], math.prod(z.shape[1:])) for z in box)
    raise TypeError(f"interval bounds through {type(layer).__name__} are not defined here; "
                    "the layers are Linear, Conv2d, ReLU, MaxPool2d and Flatten")


def layer_bounds(layer, box: Box, trained: bool = False) -> Box:
    """The box of a layer's output, given the box of its input (lines 2-6)."""
    if isinstance(layer, (Linear, Conv2d)):
        return affine_bounds(layer, box, trained)
    return monotone_bounds(layer, box)


def _layers(model) -> list:
    if not isinstance(model, Sequential):
        raise TypeError(f"interval bounds need a Sequential of Linear, Conv2d, ReLU, "
                        f"MaxPool2d and Flatten layers, got {type(model).__name__}")
    layers = model.layers
    if not layers or not isinstance(layers[-1], Linear):
        raise TypeError("interval bounds need a model whose last layer is a Linear (the "
                        "logits)")
    return layers


def _box(x, eps, lo, hi, trained: bool, model) -> Box:
    dtype = model.layers[0].weight.dtype if trained else np.float64
    lower, upper = input_box(x, eps, lo, hi, dtype=dtype)
    return Tensor(lower), Tensor(upper)


def _propagate(model, x, eps, lo, hi, trained: bool, layers) -> Box:
    box = _box(x, eps, lo, hi, trained, model)                             # 1
    for layer in layers:
        box = layer_bounds(layer, box, trained)                            # 2-6
    return box


def interval_bounds(model, x: np.ndarray, eps: float, lo: float | None = 0.0,
                    hi: float | None = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise float64 bounds (lower, upper) on the logits (N, K) over the ε-ball ∩ box
    around each x (N, ...): lines 1-6 through every layer."""
    with no_grad():
        lower, upper = _propagate(model, x, eps, lo, hi, False, _layers(model))
    return lower.data, upper.data


def margin_lower_bounds(model, x: np.ndarray, y: np.ndarray, eps: float,
                        lo: float | None = 0.0, hi: float | None = 1.0,
                        trained: bool = False) -> Tensor:
    """Line 7 as a Tensor: lower bounds m̲ (N, K) on z_y − z_j over the ε-ball ∩ box, the
    last layer folded into the margin (m̲_y = 0). trained=True computes them in the
    model's dtype from its Parameters, so that a loss on them trains the model (IBP
    training); else in float64, without a graph."""
    layers = _layers(model)
    y = np.asarray(y)
    lower, upper = _propagate(model, x, eps, lo, hi, trained, layers[:-1])  # 1-6
    mu, r = (upper + lower) * 0.5, (upper - lower) * 0.5
    if layers[-1].flatten and mu.ndim > 2:
        mu = ops.reshape(mu, mu.shape[0], math.prod(mu.shape[1:]))
        r = ops.reshape(r, r.shape[0], math.prod(r.shape[1:]))
    weight, bias = _weights(layers[-1], trained)
    n, (k, h) = len(y), weight.shape
    c = ops.reshape(weight[y], n, 1, h) - ops.reshape(weight, 1, k, h)     # 7: c_j (N, K, H)
    margin = (ops.sum(c * ops.reshape(mu, n, 1, h), axis=2)                # 7: c_j μ
              - ops.sum(_abs(c) * ops.reshape(r, n, 1, h), axis=2))        # 7: − |c_j| r
    if bias is not None:
        margin = margin + (ops.reshape(bias[y], n, 1) - ops.reshape(bias, 1, k))  # 7: + d_j
    return margin


def margin_bounds(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
                  hi: float | None = 1.0) -> np.ndarray:
    """Line 7: float64 lower bounds m̲ (N, K) on z_y − z_j over the ε-ball ∩ box;
    m̲_y = +inf (no constraint). x: (N, ...); y: (N,) int."""
    with no_grad():
        margin = margin_lower_bounds(model, x, y, eps, lo, hi).data.copy()
    margin[np.arange(len(margin)), np.asarray(y)] = math.inf
    return margin


def certify(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
            hi: float | None = 1.0, batch_size: int = 500) -> np.ndarray:
    """Line 8: (N,) bool, True where IBP proves that every input of the ε-ball ∩ box around
    x_i is classified y_i (so x_i itself is, too)."""
    x, y = np.asarray(x), np.asarray(y)
    out = [margin_bounds(model, x[i:i + batch_size], y[i:i + batch_size], eps, lo, hi)
           .min(axis=1) > 0 for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
