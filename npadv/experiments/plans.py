"""What the comparison runs: its rows (each method with its paper's claim), the PGD-AT
reference, the evaluation cascade, and the settings of `npadv demo`."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..attacks.evaluate import Attack
from ..methods import method_class


@dataclass
class Entry:
    """One row: a label, a method with its flags, and either a budget or fixed epochs."""

    label: str
    method: str
    flags: dict = field(default_factory=dict)
    epochs: int | None = None         # fixed epochs (a reference row); None: the budget
    claim: str = ""                   # the paper's claim, as it bears on this comparison


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
                 epochs=epochs, claim=CLAIMS["pgd"])


def evaluation(eps: float, pgd_steps: int = 40, restarts: int = 2, apgd_steps: int = 50,
               seed: int = 0) -> list[Attack]:
    """The cascade every row is evaluated by: PGD with restarts, APGD-CE, APGD-DLR."""
    return [Attack("pgd", eps, steps=pgd_steps, restarts=restarts, rng=seed, early_stop=True),
            Attack("apgd", eps, steps=apgd_steps, loss="ce", rng=seed),
            Attack("apgd", eps, steps=apgd_steps, loss="dlr", rng=seed)]


DEMO_FULL = {"n_train": 4000, "budget": 20.0, "reference_epochs": 8, "reference_steps": 7,
             "n_eval": 500, "check_size": 200, "pgd_steps": 20, "restarts": 1, "apgd_steps": 25}
DEMO_QUICK = {"n_train": 2000, "budget": 2.0, "reference_epochs": 4, "reference_steps": 2,
              "n_eval": 100, "check_size": 100, "pgd_steps": 10, "restarts": 1,
              "apgd_steps": 10}
