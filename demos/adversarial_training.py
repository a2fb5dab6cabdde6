# %% [markdown]
# # Adversarial training methods at convergence: time to robustness
#
# Every method trains the same small_cnn on MNIST-5k (4,000 training images) until its
# robustness levels off, with a PGD-10 check on 200 fixed test images after every epoch.
# The fast methods' papers (Fast AT, Free AT, YOPO) claim to reach PGD-AT's robustness in
# less time, so each is measured the way they measure it: the cumulative training time at
# which its check first comes within 2 points of the PGD-7-AT reference's final check, as
# a fraction of the reference's own time to get there. TRADES claims more robustness at a
# small clean cost; each final model is attacked by `npadv eval`'s default suite (APGD-CE,
# APGD-T, Square) on 100 test images. This is `npadv demo`.
#
# Under --quick every method gets the same 2 s budget instead (2,000 training images, the
# quick suite): a short, honest version that ranks how much robustness 2 s buy.
#
#     python demos/adversarial_training.py [--quick] [--out DIR] [--eps 0.1]

# %%
from __future__ import annotations

import argparse
from pathlib import Path

from npadv.attacks import suite
from npadv.experiments import (
    DEMO_FULL,
    DEMO_QUICK,
    compare,
    demo_data,
    demo_plan,
    demo_title,
    report,
)
from npadv.workers import available_cpus

parser = argparse.ArgumentParser(description="training methods at convergence, MNIST-5k")
parser.add_argument("--quick", action="store_true",
                    help="three methods, a 2 s budget each, 2,000 training images")
parser.add_argument("--out", type=Path, default=Path("demos/out/adversarial_training"),
                    help="folder of the results and of each method's run (a rerun continues)")
parser.add_argument("--eps", type=float, default=0.1)
args, _ = parser.parse_known_args()
settings = DEMO_QUICK if args.quick else DEMO_FULL

# %% [markdown]
# ## The plan
# Each row is a method from `npadv.methods` with its paper's settings and the claim its
# paper makes: 8 epochs each, where the reference's check has levelled off. Free-8
# replays each minibatch 8 times, so its 6 passes over the data are 48 of its epochs.

# %%
entries = demo_plan(args.quick)
for e in entries:
    print(f"{e.label:<24} {e.epochs or 'budget':>6}  {e.claim}")

# %% [markdown]
# ## Train and evaluate
# `compare` trains and evaluates each row in its own run folder under --out (an
# interrupted run continues from its last epoch), one row per CPU at a time (a row's time
# is its own CPU time, so this does not change it), and writes comparison.json and
# comparison.png: the per-epoch check against cumulative training time, with each row's
# final default-suite evaluation as a star.

# %%
data = demo_data(settings)
summary = compare(entries, data, eps=args.eps, budget=settings["budget"],
                  n_eval=settings["n_eval"], check_size=settings["check_size"],
                  attacks=suite(settings["suite"], args.eps), out=args.out, progress=True,
                  workers=available_cpus(),
                  title=demo_title(args.quick, len(data[0]), args.eps))

# %% [markdown]
# ## The table, and each paper's claim beside what was measured
# "Time to robustness" is the first cumulative training time at which the row's check
# came within 2 points of the reference's final check. A "time" claim counts as
# reproduced if that time is within twice the fraction of the reference's time the
# paper claims, and as partly reproduced if it is only faster than the reference.

# %%
report(summary, args.out)
print(f"\nwrote {args.out / 'comparison.json'}, {args.out / 'comparison.png'}")
