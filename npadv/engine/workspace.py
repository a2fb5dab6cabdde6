"""Reused arrays, so that a training step does not page-fault its way through fresh memory.

A fresh multi-MB array costs a page fault per 4 kB page the first time it is written,
on every training step: for small_cnn that was about a quarter of the step time. Two
kinds of reuse, both per thread:

- `scratch(name, ...)`: a temporary that never leaves one op call (an im2col block, a
  mask). The same array is handed out for the same name every time.
- `recycled(shape, dtype)`: an op's output or anything a backward pass reads later.
  It may live in a graph for a while, and two graphs may be alive at once, so an array
  is handed out again only once nothing else references it any more (its reference
  count says that only the pool still holds it; a view of it keeps it busy, since a
  view references its base). Its contents are garbage: the op must write every element.

Both are bounded (MAX_ELEMENTS per scratch array, MAX_POOL_BYTES of recycled arrays per
thread, least recently used shapes dropped first). Nothing here changes how the process
allocates memory; it only keeps some of npadv's own arrays for another turn.
"""
from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

_BUFFERS = threading.local()
MAX_ELEMENTS = 1 << 24   # larger scratch requests get a fresh array, so memory stays bounded

MIN_RECYCLED_BYTES = 1 << 17        # smaller arrays come quickly from malloc anyway
MAX_PER_SHAPE = 4
MAX_POOL_BYTES = 256 << 20
_POOL = threading.local()


def _baseline_refcount() -> int | None:
    """The reference count `sys.getrefcount(bufs[i])` reports for an array that only the
    list `bufs` holds (None where reference counts cannot tell: no getrefcount, or no GIL)."""
    if not hasattr(sys, "getrefcount") or not getattr(sys, "_is_gil_enabled", lambda: True)():
        return None
    bufs = [np.empty(1)]
    return sys.getrefcount(bufs[0])


_FREE = _baseline_refcount()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-ordered array of `shape`, reused across calls with the same name."""
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        return np.empty(shape, dtype=dtype)
    buf = getattr(_BUFFERS, name, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        setattr(_BUFFERS, name, buf)
    return buf[:size].reshape(shape)


def scratch_like(name: str, a: np.ndarray, dtype) -> np.ndarray:
    """A scratch array shaped like `a` and stored in the same memory order (fast elementwise
    ops between the two)."""
    order = sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))
    buf = scratch(name, tuple(a.shape[axis] for axis in order), dtype)
    return buf.transpose(np.argsort(order))


def recycled(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-ordered array of `shape`: one of this thread's earlier arrays that
    nothing references any more, else a new one (kept for later if the pool has room)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if _FREE is None or nbytes < MIN_RECYCLED_BYTES:
        return np.empty(shape, dtype=dtype)
    pools = getattr(_POOL, "pools", None)
    if pools is None:
        pools = _POOL.pools = OrderedDict()
    key = (shape, dtype.str)
    bufs = pools.get(key)
    if bufs is None:
        bufs = pools[key] = []
        _evict(pools, keep=key)
    pools.move_to_end(key)
    for i in range(len(bufs)):
        if sys.getrefcount(bufs[i]) == _FREE:     # only the pool holds it
            return bufs[i]
    buf = np.empty(shape, dtype=dtype)
    if len(bufs) < MAX_PER_SHAPE:
        bufs.append(buf)
    return buf


def recycled_like(a: np.ndarray, dtype=None) -> np.ndarray:
    """A recycled array shaped like `a`, stored in a's memory order."""
    order = sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))
    buf = recycled(tuple(a.shape[axis] for axis in order), dtype or a.dtype)
    return buf.transpose(np.argsort(order))


def _evict(pools: OrderedDict, keep) -> None:
    """Drop the least recently used shapes until the pool holds at most MAX_POOL_BYTES."""
    total = sum(b.nbytes for bufs in pools.values() for b in bufs)
    while total > MAX_POOL_BYTES and len(pools) > 1:
        key = next(iter(pools))
        if key == keep:
            pools.move_to_end(key)
            continue
        total -= sum(b.nbytes for b in pools.pop(key))
