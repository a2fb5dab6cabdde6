"""Text classifiers whose word embeddings are exposed, so that methods can perturb them.

Every model here has the same three entry points::

    e = model.embed(ids)            # ids (B, T) int  -> e (B, T, d), the perturbable layer
    logits = model.head(e, mask)    # e (B, T, d), mask (B, T) 1/0 -> logits (B, C)
    logits = model(ids, mask)       # = head(embed(ids), mask)

and its last layer is `model.classifier`, a Linear: a full pass (forward and backward through
the whole network) is counted as one backward pass of that layer in a cost meter,
``meter.backwards[model.classifier]`` (see `npadv.text.train.full_passes`).

Padding. `head` ignores padded positions entirely: the embeddings at positions with
mask = 0 (whatever they are: the <pad> row, a perturbation, anything) never change the
logits, and the logits of an example do not depend on how much padding its batch has.

TextCNN (Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014),
one branch per kernel width k:

    1: x ← e·mask                                 zero the padded positions
    2: h ← ReLU(conv_k(x))                        1-D wide convolution over time, as conv2d on
                                                  (B, d, 1, T) with kernel (F, d, 1, k) and
                                                  k−1 zeros each side: (B, F, 1, T+k−1)
    3: h ← h·window_mask_k                        windows with no real token → 0
    4: z_k ← max_t h                              max over time: (B, F)
    5: logits ← classifier([z_k for each k])      Linear(F·#k, C)

Why both masks. Line 1 makes the value of every window depend on real tokens only (a
window that overlaps padding reads zeros there, exactly as it reads the k−1 zeros beyond
the sentence's ends), so the padded embeddings cannot matter. Line 3 removes the windows
lying wholly in padding, whose value (ReLU of the bias) would otherwise take part in the
max and make an example's output depend on its batch's length. Multiplying by the mask
is exact here because it follows the ReLU: all values are ≥ 0 and each example has at
least one real window, so a zeroed window can only tie with a maximum of 0, where the
ReLU passes no gradient anyway.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..engine import DEFAULT_DTYPE, Tensor, as_tensor, ops
from ..nn import Conv2d, Embedding, Linear, Module


def window_mask(mask: np.ndarray, k: int) -> np.ndarray:
    """Which windows of a wide convolution of width k contain a real token.

    mask: (B, T) 1 at real tokens, 0 at padding (any pattern, not only right padding).
    Returns (B, T+k−1) of mask's dtype: window t covers positions t−k+1 .. t, and is 1 when
    one of them is real.
    """
    mask = np.asarray(mask)
    padded = np.pad(mask, ((0, 0), (k - 1, k - 1)))                     # (B, T+2k−2)
    return sliding_window_view(padded, k, axis=1).max(axis=-1)          # (B, T+k−1)


def _check_mask(e: Tensor, mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != e.shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} does not match embeddings {e.shape}")
    if mask.shape[1] and not (mask.max(axis=1) > 0).all():
        raise ValueError("every example needs at least one real (mask = 1) token")
    return mask


class TextCNN(Module):
    """Embedding → wide 1-D convolutions (one per kernel width) → ReLU → masked max over
    time → Linear (algorithm in the module docstring).

    Attributes: embedding (Embedding(V, d)), conv{k} for each width k (Conv2d(d, F, (1, k))),
    classifier (Linear(F·#widths, C)), kernel_sizes.
    """

    def __init__(self, vocab_size: int, dim: int = 64, filters: int = 64,
                 kernel_sizes: Sequence[int] = (3,), num_classes: int = 2, seed: int = 0,
                 dtype=DEFAULT_DTYPE):
        rng = np.random.default_rng(seed)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            raise ValueError(f"kernel sizes must be positive, got {kernel_sizes}")
        if len(set(self.kernel_sizes)) != len(self.kernel_sizes):
            raise ValueError(f"kernel sizes must be distinct, got {kernel_sizes}")
        self.embedding = Embedding(vocab_size, dim, rng=rng, dtype=dtype)
        for k in self.kernel_sizes:
            setattr(self, f"conv{k}", Conv2d(dim, filters, (1, k), padding=(0, k - 1),
                                             rng=rng, dtype=dtype))
        self.classifier = Linear(filters * len(self.kernel_sizes), num_classes, rng=rng,
                                 dtype=dtype)

    def embed(self, ids: np.ndarray) -> Tensor:
        """ids: (B, T) int -> e: (B, T, d), in the table's dtype."""
        return self.embedding(ids)

    def head(self, e, mask: np.ndarray) -> Tensor:
        """e: (B, T, d) float; mask: (B, T) 1/0 -> logits (B, C)."""
        e = as_tensor(e)
        mask = _check_mask(e, mask)
        B, T, d = e.shape
        x = e * mask[:, :, None]                                            # 1: e·mask
        x = ops.reshape(ops.transpose(x, 0, 2, 1), B, d, 1, T)              # (B, d, 1, T)
        pooled = []
        for k in self.kernel_sizes:
            h = ops.relu(getattr(self, f"conv{k}")(x))                      # 2: (B, F, 1, T+k−1)
            h = h * window_mask(mask, k)[:, None, None, :]                  # 3
            pooled.append(ops.max(h, axis=(2, 3)))                          # 4: (B, F)
        z = pooled[0] if len(pooled) == 1 else ops.concat(pooled, axis=1)
        return self.classifier(z)                                           # 5

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> Tensor:
        return self.head(self.embed(ids), mask)

    def __repr__(self):
        f = getattr(self, f"conv{self.kernel_sizes[0]}").out_channels
        return (f"TextCNN(vocab={self.embedding.num_embeddings}, dim={self.embedding.dim}, "
                f"filters={f}, kernel_sizes={self.kernel_sizes})")


class BagOfEmbeddings(Module):
    """Masked mean of the word embeddings → Linear: an order-blind baseline.

    head: z = Σ_t mask_t·e_t / Σ_t mask_t (B, d), logits = classifier(z).
    """

    def __init__(self, vocab_size: int, dim: int = 64, num_classes: int = 2, seed: int = 0,
                 dtype=DEFAULT_DTYPE):
        rng = np.random.default_rng(seed)
        self.embedding = Embedding(vocab_size, dim, rng=rng, dtype=dtype)
        self.classifier = Linear(dim, num_classes, rng=rng, dtype=dtype)

    def embed(self, ids: np.ndarray) -> Tensor:
        """ids: (B, T) int -> e: (B, T, d)."""
        return self.embedding(ids)

    def head(self, e, mask: np.ndarray) -> Tensor:
        """e: (B, T, d) float; mask: (B, T) 1/0 -> logits (B, C)."""
        e = as_tensor(e)
        mask = _check_mask(e, mask).astype(e.dtype)
        weights = mask / mask.sum(axis=1, keepdims=True)                    # (B, T), rows sum to 1
        z = ops.sum(e * weights[:, :, None], axis=1)                        # (B, d)
        return self.classifier(z)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> Tensor:
        return self.head(self.embed(ids), mask)

    def __repr__(self):
        return (f"BagOfEmbeddings(vocab={self.embedding.num_embeddings}, "
                f"dim={self.embedding.dim})")


def text_cnn(vocab_size: int, dim: int = 64, filters: int = 64,
             kernel_sizes: Sequence[int] = (3,), num_classes: int = 2, seed: int = 0,
             dtype=DEFAULT_DTYPE) -> TextCNN:
    """A TextCNN (see `TextCNN`); all weights drawn from default_rng(seed)."""
    return TextCNN(vocab_size, dim, filters, kernel_sizes, num_classes, seed, dtype)


def bag_of_embeddings(vocab_size: int, dim: int = 64, num_classes: int = 2, seed: int = 0,
                      dtype=DEFAULT_DTYPE) -> BagOfEmbeddings:
    """A BagOfEmbeddings baseline (see `BagOfEmbeddings`), weights from default_rng(seed)."""
    return BagOfEmbeddings(vocab_size, dim, num_classes, seed, dtype)
