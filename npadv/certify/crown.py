"""CROWN: linear bounds propagated backwards, tighter than intervals.

Zhang, Weng, Chen, Hsieh, Daniel, "Efficient Neural Network Robustness Certification with
General Activation Functions", NeurIPS 2018, and its use with interval bounds for the
intermediate layers, CROWN-IBP (Zhang, Chen, Xiao, Gowal, Stanforth, Li, Boning, Hsieh,
ICLR 2020). The specification, the margins m = C z (c_j = e_y − e_j), is written as a
linear function of each earlier layer in turn, from the logits back to the input; where a
layer is not linear, it is replaced by a linear function that bounds it from below or from
above over the box of its input (from interval bound propagation, npadv.certify.ibp):

    1: Λ ← C (N, S, K),  β ← 0                           (the margin: m = Λ z_K + β)
    2: for the layers from the last to the first:
    3:   affine z = W h + b:    β ← β + Λ b,  Λ ← Λ W    (Λ W through the layer's transpose)
    4:   ReLU h = relu(z), z ∈ [l, u]:
           active (l ≥ 0): h = z;  inactive (u ≤ 0): h = 0;  unstable (l < 0 < u):
           a z ≤ h ≤ s (z − l),  s = u/(u − l),  a = 1 if u ≥ −l else 0
           Λ ≥ 0 takes the lower line, Λ < 0 the upper:  β ← β − Λ⁻ s l,
           Λ ← Λ⁺ a + Λ⁻ s
    5:   max-pool h = max_i z_i over a window:  z_{i*} ≤ h ≤ max_i u_i  (i* the largest
           lower bound): Λ⁺ goes to z_{i*}, and β ← β + Λ⁻ max_i u_i
    6:   flatten: Λ takes the input's shape
    7: at the input box [z̲₀, z̄₀] = ε-ball ∩ [lo, hi], with μ, r its centre and radius:
       m̲ = Λ μ − |Λ| r + β
    8: certified ⇔ m̲_j > 0 for every j ≠ y

Every line replaces a function by a bound that holds over the whole box, so m̲ is a sound
lower bound; the relaxation of line 4 keeps the dependence between units that intervals
lose, so it is usually much tighter. `margin_bounds` returns, elementwise, the larger of
CROWN's and IBP's bound: both are sound, so their maximum is, and it is never looser than
IBP's. In float64, for the network in exact arithmetic (see npadv.certify.ibp).
"""
from __future__ import annotations

import math

import numpy as np

from ..engine import Tensor, grad, no_grad
from ..engine import functional as F
from ..nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from . import ibp


def _boxes(model, x, eps, lo, hi) -> tuple[list, tuple[np.ndarray, np.ndarray]]:
    """IBP's box of every layer's input (float64 arrays), and the input box itself."""
    layers = ibp._layers(model)
    lower, upper = ibp.input_box(x, eps, lo, hi)
    box = (Tensor(lower), Tensor(upper))
    boxes = []
    with no_grad():
        for layer in layers:
            boxes.append((box[0].data, box[1].data))
            box = ibp.layer_bounds(layer, box)
    return boxes, (lower, upper)


def _transpose(layer, lam: np.ndarray, in_shape: tuple) -> np.ndarray:
    """3: Λ W, the coefficients (N, S, *in_shape) on the layer's input, for Λ (N, S, *out)."""
    n, s = lam.shape[:2]
    weight = Tensor(layer.weight.data.astype(np.float64))
    if isinstance(layer, Linear):
        out = lam.reshape(n, s, -1) @ weight.data                          # (N, S, in)
        return out.reshape(n, s, *in_shape)
    z = Tensor(np.zeros((n * s, *in_shape)), requires_grad=True)       # the transpose of
    out = F.conv2d(z, weight, None, layer.stride, layer.padding)       # a linear map is its
    (g,) = grad(out, [z], lam.reshape(n * s, *out.shape[1:]))          # vector-Jacobian
    return g.reshape(n, s, *in_shape)                                  # product


def _bias_term(layer, lam: np.ndarray) -> np.ndarray:
    """3: Λ b, (N, S)."""
    if layer.bias is None:
        return np.zeros(lam.shape[:2])
    b = layer.bias.data.astype(np.float64)
    if isinstance(layer, Linear):
        return lam.reshape(*lam.shape[:2], -1) @ b
    return np.einsum("nsc,c->ns", lam.reshape(*lam.shape[:3], -1).sum(axis=3), b)


def _relu(lam: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    """4: (Λ on the pre-activation, the term added to β)."""
    unstable = (lower < 0) & (upper > 0)
    width = np.where(unstable, upper - lower, 1.0)
    s = np.where(lower >= 0, 1.0, np.where(unstable, upper / width, 0.0))    # upper slope
    a = np.where(lower >= 0, 1.0, np.where(unstable, (upper >= -lower) * 1.0, 0.0))
    offset = np.where(unstable, -s * lower, 0.0)                             # s (z − l)
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    beta = np.sum((neg * offset[:, None]).reshape(*lam.shape[:2], -1), axis=2)
    return pos * a[:, None] + neg * s[:, None], beta


def _max_pool(layer, lam: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    """5: Λ⁺ routed to each window's largest lower bound, Λ⁻ times the window's largest
    upper bound into β."""
    n, s = lam.shape[:2]
    pos, neg = np.maximum(lam, 0), np.minimum(lam, 0)
    with no_grad():
        top = F.max_pool2d(Tensor(upper), layer.kernel_size, layer.stride, layer.padding).data
    beta = np.sum((neg * top[:, None]).reshape(n, s, -1), axis=2)
    z = Tensor(np.repeat(lower, s, axis=0), requires_grad=True)          # i* = argmax of l:
    out = F.max_pool2d(z, layer.kernel_size, layer.stride, layer.padding)  # max-pool's VJP
    (g,) = grad(out, [z], pos.reshape(n * s, *out.shape[1:]))           # routes Λ⁺ there
    return g.reshape(n, s, *lower.shape[1:]), beta


def crown_margin_bounds(model, x: np.ndarray, y: np.ndarray, eps: float,
                        lo: float | None = 0.0, hi: float | None = 1.0) -> np.ndarray:
    """Lines 1-7: CROWN's lower bounds m̲ (N, K) on z_y − z_j over the ε-ball ∩ box, with
    IBP's boxes for the layers' inputs; m̲_y = +inf. x: (N, ...); y: (N,) int."""
    layers = ibp._layers(model)
    y = np.asarray(y)
    boxes, (lower0, upper0) = _boxes(model, x, eps, lo, hi)
    n, k = len(y), layers[-1].weight.shape[0]
    lam = np.eye(k)[y][:, None, :] - np.eye(k)[None, :, :]                  # 1: C (N, K, K)
    beta = np.zeros((n, k))
    for layer, (lower, upper) in zip(reversed(layers), reversed(boxes), strict=True):
        if isinstance(layer, (Linear, Conv2d)):                             # 3
            beta = beta + _bias_term(layer, lam)
            in_shape = lower.shape[1:]
            if isinstance(layer, Linear) and layer.flatten:
                lam = _transpose(layer, lam, (math.prod(in_shape),)).reshape(n, k, *in_shape)
            else:
                lam = _transpose(layer, lam, in_shape)
        elif isinstance(layer, ReLU):                                       # 4
            lam, extra = _relu(lam, lower, upper)
            beta = beta + extra
        elif isinstance(layer, MaxPool2d):                                  # 5
            lam, extra = _max_pool(layer, lam, lower, upper)
            beta = beta + extra
        elif isinstance(layer, Flatten):                                    # 6
            lam = lam.reshape(n, k, *lower.shape[1:])
        else:
            raise TypeError(f"CROWN through {type(layer).__name__} is not defined here")
    mu, r = (upper0 + lower0) / 2, (upper0 - lower0) / 2                    # 7
    flat = lam.reshape(n, k, -1)
    margin = (np.einsum("nkd,nd->nk", flat, mu.reshape(n, -1))
              - np.einsum("nkd,nd->nk", np.abs(flat), r.reshape(n, -1)) + beta)
    margin[np.arange(n), y] = math.inf
    return margin


def margin_bounds(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
                  hi: float | None = 1.0) -> np.ndarray:
    """The larger of CROWN's and IBP's lower bounds on the margins, (N, K); m̲_y = +inf."""
    return np.maximum(crown_margin_bounds(model, x, y, eps, lo, hi),
                      ibp.margin_bounds(model, x, y, eps, lo, hi))


def certify(model, x: np.ndarray, y: np.ndarray, eps: float, lo: float | None = 0.0,
            hi: float | None = 1.0, batch_size: int = 100) -> np.ndarray:
    """Line 8 with `margin_bounds`: (N,) bool, True where CROWN (or IBP) proves that every
    input of the ε-ball ∩ box around x_i is classified y_i."""
    x, y = np.asarray(x), np.asarray(y)
    out = [margin_bounds(model, x[i:i + batch_size], y[i:i + batch_size], eps, lo, hi)
           .min(axis=1) > 0 for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
