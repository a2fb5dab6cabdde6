"""Checkpoints: one .npz of plain arrays plus a JSON string, written atomically, read strictly.

Keys are "<part>/<name>" (e.g. "model/0.weight", "optimizer/velocity.0", "method/delta");
"meta" holds a JSON object (model name, method, epoch, config, history).

Reading never unpickles and never half-loads. Every way a file can be malformed raises one
CheckpointError whose message names the file and what is wrong:

    not a zip archive      empty, text, a lone .npy, a pickle, or some other bytes
    corrupt archive        truncated, or bytes changed (every entry's CRC-32 is checked)
    pickled objects        an entry that is an object array
    bad metadata           no "meta", not JSON, not a JSON object, missing or mistyped keys
    bad weights            non-float or non-finite model weights; with a model to load into,
                           missing/unexpected names and wrong shapes; an unknown model name

`check_weights` validates a state dict against a model's own before anything is assigned,
and `load_weights` / `load_model` use it, so a model is either fully loaded or untouched.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or malformed; the message says which and why."""


ZIP_MAGIC = b"PK\x03\x04"
# Keys whose type is checked whenever they are present: name -> (type(s), description).
META_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "a string"), "method": (str, "a string"),
    "epoch": (int, "an integer >= 0"), "history": (list, "a list"),
    "config": (dict, "an object"), "stopped": ((str, type(None)), "a string or null"),
}


# ---- writing ---------------------------------------------------------------------------
def stale_temporaries(path) -> list[Path]:
    """Temporary files `<name>.*.tmp` left beside `path` by an interrupted save_checkpoint."""
    path = Path(path)
    return sorted(path.parent.glob(f"{_glob_escape(path.name)}.*.tmp"))


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def save_checkpoint(path, parts: dict[str, dict[str, np.ndarray]], meta: dict) -> None:
    """Write `parts` ({"model": state_dict, ...}) and `meta` to `path` atomically.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder and renamed over `path`. Temporaries left by an earlier interrupted save
    are removed first. Refuses (CheckpointError, nothing written) object arrays, names
    with "/", and model weights that are not finite floats, so a diverged model never
    replaces a good checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for part, state in parts.items():
        for name in state:
            if "/" in part or "/" in name:
                raise CheckpointError(f"checkpoint entry name {part}/{name} has a '/'; not saved")
    arrays = {f"{part}/{name}": np.asarray(a) for part, state in parts.items()
              for name, a in state.items()}
    for key, a in arrays.items():
        if a.dtype == object:
            raise CheckpointError(f"checkpoint entry {key!r} is an object array; not saved")
    if "model" in parts:
        problems = _weight_problems(parts["model"])
        if problems:
            raise CheckpointError(f"{path} not saved: model weights {problems[0]}")
    arrays["meta"] = np.array(json.dumps(meta))
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---- reading ---------------------------------------------------------------------------
def _describe_non_zip(head: bytes) -> str:
    """What a file that is not a zip archive looks like, from its first bytes."""
    if not head:
        return "is empty"
    if head.startswith(b"\x93NUMPY"):
        return "is a single .npy array, not an npadv checkpoint (.npz archive)"
    if head[:1] == b"\x80":
        return ("contains pickled Python objects; npadv checkpoints hold plain arrays only, "
                "and it will not unpickle (that could run arbitrary code)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "is not a zip archive (an npadv checkpoint is an .npz file)"
    return "is a text file, not an npadv checkpoint (.npz archive)"


def _read_entries(path: Path) -> dict[str, np.ndarray]:
    """Every entry of the .npz at path, after checking the archive's integrity."""
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        with open(path, "rb") as f:
            raise CheckpointError(f"checkpoint {path} {_describe_non_zip(f.read(512))}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()                # reads every entry, checks its CRC-32
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} is corrupt: entry {bad!r} fails its "
                                  "CRC check (the file was changed or damaged)")
    except CheckpointError:
        raise
    except Exception as e:                         # BadZipFile, EOFError, zlib.error, ...
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from e
    entries: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                try:
                    entries[key] = data[key]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise CheckpointError(
                            f"checkpoint {path} contains pickled Python objects (entry "
                            f"{key!r}); npadv checkpoints hold plain arrays only, and it "
                            "will not unpickle (that could run arbitrary code)") from e
                    raise
    except CheckpointError:
        raise
    except Exception as e:                         # a malformed .npy header inside the zip
        raise CheckpointError(f"checkpoint {path} is corrupt "
                              f"({type(e).__name__}: {e})") from e
    return entries


def _parse_meta(path: Path, entries: dict[str, np.ndarray], required) -> dict:
    if "meta" not in entries:
        raise CheckpointError(f"{path} is not an npadv checkpoint (no 'meta' entry)")
    raw = entries["meta"]
    if raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"checkpoint {path} has bad metadata: 'meta' must be one string, "
                              f"got dtype {raw.dtype} shape {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} has bad metadata: not JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has bad metadata: expected a JSON object, "
                              f"got a JSON {type(meta).__name__}")
    missing = [k for k in required if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {path} has bad metadata: missing key(s) {missing}")
    for key, (types, what) in META_TYPES.items():
        value = meta.get(key, None)
        if key not in meta:
            continue
        ok = isinstance(value, types) and not isinstance(value, bool)
        if ok and key == "epoch":
            ok = value >= 0
        if not ok:
            raise CheckpointError(f"checkpoint {path} has bad metadata: {key!r} must be {what}, "
                                  f"got {value!r}")
    return meta


def _weight_problems(state: dict[str, np.ndarray]) -> list[str]:
    """Model weights that are not float arrays of finite numbers, one message each."""
    problems = []
    for name, a in state.items():
        a = np.asarray(a)
        if a.dtype.kind != "f":
            problems.append(f"{name!r} has dtype {a.dtype}, not float")
        elif not np.isfinite(a).all():
            problems.append(f"{name!r} contains {int((~np.isfinite(a)).sum())} NaN/inf values")
    return problems


def load_checkpoint(path, required: tuple[str, ...] = ()
                    ) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Read a checkpoint written by save_checkpoint -> (parts, meta).

    required: metadata keys that must be present (e.g. ("model",)). Known keys are
    type-checked whenever present (see META_TYPES). Model weights ("model/...") must be
    finite floats; their names and shapes are checked against a model by check_weights.
    Raises CheckpointError (see the module docstring) for anything else.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        entries = _read_entries(path)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    meta = _parse_meta(path, entries, required)
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, a in entries.items():
        if key == "meta":
            continue
        part, slash, name = key.partition("/")
        if not slash or not name:
            raise CheckpointError(f"checkpoint {path} has an unexpected entry {key!r} "
                                  "(entries are 'part/name' or 'meta')")
        if a.dtype.kind not in "biuf" and not (part == "data" and a.dtype.kind == "U"):
            raise CheckpointError(f"checkpoint {path}: entry {key!r} has dtype {a.dtype}; "
                                  "checkpoints hold numeric arrays only (and the data's "
                                  "strings, e.g. a vocabulary)")
        parts.setdefault(part, {})[name] = a
    problems = _weight_problems(parts.get("model", {}))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"checkpoint {path}: model weight {problems[0]}{more}")
    return parts, meta


# ---- into a model ----------------------------------------------------------------------
def check_weights(state: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                  source="state dict") -> dict[str, np.ndarray]:
    """Validate `state` against `reference` (a model's state_dict()); return cast copies.

    Checks, all before anything is returned: the same names, float dtype, finite values,
    the same shapes. The result has reference's dtypes. Raises CheckpointError naming
    `source` (e.g. the file) and every problem found.
    """
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    common = [k for k in reference if k in state]
    problems += _weight_problems({k: state[k] for k in common})
    problems += [f"{k!r} has shape {tuple(np.shape(state[k]))}, the model needs "
                 f"{tuple(reference[k].shape)}"
                 for k in common if np.shape(state[k]) != np.shape(reference[k])]
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the model: " + "; ".join(problems))
    return {k: np.array(state[k], dtype=reference[k].dtype) for k in reference}


def load_weights(model, state: dict[str, np.ndarray], source="state dict") -> None:
    """Load `state` into `model` after check_weights: all parameters change, or none."""
    model.load_state_dict(check_weights(state, model.state_dict(), source))


def load_model(path):
    """Rebuild a reference model from a checkpoint -> (model in eval mode, meta).

    The architecture is meta["model"] (see npadv.models.build_model). Raises CheckpointError
    for an unknown model name or weights that do not fit it.
    """
    from .models import build_model

    parts, meta = load_checkpoint(path, required=("model",))
    try:
        model = build_model(meta["model"])
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from e
    load_weights(model, parts.get("model", {}), f"checkpoint {path}")
    return model.eval(), meta
