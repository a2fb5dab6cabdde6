"""Export to PyTorch: state_dict names and shapes without torch; with torch (when it is
installed, it is not a dependency), the same logits as the npadv model."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import npadv
from npadv import Tensor, nn
from npadv.checkpoint import save_checkpoint
from npadv.export import export_checkpoint, export_torch, torch_state_dict


def mlp_with_flatten() -> nn.Sequential:
    """The mlp written the PyTorch way: Flatten, then Linear."""
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32, rng=rng), nn.ReLU(),
                         nn.Linear(32, 10, rng=rng))


def strided_cnn() -> nn.Sequential:
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, rng=rng), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2, padding=1), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 10, bias=False, rng=rng))


MODELS = {"mlp": npadv.mlp, "small-cnn": npadv.small_cnn, "mlp-flatten": mlp_with_flatten,
          "strided-cnn": strided_cnn}


def test_state_dict_names_follow_the_torch_sequential():
    """Linear(flatten=True) becomes Flatten, Linear: the same names as Flatten, Linear."""
    expected = {"1.weight": (256, 784), "1.bias": (256,), "3.weight": (256, 256),
                "3.bias": (256,), "5.weight": (10, 256), "5.bias": (10,)}
    assert {k: v.shape for k, v in torch_state_dict(npadv.mlp()).items()} == expected
    cnn = torch_state_dict(npadv.small_cnn())
    assert sorted(cnn) == ["0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight",
                           "9.bias", "9.weight"]


def test_export_writes_weights_and_definition_without_torch(tmp_path):
    weights, definition = export_torch(npadv.small_cnn(), "small-cnn", tmp_path / "cnn.npz")
    assert weights == tmp_path / "cnn.npz" and definition == tmp_path / "cnn.py"
    with np.load(weights) as f:
        assert f["0.weight"].shape == (16, 1, 5, 5) and f["9.bias"].shape == (10,)
    source = definition.read_text()
    compile(source, str(definition), "exec")
    assert "nn.Conv2d(1, 16, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2)" in source
    with pytest.raises(TypeError, match="no torch equivalent"):
        export_torch(nn.Sequential(nn.Embedding(5, 3)), "emb", tmp_path / "e.npz")


def load_twin(definition):
    spec = importlib.util.spec_from_file_location("npadv_twin", definition)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(MODELS))
def test_torch_twin_gives_the_same_logits(tmp_path, name):
    torch = pytest.importorskip("torch")
    model = MODELS[name]().eval()
    _, definition = export_torch(model, name, tmp_path / f"{name}.npz")
    twin = load_twin(definition).load()
    x = np.random.default_rng(1).uniform(0, 1, (8, 1, 28, 28)).astype(np.float32)
    if name == "strided-cnn":
        x = x[:, :, :14, :14].copy()
    expected = model(Tensor(x)).data
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-5 * max(scale, 1.0)


def test_export_checkpoint_and_pt(tmp_path):
    torch = pytest.importorskip("torch")
    model = npadv.mlp(seed=3)
    ckpt = tmp_path / "checkpoint.npz"
    save_checkpoint(ckpt, {"model": model.state_dict()}, {"model": "mlp"})
    _, definition = export_checkpoint(ckpt, tmp_path / "mlp.pt")
    twin = load_twin(definition).load()
    x = np.random.default_rng(2).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    assert np.allclose(got, model(Tensor(x)).data, atol=1e-5)
