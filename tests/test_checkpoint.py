"""Strict checkpoints: every malformed file raises CheckpointError naming the file; nothing is
half-loaded; a save clears the temporaries of an interrupted one and refuses bad weights; the
metadata is strict JSON; a resume refuses a checkpoint whose history or optimiser or method
state does not fit the run, before anything is loaded."""
from __future__ import annotations

import io
import json
import math
import pickle
import warnings
import zipfile

import numpy as np
import pytest

import npadv
from npadv.checkpoint import (
    CheckpointError,
    check_weights,
    load_checkpoint,
    load_model,
    load_weights,
    save_checkpoint,
    stale_temporaries,
)
from npadv.data import load_mnist_5k
from npadv.methods import build_method
from npadv.training import ImageData, ResumeError, TrainConfig, accuracy, pgd_accuracy, train
from npadv.training.fast_at import FastAT
from npadv.training.loop import check_training_data

META = {"model": "mlp", "method": "natural", "epoch": 1, "config": {}, "history": []}


def tiny_state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"0.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "0.bias": rng.standard_normal(3).astype(np.float32)}


def tiny_model() -> npadv.nn.Sequential:
    return npadv.nn.Sequential(npadv.nn.Linear(4, 3, rng=np.random.default_rng(1)))


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"model": tiny_state(), "optimizer": {"steps": np.array(3)}}, META)
    return path


def write_npz(path, meta=META, **arrays):
    np.savez(path, **({} if meta is None else {"meta": np.array(json.dumps(meta))}), **arrays)
    return path


def assert_rejected(path, match: str | None = None, loader=load_checkpoint):
    with pytest.raises(CheckpointError) as info:
        loader(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    if match is not None:
        assert match in message, message


# ---- round trip and temporaries ------------------------------------------------------
def test_round_trip(good):
    parts, meta = load_checkpoint(good)
    assert meta == META
    for name, value in tiny_state().items():
        assert np.array_equal(parts["model"][name], value)
    assert int(parts["optimizer"]["steps"]) == 3


def test_save_removes_temporaries_of_an_interrupted_write(good):
    stale = [good.with_name(good.name + suffix) for suffix in (".abc123.tmp", ".x.tmp")]
    for s in stale:
        s.write_bytes(b"half a checkpoint")
    other = good.with_name("other.npz.abc.tmp")             # not ours: left alone
    other.write_bytes(b"")
    assert stale_temporaries(good) == sorted(stale)
    save_checkpoint(good, {"model": tiny_state()}, META)
    assert stale_temporaries(good) == [] and other.exists()
    assert sorted(p.name for p in good.parent.iterdir()) == ["checkpoint.npz", other.name]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_save_refuses_non_finite_model_weights_and_keeps_the_old_file(good, bad):
    before = good.read_bytes()
    state = tiny_state()
    state["0.bias"][1] = bad
    with pytest.raises(CheckpointError, match="NaN/inf"):
        save_checkpoint(good, {"model": state}, META)
    assert good.read_bytes() == before and stale_temporaries(good) == []


# ---- damaged archives ------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated(good, keep):
    data = good.read_bytes()
    good.write_bytes(data[:int(len(data) * keep)])
    assert_rejected(good, "empty" if keep == 0 else None)


def test_every_bit_flip_is_caught_or_harmless(good):
    """Flip one bit at many offsets: the load either fails with CheckpointError or returns
    exactly the original content (a flip in a timestamp or an unused header field)."""
    data = good.read_bytes()
    original = load_checkpoint(good)
    caught = 0
    for offset in range(0, len(data), 5):
        flipped = bytearray(data)
        flipped[offset] ^= 1 << (offset % 8)
        good.write_bytes(bytes(flipped))
        try:
            parts, meta = load_checkpoint(good)
        except CheckpointError as e:
            assert str(good) in str(e)
            caught += 1
            continue
        assert meta == original[1], offset
        assert parts.keys() == original[0].keys(), offset
        for part in parts:
            for name, value in original[0][part].items():
                assert np.array_equal(parts[part][name], value), (offset, part, name)
    assert caught > len(data) // 5 // 2


def test_flip_inside_the_weights(good):
    """A change to array bytes (not to any header) is caught by the CRC check."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("model/0.weight.npy")
    offset = info.header_offset + 30 + len(info.filename) + info.compress_size - 8
    data[offset] ^= 0x10
    good.write_bytes(bytes(data))
    assert_rejected(good, "CRC")


# ---- files that are not checkpoints -------------------------------------------------
def test_text_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("epoch,loss\n1,0.5\n")
    assert_rejected(path, "text file")


def test_pickle_and_npy_and_random_bytes(tmp_path):
    pickled = tmp_path / "p.npz"
    pickled.write_bytes(pickle.dumps({"model/0.weight": [1.0]}))
    assert_rejected(pickled, "pickled Python objects")
    npy = tmp_path / "a.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    assert_rejected(npy, ".npy")
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).integers(128, 256, 200, dtype=np.uint8).tobytes())
    assert_rejected(noise, "not a zip archive")
    assert_rejected(tmp_path / "missing.npz", "does not exist")
    assert_rejected(tmp_path, "not a file")


def test_object_array_inside_the_archive(tmp_path):
    path = write_npz(tmp_path / "evil.npz", **{"model/0.weight": np.array([None], dtype=object)})
    assert_rejected(path, "pickled Python objects")


# ---- metadata -----------------------------------------------------------------------------
@pytest.mark.parametrize("meta, match", [
    (None, "no 'meta'"),
    ("{not json", "not JSON"),
    ([1, 2], "JSON list"),
    ("7", "JSON int"),
    ({"model": 5}, "'model' must be a string"),
    ({"model": "mlp", "epoch": -1}, "'epoch' must be an integer"),
    ({"model": "mlp", "epoch": True}, "'epoch' must be an integer"),
    ({"model": "mlp", "history": {}}, "'history' must be a list"),
])
def test_bad_metadata(tmp_path, meta, match):
    path = tmp_path / "c.npz"
    weights = {"model/" + k: v for k, v in tiny_state().items()}
    if isinstance(meta, str):
        np.savez(path, meta=np.array(meta), **weights)
    else:
        write_npz(path, meta, **weights)
    assert_rejected(path, match)


def test_meta_that_is_not_a_string_and_stray_entries(tmp_path):
    np.savez(tmp_path / "a.npz", meta=np.zeros(2))
    assert_rejected(tmp_path / "a.npz", "one string")
    assert_rejected(write_npz(tmp_path / "b.npz", stray=np.zeros(2)), "unexpected entry")
    assert_rejected(write_npz(tmp_path / "c.npz", **{"model/0.weight": np.array(["a", "b"])}),
                    "numeric arrays only")


def test_missing_model_key_and_unknown_model(tmp_path):
    weights = {"model/" + k: v for k, v in npadv.mlp().state_dict().items()}
    no_model = write_npz(tmp_path / "a.npz", {"epoch": 1}, **weights)
    load_checkpoint(no_model)                                # fine for a generic read
    assert_rejected(no_model, "missing key(s) ['model']", loader=load_model)
    unknown = write_npz(tmp_path / "b.npz", {**META, "model": "resnet-1000"}, **weights)
    assert_rejected(unknown, "unknown model 'resnet-1000'", loader=load_model)
    model, meta = load_model(write_npz(tmp_path / "c.npz", META, **weights))
    assert meta == META and not model.training


# ---- weights ------------------------------------------------------------------------------
@pytest.mark.parametrize("change, match", [
    (lambda s: s.update({"0.weight": s["0.weight"].astype(np.int64)}), "int64, not float"),
    (lambda s: s.update({"0.bias": np.array([1, 0, 1], dtype=bool)}), "bool, not float"),
    (lambda s: s["0.weight"].__setitem__((0, 0), np.nan), "NaN/inf"),
    (lambda s: s["0.bias"].__setitem__(2, -np.inf), "NaN/inf"),
])
def test_non_float_or_non_finite_weights(tmp_path, change, match):
    state = tiny_state()
    change(state)
    path = write_npz(tmp_path / "c.npz", **{"model/" + k: v for k, v in state.items()})
    assert_rejected(path, match)


@pytest.mark.parametrize("change, match", [
    (lambda s: s.update({"0.weight": s["0.weight"].T.copy()}), "has shape (4, 3)"),
    (lambda s: s.update({"0.bias": s["0.bias"][:, None]}), "has shape (3, 1)"),
    (lambda s: s.pop("0.bias"), "missing ['0.bias']"),
    (lambda s: s.update({"1.weight": s["0.weight"]}), "unexpected ['1.weight']"),
])
def test_wrong_shapes_or_names_load_nothing(tmp_path, change, match):
    state = tiny_state()
    change(state)
    path = write_npz(tmp_path / "c.npz", **{"model/" + k: v for k, v in state.items()})
    parts, _ = load_checkpoint(path)                         # the archive itself is fine
    model = tiny_model()
    before = model.state_dict()
    with pytest.raises(CheckpointError, match="do not fit the model") as info:
        load_weights(model, parts["model"], f"checkpoint {path}")
    assert match in str(info.value) and str(path) in str(info.value)
    for name, value in model.state_dict().items():            # nothing half-loaded
        assert np.array_equal(value, before[name])


def test_wrong_architecture_through_load_model(tmp_path):
    weights = {"model/" + k: v for k, v in npadv.small_cnn().state_dict().items()}
    path = write_npz(tmp_path / "c.npz", META, **weights)      # says mlp, holds a small_cnn
    assert_rejected(path, "do not fit the model", loader=load_model)


def test_check_weights_casts_to_the_model_dtype():
    model = tiny_model()
    state = {k: v.astype(np.float64) for k, v in tiny_state().items()}
    checked = check_weights(state, model.state_dict())
    assert all(v.dtype == np.float32 for v in checked.values())
    load_weights(model, state)
    assert np.array_equal(model.state_dict()["0.weight"], tiny_state()["0.weight"])


# ---- entries that are not .npy arrays, or come twice -------------------------------------
def zip_entries(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def write_zip(path, entries: list[tuple[str, bytes]]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in entries:
                z.writestr(name, data)
    return path


def npy(a) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(a))
    return buffer.getvalue()


@pytest.mark.parametrize("extra, match", [
    ([("raw_weight", b"\x00" * 48)], "entry 'raw_weight' is not a .npy array"),
    ([("raw_meta", b'{"model": "mlp"}')], "entry 'raw_meta' is not a .npy array"),
    ([("model/", b"")], "entry 'model/' is not a .npy array"),
    ([("model/1.weight.npy", b"\x00" * 48)], "'model/1.weight.npy' is not a .npy array"),
    ([("model/0.weight.npy", npy(np.ones((3, 4), np.float32)))], "appears twice"),
    ([("meta.npy", npy(json.dumps({**META, "model": "small-cnn"})))], "appears twice"),
])
def test_foreign_and_duplicate_entries(good, extra, match):
    write_zip(good, zip_entries(good) + extra)
    assert_rejected(good, match)
    assert_rejected(good, match, loader=load_model)


def test_saved_metadata_is_strict_json(tmp_path):
    path = tmp_path / "c.npz"
    meta = {**META, "history": [{"loss": math.nan}], "config": {"best": -math.inf}}
    save_checkpoint(path, {"model": tiny_state()}, meta)
    raw = dict(zip_entries(path))["meta.npy"]
    text = str(np.load(io.BytesIO(raw)))
    assert json.loads(text, parse_constant=_refuse) == {
        **META, "history": [{"loss": None}], "config": {"best": None}}


def _refuse(constant):
    raise ValueError(f"{constant} is not JSON")


# ---- resume: a run's checkpoint, then crafted copies of it ---------------------------------
CONFIG = TrainConfig(epochs=2, batch_size=128, schedule="constant", eval_size=50)


@pytest.fixture(scope="module")
def data():
    x_train, y_train, x_test, y_test = load_mnist_5k()
    return x_train[:256], y_train[:256], x_test[:50], y_test[:50]


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory, data):
    """A natural run of 2 epochs: its checkpoint's bytes."""
    path = tmp_path_factory.mktemp("run") / "checkpoint.npz"
    train(npadv.mlp(), build_method("natural"), data, CONFIG, checkpoint_path=path,
          progress=False)
    return path.read_bytes()


def rewrite(path, meta=None, arrays=None, drop=()):
    """path's checkpoint with meta changed by `meta(meta)`, arrays set from `arrays`
    ({key: array}) and the keys in `drop` removed, written back as a plain zip."""
    entries = dict(zip_entries(path))
    old = json.loads(str(np.load(io.BytesIO(entries["meta.npy"]))))
    if meta is not None:
        meta(old)
    entries["meta.npy"] = npy(json.dumps(old))
    for key, a in (arrays or {}).items():
        entries[key + ".npy"] = npy(a)
    for key in drop:
        del entries[key + ".npy"]
    return write_zip(path, list(entries.items()))


def _history_of(value):
    return lambda m: m.update(history=value)


def _records(change):
    def edit(m):
        for r in m["history"]:
            change(r)
    return edit


VELOCITY = np.zeros((256, 784), np.float32)   # the shape of mlp's first weight
NAN_VELOCITY = VELOCITY.copy()
NAN_VELOCITY[3, 4] = np.nan


@pytest.mark.parametrize("meta, arrays, drop, match", [
    (lambda m: m.update(epoch=0), None, (), "'epoch' is 0 but the history holds 2"),
    (lambda m: m.update(epoch=1), None, (), "'epoch' is 1 but the history holds 2"),
    (lambda m: m.update(epoch=5), None, (), "'epoch' is 5 but the history holds 2"),
    (_history_of([1, 2]), None, (), "history record 1 is a JSON int, not an object"),
    (_history_of([{}, {}]), None, (), "history record 1 lacks"),
    (_records(lambda r: r.pop("time")), None, (), "lacks ['time']"),
    (_records(lambda r: r.update(loss="low")), None, (), "'loss' must be a finite number"),
    (_records(lambda r: r.update(loss=None)), None, (), "'loss' must be a finite number"),
    (_records(lambda r: r.update(clean_acc=math.inf)), None, (), "'clean_acc' must be"),
    (_records(lambda r: r.update(full_passes=2.5)), None, (), "'full_passes' must be an int"),
    (_records(lambda r: r.update(lr=[1])), None, (), "'lr' must be a finite number or null"),
    (_records(lambda r: r.update(epoch=7)), None, (), "says epoch 7"),
    (None, {"optimizer/lr": np.zeros(3)}, (), "'lr' has shape (3,), needs ()"),
    (None, {"optimizer/steps": np.array([4, 4])}, (), "'steps' has shape (2,)"),
    (None, {"optimizer/steps": np.array(-4)}, (), "must be >= 0"),
    (None, {"optimizer/velocity.0": NAN_VELOCITY}, (), "'velocity.0' contains 1 NaN/inf"),
    (None, {"optimizer/velocity.0": VELOCITY.astype(np.float64)}, (), "has dtype float64"),
    (None, {"optimizer/velocity.0": VELOCITY[:10]}, (), "has shape (10, 784)"),
    (None, {"optimizer/velocity.9": VELOCITY}, (), "unexpected ['velocity.9']"),
    (None, None, ("optimizer/velocity.1",), "missing ['velocity.1']"),
    (None, {"model/0.weight": np.ones((3, 3), np.float32)}, (), "do not fit the model"),
])
def test_resume_refuses_a_crafted_checkpoint(tmp_path, data, run_checkpoint, meta, arrays,
                                             drop, match):
    path, log = tmp_path / "checkpoint.npz", tmp_path / "log.jsonl"
    path.write_bytes(run_checkpoint)
    log.write_text("the log\n")
    rewrite(path, meta, arrays, drop)
    model = npadv.mlp(seed=5)
    before = model.state_dict()
    with pytest.raises((CheckpointError, ResumeError)) as info:
        train(model, build_method("natural"), data, CONFIG, log_path=log, checkpoint_path=path,
              resume=True, progress=False)
    assert type(info.value) in (CheckpointError, ResumeError)
    message = str(info.value)
    assert match in message and str(path) in message and "\n" not in message, message
    for name, value in model.state_dict().items():      # nothing loaded, log untouched
        assert np.array_equal(value, before[name])
    assert log.read_text() == "the log\n"


def test_a_duplicated_weight_entry_is_refused_not_the_last_one_taken(tmp_path, data,
                                                                     run_checkpoint):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(run_checkpoint)
    write_zip(path, zip_entries(path) + [("model/0.weight.npy", npy(VELOCITY))])
    with pytest.raises(CheckpointError, match="'model/0.weight.npy' appears twice"):
        train(npadv.mlp(), build_method("natural"), data, CONFIG, checkpoint_path=path,
              resume=True, progress=False)


def test_the_uncrafted_checkpoint_resumes(tmp_path, data, run_checkpoint):
    path, log = tmp_path / "checkpoint.npz", tmp_path / "log.jsonl"
    path.write_bytes(run_checkpoint)
    rewrite(path)                                       # the same content, rewritten
    history = train(npadv.mlp(seed=5), build_method("natural"), data, CONFIG, log_path=log,
                    checkpoint_path=path, resume=True, progress=False)
    assert [r["epoch"] for r in history] == [1, 2]
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2]


# ---- Fast AT: best_acc is -inf until the guard's first check ------------------------------
@pytest.mark.parametrize("guard", [False, True])
def test_fast_at_checkpoint_is_strict_json_and_resume_restores_best_acc(tmp_path, data, guard):
    path = tmp_path / "checkpoint.npz"
    config = TrainConfig(epochs=1, batch_size=128, schedule="constant", eval_size=50)
    method = FastAT(guard=guard, guard_n=32, guard_steps=2)
    train(npadv.mlp(), method, data, config, checkpoint_path=path, progress=False)
    raw = str(np.load(io.BytesIO(dict(zip_entries(path))["meta.npy"])))
    meta = json.loads(raw, parse_constant=_refuse)           # no -Infinity in it
    assert meta["method_settings"]["best_acc"] is None       # a setting taken before training
    resumed = FastAT(guard=guard, guard_n=32, guard_steps=2)
    train(npadv.mlp(), resumed, data, config, checkpoint_path=path, resume=True,
          progress=False)
    assert resumed.best_acc == method.best_acc
    assert (resumed.best_acc == -math.inf) == (not guard)
    parts, _ = load_checkpoint(path)                       # the state itself, into a method
    resumed.best_acc = 0.5                                 # that had another best
    resumed.load_state_dict(parts["method"])
    assert resumed.best_acc == method.best_acc


def test_fast_at_reads_a_null_best_acc_as_minus_infinity():
    method = build_method("fast")
    method.load_state_dict({"best_acc": None, "best_epoch": np.array(0)})
    assert method.best_acc == -math.inf


def test_a_checkpoint_with_infinity_in_its_metadata_still_resumes(tmp_path, data):
    """Checkpoints written before the metadata was strict JSON hold -Infinity."""
    path = tmp_path / "checkpoint.npz"
    config = TrainConfig(epochs=1, batch_size=128, schedule="constant", eval_size=50)
    train(npadv.mlp(), build_method("fast", guard=False), data, config, checkpoint_path=path,
          progress=False)
    rewrite(path, lambda m: m["method_settings"].update(best_acc=-math.inf))
    assert "-Infinity" in str(np.load(io.BytesIO(dict(zip_entries(path))["meta.npy"])))
    history = train(npadv.mlp(), build_method("fast", guard=False), data, config,
                    checkpoint_path=path, resume=True, progress=False)
    assert len(history) == 1


# ---- what the loop refuses before it starts ------------------------------------------------
def test_an_empty_training_set_is_refused_in_one_line(data):
    x, y = data[0][:0], data[1][:0]
    for attempt in (lambda: check_training_data(x, y),
                    lambda: train(npadv.mlp(), build_method("natural"), (x, y, *data[2:]),
                                  CONFIG, progress=False)):
        with pytest.raises(ValueError, match="the training set is empty") as info:
            attempt()
        assert "\n" not in str(info.value)


def test_accuracy_of_an_empty_set_is_an_error_not_zero(data):
    model, x, y = npadv.mlp(), data[2][:0], data[3][:0]
    for measure in (lambda: accuracy(model, x, y), lambda: pgd_accuracy(model, x, y, 0.1),
                    lambda: ImageData((*data[:2], x, y)).accuracy(model, 10)):
        with pytest.raises(ValueError, match="empty evaluation set"):
            measure()


@pytest.mark.parametrize("setting", [
    {"epochs": 2.5}, {"epochs": math.nan}, {"epochs": True}, {"batch_size": 64.0},
    {"eval_size": math.inf}, {"eval_steps": 1.5}, {"eval_restarts": "2"}, {"eval_every": None},
    {"seed": 0.5}, {"seed": -1}, {"lr": math.nan}, {"lr": math.inf}, {"momentum": math.nan},
    {"weight_decay": -math.inf}, {"eps_ramp": math.inf}, {"eval_eps": math.nan},
    {"lr": "0.1"},
])
def test_train_config_refuses_non_integer_counts_and_non_finite_numbers(setting):
    (name, value), = setting.items()
    with pytest.raises(ValueError, match=name) as info:
        TrainConfig(**setting)
    assert "\n" not in str(info.value)


def test_train_config_takes_numpy_numbers():
    config = TrainConfig(epochs=np.int64(3), lr=np.float32(0.1), eval_eps=0)
    assert config.epochs == 3
