"""The command line refuses bad input in one line with exit code 2, before any work, and
training runs fail loudly: divergence stops them, resumes are checked, logs stay in step."""
from __future__ import annotations

import json

import numpy as np
import pytest

import npadv
from npadv.cli import main
from npadv.data import load_mnist_5k
from npadv.methods import build_method
from npadv.training import TrainConfig, train
from npadv.training import loop as loop_module
from npadv.training.loop import ResumeError, TrainingDiverged

# (arguments, the flag the message must name); "{file}" and "{dir}" are made in tmp_path.
BAD = [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "-1"], "--epochs"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--eval-size", "0"], "--eval-size"),
    (["train", "--eval-size", "-5"], "--eval-size"),
    (["train", "--momentum", "-1"], "--momentum"),
    (["train", "--momentum", "1"], "--momentum"),
    (["train", "--eps-ramp", "-2"], "--eps-ramp"),
    (["train", "--eps", "1e9"], "--eps"),
    (["train", "--eps", "-0.1"], "--eps"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "abc"], "--lr"),
    (["train", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "--steps", "-1", "--method", "pgd"], "--steps"),
    (["train", "--method", "pgd", "--replays", "2"], "--replays"),
    (["train", "--method", "natural", "--yopo-m", "2"], "--yopo-m"),
    (["train", "--model", "resnet"], "--model"),
    (["train", "--method", "fgm"], "--method"),
    (["train", "--out", "{file}"], "--out"),
    (["train", "--resume", "--out", "{dir}"], "--resume"),
    (["train", "--task", "text", "--resume"], "--resume"),
    (["train", "--task", "text", "--model", "mlp"], "--model"),
    (["train", "--task", "text", "--dataset", "mnist"], "--dataset"),
    (["train", "--data", "train.tsv", "dev.tsv"], "--data"),
    (["train", "--task", "text", "--method", "yopo"], "--method"),
    (["eval", "--checkpoint", "{file}", "--n", "0"], "--n"),
    (["eval", "--checkpoint", "{file}", "--n", "-3"], "--n"),
    (["eval", "--checkpoint", "{file}", "--json", "{dir}"], "--json"),
    (["eval", "--checkpoint", "{file}", "--attack", "pgd", "--norm", "linf", "--eps", "2"],
     "--eps"),
    (["eval", "--checkpoint", "{file}", "--steps", "-1"], "--steps"),
    (["eval", "--checkpoint", "{file}", "--attack", "standard", "pgd"], "--attack"),
    (["eval", "--checkpoint", "{file}", "--attack", "pgd", "--targeted"], "--targeted"),
    (["eval", "--checkpoint", "{file}", "--attack", "apgd", "--loss", "cw"], "--loss"),
    (["eval", "--checkpoint", "{file}", "--attack", "fgsm", "--norm", "l2"], "--norm"),
    (["eval", "--checkpoint", "{file}", "--attack", "nope"], "--attack"),
    (["eval", "--checkpoint", "{file}", "--attack", "pgd"], "{file}"),      # not a checkpoint
    (["demo", "--out", "{file}"], "--out"),
    (["demo", "--eps", "-1"], "--eps"),
    (["export", "{file}", "--torch", "{dir}"], "--torch"),
    (["export", "{file}", "--torch", "model.py"], "--torch"),
    (["export", "{file}", "--torch", "out.npz"], "{file}"),             # not a checkpoint
]


@pytest.mark.parametrize("argv, flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_invocation_is_one_line_exit_2_and_writes_nothing(argv, flag, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("not a checkpoint\n")
    (tmp_path / "folder").mkdir()
    fill = {"{file}": str(tmp_path / "file.txt"), "{dir}": str(tmp_path / "folder")}
    argv = [fill.get(a, a) for a in argv] + (["--no-progress"] if argv[0] != "export" else [])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = _exit_code(main, argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert fill.get(flag, flag) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def _exit_code(fn, argv) -> int:
    try:
        return fn(argv)
    except SystemExit as e:                    # argparse exits by itself
        return e.code


@pytest.fixture(scope="module")
def small_data():
    x_train, y_train, x_test, y_test = load_mnist_5k()
    return x_train[:512], y_train[:512], x_test[:100], y_test[:100]


def test_divergence_stops_loudly_and_keeps_the_good_checkpoint(small_data, tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    config = TrainConfig(epochs=1, batch_size=64, schedule="constant", eval_size=50)
    train(npadv.mlp(), build_method("natural"), small_data, config, checkpoint_path=ckpt,
          progress=False)
    good = ckpt.read_bytes()
    hot = TrainConfig(epochs=1, batch_size=64, schedule="constant", eval_size=50, lr=50.0)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+.*smaller lr"):
        train(npadv.mlp(), build_method("natural"), small_data, hot, checkpoint_path=ckpt,
              progress=False)
    assert ckpt.read_bytes() == good


def test_cli_divergence_is_one_line_exit_1(tmp_path, capsys):
    code = main(["train", "--model", "mlp", "--lr", "50", "--epochs", "1", "--no-progress",
                 "--eval-size", "50", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "diverged" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


@pytest.mark.parametrize("change", [{"lr": 0.01}, {"seed": 1}, {"batch_size": 32},
                                    {"schedule": "cosine"}, {"epochs": 3, "schedule": "cosine"}])
def test_resume_refused_when_a_setting_changes(change, small_data, tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    base = {"epochs": 2, "batch_size": 64, "schedule": "constant", "eval_size": 50}
    stop = TrainConfig(**{**base, "epochs": 1})
    train(npadv.mlp(), build_method("natural"), small_data, stop, checkpoint_path=ckpt,
          progress=False)
    changed = TrainConfig(**{**base, "epochs": 1, **change})
    with pytest.raises(ResumeError, match="settings differ"):
        train(npadv.mlp(), build_method("natural"), small_data, changed, checkpoint_path=ckpt,
              resume=True, progress=False)


def test_resume_refused_when_the_method_changes(small_data, tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    config = TrainConfig(epochs=1, batch_size=64, schedule="constant", eval_size=50)
    train(npadv.mlp(), build_method("fgsm", eps=0.1), small_data, config, checkpoint_path=ckpt,
          progress=False)
    with pytest.raises(ResumeError, match="eps 0.1 → 0.2"):
        train(npadv.mlp(), build_method("fgsm", eps=0.2), small_data, config,
              checkpoint_path=ckpt, resume=True, progress=False)
    with pytest.raises(ResumeError, match="nothing to resume"):
        train(npadv.mlp(), build_method("fgsm", eps=0.1), small_data, config,
              checkpoint_path=tmp_path / "none.npz", resume=True, progress=False)


def test_more_epochs_continue_under_the_constant_schedule(small_data, tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    cfg = {"batch_size": 64, "schedule": "constant", "eval_size": 50}
    straight = npadv.mlp()
    train(straight, build_method("natural"), small_data, TrainConfig(epochs=2, **cfg),
          progress=False)
    resumed = npadv.mlp()
    train(resumed, build_method("natural"), small_data, TrainConfig(epochs=1, **cfg),
          checkpoint_path=ckpt, progress=False)
    history = train(resumed, build_method("natural"), small_data, TrainConfig(epochs=2, **cfg),
                    checkpoint_path=ckpt, resume=True, progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert np.array_equal(a.data, b.data)


@pytest.mark.parametrize("fault_in", ["save_checkpoint", "append_log"])
def test_log_has_no_duplicate_epochs_after_an_interrupted_write(fault_in, small_data, tmp_path,
                                                                 monkeypatch):
    ckpt, log = tmp_path / "ckpt.npz", tmp_path / "log.jsonl"
    config = TrainConfig(epochs=3, batch_size=128, schedule="constant", eval_size=50)
    real = getattr(loop_module, fault_in)
    calls = {"n": 0}

    def faulty(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:                   # epoch 2: the process dies inside this write
            if fault_in == "save_checkpoint":
                (tmp_path / "ckpt.npz.partial.tmp").write_bytes(b"PK\x03\x04 half")
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, fault_in, faulty)
    with pytest.raises(KeyboardInterrupt):
        train(npadv.mlp(), build_method("natural"), small_data, config, log_path=log,
              checkpoint_path=ckpt, progress=False)
    monkeypatch.setattr(loop_module, fault_in, real)
    train(npadv.mlp(), build_method("natural"), small_data, config, log_path=log,
          checkpoint_path=ckpt, resume=True, progress=False)
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert not list(tmp_path.glob("*.tmp"))          # the stale temporary went with a save


def test_overflowing_model_is_blamed_not_its_inputs(tmp_path, capsys):
    from npadv.attacks import pgd
    from npadv.attacks.checks import check_attack_gradients
    from npadv.attacks.gradients import NonFiniteGradient
    from npadv.checkpoint import save_checkpoint

    _, _, x, y = load_mnist_5k()
    model = npadv.small_cnn()
    for p in model.parameters():
        p.data *= np.float32(1e13)                  # finite weights, overflowing logits
    with np.errstate(all="ignore"):
        with pytest.raises(NonFiniteGradient, match="inputs are finite.*weights overflow"):
            pgd(model, x[:8], y[:8], 0.1, steps=2, rng=0)
        warning = check_attack_gradients(model, x[:8], y[:8], "ce", "pgd")
    assert len(warning) == 1 and "not credible" in warning[0]
    ckpt = tmp_path / "big.npz"
    save_checkpoint(ckpt, {"model": model.state_dict()}, {"model": "small-cnn"})
    with np.errstate(all="ignore"):
        code = main(["eval", "--checkpoint", str(ckpt), "--attack", "pgd", "--steps", "2",
                     "--n", "20", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "weights overflow" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_version_comes_from_the_installed_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"npadv {version('npadv')}"
    assert npadv.__version__ == version("npadv")
