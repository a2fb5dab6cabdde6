"""Ready-made hypothesis properties: one line turns an op or a projection into a test.

    test_relu = gradient_property(ops.relu, arrays(zeros=True))
    test_add = broadcast_property(ops.add)
    test_conv = conv2d_property(F.conv2d)
    test_pool = pool2d_property(F.max_pool2d)
    test_l2 = projection_property(project, "l2")

Each returns a function decorated with @given, so pytest collects it and shrinks a failure
to a minimal example; calling it runs the search directly. Wrap it in @settings to change
the number of examples.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ..gradcheck import assert_gradients, assert_vjp
from .projection import assert_projection
from .strategies import ball_points, broadcastable_arrays, conv_cases, pool_cases

__all__ = ["gradient_property", "broadcast_property", "conv2d_property", "pool2d_property",
           "projection_property"]


def _name(f) -> str:
    return getattr(f, "__name__", type(f).__name__).strip("<>")


def _check(f, inputs, directions, gradients, options):
    if gradients:
        assert_gradients(f, *inputs, **options)
    assert_vjp(f, *inputs, directions=directions, **options)


def _property(name: str, strategy, run: Callable):
    def test(case):
        run(case)

    test.__name__ = test.__qualname__ = name
    return given(case=strategy)(test)


def gradient_property(f: Callable, *inputs: st.SearchStrategy, directions: int = 2,
                      gradients: bool = True, **options):
    """A test that f's backward matches finite differences on inputs drawn from `inputs`
    (one strategy per argument of f, or a single strategy drawing a tuple of them).
    options (rtol, atol, h) go to assert_gradients and assert_vjp."""
    strategy = st.tuples(*inputs) if len(inputs) != 1 else inputs[0].map(
        lambda drawn: drawn if isinstance(drawn, tuple) else (drawn,))
    return _property(f"test_{_name(f)}_gradients", strategy,
                     lambda case: _check(f, case, directions, gradients, options))


def broadcast_property(f: Callable, num_arrays: int = 2, directions: int = 2, **options):
    """gradient_property for an elementwise op of `num_arrays` broadcastable arrays."""
    return gradient_property(f, broadcastable_arrays(num_arrays), directions=directions,
                             **options)


def conv2d_property(conv: Callable, directions: int = 2, gradients: bool = True,
                    cases=None, **options):
    """conv(x, w, b, stride=, padding=) against finite differences on `conv_cases()`."""
    def run(case):
        _check(lambda x, w, b: conv(x, w, b, stride=case.stride, padding=case.padding),
               (case.x, case.w, case.b), directions, gradients, options)

    return _property(f"test_{_name(conv)}_gradients", cases or conv_cases(), run)


def pool2d_property(pool: Callable, directions: int = 2, gradients: bool = True,
                    cases=None, **options):
    """pool(x, kernel, stride, padding) against finite differences on `pool_cases()`,
    whose inputs have tied window maxima."""
    def run(case):
        _check(lambda x: pool(x, case.kernel, case.stride, case.padding), (case.x,),
               directions, gradients, options)

    return _property(f"test_{_name(pool)}_gradients", cases or pool_cases(), run)


def projection_property(project: Callable, norm: str, box: bool = True, dtype=np.float64,
                        cases=None, **options):
    """project(z, x, eps, norm, lo, hi) checked by assert_projection on `ball_points`."""
    def run(case):
        assert_projection(project, norm, case.eps, case.lo, case.hi, (case.z, case.x),
                          **options)

    return _property(f"test_{_name(project)}_{norm}", cases or ball_points(norm, box,
                                                                             dtype=dtype), run)
