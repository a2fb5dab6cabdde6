"""Gradient checks against finite differences, for npadv ops or any function of Tensors.

    assert_gradients(f, x, w)   every element of every input: backprop against a finite
                                difference in float64, tolerances chosen by the inputs' dtype
    assert_vjp(f, x, w)         ⟨VJP(v), u⟩ against the derivative along directions u:
                                random ones, and ones that keep equal values equal and zeros
                                at zero (cheap, and covers the whole Jacobian)
    gradcheck(f, [x, w]), vjp_check(f, [x, w])    the same checks for float64 inputs that
                                also compare at kinks; they return True

Both look at φ(t) = ⟨v, f(x + t·u)⟩, v a random cotangent, at t = 0, ±h, ±2h:

    c(s)  = (φ(s) − φ(−s)) / 2s,   slope = (4c(h) − c(2h)) / 3      error O(h⁴)
    jump  = 2Δ(h) − Δ(2h),  Δ(s) = (φ(s) − 2φ(0) + φ(−s)) / s      ≈ φ'(0+) − φ'(0−)

For smooth φ both `jump` and c(2h) − c(h) are O(h²). A kink (relu at exactly 0, a tie in
a max) makes `jump` the difference of the one-sided derivatives, and a kink in φ' makes
c(2h) − c(h) of order h. There is then no single derivative the finite differences can
resolve, so that element or direction is counted as a kink and skipped. Along a direction
that keeps ties tied and zeros at zero there is no kink, and every valid rule must match
the derivative: that is where a backward that hands a tied window's gradient to every
tied tap fails. A failure raises GradcheckError naming the input, the element or
direction, the expected and the backprop value.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from .tensor import Tensor

__all__ = ["GradcheckError", "Report", "TOLERANCES", "assert_gradients", "assert_vjp",
           "gradcheck", "vjp_check"]

# (rtol, atol) for backprop against float64 finite differences, by the inputs' dtype
TOLERANCES = {np.dtype(np.float64): (1e-5, 1e-7), np.dtype(np.float32): (2e-3, 2e-4)}


class GradcheckError(AssertionError):
    pass


class Report(NamedTuple):
    """What a check compared: `checked` elements or directions, and `kinks` it skipped."""
    checked: int
    kinks: int


def _arrays(inputs: Sequence, float64_only: bool) -> list[np.ndarray]:
    arrays = [np.asarray(x.data if isinstance(x, Tensor) else x) for x in inputs]
    for i, a in enumerate(arrays):
        if float64_only and a.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 inputs; input {i} is {a.dtype}")
        if a.dtype not in TOLERANCES:
            raise TypeError(f"input {i} has dtype {a.dtype}; expected float32 or float64")
    return arrays


def _tolerances(arrays, rtol, atol) -> tuple[float, float]:
    default = TOLERANCES[np.result_type(*arrays)]
    return (default[0] if rtol is None else rtol), (default[1] if atol is None else atol)


def _backprop(f, arrays: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    """∇ of ⟨v, f(inputs)⟩ with respect to each input, in the inputs' dtypes."""
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    f(*tensors).backward(v)
    grads = []
    for i, (t, a) in enumerate(zip(tensors, arrays, strict=True)):
        g = np.zeros_like(a) if t.grad is None else np.asarray(t.grad)
        if g.shape != a.shape:
            raise GradcheckError(f"gradient of input {i} has shape {g.shape}, "
                                 f"expected {a.shape}")
        grads.append(g)
    return grads


class _Line:
    """φ(t) = ⟨v, f(x + t·u)⟩ in float64, and its slope and jump at t = 0."""

    def __init__(self, f, arrays: list[np.ndarray], v: np.ndarray, h: float):
        self.f, self.x, self.v, self.h = f, [a.astype(np.float64) for a in arrays], v, h
        self.phi0 = self._phi([np.zeros_like(a) for a in self.x], 0.0)

    def _phi(self, u: list[np.ndarray], t: float) -> float:
        out = self.f(*[Tensor(np.asarray(a + t * d)) for a, d in zip(self.x, u, strict=True)])
        return float(np.sum(self.v * out.data))

    def slope(self, u: list[np.ndarray]) -> tuple[float, bool]:
        """(slope along u, whether φ has a kink within 2h of 0)."""
        h, f0 = self.h, self.phi0
        p1, m1, p2, m2 = (self._phi(u, t) for t in (h, -h, 2 * h, -2 * h))
        c1, c2 = (p1 - m1) / (2 * h), (p2 - m2) / (4 * h)
        slope = (4 * c1 - c2) / 3
        jump = 2 * (p1 - 2 * f0 + m1) / h - (p2 - 2 * f0 + m2) / (2 * h)
        # For smooth φ, jump = O(h²) and c2 − c1 = O(h²). A kink makes jump the difference
        # of the one-sided slopes; a jump in φ'' (a product of two kinks) makes c2 − c1 O(h).
        rtol, atol = TOLERANCES[np.dtype(np.float64)]
        noise = 64 * np.finfo(np.float64).eps * (abs(f0) + abs(p1) + abs(m1) + abs(p2)
                                                 + abs(m2)) / h
        limit = atol + rtol * abs(slope) + noise
        return slope, abs(jump) > limit or abs(c2 - c1) > limit


def assert_gradients(f: Callable[..., Tensor], *inputs, rtol: float | None = None,
                     atol: float | None = None, h: float = 1e-6, seed: int = 0,
                     kinks: str = "skip") -> Report:
    """Backprop gradient of ⟨v, f(*inputs)⟩ (v random) against finite differences, element
    by element. inputs: float32 or float64 arrays (or Tensors); f is evaluated on float64
    copies for the differences. kinks: "skip" elements where the one-sided differences
    disagree, or "compare" them too. Raises GradcheckError at the first wrong element.
    """
    arrays = _arrays(inputs, float64_only=False)
    rtol, atol = _tolerances(arrays, rtol, atol)
    out = f(*[Tensor(a) for a in arrays])
    v = np.random.default_rng(seed).standard_normal(out.shape)
    grads = _backprop(f, arrays, v)
    line = _Line(f, arrays, v, h)
    checked = skipped = 0
    for i, (a, g) in enumerate(zip(arrays, grads, strict=True)):
        expected = np.full(a.shape, np.nan)
        for idx in np.ndindex(a.shape):
            u = [np.zeros(b.shape) for b in arrays]
            u[i][idx] = 1.0
            slope, kink = line.slope(u)
            if kinks == "skip" and kink:
                skipped += 1
                continue
            expected[idx] = slope
            checked += 1
        bad = ~np.isnan(expected) & ~np.isclose(g, expected, rtol=rtol, atol=atol)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradient of input {i} wrong at element {idx}: expected {float(expected[idx])!r} "
                f"(finite difference), got {float(g[idx])!r} (backprop); {int(bad.sum())} of "
                f"{bad.size} elements differ")
    return Report(checked, skipped)


def _tie_direction(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """A random direction that is equal on equal values (across all inputs) and 0 on zeros."""
    values = np.concatenate([a.ravel() for a in arrays]).astype(np.float64)
    unique, inverse = np.unique(values, return_inverse=True)
    r = np.where(unique == 0, 0.0, rng.standard_normal(unique.size))[inverse.ravel()]
    return np.split(r, np.cumsum([a.size for a in arrays])[:-1])


def assert_vjp(f: Callable[..., Tensor], *inputs, directions: int = 3,
               rtol: float | None = None, atol: float | None = None, h: float = 1e-6,
               seed: int = 0, kinks: str = "skip", ties: bool = True) -> Report:
    """⟨VJP(v), u⟩ from backprop against the derivative of ⟨v, f⟩ along u, for `directions`
    random cotangents v. For each v: a random u for each input; with ties=True also u
    equal on equal values and 0 on exact zeros, for each input and for all inputs at once.
    """
    arrays = _arrays(inputs, float64_only=False)
    rtol, atol = _tolerances(arrays, rtol, atol)
    rng = np.random.default_rng(seed)
    out = f(*[Tensor(a) for a in arrays])
    checked = skipped = 0
    for k in range(directions):
        v = rng.standard_normal(out.shape)
        grads = _backprop(f, arrays, v)
        line = _Line(f, arrays, v, h)
        cases = []
        for i, a in enumerate(arrays):
            u = [np.zeros(b.shape) for b in arrays]
            u[i] = rng.standard_normal(a.shape)
            cases.append((f"input {i}", "random", u))
        if ties:
            tied = [d.reshape(a.shape)
                    for d, a in zip(_tie_direction(arrays, rng), arrays, strict=True)]
            for i in range(len(arrays)):
                cases.append((f"input {i}", "tie-preserving",
                              [d if j == i else np.zeros_like(d) for j, d in enumerate(tied)]))
            if len(arrays) > 1:
                cases.append(("all inputs", "tie-preserving", tied))
        for name, kind, u in cases:
            if not any(d.any() for d in u):
                continue
            slope, kink = line.slope(u)
            if kinks == "skip" and kink:
                skipped += 1
                continue
            checked += 1
            got = float(sum(np.sum(g.astype(np.float64) * d)
                            for g, d in zip(grads, u, strict=True)))
            if not np.isclose(got, slope, rtol=rtol, atol=atol):
                raise GradcheckError(
                    f"VJP of {name} wrong along {kind} direction {k}: expected ⟨VJP(v), u⟩ = "
                    f"{slope!r} (finite difference), got {got!r} (backprop)")
    return Report(checked, skipped)


def gradcheck(f: Callable[..., Tensor], inputs: Sequence, rtol: float = 1e-5, atol: float = 1e-7,
              h: float = 1e-6, seed: int = 0) -> bool:
    """assert_gradients for float64 inputs given as a list, comparing at kinks too."""
    assert_gradients(f, *_arrays(inputs, float64_only=True), rtol=rtol, atol=atol, h=h,
                     seed=seed, kinks="compare")
    return True


def vjp_check(f: Callable[..., Tensor], inputs: Sequence, n_directions: int = 3,
              rtol: float = 1e-5, atol: float = 1e-7, h: float = 1e-6, seed: int = 0) -> bool:
    """assert_vjp for float64 inputs given as a list: random directions, kinks compared."""
    assert_vjp(f, *_arrays(inputs, float64_only=True), directions=n_directions, rtol=rtol,
               atol=atol, h=h, seed=seed, kinks="compare", ties=False)
    return True
