"""Wall and CPU time of the default evaluation (`npadv eval`'s standard suite), per stage.

    python bench/eval_speed.py --save new.npz                     # this tree
    PYTHONPATH=/path/to/old/tree python bench/eval_speed.py --save old.npz --compare new.npz

1. The models: small_cnn trained on MNIST-5k as bench/autoattack.py trains them, naturally
   (3 epochs) and with PGD-AT (PGD-7 at ε, ramped over the first half of 10 epochs); the
   checkpoints are cached under --out, so a rerun (or a run on another tree) skips training
   and attacks the very same weights.
2. `evaluate(model, x, y, eps=ε)` with the default "standard" cascade (APGD-CE 100 steps,
   APGD-T 9 targets × 100 steps, Square 5,000 queries), batch 256 and the gradient-masking
   checks on, as `npadv eval` runs it, on the first --n test images. Each stage's call is
   timed (wall, and user + system CPU from os.times(), children included); "rest" is the
   clean pass and the checks.
3. --save writes each model's per-example robust mask, each stage's broken examples and the
   times to an .npz; --compare OTHER.npz prints, per model, how this run's masks agree with
   the other's: both robust, both broken, broken only by this run, broken only by the other.

--workers N runs the evaluation in N worker processes (evaluate's `workers`), one BLAS
thread each; the stages then run inside the workers, so only the total is timed (its CPU
time includes the workers'). Attack seeds are the suite's (0). A benchmark, not a test: it
asserts nothing. The machine may be shared: the load average is printed at the start and
the end of each evaluation.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import npadv
from npadv.attacks import evaluate
from npadv.data import load_mnist_5k

EVALUATE_MODULE = sys.modules["npadv.attacks.evaluate"]
MODELS = (("natural", 3), ("pgd", 10))


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def model_for(method: str, epochs: int, data, eps: float, out: Path):
    """The cached small_cnn for `method` under out/, trained (bench/autoattack.py's recipe)
    and saved the first time."""
    path = out / f"{method}-small-cnn-eps{eps:g}-{epochs}ep.npz"
    if path.exists():
        model = npadv.small_cnn(seed=0)
        with np.load(path) as weights:
            model.load_state_dict(dict(weights))
        return model.eval()
    from npadv.training import TrainConfig, train
    from npadv.training.natural import Natural
    from npadv.training.pgd_at import PGDAT

    t0 = time.perf_counter()
    model = npadv.small_cnn(seed=0)
    trainer = Natural() if method == "natural" else PGDAT(eps, steps=7)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=0.05, seed=0, eval_size=200,
                         eps_ramp=0.0 if method == "natural" else epochs / 2)
    train(model, trainer, data, config, progress=False, model_name="small-cnn")
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v) for k, v in model.state_dict().items()})
    print(f"trained {method} small_cnn, {epochs} epochs, {time.perf_counter() - t0:.0f} s; "
          f"saved {path}")
    return model.eval()


class StageTimer:
    """Wraps each registered attack so that its calls are timed and the examples it broke
    recorded (found by their pixels among the evaluated images)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.row = {x[i].tobytes(): i for i in range(len(x))}
        self.n = len(x)
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.broken: dict[str, np.ndarray] = {}
        self.ran: dict[str, int] = {}
        self.model = None
        self.saved = dict(EVALUATE_MODULE.ATTACKS)

    def __enter__(self):
        for name, spec in self.saved.items():
            EVALUATE_MODULE.ATTACKS[name] = dataclasses.replace(spec, run=self._wrap(name,
                                                                                     spec.run))
        return self

    def __exit__(self, *exc):
        EVALUATE_MODULE.ATTACKS.clear()
        EVALUATE_MODULE.ATTACKS.update(self.saved)

    def _wrap(self, name, run):
        @functools.wraps(run)
        def timed(model, x, y, eps, **options):
            w0, c0 = time.perf_counter(), cpu_seconds()
            x_adv = run(model, x, y, eps, **options)
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w0
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds() - c0
            self.ran[name] = self.ran.get(name, 0) + len(x)
            rows = [self.row.get(xi.tobytes(), -1) for xi in x]
            if min(rows, default=0) >= 0:       # the evaluation's own calls, not the checks'
                ok = EVALUATE_MODULE.correct(model, x_adv, y)
                mask = self.broken.setdefault(name, np.zeros(self.n, dtype=bool))
                mask[np.asarray(rows)[~ok]] = True
            return x_adv
        return timed


def run_model(label: str, model, x, y, eps: float, workers: int = 1) -> dict:
    print(f"{label}: evaluating {len(x)} images with {workers} worker(s), load average "
          f"{load_avg()}", flush=True)
    if workers > 1:              # the stages run in the workers: the total time only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w0, c0 = time.perf_counter(), cpu_seconds()
            report = evaluate(model, x, y, eps=eps, batch_size=256, workers=workers)
            wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        print(f"{label}: clean {report.clean_accuracy:.3f}, robust "
              f"{report.robust_accuracy:.3f}; load average {load_avg()}")
        print(f"  {'total':<10}{len(x):>9}{wall:>9.1f}{cpu:>9.1f}   (wall s, cpu s of the "
              "workers too)", flush=True)
        return {f"{label}/robust": report.robust, f"{label}/total": np.array([wall, cpu])}
    with StageTimer(x, y) as timer, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w0, c0 = time.perf_counter(), cpu_seconds()
        report = evaluate(model, x, y, eps=eps, batch_size=256)
        wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
    stages = list(timer.wall)
    print(f"{label}: clean {report.clean_accuracy:.3f}, "
          + ", ".join(f"after {s} {a:.3f}" for s, a in zip(stages, report.attack_accuracy.values(),
                                                           strict=False))
          + f"; load average {load_avg()}")
    print(f"  {'stage':<10}{'examples':>9}{'wall s':>9}{'cpu s':>9}")
    for s in stages:
        print(f"  {s:<10}{timer.ran[s]:>9}{timer.wall[s]:>9.1f}{timer.cpu[s]:>9.1f}")
    rest_w, rest_c = wall - sum(timer.wall.values()), cpu - sum(timer.cpu.values())
    print(f"  {'rest':<10}{'':>9}{rest_w:>9.1f}{rest_c:>9.1f}   (clean pass, checks)")
    print(f"  {'total':<10}{len(x):>9}{wall:>9.1f}{cpu:>9.1f}", flush=True)
    out = {f"{label}/robust": report.robust, f"{label}/total": np.array([wall, cpu])}
    for s in stages:
        out[f"{label}/{s}/broken"] = timer.broken.get(s, np.zeros(len(x), dtype=bool))
        out[f"{label}/{s}/time"] = np.array([timer.wall[s], timer.cpu[s]])
    return out


def compare(ours: dict, path: str) -> None:
    other = dict(np.load(path))
    print(f"\nagreement with {path} (this run = 'this', the file = 'other'):")
    for key in sorted(k for k in ours if k.endswith("/robust")):
        if key not in other:
            print(f"  {key}: not in {path}")
            continue
        a, b = ours[key], other[key]
        label = key.rsplit("/", 1)[0]
        print(f"  {label}: both robust {int((a & b).sum())}, both broken {int((~a & ~b).sum())}, "
              f"broken only by this {int((~a & b).sum())}, broken only by other "
              f"{int((a & ~b).sum())}")
        for k in sorted(k for k in ours if k.startswith(label + "/") and k.endswith("/broken")):
            if k in other and not np.array_equal(ours[k], other[k]):
                print(f"    {k}: differs at examples {np.flatnonzero(ours[k] != other[k])}")
        tw, tc = ours[f"{label}/total"]
        if f"{label}/total" in other:
            ow, oc = other[f"{label}/total"]
            print(f"    total wall {tw:.1f} s vs {ow:.1f} s (other/this {ow / tw:.2f}×), "
                  f"cpu {tc:.1f} s vs {oc:.1f} s (other/this {oc / tc:.2f}×)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/eval_speed", help="folder of the cached models")
    p.add_argument("--n", type=int, default=1000, help="test images (default 1000)")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--models", nargs="+", choices=[m for m, _ in MODELS],
                   default=[m for m, _ in MODELS])
    p.add_argument("--save", metavar="FILE", help="write masks and times to this .npz")
    p.add_argument("--compare", metavar="FILE", help="an .npz of another run to compare with")
    p.add_argument("--workers", type=int, default=1,
                   help="evaluate's worker processes (above 1: total times only)")
    args = p.parse_args(argv)
    print(f"npadv from {Path(npadv.__file__).parent}; load average at start {load_avg()}")
    data = load_mnist_5k()
    x, y = data[2][:args.n], data[3][:args.n]
    results: dict = {}
    for method, epochs in MODELS:
        if method in args.models:
            model = model_for(method, epochs, data, args.eps, Path(args.out))
            results.update(run_model(method, model, x, y, args.eps, args.workers))
    if args.save:
        np.savez(args.save, **results)
        print(f"saved {args.save}")
    if args.compare:
        compare(results, args.compare)
    print(f"load average at end {load_avg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
