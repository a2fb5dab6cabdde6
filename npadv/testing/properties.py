"""Ready-made hypothesis properties: one line turns an op or a projection into a test.

    test_relu = gradient_property(ops.relu, arrays(zeros=True))
    test_add = broadcast_property(ops.add)
    test_conv = conv2d_property(F.conv2d)
    test_pool = pool2d_property(F.max_pool2d)
    test_l2 = projection_property(project, "l2")

Each returns a function decorated with @given, so pytest collects it and shrinks a failure
to a minimal example; calling it runs the search directly. Wrap it in @settings to change
the number of examples. A property also keeps what it is made of: `prop.strategy` draws a
case and `prop.check(case)` raises GradcheckError or ProjectionError where it fails, which
is how minimal_failure(prop) hands back the shrunk case itself:

    case, error = minimal_failure(pool2d_property(my_pool))     # or None: nothing fails
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import find, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from .gradcheck import GradcheckError, assert_gradients, assert_vjp
from .projection import ProjectionError, assert_projection
from .strategies import ball_points, broadcastable_arrays, conv_cases, pool_cases

__all__ = ["gradient_property", "broadcast_property", "conv2d_property", "pool2d_property",
           "projection_property", "minimal_failure"]

# minimal_failure's search: deterministic, and no example database
SEARCH = Settings(max_examples=100, derandomize=True, database=None, deadline=None)


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
    prop = given(case=strategy)(test)
    prop.strategy, prop.check = strategy, run
    return prop


def minimal_failure(prop, settings: Settings | None = None
                    ) -> tuple[object, AssertionError] | None:
    """(case, error) for the smallest case hypothesis finds on which the property `prop`
    (made by one of the functions above) fails, and the GradcheckError or ProjectionError
    its check raises there; None when no case fails. The search is hypothesis.find over
    prop.strategy, deterministic by default (SEARCH: 100 examples, derandomized); pass
    settings to change it. Any other exception from the check propagates.
    """
    def fails(case) -> bool:
        try:
            prop.check(case)
        except (GradcheckError, ProjectionError):
            return True
        return False

    try:
        case = find(prop.strategy, fails, settings=settings or SEARCH)
    except NoSuchExample:
        return None
    try:
        prop.check(case)
    except (GradcheckError, ProjectionError) as err:
        return case, err
    raise AssertionError(f"the check passed on a second run at {case!r}: it is not "
                         "deterministic")


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
