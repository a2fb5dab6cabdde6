"""Encoded sentences -> padded mini-batches of ids with a padding mask.

Pipeline::

    vocab = Vocab.build(tokenize(s) for s in sentences)  # npadv.text.vocab
    ids_list = encode_dataset(sentences, vocab)          # list of (L_i,) int64
    for ids, mask, y in iterate_text_batches(ids_list, labels, 32, seed=0, epoch=e):
        ...                                              # (B, T) int64, (B, T) float32, (B,)

Padding is on the right with `PAD_ID` (0); the mask is 1.0 at real tokens, 0.0 at padding.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .vocab import PAD_ID, Vocab, tokenize

__all__ = ["pad_batch", "encode_dataset", "iterate_text_batches"]


def _as_id_array(seq, index: int) -> np.ndarray:
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise ValueError(f"sequence {index} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"sequence {index} must hold integer ids, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"sequence {index} is empty: every example needs at least one token")
    return arr


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = PAD_ID,
              max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into one matrix.

    Args:
        seqs: N >= 1 one-dimensional integer id arrays (lists accepted), each non-empty.
            An empty sequence raises ValueError naming its index: an example without
            tokens has nothing to classify and would give an all-zero mask row.
        pad_id: id written into padding positions.
        max_len: if given, T is capped at `max_len` and longer sequences keep their first
            `max_len` tokens.

    Returns:
        ids: (N, T) int64, T = longest sequence (capped by `max_len`); row i holds
            sequence i followed by `pad_id`.
        mask: (N, T) float32, 1.0 at real tokens and 0.0 at padding; row i has
            ``min(len_i, T)`` leading ones.
    """
    if len(seqs) == 0:
        raise ValueError("pad_batch needs at least one sequence")
    if max_len is not None and (not isinstance(max_len, (int, np.integer)) or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    arrays = [_as_id_array(s, i) for i, s in enumerate(seqs)]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    T = int(lengths.max()) if max_len is None else min(int(lengths.max()), int(max_len))
    flat = np.concatenate(arrays).astype(np.int64, copy=False)
    # Position of every flat token inside its own sequence; drop those beyond T.
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(flat.size) - np.repeat(starts, lengths)
    mask = np.arange(T)[None, :] < np.minimum(lengths, T)[:, None]
    ids = np.full((len(arrays), T), pad_id, dtype=np.int64)
    ids[mask] = flat[pos < T]  # boolean assignment fills row-major, matching flat's order
    return ids, mask.astype(np.float32)


def encode_dataset(sentences: Sequence[str], vocab: Vocab) -> list[np.ndarray]:
    """Tokenise and encode each sentence: list of N arrays of shape (L_i,) int64.

    Raises ValueError naming the index of a sentence that has no tokens (see `pad_batch`).
    """
    if isinstance(sentences, str):
        raise TypeError("encode_dataset expects a sequence of sentences, got a str")
    out = []
    for i, sentence in enumerate(sentences):
        tokens = tokenize(sentence)
        if not tokens:
            raise ValueError(f"sentence {i} has no tokens: {sentence!r}")
        out.append(vocab.encode(tokens))
    return out


def check_labels(labels, n: int, what: str) -> np.ndarray:
    """labels as a 1-D integer array of length n (the number of `what`), else ValueError.

    Shared by `iterate_text_batches` and `npadv.text.tsv.write_tsv`.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {y.dtype} shape "
                         f"{y.shape}")
    if n != y.shape[0]:
        raise ValueError(f"{n} {what} but {y.shape[0]} labels")
    return y


def iterate_text_batches(ids_list: Sequence[np.ndarray], labels: np.ndarray, batch_size: int,
                         shuffle: bool = True, seed: int = 0, epoch: int = 0,
                         drop_last: bool = False, max_len: int | None = None,
                         pad_id: int = PAD_ID
                         ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield padded mini-batches ``(ids (B, T) int64, mask (B, T) float32, y (B,) int64)``.

    Each batch is padded to its own longest sequence (see `pad_batch`). With `shuffle`
    the example order is ``np.random.default_rng([seed, epoch]).permutation(N)`` (the
    convention of `npadv.data.batches`), a function of (seed, epoch) alone, so a run is
    reproducible, resumable at any epoch, and each epoch differs; without it the order is
    0..N-1. The last batch may be smaller than `batch_size` unless `drop_last`. Argument
    errors (length mismatch, bad batch_size, non-integer labels) raise at the call.
    """
    y = check_labels(labels, len(ids_list), "sequences")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    y = y.astype(np.int64, copy=False)
    n = y.shape[0]
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _batches(ids_list, y, order, batch_size, stop, pad_id, max_len)


def _batches(ids_list, y, order, batch_size, stop, pad_id, max_len):
    # Separate generator so that argument errors surface at the call, not at first next().
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        ids, mask = pad_batch([ids_list[i] for i in idx], pad_id=pad_id, max_len=max_len)
        yield ids, mask, y[idx]
