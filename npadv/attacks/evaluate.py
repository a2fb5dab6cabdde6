"""Robustness evaluation: clean accuracy, per-attack accuracy and the per-example worst case.

The evaluation standard of Madry et al., ICLR 2018, and Croce & Hein, ICML 2020: an
example counts as robust only if it is classified correctly when clean AND under every
attack in the list (the worst case per example, not the best attack on average):

    robust_i = correct(x_i) ∧ ⋀_a correct(a(x_i))

The default is a cascade in the spirit of AutoAttack's standard suite (Croce & Hein 2020),
each stage run only on the examples every earlier stage left correct:

    1: APGD-CE        apgd, cross-entropy, 100 steps
    2: APGD-T         apgd_targeted, targeted DLR over the 9 most likely other classes
    3: Square         square, gradient-free, 5000 queries (no gradient masking fools it)

The DLR loss of stage 2 ignores the scale of the logits and stage 3 uses no gradient, so
neither a saturated softmax nor a masked gradient inflates the worst case. SUITES holds
this "standard" suite and a "quick" one with smaller budgets for short runs.

Attacks can also be given as specs, `Attack("pgd", eps=0.1, steps=40, restarts=5)`, naming
a registered attack and its settings; each then runs on every clean-correct example
(cascade=True runs them as a cascade instead). The model is put in eval mode for the
evaluation and its previous modes are restored afterwards. Inputs are processed in batches
of `batch_size`, so memory stays bounded. The gradient-masking checks of checks.py run on
the first batch, on the loss each attack actually followed and across the attacks, and are
issued as GradientMaskingWarning.

ATTACKS maps each name to the attack's declaration (registry.AttackSpec, made beside its
function), registered below with one line per attack. Attack reads its options and the loss
it follows from there, and the checks the margin loss that stands in for cross-entropy.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn import evaluating
from .apgd import APGD
from .apgd_targeted import APGD_T
from .arguments import check_attack_inputs
from .checks import (
    GradientMaskingWarning,
    check_attack_gradients,
    check_ce_vs_margin,
    check_eps_monotone,
    check_gradient_free,
    check_gradients,
    check_more_effort,
    check_pgd_vs_fgsm,
    check_whole_box,
)
from .fgsm import FGM, FGSM
from .gradients import correct, predict
from .pgd import PGD
from .registry import AttackSpec, registry
from .square import SQUARE

# name -> declaration, one registration per attack (each declared beside its function)
ATTACKS: dict[str, AttackSpec] = registry(
    FGSM,               # fgsm.py
    FGM,                # fgsm.py
    PGD,                # pgd.py
    APGD,               # apgd.py
    APGD_T,             # apgd_targeted.py
    SQUARE,             # square.py
)

# Named cascades of L∞ attacks: name -> ((attack name, options), ...), run at one ε.
# early_stop: a stage only has to say which examples it misclassifies, and with it APGD
# stops iterating on an example at its first misclassified iterate (the same examples are
# misclassified; see apgd and apgd_targeted). Square stops at the first one anyway.
SUITES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "standard": (("apgd", {"loss": "ce", "steps": 100, "early_stop": True}),
                 ("apgd-t", {"steps": 100, "n_targets": 9, "early_stop": True}),
                 ("square", {"n_queries": 5000})),
    "quick": (("apgd", {"loss": "ce", "steps": 25, "early_stop": True}),
              ("apgd-t", {"steps": 25, "n_targets": 3, "early_stop": True}),
              ("square", {"n_queries": 500})),
}
MARGIN_LOSSES = ("cw", "dlr")


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
        allowed = ATTACKS[name].options
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"{name} has no option(s) {unknown}; its options are {allowed}")
        self.name, self.eps, self.options = name, float(eps), dict(options)

    @property
    def spec(self) -> AttackSpec:
        """The attack's declaration (registry.py)."""
        return ATTACKS[self.name]

    def get(self, option: str, default: Any = None) -> Any:
        """The value of an option: as given, else the function's default, else `default`."""
        if option == "eps":
            return self.eps
        if option in self.options:
            return self.options[option]
        return self.spec.default(option, default)

    def settings(self, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """All options with defaults filled in (eps included), minus `exclude`."""
        return {p: self.get(p) for p in ["eps", *self.spec.options] if p not in exclude}

    def with_eps(self, eps: float) -> Attack:
        return Attack(self.name, eps, **self.options)

    def run(self, model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Adversarial inputs (N, ...) for x (N, ...), y (N,)."""
        return self.spec.run(model, x, y, self.eps, **self.options)

    @property
    def loss(self) -> str | None:
        """The loss whose input gradient the attack follows: the `loss` option if it has
        one, else its declared loss; None for a gradient-free one. (APGD-T follows the
        targeted DLR loss; its declaration names the untargeted form, which stands in.)"""
        if self.spec.gradient_free:
            return None
        return self.get("loss", self.spec.default_loss)

    @property
    def label(self) -> str:
        opts = "".join(f", {k}={v}" for k, v in self.options.items())
        return f"{self.name}(eps={self.eps:g}{opts})"

    def __repr__(self) -> str:
        return f"Attack({self.label})"


@dataclass
class EvalReport:
    """Result of `evaluate`. Accuracies are fractions in [0, 1].

    attack_accuracy maps each attack's label to the share of examples correct when clean
    and under that attack; in a cascade, under that stage and every earlier one (so the
    values fall stage by stage and the last one is robust_accuracy).
    """

    n: int
    clean_accuracy: float
    robust_accuracy: float
    attack_accuracy: dict[str, float]
    robust: np.ndarray                     # (N,) bool, robust under every attack
    warnings: list[str] = field(default_factory=list)
    cascade: bool = False

    def __str__(self) -> str:
        rows = [f"clean accuracy   {self.clean_accuracy:7.2%}  (n = {self.n})"]
        prefix = "after " if self.cascade else ""
        rows += [f"  {prefix + label:<56s} {acc:7.2%}"
                 for label, acc in self.attack_accuracy.items()]
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


def suite(name: str, eps: float, lo: float | None = 0.0, hi: float | None = 1.0,
          seed: int = 0) -> list[Attack]:
    """The attacks of the named suite (SUITES) at L∞ radius eps, box [lo, hi], seeded."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {sorted(SUITES)}")
    return [Attack(attack, eps, **options, lo=lo, hi=hi, rng=seed)
            for attack, options in SUITES[name]]


def _unique_labels(attacks: Sequence[Attack]) -> list[str]:
    labels: list[str] = []
    for a in attacks:
        label, i = a.label, 2
        while label in labels:
            label, i = f"{a.label} #{i}", i + 1
        labels.append(label)
    return labels


def _margin_twin(attack: Attack, num_classes: int) -> Attack | None:
    """The same attack with its declared margin loss instead of cross-entropy, if it has
    one and the model has the classes that loss needs."""
    spec = attack.spec
    if attack.loss != "ce" or spec.margin_loss is None or num_classes < spec.margin_min_classes:
        return None
    return Attack(attack.name, attack.eps, **{**attack.options, "loss": spec.margin_loss})


def _run_checks(model, x, y, attacks, accuracies, ran_on, first, cascade, tol, margin_tol
                ) -> list[str]:
    """All gradient-masking checks that the first batch x, y and the attacks allow.

    accuracies: each attack's accuracy over the evaluation (cumulative in a cascade);
    ran_on: for each attack, the indices of x it ran on (in a cascade, those still robust);
    first: (attacks, len(x)) bool, correct under each attack on the first batch.
    """
    messages = check_gradients(model, x, y)                                   # (a)
    checked = set()
    for attack, idx in zip(attacks, ran_on, strict=True):                    # (f)
        if attack.loss is not None and attack.loss not in checked and idx.size:
            checked.add(attack.loss)
            messages += check_attack_gradients(model, x[idx], y[idx], attack.loss,
                                               attack.label)
    if cascade:                                                               # (g), (h)
        for i, (ce, acc_ce) in enumerate(zip(attacks, accuracies, strict=True)):
            if ce.loss != "ce":
                continue
            for margin, acc_margin in zip(attacks[i + 1:], accuracies[i + 1:], strict=True):
                if margin.loss in MARGIN_LOSSES:
                    messages += check_ce_vs_margin(ce.label, acc_ce, margin.label, acc_margin,
                                                   margin_tol, cascade=True)
                    break
        grad = [i for i, a in enumerate(attacks) if a.loss is not None]
        free = [i for i, a in enumerate(attacks) if a.loss is None]
        if grad and free and max(free) > max(grad):
            last = max(grad)
            messages += check_gradient_free(attacks[last].label, accuracies[last],
                                            attacks[max(free)].label, accuracies[max(free)],
                                            margin_tol)
    else:
        results = list(zip(attacks, accuracies, strict=True))
        messages += check_pgd_vs_fgsm(results, tol) + check_more_effort(results, tol)
        num_classes = predict(model, x[:1]).shape[1]
        twins_run = set()
        for attack, idx, ok in zip(attacks, ran_on, first, strict=True):     # (g)
            twin = _margin_twin(attack, num_classes)
            if twin is None or twin.label in twins_run or not idx.size:
                continue
            twins_run.add(twin.label)
            ok_margin = correct(model, twin.run(model, x[idx], y[idx]), y[idx])
            messages += check_ce_vs_margin(attack.label, ok.mean(), twin.label,
                                           ok_margin.sum() / len(x), margin_tol)
    lo, hi = (attacks[0].get("lo"), attacks[0].get("hi")) if attacks else (None, None)
    if lo is not None and hi is not None:                                     # (d)
        messages += check_whole_box(model, x, y, lo, hi)
    return messages


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="evaluate", unit="batch")


def evaluate(model, x: np.ndarray, y: np.ndarray, attacks: Sequence[Attack] | str = "standard",
             eps: float | None = None, batch_size: int = 256, progress: bool = False,
             checks: bool = True, tol: float = 0.02, margin_tol: float = 0.03,
             cascade: bool | None = None,
             on_batch: Callable[[int, float], None] | None = None,
             workers: int = 1) -> EvalReport:
    """Clean, per-attack and robust (worst case over all attacks) accuracy.

    Args:
        model: callable Tensor (N, ...) -> logits (N, K); evaluated in eval mode (restored).
        x: (N, ...) float inputs in [0, 1] for a named suite; y: (N,) int labels.
        attacks: a suite name from SUITES ("standard", the default, or "quick"), run as a
            cascade at L∞ radius eps in the box [0, 1] (for another box pass
            suite(name, eps, lo, hi) with cascade=True); or Attack specs ([] for clean
            accuracy only).
        eps: the radius for a named suite (required then; Attack specs carry their own).
        batch_size: examples per batch (bounds memory).
        progress: show a tqdm progress bar.
        checks: run the gradient-masking checks (on the first batch, and across attacks).
        tol: slack, in accuracy, for the checks that compare two accuracies.
        margin_tol: how many more points a cross-entropy attack may leave robust than a
            margin-loss one (and gradient attacks than a gradient-free one) before a warning.
        cascade: run each attack only on the examples all earlier ones left correct
            (default: True for a suite, False for Attack specs).
        on_batch: called after each batch as on_batch(examples done, seconds since the
            start), e.g. to estimate the time left from the first batch.
        workers: processes that attack the batches side by side (each with one BLAS
            thread); the results are the same as with 1, example for example.

    Returns:
        EvalReport; robust_accuracy ≤ each attack's accuracy ≤ clean_accuracy.
    """
    if isinstance(attacks, str):
        if eps is None:
            raise ValueError(f"the {attacks!r} suite needs eps (the L∞ radius)")
        attacks = suite(attacks, eps)
        cascade = True if cascade is None else cascade
    elif eps is not None:
        raise ValueError("eps goes with a suite name; Attack specs carry their own eps")
    x, y = check_attack_inputs(model, x, y)
    if len(x) == 0:
        raise ValueError("evaluate needs at least one example: the accuracy of an empty set "
                         "is undefined")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    attacks = list(attacks)
    for a in attacks:
        if not isinstance(a, Attack):
            raise TypeError(f"attacks must be Attack specs, got {type(a).__name__}")
    cascade = bool(cascade)
    workers = check_workers(workers)
    n = len(x)
    clean = np.zeros(n, dtype=bool)
    under = np.zeros((len(attacks), n), dtype=bool)
    ran_on: list[np.ndarray] = []                  # first batch: where each attack ran
    bar = _progress(-(-n // batch_size), progress)
    start = time.perf_counter()
    starts = range(0, n, batch_size)
    done = 0
    with evaluating(model):
        for s, (clean_b, under_b, ran_on_b) in _batches(model, x, y, attacks, cascade,
                                                         starts, batch_size, workers):
            clean[s:s + batch_size], under[:, s:s + batch_size] = clean_b, under_b
            if s == 0:
                ran_on = ran_on_b
            done += len(clean_b)
            if bar is not None:
                bar.update(1)
            if on_batch is not None:
                on_batch(done, time.perf_counter() - start)
        accuracies = [float(u.mean()) if n else 0.0 for u in under]
        messages = (_run_checks(model, x[:batch_size], y[:batch_size], attacks, accuracies,
                                ran_on, under[:, :batch_size], cascade, tol, margin_tol)
                    if checks and n else [])
    if bar is not None:
        bar.close()
    for m in messages:
        warnings.warn(m, GradientMaskingWarning, stacklevel=2)
    robust = clean & under.all(axis=0)
    return EvalReport(n=n, clean_accuracy=float(clean.mean()) if n else 0.0,
                      robust_accuracy=float(robust.mean()) if n else 0.0,
                      attack_accuracy=dict(zip(_unique_labels(attacks), accuracies, strict=True)),
                      robust=robust, warnings=messages, cascade=cascade)


def attack_batch(model, xb: np.ndarray, yb: np.ndarray, attacks: Sequence[Attack],
                 cascade: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One batch of the evaluation: (clean (B,), under (attacks, B), ran_on), where ran_on
    holds, per attack, the indices of the batch it ran on. The model is in eval mode."""
    clean = alive = correct(model, xb, yb)
    under = np.zeros((len(attacks), len(xb)), dtype=bool)
    ran_on = []
    for i, attack in enumerate(attacks):
        idx = np.flatnonzero(alive if cascade else clean)
        ran_on.append(idx)
        ok = np.zeros(len(xb), dtype=bool)
        if idx.size:
            ok[idx] = correct(model, attack.run(model, xb[idx], yb[idx]), yb[idx])
        under[i] = ok
        if cascade:
            alive = ok
    return clean, under, ran_on


def _attack_batch_in_eval_mode(model, xb, yb, attacks, cascade):
    with evaluating(model):
        return attack_batch(model, xb, yb, attacks, cascade)


def check_workers(workers) -> int:
    """workers as an int >= 1; ValueError otherwise."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return int(workers)


def _batches(model, x, y, attacks, cascade, starts, batch_size, workers):
    """Yield (start, attack_batch's results) for each batch, in order of completion.

    With workers > 1 the batches are dealt round-robin to that many worker processes
    (npadv.workers), each with one BLAS thread: several multi-threaded BLAS on a few cores
    slow each other down. Each batch is the same batch with the same seeded attacks
    wherever it runs, so the results are those of workers = 1, example for example.
    """
    if workers == 1 or len(starts) == 1:
        for s in starts:
            yield s, attack_batch(model, x[s:s + batch_size], y[s:s + batch_size], attacks,
                                  cascade)
        return
    from ..workers import run_in_workers

    jobs = [(s, (model, x[s:s + batch_size], y[s:s + batch_size], attacks, cascade))
            for s in starts]
    yield from run_in_workers(_attack_batch_in_eval_mode, jobs, workers)


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
    report = evaluate(model, x, y, [template.with_eps(e) for e in eps], batch_size=batch_size,
                      progress=progress, checks=False)
    accuracy = np.array(list(report.attack_accuracy.values()))
    messages = check_eps_monotone(eps, accuracy, tol)
    for m in messages:
        warnings.warn(m, GradientMaskingWarning, stacklevel=2)
    return AccuracyCurve(eps=eps, accuracy=accuracy, clean_accuracy=report.clean_accuracy,
                         warnings=messages)
