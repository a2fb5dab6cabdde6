"""Generated probes of the command line: every flag that does not apply, every value that
can never be right, every output path that cannot be written or would destroy an input,
and crafted input files. Each must end in exit code 2 with one line on stderr naming the
cause, no traceback, and no file written or changed.

The flag probes are generated from the declarations (npadv.methods, the attacks' registry),
so a method or attack added later is probed too.
"""
from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npadv
from npadv.attacks.evaluate import ATTACKS
from npadv.cli import METHOD_FLAGS, main
from npadv.data import load_mnist_5k
from npadv.methods import REGISTERED, accepted
from npadv.training import TrainConfig, train

VALUE = {"eps": "0.05", "alpha": "0.01", "steps": "2", "beta": "1", "replays": "2",
         "yopo_m": "2", "yopo_n": "1", "freelb_k": "2", "adv_lr": "0.1",
         "adv_init_mag": "0.1", "adv_max_norm": "0.5", "kappa": "0.5"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _stray_method_flags() -> list[tuple[list[str], str]]:
    """train --task T --method M --F V for every CLI method flag F that M does not take."""
    probes = []
    for cls in REGISTERED:
        for flag in ["eps", *METHOD_FLAGS]:
            if flag not in accepted(cls):
                probes.append((["train", "--task", cls.task, "--method", cls.name, _flag(flag),
                                VALUE[flag]], _flag(flag)))
        if cls.eps is None and "eps" not in accepted(cls):
            probes.append((["train", "--task", cls.task, "--method", cls.name, "--eps-ramp",
                            "2"], "--eps-ramp"))
        if cls.name != "fast":
            probes.append((["train", "--task", cls.task, "--method", cls.name, "--no-guard"],
                           "--no-guard"))
    return probes


def _stray_attack_flags() -> list[tuple[list[str], str]]:
    """eval --attack A --F V for every eval flag F that attack A (or a suite) does not take."""
    takes = {"steps": lambda s: s.cli_steps is not None, "restarts": lambda s: s.cli_restarts,
             "queries": lambda s: s.cli_queries, "loss": lambda s: s.takes("loss")}
    value = {"steps": "3", "restarts": "2", "queries": "10", "loss": "ce"}
    probes = []
    for name, spec in ATTACKS.items():
        if not spec.cli:
            continue
        for flag, test in takes.items():
            if not test(spec):
                probes.append((["eval", "--attack", name, "--norm", "linf", "--eps", "0.1",
                                _flag(flag), value[flag]], _flag(flag)))
    for suite in ("standard", "quick"):
        for flag in ("steps", "restarts", "queries"):
            probes.append((["eval", "--attack", suite, "--norm", "linf", "--eps", "0.1",
                            _flag(flag), value[flag]], _flag(flag)))
    return probes


BAD_VALUES = [
    (["train", "--model", ""], "--model"),
    (["train", "--out", ""], "--out"),
    (["train", "--eval-eps", "5"], "--eval-eps"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--method", "pgd", "--eps", "1e-320"], "eps"),
    (["train", "--method", "pgd", "--alpha", "1e300"], "alpha"),
    (["train", "--method", "free", "--replays", "2.5"], "--replays"),
    (["train", "--task", "text", "--method", "fgm", "--steps", "9"], "--steps"),
    (["eval", "--attack", "pgd", "--seed", "-1"], "--seed"),
    (["eval", "--attack", "pgd", "--norm", "l1", "--eps", "1e300"], "--eps"),
    (["eval", "--attack", "fgsm", "--norm", "linf", "--eps", "0.1", "--loss", "cw"], "--loss"),
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--task", "text", "--eps", "0.5"], "--eps"),
    (["demo", "--task", "text", "--methods", "pgd"], "--methods"),
    (["demo", "--task", "text", "--seed", "1"], "--seed"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny trained MLP checkpoint (one epoch on 256 MNIST-5k images), with its log."""
    folder = tmp_path_factory.mktemp("run")
    x, y, xt, yt = load_mnist_5k()
    model = npadv.mlp(seed=0)
    train(model, npadv_method("fgsm"), (x[:256], y[:256], xt[:64], yt[:64]),
          TrainConfig(epochs=1, eval_size=32), checkpoint_path=folder / "checkpoint.npz",
          log_path=folder / "log.jsonl", progress=False, model_name="mlp",
          data_name="mnist-5k")
    return folder / "checkpoint.npz"


def npadv_method(name: str):
    from npadv.methods import build_method
    return build_method(name)


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(argv: list[str], folder: Path, capsys, monkeypatch) -> tuple[int, str]:
    """main(argv) run in `folder`; (exit code, stderr). Asserts nothing changed in folder."""
    monkeypatch.chdir(folder)
    before = _snapshot(folder)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert _snapshot(folder) == before, f"{argv} wrote or changed files"
    return code, err


def _assert_refused(code, err, names):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert names in err, err


def _fill(argv, checkpoint):
    out = list(argv)
    if out[0] == "eval":
        out[1:1] = ["--checkpoint", str(checkpoint)]
    return out + ["--no-progress"]


PROBES = _stray_method_flags() + _stray_attack_flags() + BAD_VALUES


def test_the_generated_probes_cover_every_class():
    commands = {argv[0] for argv, _ in PROBES}
    assert commands == {"train", "eval", "demo"}
    assert len(_stray_method_flags()) >= 60 and len(_stray_attack_flags()) >= 10


def _run_quietly(argv: list[str]) -> tuple[int, str, bool]:
    """main(argv) in a fresh temporary folder: (exit code, stderr, whether files changed)."""
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stderr(io.StringIO()) \
            as err, contextlib.redirect_stdout(io.StringIO()):
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        finally:
            os.chdir(cwd)
        changed = any(Path(folder).iterdir())
    return code, err.getvalue(), changed


NUMBERS = st.one_of(st.integers(-10**9, 10**9).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "abc", "1e400", "-1e-320", "2.5", "0x10"]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(probe=st.sampled_from(_stray_method_flags() + _stray_attack_flags()), value=NUMBERS)
def test_a_flag_that_does_not_apply_is_refused_whatever_its_value(checkpoint, probe, value):
    argv, flag = probe
    argv = [*argv[:-1], value] if argv[-1] != flag else list(argv)
    code, err, changed = _run_quietly(_fill(argv, checkpoint))
    _assert_refused(code, err, flag)
    assert not changed


COUNTS = ["steps", "replays", "yopo_m", "yopo_n", "freelb_k"]
BAD_COUNTS = st.one_of(st.integers(max_value=-1).map(str),
                       st.floats(allow_nan=True, allow_infinity=True)
                       .filter(lambda v: not float(v).is_integer()).map(repr),
                       st.sampled_from(["", "abc", "1e400", "nan", "inf"]))
BAD_RADII = st.one_of(st.floats(max_value=-1e-300).map(repr),
                      st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e400"]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cls=st.sampled_from(REGISTERED), data=st.data())
def test_a_value_that_can_never_be_right_is_refused(cls, data):
    flags = [f for f in accepted(cls) if f in ("eps", *METHOD_FLAGS)]
    if not flags:
        return
    flag = data.draw(st.sampled_from(flags))
    value = data.draw(BAD_COUNTS if flag in COUNTS else BAD_RADII)
    code, err, changed = _run_quietly(["train", "--task", cls.task, "--method", cls.name,
                                       _flag(flag), value, "--no-progress"])
    _assert_refused(code, err, _flag(flag))
    assert not changed


@pytest.mark.parametrize("argv, names", PROBES, ids=[" ".join(a) for a, _ in PROBES])
def test_every_probe_once(checkpoint, tmp_path, capsys, monkeypatch, argv, names):
    code, err = _run(_fill(argv, checkpoint), tmp_path, capsys, monkeypatch)
    _assert_refused(code, err, names)


# ---- output paths ------------------------------------------------------------------------
def _paths(tmp: Path, checkpoint: Path) -> list[tuple[str, str]]:
    """(a path no command may write, the words its refusal must contain)."""
    (tmp / "ro").mkdir()
    os.chmod(tmp / "ro", 0o555)
    (tmp / "loop").symlink_to(tmp / "loop")
    return [(str(checkpoint), str(checkpoint)),                    # the checkpoint itself
            (str(checkpoint.parent / "log.jsonl"), "log.jsonl"),   # the run's log
            (str(tmp / "ro" / "x.json"), "ro"),                    # a read-only folder
            ("/dev/null/x.json", "/dev/null"),                     # a file as a folder
            (str(tmp / "loop" / "x.json"), "loop"),                # a symlink loop
            (str(tmp / ("n" * 300 + ".json")), "long"),             # a name too long
            (str(tmp), str(tmp))]                                  # a folder


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else False,
                    reason="root writes into read-only folders")
def test_read_only_folder_is_refused_for_non_root(tmp_path, checkpoint, capsys, monkeypatch):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    code, err = _run(["eval", "--checkpoint", str(checkpoint), "--json",
                      str(tmp_path / "ro" / "x.json")], tmp_path, capsys, monkeypatch)
    _assert_refused(code, err, "--json")


@pytest.mark.parametrize("command", ["eval-json", "export-torch", "train-out", "demo-out"])
def test_output_paths_are_checked_before_any_work(command, tmp_path, checkpoint, capsys,
                                                   monkeypatch):
    root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    for path, words in _paths(tmp_path, checkpoint):
        if root and "ro" in Path(path).parts:
            continue
        if command == "eval-json":
            argv = ["eval", "--checkpoint", str(checkpoint), "--json", path]
        elif command == "export-torch":
            if path == str(tmp_path) or path.endswith(".jsonl"):   # the log is no input here
                continue
            argv = ["export", str(checkpoint), "--torch",
                    path if path.endswith(".npz") else path.removesuffix(".json") + ".npz"]
            words = words.removesuffix(".json")
        elif command == "train-out":
            if path.endswith(".npz") or path.endswith(".jsonl") or path == str(tmp_path):
                continue
            argv = ["train", "--out", path.removesuffix(".json")]
        else:
            if path.endswith(".npz") or path.endswith(".jsonl") or path == str(tmp_path):
                continue
            argv = ["demo", "--quick", "--out", path.removesuffix(".json")]
        before = _snapshot(checkpoint.parent)
        code, err = _run(argv + (["--no-progress"] if command != "export-torch" else []),
                         tmp_path, capsys, monkeypatch)
        _assert_refused(code, err, "--")
        assert _snapshot(checkpoint.parent) == before, argv


# ---- crafted input files ------------------------------------------------------------------
def _idx(path: Path, array: np.ndarray, count: int | None = None, cut: int = 0) -> None:
    """An IDX file (gzipped), its header claiming `count` items; `cut` bytes dropped."""
    code = {np.uint8: 0x08}[array.dtype.type]
    header = struct.pack(">HBB", 0, code, array.ndim)
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    header += b"".join(struct.pack(">I", d) for d in dims)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw[:len(raw) - cut]))


FASHION = {"train-images-idx3-ubyte.gz": (60, 28, 28), "train-labels-idx1-ubyte.gz": (60,),
           "t10k-images-idx3-ubyte.gz": (10, 28, 28), "t10k-labels-idx1-ubyte.gz": (10,)}


def _fashion(folder: Path, fault: str) -> None:
    rng = np.random.default_rng(0)
    for name, shape in FASHION.items():
        size = shape
        if fault == "32x32" and "images" in name:
            size = (shape[0], 32, 32)
        if fault == "empty" and name.startswith("train"):
            size = (0,) + shape[1:]
        a = (rng.integers(0, 10, size) if "labels" in name
             else rng.integers(0, 256, size)).astype(np.uint8)
        if fault == "label 200" and name == "train-labels-idx1-ubyte.gz":
            a[3] = 200
        _idx(folder / name, a, cut=5 if fault == "truncated" and "train-images" in name else 0)
    if fault == "file for folder":
        for name in FASHION:
            (folder / name).unlink()
        (folder / "fashion-mnist").write_text("not a folder")


@pytest.mark.parametrize("fault", ["truncated", "label 200", "32x32", "empty",
                                   "file for folder"])
def test_a_malformed_fashion_mnist_is_one_line(fault, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    target = data / "fashion-mnist"
    target.mkdir(parents=True)
    if fault == "file for folder":
        target.rmdir()
        target.write_text("not a folder")
    else:
        _fashion(target, fault)
    monkeypatch.setenv("NPADV_DATA", str(data))
    monkeypatch.setenv("NPADV_MIRROR", "http://127.0.0.1:9/")     # never a download
    work = tmp_path / "work"
    work.mkdir()
    code, err = _run(["train", "--dataset", "fashion-mnist", "--model", "mlp", "--epochs", "1",
                      "--out", str(work / "run"), "--no-progress"], work, capsys, monkeypatch)
    assert code in (1, 2), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def _crafted_checkpoints(checkpoint: Path, folder: Path) -> dict[str, Path]:
    with zipfile.ZipFile(checkpoint) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    out = {}

    def write(name, items):
        path = folder / f"{name}.npz"
        with zipfile.ZipFile(path, "w") as z:
            for n, data in items:
                z.writestr(n, data)
        out[name] = path

    write("raw entry", list(entries.items()) + [("raw_weight", b"\x00" * 16)])
    write("not npy", [(n, b"junk" if n.startswith("model/") else d) for n, d in entries.items()])
    write("truncated", [(n, d[:len(d) // 2]) for n, d in entries.items()])
    (folder / "text.npz").write_text("not a zip")
    out["text"] = folder / "text.npz"
    return out


def test_crafted_checkpoints_are_one_line(checkpoint, tmp_path, capsys, monkeypatch):
    for name, path in _crafted_checkpoints(checkpoint, tmp_path).items():
        for argv in (["eval", "--checkpoint", str(path), "--attack", "none", "--n", "5"],
                     ["export", str(path), "--torch", str(tmp_path / "out.npz")]):
            code, err = _run(argv, tmp_path, capsys, monkeypatch)
            assert code == 2, (name, err)
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)


def test_a_malformed_tsv_is_one_line(tmp_path, capsys, monkeypatch):
    good = "sentence\tlabel\nfine day\t1\nbad day\t0\n"
    for bad in ("sentence\tlabel\nfine\t99999999999999999999\n", "sentence\nfine\n",
                "sentence\tlabel\n", "", "sentence\tlabel\nfine\t-1\n"):
        (tmp_path / "train.tsv").write_text(bad)
        (tmp_path / "dev.tsv").write_text(good)
        code, err = _run(["train", "--task", "text", "--data", str(tmp_path / "train.tsv"),
                          str(tmp_path / "dev.tsv"), "--out", str(tmp_path / "run"),
                          "--no-progress"], tmp_path, capsys, monkeypatch)
        _assert_refused(code, err, "train.tsv")


# ---- checkpoints that know their data --------------------------------------------------
def test_eval_and_export_take_the_checkpoints_data_and_threat_model(tmp_path, capsys,
                                                                   monkeypatch):
    data = tmp_path / "data" / "fashion-mnist"
    data.mkdir(parents=True)
    _fashion(data, "")
    monkeypatch.setenv("NPADV_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NPADV_MIRROR", "http://127.0.0.1:9/")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "fashion-mnist", "--model", "mlp", "--method", "fgsm",
                 "--eps", "0.2", "--epochs", "1", "--out", "run", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", "run/checkpoint.npz", "--attack", "fgsm",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "fashion-mnist test, n = 10" in out.out
    assert "from the checkpoint: dataset fashion-mnist, norm linf, ε = 0.2" in out.out
    assert "linf    0.200" in out.out and out.err == ""
    assert main(["eval", "--checkpoint", "run/checkpoint.npz", "--dataset", "mnist-5k",
                 "--attack", "fgsm", "--eps", "0.1", "--n", "20", "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()      # one line for each override
    assert sum("trained on fashion-mnist; evaluating on mnist-5k" in line for line in err) == 1
    assert sum("trained against linf ε = 0.2; evaluating at linf ε = 0.1" in line
               for line in err) == 1
    assert main(["export", "run/checkpoint.npz", "--torch", "m.npz"]) == 0
    assert "on fashion-mnist (60 training examples" in capsys.readouterr().out


def test_a_resume_refuses_other_data(tmp_path):
    from npadv.methods import build_method
    from npadv.training import ResumeError
    x, y, xt, yt = load_mnist_5k()

    def run(epochs, start, resume):
        data = (x[start:start + 128], y[start:start + 128], xt[:16], yt[:16])
        return train(npadv.mlp(seed=0), build_method("natural"), data,
                     TrainConfig(epochs=epochs, schedule="constant", eval_size=16),
                     checkpoint_path=tmp_path / "ck.npz", resume=resume, progress=False,
                     data_name="mnist-5k")

    run(1, 0, False)
    with pytest.raises(ResumeError, match="train_sha256"):
        run(2, 128, True)
    assert len(run(2, 0, True)) == 2


# ---- a full disk ---------------------------------------------------------------------------
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_ends_the_command_in_one_line_and_keeps_every_file(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "mlp", "--method", "fgsm", "--epochs", "1",
                 "--schedule", "constant", "--eval-size", "50", "--out", "run",
                 "--no-progress"]) == 0
    (tmp_path / "eval.json").write_text('{"earlier": true}\n')
    capsys.readouterr()
    before = _snapshot(tmp_path)
    for argv in (["eval", "--checkpoint", "run/checkpoint.npz", "--attack", "none", "--n", "20",
                  "--json", "eval.json", "--no-progress"],
                 ["export", "run/checkpoint.npz", "--torch", "run/checkpoint.npz.npz"],
                 ["train", "--model", "mlp", "--method", "fgsm", "--epochs", "2",
                  "--schedule", "constant", "--eval-size", "50", "--out", "run", "--resume",
                  "--no-progress"]):
        with monkeypatch.context() as m:
            m.setattr(os, "replace", _no_space)
            code = main(argv)
        err = capsys.readouterr().err
        assert code == 1, (argv, err)
        assert "No space left on device" in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
        assert _snapshot(tmp_path) == before, argv          # byte for byte, no temporary left
