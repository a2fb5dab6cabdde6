"""The comparison itself: time each method, train it for the epochs that fit the budget,
evaluate every row by the same cascade, and `npadv demo` on top."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from ..attacks.evaluate import Attack, evaluate, suite
from ..data.batches import Batches
from ..files import strict_json, write_json
from ..methods import accepted, build_method, method_class
from ..models import build_model
from ..optim import SGD
from ..training.loop import ResumeError, TrainConfig, train
from ..workers import available_cpus
from .plans import DEMO_FULL, DEMO_QUICK, Entry, demo_plan, demo_title, evaluation
from .report import plot_comparison, report
from .verdicts import time_to_robustness, verdicts


def _method(entry: Entry, eps: float):
    """The entry's method at the comparison's ε (for methods that have an ε)."""
    takes_eps = "eps" in accepted(method_class(entry.method))
    return build_method(entry.method, **entry.flags, **({"eps": eps} if takes_eps else {}))


def seconds_per_epoch(entry: Entry, data, eps: float, model_name: str, batch_size: int,
                      seed: int, probe: int = 3) -> float:
    """Time `probe` minibatch steps of the method on a throwaway model; scale to an epoch."""
    x_train, y_train = data[0], data[1]
    model = build_model(model_name, seed=seed)
    method = _method(entry, eps)
    optimizer = SGD(model.parameters(), 0.01, momentum=0.9)
    batches = Batches(x_train, y_train, batch_size, seed=seed)
    steps = iter(batches.epoch(0))
    xb, yb = next(steps)
    method.step(model, optimizer, xb, yb, np.random.default_rng(seed))   # warm-up
    t0 = time.perf_counter()
    for i, (xb, yb) in zip(range(probe), steps, strict=False):
        method.step(model, optimizer, xb, yb, np.random.default_rng([seed, i]))
    per_step = (time.perf_counter() - t0) / probe
    return per_step * len(batches)


def epochs_for(entry: Entry, budget: float, epoch_seconds: float) -> int:
    """Epochs (as TrainConfig counts them, before Free's ÷ m) that fit the budget."""
    divisor = build_method(entry.method, **entry.flags).epoch_divisor
    passes_over_data = max(1, int(budget // epoch_seconds))
    return passes_over_data * divisor


def run_entry(entry: Entry, data, eps: float, budget: float | None, model_name: str = "small-cnn",
              seed: int = 0, batch_size: int = 128, check_size: int = 200,
              attacks: list[Attack] | None = None, n_eval: int = 1000, out: Path | None = None,
              progress: bool = False, workers: int = 1) -> dict:
    """Train one row and evaluate it. Returns the row (accuracies, time, cost, the curve).

    With `out`, the row is a run folder out/<label>/ holding the checkpoint, the per-epoch
    log and row.json: a rerun returns a finished row from row.json (or, if only the
    evaluation settings changed, evaluates its trained model again), continues an
    unfinished one from its checkpoint (which must match these settings: ResumeError
    otherwise), and trains the others from scratch.
    """
    folder = None if out is None else Path(out) / slug(entry.label)
    settings = {"method": entry.method, "flags": entry.flags, "epochs": entry.epochs,
                "budget": None if entry.epochs is not None else budget, "eps": eps,
                "model": model_name, "seed": seed, "batch_size": batch_size,
                "check_size": check_size, "n_eval": n_eval, "n_train": len(data[0]),
                "evaluation": [a.label for a in attacks] if attacks is not None else None}
    if folder is not None and (folder / "row.json").exists():
        row = json.loads((folder / "row.json").read_text())
        stored, wanted = row.get("settings") or {}, json.loads(strict_json(settings))
        if stored == wanted:
            return row
        if _training(stored) != _training(wanted):
            raise ResumeError(f"{folder / 'row.json'} was made with other training settings; "
                              "give another output folder, or delete this one to start over")
        # the same training, another evaluation: the checkpoint is reused, the row redone
    if entry.epochs is None:
        if budget is None:
            raise ValueError(f"{entry.label}: give a budget or fixed epochs")
        epoch_seconds = seconds_per_epoch(entry, data, eps, model_name, batch_size, seed)
        epochs = epochs_for(entry, budget, epoch_seconds)
    else:
        epochs = entry.epochs
    model = build_model(model_name, seed=seed)
    method = _method(entry, eps)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, eval_size=check_size,
                         eval_eps=eps, eval_steps=10)
    checkpoint = log = None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint, log = folder / "checkpoint.npz", folder / "log.jsonl"
    history = train(model, method, data, config, log_path=log, checkpoint_path=checkpoint,
                    resume=checkpoint is not None and checkpoint.exists(), progress=progress,
                    model_name=model_name)
    t0 = time.perf_counter()
    x_test, y_test = data[2][:n_eval], data[3][:n_eval]
    report = evaluate(model, x_test, y_test, attacks if attacks is not None else
                      evaluation(eps, seed=seed), cascade=True, checks=False,
                      workers=workers)
    last = history[-1]
    checks = [r.get("robust_acc") for r in history]
    row = {"label": entry.label, "method": entry.method, "flags": entry.flags,
           "epochs": len(history), "clean_acc": report.clean_accuracy,
           "robust_acc": report.robust_accuracy, "stages": report.attack_accuracy,
           "robust": report.robust.tolist(), "eval_time": time.perf_counter() - t0,
           "train_time": last["time"], "full_passes": last["full_passes"],
           "first_layer_passes": last["first_layer_passes"], "gflops": last["gflops"],
           "stopped": last.get("stopped"), "reference": entry.reference,
           "undertrained": _undertrained(checks),
           "train_cpu_time": last["cpu_time"],
           "curve": [{"time": r["time"], "cpu_time": r["cpu_time"],
                      "robust_acc": r.get("robust_acc"),
                      "clean_acc": r["clean_acc"],
                      **{k: r[k] for k in ("guard_acc", "guard_best_epoch") if k in r}}
                     for r in history],
           "claim": entry.claim, "settings": settings}
    if folder is not None:
        write_json(folder / "row.json", row)
    return row


EVALUATION_SETTINGS = ("n_eval", "evaluation")


def _training(settings: dict) -> dict:
    """A row's settings without those of its evaluation."""
    return {k: v for k, v in settings.items() if k not in EVALUATION_SETTINGS}


def slug(label: str) -> str:
    """A row's label as a folder name: "PGD-7-AT (reference)" -> "pgd-7-at-reference"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _undertrained(checks: list) -> bool:
    """Fewer than 3 epochs, or the last per-epoch check still rose by more than 2 points."""
    values = [c for c in checks if c is not None]
    return len(values) < 3 or values[-1] - values[-2] > 0.02


def compare(entries: list[Entry], data, eps: float = 0.1, budget: float | None = 20.0,
            model_name: str = "small-cnn", seed: int = 0, n_eval: int = 1000,
            check_size: int = 200, batch_size: int = 128, attacks: list[Attack] | None = None,
            out: str | Path | None = None, progress: bool = False, title: str = "",
            workers: int = 1) -> dict:
    """Train and evaluate every entry; return a summary with rows, verdicts and settings.

    data: (x_train, y_train, x_test, y_test), images in [0, 1]. eps: the L∞ radius of
    training and evaluation. budget: seconds of training per budgeted row (entries with
    epochs ignore it). With `out`, each row is a run folder there (see run_entry: a rerun
    continues), and comparison.json and comparison.png (robust accuracy against training
    time) are written there. wall_time in the summary is this call's; rows_time the
    training and evaluation time of all rows, whichever call ran them. workers: processes
    that train and evaluate rows side by side, one BLAS thread each (npadv.workers); the
    time to robustness is measured in each row's own CPU time, so it does not depend on
    how many run at once.
    """
    out = None if out is None else Path(out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    attacks = attacks if attacks is not None else evaluation(eps, seed=seed)
    t0 = time.perf_counter()
    settings = (eps, budget, model_name, seed, batch_size, check_size, attacks, n_eval, out)
    rows = [None] * len(entries)
    for i, row in _rows(entries, data, settings, progress, workers):
        rows[i] = row
        if progress:
            print(f"{row['label']}: clean {row['clean_acc']:.3f}, robust {row['robust_acc']:.3f}, "
                  f"{row['train_time']:.1f} s", flush=True)
    time_to_robustness(rows)
    verdicts(rows)
    budgeted = any(e.epochs is None for e in entries)
    summary = {"title": title, "eps": eps, "budget": budget if budgeted else None,
               "model": model_name, "seed": seed, "n_train": len(data[0]),
               "n_eval": min(n_eval, len(data[2])),
               "evaluation": " → ".join(a.label for a in attacks) + " (cascade, worst case)",
               "wall_time": time.perf_counter() - t0,
               "rows_time": sum(r["train_time"] + r["eval_time"] for r in rows), "rows": rows}
    if out is not None:
        write_json(out / "comparison.json", summary)
        plot_comparison(summary, out / "comparison.png")
    return summary


def _rows(entries, data, settings, progress, workers):
    """Yield (index, row) for every entry: in order here, or as they finish in `workers`
    worker processes, which read the data from .npy files in a temporary folder."""
    if workers == 1 or len(entries) == 1:
        for i, entry in enumerate(entries):
            yield i, run_entry(entry, data, *settings, progress=progress)
        return
    import tempfile

    from ..workers import run_in_workers

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, array in zip(("x_train", "y_train", "x_test", "y_test"), data, strict=True):
            paths.append(Path(tmp) / f"{name}.npy")
            np.save(paths[-1], np.asarray(array))
        jobs = [(i, (entry, paths, settings)) for i, entry in enumerate(entries)]
        yield from run_in_workers(_run_entry_from_files, jobs, workers)


def _run_entry_from_files(entry: Entry, paths: list[Path], settings: tuple) -> dict:
    data = tuple(np.load(p) for p in paths)
    return run_entry(entry, data, *settings)


def mnist_demo(quick: bool = False, eps: float = 0.1, methods: list[str] | None = None,
               seed: int = 0, out: str | Path = "runs/demo", progress: bool = True) -> dict:
    """`npadv demo`: the methods on MNIST-5k beside a PGD-7-AT reference.

    The full version trains every method to convergence (DEMO_FULL["epochs"] epochs each),
    evaluates each by the default suite, and judges each paper's claim by its time to
    robustness (11 min 26 s on 2 cores, see demos/README.md). Each row is a run folder in
    `out`, so an interrupted demo continues where it stopped. quick: three methods at a 2 s budget
    each, 2,000 training and 100 test images, the quick suite (28 s). methods: a
    subset by registry name (the reference always runs). Prints the table and writes
    comparison.json, comparison.png and table.md to out.
    """
    settings = DEMO_QUICK if quick else DEMO_FULL
    plan = demo_plan(quick, methods)
    data = demo_data(settings)
    summary = compare(plan, data, eps=eps, budget=settings["budget"], seed=seed,
                      n_eval=settings["n_eval"], check_size=settings["check_size"],
                      attacks=suite(settings["suite"], eps, seed=seed), out=out,
                      progress=progress, workers=available_cpus(),
                      title=demo_title(quick, len(data[0]), eps))
    report(summary, out)
    return summary


def demo_data(settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-5k with its first settings["n_train"] training images (x_train, y_train,
    x_test, y_test)."""
    from ..data import load_mnist_5k

    x_train, y_train, x_test, y_test = load_mnist_5k()
    n = settings["n_train"]
    return x_train[:n], y_train[:n], x_test, y_test
