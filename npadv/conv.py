"""conv2d and max_pool2d by strided im2col and BLAS.

im2col: a zero-copy strided view of every (kh, kw) window of the padded input,
copied once into a matrix `cols` of shape (N·Ho·Wo, C·kh·kw); the convolution is
then one matmul with the (F, C·kh·kw) weight matrix. The backward pass is two more
matmuls and a col2im that adds the window gradients back, looping only over the
kh·kw kernel offsets (never over samples or pixels).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .cost import add_flops
from .tensor import Tensor, as_tensor


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _windows(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """View (N, C, Ho, Wo, kh, kw) of all windows of xp: (N, C, Hp, Wp); no copy."""
    n, c, hp, wp = xp.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, c, ho, wo, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3),
                      writeable=False)


def _col2im(dwin: np.ndarray, padded_shape, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Adjoint of _windows: add dwin (N, C, Ho, Wo, kh, kw) into an array of padded_shape."""
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    ho, wo = dwin.shape[2:4]
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += dwin[:, :, :, :, i, j]
    return dxp


def _unpad(xp: np.ndarray, ph: int, pw: int) -> np.ndarray:
    return xp[:, :, ph:xp.shape[2] - ph, pw:xp.shape[3] - pw]


def conv2d(x, w, b=None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation.

    x: (N, C, H, W); w: (F, C, kh, kw); b: (F,) or None.
    Returns (N, F, Ho, Wo), Ho = (H + 2·ph − kh) // sh + 1.
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
    xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x.data
    win = _windows(xp, kh, kw, sh, sw)
    ho, wo = win.shape[2:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)  # (N·Ho·Wo, C·kh·kw)
    wmat = w.data.reshape(f, c * kh * kw)                                     # (F, C·kh·kw)
    out = cols @ wmat.T                                                       # (N·Ho·Wo, F)
    if b is not None:
        out += b.data
    add_flops(2 * out.size * cols.shape[1])
    out = np.ascontiguousarray(out.reshape(n, ho, wo, f).transpose(0, 3, 1, 2))

    def vjp(g):
        gmat = g.transpose(0, 2, 3, 1).reshape(n * ho * wo, f)  # (N·Ho·Wo, F)
        gx = gw = gb = None
        if w.requires_grad:
            gw = (gmat.T @ cols).reshape(w.shape)
            add_flops(2 * gmat.size * cols.shape[1])
        if b is not None and b.requires_grad:
            gb = gmat.sum(axis=0)
        if x.requires_grad:
            dcols = gmat @ wmat                                   # (N·Ho·Wo, C·kh·kw)
            add_flops(2 * gmat.size * cols.shape[1])
            dwin = dcols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
            gx = _unpad(_col2im(dwin, xp.shape, kh, kw, sh, sw), ph, pw)
        return gx, gw, gb

    parents = (x, w) if b is None else (x, w, b)
    return Tensor.from_op(out, parents, vjp)


def max_pool2d(x, kernel_size=2, stride=None, padding=0) -> Tensor:
    """Max over (kh, kw) windows. x: (N, C, H, W) -> (N, C, Ho, Wo).

    The gradient goes to the first maximum of each window.
    """
    x = as_tensor(x)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride if stride is not None else kernel_size)
    ph, pw = _pair(padding)
    n, c, h, wd = x.shape
    if ph or pw:
        xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    else:
        xp = x.data
    tiled = (kh, kw) == (sh, sw) and xp.shape[2] % kh == 0 and xp.shape[3] % kw == 0
    if tiled:
        # non-overlapping tiles: a reshape, no strided view needed
        ho, wo = xp.shape[2] // kh, xp.shape[3] // kw
        tiles = xp.reshape(n, c, ho, kh, wo, kw).transpose(0, 1, 2, 4, 3, 5)
    else:
        tiles = _windows(xp, kh, kw, sh, sw)
        ho, wo = tiles.shape[2:4]
    flat = tiles.reshape(n, c, ho, wo, kh * kw)
    arg = flat.argmax(axis=-1)
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    def vjp(g):
        onehot = arg[..., None] == np.arange(kh * kw)                 # (N, C, Ho, Wo, kh·kw)
        dwin = (onehot * g[..., None]).reshape(n, c, ho, wo, kh, kw)
        if tiled:
            dxp = dwin.transpose(0, 1, 2, 4, 3, 5).reshape(xp.shape)
        else:
            dxp = _col2im(dwin, xp.shape, kh, kw, sh, sw)
        return (_unpad(dxp, ph, pw),)

    return Tensor.from_op(out, (x,), vjp)
