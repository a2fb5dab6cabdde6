"""Every file npadv writes appears whole or not at all: a full disk at any point of a write
leaves the earlier file byte for byte and no temporary; new files get 0o666 & ~umask; JSON
is strict; output paths that cannot be written are refused in one line before any work."""
from __future__ import annotations

import builtins
import contextlib
import errno
import importlib
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import npadv
from npadv.checkpoint import save_checkpoint
from npadv.experiments.plans import Entry
from npadv.experiments.report import plot_comparison, report
from npadv.export import export_checkpoint, export_torch
from npadv.files import (
    OutputPathError,
    WriteError,
    atomic_output,
    atomic_outputs,
    atomic_write,
    check_output_dir,
    check_output_path,
    strict_json,
    temporaries,
    write_json,
)
from npadv.text import demo as demo_module
from npadv.training import loop as loop_module

compare_module = importlib.import_module("npadv.experiments.compare")

META = {"model": "mlp", "method": "natural", "epoch": 1, "config": {}, "history": []}


def weights(seed: int) -> dict[str, np.ndarray]:
    return {k: v + seed for k, v in npadv.mlp(seed=0).state_dict().items()}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder, by relative name, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# ---- a full disk, injected at one point of a write ---------------------------------------
def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _is_temporary(name) -> bool:
    return ".tmp" in os.fsdecode(os.fspath(name)) if isinstance(name, (str, bytes, Path)) \
        else False


class _FullFile:
    """A file object on a disk with `room` bytes left: a write that does not fit writes what
    fits, then fails with ENOSPC."""

    def __init__(self, f, room: list[int]):
        self._f, self._room = f, room

    def write(self, data):
        if len(data) > self._room[0]:
            self._f.write(data[:self._room[0]])
            self._room[0] = 0
            _no_space()
        self._room[0] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self._f)


@contextlib.contextmanager
def disk_full(fault: str, room: int = 16):
    """Writes fail as on a full disk: "write" (data to a temporary file, once `room` bytes
    are written, through os.write or a file object), "fsync" or "replace" (the rename into
    place)."""
    with pytest.MonkeyPatch.context() as mp:
        if fault == "write":
            left = [room]
            real_open, real_write = builtins.open, os.write

            def full_open(file, mode="r", *args, **kwargs):
                f = real_open(file, mode, *args, **kwargs)
                writing = any(c in mode for c in "wax+")
                return _FullFile(f, left) if writing and _is_temporary(file) else f

            def full_write(fd, data):
                if not _is_temporary(os.readlink(f"/proc/self/fd/{fd}")):
                    return real_write(fd, data)
                if left[0] == 0:
                    _no_space()
                n = real_write(fd, bytes(data[:left[0]]))      # a short write, as the OS does
                left[0] -= n
                return n

            mp.setattr(builtins, "open", full_open)
            mp.setattr(io, "open", full_open)
            mp.setattr(os, "write", full_write)
        else:
            mp.setattr(os, fault, _no_space)
        yield


# ---- the writers, each with an earlier version of its files ------------------------------
def _checkpoint(folder: Path):
    path = folder / "checkpoint.npz"
    save_checkpoint(path, {"model": weights(0), "optimizer": {"steps": np.array(3)}}, META)
    return path, lambda: save_checkpoint(path, {"model": weights(1)}, {**META, "epoch": 2})


def _run_log(folder: Path):
    path = folder / "log.jsonl"
    run = SimpleNamespace(log_path=path, progress=False)
    loop_module.append_log(run, {"epoch": 1, "loss": 0.5})
    loop_module.append_log(run, {"epoch": 2, "loss": 0.4})
    return path, lambda: loop_module.append_log(run, {"epoch": 3, "loss": float("nan")})


def _export(folder: Path):
    path = folder / "twin.npz"
    export_torch(npadv.mlp(seed=0), "mlp", path)
    return path, lambda: export_torch(npadv.mlp(seed=1), "mlp", path)


def _summary() -> dict:
    row = {"label": "Natural", "method": "natural", "flags": {}, "epochs": 1,
           "clean_acc": 0.9, "robust_acc": float("nan"), "stages": {}, "train_time": 1.0,
           "full_passes": 10, "first_layer_passes": 0, "gflops": 1.0, "stopped": None,
           "eval_time": 0.5,
           "reference": False, "undertrained": True, "claim": "",
           "curve": [{"time": 1.0, "robust_acc": 0.5, "clean_acc": 0.9}]}
    return {"title": "t", "eps": 0.1, "budget": 2.0, "evaluation": "PGD", "n_eval": 10,
            "wall_time": 1.0, "rows": [row]}


def _comparison(folder: Path, monkeypatch):
    monkeypatch.setattr(compare_module, "run_entry", lambda *a, **k: _summary()["rows"][0])
    data = (np.zeros((4, 1, 28, 28)), np.zeros(4, int), np.zeros((2, 1, 28, 28)), np.zeros(2))
    entries = [Entry("Natural", "natural")]

    def write():
        compare_module.compare(entries, data, out=folder)
    write()
    return folder / "comparison.json", write


def _table(folder: Path):
    report(_summary(), folder)
    summary = _summary()
    summary["rows"][0]["clean_acc"] = 0.5
    return folder / "table.md", lambda: report(summary, folder)


def _plot(folder: Path):
    pytest.importorskip("matplotlib")
    path = folder / "comparison.png"
    plot_comparison(_summary(), path)
    summary = _summary()
    summary["rows"][0]["curve"].append({"time": 2.0, "robust_acc": 0.7, "clean_acc": 0.9})
    return path, lambda: plot_comparison(summary, path)


def _text_demo(folder: Path, monkeypatch):
    result = {"clean_acc": 0.7, "pgd_acc": 0.3, "train_time": 1.0, "train_cpu": 1.0,
              "full_passes": 30, "history": []}
    monkeypatch.setattr(demo_module, "train_text", lambda *a, **k: dict(result))

    def write():
        demo_module.run_text_demo(quick=True, seeds=2, out=str(folder), progress=False)
    write()
    return folder / "text_demo.json", write


def _eval_json(folder: Path):
    path = folder / "eval.json"
    write_json(path, {"clean_accuracy": 0.9, "results": []})
    return path, lambda: write_json(path, {"clean_accuracy": float("inf"), "results": [1]})


WRITERS = {"checkpoint": _checkpoint, "run log": _run_log, "export": _export,
           "comparison.json": _comparison, "table.md": _table, "plot": _plot,
           "text_demo.json": _text_demo, "eval json": _eval_json}


@pytest.mark.parametrize("fault", ["write", "fsync", "replace"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_full_disk_leaves_every_earlier_file_as_it_was(writer, fault, tmp_path, monkeypatch,
                                                         capsys):
    if fault == "write" and not os.path.isdir("/proc/self/fd"):
        pytest.skip("the write fault finds a descriptor's file in /proc")
    make = WRITERS[writer]
    takes_patch = "monkeypatch" in make.__code__.co_varnames[:make.__code__.co_argcount]
    target, write = make(tmp_path, monkeypatch) if takes_patch else make(tmp_path)
    before = snapshot(tmp_path)
    assert target.name in before
    with disk_full(fault), pytest.raises(OSError) as info:
        write()
    assert info.value.errno == errno.ENOSPC
    message = str(info.value)
    assert target.name in message and "\n" not in message, message
    assert ".tmp" not in message, message          # the file the user knows, not a temporary
    assert snapshot(tmp_path) == before            # byte for byte, and no temporary left
    capsys.readouterr()
    write()                                        # with room again, the write goes through
    assert snapshot(tmp_path)[target.name] != before[target.name]
    assert temporaries(target) == []


def test_export_whose_second_file_fails_restores_the_first(tmp_path, monkeypatch):
    path = tmp_path / "twin.npz"
    export_torch(npadv.mlp(seed=0), "mlp", path)
    before = snapshot(tmp_path)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".py"):
            _no_space()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError, match="twin.py"):
        export_torch(npadv.mlp(seed=1), "mlp", path)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_a_new_export_whose_second_file_fails_leaves_nothing(tmp_path, monkeypatch):
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: _no_space() if str(d).endswith(".py")
                        else real_replace(s, d))
    with pytest.raises(WriteError):
        export_torch(npadv.mlp(seed=1), "mlp", tmp_path / "twin.npz")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_write_over_its_checkpoint(tmp_path):
    ckpt = tmp_path / "model.npz"
    save_checkpoint(ckpt, {"model": npadv.mlp().state_dict()}, {"model": "mlp"})
    before = ckpt.read_bytes()
    for out in (ckpt, tmp_path / "model.pt"):
        if out.suffix == ".pt":
            ckpt.rename(tmp_path / "model.py")        # the definition's name is the input
            ckpt = tmp_path / "model.py"
        with pytest.raises(OutputPathError, match="is the input"):
            export_checkpoint(ckpt, out)
        assert ckpt.read_bytes() == before


# ---- atomic writes -----------------------------------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o277])
def test_new_files_get_0o666_under_the_umask(tmp_path, mask):
    with umask(mask):
        save_checkpoint(tmp_path / "c.npz", {"model": weights(0)}, META)
        atomic_write(tmp_path / "a.txt", "x")
        export_torch(npadv.mlp(), "mlp", tmp_path / "twin.npz")
        loop_module.append_log(SimpleNamespace(log_path=tmp_path / "log.jsonl",
                                               progress=False), {"epoch": 1})
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p.name


def test_atomic_write_replaces_and_returns_the_path(tmp_path):
    path = tmp_path / "sub" / "dir" / "out.json"
    assert atomic_write(path, "ε = 0.1\n") == path                # folders made, UTF-8
    assert path.read_text(encoding="utf-8") == "ε = 0.1\n"
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_a_symlinked_target_is_written_through(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_atomic_output_keeps_the_suffix_for_writers_that_add_it(tmp_path):
    path = tmp_path / "arrays.npz"
    with atomic_output(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".npz")
        np.savez(tmp, a=np.arange(3))                 # a name without .npz would gain one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz"]
    with np.load(path) as f:
        assert f["a"].tolist() == [0, 1, 2]


def test_an_exception_in_the_block_removes_the_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyError), atomic_outputs(path, tmp_path / "b.bin") as (t1, t2):
        t1.write_bytes(b"new")
        raise KeyError("writer failed")
    assert snapshot(tmp_path) == {"a.bin": b"old"}


def test_a_writer_that_leaves_no_file_changes_nothing(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(WriteError, match="a.bin"), atomic_output(path) as tmp:
        tmp.unlink()
    assert snapshot(tmp_path) == {"a.bin": b"old"}


def test_a_name_at_the_limit_still_gets_a_temporary(tmp_path):
    path = tmp_path / ("n" * (255 - 4) + ".npz")
    atomic_write(path, "x")
    save_checkpoint(path, {"model": weights(0)}, META)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# ---- strict JSON -------------------------------------------------------------------------
def _strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_null_for_values_that_are_not_finite():
    obj = {"a": float("nan"), "b": [np.float32(np.inf), -np.inf, (1, np.float64(2.5))],
           "c": np.array([1.0, np.nan]), "d": np.int64(3), "e": True, "f": None, "g": "nan"}
    text = strict_json(obj, indent=1)
    assert _strict_loads(text) == {"a": None, "b": [None, None, [1, 2.5]], "c": [1.0, None],
                                   "d": 3, "e": True, "f": None, "g": "nan"}


def test_write_json_is_strict(tmp_path):
    path = write_json(tmp_path / "r.json", {"acc": float("-inf"), "n": 3})
    assert _strict_loads(path.read_text()) == {"acc": None, "n": 3}


# ---- output paths ------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    return tmp_path


def _refused(check, path, match: str, what: str = "--json", **kwargs):
    with pytest.raises(OutputPathError) as info:
        check(path, what, **kwargs)
    message = str(info.value)
    assert what in message and "\n" not in message, message
    assert match in message, message
    return message


@pytest.mark.parametrize("name, match", [
    ("", "empty"),
    ("folder", "is a folder"),
    ("file.txt/x.json", "is a file, not a folder"),
    ("file.txt/deeper/x.json", "is a file, not a folder"),
    ("loop", "symlink loop"),
    ("loop/x.json", "symlink loop"),
    ("n" * 300 + ".json", "the file system allows"),
    ("/".join(["d" * 200] * 25) + "/x.json", "the file system allows"),
])
def test_check_output_path_refuses(tree, name, match):
    _refused(check_output_path, str(tree / name) if name else "", match)


def test_check_output_path_refuses_devices_and_unwritable_folders(tree, monkeypatch):
    if os.path.exists("/dev/null"):
        _refused(check_output_path, "/dev/null", "not a regular file")
        _refused(check_output_path, "/dev/null/x.json", "is a file, not a folder")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    _refused(check_output_path, tree / "new" / "x.json", "cannot write in")


def test_check_output_path_refuses_its_inputs(tree):
    ckpt = tree / "folder" / "checkpoint.npz"
    ckpt.write_bytes(b"PK")
    _refused(check_output_path, ckpt, "is the input", inputs=[ckpt])
    _refused(check_output_path, tree / "folder" / ".." / "folder" / "checkpoint.npz",
             "is the input", inputs=[str(ckpt)])
    (tree / "alias.npz").symlink_to(ckpt)
    _refused(check_output_path, tree / "alias.npz", "is the input", inputs=[ckpt])
    os.link(ckpt, tree / "hard.npz")
    _refused(check_output_path, tree / "hard.npz", "is the input", inputs=[ckpt])


def test_check_output_path_accepts(tree):
    for name in ("file.txt", "new.json", "folder/new.json", "new/deeper/x.json"):
        assert check_output_path(tree / name, "--json", inputs=[tree / "other"]) \
            == tree / name
    assert list((tree / "folder").iterdir()) == []           # nothing made


@pytest.mark.parametrize("name, match", [
    ("", "empty"),
    ("file.txt", "is a file; it must be a folder"),
    ("file.txt/run", "is a file, not a folder"),
    ("loop", "symlink loop"),
    ("loop/run", "symlink loop"),
    ("n" * 300, "the file system allows"),
])
def test_check_output_dir_refuses(tree, name, match):
    _refused(check_output_dir, str(tree / name) if name else "", match, what="--out")


def test_check_output_dir(tree, monkeypatch):
    assert check_output_dir(tree / "folder", "--out") == tree / "folder"
    assert check_output_dir(tree / "new" / "run", "--out") == tree / "new" / "run"
    assert not (tree / "new").exists()
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    _refused(check_output_dir, tree / "folder", "cannot write in", what="--out")
