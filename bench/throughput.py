"""Throughput of npadv's reference models, and of PyTorch on the same models when it is installed.

    python bench/throughput.py              # mlp and small_cnn, batch 128, float32
    python bench/throughput.py --profile    # also: where a small_cnn training step spends its time

For each model: a training step (forward, cross-entropy, backward, SGD step) and a
PGD-10 attack (10 × forward and backward w.r.t. the input, sign step, projection), in
images per second; the FLOP rate counted by npadv's cost meter (2 FLOPs per
multiply-add of matmul and conv, forward and backward) and that rate as a fraction of
NumPy's float32 matmul peak, measured in the same run. Then small_cnn's two conv
layers alone (forward + backward, as in a training step: no gradient for the images
themselves). PyTorch, if importable, runs the same architectures (same weights,
float32, CPU, as many threads as NumPy's BLAS) and gets the same FLOP count.

Times are medians over repeats after warm-up, npadv and PyTorch measured in alternating
rounds; the minimum is shown in brackets, since a shared machine adds noise (the load
average is printed too). This is a benchmark, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable

import numpy as np

import npadv
from npadv import functional as F
from npadv.optim import SGD

BATCH = 128
EPS, ALPHA, PGD_STEPS = 0.3, 0.01, 10


# ---- timing ------------------------------------------------------------------------
def samples(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall times of `repeats` calls of fn(), in seconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(median, minimum) wall time of fn() in seconds, after `warmup` untimed calls."""
    return _summary(samples(fn, repeats, warmup))


def timed_pair(ours: Callable[[], object], theirs: Callable[[], object] | None, repeats: int,
               rounds: int = 3) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """(median, minimum) times of two jobs measured in alternating rounds, so that a
    passing load on a shared machine hits both alike. A pause separates the two: each
    library's idle threads keep spinning for a while after its last call."""
    a, b = [], []
    per_round = max(1, -(-repeats // rounds))
    for _ in range(rounds if theirs is not None else 1):
        a += samples(ours, per_round if theirs is not None else repeats)
        if theirs is not None:
            time.sleep(0.3)
            b += samples(theirs, per_round)
            time.sleep(0.3)
    return _summary(a), (_summary(b) if b else None)


def _summary(times: list[float]) -> tuple[float, float]:
    return float(np.median(times)), float(np.min(times))


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 matmul rate in FLOP/s: best of `repeats` size × size products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    _, best = timed(lambda: a @ b, repeats)
    return 2 * size ** 3 / best


def blas_description() -> tuple[str, int]:
    """A line naming NumPy's BLAS (and its kernel), and its thread count."""
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                      "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                    if k in os.environ) or "no OPENBLAS_*/OMP_* variables set"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"BLAS: unknown (pip install threadpoolctl to see it); {env}", os.cpu_count() or 1
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return f"BLAS: none found; {env}", os.cpu_count() or 1
    info = blas[0]
    kernel = f", {info['architecture']} kernel" if info.get("architecture") else ""
    text = (f"BLAS: {info.get('internal_api')} {info.get('version')}{kernel}, "
            f"{info['num_threads']} thread(s); {env}")
    return text, int(info["num_threads"])


# ---- npadv workloads -----------------------------------------------------------------
def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped images in [0, 1] and labels: x (128, 1, 28, 28) float32, y (128,) int64."""
    rng = np.random.default_rng(seed)
    return (rng.random((BATCH, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, BATCH).astype(np.int64))


def npadv_train_step(model, x, y) -> Callable[[], None]:
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(npadv.Tensor(x)), y)
        loss.backward()
        opt.step()

    return step


def npadv_pgd(model, x, y) -> Callable[[], np.ndarray]:
    """PGD-10 in the L∞ ball of radius EPS from a random start, written inline with npadv ops."""
    rng = np.random.default_rng(1)
    lo, hi = np.clip(x - EPS, 0, 1), np.clip(x + EPS, 0, 1)

    def attack():
        x_adv = np.clip(x + rng.uniform(-EPS, EPS, x.shape).astype(np.float32), lo, hi)
        for _ in range(PGD_STEPS):
            delta = npadv.Tensor(x_adv, requires_grad=True)
            model.zero_grad()
            F.cross_entropy(model(delta), y).backward()
            x_adv = np.clip(x_adv + ALPHA * np.sign(delta.grad), lo, hi)
        return x_adv

    return attack


def npadv_conv_layers(model, x) -> list[tuple[str, Callable[[], None]]]:
    """small_cnn's conv layers alone: forward + backward with a random upstream gradient.

    conv1 sees the images (no input gradient, as in training), conv2 the activations of
    conv1-relu-pool (with an input gradient)."""
    conv1, conv2 = model[0], model[3]
    rng = np.random.default_rng(2)
    with npadv.no_grad():
        a1 = model[:3](npadv.Tensor(x)).data                 # conv2's input, as training sees it
    jobs = []
    for name, conv, inp, needs_grad in (("conv1", conv1, x, False), ("conv2", conv2, a1, True)):
        out_shape = conv(npadv.Tensor(inp)).shape
        g = rng.standard_normal(out_shape).astype(np.float32)

        def run(conv=conv, inp=inp, needs_grad=needs_grad, g=g):
            conv.zero_grad()
            conv(npadv.Tensor(inp, requires_grad=needs_grad)).backward(g)

        jobs.append((name, run))
    return jobs


def flops_of(fn: Callable[[], object]) -> int:
    with npadv.cost() as meter:
        fn()
    return meter.flops


# ---- the same models in PyTorch --------------------------------------------------------
def torch_model(torch, name: str, model):
    """The PyTorch twin of an npadv reference model, with the same weights."""
    nn = torch.nn
    if name == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                            nn.ReLU(), nn.Linear(256, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))
    ours = [p.data for p in model.parameters()]
    theirs = list(net.parameters())
    assert [tuple(p.shape) for p in theirs] == [a.shape for a in ours], "architectures differ"
    with torch.no_grad():
        for p, a in zip(theirs, ours):
            p.copy_(torch.from_numpy(a.copy()))
    return net


def torch_jobs(torch, net, x, y):
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    lo, hi = (tx - EPS).clamp(0, 1), (tx + EPS).clamp(0, 1)
    gen = torch.Generator().manual_seed(1)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(tx), ty).backward()
        opt.step()

    def attack():
        noise = torch.empty_like(tx).uniform_(-EPS, EPS, generator=gen)
        x_adv = torch.minimum(torch.maximum(tx + noise, lo), hi)
        for _ in range(PGD_STEPS):
            delta = x_adv.clone().requires_grad_(True)
            net.zero_grad()
            torch.nn.functional.cross_entropy(net(delta), ty).backward()  # parameter grads too, as npadv
            x_adv = torch.minimum(torch.maximum(x_adv + ALPHA * delta.grad.sign(), lo), hi)
        return x_adv

    return step, attack


def torch_conv_layers(torch, net, x) -> list[Callable[[], None]]:
    conv1, conv2 = net[0], net[3]
    tx = torch.from_numpy(x)
    with torch.no_grad():
        a1 = net[:3](tx)
    jobs = []
    for conv, inp, needs_grad in ((conv1, tx, False), (conv2, a1, True)):
        g = torch.randn(conv(inp).shape)

        def run(conv=conv, inp=inp, needs_grad=needs_grad, g=g):
            conv.zero_grad()
            conv(inp.detach().requires_grad_(needs_grad)).backward(g)

        jobs.append(run)
    return jobs


# ---- report ------------------------------------------------------------------------
def rate(flops: float, seconds: float, peak: float) -> str:
    return f"{flops / seconds / 1e9:7.1f}  {100 * flops / seconds / peak:5.1f}%"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed repeats of a training step (a PGD-10 attack gets a third)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit NumPy's BLAS (needs threadpoolctl) and PyTorch to this many "
                             "threads; default: whatever NumPy's BLAS uses")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--profile", action="store_true",
                        help="profile small_cnn training steps (cProfile) and print the top functions")
    args = parser.parse_args(argv)
    if args.threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            sys.exit("--threads needs threadpoolctl (or set OPENBLAS_NUM_THREADS instead)")
        threadpool_limits(limits=args.threads, user_api="blas")

    blas, threads = blas_description()
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            torch = None

    print(f"npadv {npadv.__version__} throughput: batch {BATCH}, float32")
    print(f"python {platform.python_version()}, numpy {np.__version__}; {blas}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    peak = matmul_peak()
    print(f"NumPy float32 matmul peak (2048 x 2048, best of 5): {peak / 1e9:.1f} GFLOP/s")
    if torch is not None:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        print("PyTorch: not importable (or --no-torch); no comparison")

    x, y = batch()
    reps_pgd = max(3, args.repeats // 3)
    # every workload: (row label, npadv job, PyTorch job or None, repeats)
    workloads = []
    for name in ("mlp", "small_cnn"):
        model = npadv.build_model(name, seed=0)
        twins = (None, None)
        if torch is not None:
            net = torch_model(torch, name, model)
            twins = torch_jobs(torch, net, x, y)
            with torch.no_grad():
                diff = float(np.abs(net(torch.from_numpy(x)).numpy() - model(x).data).max())
            assert diff < 1e-3, f"npadv and PyTorch {name} disagree by {diff}"
        workloads.append((f"{name:10s} {'train step':10s}", npadv_train_step(model, x, y),
                          twins[0], args.repeats))
        workloads.append((f"{name:10s} {f'PGD-{PGD_STEPS}':10s}", npadv_pgd(model, x, y),
                          twins[1], reps_pgd))
    model = npadv.small_cnn(seed=0)
    tjobs = (torch_conv_layers(torch, torch_model(torch, "small_cnn", model), x)
             if torch is not None else [None, None])
    for (label, run), tjob in zip(npadv_conv_layers(model, x), tjobs):
        workloads.append((label, run, tjob, 3 * args.repeats))

    flops = [flops_of(job) for _, job, _, _ in workloads]
    results = [timed_pair(job, tjob, reps) for _, job, tjob, reps in workloads]
    ours, theirs = [r[0] for r in results], [r[1] for r in results]

    print()
    header = f"{'model':10s} {'workload':10s} {'npadv img/s':>18s} {'GFLOP/s':>8s} {'%peak':>6s}"
    if torch is not None:
        header += f" | {'torch img/s':>18s} {'GFLOP/s':>8s}  npadv/torch"
    print(header)
    print("-" * len(header))
    for k in range(4):
        (med, best), label = ours[k], workloads[k][0]
        line = f"{label} {BATCH / med:9.0f} [{BATCH / best:6.0f}] {rate(flops[k], med, peak)}"
        if theirs[k] is not None:
            tmed, tbest = theirs[k]
            line += (f" | {BATCH / tmed:9.0f} [{BATCH / tbest:6.0f}] "
                     f"{flops[k] / tmed / 1e9:8.1f}  {tmed / med:10.2f}x")
        print(line)

    print(f"\nsmall_cnn conv layers alone, forward + backward, batch {BATCH} (median times):")
    convs = range(4, 6)
    rows = [(workloads[k][0], flops[k], ours[k][0], theirs[k] and theirs[k][0]) for k in convs]
    rows.append(("both ", sum(r[1] for r in rows), sum(r[2] for r in rows),
                 None if torch is None else sum(r[3] for r in rows)))
    for label, fl, med, tmed in rows:
        line = f"  {label}: {fl / 1e6:7.1f} MFLOP  {med * 1e3:6.2f} ms  {rate(fl, med, peak)} of peak"
        if tmed is not None:
            line += f" | torch {tmed * 1e3:6.2f} ms  {fl / tmed / 1e9:6.1f} GFLOP/s  ratio {tmed / med:.2f}x"
        print(line)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")

    if args.profile:
        profile_small_cnn(x, y, steps=args.repeats)


def profile_small_cnn(x, y, steps: int, top: int = 20) -> None:
    """cProfile of `steps` small_cnn training steps: top functions by cumulative and own time."""
    step = npadv_train_step(npadv.small_cnn(seed=0), x, y)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    for order, label, count in (("cumulative", "cumulative time", top),
                                ("tottime", "own time (callees excluded)", top // 2)):
        print(f"\n---- profile of {steps} small_cnn training steps, by {label} ----")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.strip_dirs().sort_stats(order).print_stats(count)


if __name__ == "__main__":
    main()
