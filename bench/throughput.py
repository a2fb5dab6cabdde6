"""Throughput of npadv against PyTorch (CPU) on the reference models, with a PASS/FAIL per target.

    python bench/throughput.py               # the full comparison (a few minutes)
    python bench/throughput.py --quick       # fewer repeats, no memory run: for a quick look
    python bench/throughput.py --threads 1   # both sides on one thread
    python bench/throughput.py --profile     # also: where a small_cnn training step spends time

Workloads: a training step (forward, cross-entropy, backward, SGD step) of small_cnn at
batch 128 and 32, mlp and madry_cnn at 128; a PGD-10 attack (10 × forward and backward
w.r.t. the input, sign step, clip) on small_cnn and mlp at 128; small_cnn's two conv
layers alone (forward + backward as in training: no gradient for the images). PyTorch
runs the same architectures with the same weights, float32, CPU, with as many threads
as NumPy's BLAS. The FLOP rate is npadv's cost-meter count (2 FLOPs per multiply-add of
matmul and conv, forward and backward), also as a fraction of NumPy's float32 matmul
peak measured in the same run. Peak memory: each library runs 100 small_cnn training
steps at batch 128 in its own subprocess, which reports its peak resident set size.

Times are medians over ≥ 10 rounds, npadv and PyTorch timed in alternating rounds (a
warm-up call, then a timed call) so that a passing load hits both alike; the minimum is shown in
brackets, and the load average is printed. A ratio is PyTorch's time over npadv's
(above 1: npadv is faster). This is a benchmark, not a test: it asserts nothing.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import subprocess
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
               pause: float = 0.2) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """(median, minimum) times of two jobs, timed in alternating rounds (ours, theirs,
    ours, ...) so that a passing load on a shared machine hits both alike.

    A round is one untimed call, then one timed call: the steady state of consecutive
    steps, as in training. (A library's BLAS threads park after a short idle spell, and
    the first call after the pause wakes them; for small workloads that wake-up alone
    can double the time.) A pause separates the rounds, because each library's idle
    threads keep spinning for a while after its last call.
    """
    if theirs is None:
        return _summary(samples(ours, repeats)), None
    a, b = [], []
    for _ in range(repeats):
        a += samples(ours, 1, warmup=1)
        time.sleep(pause)
        b += samples(theirs, 1, warmup=1)
        time.sleep(pause)
    return _summary(a), _summary(b)


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
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
        return (f"BLAS: {blas.get('name')} {blas.get('version')}, {threads} thread(s) "
                f"(threadpoolctl would show the kernel); {env}"), threads
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return f"BLAS: none found; {env}", os.cpu_count() or 1
    info = blas[0]
    kernel = f", {info['architecture']} kernel" if info.get("architecture") else ""
    text = (f"BLAS: {info.get('internal_api')} {info.get('version')}{kernel}, "
            f"{info['num_threads']} thread(s); {env}")
    return text, int(info["num_threads"])


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":")[1].split()) for line in f
                         if line.startswith("flags")), set())
    except OSError:
        return set()


# ---- npadv workloads -----------------------------------------------------------------
def batch(n: int = BATCH, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped images in [0, 1] and labels: x (n, 1, 28, 28) float32, y (n,) int64."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, n).astype(np.int64))


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
        c1, c2, hidden = (16, 32, 100) if name == "small_cnn" else (32, 64, 1024)
        net = nn.Sequential(nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(49 * c2, hidden), nn.ReLU(),
                            nn.Linear(hidden, 10))
    ours = [p.data for p in model.parameters()]
    theirs = list(net.parameters())
    assert [tuple(p.shape) for p in theirs] == [a.shape for a in ours], "architectures differ"
    with torch.no_grad():
        for p, a in zip(theirs, ours, strict=True):
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
            # parameter gradients too, as in npadv
            torch.nn.functional.cross_entropy(net(delta), ty).backward()
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


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def peak_rss_mb(side: str, threads: int, steps: int = 100) -> float:
    """Peak resident set size (MB) of a fresh Python process that runs `steps` small_cnn
    training steps at batch 128 with `side` ('npadv' or 'torch') on `threads` threads."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--memory-child", side, "--threads",
                          str(threads), "--memory-steps", str(steps)],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def memory_child(side: str, steps: int) -> None:
    """Run the training steps of peak_rss_mb in this process and print the peak RSS in MB."""
    x, y = batch(BATCH)
    model = npadv.small_cnn(seed=0)
    if side == "torch":
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        step, _ = torch_jobs(torch, torch_model(torch, "small_cnn", model), x, y)
        del model
    else:
        step = npadv_train_step(model, x, y)
    for _ in range(steps):
        step()
    print(peak_rss_of_this_process_mb())


def peak_rss_of_this_process_mb() -> float:
    """VmHWM from /proc (Linux; reset by exec, unlike ru_maxrss, which a child inherits
    from its parent at fork), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def set_threads(threads: int | None) -> None:
    """Limit NumPy's BLAS to `threads` (threadpoolctl if present; else restart this script
    with OPENBLAS_NUM_THREADS set, since OpenBLAS reads it only at start-up)."""
    if threads is None:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if os.environ.get("OPENBLAS_NUM_THREADS") != str(threads):
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
        return
    threadpool_limits(limits=threads, user_api="blas")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed repeats of every workload (default 10)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 3 repeats, no memory comparison (not for the record)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch; default: NumPy's BLAS default")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--profile", action="store_true",
                        help="profile small_cnn training steps (cProfile), print the top functions")
    parser.add_argument("--memory-child", choices=("npadv", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-steps", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.memory_steps)
        return
    repeats = 3 if args.quick else args.repeats

    blas, threads = blas_description()
    threads = args.threads or threads
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            torch = None

    print(f"npadv {npadv.__version__} throughput: float32, {repeats} repeats per workload")
    print(f"python {platform.python_version()}, numpy {np.__version__}; {blas}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "OPENBLAS_CORETYPE" in os.environ and "avx512f" in cpu_flags():
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} chooses OpenBLAS's "
              "kernel; this CPU has AVX-512, which PyTorch's own kernels use regardless")
    peak = matmul_peak()
    print(f"NumPy float32 matmul peak (2048 x 2048, best of 5): {peak / 1e9:.1f} GFLOP/s")
    if torch is not None:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        print("PyTorch: not importable (or --no-torch); no comparison")

    # every workload: (model, workload, batch, npadv job, PyTorch job or None)
    workloads = []
    for name, n, attack in (("small_cnn", 128, True), ("small_cnn", 32, False),
                            ("mlp", 128, True), ("madry_cnn", 128, False)):
        x, y = batch(n)
        model = npadv.build_model(name, seed=0)
        twins = (None, None)
        if torch is not None:
            net = torch_model(torch, name, model)
            twins = torch_jobs(torch, net, x, y)
            with torch.no_grad():
                diff = float(np.abs(net(torch.from_numpy(x)).numpy() - model(x).data).max())
            assert diff < 1e-3, f"npadv and PyTorch {name} disagree by {diff}"
        workloads.append((name, "train step", n, npadv_train_step(model, x, y), twins[0]))
        if attack:
            workloads.append((name, f"PGD-{PGD_STEPS}", n, npadv_pgd(model, x, y), twins[1]))
    x, _ = batch(BATCH)
    model = npadv.small_cnn(seed=0)
    tjobs = (torch_conv_layers(torch, torch_model(torch, "small_cnn", model), x)
             if torch is not None else [None, None])
    for (label, run), tjob in zip(npadv_conv_layers(model, x), tjobs, strict=True):
        workloads.append(("small_cnn", label, BATCH, run, tjob))

    flops = [flops_of(job) for *_, job, _ in workloads]
    results = [timed_pair(job, tjob, repeats) for *_, job, tjob in workloads]
    ours, theirs = [r[0] for r in results], [r[1] for r in results]
    ratio = {}

    print()
    header = (f"{'model':10s} {'workload':10s} {'batch':>5s} {'npadv img/s':>18s} "
              f"{'GFLOP/s':>8s} {'%peak':>6s}")
    if torch is not None:
        header += f" | {'torch img/s':>18s} {'GFLOP/s':>8s}  torch time / npadv time"
    print(header)
    print("-" * len(header))
    for k, (name, work, n, *_) in enumerate(workloads):
        if work.startswith("conv"):
            continue
        (med, best) = ours[k]
        line = (f"{name:10s} {work:10s} {n:5d} {n / med:9.0f} [{n / best:6.0f}] "
                f"{rate(flops[k], med, peak)}")
        if theirs[k] is not None:
            tmed, tbest = theirs[k]
            ratio[name, work, n] = tmed / med
            line += (f" | {n / tmed:9.0f} [{n / tbest:6.0f}] "
                     f"{flops[k] / tmed / 1e9:8.1f}  {tmed / med:10.2f}x")
        print(line)

    print(f"\nsmall_cnn conv layers alone, forward + backward, batch {BATCH} (median times):")
    convs = [k for k, w in enumerate(workloads) if w[1].startswith("conv")]
    rows = [(workloads[k][1], flops[k], ours[k][0], theirs[k] and theirs[k][0]) for k in convs]
    rows.append(("both ", sum(r[1] for r in rows), sum(r[2] for r in rows),
                 None if torch is None else sum(r[3] for r in rows)))
    for label, fl, med, tmed in rows:
        line = (f"  {label}: {fl / 1e6:7.1f} MFLOP  {med * 1e3:6.2f} ms  "
                f"{rate(fl, med, peak)} of peak")
        if tmed is not None:
            line += f" | torch {tmed * 1e3:6.2f} ms  {fl / tmed / 1e9:6.1f} GFLOP/s"
            line += f"  ratio {tmed / med:.2f}x"
        print(line)
    conv_share = rows[-1][1] / rows[-1][2] / peak

    memory = None
    if torch is not None and not (args.quick or args.no_memory):
        memory = (peak_rss_mb("npadv", threads), peak_rss_mb("torch", threads))
        print(f"\npeak RSS over 100 small_cnn training steps at batch {BATCH}, each in its own "
              f"process: npadv {memory[0]:.0f} MB, torch {memory[1]:.0f} MB")
    print(f"\nload average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    if torch is not None:
        print("\ntargets:")
        for key, bar in ((("small_cnn", "train step", 128), 1.0),
                         (("small_cnn", "train step", 32), 1.0),
                         (("small_cnn", f"PGD-{PGD_STEPS}", 128), 1.0),
                         (("mlp", "train step", 128), 1.0),
                         (("mlp", f"PGD-{PGD_STEPS}", 128), 1.0),
                         (("madry_cnn", "train step", 128), 0.8)):
            name, work, n = key
            print(f"  {verdict(ratio[key] >= bar)}  {name} {work} at batch {n}: "
                  f"{ratio[key]:.2f}x PyTorch (bar >= {bar:.1f}x)")
        print(f"  {verdict(conv_share >= 0.4)}  conv layers at {100 * conv_share:.0f}% of the "
              f"float32 matmul peak (bar >= 40%)")
        if memory is not None:
            print(f"  {verdict(memory[0] <= memory[1])}  peak RSS npadv {memory[0]:.0f} MB "
                  f"vs PyTorch {memory[1]:.0f} MB (bar: <=)")

    if args.profile:
        x, y = batch(BATCH)
        profile_small_cnn(x, y, steps=repeats)


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
