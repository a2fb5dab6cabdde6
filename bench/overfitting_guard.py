"""Fast AT with a deliberately bad setting, with and without its overfitting guard.

    python bench/overfitting_guard.py [--eps 0.3] [--alpha-ratio 2.0] [--epochs 12]

small_cnn on MNIST-5k, FGSM-RS with α = 2ε (the paper uses 1.25ε), constant lr: the
setting in which Wong et al. (2020) see catastrophic overfitting. Prints the guard's
per-epoch PGD check on its fixed training subset, where training stopped and why, and
the final PGD-20 accuracy on 500 test images, for the guarded and the unguarded run.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from npadv.attacks.pgd import pgd
from npadv.data import load_mnist_5k
from npadv.models import small_cnn
from npadv.training.fast_at import FastAT
from npadv.training.loop import TrainConfig, accuracy, train


class Recorded(FastAT):
    """FastAT that remembers each epoch's guard check (for the printout only)."""

    checks: list

    def guard_accuracy(self, model, x, y):
        acc = super().guard_accuracy(model, x, y)
        self.checks.append(acc)
        return acc


def run(data, eps: float, alpha: float, epochs: int, guard: bool, seed: int) -> dict:
    model = small_cnn(seed=seed)
    method = Recorded(eps, alpha=alpha, guard=True)
    method.checks = []
    if not guard:  # measure the same check every epoch, but never act on it
        method.guard_margin = np.inf
    config = TrainConfig(epochs=epochs, schedule="constant", lr=0.05, seed=seed)
    t0 = time.perf_counter()
    history = train(model, method, data, config, progress=False)
    model.eval()
    x, y = data[2][:500], data[3][:500]
    x_adv = pgd(model, x, y, eps, steps=20, rng=seed)
    return {"checks": method.checks, "epochs_run": len(history),
            "stopped": history[-1].get("stopped"), "best_check": method.best_acc,
            "test_clean": accuracy(model, x, y), "test_pgd20": accuracy(model, x_adv, y),
            "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--alpha-ratio", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_mnist_5k()
    alpha = args.alpha_ratio * args.eps
    print(f"Fast AT, small_cnn, MNIST-5k, ε = {args.eps}, α = {alpha:g}, constant lr 0.05, "
          f"{args.epochs} epochs")
    for guard in (True, False):
        r = run(data, args.eps, alpha, args.epochs, guard, args.seed)
        checks = " ".join(f"{a:.2f}" for a in r["checks"])
        print(f"\nguard {'on ' if guard else 'off'}: per-epoch PGD-10 check on 256 training "
              f"images: {checks}")
        print(f"  epochs run {r['epochs_run']}, stopped: {r['stopped']}")
        print(f"  final test (500 images): clean {r['test_clean']:.3f}, PGD-20 "
              f"{r['test_pgd20']:.3f}; best check {r['best_check']:.3f}; {r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
