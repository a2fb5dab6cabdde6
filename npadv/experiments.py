"""Comparing training methods fairly: an equal wall-clock budget, one strong evaluation.

    rows = compare(PLANS["mnist-5k"], load_mnist_5k(), eps=0.1, budget=20.0)

The comparison behind `npadv demo` and the scripts in demos/. Each method gets the same
wall-clock training budget: a few minibatches are timed first, and the method then trains
for as many epochs as fit in the budget (at least one), with the usual cosine schedule
over those epochs. A reference row, PGD-AT trained for a fixed number of epochs, shows
what convergence looks like. Every trained model is then evaluated by the same cascade
(EVALUATION): PGD-40 with restarts, then APGD-CE and APGD with the DLR loss, each on the
examples the earlier attacks left correctly classified, so a row's robust accuracy is the
per-example worst case. Beside each row stands its paper's claim and whether this run
reproduces it.

Everything here takes plain arguments (no argparse Namespace), so the CLI, the demos and
user code call the same functions.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .attacks.evaluate import Attack, evaluate
from .data.batches import Batches
from .models import build_model
from .optim import SGD
from .training.loop import TrainConfig, train
from .training.methods import build_method


@dataclass
class Entry:
    """One row: a label, a method with its flags, and either a budget or fixed epochs."""

    label: str
    method: str
    flags: dict = field(default_factory=dict)
    epochs: int | None = None         # fixed epochs (a reference row); None: the budget
    claim: str = ""                   # the paper's claim, as it bears on this comparison


CLAIMS = {
    "fast": "Wong et al. 2020: FGSM with a random start reaches PGD-AT's robustness at a "
            "fraction of its cost",
    "free": "Shafahi et al. 2019: Free-m reaches PGD-AT's robustness at about the cost of "
            "natural training",
    "yopo": "Zhang et al. 2019: YOPO reaches PGD-AT's robustness in about 1/5 of its time",
    "trades": "Zhang et al. 2019: TRADES trades a little clean accuracy for robustness at "
              "least as good as PGD-AT's",
    "freelb": "Zhu et al. 2020: FreeLB improves generalisation (an L2, embedding-space method; "
              "its L∞ robustness is not claimed)",
    "pgd": "Madry et al. 2018: PGD-AT gives robustness to the attacks of its threat model",
}

PLANS = {
    "full": [
        Entry("natural", "natural"),
        Entry("Fast AT", "fast", claim=CLAIMS["fast"]),
        Entry("PGD-7-AT", "pgd", {"steps": 7}, claim=CLAIMS["pgd"]),
        Entry("Free-8", "free", {"replays": 8}, claim=CLAIMS["free"]),
        Entry("YOPO-5-3", "yopo", {"yopo_m": 5, "yopo_n": 3}, claim=CLAIMS["yopo"]),
        Entry("FreeLB-3", "freelb", {"freelb_k": 3}, claim=CLAIMS["freelb"]),
        Entry("TRADES", "trades", {"steps": 7}, claim=CLAIMS["trades"]),
    ],
    "quick": [
        Entry("natural", "natural"),
        Entry("Fast AT", "fast", claim=CLAIMS["fast"]),
        Entry("Free-4", "free", {"replays": 4}, claim=CLAIMS["free"]),
    ],
}


def reference(epochs: int, steps: int = 7) -> Entry:
    """PGD-AT trained for a fixed number of epochs: the row the others are measured against."""
    return Entry(f"PGD-{steps}-AT, {epochs} ep (reference)", "pgd", {"steps": steps},
                 epochs=epochs, claim=CLAIMS["pgd"])


def evaluation(eps: float, pgd_steps: int = 40, restarts: int = 2, apgd_steps: int = 50,
               seed: int = 0) -> list[Attack]:
    """The cascade every row is evaluated by: PGD with restarts, APGD-CE, APGD-DLR."""
    return [Attack("pgd", eps, steps=pgd_steps, restarts=restarts, rng=seed, early_stop=True),
            Attack("apgd", eps, steps=apgd_steps, loss="ce", rng=seed),
            Attack("apgd", eps, steps=apgd_steps, loss="dlr", rng=seed)]


def seconds_per_epoch(entry: Entry, data, eps: float, model_name: str, batch_size: int,
                      seed: int, probe: int = 3) -> float:
    """Time `probe` minibatch steps of the method on a throwaway model; scale to an epoch."""
    x_train, y_train = data[0], data[1]
    model = build_model(model_name, seed=seed)
    method = build_method(entry.method, eps=eps, **entry.flags)
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
    divisor = entry.flags.get("replays", 8) if entry.method == "free" else 1
    passes_over_data = max(1, int(budget // epoch_seconds))
    return passes_over_data * divisor


def run_entry(entry: Entry, data, eps: float, budget: float | None, model_name: str = "small-cnn",
              seed: int = 0, batch_size: int = 128, check_size: int = 200,
              attacks: list[Attack] | None = None, n_eval: int = 1000, out: Path | None = None,
              progress: bool = False) -> dict:
    """Train one row and evaluate it. Returns the row (accuracies, time, cost, the curve)."""
    if entry.epochs is None:
        if budget is None:
            raise ValueError(f"{entry.label}: give a budget or fixed epochs")
        epoch_seconds = seconds_per_epoch(entry, data, eps, model_name, batch_size, seed)
        epochs = epochs_for(entry, budget, epoch_seconds)
    else:
        epochs = entry.epochs
    model = build_model(model_name, seed=seed)
    method = build_method(entry.method, eps=eps, **entry.flags)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, eval_size=check_size,
                         eval_eps=eps, eval_steps=10)
    slug = re.sub(r"[^a-z0-9]+", "-", entry.label.lower()).strip("-")
    log = None if out is None else out / f"{slug}.jsonl"
    if log is not None:
        log.unlink(missing_ok=True)
    history = train(model, method, data, config, log_path=log, progress=progress)
    x_test, y_test = data[2][:n_eval], data[3][:n_eval]
    report = evaluate(model, x_test, y_test, attacks if attacks is not None else
                      evaluation(eps, seed=seed), cascade=True, checks=False)
    last = history[-1]
    checks = [r.get("robust_acc") for r in history]
    return {"label": entry.label, "method": entry.method, "flags": entry.flags,
            "epochs": len(history), "clean_acc": report.clean_accuracy,
            "robust_acc": report.robust_accuracy, "stages": report.attack_accuracy,
            "train_time": last["time"], "full_passes": last["full_passes"],
            "first_layer_passes": last["first_layer_passes"], "gflops": last["gflops"],
            "stopped": last.get("stopped"), "reference": entry.epochs is not None,
            "undertrained": _undertrained(checks),
            "curve": [{"time": r["time"], "robust_acc": r.get("robust_acc"),
                       "clean_acc": r["clean_acc"]} for r in history],
            "claim": entry.claim}


def _undertrained(checks: list) -> bool:
    """Fewer than 3 epochs, or the last per-epoch check still rose by more than 2 points."""
    values = [c for c in checks if c is not None]
    return len(values) < 3 or values[-1] - values[-2] > 0.02


def verdicts(rows: list[dict], tolerance: float = 0.03) -> None:
    """Set each row's `verdict`: its claim against the reference row (robust within
    `tolerance`, at the time ratio measured). Rows without a reference or claim get none."""
    ref = next((r for r in rows if r["reference"]), None)
    for r in rows:
        if ref is None or not r["claim"] or r is ref:
            r["verdict"] = ""
            continue
        if ref["undertrained"]:
            r["verdict"] = "not judged: the reference row is itself undertrained"
            continue
        ratio = ref["train_time"] / max(r["train_time"], 1e-9)
        gap = r["robust_acc"] - ref["robust_acc"]
        if r["method"] == "freelb":
            r["verdict"] = f"not tested here (robust {r['robust_acc']:.3f})"
            continue
        if r["method"] == "pgd":
            r["verdict"] = f"{gap:+.3f} robust against the reference, 1/{ratio:.1f} of its time"
            continue
        reached = gap >= -tolerance
        if r["method"] == "trades":
            reached = reached and r["clean_acc"] >= ref["clean_acc"] - 0.05
        tag = "reproduced" if reached else "not reproduced"
        if r["undertrained"]:
            tag += " (undertrained at this budget)"
        r["verdict"] = (f"{tag}: robust {r['robust_acc']:.3f} vs {ref['robust_acc']:.3f} "
                        f"at 1/{ratio:.1f} of the reference's time")


def compare(entries: list[Entry], data, eps: float = 0.1, budget: float | None = 20.0,
            model_name: str = "small-cnn", seed: int = 0, n_eval: int = 1000,
            check_size: int = 200, batch_size: int = 128, attacks: list[Attack] | None = None,
            out: str | Path | None = None, progress: bool = False, title: str = "") -> dict:
    """Train and evaluate every entry; return a summary with rows, verdicts and settings.

    data: (x_train, y_train, x_test, y_test), images in [0, 1]. eps: the L∞ radius of
    training and evaluation. budget: seconds of training per budgeted row. With `out`,
    writes comparison.json, comparison.png (robust accuracy against training time) and
    each row's per-epoch log there.
    """
    out = None if out is None else Path(out)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    attacks = attacks if attacks is not None else evaluation(eps, seed=seed)
    t0 = time.perf_counter()
    rows = []
    for entry in entries:
        row = run_entry(entry, data, eps, budget, model_name, seed, batch_size, check_size,
                        attacks, n_eval, out, progress)
        rows.append(row)
        if progress:
            print(f"{row['label']}: clean {row['clean_acc']:.3f}, robust {row['robust_acc']:.3f}, "
                  f"{row['train_time']:.1f} s", flush=True)
    verdicts(rows)
    summary = {"title": title, "eps": eps, "budget": budget, "model": model_name,
               "seed": seed, "n_train": len(data[0]), "n_eval": min(n_eval, len(data[2])),
               "evaluation": " → ".join(a.label for a in attacks) + " (cascade, worst case)",
               "wall_time": time.perf_counter() - t0, "rows": rows}
    if out is not None:
        (out / "comparison.json").write_text(json.dumps(summary, indent=2))
        plot_comparison(summary, out / "comparison.png")
    return summary


def format_table(summary: dict) -> str:
    """The comparison as a Markdown table (also readable as plain text)."""
    lines = ["| method | epochs | clean | robust | train s | full passes | GFLOPs | claim |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        note = " (undertrained)" if r["undertrained"] and not r["reference"] else ""
        stopped = f" (stopped: {r['stopped']})" if r["stopped"] else ""
        lines.append(f"| {r['label']}{note}{stopped} | {r['epochs']} | {r['clean_acc']:.3f} | "
                     f"{r['robust_acc']:.3f} | {r['train_time']:.1f} | {r['full_passes']} | "
                     f"{r['gflops']:.0f} | {r.get('verdict', '')} |")
    return "\n".join(lines)


def report(summary: dict, out: str | Path | None = None) -> None:
    """Print the comparison's settings and table; with `out`, also write it to table.md."""
    print(f"\n{summary['title']}\nrobust = {summary['evaluation']}\n"
          f"on {summary['n_eval']} test images; wall time {summary['wall_time']:.0f} s\n")
    print(format_table(summary))
    if out is not None:
        (Path(out) / "table.md").write_text(format_table(summary) + "\n")


def plot_comparison(summary: dict, path: Path) -> bool:
    """Per-epoch PGD-10 check accuracy against cumulative training time, one curve a row.
    Returns False (and writes nothing) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in summary["rows"]:
        t = [c["time"] for c in r["curve"]]
        acc = [c["robust_acc"] for c in r["curve"]]
        style = {"linestyle": "--", "color": "black"} if r["reference"] else {}
        ax.plot(t, acc, marker="o", markersize=3, label=r["label"], **style)
    if summary.get("budget"):
        ax.axvline(summary["budget"], color="grey", linewidth=0.8, linestyle=":")
        ax.text(summary["budget"], 0.02, " budget", color="grey", fontsize=8)
    ax.set_xlabel("cumulative training time (s)")
    ax.set_ylabel(f"PGD-10 accuracy at ε = {summary['eps']}\n(per-epoch check)")
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if summary.get("title"):
        ax.set_title(summary["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def mnist_demo(quick: bool = False, eps: float = 0.1, methods: list[str] | None = None,
               seed: int = 0, out: str | Path = "runs/demo", progress: bool = True) -> dict:
    """`npadv demo`: the methods on MNIST-5k at an equal budget, beside a PGD-AT reference.

    quick: three methods, a short budget, 2,000 training and 100 test images (about 30 s);
    the full version compares all eight methods (about 6 min on 2 cores). methods: a
    subset by registry name. Prints the table and writes comparison.json and
    comparison.png to out.
    """
    plan = PLANS["quick" if quick else "full"]
    if methods:
        known = {e.method for e in PLANS["full"]}
        unknown = sorted(set(methods) - known)
        if unknown:
            raise ValueError(f"unknown demo method(s) {unknown}; choose from {sorted(known)}")
        plan = [e for e in PLANS["full"] if e.method in methods]
    settings = DEMO_QUICK if quick else DEMO_FULL
    entries = [*plan, reference(settings["reference_epochs"], settings["reference_steps"])]
    data = demo_data(settings)
    summary = compare(entries, data, eps=eps, budget=settings["budget"], seed=seed,
                      n_eval=settings["n_eval"], check_size=settings["check_size"],
                      attacks=evaluation(eps, settings["pgd_steps"], settings["restarts"],
                                         settings["apgd_steps"], seed),
                      out=out, progress=progress,
                      title=f"MNIST-5k ({len(data[0]):,} train), small_cnn, L∞ ε = {eps}, "
                            "equal training budget")
    report(summary, out)
    return summary


def demo_data(settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-5k with its first settings["n_train"] training images (x_train, y_train,
    x_test, y_test)."""
    from .data import load_mnist_5k

    x_train, y_train, x_test, y_test = load_mnist_5k()
    n = settings["n_train"]
    return x_train[:n], y_train[:n], x_test, y_test


DEMO_FULL = {"n_train": 4000, "budget": 20.0, "reference_epochs": 8, "reference_steps": 7,
             "n_eval": 500, "check_size": 200, "pgd_steps": 20, "restarts": 1, "apgd_steps": 25}
DEMO_QUICK = {"n_train": 2000, "budget": 2.0, "reference_epochs": 4, "reference_steps": 2,
              "n_eval": 100, "check_size": 100, "pgd_steps": 10, "restarts": 1,
              "apgd_steps": 10}
