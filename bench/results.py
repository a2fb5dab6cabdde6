"""The training methods' results on MNIST-5k against their bars (a benchmark, not a test).

    python bench/results.py [--methods pgd fast free yopo] [--eps 0.1] [--out runs/results]

small_cnn, L∞ ε = 0.1, robust accuracy = PGD-40 (α = 2.5ε/40, one random start) on the
1,000 test images. Bars:
    PGD-10-AT, 20 epochs:   clean ≥ 96 %, robust ≥ 86 %
    Fast AT, 20 epochs:     robust ≥ 84 %
    Free-m:                 robust ≥ 75 % at ≤ 1/4 of PGD-10-AT's full passes
    YOPO-m-n:               robust ≥ 84 % at ≤ 1/3 of PGD-10-AT's full passes
Prints one row per method and whether each bar is met; writes results.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from npadv.attacks.pgd import pgd
from npadv.data import load_mnist_5k
from npadv.methods import accepted, build_method, method_class
from npadv.models import small_cnn
from npadv.training.loop import TrainConfig, accuracy, train

# (method, flags, epochs before Free's ÷ m). Passes per minibatch: PGD-10 11, Free-8 8 per
# replay epoch, YOPO-5-3 5 full. 20 PGD epochs = 20·11 = 220 passes per example; Free-8
# over 48 nominal epochs = 6 real epochs = 48 passes (≤ 55 = 1/4); YOPO-5-3 over 14 epochs
# = 70 full passes (≤ 73 = 1/3).
PLAN = {
    "pgd": ("pgd", {"steps": 10}, 20),
    "fast": ("fast", {}, 20),
    "free": ("free", {"replays": 8}, 48),
    "yopo": ("yopo", {"yopo_m": 5, "yopo_n": 3}, 14),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/results")
    args = parser.parse_args()
    data = load_mnist_5k()
    x_test, y_test = data[2], data[3]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for key in args.methods:
        name, flags, epochs = PLAN[key]
        model = small_cnn(seed=args.seed)
        if "eps" in accepted(method_class(name)):
            flags = {**flags, "eps": args.eps}
        method = build_method(name, **flags)
        config = TrainConfig(epochs=epochs, seed=args.seed, eval_eps=args.eps, eval_size=500)
        t0 = time.perf_counter()
        history = train(model, method, data, config, progress=False,
                        log_path=out / f"{key}.jsonl")
        model.eval()
        x_adv = pgd(model, x_test, y_test, args.eps, steps=40, rng=args.seed)
        row = {"method": key, "epochs_run": len(history), "clean": accuracy(model, x_test, y_test),
               "robust_pgd40": accuracy(model, x_adv, y_test),
               "full_passes": history[-1]["full_passes"],
               "first_layer_passes": history[-1]["first_layer_passes"],
               "train_time": history[-1]["time"], "wall": time.perf_counter() - t0,
               "stopped": history[-1].get("stopped")}
        rows[key] = row
        print(json.dumps(row), flush=True)
        (out / "results.json").write_text(json.dumps(rows, indent=2))

    bars = []
    if "pgd" in rows:
        bars += [("PGD-10-AT clean ≥ 0.96", rows["pgd"]["clean"] >= 0.96),
                 ("PGD-10-AT robust ≥ 0.86", rows["pgd"]["robust_pgd40"] >= 0.86)]
    if "fast" in rows:
        bars.append(("Fast AT robust ≥ 0.84", rows["fast"]["robust_pgd40"] >= 0.84))
    pgd_passes = rows["pgd"]["full_passes"] if "pgd" in rows else None
    for key, bar, frac in [("free", 0.75, 4), ("yopo", 0.84, 3)]:
        if key in rows:
            bars.append((f"{key} robust ≥ {bar}", rows[key]["robust_pgd40"] >= bar))
            if pgd_passes:
                ratio = rows[key]["full_passes"] / pgd_passes
                bars.append((f"{key} full passes ≤ 1/{frac} of PGD-10-AT ({ratio:.3f})",
                             ratio <= 1 / frac))
    print("\nmethod  clean  robust(PGD-40)  full passes  1st-layer  train s")
    for r in rows.values():
        print(f"{r['method']:<7}{r['clean']:6.3f}{r['robust_pgd40']:10.3f}{r['full_passes']:13d}"
              f"{r['first_layer_passes']:11d}{r['train_time']:9.1f}")
    for text, ok in bars:
        print(f"{'MET ' if ok else 'MISSED'}  {text}")


if __name__ == "__main__":
    main()
