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
from ..engine import Tensor, no_grad
from ..engine import functional as F
from ..nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential

Box = tuple[np.ndarray, np.ndarray]           # (lower, upper), the same shape


def input_box(x: np.ndarray, eps: float, lo: float | None = 0.0,
              hi: float | None = 1.0) -> Box:
    """1: the L∞ ball of radius eps around x, intersected with [lo, hi], in float64."""
    eps = check_radius(eps, "eps")
    x = np.asarray(x, dtype=np.float64)
    lower, upper = x - eps, x + eps
    if lo is not None:
        lower = np.maximum(lower, lo)
    if hi is not None:
        upper = np.minimum(upper, hi)
    return lower, upper


def _affine(layer, z: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The layer's affine map with the given weight and bias (float64, no graph)."""
    with no_grad():
        if isinstance(layer, Linear):
            if layer.flatten and z.ndim > 2:
                z = z.reshape(len(z), -1)
            return F.linear(Tensor(z), Tensor(weight),
                            None if bias is None else Tensor(bias)).data
        return F.conv2d(Tensor(z), Tensor(weight), None if bias is None else Tensor(bias),
                        layer.stride, layer.padding).data


def _weights(layer) -> tuple[np.ndarray, np.ndarray | None]:
    bias = None if layer.bias is None else layer.bias.data.astype(np.float64)
    return layer.weight.data.astype(np.float64), bias


def affine_bounds(layer, box: Box) -> Box:
    """Lines 3-4 for a Linear or Conv2d layer."""
    lower, upper = box
    mu, r = (upper + lower) / 2, (upper - lower) / 2                       # 3
    weight, bias = _weights(layer)
    mu_out = _affine(layer, mu, weight, bias)                              # 4: W μ + b
    r_out = _affine(layer, r, np.abs(weight), None)                        # 4: |W| r
    return mu_out - r_out, mu_out + r_out


def monotone_bounds(layer, box: Box) -> Box:
    """Lines 5-6 for a ReLU, MaxPool2d or Flatten layer."""
    lower, upper = box
    if isinstance(layer, ReLU):
        return np.maximum(lower, 0), np.maximum(upper, 0)
    if isinstance(layer, MaxPool2d):
        with no_grad():
            pool = [F.max_pool2d(Tensor(z), layer.kernel_size, layer.stride, layer.padding).data
                    for z in box]
        return pool[0], pool[1]
    if isinstance(layer, Flatten):
        return lower.reshape(len(lower), -1), upper.reshape(len(upper), -1)
    raise TypeError(f"interval bounds through {type(layer).__name__} are not defined here; "
                    "the layers are Linear, Conv2d, ReLU, MaxPool2d and Flatten")


def layer_bounds(layer, box: Box) -> Box:
    """The box of a layer's output, given the box of its input (lines 2-6)."""
    if isinstance(layer, (Linear, Conv2d)):
        return affine_bounds(layer, box)
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


def interval_bounds(model, x: np.ndarray, eps: float, lo: float | None = 0.0,
                    hi: float | None = 1.0) -> Box:
    """Elementwise bounds (lower, upper) on the logits (N, K) over the ε-ball ∩ box around
    each x (N, ...): lines 1-6 through every layer."""
    box = input_box(x, eps, lo, hi)                                        # 1
    for layer in _layers(model):
        box = layer_bounds(layer, box)
    return box


def margin_bounds(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
                  hi: float | None = 1.0) -> np.ndarray:
    """Line 7: lower bounds m̲ (N, K) on z_y − z_j over the ε-ball ∩ box, the last layer
    folded into the margin; m̲_y = +inf (no constraint). x: (N, ...); y: (N,) int."""
    layers = _layers(model)
    y = np.asarray(y)
    box = input_box(x, eps, lo, hi)                                        # 1
    for layer in layers[:-1]:
        box = layer_bounds(layer, box)                                     # 2-6
    lower, upper = box
    mu, r = (upper + lower) / 2, (upper - lower) / 2
    if layers[-1].flatten and mu.ndim > 2:
        mu, r = mu.reshape(len(mu), -1), r.reshape(len(r), -1)
    weight, bias = _weights(layers[-1])
    bias = np.zeros(len(weight)) if bias is None else bias
    c = weight[y][:, None, :] - weight[None, :, :]                         # 7: c_j (N, K, H)
    d = bias[y][:, None] - bias[None, :]                                   # 7: d_j (N, K)
    margin = np.einsum("nkh,nh->nk", c, mu) + d - np.einsum("nkh,nh->nk", np.abs(c), r)
    margin[np.arange(len(y)), y] = math.inf
    return margin


def certify(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
            hi: float | None = 1.0, batch_size: int = 500) -> np.ndarray:
    """Line 8: (N,) bool, True where IBP proves that every input of the ε-ball ∩ box around
    x_i is classified y_i (so x_i itself is, too)."""
    x, y = np.asarray(x), np.asarray(y)
    out = [margin_bounds(model, x[i:i + batch_size], y[i:i + batch_size], eps, lo, hi)
           .min(axis=1) > 0 for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
