"""The shared training loop every method runs in.

    for epoch in 1 .. epochs / method.epoch_divisor:
      for minibatch i (order seeded by (seed, epoch)):
        lr ← schedule(epoch + i / batches);  ε ← ramp(epoch + i / batches)
        loss ← method.step(model, optimizer, x, y, rng(seed, epoch, i))
      evaluate clean and PGD accuracy on a fixed evaluation subset
      log a JSON line; checkpoint atomically; stop if method.end_of_epoch says so

Everything random is derived from (seed, epoch, batch index), and the optimiser and
method states are checkpointed, so a resumed run is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import optim
from ..checkpoint import load_checkpoint, save_checkpoint
from ..cost import cost
from ..data.batches import Batches
from ..functional import check_labels
from ..tensor import Tensor, no_grad


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
    extra: dict = field(default_factory=dict)  # free-form, recorded in logs and checkpoints


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
    """Clean accuracy of model on (x, y), in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    with no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(Tensor(x[i:i + batch_size])).data
            correct += int((logits.argmax(axis=1) == y[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


def pgd_accuracy(model, x, y, eps: float, steps: int = 10, restarts: int = 1,
                 seed: int = 0, lo=0.0, hi=1.0) -> float:
    """Accuracy under L∞ PGD (random start, α = 2.5ε/steps), model in eval mode."""
    from ..attacks.pgd import pgd

    was_training = model.training
    model.eval()
    x_adv = pgd(model, x, y, eps, steps=steps, restarts=restarts, rng=seed, lo=lo, hi=hi)
    acc = accuracy(model, x_adv, y)
    model.train(was_training)
    return acc


def check_training_data(x: np.ndarray, y: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Refuse NaN/inf inputs and out-of-range labels before any step is taken."""
    if len(x) != len(y):
        raise ValueError(f"training inputs and labels differ in length: {len(x)} vs {len(y)}")
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"training inputs contain NaN or inf in {int(bad.sum())} examples "
                         f"(first at index {int(np.argmax(bad))})")
    return check_labels(y, num_classes, len(y))


def _checkpoint_parts(model, optimizer, method):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "method": method.state_dict()}


def train(model, method, data, config: TrainConfig, log_path=None, checkpoint_path=None,
          resume: bool = False, progress: bool = True, model_name: str = "model",
          num_classes: int = 10, lo: float | None = 0.0, hi: float | None = 1.0) -> list[dict]:
    """Train `model` with `method` on data = (x_train, y_train, x_test, y_test).

    Writes one JSON line per epoch to `log_path` and a checkpoint to `checkpoint_path`
    after every epoch. With resume=True and an existing checkpoint, continues from it.
    Returns the per-epoch records.
    """
    x_train, y_train, x_test, y_test = data
    y_train = check_training_data(x_train, y_train, num_classes)
    x_eval, y_eval = x_test[:config.eval_size], np.asarray(y_test[:config.eval_size])
    epochs = max(1, config.epochs // getattr(method, "epoch_divisor", 1))
    batches = Batches(x_train, y_train, config.batch_size, seed=config.seed)
    optimizer = make_optimizer(model, config)
    schedule = make_schedule(config, epochs)
    eps_target = getattr(method, "eps", None)

    history: list[dict] = []
    start = 0
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        parts, meta = load_checkpoint(checkpoint_path)
        if meta.get("model") != model_name or meta.get("method") != method.name:
            raise ValueError(f"checkpoint {checkpoint_path} is for model {meta.get('model')!r} "
                             f"and method {meta.get('method')!r}, not {model_name!r} and "
                             f"{method.name!r}")
        model.load_state_dict(parts["model"])
        optimizer.load_state_dict(parts["optimizer"])
        method.load_state_dict(parts.get("method", {}))
        history, start = meta["history"], meta["epoch"]
        if meta.get("stopped"):
            return history

    totals = history[-1] if history else {"time": 0.0, "full_passes": 0,
                                          "first_layer_passes": 0, "gflops": 0.0}
    for epoch in range(start, epochs):
        model.train()
        losses = []
        t0 = time.perf_counter()
        bar = tqdm(batches.epoch(epoch), total=len(batches), disable=not progress,
                   desc=f"{method.name} {epoch + 1}/{epochs}", leave=False)
        with cost() as meter:
            for i, (xb, yb) in enumerate(bar):
                t = epoch + i / len(batches)
                optimizer.lr = schedule(t)
                if eps_target is not None and config.eps_ramp > 0:
                    method.eps = eps_target * min(1.0, t / config.eps_ramp)
                rng = np.random.default_rng([config.seed, epoch, i])
                losses.append(method.step(model, optimizer, xb, yb, rng))
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        seconds = time.perf_counter() - t0
        if not np.isfinite(losses).all():
            raise FloatingPointError(f"training loss became NaN/inf in epoch {epoch + 1}")

        record = {
            "epoch": epoch + 1, "method": method.name, "loss": float(np.mean(losses)),
            "lr": optimizer.lr, "eps": getattr(method, "eps", None),
            "epoch_time": seconds, "time": totals["time"] + seconds,
            "full_passes": totals["full_passes"] + meter.full_passes(model),
            "first_layer_passes": totals["first_layer_passes"] + meter.first_layer_passes(model),
            "gflops": totals["gflops"] + meter.flops / 1e9,
            "clean_acc": accuracy(model, x_eval, y_eval),
        }
        if config.eval_eps > 0:
            record["robust_acc"] = pgd_accuracy(model, x_eval, y_eval, config.eval_eps,
                                                config.eval_steps, config.eval_restarts,
                                                seed=config.seed, lo=lo, hi=hi)
        reason = None
        if hasattr(method, "end_of_epoch"):
            reason = method.end_of_epoch(model, x_train, y_train, epoch + 1)
        if reason:
            record["stopped"] = reason
            record["clean_acc_after_stop"] = accuracy(model, x_eval, y_eval)
        history.append(record)
        totals = record
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if checkpoint_path is not None:
            meta = {"model": model_name, "method": method.name, "epoch": epoch + 1,
                    "config": asdict(config), "history": history, "stopped": reason}
            save_checkpoint(checkpoint_path, _checkpoint_parts(model, optimizer, method), meta)
        if progress:
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}
            tqdm.write(json.dumps(shown))
        if reason:
            break
    return history
