# %% [markdown]
# # The methods on full Fashion-MNIST, at convergence
#
# The comparison of demos/adversarial_training.py on 60,000 training and 10,000 test
# images of clothing (Xiao, Rasul, Vollgraf 2017), L∞ ε = 0.1, small_cnn. Every method
# trains until its per-epoch PGD-10 check (500 fixed test images) levels off; each paper's
# claim is judged by its time to robustness against a PGD-7-AT reference trained the same
# way, and each final model is attacked by `npadv eval`'s default suite (APGD-CE, APGD-T,
# Square) on 1,000 test images. Then robust accuracy against ε from 0 to 0.3 for every
# final model, in one picture.
#
# The full run takes about 2 hours on 2 cores (demos/README.md), so it is resumable: each
# method is a run folder under --out, and rerunning the script continues an unfinished run
# from its last epoch and skips finished ones. --quick takes a 3,000-image slice and a 2 s
# budget.
#
# Data: `apt-get install dataset-fashion-mnist` (Debian) puts the files where
# `npadv.data.load_fashion_mnist` finds them; or set NPADV_DATA.
#
#     python demos/fashion_mnist.py [--quick] [--out DIR]

# %%
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt

from npadv.attacks import evaluate, suite
from npadv.checkpoint import load_model
from npadv.data import load_fashion_mnist
from npadv.experiments import PLANS, compare, converge, reference, report, slug
from npadv.files import atomic_output, write_json
from npadv.workers import available_cpus

parser = argparse.ArgumentParser(description="training methods on full Fashion-MNIST")
parser.add_argument("--quick", action="store_true", help="a 3,000-image slice, 2 s budget")
parser.add_argument("--out", type=Path, default=Path("demos/out/fashion_mnist"),
                    help="folder of the results and of each method's run (a rerun continues)")
parser.add_argument("--eps", type=float, default=0.1)
args, _ = parser.parse_known_args()
t_start = time.perf_counter()

# %% [markdown]
# ## Data
# The full training set, or under --quick its first 3,000 images and 100 test images.

# %%
x_train, y_train, x_test, y_test = load_fashion_mnist()
if args.quick:
    x_train, y_train = x_train[:3000], y_train[:3000]
print(f"train {x_train.shape}, test {x_test.shape}, pixels in [{x_train.min()}, "
      f"{x_train.max()}]")

# %% [markdown]
# ## Plan and evaluation
# The same rows as on MNIST-5k: 8 epochs each, Free-8 8 passes over the data (64 of its
# epochs, each minibatch replayed 8 times).

# %%
EPOCHS, FREE_PASSES = 8, 8
if args.quick:
    entries, budget = [*PLANS["quick"], reference(3, steps=2)], 2.0
else:
    entries, budget = converge(EPOCHS, FREE_PASSES), None
n_eval = 100 if args.quick else 1000
attacks = suite("quick" if args.quick else "standard", args.eps)

# %% [markdown]
# ## Train and evaluate
# Each row's run folder holds its checkpoint after every epoch, its log and, once it is
# evaluated, row.json.

# %%
what = ("2 s of training each" if args.quick
        else f"{EPOCHS} epochs each (Free-8: {FREE_PASSES} passes)")
summary = compare(entries, (x_train, y_train, x_test, y_test), eps=args.eps, budget=budget,
                  n_eval=n_eval, check_size=100 if args.quick else 500, attacks=attacks,
                  out=args.out, progress=True, workers=available_cpus(),
                  title=f"Fashion-MNIST ({len(x_train):,} train), small_cnn, L∞ ε = "
                        f"{args.eps}, {what}")
report(summary, args.out)

# %% [markdown]
# ## Robust accuracy against ε
# Every final model, attacked by the quick suite (APGD-CE and APGD-T, 25 steps each, and
# Square with 500 queries) at each ε. Each model's curve is kept in its run folder, so a
# rerun does not attack it again.

# %%
eps_grid = [0.0, 0.1, 0.2] if args.quick else [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
n_curve = 100 if args.quick else 500
curves = {}
for entry in entries:
    folder = args.out / slug(entry.label)
    path = folder / "eps_curve.json"
    if path.exists() and json.loads(path.read_text())["eps"] == eps_grid:
        curves[entry.label] = json.loads(path.read_text())["robust_acc"]
        continue
    model, _ = load_model(folder / "checkpoint.npz")
    accs = []
    for eps in eps_grid:
        if eps == 0:
            accs.append(evaluate(model, x_test[:n_curve], y_test[:n_curve], []).clean_accuracy)
        else:
            accs.append(evaluate(model, x_test[:n_curve], y_test[:n_curve], "quick", eps=eps,
                                 checks=False, workers=available_cpus()).robust_accuracy)
    write_json(path, {"eps": eps_grid, "robust_acc": accs, "n": n_curve})
    curves[entry.label] = accs
    print(f"{entry.label}: " + ", ".join(f"{e:g}: {a:.3f}" for e, a in zip(eps_grid, accs,
                                                                           strict=True)))

fig, ax = plt.subplots(figsize=(7, 4.5))
for label, accs in curves.items():
    style = {"color": "black", "linestyle": "--"} if "reference" in label else {}
    ax.plot(eps_grid, accs, marker="o", markersize=3, label=label, **style)
ax.axvline(args.eps, color="grey", linewidth=0.8, linestyle=":")
ax.text(args.eps, 0.02, " training ε", color="grey", fontsize=8)
ax.set_xlabel("L∞ ε")
ax.set_ylabel(f"robust accuracy on {n_curve} test images\n(quick suite, worst case)")
ax.set_ylim(0, 1)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
ax.set_title("Fashion-MNIST: the final models against ε", fontsize=10)
fig.tight_layout()
with atomic_output(args.out / "eps_curves.png") as tmp:
    fig.savefig(tmp, dpi=120)
plt.close(fig)
write_json(args.out / "eps_curves.json", {"eps": eps_grid, "n": n_curve, "curves": curves})
print(f"wrote {args.out / 'eps_curves.png'}; this run took {time.perf_counter() - t_start:.0f} s")
