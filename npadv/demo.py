"""`npadv demo`: every adversarial-training method on MNIST-5k, compared by cost and robustness.

Trains small_cnn with natural training, Fast AT, PGD-10-AT, Free-8, YOPO-5-3 and FreeLB-3
(L∞, ε = 0.1 by default), then evaluates each on the 1,000 test images by PGD-40 with
restarts and APGD-CE, keeping each example's worst case. Prints a table (clean and robust
accuracy, wall time, full and first-layer passes, GFLOPs), writes demo.json and a plot of
the per-epoch robust accuracy against cumulative training time (demo.png, with matplotlib).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .attacks.apgd import apgd
from .attacks.losses import correct
from .attacks.pgd import pgd
from .data import load_mnist_5k
from .models import small_cnn
from .training.loop import TrainConfig, train
from .training.methods import build_method


@dataclass
class Run:
    """One method of the demo: its label, method flags and epochs (before Free's ÷ m)."""

    label: str
    method: str
    epochs: int
    flags: dict = field(default_factory=dict)


# Epochs chosen so the whole demo fits its budget; Free-8 runs epochs ÷ 8 real epochs.
FULL = [
    Run("natural", "natural", 3),
    Run("Fast AT", "fast", 4),
    Run("PGD-10-AT", "pgd", 3, {"steps": 10}),
    Run("Free-8", "free", 16, {"replays": 8}),
    Run("YOPO-5-3", "yopo", 3, {"yopo_m": 5, "yopo_n": 3}),
    Run("FreeLB-3", "freelb", 3, {"freelb_k": 3}),
]
QUICK = [
    Run("natural", "natural", 1),
    Run("Fast AT", "fast", 2),
    Run("PGD-5-AT", "pgd", 1, {"steps": 5}),
    Run("Free-4", "free", 4, {"replays": 4}),
    Run("YOPO-3-2", "yopo", 1, {"yopo_m": 3, "yopo_n": 2}),
    Run("FreeLB-2", "freelb", 1, {"freelb_k": 2}),
]


def worst_case_accuracy(model, x, y, eps: float, pgd_steps: int, restarts: int,
                        apgd_steps: int, seed: int) -> dict:
    """Clean accuracy and the per-example worst case of PGD (with restarts) and APGD-CE.

    An example counts as robust only if it is classified correctly clean, under PGD, and
    under APGD. PGD stops early on an example once it is misclassified (and skips it in
    later restarts), and APGD runs only on the examples PGD did not break: both save work
    without changing the worst case.
    """
    model.eval()
    clean = correct(model, x, y)
    x_pgd = pgd(model, x, y, eps, steps=pgd_steps, restarts=restarts, rng=seed,
                early_stop=True)
    robust = clean & correct(model, x_pgd, y)
    pgd_acc = float(robust.mean())
    alive = np.flatnonzero(robust)
    if alive.size:
        x_apgd = apgd(model, x[alive], y[alive], eps, steps=apgd_steps, loss="ce", rng=seed)
        robust[alive] = correct(model, x_apgd, y[alive])
    return {"clean_acc": float(clean.mean()), "pgd_acc": pgd_acc,
            "robust_acc": float(robust.mean())}


def run_demo(args) -> dict:
    """Run the demo with the CLI's arguments (quick, eps, eps_ramp, methods, seed, out,
    no_progress); returns the results written to demo.json."""
    plan = QUICK if args.quick else FULL
    if args.methods:
        wanted = {m.lower() for m in args.methods}
        unknown = wanted - {r.method for r in plan}
        if unknown:
            raise ValueError(f"unknown demo method(s) {sorted(unknown)}; choose from "
                             f"{[r.method for r in plan]}")
        plan = [r for r in plan if r.method in wanted]
    eps = args.eps
    if eps <= 0:
        raise ValueError(f"--eps must be > 0, got {eps}")
    n_eval = 200 if args.quick else 1000
    check_size, check_steps = (200, 5) if args.quick else (200, 10)
    pgd_steps, restarts, apgd_steps = (10, 1, 20) if args.quick else (40, 2, 25)
    data = load_mnist_5k()
    x_test, y_test = data[2][:n_eval], data[3][:n_eval]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress

    results = []
    for run in plan:
        model = small_cnn(seed=args.seed)
        method = build_method(run.method, eps=eps, **run.flags)
        ramp = args.eps_ramp if args.eps_ramp is not None else (
            0.4 * run.epochs / getattr(method, "epoch_divisor", 1) if eps > 0.1 else 0.0)
        config = TrainConfig(epochs=run.epochs, seed=args.seed, eps_ramp=ramp,
                             eval_size=check_size, eval_eps=eps, eval_steps=check_steps)
        t0 = time.perf_counter()
        history = train(model, method, data, config, progress=progress,
                        log_path=out / f"{run.method}.jsonl")
        wall = time.perf_counter() - t0
        final = worst_case_accuracy(model, x_test, y_test, eps, pgd_steps, restarts,
                                    apgd_steps, args.seed)
        last = history[-1]
        row = {"method": run.label, "epochs": len(history), **final,
               "train_time": last["time"], "wall_time_incl_checks": wall,
               "full_passes": last["full_passes"],
               "first_layer_passes": last["first_layer_passes"], "gflops": last["gflops"],
               "stopped": last.get("stopped"),
               "curve": [{"time": r["time"], "robust_acc": r.get("robust_acc"),
                          "clean_acc": r["clean_acc"]} for r in history]}
        results.append(row)
        if progress:
            print(f"{run.label}: clean {final['clean_acc']:.3f}, robust "
                  f"{final['robust_acc']:.3f}, {last['time']:.1f} s", flush=True)

    summary = {"eps": eps, "n_eval": n_eval, "seed": args.seed, "quick": bool(args.quick),
               "evaluation": f"worst case of PGD-{pgd_steps} ({restarts} restarts) and "
                             f"APGD-CE-{apgd_steps}, L∞ ε = {eps}",
               "results": results}
    print_table(summary)
    (out / "demo.json").write_text(json.dumps(summary, indent=2))
    plot(summary, out / "demo.png")
    return summary


def print_table(summary: dict) -> None:
    print(f"\nMNIST-5k, small_cnn, L∞ ε = {summary['eps']}; robust = {summary['evaluation']} "
          f"on {summary['n_eval']} test images")
    head = (f"{'method':<11}{'clean':>7}{'robust':>8}{'train s':>9}{'full':>7}"
            f"{'1st-layer':>10}{'GFLOPs':>9}")
    print(head)
    print("-" * len(head))
    for r in summary["results"]:
        print(f"{r['method']:<11}{r['clean_acc']:>7.3f}{r['robust_acc']:>8.3f}"
              f"{r['train_time']:>9.1f}{r['full_passes']:>7d}{r['first_layer_passes']:>10d}"
              f"{r['gflops']:>9.1f}" + (f"  (stopped: {r['stopped']})" if r["stopped"] else ""))


def plot(summary: dict, path: Path) -> None:
    """Robust accuracy of the per-epoch checks against cumulative training time."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'npadv[demos]'): no plot written")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in summary["results"]:
        t = [0.0] + [c["time"] for c in r["curve"]]
        acc = [0.0] + [c["robust_acc"] for c in r["curve"]]
        ax.plot(t, acc, marker="o", label=r["method"])
    ax.set_xlabel("cumulative training time (s)")
    ax.set_ylabel(f"PGD accuracy, ε = {summary['eps']} (per-epoch check)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")
