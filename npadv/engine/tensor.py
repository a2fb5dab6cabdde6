"""The autograd engine: Tensor, backward, grad, no_grad.

A Tensor wraps an ndarray. An op (see ops.py, conv.py, functional.py) makes a new
Tensor that remembers its parents and a vector-Jacobian product `vjp(g)` returning
one gradient per parent. Both ways of differentiating walk the graph in reverse
topological order (found iteratively, so a 10,000-op chain is fine) and sum the
gradients that reach a tensor along every path:

- `loss.backward()` ACCUMULATES (+=) into `.grad`: leaves (tensors made by the user with
  requires_grad=True, and Parameters) keep it; an intermediate tensor keeps it only
  after `retain_grad()`. This is how parameters are trained.
- `grad(outputs, inputs)` RETURNS the gradients with respect to `inputs` and touches no
  `.grad`. It visits only the nodes on a path from an input to an output, and a backward
  rule asks `needs_grad(parent)` to skip the work for a parent whose gradient nobody
  reads (a matmul whose weight is not an input computes only the input's gradient).
  This is how attacks take the gradient with respect to the input, and YOPO with
  respect to the first layer's output.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

DEFAULT_DTYPE = np.float32
_GRAD_ENABLED = [True]
_NEEDED: list[set[int] | None] = [None]   # ids of the tensors the running pass wants; None: all


@contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    _GRAD_ENABLED.append(enabled)
    try:
        yield
    finally:
        _GRAD_ENABLED.pop()


def no_grad():
    """Inside this context no graph is recorded (ops return constants)."""
    return _grad_mode(False)


def enable_grad():
    """Record the graph again, even inside no_grad() (attacks need input gradients)."""
    return _grad_mode(True)


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED[-1]


def needs_grad(t: Tensor) -> bool:
    """Inside a backward rule: does the running pass want the gradient of input t?

    backward() wants it for every tensor that requires grad; grad(outputs, inputs) only for
    tensors on a path to `inputs`. A rule may return None for a parent that is not wanted.
    """
    needed = _NEEDED[-1]
    return t.requires_grad and (needed is None or id(t) in needed)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g down to `shape`, undoing NumPy broadcasting (extra leading axes, then size-1 axes)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


# dtype kinds a Tensor holds: floats (differentiable), signed and unsigned ints (indices,
# labels) and bools (made float32 unless a dtype is given). Complex numbers, strings,
# objects, records and dates are refused: no op computes with them or differentiates them.
_TENSOR_KINDS = "fiub"


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data, dtype=dtype)
    if arr.dtype.kind not in _TENSOR_KINDS:
        raise TypeError(f"Tensor data must be float, int or bool, got dtype {arr.dtype}")
    if dtype is None and arr.dtype.kind == "f" and not isinstance(data, np.ndarray):
        arr = arr.astype(DEFAULT_DTYPE)  # Python floats and lists become float32
    if dtype is None and arr.dtype.kind == "b":
        arr = arr.astype(DEFAULT_DTYPE)
    return arr


class Tensor:
    """An ndarray with a gradient.

    data: any shape; float32 by default (a float64 ndarray stays float64), ints for indices.
    Raises TypeError for data of another kind (complex, str, object, ...), naming its dtype.
    """

    __array_priority__ = 100  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._vjp: Callable[[np.ndarray], Sequence[np.ndarray | None]] | None = None
        self._retain = False

    # ---- construction of op outputs ------------------------------------------------
    @staticmethod
    def from_op(data: np.ndarray, parents: Sequence[Tensor],
                vjp: Callable[[np.ndarray], Sequence[np.ndarray | None]]) -> Tensor:
        """Make an op's output; it joins the graph only if some parent requires grad."""
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.name, out._retain = data, None, None, False
        out.requires_grad = is_grad_enabled() and any(p.requires_grad for p in parents)
        out._parents = tuple(parents) if out.requires_grad else ()
        out._vjp = vjp if out.requires_grad else None
        return out

    # ---- gradient ------------------------------------------------------------------
    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this intermediate tensor after backward()."""
        self._retain = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Backpropagate from this tensor; `grad` is the upstream gradient (1 for a scalar)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        for node, g in _backpropagate([self], [_seed(self, grad)], None):
            if node._vjp is None or node._retain:
                g_own = np.array(g, dtype=node.data.dtype)  # copy: g may view another array
                node.grad = g_own if node.grad is None else node.grad + g_own

    # ---- conveniences --------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def astype(self, dtype) -> Tensor:
        return _ops.astype(self, dtype)

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, threshold=8)}, dtype={self.dtype}{flag})"

    # ---- operators (rules live in ops.py) ------------------------------------------
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def relu(self): return _ops.relu(self)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis, keepdims)
    def reshape(self, *shape): return _ops.reshape(self, *shape)
    def transpose(self, *axes): return _ops.transpose(self, *axes)


def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Nodes that require grad, parents before children (iterative depth-first search)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False) for root in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in seen)
    return order


def _seed(out: Tensor, g) -> np.ndarray:
    """The upstream gradient of `out`: g, or 1 for a scalar."""
    if g is None:
        if out.data.size != 1:
            raise RuntimeError(f"a gradient of a non-scalar output (shape {out.shape}) needs "
                               "its upstream gradient")
        return np.ones_like(out.data)
    g = np.asarray(g, dtype=out.data.dtype)
    return g if g.shape == out.data.shape else np.broadcast_to(g, out.data.shape)


def _backpropagate(outputs: Sequence[Tensor], seeds: Sequence[np.ndarray],
                   wanted: set[int] | None) -> Iterator[tuple[Tensor, np.ndarray]]:
    """Send `seeds` back from `outputs`; yield (node, its total gradient) in reverse
    topological order, each node once all the gradients reaching it are summed.

    wanted: ids of the nodes to visit (None: every node that requires grad). A node's vjp
    runs after it is yielded, with needs_grad() answering for its parents.
    """
    grads: dict[int, np.ndarray] = {}
    for out, g in zip(outputs, seeds, strict=True):
        grads[id(out)] = g if id(out) not in grads else grads[id(out)] + g
    _NEEDED.append(wanted)
    try:
        for node in reversed(_topological_order(outputs)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            yield node, g
            if node._vjp is None:
                continue
            # a vjp may return a trailing None for an absent optional input (conv's bias)
            for parent, pg in zip(node._parents, node._vjp(g), strict=False):
                if pg is None or not needs_grad(parent):
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
    finally:
        _NEEDED.pop()


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs=None) -> np.ndarray | list[np.ndarray]:
    """The gradient of `outputs` with respect to each of `inputs`, touching no `.grad`.

        x = Tensor(images, requires_grad=True)
        g = grad(F.cross_entropy(model(x), y), x)         # ∇ₓ L, x's shape and dtype

    outputs: a Tensor or a sequence of them; grad_outputs: their upstream gradients (None:
    1 for each, which must then be scalars), i.e. the gradient of Σ⟨grad_outputs, outputs⟩.
    inputs: a Tensor or a sequence of Tensors, leaves or intermediate ones. Returns an array
    per input (a single array for a single Tensor), zeros where an input does not reach the
    outputs. Only the nodes on a path from an input to an output are visited.
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None or isinstance(grad_outputs, np.ndarray) and len(outputs) == 1:
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    seeds = [_seed(out, g) for out, g in zip(outputs, grad_outputs, strict=True)]
    targets = {id(t) for t in inputs}
    order = _topological_order([o for o in outputs if o.requires_grad])
    reaches: set[int] = set()          # nodes with a path to some input (parents come first)
    for node in order:
        if id(node) in targets or any(id(p) in reaches for p in node._parents):
            reaches.add(id(node))
    found: dict[int, np.ndarray] = {}
    live = [(o, s) for o, s in zip(outputs, seeds, strict=True) if id(o) in reaches]
    for node, g in _backpropagate([o for o, _ in live], [s for _, s in live], reaches):
        if id(node) in targets:
            found[id(node)] = np.array(g, dtype=node.data.dtype)   # copy: g may be a view
    result = [found[id(t)] if id(t) in found else np.zeros_like(t.data) for t in inputs]
    return result[0] if single else result


def as_tensor(x, dtype=None) -> Tensor:
    """x if it is already a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x, dtype=dtype)


from . import ops as _ops  # noqa: E402  (ops needs Tensor defined first)
