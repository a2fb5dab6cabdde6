"""Gradient checking against finite differences, for npadv ops or any function of Tensors.

    gradcheck(f, [x, w])    central differences, element by element (small inputs)
    vjp_check(f, [x, w])    ⟨v, J·u⟩ from backprop against a numerical directional
                            derivative along random directions u: cheap, covers the whole Jacobian

`f` takes Tensors and returns a Tensor of any shape. Use float64 inputs. A failure
raises GradcheckError naming the input and the element (or direction) that failed.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    pass


def _analytic(f, inputs: Sequence[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    """∇ of ⟨v, f(inputs)⟩ w.r.t. each input by backprop."""
    tensors = [Tensor(x.copy(), requires_grad=True) for x in inputs]
    out = f(*tensors)
    out.backward(v)
    return [t.grad if t.grad is not None else np.zeros_like(t.data) for t in tensors]


def _value(f, inputs: Sequence[np.ndarray], v: np.ndarray) -> float:
    return float(np.sum(v * f(*[Tensor(x) for x in inputs]).data))


def numerical_grad(f: Callable[..., Tensor], inputs: Sequence[np.ndarray], v: np.ndarray,
                   h: float = 1e-6) -> list[np.ndarray]:
    """Central differences of ⟨v, f(inputs)⟩, one element at a time."""
    grads = []
    for i, x in enumerate(inputs):
        g = np.zeros_like(x, dtype=np.float64)
        for idx in np.ndindex(x.shape):
            shifted = [a.copy() for a in inputs]
            shifted[i][idx] = x[idx] + h
            up = _value(f, shifted, v)
            shifted[i][idx] = x[idx] - h
            down = _value(f, shifted, v)
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _check_dtypes(inputs):
    arrays = [np.asarray(x.data if isinstance(x, Tensor) else x) for x in inputs]
    for i, a in enumerate(arrays):
        if a.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs; input {i} is {a.dtype}")
    return arrays


def gradcheck(f: Callable[..., Tensor], inputs: Sequence, rtol: float = 1e-5, atol: float = 1e-7,
              h: float = 1e-6, seed: int = 0) -> bool:
    """Compare backprop gradients of ⟨v, f⟩ (v random) with central differences, every element.

    Returns True; raises GradcheckError naming input i and the element index that failed.
    """
    arrays = _check_dtypes(inputs)
    out = f(*[Tensor(a) for a in arrays])
    v = np.random.default_rng(seed).standard_normal(out.shape)
    analytic = _analytic(f, arrays, v)
    numeric = numerical_grad(f, arrays, v, h)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        bad = ~np.isclose(a, n, rtol=rtol, atol=atol)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of input {i} wrong at element {idx}: backprop {a[idx]!r}, "
                f"finite difference {n[idx]!r} ({int(bad.sum())} of {bad.size} elements differ)")
    return True


def vjp_check(f: Callable[..., Tensor], inputs: Sequence, n_directions: int = 3,
              rtol: float = 1e-5, atol: float = 1e-7, h: float = 1e-6, seed: int = 0) -> bool:
    """Check ⟨v, J_i u⟩ = ⟨VJP_i(v), u⟩ for each input i along random directions u.

    The left side is a central difference of ⟨v, f⟩ along u; the right side uses backprop.
    """
    arrays = _check_dtypes(inputs)
    rng = np.random.default_rng(seed)
    out = f(*[Tensor(a) for a in arrays])
    for k in range(n_directions):
        v = rng.standard_normal(out.shape)
        analytic = _analytic(f, arrays, v)
        for i, x in enumerate(arrays):
            u = rng.standard_normal(x.shape)
            up = [a.copy() for a in arrays]
            up[i] = x + h * u
            down = [a.copy() for a in arrays]
            down[i] = x - h * u
            numeric = (_value(f, up, v) - _value(f, down, v)) / (2 * h)
            backprop = float(np.sum(analytic[i] * u))
            if not np.isclose(backprop, numeric, rtol=rtol, atol=atol):
                raise GradcheckError(
                    f"VJP of input {i} wrong along random direction {k}: backprop "
                    f"{backprop!r}, finite difference {numeric!r}")
    return True
