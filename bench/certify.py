"""How long IBP and CROWN-IBP take to certify MNIST-5k's 1,000 test images.

    python bench/certify.py                                   # small_cnn and mlp, untrained
    python bench/certify.py --checkpoint runs/pgd-small-cnn/checkpoint.npz --eps 0.1

The time of the certifiers does not depend on the weights, so without a checkpoint
the reference models are timed at their initial weights (nothing is certified there). With
a checkpoint, the clean accuracy and the certified accuracy at each ε are printed too.
Prints the BLAS thread count and the load average before and after: a benchmark, not a
test.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from npadv.attacks import predict
from npadv.certify import certify, crown
from npadv.checkpoint import load_model
from npadv.data import load_dataset
from npadv.models import build_model


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (no threadpoolctl)"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads"
                     for i in threadpool_info() if i["user_api"] == "blas") or "none"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--dataset", default="mnist-5k")
    p.add_argument("--eps", type=float, nargs="+", default=[0.1])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    _, _, x, y = load_dataset(args.dataset)
    x, y = x[:args.n], y[:args.n]
    models = ({args.checkpoint: load_model(args.checkpoint)[0]} if args.checkpoint
              else {name: build_model(name, seed=0) for name in ("small-cnn", "mlp")})
    print(f"BLAS: {blas_threads()}; load average before: {os.getloadavg()}")
    print(f"{'model':<34}{'bound':<7}{'eps':>6}{'images':>8}{'best s':>9}{'certified':>11}")
    for name, model in models.items():
        clean = np.mean(predict(model, x).argmax(axis=1) == y)
        print(f"{name:<34.34}{'clean':<7}{'':>6}{len(x):>8}{'':>9}{clean:>11.3f}")
        for bound, run in (("IBP", certify), ("CROWN", crown.certify)):
            for eps in args.eps:
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    certified = run(model, x, y, eps)
                    times.append(time.perf_counter() - t0)
                print(f"{name:<34.34}{bound:<7}{eps:>6g}{len(x):>8}{min(times):>9.2f}"
                      f"{np.mean(certified):>11.3f}")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
