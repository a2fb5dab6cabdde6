"""Attack benchmark: PGD-10 and APGD-100 throughput, and robust accuracy against ε.

    python bench/attacks.py                 # 3 epochs of natural training, 1,000 test images
    python bench/attacks.py --quick         # 1 epoch, 200 test images, 3 values of ε

1. Trains small_cnn naturally on MNIST-5k (4,000 images; SGD, momentum 0.9, lr 0.05,
   batch 128).
2. Throughput at batch 256, L∞ ε = 0.3: PGD-10 and APGD-100 (CE), in images per second
   (median of 3 runs after one warm-up). If PyTorch is importable, the same attacks
   written in PyTorch on the same weights (float32, CPU, parameters frozen as in npadv)
   give the ratio npadv / PyTorch.
3. Robust accuracy of the trained model on the test images at ε = 0, 0.05, …, 0.3 (L∞):
   PGD-40 with 5 restarts, APGD-CE (100 steps), and the per-example worst case of both.
   Both attacks stop early on examples they have fooled, which saves time without
   changing which examples are fooled.

A benchmark, not a test: it asserts nothing. Wall-clock rates depend on the machine's
load, which is printed.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import npadv
from npadv import Tensor
from npadv import functional as F
from npadv.attacks import Attack, apgd, check_eps_monotone, evaluate, pgd
from npadv.data import load_mnist_5k
from npadv.optim import SGD

BATCH = 256
EPS_LIST = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def train_natural(x, y, epochs: int, seed: int = 0):
    """small_cnn after `epochs` of plain SGD on (x, y); returned in eval mode."""
    model = npadv.small_cnn(seed=seed)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        for start in range(0, len(order), 128):
            idx = order[start:start + 128]
            opt.zero_grad()
            F.cross_entropy(model(Tensor(x[idx])), y[idx]).backward()
            opt.step()
    return model.eval()


def median_time(fn, repeats: int = 3) -> float:
    fn()                                                       # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# ---- the same attacks in PyTorch (only for the ratio) -----------------------------------
def torch_twin(model):
    """A PyTorch copy of an npadv small_cnn (same weights), parameters frozen."""
    import torch
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))
    for i in (0, 3, 7, 9):
        net[i].weight.data = torch.from_numpy(model[i].weight.data.copy())
        net[i].bias.data = torch.from_numpy(model[i].bias.data.copy())
    return net.eval().requires_grad_(False)


def torch_input_grad(net, x_adv, y):
    import torch
    x_adv = x_adv.detach().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(net(x_adv), y, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), x_adv)
    return loss.detach(), g


def torch_pgd(net, x, y, eps: float, steps: int):
    """L∞ PGD with random start, α = 2.5ε/steps."""
    import torch
    alpha = 2.5 * eps / steps
    x_adv = (x + eps * (2 * torch.rand_like(x) - 1)).clamp(0, 1)
    for _ in range(steps):
        _, g = torch_input_grad(net, x_adv, y)
        x_adv = torch.min(torch.max(x_adv + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv


def torch_apgd(net, x, y, eps: float, steps: int, rho: float = 0.75):
    """L∞ APGD-CE, the same algorithm as npadv.attacks.apgd (no early stop)."""
    import torch

    def proj(v):
        return torch.min(torch.max(v, x - eps), x + eps).clamp(0, 1)

    shape = (-1, 1, 1, 1)
    x_cur = proj(x + eps * (2 * torch.rand_like(x) - 1))
    x_prev = x_cur.clone()
    loss_cur, g = torch_input_grad(net, x_cur, y)
    x_max, f_max, g_max = x_cur.clone(), loss_cur.clone(), g.clone()
    eta = torch.full((len(x),), 2 * eps)
    marks = set(npadv.attacks.checkpoints(steps)) - {0}
    increases = torch.zeros(len(x))
    halved_last, f_last, w_last = torch.ones(len(x), dtype=torch.bool), f_max.clone(), 0
    for k in range(steps):
        a = 1.0 if k == 0 else 0.75
        z = proj(x_cur + eta.view(shape) * g.sign())
        x_next = proj(x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev))
        loss_next, g = torch_input_grad(net, x_next, y)
        increases += (loss_next > loss_cur).float()
        up = loss_next > f_max
        x_max[up], f_max[up], g_max[up] = x_next[up], loss_next[up], g[up]
        x_prev, x_cur, loss_cur = x_cur, x_next, loss_next
        if k + 1 in marks:
            halve = (increases < rho * (k + 1 - w_last)) | (~halved_last & (f_max <= f_last))
            eta[halve] /= 2
            x_cur[halve], g[halve], loss_cur[halve] = x_max[halve], g_max[halve], f_max[halve]
            halved_last, f_last, w_last = halve, f_max.clone(), k + 1
            increases.zero_()
    return x_max


def throughput(model, x, y, eps: float = 0.3) -> None:
    x, y = x[:BATCH], y[:BATCH]
    rates = {
        "PGD-10": BATCH / median_time(lambda: pgd(model, x, y, eps, steps=10, rng=0)),
        "APGD-100": BATCH / median_time(lambda: apgd(model, x, y, eps, steps=100, rng=0), 1),
    }
    try:
        import torch
    except ImportError:
        torch = None
    torch_rates = {}
    if torch is not None:
        torch.manual_seed(0)
        net, xt, yt = torch_twin(model), torch.from_numpy(x), torch.from_numpy(y)
        with torch.no_grad():
            gap = np.abs(net(xt).numpy() - npadv.attacks.predict(model, x)).max()
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"max |logit difference| to npadv: {gap:.1e}")
        torch_rates = {
            "PGD-10": BATCH / median_time(lambda: torch_pgd(net, xt, yt, eps, 10)),
            "APGD-100": BATCH / median_time(lambda: torch_apgd(net, xt, yt, eps, 100), 1),
        }
    print(f"\nthroughput, small_cnn, batch {BATCH}, L∞ ε = {eps} (images/s)")
    for name, rate in rates.items():
        extra = ""
        if name in torch_rates:
            extra = (f"   PyTorch {torch_rates[name]:8.1f}   npadv/PyTorch = "
                     f"{rate / torch_rates[name]:.2f}")
        print(f"  {name:<9s} npadv {rate:8.1f}{extra}")
    if not torch_rates:
        print("  (PyTorch not installed: no ratio)")


def accuracy_curve(model, x, y, eps_list) -> None:
    print(f"\nrobust accuracy vs ε (L∞), naturally trained small_cnn, {len(x)} test images")
    print(f"  {'eps':>5s}  {'PGD-40x5':>9s}  {'APGD-CE':>8s}  {'worst':>7s}  {'time':>6s}")
    worst = []
    for eps in eps_list:
        start = time.perf_counter()
        attacks = [Attack("pgd", eps, steps=40, restarts=5, early_stop=True, rng=0),
                   Attack("apgd", eps, steps=100, early_stop=True, rng=0)]
        report = evaluate(model, x, y, attacks, batch_size=BATCH, checks=False)
        acc_pgd, acc_apgd = report.attack_accuracy.values()
        worst.append(report.robust_accuracy)
        print(f"  {eps:5.2f}  {acc_pgd:9.1%}  {acc_apgd:8.1%}  {report.robust_accuracy:7.1%}"
              f"  {time.perf_counter() - start:5.0f}s", flush=True)
    print(f"  clean accuracy {report.clean_accuracy:.1%}")
    for message in check_eps_monotone(eps_list, worst):
        print("  warning:", message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 200 images, 3 eps")
    args = parser.parse_args()
    epochs, n_test, eps_list = args.epochs, args.n_test, EPS_LIST
    if args.quick:
        epochs, n_test, eps_list = 1, 200, (0.0, 0.1, 0.3)
    print(f"npadv {npadv.__version__}, NumPy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    x_train, y_train, x_test, y_test = load_mnist_5k()
    start = time.perf_counter()
    model = train_natural(x_train, y_train, epochs)
    print(f"trained small_cnn for {epochs} epochs in {time.perf_counter() - start:.0f}s")
    throughput(model, x_test, y_test)
    accuracy_curve(model, x_test[:n_test], y_test[:n_test], eps_list)


if __name__ == "__main__":
    main()
