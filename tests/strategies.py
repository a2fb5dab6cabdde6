"""Hypothesis strategies shared by the engine tests: npadv.testing's, plus distinct values."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from npadv import testing
from npadv.testing import small_shapes

__all__ = ["arrays", "broadcast_pair", "distinct_values", "finite", "small_shapes"]

finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape, elements=finite, **options):
    """float64 arrays of `shape`; options (ties, zeros) as for npadv.testing.arrays."""
    return testing.arrays(shape, elements=elements, **options)


def broadcast_pair(elements=finite):
    """Two float64 arrays whose shapes broadcast, often with unequal ranks or size-1 axes."""
    return testing.broadcastable_arrays(2, elements=elements)


@st.composite
def distinct_values(draw, shape):
    """A float64 array of `shape` whose entries are pairwise far apart (no ties for max)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(list(range(n))))
    scale = draw(st.floats(0.1, 2.0))
    return (np.array(perm, dtype=np.float64).reshape(shape) - n / 2) * scale
