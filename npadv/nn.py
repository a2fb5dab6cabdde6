"""Modules: a tree of Parameters with train/eval mode and state dicts.

Calling a Module runs its forward, then every registered forward hook (see
`register_forward_hook`; the cost meter in cost.py is one).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from .engine import DEFAULT_DTYPE, Tensor, as_tensor, ops
from .engine import functional as F

ForwardHook = Callable[["Module", object], object]
_FORWARD_HOOKS: list[ForwardHook] = []


class Parameter(Tensor):
    """A Tensor that is a model weight: always requires grad."""

    def __init__(self, data, dtype=None):
        super().__init__(data, requires_grad=True, dtype=dtype)


@contextmanager
def forward_hook(hook: ForwardHook) -> Iterator[None]:
    """Run hook(module, output) -> output after every Module call while the context is open."""
    _FORWARD_HOOKS.append(hook)
    try:
        yield
    finally:
        _FORWARD_HOOKS.remove(hook)


@contextmanager
def evaluating(model) -> Iterator[None]:
    """Put every submodule in eval mode for the block, then restore each one's own mode.

    A plain callable without `modules()` is left alone.
    """
    saved = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    for m, _ in saved:
        m.training = False
    try:
        yield
    finally:
        for m, mode in saved:
            m.training = mode


@contextmanager
def frozen(model) -> Iterator[None]:
    """Stop the model's parameters from requiring grad (and so from receiving gradients).

    Only input gradients flow, and the weight-gradient products are skipped. Flags and
    `.grad` fields are restored on exit, also after an exception. A plain callable without
    `parameters()` is left alone.
    """
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    saved = [(p, p.requires_grad, p.grad) for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p, flag, grad in saved:
            p.requires_grad, p.grad = flag, grad


class Module:
    """Base class. Subclasses set Parameters and child Modules as attributes and define forward."""

    training = True

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(_FORWARD_HOOKS):
            out = hook(self, out)
        return out

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    # ---- the tree ------------------------------------------------------------------
    def children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> Iterator[Module]:
        yield self
        for _, child in self.children():
            yield from child.modules()

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].dtype if params else DEFAULT_DTYPE

    def to(self, dtype) -> Module:
        """Cast every parameter to `dtype` (e.g. np.float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    # ---- state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, keyed by its dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Load parameters; names and shapes must match exactly, else ValueError saying which."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = [f"{k}: checkpoint {np.shape(state[k])} vs model {own[k].shape}"
                 for k in own if k in state and np.shape(state[k]) != own[k].shape]
        if missing or unexpected or wrong:
            raise ValueError("state dict does not match this model architecture: "
                             f"missing {missing}, unexpected {unexpected}, shape mismatch {wrong}")
        for name, p in own.items():
            p.data = np.array(state[name], dtype=p.dtype)
            p.grad = None


def _check_input(x, dtype, what: str, ndim: int | None = None, size: tuple | None = None):
    """Wrap x as a Tensor and check its rank, trailing sizes and dtype; clear errors if not."""
    x = as_tensor(x)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{what} expects a {ndim}-D input, got shape {x.shape}")
    if size is not None:
        for axis, expected in size:
            if x.shape[axis] != expected:
                raise ValueError(
                    f"{what} expects size {expected} on axis {axis}, got input shape {x.shape}")
    if x.dtype != dtype:
        raise TypeError(f"{what} has {dtype} weights but got a {x.dtype} input")
    return x


def _uniform(rng: np.random.Generator, bound: float, shape, dtype) -> Parameter:
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


class Linear(Module):
    """y = x Wᵀ + b. x: (..., in) -> (..., out); with flatten=True, x: (N, *) is flattened first.

    flatten=True makes the mlp's first layer one layer with weights, so that every reference
    model has its f0 (YOPO's first layer, the cost meter's first layer) at model[0].

    Initialisation as PyTorch: W, b ~ U(−1/√in, 1/√in).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 flatten: bool = False, rng: np.random.Generator | None = None,
                 dtype=DEFAULT_DTYPE):
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1 / math.sqrt(in_features)
        self.in_features, self.out_features, self.flatten = in_features, out_features, flatten
        self.weight = _uniform(rng, bound, (out_features, in_features), dtype)
        self.bias = _uniform(rng, bound, (out_features,), dtype) if bias else None

    def forward(self, x):
        x = as_tensor(x)
        if self.flatten and x.ndim > 2:
            x = ops.reshape(x, x.shape[0], math.prod(x.shape[1:]))
        x = _check_input(x, self.weight.dtype, "Linear", size=[(-1, self.in_features)])
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class Conv2d(Module):
    """2-D convolution. x: (N, C_in, H, W) -> (N, C_out, Ho, Wo).

    Initialisation as PyTorch: U(−1/√fan_in, 1/√fan_in), fan_in = C_in·kh·kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, rng: np.random.Generator | None = None,
                 dtype=DEFAULT_DTYPE):
        rng = rng if rng is not None else np.random.default_rng()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding = stride, padding
        self.weight = _uniform(rng, bound, (out_channels, in_channels, kh, kw), dtype)
        self.bias = _uniform(rng, bound, (out_channels,), dtype) if bias else None

    def forward(self, x):
        x = _check_input(x, self.weight.dtype, "Conv2d", ndim=4, size=[(1, self.in_channels)])
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def __repr__(self):
        k = self.weight.shape[2:]
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={k}, "
                f"stride={self.stride}, padding={self.padding})")


class MaxPool2d(Module):
    """Max over windows. relu=True computes max_pool2d(relu(x)) as one op (Sequential
    does that for a ReLU directly before a MaxPool2d; see F.relu_max_pool2d)."""

    def __init__(self, kernel_size=2, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, relu: bool = False):
        x = as_tensor(x)
        if x.ndim != 4:
            raise ValueError(f"MaxPool2d expects a 4-D input, got shape {x.shape}")
        pool = F.relu_max_pool2d if relu else F.max_pool2d
        return pool(x, self.kernel_size, self.stride, self.padding)

    def __repr__(self):
        return f"MaxPool2d({self.kernel_size})"


class ReLU(Module):
    def forward(self, x):
        return ops.relu(as_tensor(x))

    def __repr__(self):
        return "ReLU()"


class Flatten(Module):
    """(N, *) -> (N, prod(*))."""

    def forward(self, x):
        x = as_tensor(x)
        return ops.reshape(x, x.shape[0], math.prod(x.shape[1:]))

    def __repr__(self):
        return "Flatten()"


class Dropout(Module):
    """Inverted dropout in train mode, the identity in eval mode. Its Generator is its own state."""

    def __init__(self, p: float = 0.5, seed: int = 0):
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Embedding(Module):
    """Lookup table. ids: (N, T) int -> (N, T, d). Initialisation N(0, 1) as PyTorch."""

    def __init__(self, num_embeddings: int, dim: int, rng: np.random.Generator | None = None,
                 dtype=DEFAULT_DTYPE):
        rng = rng if rng is not None else np.random.default_rng()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = Parameter(rng.standard_normal((num_embeddings, dim)).astype(dtype))

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.dim})"


class Sequential(Module):
    """Layers applied in order; model[0] is the first layer, model[i:j] a sub-Sequential.

    A ReLU directly followed by a MaxPool2d runs as one op, max_pool2d(relu(x)) computed
    as relu(max_pool2d(x)): the same numbers and gradients, without a ReLU pass over the
    larger array. Forward hooks then see that pair as one call of the MaxPool2d.
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)
        self._n = len(layers)

    @property
    def layers(self) -> list[Module]:
        return [getattr(self, str(i)) for i in range(self._n)]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return self._n

    def forward(self, x):
        layers, k = self.layers, 0
        while k < len(layers):
            if (isinstance(layers[k], ReLU) and k + 1 < len(layers)
                    and isinstance(layers[k + 1], MaxPool2d)):
                x = layers[k + 1](x, relu=True)       # ReLU then max-pool, fused
                k += 2
            else:
                x = layers[k](x)
                k += 1
        return x

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
