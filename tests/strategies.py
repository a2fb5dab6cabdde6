"""Hypothesis strategies shared by the engine tests."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape, elements=finite):
    return hnp.arrays(np.float64, shape, elements=elements)


small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@st.composite
def broadcast_pair(draw, elements=finite):
    """Two float64 arrays whose shapes broadcast, often with unequal ranks."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                    max_side=4))
    a, b = shapes.input_shapes
    return draw(arrays(a, elements)), draw(arrays(b, elements))


@st.composite
def distinct_values(draw, shape):
    """A float64 array of `shape` whose entries are pairwise far apart (no ties for max)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(list(range(n))))
    scale = draw(st.floats(0.1, 2.0))
    return (np.array(perm, dtype=np.float64).reshape(shape) - n / 2) * scale
