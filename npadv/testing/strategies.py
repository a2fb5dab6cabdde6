"""Hypothesis strategies for the inputs where backward passes and projections break.

    arrays(shape, ties=, zeros=)        bounded floats, optionally with repeated values and 0s
    broadcastable_shapes(n)             n shapes that broadcast, with size-1 and missing dims
    broadcastable_arrays(n)             arrays of those shapes
    conv_cases(), pool_cases()          valid (N, C, H, W, kernel, stride, padding) and arrays
    ball_points(norm)                   (z, x, eps, lo, hi): z inside, outside or exactly on
                                        the boundary of the eps-ball ∩ box around x
    labelled_batches(classes)           (x, y): a float batch in [lo, hi] and int labels
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["arrays", "small_shapes", "broadcastable_shapes", "broadcastable_arrays",
           "ConvCase", "conv_cases", "PoolCase", "pool_cases", "ProjectionCase",
           "batch_shapes", "ball_points", "labelled_batches"]

small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def _floats(dtype, magnitude: float) -> st.SearchStrategy[float]:
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False, width=width)


@st.composite
def arrays(draw, shape=small_shapes, *, dtype=np.float64, magnitude: float = 3.0,
           ties: bool = False, zeros: bool = False, elements=None, unique: bool = False):
    """A float array of `shape` (a tuple or a strategy) with |entries| ≤ magnitude.

    ties=True draws about half of the entries from a palette of 1-3 values, so maxima tie;
    zeros=True makes exact zeros common (relu's kink); unique=True forbids repeated values.
    Otherwise entries are drawn independently.
    """
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    base = _floats(dtype, magnitude) if elements is None else elements
    if zeros:
        base = st.one_of(st.just(0.0), base)
    if ties:
        palette = draw(st.lists(_floats(dtype, magnitude), min_size=1, max_size=3))
        base = st.one_of(st.sampled_from(palette), base)
    return draw(hnp.arrays(dtype, shape, elements=base, unique=unique,
                           fill=None if ties and not unique else st.nothing()))


def broadcastable_shapes(num_shapes: int = 2, max_dims: int = 3,
                         max_side: int = 4) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """`num_shapes` shapes that broadcast together: unequal ranks, size-1 axes included."""
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=0,
                                             max_dims=max_dims, max_side=max_side
                                             ).map(lambda s: s.input_shapes)


@st.composite
def broadcastable_arrays(draw, num_arrays: int = 2, **array_options):
    """A tuple of `num_arrays` arrays whose shapes broadcast (options as for `arrays`)."""
    shapes = draw(broadcastable_shapes(num_arrays))
    return tuple(draw(arrays(s, **array_options)) for s in shapes)


class ConvCase(NamedTuple):
    """x: (N, C, H, W), w: (F, C, kh, kw), b: (F,); stride and padding as (rows, cols)."""
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


class PoolCase(NamedTuple):
    """x: (N, C, H, W); kernel, stride and padding as (rows, cols), padding ≤ kernel // 2."""
    x: np.ndarray
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@st.composite
def _geometry(draw, max_kernel: int, max_side: int, pool: bool):
    """(kernel, stride, padding, (H, W)) per axis such that the output has ≥ 1 position.

    Covers 1×1 kernels, strides larger than the kernel (skipped pixels), sizes the stride
    does not divide (a dropped remainder), padding up to kernel − 1 (kernel // 2 for a
    pool, so no window lies wholly in the padding) and a kernel as large as the input.
    """
    kernel, stride, padding, size = [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, max_kernel))
        p = draw(st.integers(0, k // 2 if pool else k - 1))
        kernel.append(k)
        stride.append(draw(st.integers(1, max_kernel + 1)))
        padding.append(p)
        size.append(draw(st.integers(max(1, k - 2 * p), max_side)))
    return tuple(kernel), tuple(stride), tuple(padding), tuple(size)


@st.composite
def conv_cases(draw, max_kernel: int = 3, max_side: int = 6, max_channels: int = 2,
               **array_options) -> ConvCase:
    """A valid conv2d problem with small random arrays (options as for `arrays`)."""
    kernel, stride, padding, (h, w) = draw(_geometry(max_kernel, max_side, pool=False))
    n, c, f = (draw(st.integers(1, max_channels)) for _ in range(3))
    return ConvCase(draw(arrays((n, c, h, w), **array_options)),
                    draw(arrays((f, c) + kernel, **array_options)),
                    draw(arrays((f,), **array_options)), stride, padding)


@st.composite
def pool_cases(draw, max_kernel: int = 3, max_side: int = 6, max_channels: int = 2,
               ties: bool = True, **array_options) -> PoolCase:
    """A valid max_pool2d problem; ties=True makes tied window maxima common."""
    kernel, stride, padding, (h, w) = draw(_geometry(max_kernel, max_side, pool=True))
    n, c = (draw(st.integers(1, max_channels)) for _ in range(2))
    return PoolCase(draw(arrays((n, c, h, w), ties=ties, **array_options)), kernel, stride,
                    padding)


class ProjectionCase(NamedTuple):
    """Project z onto {‖· − x‖ ≤ eps} ∩ [lo, hi]. z, x: (N, ...); eps: float or (N,)."""
    z: np.ndarray
    x: np.ndarray
    eps: float | np.ndarray
    lo: float | None
    hi: float | None


@st.composite
def batch_shapes(draw, max_features: int = 12):
    """(N, D), (N, T, d) or (N, C, H, W) with N ≤ 3 and at most max_features features."""
    n = draw(st.integers(1, 3))
    dims = draw(st.sampled_from([1, 2, 3]))
    shape = [n]
    for _ in range(dims):
        room = max_features // int(np.prod(shape[1:], dtype=np.int64))
        shape.append(draw(st.integers(1, max(1, room))))
    return tuple(shape)


@st.composite
def ball_points(draw, norm: str, box: bool = True, where: str | None = None,
                dtype=np.float64, max_features: int = 12) -> ProjectionCase:
    """A projection problem whose z lies `where` ("inside", "outside", "boundary"; None: any)
    relative to the eps-ball ∩ box around x; box=True uses [0, 1], else no box.

    Centres, radii and offsets are multiples of 1/64, so x ± eps and, for L∞ and L1, points
    exactly on the sphere are representable; centres often sit on the box faces. A boundary
    point is on the sphere, or on a box face after clipping.
    """
    where = draw(st.sampled_from(["inside", "outside", "boundary"])) if where is None else where
    shape = draw(batch_shapes(max_features))
    n, grid = shape[0], 1 / 64
    lo, hi = (0.0, 1.0) if box else (None, None)
    centre = st.integers(0, 64) if box else st.integers(-128, 128)
    x = draw(hnp.arrays(np.int64, shape, elements=centre)) * grid
    radius = st.integers(0, 128)
    eps = draw(st.one_of(radius, hnp.arrays(np.int64, (n,), elements=radius))) * grid
    eps = eps if np.ndim(eps) else float(eps)
    e = np.broadcast_to(eps, (n,)).reshape((n,) + (1,) * (len(shape) - 1))
    u = draw(hnp.arrays(np.int64, shape, elements=st.integers(-64, 64))).reshape(n, -1) * grid
    if norm == "linf":                       # one entry of each row at ±1: ‖u‖∞ = 1 exactly
        u[:, draw(st.integers(0, u.shape[1] - 1))] = draw(st.sampled_from([-1.0, 1.0]))
    elif norm == "l1":                       # eighths that sum to 1: ‖u‖₁ = 1 exactly
        picks = draw(st.lists(st.integers(0, u.shape[1] - 1), min_size=8, max_size=8))
        u = np.where(u < 0, -1.0, 1.0) * np.bincount(picks, minlength=u.shape[1]) / 8
    else:                                    # ‖u‖₂ = 1 up to rounding
        u[np.all(u == 0, axis=1), 0] = 1.0
        u = u / np.sqrt(np.sum(u * u, axis=1, keepdims=True))
    u = u.reshape(shape)
    if where == "inside":
        delta = e * draw(st.sampled_from([0.0, 0.25, 0.5, 0.875])) * u
    elif where == "boundary":
        delta = e * u
    else:
        delta = (e * draw(st.sampled_from([1.5, 4.0, 32.0])) + grid) * u
    if box and where != "outside":
        delta = np.clip(delta, lo - x, hi - x)   # a clipped coordinate sits on a box face
    return ProjectionCase((x + delta).astype(dtype), x.astype(dtype), eps, lo, hi)


@st.composite
def labelled_batches(draw, classes: int = 3, feature_shape=None, max_batch: int = 4,
                     lo: float = 0.0, hi: float = 1.0, dtype=np.float64):
    """(x, y): x (N, *feature_shape) with entries in [lo, hi], y (N,) int64 in [0, classes)."""
    n = draw(st.integers(1, max_batch))
    if feature_shape is None:
        feature_shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    width = 32 if np.dtype(dtype) == np.float32 else 64
    x = draw(hnp.arrays(dtype, (n,) + tuple(feature_shape),
                        elements=st.floats(lo, hi, width=width)))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1)))
    return x, y
