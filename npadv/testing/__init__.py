"""Property testing for your own ops and projections (needs hypothesis: `npadv[testing]`).

Strategies generate the inputs where backward passes and projections break: tied maxima,
exact zeros, size-1 broadcast axes, stride and padding edge cases, points on the boundary of
an ε-ball ∩ box. Assertions check an answer by its definition. Properties combine the two.

    from npadv.testing import arrays, gradient_property, minimal_failure, projection_property
    test_my_op = gradient_property(my_op, arrays(ties=True, zeros=True))
    test_my_projection = projection_property(my_project, "l2")
    case, error = minimal_failure(test_my_op)     # the shrunk failing case, or None

assert_gradients, assert_vjp    backprop against float64 finite differences (gradcheck.py)
assert_projection               feasible, idempotent, variational inequality, nearest
"""
try:
    import hypothesis  # noqa: F401
except ImportError as err:  # pragma: no cover
    raise ImportError('npadv.testing needs hypothesis: pip install "npadv[testing]"') from err

from .gradcheck import GradcheckError, Report, assert_gradients, assert_vjp
from .projection import ProjectionError, assert_projection
from .properties import (
    broadcast_property,
    conv2d_property,
    gradient_property,
    minimal_failure,
    pool2d_property,
    projection_property,
)
from .strategies import (
    ConvCase,
    PoolCase,
    ProjectionCase,
    arrays,
    ball_points,
    batch_shapes,
    broadcastable_arrays,
    broadcastable_shapes,
    conv_cases,
    labelled_batches,
    pool_cases,
    small_shapes,
)

__all__ = [
    "GradcheckError", "Report", "assert_gradients", "assert_vjp",
    "ProjectionError", "assert_projection",
    "gradient_property", "broadcast_property", "conv2d_property", "pool2d_property",
    "projection_property", "minimal_failure",
    "arrays", "small_shapes", "broadcastable_shapes", "broadcastable_arrays", "ConvCase",
    "conv_cases", "PoolCase", "pool_cases", "ProjectionCase", "batch_shapes", "ball_points",
    "labelled_batches",
]
