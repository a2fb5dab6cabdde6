"""What the comparison runs: its rows (each method with its paper's claim), the PGD-AT
reference, the evaluation cascade, and the settings of `npadv demo`.

Two kinds of plan. "converge" gives every method a fixed number of epochs, enough for its
per-epoch robustness check to level off, and judges each paper's claim by time to
robustness against a PGD-7-AT reference trained the same way (the full `npadv demo`,
demos/fashion_mnist.py). "quick" gives each method the same short wall-clock budget
(`npadv demo --quick`): it ranks how much robustness a few seconds buy.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..attacks.evaluate import Attack
from ..methods import method_class


@dataclass
class Entry:
    """One row: a label, a method with its flags, and either a budget or fixed epochs."""

    label: str
    method: str
    flags: dict = field(default_factory=dict)
    epochs: int | None = None         # fixed epochs (as TrainConfig counts them: Free-m's
                                      # are divided by m); None: as many as fit the budget
    claim: str = ""                   # the paper's claim, as it bears on this comparison
    reference: bool = False           # the row the others are measured against


def claim(name: str) -> str:
    """The paper's claim as its method declares it, with the paper's first author and year."""
    cls = method_class(name)
    first, year = cls.paper.split(",")[0].removesuffix(" et al."), cls.paper.split()[-1]
    return f"{first} et al. {year}: {cls.claim}"


CLAIMS = {name: claim(name) for name in ("fast", "free", "yopo", "trades", "freelb", "pgd")}

PLANS = {
    "full": [
        Entry("natural", "natural"),
        Entry("Fast AT", "fast", claim=CLAIMS["fast"]),
        Entry("PGD-7-AT", "pgd", {"steps": 7}, claim=CLAIMS["pgd"]),
        Entry("Free-8", "free", {"replays": 8}, claim=CLAIMS["free"]),
        Entry("YOPO-5-3", "yopo", {"yopo_m": 5, "yopo_n": 3}, claim=CLAIMS["yopo"]),
        Entry("FreeLB-3", "freelb", {"freelb_k": 3}, claim=CLAIMS["freelb"]),
        Entry("TRADES", "trades", {"steps": 7}, claim=CLAIMS["trades"]),
    ],
    "quick": [
        Entry("natural", "natural"),
        Entry("Fast AT", "fast", claim=CLAIMS["fast"]),
        Entry("Free-4", "free", {"replays": 4}, claim=CLAIMS["free"]),
    ],
}


def reference(epochs: int, steps: int = 7) -> Entry:
    """PGD-AT trained for a fixed number of epochs: the row the others are measured against."""
    return Entry(f"PGD-{steps}-AT, {epochs} ep (reference)", "pgd", {"steps": steps},
                 epochs=epochs, claim=CLAIMS["pgd"], reference=True)


def converge(epochs: int, free_passes: int | None = None, replays: int = 8) -> list[Entry]:
    """Every image method for `epochs` epochs, the PGD-7-AT reference last.

    Free-m runs `free_passes` passes over the data (default: epochs), each replaying every
    minibatch m times, so its TrainConfig epochs are m·free_passes (the paper's protocol
    is N/m passes for a budget of N natural epochs; here it gets as many passes as the
    others, so that its curve, not the budget, shows when it gets there).
    """
    passes = epochs if free_passes is None else free_passes
    return [
        Entry("natural", "natural", epochs=epochs),
        Entry("FGSM-AT", "fgsm", epochs=epochs),
        Entry("Fast AT", "fast", epochs=epochs, claim=CLAIMS["fast"]),
        Entry(f"Free-{replays}", "free", {"replays": replays}, epochs=replays * passes,
              claim=CLAIMS["free"]),
        Entry("YOPO-5-3", "yopo", {"yopo_m": 5, "yopo_n": 3}, epochs=epochs,
              claim=CLAIMS["yopo"]),
        Entry("FreeLB-3", "freelb", {"freelb_k": 3}, epochs=epochs, claim=CLAIMS["freelb"]),
        Entry("TRADES", "trades", {"steps": 7}, epochs=epochs, claim=CLAIMS["trades"]),
        Entry("PGD-7-AT (reference)", "pgd", {"steps": 7}, epochs=epochs, claim=CLAIMS["pgd"],
              reference=True),
    ]


def evaluation(eps: float, pgd_steps: int = 40, restarts: int = 2, apgd_steps: int = 50,
               seed: int = 0) -> list[Attack]:
    """The cascade every row is evaluated by: PGD with restarts, APGD-CE, APGD-DLR."""
    return [Attack("pgd", eps, steps=pgd_steps, restarts=restarts, rng=seed, early_stop=True),
            Attack("apgd", eps, steps=apgd_steps, loss="ce", rng=seed),
            Attack("apgd", eps, steps=apgd_steps, loss="dlr", rng=seed)]


DEMO_METHODS = tuple(e.method for e in converge(1))    # the methods `npadv demo` can run


def demo_plan(quick: bool, methods: list[str] | None = None) -> list[Entry]:
    """The rows of `npadv demo`: every method at convergence with DEMO_FULL's epochs, or
    under quick PLANS["quick"] at DEMO_QUICK's budget; with `methods` (registry names from
    DEMO_METHODS), only those, at the same settings. The reference comes last, always.
    ValueError for a method the demo does not run."""
    unknown = sorted(set(methods or ()) - set(DEMO_METHODS))
    if unknown:
        raise ValueError(f"unknown demo method(s) {unknown}; choose from {sorted(DEMO_METHODS)}")
    if quick:
        rows = PLANS["quick"] if not methods else [
            replace(e, epochs=None) for e in converge(1) if not e.reference]
        ref = reference(DEMO_QUICK["reference_epochs"], DEMO_QUICK["reference_steps"])
    else:
        *rows, ref = converge(DEMO_FULL["epochs"], DEMO_FULL["free_passes"])
    return [*(e for e in rows if not methods or e.method in methods), ref]


def demo_title(quick: bool, n_train: int, eps: float) -> str:
    """The title of `npadv demo`'s table and plot."""
    what = (f"{DEMO_QUICK['budget']:g} s of training each" if quick else
            f"{DEMO_FULL['epochs']} epochs each (Free-8: {DEMO_FULL['free_passes']} passes)")
    return f"MNIST-5k ({n_train:,} train), small_cnn, L∞ ε = {eps}, {what}"


DEMO_FULL = {"n_train": 4000, "epochs": 8, "free_passes": 6, "budget": None,
             "n_eval": 100, "check_size": 200, "suite": "standard"}
DEMO_QUICK = {"n_train": 2000, "budget": 2.0, "reference_epochs": 4, "reference_steps": 2,
              "n_eval": 100, "check_size": 100, "suite": "quick"}
