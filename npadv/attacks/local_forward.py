"""The logits of an image that differs from a cached one in a small square: Square's query.

Square (square.py) changes one square of x̂ per query. A convolution's output depends
only on the window under its kernel, so the first layers of a CNN change only near the
square, and only there do they need recomputing:

    conv (k×k, stride 1, padding p)   changed rows [lo, hi) of its input change the output
                                      rows [lo + p − k + 1, hi + p − 1]
    max-pool (q×q, stride q)          changed conv rows [a, b] change pooled rows
                                      [⌊a/q⌋, ⌊b/q⌋]
    (and the same for the columns)

LocalForward caches, for each example, the input of every conv block (padded) and the
output of the last one; a query recomputes, block by block, a fixed-size window of pooled
outputs that covers the changed ones (shifted inside the map where the square is near an
edge), writes it into a copy of the caches, and runs the rest of the model (Flatten, Linear,
...) in full. Each recomputed output is the same dot product of the same numbers as in the
full forward (one row of the conv's weight matrix times one im2col column), and max and
ReLU are exact, so the logits are the full forward's bit for bit, PROVIDED the BLAS
computes a column of a matmul the same way wherever it falls in the batch. OpenBLAS does
for small_cnn in float32 (what `npadv eval` runs; tests/test_square.py checks it against
`predict`, and bench/eval_speed.py the per-example results of the whole suite); in float64,
or with 4 or 6 filters, its edge kernels round some columns differently, and the logits
can differ from the full forward's in the last bits, as the full forward's own do between
two batch sizes.

It applies to an npadv Sequential that starts with one or more blocks
Conv2d (stride 1) [ReLU] MaxPool2d (kernel = stride, no padding), in eval mode, with
inputs of the weights' dtype and no forward hooks; `LocalForward.build` returns None for
any other model, and Square then queries the model in full.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import nn
from ..engine import Tensor, no_grad


@dataclass(frozen=True)
class _Block:
    """Conv2d (k×k, stride 1, padding p), then ReLU if `relu`, then max-pool q×q."""

    conv: nn.Conv2d
    relu: bool
    pool: nn.MaxPool2d
    k: int
    p: int
    q: int


def _int(v) -> int | None:
    """An int, or a pair of equal ints, as an int; None otherwise."""
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    return None


def _blocks(layers: list) -> list[_Block]:
    """The leading conv blocks of `layers` that a local update can recompute."""
    blocks, i = [], 0
    while i + 1 < len(layers) and isinstance(layers[i], nn.Conv2d):
        conv = layers[i]
        relu = isinstance(layers[i + 1], nn.ReLU)
        j = i + 1 + relu
        if j >= len(layers) or not isinstance(layers[j], nn.MaxPool2d):
            break
        pool = layers[j]
        kh, kw = conv.weight.shape[2:]
        q, stride = _int(pool.kernel_size), _int(pool.stride if pool.stride is not None
                                                  else pool.kernel_size)
        if (kh != kw or _int(conv.stride) != 1 or _int(conv.padding) is None or q is None
                or stride != q or _int(pool.padding) != 0 or conv.bias is None):
            break
        blocks.append(_Block(conv, relu, pool, int(kh), _int(conv.padding), q))
        i = j + 1
    return blocks


def _window_index(start: np.ndarray, size: int, cols: bool = False) -> np.ndarray:
    """Rows (or columns) start .. start + size − 1 of each example, shaped to index an
    (N, C, H, W) array together with _window_at: (N, 1, size, 1), or (N, 1, 1, size)."""
    idx = start[:, None] + np.arange(size)
    return idx[:, None, None, :] if cols else idx[:, None, :, None]


def _window_at(n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Example and channel indices, (N, 1, 1, 1) and (1, C, 1, 1)."""
    return np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None]


class LocalForward:
    """Logits of x̂ and of x̂ with one square changed, from cached activations (see above).

        local = LocalForward.build(model, x_hat)     # None: query the model in full
        logits = local.logits                          # of x̂
        z_new = local.query(x_new, r, s, side)         # x_new = x̂ but in the squares
        local.accept(improved)                         # x̂ ← x_new where improved
        local.keep(mask)                               # drop the rows of finished examples
    """

    def __init__(self, blocks: list[_Block], head: nn.Sequential, x: np.ndarray):
        self.blocks, self.head = blocks, head
        # caches[b]: block b's padded input (N, C, H + 2p, W + 2p); caches[-1]: the last output
        self.caches = [self._pad(x, blocks[0].p)]
        with no_grad():
            for b, block in enumerate(blocks):
                h = Tensor(self._interior(b))
                out = block.pool(block.conv(h), relu=block.relu).data   # as Sequential fuses
                nxt = blocks[b + 1].p if b + 1 < len(blocks) else 0
                self.caches.append(self._pad(out, nxt))
        self.logits = self._head(self.caches[-1])
        self._pending: list[np.ndarray] = []
        self._pending_logits = self.logits

    @classmethod
    def build(cls, model, x: np.ndarray) -> LocalForward | None:
        """A LocalForward for `model` at x (N, C, H, W), or None if it does not apply."""
        if (not isinstance(model, nn.Sequential) or nn._FORWARD_HOOKS
                or any(m.training for m in model.modules())):
            return None
        layers = model.layers
        blocks = _blocks(layers)
        if not blocks or any(b.conv.weight.dtype != x.dtype for b in blocks):
            return None
        n_prefix = sum(2 + b.relu for b in blocks)
        if n_prefix == len(layers):
            return None
        return cls(blocks, nn.Sequential(*layers[n_prefix:]), x)

    # ---- the caches ---------------------------------------------------------------
    @staticmethod
    def _pad(a: np.ndarray, p: int) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, 0), (p, p), (p, p))) if p else np.ascontiguousarray(a)

    def _interior(self, b: int, caches=None) -> np.ndarray:
        a, p = (caches or self.caches)[b], self.blocks[b].p
        return a[:, :, p:a.shape[2] - p, p:a.shape[3] - p] if p else a

    def _head(self, out: np.ndarray) -> np.ndarray:
        with no_grad():
            return self.head(Tensor(out)).data

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the examples where mask (N,) holds."""
        self.caches = [c[mask] for c in self.caches]
        self.logits = self.logits[mask]

    def accept(self, mask: np.ndarray) -> None:
        """The last query's point becomes x̂ for the examples where mask (N,) holds."""
        for cache, new in zip(self.caches, self._pending, strict=True):
            cache[mask] = new[mask]
        self.logits[mask] = self._pending_logits[mask]

    # ---- a query ------------------------------------------------------------------
    def query(self, x_new: np.ndarray, r: np.ndarray, s: np.ndarray, side: int) -> np.ndarray:
        """Logits (N, K) of x_new, which equals x̂ except in the side×side squares whose
        top-left corners are (r, s) (N,) each."""
        n = len(x_new)
        caches = [c.copy() for c in self.caches]
        p0 = self.blocks[0].p
        rows, cols = _window_index(r, side), _window_index(s, side, cols=True)
        at = _window_at(n, x_new.shape[1])
        caches[0][(*at, rows + p0, cols + p0)] = x_new[(*at, rows, cols)]
        lo_r, lo_s, size = r, s, side                  # the changed window of block b's input
        for b, block in enumerate(self.blocks):
            inp = caches[b]
            h_out = inp.shape[2] - block.k + 1             # conv output size (padded input)
            w_out = inp.shape[3] - block.k + 1
            # changed conv outputs start at lo + p − k + 1 and number size + k − 1; the
            # pooled window covering them has m rows, kept inside the pooled map
            m_r = min((size + block.k - 2 + block.q - 1) // block.q + 1, h_out // block.q)
            m_s = min((size + block.k - 2 + block.q - 1) // block.q + 1, w_out // block.q)
            u_r = np.clip(np.maximum(lo_r + block.p - block.k + 1, 0) // block.q, 0,
                          h_out // block.q - m_r)
            u_s = np.clip(np.maximum(lo_s + block.p - block.k + 1, 0) // block.q, 0,
                          w_out // block.q - m_s)
            out = self._window(block, inp, u_r * block.q, u_s * block.q, m_r * block.q,
                               m_s * block.q)              # (N, F, m_r, m_s), pooled
            pn = self.blocks[b + 1].p if b + 1 < len(self.blocks) else 0
            w_rows, w_cols = _window_index(u_r, m_r), _window_index(u_s, m_s, cols=True)
            caches[b + 1][(*_window_at(n, out.shape[1]), w_rows + pn, w_cols + pn)] = out
            lo_r, lo_s, size = u_r, u_s, max(m_r, m_s)     # the next block's changed window
        self._pending = caches
        self._pending_logits = self._head(caches[-1])
        return self._pending_logits.copy()

    @staticmethod
    def _window(block: _Block, inp: np.ndarray, o_r: np.ndarray, o_s: np.ndarray,
                h: int, w: int) -> np.ndarray:
        """Block output over conv outputs [o_r, o_r + h) × [o_s, o_s + w) of each example,
        pooled: (N, F, h/q, w/q). inp is the block's padded input."""
        n, c = inp.shape[:2]
        k, q = block.k, block.q
        patches = sliding_window_view(inp, (h + k - 1, w + k - 1), axis=(2, 3))
        patch = patches[np.arange(n), :, o_r, o_s]                # (N, C, h + k − 1, w + k − 1)
        # im2col (C·k·k, N·h·w), rows (c, i, j) in the order of the conv's weight matrix as
        # in conv2d, copied tap by tap
        im2col = np.empty((c, k, k, n, h, w), dtype=inp.dtype)
        for i in range(k):
            for j in range(k):
                im2col[:, i, j] = patch[:, :, i:i + h, j:j + w].transpose(1, 0, 2, 3)
        weight = block.conv.weight.data
        f = weight.shape[0]
        y = np.matmul(weight.reshape(f, c * k * k), im2col.reshape(c * k * k, n * h * w))
        y = y.reshape(f, n, h, w)
        np.add(y, block.conv.bias.data[:, None, None, None], out=y)
        pooled = y[:, :, ::q, ::q].copy()                          # max over each q×q window
        for i in range(q):
            for j in range(q):
                if i or j:
                    np.maximum(pooled, y[:, :, i::q, j::q], out=pooled)
        if block.relu:                                             # relu(max) = max(relu)
            np.maximum(pooled, 0, out=pooled)
        return pooled.transpose(1, 0, 2, 3)                        # (N, F, h/q, w/q)
