"""Restarts: the seed of each run, and each example's worst case over the runs.

A successful run beats an unsuccessful one; between two equally successful runs the higher
objective wins (the loss, or minus the loss for a targeted attack). With an int seed s,
restart r draws its start from default_rng(s + r), so it is exactly the single-restart
run with seed s + r.
"""
from __future__ import annotations

import numpy as np

Seed = int | np.random.Generator | None


def restart_rng(rng: Seed, r: int) -> np.random.Generator:
    """The generator for restart r: default_rng(seed + r) for an int seed, the generator
    itself (drawn from in sequence) for a Generator, a fresh unseeded one for None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng) + r)
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def better(success_new: np.ndarray, objective_new: np.ndarray, success_old: np.ndarray,
           objective_old: np.ndarray) -> np.ndarray:
    """(N,) bool: the new result beats the old one — success first, then higher objective."""
    return (success_new & ~success_old) | ((success_new == success_old)
                                           & (objective_new > objective_old))


class WorstCase:
    """Each example's worst case so far: its point, loss and whether the attack succeeded.

    x: (N, ...) the clean inputs (the starting worst case). `sign` is +1 when a higher
    loss is worse for the model, −1 for a targeted attack.
    """

    def __init__(self, x: np.ndarray, sign: float = 1.0):
        self.x = x.copy()
        self.loss = np.full(len(x), np.nan, dtype=x.dtype)
        self.success = np.zeros(len(x), dtype=bool)
        self.sign = sign

    def keep(self, idx: np.ndarray, x: np.ndarray, loss: np.ndarray, success: np.ndarray,
             first: bool = False) -> None:
        """Offer the run's results for the examples idx; each keeps the better one."""
        win = better(success, self.sign * loss, self.success[idx], self.sign * self.loss[idx])
        if first:
            win |= True
        self.x[idx[win]], self.loss[idx[win]] = x[win], loss[win]
        self.success[idx[win]] = success[win]
