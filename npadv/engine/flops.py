"""The FLOP counter at the bottom of the engine: matmul, linear and conv report their
multiply-adds here (2 FLOPs each), and every active counter adds them up.

    with counting_flops(counter):     # counter: any object with an int attribute `flops`
        ...
npadv.cost (above the layers) builds its meter on this.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_ACTIVE: list = []


def add_flops(n: int) -> None:
    for counter in _ACTIVE:
        counter.flops += int(n)


@contextmanager
def counting_flops(counter) -> Iterator[None]:
    """Add every FLOP reported inside the context to `counter.flops` (counters nest)."""
    _ACTIVE.append(counter)
    try:
        yield
    finally:
        _ACTIVE.remove(counter)
