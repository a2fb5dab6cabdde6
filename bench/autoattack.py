"""npadv's robust accuracy beside AutoAttack's, on the same model and the same examples.

    python bench/autoattack.py                          # trains a natural and a PGD-AT small_cnn
    python bench/autoattack.py --checkpoint runs/pgd-small-cnn/checkpoint.npz --n 200
    python bench/autoattack.py --quick                  # 100 images, short training

Needs PyTorch and the original AutoAttack code (PyPI: pyautoattack) or torchattacks;
neither is a dependency of npadv. Install them without their dependencies, so that a CPU
torch is not replaced by a large CUDA build:

    pip install --no-deps pyautoattack torchattacks

1. The models: each --checkpoint given, else small_cnn trained on MNIST-5k with
   npadv.training, naturally and with PGD-AT (PGD-7 at the evaluation's ε, ε ramped up over
   the first half of training).
2. npadv: `evaluate(model, x, y, eps=ε)`, the default cascade APGD-CE, APGD-T (DLR, 9
   targets), Square (5,000 queries), with each stage's accuracy.
3. The model is exported with npadv.export to a torch.nn.Sequential (its logits are
   checked against npadv's), and attacked by AutoAttack's standard suite (APGD-CE,
   APGD-T, FAB-T, Square; the original code) and, with --torchattacks, by torchattacks'
   AutoAttack too.
4. The table: clean and robust accuracy side by side, and how many examples AutoAttack
   broke that npadv's suite left robust (npadv should break every one of them).

A benchmark, not a test: it asserts nothing. It is CPU-heavy (minutes per model); the
machine's load is printed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import npadv
from npadv import Tensor
from npadv.attacks import evaluate
from npadv.checkpoint import load_model
from npadv.data import load_mnist_5k
from npadv.export import export_torch


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def train_small_cnn(method: str, data, eps: float, epochs: int, seed: int = 0):
    """small_cnn trained with npadv.training: 'natural' or 'pgd' (PGD-7 at ε, ramped)."""
    from npadv.training import TrainConfig, train
    from npadv.training.natural import Natural
    from npadv.training.pgd_at import PGDAT

    model = npadv.small_cnn(seed=seed)
    trainer = Natural() if method == "natural" else PGDAT(eps, steps=7)
    config = TrainConfig(epochs=epochs, batch_size=128, lr=0.05, seed=seed, eval_size=200,
                         eps_ramp=0.0 if method == "natural" else epochs / 2)
    train(model, trainer, data, config, progress=False, model_name="small-cnn")
    return model.eval()


def torch_twin(model, name: str, folder: Path):
    """The exported torch.nn.Sequential of an npadv model, in eval mode."""
    _, definition = export_torch(model, name, folder / f"{name}.npz")
    spec = importlib.util.spec_from_file_location(f"twin_{name}", definition)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load()


def torch_correct(twin, x_adv, y) -> np.ndarray:
    import torch

    with torch.no_grad():
        return twin(torch.from_numpy(np.ascontiguousarray(x_adv))).argmax(1).numpy() == y


def run_autoattack(twin, x, y, eps: float, seed: int) -> np.ndarray:
    """(N,) bool: robust under the original AutoAttack, standard version."""
    import torch
    from pyautoattack import AutoAttack

    adversary = AutoAttack(twin, norm="Linf", eps=eps, version="standard", seed=seed,
                           device="cpu")
    adversary.verbose = False
    x_adv, _ = adversary.run_standard_evaluation(torch.from_numpy(x), torch.from_numpy(y),
                                                 batch_size=250)
    return torch_correct(twin, x_adv.detach().numpy(), y)


def run_torchattacks(twin, x, y, eps: float, seed: int) -> np.ndarray:
    """(N,) bool: robust under torchattacks' AutoAttack, standard version."""
    import torch
    import torchattacks

    attack = torchattacks.AutoAttack(twin, norm="Linf", eps=eps, version="standard",
                                     n_classes=10, seed=seed)
    x_adv = torch.cat([attack(torch.from_numpy(x[s:s + 250]), torch.from_numpy(y[s:s + 250]))
                       for s in range(0, len(x), 250)])
    return torch_correct(twin, x_adv.detach().numpy(), y)


def compare(name: str, model, x, y, eps: float, args, folder: Path) -> dict:
    row: dict = {"model": name}
    t0 = time.perf_counter()
    with warnings.catch_warnings():                    # printed with the table instead
        warnings.simplefilter("ignore")
        report = evaluate(model, x, y, eps=eps, batch_size=250)
    row["npadv_s"] = time.perf_counter() - t0
    row["clean"] = report.clean_accuracy
    row["stages"] = list(report.attack_accuracy.values())
    row["npadv"] = report.robust_accuracy
    row["warnings"] = report.warnings
    twin = torch_twin(model, name, folder)
    import torch

    with torch.no_grad():
        logits = twin(torch.from_numpy(x[:100])).numpy()
    row["max_logit_diff"] = float(np.abs(logits - model(Tensor(x[:100])).data).max())
    references = []
    if have("pyautoattack"):
        references.append(("AutoAttack", run_autoattack))
    if args.torchattacks or not references:
        references.append(("torchattacks AA", run_torchattacks))
    for label, run in references:
        t0 = time.perf_counter()
        robust = run(twin, x, y, eps, args.seed)
        row[label] = float(robust.mean())
        row[label + "_s"] = time.perf_counter() - t0
        missed = np.flatnonzero(report.robust & ~robust)
        row[label + "_missed"] = missed.tolist()
    return row


def print_table(rows: list[dict], eps: float, n: int) -> None:
    refs = [k for k in rows[0] if k in ("AutoAttack", "torchattacks AA")]
    print(f"\nMNIST-5k test, first {n} images, L∞ ε = {eps:g}")
    head = (f"{'model':<14}{'clean':>8}{'APGD-CE':>9}{'+APGD-T':>9}{'+Square':>9}"
            + "".join(f"{r:>17}" for r in refs) + "   broken only by the reference")
    print(head)
    for row in rows:
        stages = "".join(f"{a:>9.3f}" for a in row["stages"])
        refs_text = "".join(f"{row[r]:>17.3f}" for r in refs)
        missed = ", ".join(f"{r}: {len(row[r + '_missed'])}" for r in refs)
        print(f"{row['model']:<14}{row['clean']:>8.3f}{stages}{refs_text}   {missed}")
    print("\ntimes (s): " + "; ".join(
        f"{row['model']}: npadv {row['npadv_s']:.0f}"
        + "".join(f", {r} {row[r + '_s']:.0f}" for r in refs) for row in rows))
    for row in rows:
        print(f"{row['model']}: max |logit difference| npadv vs torch twin "
              f"{row['max_logit_diff']:.2e}")
        for r in refs:
            if row[r + "_missed"]:
                print(f"{row['model']}: examples {r} broke and npadv did not: "
                      f"{row[r + '_missed']}")
        for w in row["warnings"]:
            print(f"{row['model']}: npadv warning: {w}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="an npadv checkpoint to compare (repeatable); default: train two")
    parser.add_argument("--n", type=int, default=500, help="test images (default 500)")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per model (default 3 natural, 10 PGD-AT)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torchattacks", action="store_true",
                        help="also run torchattacks' AutoAttack")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="100 images, 1 + 3 epochs")
    args = parser.parse_args(argv)
    if not have("torch") or not (have("pyautoattack") or have("torchattacks")):
        print("bench/autoattack.py needs torch and pyautoattack or torchattacks "
              "(pip install --no-deps pyautoattack torchattacks)", file=sys.stderr)
        return 1
    if args.n < 1 or not 0 < args.eps < 1:
        parser.error("--n must be >= 1 and --eps in (0, 1)")
    import torch

    torch.set_num_threads(args.threads)
    n = 100 if args.quick else args.n
    print(f"load average at start: {os.getloadavg()}")
    data = load_mnist_5k()
    x, y = data[2][:n], data[3][:n]
    models = []
    for path in args.checkpoint:
        model, meta = load_model(path)
        models.append((f"{meta.get('method', '?')}-{Path(path).parent.name}"[:14], model))
    if not models:
        for method, default_epochs in (("natural", 1 if args.quick else 3),
                                       ("pgd", 3 if args.quick else 10)):
            t0 = time.perf_counter()
            epochs = args.epochs or default_epochs
            models.append((f"{method} ({epochs} ep)",
                           train_small_cnn(method, data, args.eps, epochs, args.seed)))
            print(f"trained {method} small_cnn, {epochs} epochs, "
                  f"{time.perf_counter() - t0:.0f} s")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, model) in enumerate(models):
            rows.append(compare(name, model, x, y, args.eps, args, Path(folder) / str(i)))
            print(f"done {name}; load average {os.getloadavg()}", flush=True)
    print_table(rows, args.eps, n)
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
