# %% [markdown]
# # The methods on full Fashion-MNIST
#
# The comparison of demos/adversarial_training.py at MNIST scale: 60,000 training and
# 10,000 test images of clothing (Xiao, Rasul, Vollgraf 2017), L∞ ε = 0.1, small_cnn.
# Natural training, PGD-7-AT, Fast AT, Free-8, YOPO-5-3, FreeLB-3 and TRADES each get the
# same training budget; a PGD-7-AT row trained for 3 epochs is the reference. Robust
# accuracy is the per-example worst case of PGD-40 with 2 restarts, APGD-CE and APGD-DLR
# (25 steps each) on 2,000 test images. The full run takes tens of minutes on 2 cores;
# --quick takes about 40 s on a 3,000-image slice.
#
# Data: `apt-get install dataset-fashion-mnist` (Debian) puts the files where
# `npadv.data.load_fashion_mnist` finds them; or set NPADV_DATA.
#
#     python demos/fashion_mnist.py [--quick] [--out DIR] [--budget SECONDS]

# %%
from __future__ import annotations

import argparse
from pathlib import Path

from npadv.data import load_fashion_mnist
from npadv.experiments import PLANS, compare, evaluation, reference, report

parser = argparse.ArgumentParser(description="training methods on full Fashion-MNIST")
parser.add_argument("--quick", action="store_true", help="a 3,000-image slice, short budget")
parser.add_argument("--out", type=Path, default=Path("demos/out/fashion_mnist"))
parser.add_argument("--budget", type=float, default=None,
                    help="seconds of training per method (default 90; quick: 2)")
parser.add_argument("--eps", type=float, default=0.1)
args, _ = parser.parse_known_args()

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
# The same rows as the MNIST-5k comparison. The reference trains PGD-7-AT for several
# epochs over the 60,000 images.

# %%
budget = args.budget if args.budget is not None else (2.0 if args.quick else 90.0)
plan = PLANS["quick" if args.quick else "full"]
entries = [*plan, reference(3, steps=2 if args.quick else 7)]
attacks = (evaluation(args.eps, pgd_steps=10, restarts=1, apgd_steps=10) if args.quick
           else evaluation(args.eps, pgd_steps=40, restarts=2, apgd_steps=25))
n_eval = 100 if args.quick else 2000

# %%
summary = compare(entries, (x_train, y_train, x_test, y_test), eps=args.eps, budget=budget,
                  n_eval=n_eval, check_size=100 if args.quick else 500, attacks=attacks,
                  out=args.out, progress=True,
                  title=f"Fashion-MNIST ({len(x_train):,} train), small_cnn, L∞ ε = "
                        f"{args.eps}, {budget:g} s of training each")

# %% [markdown]
# ## Results

# %%
report(summary, args.out)
