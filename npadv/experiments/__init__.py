"""Comparing training methods fairly: an equal wall-clock budget, one strong evaluation.

    summary = compare(PLANS["full"], load_mnist_5k(), eps=0.1, budget=20.0)

The comparison behind `npadv demo` and the scripts in demos/. Each method gets the same
wall-clock training budget: a few minibatches are timed first, and the method then trains
for as many epochs as fit in the budget (at least one), with the usual cosine schedule
over those epochs. A reference row, PGD-AT trained for a fixed number of epochs, shows
what convergence looks like. Every trained model is then evaluated by the same cascade
(`evaluation`): PGD-40 with restarts, then APGD-CE and APGD with the DLR loss, each on the
examples the earlier attacks left correctly classified, so a row's robust accuracy is the
per-example worst case. Beside each row stands its paper's claim and whether this run
reproduces it (each paper's claim is declared by its method's class).

Everything here takes plain arguments (no argparse Namespace), so the CLI, the demos and
user code call the same functions.

plans.py     the rows (Entry, PLANS, reference), the evaluation cascade, the demo's settings
compare.py   timing, training and evaluating each row; compare(); mnist_demo()
verdicts.py  each row's claim against the reference
report.py    the table and the plot
"""
from .compare import compare, demo_data, epochs_for, mnist_demo, run_entry, seconds_per_epoch
from .plans import CLAIMS, DEMO_FULL, DEMO_QUICK, PLANS, Entry, claim, evaluation, reference
from .report import format_table, plot_comparison, report
from .verdicts import verdicts

__all__ = ["CLAIMS", "DEMO_FULL", "DEMO_QUICK", "PLANS", "Entry", "claim", "compare", "demo_data",
           "epochs_for", "evaluation", "format_table", "mnist_demo", "plot_comparison",
           "reference", "report", "run_entry", "seconds_per_epoch", "verdicts"]
