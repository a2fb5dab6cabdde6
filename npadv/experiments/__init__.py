"""Comparing training methods fairly: time to robustness, one strong evaluation.

    summary = compare(converge(15), load_mnist_5k(), eps=0.1, attacks=suite("standard", 0.1),
                      out="runs/compare")

The comparison behind `npadv demo` and the scripts in demos/. In a "converge" plan every
method trains for fixed epochs, long enough for its per-epoch PGD-10 check to level off,
and each row's time to robustness is the cumulative training time at which its check
first comes within 2 points of the PGD-7-AT reference's final check, over the
reference's own time to get there: the measure of the fast methods' papers. In a
budgeted plan ("quick") each method instead trains for as many epochs as fit the same
wall-clock budget (a few minibatches are timed first). Every trained model is then
evaluated by the same cascade (by default `npadv eval`'s suite: APGD-CE, APGD-T, Square,
each on the examples the earlier attacks left correctly classified), so a row's robust
accuracy is the per-example worst case. Beside each row stands its paper's claim and
whether this run reproduces it (each paper's claim is declared by its method's class).
With an output folder each row is a run folder, so an interrupted comparison continues.

Everything here takes plain arguments (no argparse Namespace), so the CLI, the demos and
user code call the same functions.

plans.py     the rows (Entry, PLANS, reference), the evaluation cascade, the demo's settings
compare.py   timing, training and evaluating each row; compare(); mnist_demo()
verdicts.py  each row's claim against the reference
report.py    the table and the plot
"""
from .compare import (
    compare,
    demo_data,
    epochs_for,
    mnist_demo,
    run_entry,
    seconds_per_epoch,
    slug,
)
from .plans import (
    CLAIMS,
    DEMO_FULL,
    DEMO_METHODS,
    DEMO_QUICK,
    PLANS,
    Entry,
    claim,
    converge,
    demo_plan,
    demo_title,
    evaluation,
    reference,
)
from .report import format_table, plot_comparison, report
from .verdicts import verdicts

__all__ = ["CLAIMS", "DEMO_FULL", "DEMO_METHODS", "DEMO_QUICK", "PLANS", "Entry", "claim",
           "compare", "converge", "demo_data", "demo_plan", "demo_title",
           "epochs_for", "evaluation", "format_table", "mnist_demo", "plot_comparison",
           "reference", "report", "run_entry", "seconds_per_epoch", "slug", "verdicts"]
