"""Natural training on MNIST-5k, determinism, resume, checkpoints and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

import npadv
from npadv.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from npadv.cli import main
from npadv.data import load_mnist_5k
from npadv.training import Natural, TrainConfig, train
from npadv.training.method import Method


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_5k()


def _weights(model):
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.slow
def test_small_cnn_reaches_95_percent(mnist):
    # bar: >= 95.0 % test accuracy within 10 epochs
    model = npadv.small_cnn(seed=0)
    history = train(model, Natural(), mnist, TrainConfig(epochs=10, lr=0.05), progress=False)
    assert history[-1]["clean_acc"] >= 0.95, history


def test_mlp_reaches_90_percent(mnist):
    model = npadv.mlp(seed=0)
    history = train(model, Natural(), mnist, TrainConfig(epochs=10, lr=0.05), progress=False)
    assert history[-1]["clean_acc"] >= 0.90, history


def test_same_seed_bit_identical_and_resume_bit_identical(mnist, tmp_path):
    config = TrainConfig(epochs=2, lr=0.05, eval_size=200)
    a, b, c = (npadv.mlp(seed=3) for _ in range(3))
    train(a, Natural(), mnist, config, progress=False)
    train(b, Natural(), mnist, config, progress=False)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        assert np.array_equal(wa, wb)
    # the process dies during epoch 2's end-of-epoch work, after epoch 1's checkpoint
    ckpt = tmp_path / "ckpt.npz"
    stop_config = TrainConfig(epochs=2, lr=0.05, eval_size=200)
    one_epoch = _StopAfter(Natural(), epochs=1)
    with pytest.raises(_Killed):
        train(c, one_epoch, mnist, stop_config, checkpoint_path=ckpt, progress=False)
    resumed = npadv.mlp(seed=99)  # different init: everything must come from the checkpoint
    history = train(resumed, Natural(), mnist, stop_config, checkpoint_path=ckpt, resume=True,
                    progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    assert load_checkpoint(ckpt)[1]["epoch"] == 2
    for wa, wr in zip(_weights(a), _weights(resumed), strict=True):
        assert np.array_equal(wa, wr)


class _Killed(Exception):
    pass


class _StopAfter(Method):
    """A method that raises after `epochs` epochs, as if the process were killed."""

    def __init__(self, method, epochs):
        self.method, self.epochs, self.name = method, epochs, method.name

    def step(self, *args):
        return self.method.step(*args)

    def settings(self):
        return self.method.settings()      # so that the wrapped method may resume the run

    def end_of_epoch(self, model, x, y, epoch):
        if epoch > self.epochs:
            raise _Killed  # the checkpoint of this epoch is not yet written
        return None


def test_nan_inputs_and_bad_labels_refused(mnist):
    x, y = mnist[0][:64].copy(), mnist[1][:64].copy()
    x[5, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 examples"):
        train(npadv.mlp(), Natural(), (x, y, x, y), TrainConfig(epochs=1), progress=False)
    y[0] = 12
    with pytest.raises(ValueError, match="labels out of range"):
        train(npadv.mlp(), Natural(), (mnist[0][:64], y, x, y), TrainConfig(epochs=1),
              progress=False)


def test_checkpoint_refuses_pickle_and_other_architecture(tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, meta=np.array('{"model": "mlp"}'),
             **{"model/0.weight": np.array([object()], dtype=object)})
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(evil)
    good = tmp_path / "cnn.npz"
    save_checkpoint(good, {"model": npadv.small_cnn().state_dict()}, {"model": "mlp"})
    parts, meta = load_checkpoint(good)
    with pytest.raises(ValueError, match="does not match this model architecture"):
        npadv.mlp().load_state_dict(parts["model"])
    with pytest.raises(CheckpointError, match="object array"):
        save_checkpoint(tmp_path / "x.npz", {"m": {"a": np.array([None], dtype=object)}}, {})
    assert not (tmp_path / "x.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.npz", "evil.npz"]


def test_cli_train_resume_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--epochs", "2", "--no-progress", "--out", str(out),
            "--eval-size", "200"]
    assert main(args[:4] + ["1"] + args[5:]) == 0  # one epoch of a 1-epoch run
    lines = (out / "log.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert record["epoch"] == 1 and record["full_passes"] == 32 and 0.5 < record["clean_acc"]
    assert main(args) == 2
    assert "exists; use --resume" in capsys.readouterr().err
    eval_json = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "checkpoint.npz"), "--n", "100",
                 "--attack", "fgsm", "--eps", "0", "0.2", "--no-progress", "--batch-size", "40",
                 "--json", str(eval_json)]) == 0
    printed = capsys.readouterr().out
    # the plan, then the estimate from the first batch, before the results
    assert "fgsm; n = 100 in 3 batches of up to 40, linf eps = 0, 0.2" in printed
    assert printed.index("first batch: 40 of 100 examples in") < printed.index("worst case")
    assert "estimated time for all 100 at 2 ε: about" in printed
    result = json.loads(eval_json.read_text())
    assert result["n"] == 100 and [r["eps"] for r in result["results"]] == [0, 0.2]
    # ε = 0 leaves the accuracy clean; ε = 0.2 on a natural MLP lowers it
    assert result["results"][0]["robust_accuracy"] == result["clean_accuracy"]
    assert result["results"][1]["robust_accuracy"] < result["clean_accuracy"]
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.npz")]) == 2


@pytest.mark.slow
def test_cli_demo_quick_subset_writes_table_and_json(tmp_path, capsys, monkeypatch):
    import npadv.data
    import npadv.experiments as experiments  # smaller still: this tests the plumbing

    x_train, y_train, x_test, y_test = npadv.data.load_mnist_5k()
    monkeypatch.setattr(npadv.data, "load_mnist_5k",      # 8 minibatches an epoch
                        lambda: (x_train[:1024], y_train[:1024], x_test, y_test))
    monkeypatch.setitem(experiments.DEMO_QUICK, "budget", 1.0)
    monkeypatch.setitem(experiments.DEMO_QUICK, "n_eval", 100)
    monkeypatch.setitem(experiments.DEMO_QUICK, "reference_epochs", 1)
    assert main(["demo", "--quick", "--methods", "natural", "yopo", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "comparison.json").read_text())
    rows = {r["method"] + ("-ref" if r["reference"] else ""): r for r in summary["rows"]}
    assert set(rows) == {"natural", "yopo", "pgd-ref"}
    # 8 minibatches an epoch: natural 1 full pass each; YOPO-5-3 5 full + 15 first-layer
    nat, yopo = rows["natural"], rows["yopo"]
    assert nat["full_passes"] == 8 * nat["epochs"] and nat["first_layer_passes"] == 0
    assert yopo["full_passes"] == 5 * 8 * yopo["epochs"]
    assert yopo["first_layer_passes"] == 15 * 8 * yopo["epochs"]
    for r in rows.values():
        assert 0 <= r["robust_acc"] <= r["clean_acc"] <= 1
    assert "YOPO-5-3" in capsys.readouterr().out
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


def test_cli_train_text_task(tmp_path, capsys):
    assert main(["train", "--task", "text", "--method", "fgm", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record["method"] == "fgm" and 0 <= record["robust_acc"] <= record["clean_acc"] <= 1
    assert "fgm on the synthetic sentiment task" in capsys.readouterr().out
    assert main(["train", "--method", "fgm", "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert "use it with --task text" in capsys.readouterr().err
