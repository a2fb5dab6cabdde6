"""Strict checkpoints: every malformed file raises CheckpointError naming the file; nothing is
half-loaded; a save clears the temporaries of an interrupted one and refuses bad weights."""
from __future__ import annotations

import json
import pickle
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
