"""conv2d and max_pool2d: a short reference to learn from, and a fast path that is tested equal.

Read the reference first (the "reference" section below, about 60 lines):
`conv2d_reference` / `conv2d_backward_reference` and `max_pool2d_reference` /
`max_pool2d_backward_reference` state the forward pass and the vector-Jacobian
product with `sliding_window_view` and `tensordot`, in plain NumPy, nothing else.
tests/test_kernels.py checks that the differentiable ops `conv2d` and `max_pool2d`
compute the same numbers (float64 to ~1e-12, float32 to ~1e-5 relative).

The fast path. Shapes are (N, C, H, W) as everywhere in npadv. What limits a NumPy
convolution is moving memory, not arithmetic: a full im2col matrix is kh·kw times the
input, too big for any cache. So conv2d copies its input once into a "row-flat" array
in which every kernel tap is a strided view, builds im2col for a block of output rows
at a time (a few MB, reused), and multiplies each block as soon as it is built:

    xf    (C, Hp·S + kw)      padded image rows, all samples side by side in each row:
                              xf[c, hp·S + n·Wr + pw + w] = x[n, c, hp − ph, w],  S = N·Wr,
                              zero elsewhere (every image row is followed by ≥ pw zeros,
                              which are also the left padding of the next one)
    taps  (C, kh, kw, Ho, T)  view of xf: [c, i, j, r, t] = xf[c, (sh·r + i)·S + sw·t + j]
                              for output row r and column t = n·(Wr/sw) + wo,  T = S/sw
    cols  (C·kh·kw, rows·T)   im2col of one block of output rows: a copy of taps
    y     (F, Ho, N, Wo)      W (F, C·kh·kw) @ cols, block by block, + bias; returned as
                              its (N, F, Ho, Wo) view

Columns t with wo ≥ Wo are scratch: computed, dropped, given zero gradient. (They keep
the innermost copy loops long: N·Wr elements instead of Wo.) Backward rebuilds each
block's cols for gW = Σ G @ colsᵀ, and for the input gradient computes dcols = Wᵀ @ G
block by block and adds each tap back where it came from (col2im). The input gradient
is skipped when the input does not require one (a first layer on images). The Python
loops run over blocks of output rows and over the kh·kw kernel taps, never over samples
or pixels. Elementwise ops keep the (F, Ho, N, Wo) memory order, so the next layer's
gradient arrives in it too.

max_pool2d is a running np.maximum over the kh·kw taps of its windows (strided views);
its backward gives each window's gradient to the first tap that equals the maximum.
Memory comes from workspace.py: temporaries that never leave a call (im2col blocks,
masks) are per-thread scratch arrays, and outputs and gradients reuse earlier arrays that
nothing references any more. A fresh multi-MB array would cost a page fault per 4 kB
every time it is written.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from .flops import add_flops
from .tensor import Tensor, as_tensor, needs_grad
from .workspace import recycled, recycled_like, scratch, scratch_like

# im2col block size in elements (8 MB of float32): small enough to stay in the last-level
# cache between the copy that builds it and the matmul that reads it, large enough that
# the matmuls are few (each one is a synchronisation point for the BLAS threads)
_BLOCK = 1 << 21


def _int_pair(v) -> tuple[int, int]:
    """An int or a pair of ints (a kernel size, stride or padding) as (along H, along W)."""
    return (v, v) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


# ---- reference ---------------------------------------------------------------------
# Plain NumPy, no autograd: what conv2d and max_pool2d below compute, written to be read.
# x: (N, C, H, W); w: (F, C, kh, kw); g: the upstream gradient, shaped like the output.

def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """All (kh, kw) windows of a padded xp, every sh-th row and sw-th column:
    (N, C, Ho, Wo, kh, kw), a view: windows[n, c, r, q, i, j] = xp[n, c, sh·r + i, sw·q + j]."""
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _padded(x: np.ndarray, ph: int, pw: int, fill: float = 0.0) -> np.ndarray:
    """x: (N, C, H, W) with ph rows and pw columns of `fill` added on each side (x itself,
    not a copy, without padding)."""
    if not (ph or pw):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)


def conv2d_reference(x, w, b=None, stride=1, padding=0) -> np.ndarray:
    """y[n, f, r, q] = b[f] + Σ_{c,i,j} w[f, c, i, j] · xp[n, c, sh·r + i, sw·q + j]."""
    (sh, sw), (ph, pw) = _int_pair(stride), _int_pair(padding)
    windows = _windows(_padded(x, ph, pw), *w.shape[2:], sh, sw)   # (N, C, Ho, Wo, kh, kw)
    y = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))        # (N, Ho, Wo, F)
    y = y.transpose(0, 3, 1, 2)                                      # (N, F, Ho, Wo)
    return y if b is None else y + b[:, None, None]


def conv2d_backward_reference(x, w, g, stride=1, padding=0):
    """Gradients of Σ g·y with respect to x, w and b: (gx, gw, gb), shaped like x, w, b.

    y is linear in w with coefficients the windows, so gw sums g times each window; it is
    linear in x too, so each output sends g·w back to the pixels of its window (col2im).
    """
    (sh, sw), (ph, pw) = _int_pair(stride), _int_pair(padding)
    kh, kw = w.shape[2:]
    xp = _padded(x, ph, pw)
    windows = _windows(xp, kh, kw, sh, sw)                           # (N, C, Ho, Wo, kh, kw)
    gw = np.tensordot(g, windows, axes=([0, 2, 3], [0, 2, 3]))       # (F, C, kh, kw)
    gb = g.sum(axis=(0, 2, 3))                                       # (F,)
    g_windows = np.tensordot(g, w, axes=([1], [0]))                  # (N, Ho, Wo, C, kh, kw)
    ho, wo = g.shape[2:]
    gxp = np.zeros_like(xp)
    for i in range(kh):            # tap (i, j) of window (r, q) is pixel (sh·r + i, sw·q + j)
        for j in range(kw):
            gxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += \
                g_windows[..., i, j].transpose(0, 3, 1, 2)
    gx = gxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]           # drop the padding
    return gx, gw, gb


def max_pool2d_reference(x, kernel_size=2, stride=None, padding=0) -> np.ndarray:
    """y[n, c, r, q] = max of the window xp[n, c, sh·r : sh·r + kh, sw·q : sw·q + kw],
    padding with −inf."""
    (kh, kw), (ph, pw) = _int_pair(kernel_size), _int_pair(padding)
    sh, sw = _int_pair(stride if stride is not None else kernel_size)
    return _windows(_padded(x, ph, pw, -np.inf), kh, kw, sh, sw).max(axis=(4, 5))


def max_pool2d_backward_reference(x, g, kernel_size=2, stride=None, padding=0) -> np.ndarray:
    """Gradient of Σ g·y with respect to x: each window's g goes to its first maximum
    (row-major order); a window whose maximum is NaN passes none."""
    (kh, kw), (ph, pw) = _int_pair(kernel_size), _int_pair(padding)
    sh, sw = _int_pair(stride if stride is not None else kernel_size)
    xp = _padded(x, ph, pw, -np.inf)
    windows = _windows(xp, kh, kw, sh, sw)
    flat = windows.reshape(*windows.shape[:4], kh * kw)              # (N, C, Ho, Wo, kh·kw)
    first = flat.argmax(axis=-1)                                     # index of the first max
    i, j = np.divmod(first, kw)
    n, c, r, q = np.indices(first.shape)
    gxp = np.zeros_like(xp)
    g = np.where(np.isnan(flat.max(axis=-1)), 0, g)
    np.add.at(gxp, (n, c, sh * r + i, sw * q + j), g)               # windows may overlap
    return gxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


# ---- conv2d ------------------------------------------------------------------------
def _row_flat(x: np.ndarray, ph: int, pw: int, wr: int, tail: int, dtype) -> np.ndarray:
    """x: (N, C, H, W) -> xf: (C, (H + 2·ph)·N·wr + tail), laid out as in the module docstring."""
    n, c, h, w = x.shape
    xf = recycled((c, (h + 2 * ph) * n * wr + tail), dtype)
    rows = xf[:, :(h + 2 * ph) * n * wr].reshape(c, h + 2 * ph, n, wr)
    # zero only what is not an image pixel: border rows, each row's gaps, the tail
    rows[:, :ph] = 0
    rows[:, ph + h:] = 0
    rows[:, ph:ph + h, :, :pw] = 0
    rows[:, ph:ph + h, :, pw + w:] = 0
    xf[:, (h + 2 * ph) * n * wr:] = 0
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
        cols = scratch("cols", (c, kh, kw, r1 - r0, t), taps.dtype)
        np.copyto(cols, taps[:, :, :, r0:r1])
        yield r0, r1, cols.reshape(k, (r1 - r0) * t)


def conv2d(x, w, b=None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation, differentiable: the numbers of `conv2d_reference` (forward) and
    `conv2d_backward_reference` (backward), computed as in the module docstring.

    x: (N, C, H, W); w: (F, C, kh, kw); b: (F,) or None. Float32 in, float32 out.
    Returns (N, F, Ho, Wo), Ho = (H + 2·ph − kh) // sh + 1, stored in (F, Ho, N, Wo) order.
    No input gradient is computed unless x requires one.
    """
    x, w = as_tensor(x), as_tensor(w)
    b = None if b is None else as_tensor(b)
    (sh, sw), (ph, pw) = _int_pair(stride), _int_pair(padding)
    n, c, h, wd = x.shape
    f, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"conv2d: input has {c} channels but the weight expects {cw}")
    if h + 2 * ph < kh or wd + 2 * pw < kw:
        raise ValueError(
            f"conv2d: input {h}x{wd} (padding {ph},{pw}) smaller than kernel {kh}x{kw}")
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
    y = recycled((f, ho, n, wo), dtype)                        # (F, Ho, N, Wo), dense
    for r0, r1, cols in _im2col(taps):
        block = scratch("block", (f, (r1 - r0) * t), dtype)   # (F, rows·T)
        np.matmul(wmat, cols, out=block)
        valid = block.reshape(f, r1 - r0, n, wr // sw)[..., :wo]  # drop the scratch columns
        if bias is None:
            y[:, r0:r1] = valid
        else:
            np.add(valid, bias, out=y[:, r0:r1])
    add_flops(flops)

    def vjp(g):
        # G row-flat like the output: gf[f, r·T + t], zero at the scratch columns
        gf = scratch("grad", (f, ho * t), dtype)                         # (F, Ho·T)
        gcols = gf.reshape(f, ho, n, wr // sw)
        gcols[..., wo:] = 0
        gcols[..., :wo] = g.transpose(1, 2, 0, 3)
        gx = gw = gb = None
        if needs_grad(w):
            gwt = np.zeros((k, f), dtype=dtype)                            # (C·kh·kw, F) = gWᵀ
            for r0, r1, cols in _im2col(taps):
                gwt += cols @ gf[:, r0 * t:r1 * t].T    # faster in BLAS than G @ colsᵀ
            gw = gwt.T.reshape(w.shape).astype(w.dtype, copy=False)
            add_flops(flops)
        if b is not None and needs_grad(b):
            gb = gf.sum(axis=1).astype(b.dtype, copy=False)                # (F,)
        if needs_grad(x):
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
    dxf = recycled(shape, gf.dtype)                                        # (C, Hp·S + kw)
    dxf.fill(0)
    dtaps = _taps(dxf, kh, kw, sh, sw, s, ho, t, writeable=True)          # (C, kh, kw, Ho, T)
    for r0, r1 in _row_blocks(ho, c * kh * kw, t):
        dcols = scratch("cols", (c, kh, kw, r1 - r0, t), gf.dtype)
        width = (r1 - r0) * t
        np.matmul(wmat.T, gf[:, r0:r1].reshape(f, width), out=dcols.reshape(c * kh * kw, width))
        for i in range(kh):
            for j in range(kw):
                dtaps[:, i, j, r0:r1] += dcols[:, i, j]       # one tap never repeats an element
    return dxf


# ---- max_pool2d --------------------------------------------------------------------
def _tap(a: np.ndarray, i: int, j: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """View (..., Ho, Wo) of a: (..., Hp, Wp): element (r, q) is a[..., sh·r + i, sw·q + j]."""
    return a[..., i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def _axis_order(a: np.ndarray) -> list[int]:
    """a's axes from the largest stride to the smallest (its memory order)."""
    return sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))


def _like(a: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of `values` stored in the memory order of `a` (same shape)."""
    out = recycled_like(a)
    out[...] = values
    return out


def max_pool2d(x, kernel_size=2, stride=None, padding=0) -> Tensor:
    """Max over (kh, kw) windows (padding counts as −inf). x: (N, C, H, W) -> (N, C, Ho, Wo).
    Differentiable; the numbers of `max_pool2d_reference` and `max_pool2d_backward_reference`.

    The gradient goes to exactly one element of each window: its first maximum in
    row-major order (a window whose maximum is NaN passes none). The output keeps x's
    memory order.
    """
    return _max_pool(as_tensor(x), kernel_size, stride, padding, relu=False)


def relu_max_pool2d(x, kernel_size=2, stride=None, padding=0) -> Tensor:
    """max_pool2d(relu(x)) as one op, with the same numbers and gradient.

    ReLU is monotone, so it commutes with max: max(relu(window)) = relu(max(window)).
    The ReLU then runs on the pooled output, kh·kw times smaller than x, and the
    full-size ReLU output and mask are never made. Backward: a window's gradient goes
    to its first maximum if that maximum is positive, else nowhere (relu'(m) = 0 for
    m ≤ 0, which is what the unfused pair gives too).
    """
    return _max_pool(as_tensor(x), kernel_size, stride, padding, relu=True)


def _max_pool(x: Tensor, kernel_size, stride, padding, relu: bool) -> Tensor:
    """max_pool2d, followed by a ReLU of the pooled output if `relu`."""
    kh, kw = _int_pair(kernel_size)
    sh, sw = _int_pair(stride if stride is not None else kernel_size)
    ph, pw = _int_pair(padding)
    h, wd = x.shape[2:]
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"max_pool2d: input {h}x{wd} (padding {ph},{pw}) smaller than {kh}x{kw}")
    xp = _padded(x.data, ph, pw, -np.inf)                                    # (N, C, Hp, Wp)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    out = recycled_like(_tap(xp, 0, 0, sh, sw, ho, wo))                   # (N, C, Ho, Wo)
    np.copyto(out, _tap(xp, 0, 0, sh, sw, ho, wo))
    for i, j in taps[1:]:
        np.maximum(out, _tap(xp, i, j, sh, sw, ho, wo), out=out)
    if relu:
        np.maximum(out, 0, out=out)    # a positive maximum is unchanged, so still found below
    overlapping = sh < kh or sw < kw
    # windows that tile xp exactly write every element of the gradient once: no zero fill
    tiled = (sh, sw) == (kh, kw) and xp.shape[2:] == (ho * kh, wo * kw)

    def vjp(g):
        if _axis_order(g) != _axis_order(out):   # e.g. from a reshape: copy once into
            g = _like(out, g)                     # out's memory order
        if relu:                                  # no gradient through a maximum ≤ 0
            g = np.multiply(g, out > 0, out=recycled_like(out))
        dxp = recycled_like(xp)                                          # (N, C, Hp, Wp)
        if not tiled:
            dxp.fill(0)
        first = scratch_like("pool_first", out, bool)   # this tap holds the window's first max
        taken = scratch_like("pool_taken", out, bool)   # windows whose maximum has been found
        for k, (i, j) in enumerate(taps):
            np.equal(_tap(xp, i, j, sh, sw, ho, wo), out, out=first)
            if k:
                np.greater(first, taken, out=first)      # equal and not yet taken
            if k == 0:
                np.copyto(taken, first)
            elif k + 1 < len(taps):
                np.logical_or(taken, first, out=taken)
            dtap = _tap(dxp, i, j, sh, sw, ho, wo)
            if overlapping:
                dtap += g * first
            else:
                np.multiply(g, first, out=dtap)
        return (dxp[:, :, ph:ph + h, pw:pw + wd],)

    return Tensor.from_op(out, (x,), vjp)
