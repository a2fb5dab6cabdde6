"""Robustness evaluation: clean accuracy, per-attack accuracy and the per-example worst case.

The evaluation standard of Madry et al., ICLR 2018, and Croce & Hein, ICML 2020: an
example counts as robust only if it is classified correctly when clean AND under every
attack in the list (the worst case per example, not the best attack on average):

    robust_i = correct(x_i) ∧ ⋀_a correct(a(x_i))

Attacks are given as specs, `Attack("pgd", eps=0.1, steps=40, restarts=5)`, naming a
function of npadv.attacks and its settings. The model is put in eval mode for the
evaluation and its previous modes are restored afterwards. Inputs are processed in batches
of `batch_size`, so memory stays bounded. The gradient-masking checks of checks.py run on
the first batch (and over the list of attacks) and are issued as GradientMaskingWarning.
"""
from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from .apgd import apgd
from .checks import (GradientMaskingWarning, check_eps_monotone, check_gradients,
                     check_more_effort, check_pgd_vs_fgsm, check_whole_box)
from .fgsm import fgm, fgsm
from .losses import check_attack_inputs, correct
from .pgd import pgd

ATTACKS = {"fgsm": fgsm, "fgm": fgm, "pgd": pgd, "apgd": apgd}


class Attack:
    """An attack function by name with its settings; `.run(model, x, y)` applies it.

        Attack("fgsm", eps=0.3)
        Attack("pgd", eps=0.3, steps=40, restarts=5, rng=0)
        Attack("apgd", eps=0.3, loss="dlr")

    Unknown names and options are rejected here, not in the middle of an evaluation.
    """

    def __init__(self, name: str, eps: float, **options: Any):
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; choose from {sorted(ATTACKS)}")
        allowed = [p for p in inspect.signature(ATTACKS[name]).parameters
                   if p not in ("model", "x", "y", "eps", "return_loss")]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"{name} has no option(s) {unknown}; its options are {allowed}")
        self.name, self.eps, self.options = name, float(eps), dict(options)

    def get(self, option: str, default: Any = None) -> Any:
        """The value of an option: as given, else the function's default, else `default`."""
        if option == "eps":
            return self.eps
        if option in self.options:
            return self.options[option]
        param = inspect.signature(ATTACKS[self.name]).parameters.get(option)
        return default if param is None or param.default is inspect.Parameter.empty \
            else param.default

    def settings(self, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """All options with defaults filled in (eps included), minus `exclude`."""
        params = inspect.signature(ATTACKS[self.name]).parameters
        names = [p for p in params if p not in ("model", "x", "y", "return_loss")]
        return {p: self.get(p) for p in names if p not in exclude}

    def with_eps(self, eps: float) -> "Attack":
        return Attack(self.name, eps, **self.options)

    def run(self, model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Adversarial inputs (N, ...) for x (N, ...), y (N,)."""
        return ATTACKS[self.name](model, x, y, self.eps, **self.options)

    @property
    def label(self) -> str:
        opts = "".join(f", {k}={v}" for k, v in self.options.items())
        return f"{self.name}(eps={self.eps:g}{opts})"

    def __repr__(self) -> str:
        return f"Attack({self.label})"


@dataclass
class EvalReport:
    """Result of `evaluate`. Accuracies are fractions in [0, 1]."""

    n: int
    clean_accuracy: float
    robust_accuracy: float
    attack_accuracy: dict[str, float]      # attack label -> accuracy (clean-correct and
                                           # correct under that attack)
    robust: np.ndarray                     # (N,) bool, robust under every attack
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        rows = [f"clean accuracy   {self.clean_accuracy:7.2%}  (n = {self.n})"]
        rows += [f"  {label:<50s} {acc:7.2%}" for label, acc in self.attack_accuracy.items()]
        rows.append(f"robust accuracy  {self.robust_accuracy:7.2%}  (worst case per example)")
        rows += [f"warning: {w}" for w in self.warnings]
        return "\n".join(rows)


@dataclass
class AccuracyCurve:
    """Robust accuracy against ε (`robust_accuracy_curve`)."""

    eps: np.ndarray                        # (E,) float
    accuracy: np.ndarray                   # (E,) float in [0, 1]
    clean_accuracy: float
    warnings: list[str] = field(default_factory=list)


@contextmanager
def eval_mode(model) -> Iterator[None]:
    """Put every submodule in eval mode; restore each one's own flag on exit."""
    modules = list(model.modules()) if hasattr(model, "modules") else []
    saved = [(m, m.training) for m in modules]
    for m in modules:
        m.training = False
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def _unique_labels(attacks: Sequence[Attack]) -> list[str]:
    labels: list[str] = []
    for a in attacks:
        label, i = a.label, 2
        while label in labels:
            label, i = f"{a.label} #{i}", i + 1
        labels.append(label)
    return labels


def _run_checks(model, x, y, attacks, accuracies, tol) -> list[str]:
    """All gradient-masking checks that the given data and attacks allow."""
    results = list(zip(attacks, accuracies))
    messages = check_gradients(model, x, y)
    messages += check_pgd_vs_fgsm(results, tol) + check_more_effort(results, tol)
    lo, hi = (attacks[0].get("lo"), attacks[0].get("hi")) if attacks else (None, None)
    if lo is not None and hi is not None:
        messages += check_whole_box(model, x, y, lo, hi)
    return messages


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="evaluate", unit="attack-batch")


def evaluate(model, x: np.ndarray, y: np.ndarray, attacks: Sequence[Attack] = (),
             batch_size: int = 256, progress: bool = False, checks: bool = True,
             tol: float = 0.02) -> EvalReport:
    """Clean, per-attack and robust (worst case over all attacks) accuracy.

    Args:
        model: callable Tensor (N, ...) -> logits (N, K); evaluated in eval mode (restored).
        x: (N, ...) float inputs; y: (N,) int labels.
        attacks: Attack specs; each runs on every example.
        batch_size: examples per batch (bounds memory).
        progress: show a tqdm progress bar.
        checks: run the gradient-masking checks (on the first batch, and across attacks).
        tol: slack, in accuracy, for the checks that compare two accuracies.

    Returns:
        EvalReport; robust_accuracy ≤ each attack's accuracy ≤ clean_accuracy.
    """
    x, y, _, _ = check_attack_inputs(model, x, y, 0.0)
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    attacks = list(attacks)
    for a in attacks:
        if not isinstance(a, Attack):
            raise TypeError(f"attacks must be Attack specs, got {type(a).__name__}")
    n = len(x)
    clean = np.zeros(n, dtype=bool)
    under = np.zeros((len(attacks), n), dtype=bool)
    bar = _progress(-(-n // batch_size) * max(len(attacks), 1), progress)
    with eval_mode(model):
        for s in range(0, n, batch_size):
            xb, yb = x[s:s + batch_size], y[s:s + batch_size]
            clean[s:s + batch_size] = correct(model, xb, yb)
            for i, attack in enumerate(attacks):
                under[i, s:s + batch_size] = correct(model, attack.run(model, xb, yb), yb)
                if bar is not None:
                    bar.update(1)
        under &= clean
        accuracies = [float(u.mean()) if n else 0.0 for u in under]
        messages = (_run_checks(model, x[:batch_size], y[:batch_size], attacks, accuracies,
                                tol) if checks and n else [])
    if bar is not None:
        bar.close()
    for m in messages:
        warnings.warn(m, GradientMaskingWarning, stacklevel=2)
    robust = clean & under.all(axis=0)
    return EvalReport(n=n, clean_accuracy=float(clean.mean()) if n else 0.0,
                      robust_accuracy=float(robust.mean()) if n else 0.0,
                      attack_accuracy=dict(zip(_unique_labels(attacks), accuracies)),
                      robust=robust, warnings=messages)


def robust_accuracy_curve(model, x: np.ndarray, y: np.ndarray, eps_list: Sequence[float],
                          attack: Attack | str = "pgd", batch_size: int = 256,
                          progress: bool = False, tol: float = 0.02) -> AccuracyCurve:
    """Robust accuracy of one attack at each ε in eps_list, with check (b) on the curve.

    attack: an Attack whose ε is replaced by each value, or a name (default settings).
    Returns AccuracyCurve(eps (E,), accuracy (E,), clean_accuracy, warnings).
    """
    template = attack if isinstance(attack, Attack) else Attack(attack, eps=0.0)
    eps = np.asarray(eps_list, dtype=float)
    if eps.ndim != 1 or not eps.size:
        raise ValueError(f"eps_list must be a non-empty 1-D sequence, got {eps_list!r}")
    report = evaluate(model, x, y, [template.with_eps(e) for e in eps], batch_size, progress,
                      checks=False)
    accuracy = np.array(list(report.attack_accuracy.values()))
    messages = check_eps_monotone(eps, accuracy, tol)
    for m in messages:
        warnings.warn(m, GradientMaskingWarning, stacklevel=2)
    return AccuracyCurve(eps=eps, accuracy=accuracy, clean_accuracy=report.clean_accuracy,
                         warnings=messages)
