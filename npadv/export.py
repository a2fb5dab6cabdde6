"""Export an npadv Sequential as the equivalent torch.nn.Sequential, for independent checks.

Any PyTorch tool (AutoAttack, torchattacks, RobustBench's scripts) can then attack an npadv
model. npadv does not import torch: the weights are written with NumPy under PyTorch's
state_dict names ("0.weight", "3.bias", ...), and the Sequential's definition is written
beside them as a small Python file with build() and load():

    export_torch(model, "small-cnn", "out/small_cnn.npz")
        -> out/small_cnn.npz   the weights, PyTorch state_dict names, no pickle
           out/small_cnn.py    build() -> nn.Sequential; load() -> it with the weights

    # later, where torch is installed
    spec = importlib.util.spec_from_file_location("twin", "out/small_cnn.py")
    twin = importlib.util.module_from_spec(spec); spec.loader.exec_module(twin)
    torch_model = twin.load()                 # eval mode, same logits as the npadv model

A path ending in .pt or .pth writes a real torch state_dict (torch.save) instead of the
.npz; that one needs torch to be importable at export time.

The two files are written together (npadv.files.atomic_outputs): both to temporary files
first, then both renamed into place, so a failed export (a full disk) leaves the earlier
pair as it was, never a new weights file beside an old definition.

Layer map (npadv -> torch): Linear -> Linear (preceded by Flatten when it flattens its
input itself), Conv2d -> Conv2d, MaxPool2d -> MaxPool2d, ReLU -> ReLU, Flatten -> Flatten,
Dropout -> Dropout. Both compute the same functions: cross-correlation convolutions with
zero padding, max pooling padded with −inf, W of shape (out, in).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import nn
from .files import atomic_outputs, check_output_path

TORCH_SUFFIXES = (".pt", ".pth")


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(a) for a in v)


def torch_layers(model: nn.Sequential) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The torch layers equivalent to model's, in order: (constructor source, its weights).

    Raises TypeError for a model that is not a Sequential of the supported layers.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"export needs an npadv Sequential, got {type(model).__name__}")
    layers: list[tuple[str, dict[str, np.ndarray]]] = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nn.Linear):
            if layer.flatten:
                layers.append(("nn.Flatten()", {}))
            bias = layer.bias is not None
            params = {"weight": layer.weight.data}
            if bias:
                params["bias"] = layer.bias.data
            layers.append((f"nn.Linear({layer.in_features}, {layer.out_features}, "
                           f"bias={bias})", params))
        elif isinstance(layer, nn.Conv2d):
            bias = layer.bias is not None
            params = {"weight": layer.weight.data}
            if bias:
                params["bias"] = layer.bias.data
            layers.append((f"nn.Conv2d({layer.in_channels}, {layer.out_channels}, "
                           f"kernel_size={tuple(layer.weight.shape[2:])}, "
                           f"stride={_pair(layer.stride)}, padding={_pair(layer.padding)}, "
                           f"bias={bias})", params))
        elif isinstance(layer, nn.MaxPool2d):
            kernel = _pair(layer.kernel_size)
            stride = kernel if layer.stride is None else _pair(layer.stride)
            layers.append((f"nn.MaxPool2d(kernel_size={kernel}, stride={stride}, "
                           f"padding={_pair(layer.padding)})", {}))
        elif isinstance(layer, nn.ReLU):
            layers.append(("nn.ReLU()", {}))
        elif isinstance(layer, nn.Flatten):
            layers.append(("nn.Flatten()", {}))
        elif isinstance(layer, nn.Dropout):
            layers.append((f"nn.Dropout(p={layer.p})", {}))
        else:
            raise TypeError(f"layer {i} ({type(layer).__name__}) has no torch equivalent here")
    return layers


def torch_state_dict(model: nn.Sequential) -> dict[str, np.ndarray]:
    """Model weights under the torch Sequential's names, e.g. {"0.weight": (16, 1, 5, 5)}."""
    return {f"{j}.{name}": np.ascontiguousarray(value)
            for j, (_, params) in enumerate(torch_layers(model))
            for name, value in params.items()}


def torch_definition(model: nn.Sequential, model_name: str = "model",
                     weights_file: str = "model.npz") -> str:
    """Python source of a module with build() -> nn.Sequential and load(path) -> weights in."""
    dtype = "float64" if model.dtype == np.float64 else "float32"
    body = "\n".join(f"        {code},  # {j}" for j, (code, _) in enumerate(torch_layers(model)))
    return f'''"""PyTorch twin of the npadv model {model_name!r}: build() and load().

Written by npadv.export. load() reads the weights (PyTorch state_dict names) from
{weights_file!r} beside this file, or from a path given, and returns the Sequential in
eval mode; its logits match the npadv model's.
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

DTYPE = torch.{dtype}
WEIGHTS = {weights_file!r}


def build() -> nn.Sequential:
    return nn.Sequential(
{body}
    )


def load(path=None) -> nn.Sequential:
    path = Path(__file__).with_name(WEIGHTS) if path is None else Path(path)
    if path.suffix in {TORCH_SUFFIXES!r}:
        state = torch.load(path, weights_only=True)
    else:
        with np.load(path, allow_pickle=False) as f:
            state = {{k: torch.from_numpy(f[k]) for k in f.files}}
    model = build().to(DTYPE)
    model.load_state_dict(state)
    return model.eval()
'''


def export_torch(model: nn.Sequential, model_name: str, out_path) -> tuple[Path, Path]:
    """Write model's weights to out_path and the torch Sequential's definition beside it.

    out_path: .npz (NumPy, no torch needed) or .pt/.pth (torch.save; needs torch). The
    definition goes to out_path with the suffix .py. Returns (weights path, definition path).
    Both files are replaced together or neither is; a failed write raises
    npadv.files.WriteError (an OSError naming the file).
    """
    out_path = Path(out_path)
    if out_path.suffix == ".py":
        raise ValueError(f"{out_path}: give the weights file (.npz, .pt); the definition "
                         "is written beside it as .py")
    state = torch_state_dict(model)
    definition = out_path.with_suffix(".py")
    source = torch_definition(model, model_name, out_path.name)
    torch = None
    if out_path.suffix in TORCH_SUFFIXES:
        try:
            import torch
        except ImportError as e:
            raise RuntimeError(f"writing {out_path} needs PyTorch; write an .npz instead "
                               "(no torch needed)") from e
    with atomic_outputs(out_path, definition) as (weights_tmp, definition_tmp):
        if torch is not None:
            torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, weights_tmp)
        else:
            with open(weights_tmp, "wb") as f:    # a file object: np.savez adds no suffix
                np.savez(f, **state)
        with open(definition_tmp, "w", encoding="utf-8") as f:
            f.write(source)
    return out_path, definition


def export_checkpoint(checkpoint, out_path) -> tuple[Path, Path]:
    """export_torch for the model stored in an npadv checkpoint (see checkpoint.load_model).

    Refuses (npadv.files.OutputPathError, a ValueError) to write over the checkpoint itself.
    """
    from .checkpoint import load_model

    out_path = Path(out_path)
    for path in (out_path, out_path.with_suffix(".py")):
        check_output_path(path, "export", inputs=[checkpoint])
    model, meta = load_model(checkpoint)
    return export_torch(model, meta["model"], out_path)
