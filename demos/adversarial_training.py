# %% [markdown]
# # Adversarial training methods at an equal budget
#
# Every method trains the same small_cnn on MNIST-5k (4,000 training images; 2,000 under
# --quick) for the same wall-clock budget, and is then attacked by the same cascade: PGD with
# restarts, APGD-CE and APGD-DLR, each on the images the earlier attacks left correct. A
# PGD-AT row trained for a fixed number of epochs is the reference the papers' claims are
# measured against. Comparing at equal *time* is what the cheap methods (Fast AT, Free AT,
# YOPO) claim to win.
#
#     python demos/adversarial_training.py [--quick] [--out DIR] [--eps 0.1]

# %%
from __future__ import annotations

import argparse
from pathlib import Path

from npadv.experiments import (
    DEMO_FULL,
    DEMO_QUICK,
    PLANS,
    compare,
    demo_data,
    evaluation,
    reference,
    report,
)

parser = argparse.ArgumentParser(description="training methods at an equal budget, MNIST-5k")
parser.add_argument("--quick", action="store_true",
                    help="three methods, a short budget, 2,000 training images")
parser.add_argument("--out", type=Path, default=Path("demos/out/adversarial_training"))
parser.add_argument("--eps", type=float, default=0.1)
args, _ = parser.parse_known_args()
settings = DEMO_QUICK if args.quick else DEMO_FULL

# %% [markdown]
# ## The plan
# Each row is a method from `npadv.methods` with its paper's settings, and the
# claim its paper makes. The budget is seconds of training; a few minibatches are timed
# first to choose how many epochs fit.

# %%
plan = PLANS["quick" if args.quick else "full"]
entries = [*plan, reference(settings["reference_epochs"], settings["reference_steps"])]
for e in entries:
    print(f"{e.label:<34} {e.claim}")

# %% [markdown]
# ## Train and evaluate
# `compare` trains each row, evaluates it by the cascade and writes comparison.json and
# comparison.png (the per-epoch PGD-10 check against cumulative training time).

# %%
data = demo_data(settings)
summary = compare(entries, data, eps=args.eps, budget=settings["budget"],
                  n_eval=settings["n_eval"], check_size=settings["check_size"],
                  attacks=evaluation(args.eps, settings["pgd_steps"], settings["restarts"],
                                     settings["apgd_steps"]),
                  out=args.out, progress=True,
                  title=f"MNIST-5k ({len(data[0]):,} train), small_cnn, L∞ ε = {args.eps}, "
                        f"{settings['budget']:g} s of training each")

# %% [markdown]
# ## The table, and each paper's claim beside what was measured
# "Undertrained" marks a row whose per-epoch check was still rising when its budget ran
# out: its number says more about the budget than about the method.

# %%
report(summary, args.out)
print(f"\nwrote {args.out / 'comparison.json'}, {args.out / 'comparison.png'}")
