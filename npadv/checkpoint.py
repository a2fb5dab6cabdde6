"""Checkpoints: one .npz of plain arrays plus a JSON string, written atomically, read strictly.

Keys are "<part>/<name>" (e.g. "model/0.weight", "optimizer/velocity.0", "method/delta");
"meta" holds a JSON object (model name, method, epoch, config, history) in strict JSON: null
stands for a value that is not finite (e.g. Fast AT's best PGD accuracy before its first
check, -inf). The file is written through npadv.files.atomic_output: it appears complete or
not at all, with mode 0o666 & ~umask like any new file.

Reading never unpickles and never half-loads. Every way a file can be malformed raises one
CheckpointError whose message names the file and what is wrong:

    not a zip archive      empty, text, a lone .npy, a pickle, or some other bytes
    corrupt archive        truncated, or bytes changed (every entry's CRC-32 is checked)
    foreign entries        an entry whose name does not end in .npy or whose content is not
                           a .npy array; two entries with the same name
    pickled objects        an entry that is an object array
    bad metadata           no "meta", not JSON, not a JSON object, missing or mistyped keys
    bad weights            non-float or non-finite model weights; with a model to load into,
                           missing/unexpected names and wrong shapes; an unknown model name

`check_weights` validates a state dict against a model's own before anything is assigned,
and `load_weights` / `load_model` use it, so a model is either fully loaded or untouched.
`check_state` does the same for an optimiser's or a method's state, and `check_history` for
the training loop's metadata (epoch and per-epoch records), before a run resumes.
"""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .files import atomic_output, strict_json, temporaries


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
    """Temporary files `<name>.*.tmp[.npz]` left beside `path` by an interrupted save."""
    return temporaries(path)


def save_checkpoint(path, parts: dict[str, dict[str, np.ndarray]], meta: dict) -> None:
    """Write `parts` ({"model": state_dict, ...}) and `meta` to `path` atomically.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder, flushed to disk and renamed over `path` (npadv.files.atomic_output); a new
    file has mode 0o666 & ~umask. Temporaries left by an earlier interrupted save are
    removed first. `meta` is stored as strict JSON (null for a value that is not finite).
    Refuses (CheckpointError, nothing written) object arrays, names with "/", and model
    weights that are not finite floats, so a diverged model never replaces a good
    checkpoint. A failed write raises npadv.files.WriteError (an OSError naming `path`)
    and leaves the earlier file as it was.
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
    arrays["meta"] = np.array(strict_json(meta))
    for stale in stale_temporaries(path):
        stale.unlink(missing_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


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
            names = archive.namelist()
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} is corrupt: entry {bad!r} fails its "
                                  "CRC check (the file was changed or damaged)")
    except CheckpointError:
        raise
    except Exception as e:                         # BadZipFile, EOFError, zlib.error, ...
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from e
    _check_entry_names(path, names)
    entries: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                try:
                    value = data[key]
                except ValueError as e:
                    if "pickle" in str(e).lower() or "object" in str(e).lower():
                        raise CheckpointError(
                            f"checkpoint {path} contains pickled Python objects (entry "
                            f"{key!r}); npadv checkpoints hold plain arrays only, and it "
                            "will not unpickle (that could run arbitrary code)") from e
                    raise
                if not isinstance(value, np.ndarray):     # np.load gives other entries' bytes
                    raise CheckpointError(f"checkpoint {path}: entry {key + '.npy'!r} is not "
                                          "a .npy array; checkpoints hold .npy arrays only")
                entries[key] = value
    except CheckpointError:
        raise
    except Exception as e:                         # a malformed .npy header inside the zip
        raise CheckpointError(f"checkpoint {path} is corrupt "
                              f"({type(e).__name__}: {e})") from e
    return entries


def _check_entry_names(path: Path, names: list[str]) -> None:
    """Every entry is a `<key>.npy`, and no name comes twice (np.load would keep the last)."""
    seen: set[str] = set()
    for name in names:
        if not name.endswith(".npy") or name == ".npy":
            raise CheckpointError(f"checkpoint {path}: entry {name!r} is not a .npy array; "
                                  "checkpoints hold .npy arrays only")
        if name in seen:
            raise CheckpointError(f"checkpoint {path}: entry {name!r} appears twice; a "
                                  "checkpoint names each array once")
        seen.add(name)


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


# ---- a run's metadata and state, before it resumes -----------------------------------
# The training loop's per-epoch record: keys every record has, and the numbers in it.
# Counts are integers; the others are finite numbers, or null where the value may be absent
# (a natural run has no ε); "cpu_time" is missing from records written before it existed.
HISTORY_COUNTS = ("epoch", "full_passes", "first_layer_passes")
HISTORY_NUMBERS = ("loss", "time", "gflops", "clean_acc")
HISTORY_OPTIONAL = ("cpu_time",)
HISTORY_NULLABLE = ("lr", "eps", "epoch_time", "robust_acc", "clean_acc_after_stop")


def _is_number(value, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) if integer else math.isfinite(value)


def check_history(meta: dict, source: str) -> list[dict]:
    """The per-epoch records of a run's metadata, checked for a resume; returns them.

    meta["epoch"] (the epochs done) must be >= 1 and equal the number of records; record i
    must be an object with "epoch" = i + 1 and the loop's numbers (see HISTORY_COUNTS and
    the lists after it) of the right kind. Raises CheckpointError naming `source` and the
    first problem, on one line.
    """
    epoch, history = meta.get("epoch"), meta.get("history")
    if not isinstance(history, list) or not _is_number(epoch, integer=True):
        raise CheckpointError(f"{source}: bad metadata: 'epoch' must be an integer and "
                              "'history' a list")
    if epoch < 1 or epoch != len(history):
        raise CheckpointError(f"{source}: bad metadata: 'epoch' is {epoch} but the history "
                              f"holds {len(history)} epoch record(s); they must agree (>= 1)")
    for i, record in enumerate(history):
        where = f"{source}: bad metadata: history record {i + 1}"
        if not isinstance(record, dict):
            raise CheckpointError(f"{where} is a JSON {type(record).__name__}, not an object")
        missing = [k for k in HISTORY_COUNTS + HISTORY_NUMBERS if k not in record]
        if missing:
            raise CheckpointError(f"{where} lacks {missing}")
        for key in HISTORY_COUNTS + HISTORY_NUMBERS + HISTORY_OPTIONAL + HISTORY_NULLABLE:
            if key not in record or (key in HISTORY_NULLABLE and record[key] is None):
                continue
            integer = key in HISTORY_COUNTS
            if not _is_number(record[key], integer) or (integer and record[key] < 0):
                kind = "an integer >= 0" if integer else "a finite number"
                if key in HISTORY_NULLABLE:
                    kind += " or null"
                raise CheckpointError(f"{where}: {key!r} must be {kind}, got {record[key]!r}")
        if record["epoch"] != i + 1:
            raise CheckpointError(f"{where} says epoch {record['epoch']}; records go 1, 2, ...")
        stopped = record.get("stopped")
        if stopped is not None and not isinstance(stopped, str):
            raise CheckpointError(f"{where}: 'stopped' must be a string or null, got "
                                  f"{stopped!r}")
    return history


def check_state(state: dict[str, np.ndarray], reference: dict[str, np.ndarray], source: str,
                complete: bool = True) -> None:
    """Check a stored state (an optimiser's, a method's) against a live object's own.

    Every name in both must have the reference's shape and dtype (integers: any integer
    dtype). With `complete`, the names must be the same; without, names the reference lacks
    are state that appears while training (Free AT's δ, Fast AT's best weights). Float
    arrays must hold no NaN or inf, except where the reference's own value is not finite
    (Fast AT's best accuracy starts at -inf). Raises CheckpointError naming `source` (e.g.
    "checkpoint c.npz: optimiser state") and every problem found, on one line.
    """
    problems = []
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if complete and missing:
        problems.append(f"missing {missing}")
    if complete and unexpected:
        problems.append(f"unexpected {unexpected}")
    for name in state:
        a = np.asarray(state[name])
        ref = np.asarray(reference[name]) if name in reference else None
        if ref is not None and a.shape != ref.shape:
            problems.append(f"{name!r} has shape {a.shape}, needs {ref.shape}")
        elif ref is not None and a.dtype != ref.dtype and not (a.dtype.kind in "iu" and
                                                                ref.dtype.kind in "iu"):
            problems.append(f"{name!r} has dtype {a.dtype}, needs {ref.dtype}")
        elif (a.dtype.kind == "f" and not np.isfinite(a).all()
              and (ref is None or np.isfinite(ref).all())):
            problems.append(f"{name!r} contains {int((~np.isfinite(a)).sum())} NaN/inf "
                            "values")
    if problems:
        raise CheckpointError(f"{source}: " + "; ".join(problems))


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
