"""Mini-batches over (x, y) arrays, with seeded and resumable shuffling.

`iterate_batches` is the one-pass helper. `Batches` derives each epoch's order from
``(seed, epoch)`` alone -- ``np.random.default_rng([seed, epoch]).permutation(n)`` -- so a
run resumed at epoch e (even mid-epoch, via ``start``) sees exactly the batches the
uninterrupted run would have seen, without saving any RNG state.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator

import numpy as np

__all__ = ["iterate_batches", "Batches"]

Batch = tuple[np.ndarray, np.ndarray]


def _check_xy(
    x: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"x and y must have a sample axis, got shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} samples vs {len(y)} labels")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return x, y, batch_size


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be non-negative, got {seed}")
    return int(seed)


def _gen_batches(
    x: np.ndarray, y: np.ndarray, order: np.ndarray | None, batch_size: int, n_batches: int,
    start: int = 0,
) -> Iterator[Batch]:
    for b in range(start, n_batches):
        lo, hi = b * batch_size, min((b + 1) * batch_size, len(x))
        if order is None:
            yield x[lo:hi], y[lo:hi]
        else:
            idx = order[lo:hi]
            yield x[idx], y[idx]


def _n_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int | np.random.Generator = 0,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """One pass over (x, y) in mini-batches.

    Args:
        x: (N, ...) samples, any dtype.
        y: (N, ...) targets, any dtype.
        batch_size: samples per batch (> 0); the last batch is smaller when N is not a
            multiple, unless `drop_last`.
        shuffle: visit samples in a random order; otherwise in storage order.
        seed: non-negative int (the same order on every call) or a np.random.Generator
            (consumed: successive calls give successive orders).
        drop_last: skip a final batch smaller than `batch_size`.

    Yields:
        (xb, yb): (B, ...) slices of x and y with the same dtypes. Views when not shuffling,
        copies when shuffling.

    Raises:
        ValueError / TypeError (at call time): lengths differ, batch_size not a positive
            int, or a bad seed.
    """
    x, y, batch_size = _check_xy(x, y, batch_size)
    order = None
    if shuffle:
        if isinstance(seed, np.random.Generator):
            rng = seed
        else:
            rng = np.random.default_rng(_check_seed(seed))
        order = rng.permutation(len(x))
    return _gen_batches(x, y, order, batch_size, _n_batches(len(x), batch_size, drop_last))


class Batches:
    """Epoch-indexed mini-batches whose order depends only on (seed, epoch).

    Example::

        batches = Batches(x, y, 128, seed=0)
        for epoch in range(start_epoch, n_epochs):
            for xb, yb in batches.epoch(epoch):
                ...

    Args:
        x: (N, ...) samples, any dtype.
        y: (N, ...) targets, any dtype.
        batch_size: samples per batch (> 0).
        shuffle: random order per epoch; otherwise storage order every epoch.
        seed: non-negative int.
        drop_last: skip a final batch smaller than `batch_size`.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.x, self.y, self.batch_size = _check_xy(x, y, batch_size)
        self.shuffle = bool(shuffle)
        self.seed = _check_seed(seed)
        self.drop_last = bool(drop_last)

    @property
    def n_samples(self) -> int:
        """N, the number of samples."""
        return len(self.x)

    def __len__(self) -> int:
        """Batches per epoch."""
        return _n_batches(len(self.x), self.batch_size, self.drop_last)

    def order(self, epoch: int) -> np.ndarray:
        """Sample order of `epoch` (non-negative int): (N,) int64 permutation of 0..N-1.

        ``np.random.default_rng([seed, epoch]).permutation(N)`` when shuffling, else
        ``arange(N)``.
        """
        epoch = _check_seed(epoch, "epoch")
        if not self.shuffle:
            return np.arange(len(self.x), dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of `epoch`, beginning at batch index `start` (to resume mid-epoch).

        Yields (xb, yb) of shapes (B, ...) as `iterate_batches`.

        Raises:
            ValueError: epoch negative, or start outside 0..len(self).
        """
        _check_seed(epoch, "epoch")
        order = self.order(epoch) if self.shuffle else None
        start = operator.index(start)
        if not 0 <= start <= len(self):
            raise ValueError(f"start must be in 0..{len(self)} (batches per epoch), got {start}")
        return _gen_batches(self.x, self.y, order, self.batch_size, len(self), start)

    def __repr__(self) -> str:
        return (
            f"Batches(n_samples={len(self.x)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last})"
        )
