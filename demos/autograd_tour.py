# %% [markdown]
# # The engine in five minutes
#
# npadv's `Tensor` records the operations applied to it; `backward()` walks them in reverse
# and accumulates vector-Jacobian products into `.grad`. This tour:
#
# 1. a small graph by hand: `backward`, `retain_grad`, a tensor used twice;
# 2. the input gradient of a CNN trained briefly on MNIST-5k, shown over the digits:
#    the picture an attack such as FGSM starts from;
# 3. `gradcheck` catching a custom op whose backward is wrong.
#
#     python demos/autograd_tour.py [--quick] [--out DIR]
#
# Writes autograd_tour.json (every number printed), input_gradients.png and gradcheck.png.

# %%
from __future__ import annotations

import os

# One BLAS thread: the matrices here are small, and a multi-threaded OpenBLAS on a busy
# machine spends its time waiting (measured 10-20x slower). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from npadv import Tensor, no_grad, small_cnn
from npadv import functional as F
from npadv.attacks import predict
from npadv.data import load_mnist_5k
from npadv.methods import build_method
from npadv.testing.gradcheck import GradcheckError, assert_vjp, gradcheck
from npadv.training import TrainConfig, train

parser = argparse.ArgumentParser(description="npadv's autograd engine in five minutes")
parser.add_argument("--quick", action="store_true", help="train the CNN on fewer images")
parser.add_argument("--out", type=Path, default=Path("demos/out/autograd_tour"),
                    help="folder for the PNGs and autograd_tour.json")
args, _ = parser.parse_known_args()
args.out.mkdir(parents=True, exist_ok=True)
results: dict = {"quick": args.quick}
t_start = time.perf_counter()

# %% [markdown]
# ## 1. A small graph
#
#     h = x ⊙ w,   a = relu(h),   L = Σ a² + Σ x²
#
# By hand: ∂L/∂h = 2a·[h > 0], ∂L/∂w = x ⊙ ∂L/∂h, and x reaches L along two paths, so its
# gradient is the sum w ⊙ ∂L/∂h + 2x. Leaves (`requires_grad=True`) keep `.grad`; an
# intermediate keeps it only after `retain_grad()`.

# %%
x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
w = Tensor(np.array([0.5, 0.5, -1.0]), requires_grad=True)
h = (x * w).retain_grad()
a = h.relu()
loss = (a * a).sum() + (x * x).sum()
loss.backward()

dh = 2 * np.maximum(h.data, 0) * (h.data > 0)            # by hand, in NumPy
by_hand = {"h": dh, "x": w.data * dh + 2 * x.data, "w": x.data * dh}
engine = {"h": h.grad, "x": x.grad, "w": w.grad}
print(f"L = {loss.item():g}")
for name in ("x", "w", "h"):
    print(f"  ∂L/∂{name}: engine {engine[name]}, by hand {by_hand[name]}")
print(f"  a.grad (not retained): {a.grad}")
error = max(float(np.abs(engine[k] - by_hand[k]).max()) for k in engine)
print(f"  largest |engine − by hand| = {error:g}")

with no_grad():                                          # no graph: nothing to backpropagate
    untracked = x * w
print(f"  under no_grad(): (x * w).requires_grad = {untracked.requires_grad}")
results["small_graph"] = {
    "loss": loss.item(), "grads": {k: v.tolist() for k, v in engine.items()},
    "by_hand": {k: v.tolist() for k, v in by_hand.items()}, "max_abs_error": error,
    "intermediate_grad_without_retain": None if a.grad is None else a.grad.tolist(),
    "requires_grad_under_no_grad": untracked.requires_grad}

# %% [markdown]
# ## 2. The input gradient of a CNN
#
# small_cnn (two conv layers, two linear) trained naturally for a few epochs. Making the
# input a leaf with `requires_grad=True` gives ∂loss/∂pixel, the same backward pass that
# trains the weights. Red pixels raise the loss when brightened, blue ones lower it.

# %%
x_train, y_train, x_test, y_test = load_mnist_5k()
n_train, epochs = (4000, 1) if args.quick else (4000, 3)
model = small_cnn(seed=0)
untrained = small_cnn(seed=0)                            # the same weights, never trained
t0 = time.perf_counter()
history = train(model, build_method("natural"),
                (x_train[:n_train], y_train[:n_train], x_test, y_test),
                TrainConfig(epochs=epochs, batch_size=64, lr=0.05, eval_size=1000),
                progress=False)
train_time = time.perf_counter() - t0
clean_acc = history[-1]["clean_acc"]
print(f"small_cnn, natural training: {epochs} epoch(s) on {n_train} images, {train_time:.1f} s; "
      f"test accuracy {clean_acc:.3f} (first 1,000 test images)")
results["cnn"] = {"train_images": n_train, "epochs": epochs, "train_time": train_time,
                  "test_accuracy": clean_acc}


def input_gradient_of(net, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """∂ mean cross-entropy / ∂ input. images: (N, 1, 28, 28) float32 -> same shape."""
    xt = Tensor(images.copy(), requires_grad=True)
    F.cross_entropy(net(xt), labels).backward()
    return xt.grad * len(images)                         # per-example loss gradients


shown = 6
digits, labels = x_test[:shown], y_test[:shown]
model.eval()
untrained.eval()
rows = {"untrained (random weights)": untrained,
        f"trained ({epochs} epoch{'s' * (epochs > 1)}, acc {clean_acc:.2f})": model}
fig, axes = plt.subplots(2, shown, figsize=(1.9 * shown + 1.2, 4.6), constrained_layout=True)
for r, (title, net) in enumerate(rows.items()):
    grads = input_gradient_of(net, digits, labels)
    logits = predict(net, digits)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    for i, ax in enumerate(axes[r]):
        g = grads[i, 0] / np.abs(grads[i, 0]).max()      # each image scaled to ±1
        im = ax.imshow(g, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.contour(digits[i, 0], levels=[0.5], colors="k", linewidths=0.8)
        ax.set_title(f"label {labels[i]}, p(label) = {probs[i, labels[i]]:.2f}", fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(title, fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.8, label="∂loss/∂pixel (scaled to ±1 per image)")
fig.suptitle("Input gradient of the cross-entropy, digit outline in black")
fig.savefig(args.out / "input_gradients.png", dpi=110)

# %% [markdown]
# Does the picture show the true gradient? `assert_vjp` compares ⟨v, J u⟩ from the
# backward pass with a finite difference of the loss along random directions u, in
# float64 (a copy of the trained model); ReLU and max-pool kinks are detected and skipped.

# %%
model64 = small_cnn(seed=0, dtype=np.float64)
model64.load_state_dict(model.state_dict())
model64.eval()
report = assert_vjp(lambda t: F.cross_entropy(model64(t), labels),
                    digits.astype(np.float64), directions=4)
print(f"assert_vjp on the trained CNN's input gradient: passed "
      f"({report.checked} directions checked, {report.kinks} skipped at kinks)")
results["cnn"]["input_gradient_vjp_check"] = {"passed": True, "checked": report.checked,
                                              "kinks": report.kinks}

# %% [markdown]
# ## 3. gradcheck catching a wrong backward
#
# A custom op is a forward value plus a vjp, joined to the graph by `Tensor.from_op`.
# softplus(x) = log(1 + eˣ) has derivative σ(x). The buggy version returns σ'(x) =
# σ(x)(1 − σ(x)), the derivative of the *sigmoid*, a classic mix-up. Both run; only one
# gives the right gradient, and `gradcheck` (float64, central differences, every element)
# says which and where.


# %%
def softplus(x: Tensor, wrong: bool = False) -> Tensor:
    """log(1 + eˣ), elementwise; wrong=True plants the bug in the backward."""
    out = np.logaddexp(0.0, x.data)
    sigma = 1.0 / (1.0 + np.exp(-x.data))

    def vjp(g):
        return (g * (sigma * (1 - sigma) if wrong else sigma),)

    return Tensor.from_op(out, (x,), vjp)


x64 = np.random.default_rng(0).standard_normal((3, 4))
checks = {}
for wrong in (False, True):
    name = "wrong softplus" if wrong else "softplus"
    try:
        gradcheck(lambda t, wrong=wrong: softplus(t, wrong), [x64])
        checks[name] = {"passed": True, "message": ""}
    except GradcheckError as err:
        checks[name] = {"passed": False, "message": str(err)}
    verdict = "passed" if checks[name]["passed"] else f"FAILED: {checks[name]['message']}"
    print(f"gradcheck({name}): {verdict}")
results["gradcheck"] = checks

# the same story along a line: backprop against central differences of the forward
grid = np.linspace(-4, 4, 81)
step = 1e-5
finite_diff = (np.logaddexp(0, grid + step) - np.logaddexp(0, grid - step)) / (2 * step)
backprop = {}
for wrong in (False, True):
    t = Tensor(grid.copy(), requires_grad=True)
    softplus(t, wrong).sum().backward()
    backprop[wrong] = t.grad
results["gradcheck"]["max_abs_error_on_grid"] = {
    "softplus": float(np.abs(backprop[False] - finite_diff).max()),
    "wrong softplus": float(np.abs(backprop[True] - finite_diff).max())}
print(f"largest |backprop − finite difference| on [-4, 4]: correct "
      f"{results['gradcheck']['max_abs_error_on_grid']['softplus']:.1e}, wrong "
      f"{results['gradcheck']['max_abs_error_on_grid']['wrong softplus']:.2f}")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
ax0.plot(grid, np.logaddexp(0, grid), color="k")
ax0.set(title="forward: softplus(x) = log(1 + eˣ)", xlabel="x", ylabel="softplus(x)")
ax1.plot(grid[::4], finite_diff[::4], "o", color="k", ms=5, label="central difference")
ax1.plot(grid, backprop[False], color="tab:blue", lw=2, label="backward σ(x): passes")
ax1.plot(grid, backprop[True], "--", color="tab:red", lw=2,
         label="backward σ(x)(1 − σ(x)): fails")
ax1.set(title="derivative: central differences against two backwards", xlabel="x",
        ylabel="d softplus / dx")
ax1.legend(loc="upper left", fontsize=9)
for ax in (ax0, ax1):
    ax.grid(alpha=0.3)
fig.savefig(args.out / "gradcheck.png", dpi=110)

# %%
results["total_time"] = time.perf_counter() - t_start
(args.out / "autograd_tour.json").write_text(json.dumps(results, indent=2))
print(f"total {results['total_time']:.1f} s; wrote {args.out}/autograd_tour.json, "
      "input_gradients.png, gradcheck.png")
