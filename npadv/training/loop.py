"""The shared training loop every method runs in, on images and on text.

    for epoch in 1 .. epochs / method.epoch_divisor:
      for minibatch i (order seeded by (seed, epoch)):
        lr ← schedule(epoch + i / batches);  ε ← ramp(epoch + i / batches)
        loss ← method.step(model, optimizer, *inputs, y, rng(seed, epoch, i))
      evaluate clean and PGD accuracy on a fixed evaluation subset
      checkpoint atomically; append a JSON line to the log; stop if method.end_of_epoch says so

The data is a task object (`ImageData` here, `npadv.text.task.TextTask` for text) that
gives the minibatches, (x, y) for images and (ids, mask, y) for text, and the accuracies:
clean, and under PGD in the task's threat model (L∞ on pixels, L2 on embeddings). A plain
(x_train, y_train, x_test, y_test) tuple is taken as ImageData.

Everything random is derived from (seed, epoch, batch index), and the optimiser and
method states are checkpointed, so a resumed run is bit-identical to an uninterrupted one
(for the same BLAS thread count: a different one may change the rounding of matmuls).
A resume is refused when a setting differs from the checkpoint's, except more epochs under
the constant schedule, the one schedule whose past does not depend on the run's length.
A loss that is not finite or above MAX_LOSS stops training (TrainingDiverged) before
anything is saved, so a diverged model never replaces a good checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import optim
from ..attacks.gradients import correct
from ..attacks.pgd import pgd
from ..checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint
from ..cost import cost
from ..data.batches import Batches
from ..engine.functional import check_labels
from ..nn import evaluating
from .method import Method

MAX_LOSS = 1e3   # mean cross-entropy; chance level on 10 classes is ln 10 ≈ 2.3


class TrainingDiverged(FloatingPointError):
    """The loss or the weights left the finite, bounded range; the message says where."""


class ResumeError(ValueError):
    """A run cannot continue from its checkpoint; the message says why."""


@dataclass
class TrainConfig:
    """Settings of the loop (the method's own settings live on the method)."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"          # "sgd" | "adam"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"        # "constant" | "multistep" | "cosine" | "cyclic"
    seed: int = 0
    eps_ramp: float = 0.0           # epochs over which ε rises linearly from 0 (0 = off)
    eval_size: int = 1000           # fixed evaluation subset: the first eval_size test examples
    eval_eps: float = 0.0           # ε of the per-epoch PGD check (0 = clean accuracy only)
    eval_steps: int = 10
    eval_restarts: int = 1
    eval_every: int = 1             # the PGD check every this many epochs, and after the last
                                    # (0: after the last only); clean accuracy every epoch
    extra: dict = field(default_factory=dict)  # free-form, recorded in logs and checkpoints

    def __post_init__(self):
        counts = ("epochs", "batch_size", "seed", "eval_size", "eval_steps", "eval_restarts",
                  "eval_every")
        numbers = ("lr", "momentum", "weight_decay", "eps_ramp", "eval_eps")
        for name in counts + numbers:
            value = getattr(self, name)
            kinds = (int, np.integer) if name in counts else (int, float, np.integer, np.floating)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
                what = "an integer" if name in counts else "a number"
                raise ValueError(f"{name} = {value!r} must be {what}")
            if not np.isfinite(value):
                raise ValueError(f"{name} = {value!r} must be finite")
        checks = [("epochs", self.epochs >= 1), ("batch_size", self.batch_size >= 1),
                  ("seed", self.seed >= 0), ("lr", self.lr > 0),
                  ("momentum", 0 <= self.momentum < 1),
                  ("weight_decay", self.weight_decay >= 0), ("eps_ramp", self.eps_ramp >= 0),
                  ("eval_size", self.eval_size >= 1), ("eval_eps", self.eval_eps >= 0),
                  ("eval_steps", self.eval_steps >= 0), ("eval_restarts", self.eval_restarts >= 1),
                  ("eval_every", self.eval_every >= 0)]
        bad = [name for name, ok in checks if not ok]
        if bad:
            name = bad[0]
            raise ValueError(f"{name} = {getattr(self, name)!r} is out of range")


def make_optimizer(model, config: TrainConfig) -> optim.Optimizer:
    if config.optimizer == "sgd":
        return optim.SGD(model.parameters(), config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return optim.Adam(model.parameters(), config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'sgd' or 'adam'")


def make_schedule(config: TrainConfig, epochs: int):
    name = config.schedule
    if name == "constant":
        return optim.Constant(config.lr)
    if name == "multistep":
        return optim.MultiStep(config.lr, [epochs * 0.5, epochs * 0.75])
    if name == "cosine":
        return optim.Cosine(config.lr, epochs)
    if name == "cyclic":
        return optim.Cyclic(config.lr, epochs)
    raise ValueError(f"unknown schedule {name!r}; use constant, multistep, cosine or cyclic")


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Clean accuracy of model on (x, y), in eval mode (the mode is restored).

    Raises ValueError for an empty set, whose accuracy is undefined."""
    if len(x) == 0 or len(y) == 0:
        raise ValueError("cannot measure accuracy on an empty evaluation set")
    with evaluating(model):
        hits = [correct(model, x[i:i + batch_size], y[i:i + batch_size])
                for i in range(0, len(x), batch_size)]
    return float(np.concatenate(hits).mean())


def pgd_accuracy(model, x, y, eps: float, steps: int = 10, restarts: int = 1,
                 seed: int = 0, lo=0.0, hi=1.0) -> float:
    """Accuracy under L∞ PGD (random start, α = 2.5ε/steps), model in eval mode.

    Raises ValueError for an empty set, whose accuracy is undefined."""
    if len(x) == 0 or len(y) == 0:
        raise ValueError("cannot measure accuracy under PGD on an empty evaluation set")
    with evaluating(model):
        x_adv = pgd(model, x, y, eps, steps=steps, restarts=restarts, rng=seed, lo=lo, hi=hi)
    return accuracy(model, x_adv, y)


def check_training_data(x: np.ndarray, y: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Refuse an empty training set, NaN/inf or non-numeric inputs and out-of-range labels
    before any step is taken. Returns the labels as int64."""
    if len(x) != len(y):
        raise ValueError(f"training inputs and labels differ in length: {len(x)} vs {len(y)}")
    if len(x) == 0:
        raise ValueError("the training set is empty (0 examples)")
    values = np.asarray(x)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"training inputs must be numbers, got dtype {values.dtype}")
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"training inputs contain NaN or inf in {int(bad.sum())} examples "
                         f"(first at index {int(np.argmax(bad))})")
    return check_labels(y, num_classes, len(y))


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of a training split: the shapes, dtypes and bytes of x and y."""
    digest = hashlib.sha256()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class ImageData:
    """Images as the loop sees them: minibatches (x, y), and accuracies on the test set.

    data: (x_train, y_train, x_test, y_test); inputs in [lo, hi], labels in 0..C−1.
    name: the data set's name (e.g. "mnist-5k"), recorded in checkpoints with a fingerprint
    of the training split, so that a resume refuses other data and `npadv eval` finds it.
    """

    task = "image"

    def __init__(self, data, num_classes: int = 10, lo: float | None = 0.0,
                 hi: float | None = 1.0, name: str | None = None):
        x_train, y_train, x_test, y_test = data
        self.train_set = (x_train, check_training_data(x_train, y_train, num_classes))
        if len(x_test) == 0 or len(x_test) != len(y_test):
            raise ValueError(f"the test set needs examples and one label each (an empty "
                             f"evaluation set has no accuracy), got {len(x_test)} inputs and "
                             f"{len(y_test)} labels")
        self.test_set = (x_test, np.asarray(y_test))
        self.lo, self.hi = lo, hi
        self.settings = {"dataset": name, "train_sha256": fingerprint(*self.train_set),
                         "n_train": len(x_train), "input_range": [lo, hi]}

    def batches(self, batch_size: int, seed: int) -> Batches:
        return Batches(*self.train_set, batch_size, seed=seed)

    def accuracy(self, model, n: int) -> float:
        """Clean accuracy on the first n test examples."""
        x, y = self.test_set
        return accuracy(model, x[:n], y[:n])

    def robust_accuracy(self, model, eps: float, steps: int, restarts: int, seed: int,
                        n: int) -> float:
        """Accuracy under L∞ PGD on the first n test examples."""
        x, y = self.test_set
        return pgd_accuracy(model, x[:n], y[:n], eps, steps, restarts, seed=seed, lo=self.lo,
                            hi=self.hi)

    def state_dict(self) -> dict[str, np.ndarray]:
        """What a checkpoint keeps of the data (nothing: the images are loaded by name)."""
        return {}


@dataclass
class Run:
    """One training run: what the loop needs from step to step, and where it writes."""

    model: object
    method: Method
    config: TrainConfig
    data: object
    model_name: str = "model"
    log_path: Path | None = None
    checkpoint_path: Path | None = None
    progress: bool = True

    def __post_init__(self):
        if self.method.task != self.data.task:
            raise ValueError(f"method {self.method.name!r} trains on {self.method.task}, "
                             f"the data is {self.data.task}")
        self.epochs = max(1, self.config.epochs // self.method.epoch_divisor)
        self.batches = self.data.batches(self.config.batch_size, self.config.seed)
        self.optimizer = make_optimizer(self.model, self.config)
        self.schedule = make_schedule(self.config, self.epochs)
        self.eps_target = self.method.eps
        self.settings = {"model": self.model_name, "method": self.method.name,
                         "method_settings": self.method.settings(),
                         "config": asdict(self.config)}
        if self.data.settings:
            self.settings["data"] = self.data.settings
        self.settings["threat_model"] = self.method.threat_model()
        self.settings["npadv_version"] = _version()


def _version() -> str:
    from .. import __version__
    return __version__


def train(model, method: Method, data, config: TrainConfig, log_path=None,
          checkpoint_path=None, resume: bool = False, progress: bool = True,
          model_name: str = "model", num_classes: int = 10, lo: float | None = 0.0,
          hi: float | None = 1.0, data_name: str | None = None) -> list[dict]:
    """Train `model` with `method` on `data`: a task object (ImageData, TextTask) or
    (x_train, y_train, x_test, y_test) images in [lo, hi] with labels in 0..num_classes−1
    (data_name: the data set's name, recorded in the checkpoint).

    After every epoch, writes a checkpoint to `checkpoint_path`, then one JSON line to
    `log_path`. With resume=True, continues from the checkpoint, which must exist and
    match these settings (see the module docstring). Returns the per-epoch records.
    """
    if not hasattr(data, "batches"):
        data = ImageData(data, num_classes, lo, hi, data_name)
    run = Run(model, method, config, data, model_name, _path(log_path),
              _path(checkpoint_path), progress)
    history = resume_run(run) if resume else []
    while len(history) < run.epochs and not (history and history[-1].get("stopped")):
        epoch = len(history)
        losses, seconds, meter = train_one_epoch(run, epoch)
        record = evaluate_epoch(run, epoch, losses, seconds, meter, history)
        history.append(record)
        save_run(run, history)
        append_log(run, record)
    return history


def _path(p) -> Path | None:
    return None if p is None else Path(p)


def resume_run(run: Run) -> list[dict]:
    """Load the run's checkpoint into model, optimiser and method; return its history.

    Refuses a missing checkpoint and any setting that differs from the stored one (more
    epochs under the constant schedule excepted): ResumeError. Refuses a checkpoint whose
    epoch count and history disagree, whose records are not the loop's, or whose weights,
    optimiser state or method state do not fit this run (names, shapes, dtypes, NaN/inf):
    CheckpointError. All is checked before anything is loaded. Rewrites the log from the
    checkpoint's history (atomically), so an interrupted epoch leaves neither a duplicate
    nor a gap.
    """
    import copy

    from ..checkpoint import check_history, check_state, check_weights
    from ..files import atomic_write, strict_json

    path = run.checkpoint_path
    if path is None or not path.exists():
        raise ResumeError(f"nothing to resume: no checkpoint at {path}")
    parts, meta = load_checkpoint(path, required=("model", "method", "epoch", "history"))
    source = f"checkpoint {path}"
    history = check_history(meta, source)
    as_stored = copy.copy(run)      # the settings as saved: strict JSON, null for not finite
    as_stored.settings = json.loads(strict_json(run.settings))
    _check_same_settings(as_stored, json.loads(strict_json(meta)), path)
    _check_same_data(run, parts.get("data", {}), path)
    check_weights(parts.get("model", {}), run.model.state_dict(), source)
    optimizer_state, method_state = parts.get("optimizer", {}), parts.get("method", {})
    check_state(optimizer_state, run.optimizer.state_dict(), f"{source}: optimiser state")
    if optimizer_state["steps"] < 0 or optimizer_state["lr"] < 0:
        raise CheckpointError(f"{source}: optimiser state: steps {optimizer_state['steps']} "
                              f"and lr {optimizer_state['lr']} must be >= 0")
    check_state(method_state, run.method.state_dict(), f"{source}: method state",
                complete=False)
    load_weights(run.model, parts.get("model", {}), source)
    try:
        run.optimizer.load_state_dict(optimizer_state)
        run.method.load_state_dict(method_state)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(f"{source}: optimiser or method state: {e}") from e
    if run.log_path is not None:               # the log says what the checkpoint says
        atomic_write(run.log_path, "".join(strict_json(r) + "\n" for r in history))
    return history


def _check_same_settings(run: Run, meta: dict, path: Path) -> None:
    defaults = asdict(type(run.config)())
    stored = {"model": meta.get("model"), "method": meta.get("method"),
              "method_settings": meta.get("method_settings", run.settings["method_settings"]),
              "config": {**defaults, **meta.get("config", {})},   # keys added since: defaults
              "data": meta.get("data", {})}
    diffs = []
    for group in ("model", "method"):
        if stored[group] != run.settings[group]:
            diffs.append(f"{group} {stored[group]!r} → {run.settings[group]!r}")
    for group in ("method_settings", "config", "data"):
        old, new = stored[group], run.settings.get(group, {})
        if group == "data" and not old:
            continue                    # a checkpoint from before data were recorded
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key) or (key == "epochs" and _may_extend(run, old)):
                continue
            diffs.append(f"{key} {old.get(key)!r} → {new.get(key)!r}")
    if diffs:
        raise ResumeError(f"cannot resume from {path}: settings differ ({'; '.join(diffs)}); "
                          "start a new run with another output folder")


def _check_same_data(run: Run, stored: dict, path: Path) -> None:
    """The data's checkpointed state (a text task's vocabulary) must match the data's."""
    current = run.data.state_dict()
    same = stored.keys() == current.keys() and all(
        np.array_equal(stored[k], current[k]) for k in current)
    if not same:
        raise ResumeError(f"cannot resume from {path}: its {', '.join(current or stored)} "
                          "differs from this data's; start a new run with another output "
                          "folder")


def _may_extend(run: Run, old_config: dict) -> bool:
    """More epochs may continue a run only under the constant schedule (and never fewer)."""
    return run.config.schedule == "constant" and run.config.epochs >= old_config.get("epochs", 0)


def train_one_epoch(run: Run, epoch: int):
    """One pass over the training set. Returns (losses, seconds, cost meter)."""
    model, method, config, batches = run.model, run.method, run.config, run.batches
    model.train()
    losses = []
    t0, cpu0 = time.perf_counter(), os.times().user
    bar = tqdm(batches.epoch(epoch), total=len(batches), disable=not run.progress,
               desc=f"{method.name} {epoch + 1}/{run.epochs}", leave=False)
    with cost() as meter:
        for i, (*inputs, yb) in enumerate(bar):
            t = epoch + i / len(batches)
            run.optimizer.lr = run.schedule(t)
            if run.eps_target is not None and config.eps_ramp > 0:
                method.eps = run.eps_target * min(1.0, t / config.eps_ramp)
            rng = np.random.default_rng([config.seed, epoch, i])
            losses.append(method.step(model, run.optimizer, *inputs, yb, rng))
            _check_diverged(run, losses[-1], epoch, i)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return losses, (time.perf_counter() - t0, os.times().user - cpu0), meter


def _check_diverged(run: Run, loss: float, epoch: int, i: int) -> None:
    if np.isfinite(loss) and loss <= MAX_LOSS:
        return
    raise TrainingDiverged(
        f"training diverged at epoch {epoch + 1}, step {i + 1}: loss {loss:.4g} "
        f"(lr {run.optimizer.lr:.4g}); try a smaller lr. The last checkpoint is kept.")


def evaluate_epoch(run: Run, epoch: int, losses, seconds: tuple[float, float], meter,
                   history) -> dict:
    """The epoch's record: loss, time and cost so far, clean (and PGD) accuracy.

    seconds: the epoch's training time, wall clock and user CPU (all threads)."""
    model, method, config, data = run.model, run.method, run.config, run.data
    if not all(np.isfinite(p.data).all() for p in model.parameters()):
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1}: the weights are not "
                               "finite; try a smaller lr. The last checkpoint is kept.")
    totals = history[-1] if history else {"time": 0.0, "full_passes": 0,
                                          "first_layer_passes": 0, "gflops": 0.0}
    wall, cpu = seconds
    n = config.eval_size
    record = {
        "epoch": epoch + 1, "method": method.name, "loss": float(np.mean(losses)),
        "lr": run.optimizer.lr, "eps": method.eps,
        "epoch_time": wall, "time": totals["time"] + wall,
        "cpu_time": totals.get("cpu_time", 0.0) + cpu,
        "full_passes": totals["full_passes"] + meter.full_passes(model),
        "first_layer_passes": totals["first_layer_passes"] + meter.first_layer_passes(model),
        "gflops": totals["gflops"] + meter.flops / 1e9,
        "clean_acc": data.accuracy(model, n),
    }
    every, last = config.eval_every, epoch + 1 == run.epochs
    if config.eval_eps > 0 and (last or (every and (epoch + 1) % every == 0)):
        record["robust_acc"] = data.robust_accuracy(model, config.eval_eps, config.eval_steps,
                                                    config.eval_restarts, config.seed, n)
    reason = method.end_of_epoch(model, *data.train_set, epoch + 1)
    record.update(method.epoch_log())
    if reason:
        record["stopped"] = reason
        record["clean_acc_after_stop"] = data.accuracy(model, n)
    return record


def save_run(run: Run, history: list[dict]) -> None:
    """Checkpoint model, optimiser and method with the settings and the history so far
    (atomically; the metadata in strict JSON, see npadv.checkpoint.save_checkpoint)."""
    if run.checkpoint_path is None:
        return
    parts = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "method": run.method.state_dict(), "data": run.data.state_dict()}
    meta = {**run.settings, "epoch": len(history), "history": history,
            "stopped": history[-1].get("stopped")}
    save_checkpoint(run.checkpoint_path, parts, meta)


def append_log(run: Run, record: dict) -> None:
    """One JSON line per epoch in the log (after the checkpoint, so the log never runs ahead).

    The log is small, so it is rewritten whole, atomically, with the new line at its end: a
    failed write (a full disk) leaves the earlier log as it was. Lines are strict JSON
    (null for a value that is not finite)."""
    from ..files import atomic_write, strict_json

    if run.log_path is not None:
        earlier = run.log_path.read_bytes() if run.log_path.exists() else b""
        if earlier and not earlier.endswith(b"\n"):
            earlier += b"\n"
        atomic_write(run.log_path, earlier + (strict_json(record) + "\n").encode("utf-8"))
    if run.progress:
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}
        tqdm.write(json.dumps(shown))
