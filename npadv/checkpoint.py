"""Checkpoints: one .npz of plain arrays plus a JSON string, written atomically, read without pickle.

Keys are "<part>/<name>" (e.g. "model/0.weight", "optimizer/velocity.0", "method/delta");
"meta" holds a JSON document (model name, epoch, config, history).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    pass


def save_checkpoint(path, parts: dict[str, dict[str, np.ndarray]], meta: dict) -> None:
    """Write `parts` ({"model": state_dict, ...}) and `meta` to `path` atomically.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder and renamed over `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{part}/{name}": np.asarray(a) for part, state in parts.items()
              for name, a in state.items()}
    for key, a in arrays.items():
        if a.dtype == object:
            raise CheckpointError(f"checkpoint entry {key!r} is an object array; not saved")
    arrays["meta"] = np.array(json.dumps(meta))
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


def load_checkpoint(path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Read a checkpoint written by save_checkpoint -> (parts, meta).

    Raises CheckpointError for a missing or unreadable file, one that asks to unpickle
    objects, or one without npadv metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    parts: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise CheckpointError(f"{path} is not an npadv checkpoint (no 'meta' entry)")
            meta = json.loads(str(data["meta"]))
            for key in data.files:
                if key == "meta":
                    continue
                part, _, name = key.partition("/")
                parts.setdefault(part, {})[name] = data[key]
    except CheckpointError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise CheckpointError(
                f"{path} contains pickled Python objects; npadv checkpoints hold plain arrays "
                "only, and it will not unpickle (that could run arbitrary code)") from e
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    except (OSError, EOFError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    return parts, meta
