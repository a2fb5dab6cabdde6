"""The cost meter: FLOPs of matmul and conv, and forward/backward calls of Modules.

    with npadv.cost() as c:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    c.flops                       # multiply-add FLOPs (2 per multiply-add), forward and backward
    c.full_passes(model)          # backward passes through the whole model
    c.first_layer_passes(model)   # backward passes through model[0] alone (YOPO's cheap updates)

A "pass" is counted when a gradient flows back through a Module's output, so a
forward without a backward (evaluation) counts in `forwards` but not as a pass.
Meters nest: every active meter counts. The meter sees Module calls through a forward
hook (nn.forward_hook), and FLOPs through the engine's counter (npadv.engine.flops),
which matmul and conv report to.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from .engine import Tensor, counting_flops
from .nn import Sequential, forward_hook


class CostMeter:
    """Counts FLOPs and Module calls while it is active."""

    def __init__(self) -> None:
        self.flops = 0
        self.forwards: Counter = Counter()
        self.backwards: Counter = Counter()

    def count_call(self, module, out):
        """Forward hook: count the call, and its backward pass once a gradient flows back."""
        self.forwards[module] += 1
        if not (isinstance(out, Tensor) and out.requires_grad):
            return out

        def vjp(g):
            self.backwards[module] += 1
            return (g,)

        return Tensor.from_op(out.data, (out,), vjp)

    def full_passes(self, model) -> int:
        """Backward passes through the whole model, counted at its output layer: a text
        model's `classifier`, a Sequential's last layer."""
        return self.backwards[_output_layer(model)]

    def first_layer_passes(self, model) -> int:
        """Backward passes through a Sequential's model[0] that were not part of a full
        pass (YOPO's cheap updates); 0 for a model that is not a Sequential."""
        if not isinstance(model, Sequential):
            return 0
        return self.backwards[model[0]] - self.backwards[model[-1]]

    def __repr__(self) -> str:
        return f"CostMeter(flops={self.flops:.3e}, modules={len(self.forwards)})"


def _output_layer(model):
    return model.classifier if hasattr(model, "classifier") else model[-1]


@contextmanager
def cost() -> Iterator[CostMeter]:
    """Context manager yielding a CostMeter that counts everything done inside it."""
    meter = CostMeter()
    with counting_flops(meter), forward_hook(meter.count_call):
        yield meter
