"""conv2d and max_pool2d: im2col and BLAS, arranged so that memory traffic stays small.

Shapes are (N, C, H, W) as everywhere in npadv. What limits a NumPy convolution is
moving memory, not arithmetic: a full im2col matrix is kh·kw times the input, too big
for any cache. So conv2d copies its input once into a "row-flat" array in which every
kernel tap is a strided view, builds im2col for a block of output rows at a time (a
few MB, reused), and multiplies each block as soon as it is built:

    xf    (C, Hp·S + kw)      padded image rows, all samples side by side in each row:
                              xf[c, hp·S + n·Wr + pw + w] = x[n, c, hp − ph, w],  S = N·Wr,
                              zero elsewhere (every image row is followed by ≥ pw zeros,
                              which are also the left padding of the next one)
    taps  (C, kh, kw, Ho, T)  view of xf: [c, i, j, r, t] = xf[c, (sh·r + i)·S + sw·t + j]
                              for output row r and column t = n·(Wr/sw) + wo,  T = S/sw
    cols  (C·kh·kw, rows·T)   im2col of one block of output rows: a copy of taps
    y     (F, Ho, N, Wo)      W (F, C·kh·kw) @ cols, block by block, + bias; returned as
                              its (N, F, Ho, Wo) view

Columns t with wo ≥ Wo are scratch: computed, dropped, given zero gradient. Backward
rebuilds each block's cols for gW = Σ G @ colsᵀ, and for the input gradient computes
dcols = Wᵀ @ G block by block and adds each tap back where it came from (col2im).
The Python loops run over blocks of output rows and over the kh·kw kernel taps, never
over samples or pixels. Elementwise ops keep the (F, Ho, N, Wo) memory order, so the
next layer's gradient arrives in it too.

max_pool2d is a running np.maximum over the kh·kw taps of its windows (strided views);
its backward gives each window's gradient to the first tap that equals the maximum.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .cost import add_flops
from .tensor import Tensor, as_tensor

# im2col block size in elements (8 MB of float32): small enough to stay in the last-level
# cache between the copy that builds it and the matmul that reads it, large enough that
# the matmuls are few (each one is a synchronisation point for the BLAS threads)
_BLOCK = 1 << 21

_SCRATCH = threading.local()
_SCRATCH_MAX = 1 << 24


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reused array (one per name and thread) for temporaries that never leave this module:
    a fresh multi-MB array costs a page fault per 4 kB every time it is written.
    Arrays over _SCRATCH_MAX elements are not kept."""
    size = math.prod(shape)
    if size > _SCRATCH_MAX:
        return np.empty(shape, dtype=dtype)
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        setattr(_SCRATCH, name, buf)
    return buf[:size].reshape(shape)


# ---- conv2d ------------------------------------------------------------------------
def _row_flat(x: np.ndarray, ph: int, pw: int, wr: int, tail: int, dtype) -> np.ndarray:
    """x: (N, C, H, W) -> xf: (C, (H + 2·ph)·N·wr + tail), laid out as in the module docstring."""
    n, c, h, w = x.shape
    xf = np.zeros((c, (h + 2 * ph) * n * wr + tail), dtype=dtype)
    rows = xf[:, :(h + 2 * ph) * n * wr].reshape(c, h + 2 * ph, n, wr)
    rows[:, ph:ph + h, :, pw:pw + w] = x.transpose(1, 2, 0, 3)
    return xf


def _taps(a: np.ndarray, kh: int, kw: int, sh: int, sw: int, s: int, rows: int, t: int,
          writeable: bool = False) -> np.ndarray:
    """View (C, kh, kw, rows, T) of a: (C, L): [c, i, j, r, t] = a[c, (sh·r + i)·S + sw·t + j].

    Different taps overlap in memory; one tap [:, i, j] does not (T·sw = S ≤ sh·S).
    """
    e = a.strides[1]
    return as_strided(a, (a.shape[0], kh, kw, rows, t),
                      (a.strides[0], s * e, e, sh * s * e, sw * e), writeable=writeable)


def _row_blocks(rows: int, k: int, t: int) -> list[tuple[int, int]]:
    """Blocks [r0, r1) of output rows whose im2col (k, (r1 − r0)·t) holds about _BLOCK elements."""
    per = max(1, min(rows, _BLOCK // max(1, k * t)))
    return [(r0, min(rows, r0 + per)) for r0 in range(0, rows, per)]


def _im2col(taps: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (r0, r1, cols) block by block; cols: (C·kh·kw, (r1 − r0)·T), a reused buffer."""
    c, kh, kw, rows, t = taps.shape
    k = c * kh * kw
    for r0, r1 in _row_blocks(rows, k, t):
        cols = _scratch("cols", (c, kh, kw, r1 - r0, t), taps.dtype)
        np.copyto(cols, taps[:, :, :, r0:r1])
        yield r0, r1, cols.reshape(k, (r1 - r0) * t)


def conv2d(x, w, b=None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation.

    x: (N, C, H, W); w: (F, C, kh, kw); b: (F,) or None. Float32 in, float32 out.
    Returns (N, F, Ho, Wo), Ho = (H + 2·ph − kh) // sh + 1, stored in (F, Ho, N, Wo) order.
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"conv2d: input has {c} channels but the weight expects {cw}")
    if h + 2 * ph < kh or wd + 2 * pw < kw:
        raise ValueError(f"conv2d: input {h}x{wd} (padding {ph},{pw}) smaller than kernel {kh}x{kw}")
    dtype = np.result_type(x.dtype, w.dtype)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    k = c * kh * kw
    # row length: room for an image row, its gap of pw zeros and Wo outputs; a multiple of sw
    wr = -(-max(wd + pw, sw * wo) // sw) * sw
    s, t = n * wr, n * wr // sw               # row-flat row length, output columns per row
    flops = 2 * n * f * ho * wo * k           # per matmul; scratch columns are not counted

    xf = _row_flat(x.data, ph, pw, wr, kw, dtype)              # (C, Hp·S + kw)
    taps = _taps(xf, kh, kw, sh, sw, s, ho, t)                 # (C, kh, kw, Ho, T)
    wmat = w.data.reshape(f, k).astype(dtype, copy=False)      # (F, C·kh·kw)
    bias = None if b is None else b.data.astype(dtype, copy=False)[:, None, None, None]
    y = np.empty((f, ho, n, wo), dtype=dtype)                  # (F, Ho, N, Wo), dense
    for r0, r1, cols in _im2col(taps):
        block = _scratch("block", (f, (r1 - r0) * t), dtype)   # (F, rows·T)
        np.matmul(wmat, cols, out=block)
        valid = block.reshape(f, r1 - r0, n, wr // sw)[..., :wo]  # drop the scratch columns
        if bias is None:
            y[:, r0:r1] = valid
        else:
            np.add(valid, bias, out=y[:, r0:r1])
    add_flops(flops)

    def vjp(g):
        # G row-flat like the output: gf[f, r·T + t], zero at the scratch columns
        gf = _scratch("grad", (f, ho * t), dtype)                         # (F, Ho·T)
        gf.fill(0)
        gf.reshape(f, ho, n, wr // sw)[..., :wo] = g.transpose(1, 2, 0, 3)
        gx = gw = gb = None
        if w.requires_grad:
            gwt = np.zeros((k, f), dtype=dtype)                            # (C·kh·kw, F) = gWᵀ
            for r0, r1, cols in _im2col(taps):
                gwt += cols @ gf[:, r0 * t:r1 * t].T    # faster in BLAS than G @ colsᵀ
            gw = gwt.T.reshape(w.shape).astype(w.dtype, copy=False)
            add_flops(flops)
        if b is not None and b.requires_grad:
            gb = gf.sum(axis=1).astype(b.dtype, copy=False)                # (F,)
        if x.requires_grad:
            dxf = _col2im(gf.reshape(f, ho, t), wmat, xf.shape, kh, kw, sh, sw, s)
            rows = dxf[:, ph * s:(ph + h) * s].reshape(c, h, n, wr)        # image rows of dxf
            gx = rows[..., pw:pw + wd].transpose(2, 0, 1, 3).astype(x.dtype, copy=False)
            add_flops(flops)
        return gx, gw, gb

    parents = (x, w) if b is None else (x, w, b)
    return Tensor.from_op(y.transpose(2, 0, 1, 3), parents, vjp)       # (N, F, Ho, Wo)


def _col2im(gf: np.ndarray, wmat: np.ndarray, shape: tuple[int, int], kh: int, kw: int,
            sh: int, sw: int, s: int) -> np.ndarray:
    """Gradient of the row-flat input xf (of `shape`): dcols = Wᵀ @ G block by block, each
    tap's rows added back where im2col took them from. gf: (F, Ho, T), zero at scratch columns.
    """
    f, ho, t = gf.shape
    c = shape[0]
    dxf = np.zeros(shape, dtype=gf.dtype)                                  # (C, Hp·S + kw)
    dtaps = _taps(dxf, kh, kw, sh, sw, s, ho, t, writeable=True)          # (C, kh, kw, Ho, T)
    for r0, r1 in _row_blocks(ho, c * kh * kw, t):
        dcols = _scratch("cols", (c, kh, kw, r1 - r0, t), gf.dtype)
        width = (r1 - r0) * t
        np.matmul(wmat.T, gf[:, r0:r1].reshape(f, width), out=dcols.reshape(c * kh * kw, width))
        for i in range(kh):
            for j in range(kw):
                dtaps[:, i, j, r0:r1] += dcols[:, i, j]       # one tap never repeats an element
    return dxf


# ---- max_pool2d --------------------------------------------------------------------
def _pad(x: np.ndarray, ph: int, pw: int, fill: float) -> np.ndarray:
    """x: (N, C, H, W) -> (N, C, H + 2·ph, W + 2·pw) with a border of `fill` (x itself if no padding)."""
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


def _tap(a: np.ndarray, i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """View (..., Ho, Wo) of a: (..., Hp, Wp): element (r, q) is a[..., sh·r + i, sw·q + j]."""
    return a[..., i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _like(a: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of `values` stored in the memory order of `a` (same shape)."""
    out = np.empty_like(a)
    out[...] = values
    return out


def max_pool2d(x, kernel_size=2, stride=None, padding=0) -> Tensor:
    """Max over (kh, kw) windows (padding counts as −inf). x: (N, C, H, W) -> (N, C, Ho, Wo).

    The gradient goes to exactly one element of each window: its first maximum in
    row-major order (a window whose maximum is NaN passes none). The output keeps x's
    memory order.
    """
    x = as_tensor(x)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride if stride is not None else kernel_size)
    ph, pw = _pair(padding)
    h, wd = x.shape[2:]
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"max_pool2d: input {h}x{wd} (padding {ph},{pw}) smaller than {kh}x{kw}")
    xp = _pad(x.data, ph, pw, -np.inf)                                    # (N, C, Hp, Wp)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    out = _tap(xp, 0, 0, sh, sw, ho, wo).copy(order="K")                  # (N, C, Ho, Wo)
    for i, j in taps[1:]:
        np.maximum(out, _tap(xp, i, j, sh, sw, ho, wo), out=out)
    overlapping = sh < kh or sw < kw
    # windows that tile xp exactly write every element of the gradient once: no zero fill
    tiled = (sh, sw) == (kh, kw) and xp.shape[2:] == (ho * kh, wo * kw)

    def vjp(g):
        if g.strides != out.strides:   # e.g. from a reshape: copy once into out's memory order
            g = _like(out, g)
        dxp = np.empty_like(xp) if tiled else np.zeros_like(xp)          # (N, C, Hp, Wp)
        taken = np.zeros_like(out, dtype=bool)   # windows whose maximum has been found
        for i, j in taps:
            first = _tap(xp, i, j, sh, sw, ho, wo) == out
            first &= ~taken                       # a tie goes to the first maximum only
            taken |= first
            dtap = _tap(dxp, i, j, sh, sw, ho, wo)
            if overlapping:
                dtap += g * first
            else:
                np.multiply(g, first, out=dtap)
        return (dxp[:, :, ph:ph + h, pw:pw + wd],)

    return Tensor.from_op(out, (x,), vjp)
