"""Gradient checks against finite differences, for npadv ops or any function of Tensors.

    assert_gradients(f, x, w)   every element of every input: backprop against a finite
                                difference in float64, tolerances chosen by the inputs' dtype
    assert_vjp(f, x, w)         ⟨VJP(v), u⟩ against the derivative along directions u:
                                random ones, and ones that keep equal values equal and zeros
                                at zero (cheap, and covers the whole Jacobian)
    gradcheck(f, [x, w]), vjp_check(f, [x, w])    the same checks for float64 inputs that
                                also compare at kinks; they return True

Both look at φ(t) = ⟨v, f(x + t·u)⟩, v a random cotangent, evaluated in float64, at
t = 0, ±s, ±2s:

    c(s)  = (φ(s) − φ(−s)) / 2s,   slope(s) = (4c(s) − c(2s)) / 3      error O(s⁴)
    jump  = 2Δ(s) − Δ(2s),  Δ(s) = (φ(s) − 2φ(0) + φ(−s)) / s      ≈ φ'(0+) − φ'(0−)
    n(s)  = 64·eps·Σ_t m(t) / s,  m(t) = Σ_k |v_k·f_k(x + t·u)|      rounding noise of the slopes

For smooth φ both `jump` and c(2s) − c(s) are O(s²). A kink (relu at exactly 0, a tie in a
max) makes `jump` the difference of the one-sided derivatives, and a kink in φ' makes
c(2s) − c(s) of order s: either one above atol + rtol·|slope| + n(s) (float64 tolerances)
is a kink within 2s of the point, where no single derivative can be resolved.

That test misses kinks whose effects cancel. Near x = (0, 2.3e-13), relu(relu(x) @ w) can
be flat on both sides of a bump about 1e-13 wide around the point, and backprop (rightly)
gives the slope inside it: `jump` ≈ 3·height/s is far below atol, and the differences see
only the flat outside. A second test looks at each output on its own, at nine points
t_j ∈ {0, ±s/4, ±s/2, ±s, ±2s}: f_k(x + t·u) is smooth there if it fits a quartic p_k
(least squares) to its own rounding,

    max_j |f_k(t_j) − p_k(t_j)| ≤ 64·eps·max_j |f_k(t_j)|.

A smooth f_k misses its quartic by O(s⁵·f_k⁽⁵⁾); a kink or a bump among the nine points
misses it by about its height, which has to stand above the rounding of that one output,
not above atol.

With kinks="skip" (assert_gradients, assert_vjp) each element or direction is judged from
s = h on:

    1. no kink in φ and |slope(s) − ⟨VJP(v), u⟩| ≤ atol + rtol·|slope(s)| + n(s): checked,
       passes
    2. otherwise each output is tested at step s; all smooth, no kink in φ, and a difference
       beyond both that bound and 1.2·(the kink test's limit): GradcheckError
    3. some smooth, some not: the same comparison with v' = v on the smooth outputs and 0
       elsewhere, slope of ⟨v', f⟩ against ⟨VJP(v'), u⟩, no kink in ⟨v', f⟩, and a
       difference beyond the same bounds: GradcheckError
    4. s ← s/4 and back to 1, at most six times (s ≥ h/4096), while the noise allows it:
       4·n(s) ≤ atol + rtol·|⟨VJP(v), u⟩|
    5. no step settled it: a kink, skipped and counted (Report.kinks)

Why a correct backward is not rejected: an error comes only from outputs that are each
smooth to rounding precision on all nine points, where the finite difference is the
derivative up to O(s⁴) and rounding, and only for a difference larger than the rounding
noise n(s) and than what a kink too small for the kink test can cause (at most 1.17 times
its limit: one kink anywhere within ±2s, the worst at 0.57·s). Kinks and bumps, also those
too narrow for the kink test, make their outputs fail step 2 and drop out; so does an output
that is rounding noise itself (a sum that cancels), which narrows the comparison and never
raises. What no finite difference can see is a bump smaller than the rounding of the output
that carries it (a pre-activation within rounding of 0, next to a second kink that cancels
the first).

What is still caught: a wrong backward where f is smooth (step 2); a wrong backward on the
outputs that stay smooth while others have a kink (step 3: relu with gradient 1 at 0, where
the next layer is flat); a wrong backward near, not at, a kink (step 4: a kink at distance
d leaves the stencil once 2s < d). Along a direction that keeps ties tied and zeros at zero
there is no kink, and every valid rule must match the derivative: that is where a backward
that hands a tied window's gradient to every tied tap fails.

kinks="compare" (gradcheck, vjp_check) is the plain check for inputs away from kinks, such
as random continuous points: every element or direction is compared at step h by
atol + rtol·|slope|, kink or not, and nothing is skipped or refined; a failure there says
when a kink lies within the step. A failure raises GradcheckError naming the input, the
element or direction, the expected and the backprop value.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..engine import Tensor

__all__ = ["GradcheckError", "Report", "TOLERANCES", "assert_gradients", "assert_vjp",
           "gradcheck", "vjp_check"]

# (rtol, atol) for backprop against float64 finite differences, by the inputs' dtype
TOLERANCES = {np.dtype(np.float64): (1e-5, 1e-7), np.dtype(np.float32): (2e-3, 2e-4)}

_EPS = float(np.finfo(np.float64).eps)
_SMALLER_STEPS = 6          # s = h/4, h/16, ..., h/4096
# A kink too small for the kink test at step s (|jump|, |c(2s) − c(s)| ≤ limit) moves
# slope(s) by at most 1.17·limit: one kink anywhere within ±2s, the worst at 0.57·s.
_UNSEEN_KINK = 1.2
# the nine points of the smoothness test, in units of s, and the residual of the
# least-squares quartic through them: r = _OFF_QUARTIC @ values
_NODES = np.array([-2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0])
_VANDER = np.vander(_NODES, 5, increasing=True)
_OFF_QUARTIC = np.eye(len(_NODES)) - _VANDER @ np.linalg.pinv(_VANDER)


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


def _call(f, tensors: Sequence[Tensor]) -> Tensor:
    """f(*tensors), which must be a Tensor; TypeError naming what f returned otherwise."""
    out = f(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"f must return a Tensor (npadv.Tensor) computed by engine ops, got "
                        f"{type(out).__name__}")
    return out


def _tolerances(arrays, rtol, atol) -> tuple[float, float]:
    default = TOLERANCES[np.result_type(*arrays)]
    return (default[0] if rtol is None else rtol), (default[1] if atol is None else atol)


def _backprop(f, arrays: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    """∇ of ⟨v, f(inputs)⟩ with respect to each input, in the inputs' dtypes."""
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    _call(f, tensors).backward(v)
    grads = []
    for i, (t, a) in enumerate(zip(tensors, arrays, strict=True)):
        g = np.zeros_like(a) if t.grad is None else np.asarray(t.grad)
        if g.shape != a.shape:
            raise GradcheckError(f"gradient of input {i} has shape {g.shape}, "
                                 f"expected {a.shape}")
        grads.append(g)
    return grads


def _along(grads: list[np.ndarray], u: list[np.ndarray]) -> float:
    """⟨VJP(v), u⟩ in float64."""
    return float(sum(np.sum(g.astype(np.float64) * d) for g, d in zip(grads, u, strict=True)))


class _Verdict(NamedTuple):
    """How backprop's ⟨VJP(v), u⟩ compares with the finite difference along u."""
    outcome: str                # "match", "differ" or "kink"
    expected: float = np.nan    # the finite difference (for "differ": of the outputs kept)
    got: float = np.nan         # backprop (for "differ": with the same outputs)
    step: float = np.nan
    outputs: str = ""           # which outputs were compared, when not all
    note: str = ""              # kinks="compare": whether a kink lies within the step


class _Differences(NamedTuple):
    """The finite differences of ⟨v, f(x + t·u)⟩ at step s (module docstring)."""
    slope: float
    kink: bool      # |jump| or |c(2s) − c(s)| above the limit
    noise: float    # n(s)
    limit: float    # atol + rtol·|slope| + n(s), float64 tolerances


class _Line:
    """The outputs f(x + t·u) in float64 along one direction u, each t evaluated once, and
    φ(t) = ⟨v, f(x + t·u)⟩."""

    def __init__(self, f, x: list[np.ndarray], v: np.ndarray, u: list[np.ndarray],
                 at_zero: np.ndarray):
        self.f, self.x, self.v, self.u = f, x, v.ravel(), u
        self.outputs = {0.0: at_zero}

    def out(self, t: float) -> np.ndarray:
        if t not in self.outputs:
            inputs = [Tensor(np.asarray(a + t * d)) for a, d in zip(self.x, self.u, strict=True)]
            self.outputs[t] = np.asarray(_call(self.f, inputs).data, dtype=np.float64).ravel()
        return self.outputs[t]

    def differences(self, v: np.ndarray, s: float) -> _Differences:
        """slope(s) of ⟨v, f⟩ along u, and whether it has a kink within 2s of 0."""
        ts = (0.0, s, -s, 2 * s, -2 * s)
        f0, p1, m1, p2, m2 = (float(np.dot(v, self.out(t))) for t in ts)
        c1, c2 = (p1 - m1) / (2 * s), (p2 - m2) / (4 * s)
        slope = (4 * c1 - c2) / 3
        jump = 2 * (p1 - 2 * f0 + m1) / s - (p2 - 2 * f0 + m2) / (2 * s)
        # For smooth φ, jump = O(s²) and c2 − c1 = O(s²). A kink makes jump the difference
        # of the one-sided slopes; a jump in φ'' (a product of two kinks) makes c2 − c1 O(s).
        rtol, atol = TOLERANCES[np.dtype(np.float64)]
        noise = 64 * _EPS * sum(float(np.sum(np.abs(v * self.out(t)))) for t in ts) / s
        limit = atol + rtol * abs(slope) + noise
        return _Differences(slope, bool(abs(jump) > limit or abs(c2 - c1) > limit), noise,
                            limit)

    def smooth_outputs(self, s: float) -> np.ndarray:
        """Which outputs f_k fit a quartic on the nine points to their own rounding."""
        values = np.stack([self.out(float(tau) * s) for tau in _NODES])     # (9, outputs)
        residual = np.max(np.abs(_OFF_QUARTIC @ values), axis=0)
        return residual <= 64 * _EPS * np.max(np.abs(values), axis=0)

    def compare(self, got: float, backprop: Callable[[np.ndarray], float], h: float,
                rtol: float, atol: float) -> _Verdict:
        """Backprop's ⟨VJP(v), u⟩ = got against the finite differences, steps 1-5 of the
        module docstring. backprop(mask) is ⟨VJP(v'), u⟩ for v' = v on the outputs in mask
        and 0 elsewhere."""
        def apart(got: float, d: _Differences) -> bool:
            """A difference beyond the tolerance, the noise, and what a kink too small for
            the kink test can cause."""
            return abs(got - d.slope) > max(atol + rtol * abs(d.slope) + d.noise,
                                            _UNSEEN_KINK * d.limit)

        restricted: dict[bytes, float] = {}      # backprop(mask) depends on the mask only
        s = h
        for _ in range(_SMALLER_STEPS + 1):
            d = self.differences(self.v, s)
            # 1: no kink, and the slopes match
            if not d.kink and abs(got - d.slope) <= atol + rtol * abs(d.slope) + d.noise:
                return _Verdict("match", d.slope, got, s)
            # 2: every output smooth on the nine points: the difference is real
            smooth = self.smooth_outputs(s)
            if smooth.all() and not d.kink and apart(got, d):
                return _Verdict("differ", d.slope, got, s)
            # 3: compare on the smooth outputs alone
            kept = smooth & (self.v != 0)
            if kept.any() and not smooth.all():
                d_kept = self.differences(np.where(kept, self.v, 0.0), s)
                key = kept.tobytes()
                if key not in restricted:
                    restricted[key] = backprop(kept)
                if not d_kept.kink and apart(restricted[key], d_kept):
                    return _Verdict("differ", d_kept.slope, restricted[key], s,
                                    f" (the {int(kept.sum())} of {kept.size} outputs smooth "
                                    f"along it)")
            # 4: a smaller step, while its noise stays below the tolerance
            if 4 * d.noise > atol + rtol * abs(got):
                break
            s /= 4
        # 5: no step settled it
        return _Verdict("kink")

    def has_kink(self, h: float) -> bool:
        """Whether φ shows a kink within 2h of the point, either way."""
        return self.differences(self.v, h).kink or not self.smooth_outputs(h).all()


class _Cotangent:
    """A random cotangent v for f at the inputs: backprop with v (or with v restricted to
    some outputs) and the lines φ(t) = ⟨v, f(x + t·u)⟩."""

    def __init__(self, f, arrays: list[np.ndarray], v: np.ndarray):
        self.f, self.arrays, self.v = f, arrays, v
        self.grads = _backprop(f, arrays, v)
        self.x = [a.astype(np.float64) for a in arrays]
        self.at_zero = np.asarray(_call(f, [Tensor(a) for a in self.x]).data,
                                  np.float64).ravel()

    def line(self, u: list[np.ndarray]) -> _Line:
        return _Line(self.f, self.x, self.v, u, self.at_zero)

    def restricted(self, u: list[np.ndarray]) -> Callable[[np.ndarray], float]:
        def backprop(mask: np.ndarray) -> float:
            v = np.where(mask.reshape(self.v.shape), self.v, 0.0)
            return _along(_backprop(self.f, self.arrays, v), u)
        return backprop


def _check_kinks(kinks: str) -> None:
    if kinks not in ("skip", "compare"):
        raise ValueError(f'kinks must be "skip" or "compare", got {kinks!r}')


def _judge(line: _Line, got: float, backprop: Callable[[np.ndarray], float], h: float,
           rtol: float, atol: float, kinks: str) -> _Verdict:
    if kinks == "skip":
        return line.compare(got, backprop, h, rtol, atol)
    slope = line.differences(line.v, h).slope
    if np.isclose(got, slope, rtol=rtol, atol=atol):
        return _Verdict("match", slope, got, h)
    return _Verdict("differ", slope, got, h,
                    note="; a kink lies within the step" if line.has_kink(h) else "")


def _expected_got(verdict: _Verdict, h: float, what: str = "") -> str:
    step = "" if verdict.step == h else f" at step {verdict.step:.3g}"
    return (f"expected {what}{verdict.expected!r} (finite difference{step}), "
            f"got {verdict.got!r} (backprop)")


def _unit(arrays: list[np.ndarray], i: int, idx: tuple[int, ...]) -> list[np.ndarray]:
    """The direction of element idx of input i."""
    u = [np.zeros(a.shape) for a in arrays]
    u[i][idx] = 1.0
    return u


def assert_gradients(f: Callable[..., Tensor], *inputs, rtol: float | None = None,
                     atol: float | None = None, h: float = 1e-6, seed: int = 0,
                     kinks: str = "skip") -> Report:
    """Backprop gradient of ⟨v, f(*inputs)⟩ (v random) against finite differences, element
    by element. inputs: float32 or float64 arrays (or Tensors); f is evaluated on float64
    copies for the differences. kinks: "skip" elements where φ has a kink within the step
    (after trying smaller steps), or "compare" every element at step h. Raises
    GradcheckError at the first wrong element, TypeError if f returns no Tensor.
    """
    _check_kinks(kinks)
    arrays = _arrays(inputs, float64_only=False)
    rtol, atol = _tolerances(arrays, rtol, atol)
    out = _call(f, [Tensor(a) for a in arrays])
    cot = _Cotangent(f, arrays, np.random.default_rng(seed).standard_normal(out.shape))
    checked = skipped = 0
    for i, (a, g) in enumerate(zip(arrays, cot.grads, strict=True)):
        failures = []
        for idx in np.ndindex(a.shape):
            u = _unit(arrays, i, idx)
            verdict = _judge(cot.line(u), float(g[idx]), cot.restricted(u), h, rtol, atol,
                             kinks)
            skipped += verdict.outcome == "kink"
            checked += verdict.outcome != "kink"
            if verdict.outcome == "differ":
                failures.append((idx, verdict))
        if failures:
            idx, verdict = failures[0]
            raise GradcheckError(
                f"gradient of input {i} wrong at element {idx}{verdict.outputs}: "
                f"{_expected_got(verdict, h)}; {len(failures)} of {a.size} elements differ"
                f"{verdict.note}")
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
    kinks: "skip" directions along which φ has a kink within the step (after trying smaller
    steps), or "compare" every direction at step h. Raises GradcheckError for a wrong
    VJP, TypeError if f returns no Tensor.
    """
    _check_kinks(kinks)
    arrays = _arrays(inputs, float64_only=False)
    rtol, atol = _tolerances(arrays, rtol, atol)
    rng = np.random.default_rng(seed)
    out = _call(f, [Tensor(a) for a in arrays])
    checked = skipped = 0
    for k in range(directions):
        cot = _Cotangent(f, arrays, rng.standard_normal(out.shape))
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
            verdict = _judge(cot.line(u), _along(cot.grads, u), cot.restricted(u), h, rtol,
                             atol, kinks)
            if verdict.outcome == "kink":
                skipped += 1
                continue
            checked += 1
            if verdict.outcome == "differ":
                raise GradcheckError(
                    f"VJP of {name} wrong along {kind} direction {k}{verdict.outputs}: "
                    f"{_expected_got(verdict, h, '⟨VJP(v), u⟩ = ')}{verdict.note}")
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
