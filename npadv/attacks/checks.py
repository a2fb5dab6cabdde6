"""Red flags for gradient masking: signs that an evaluation's robust accuracy is not credible.

Athalye, Carlini, Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018
(Section 3.1 lists the symptoms), and Croce & Hein, ICML 2020 (the checks of their
auto-attack code). Each function returns a list of messages, empty when nothing is wrong:

    (a) check_gradients       input gradients exactly zero or NaN for many examples
    (b) check_eps_monotone    robust accuracy rises with ε
    (c) check_pgd_vs_fgsm     an iterative attack does worse than single-step FGSM
    (d) check_whole_box       accuracy at an ε covering the whole box is not near zero
    (e) check_more_effort     more steps, restarts or a larger ε raise accuracy
    (f) check_attack_gradients  the gradient of the loss an attack actually followed is
                              exactly zero or non-finite for many examples
    (g) check_ce_vs_margin    a cross-entropy attack leaves more than a few points of
                              examples that a margin-loss attack breaks
    (h) check_gradient_free   a gradient-free attack breaks more than a few points of
                              examples that the gradient attacks left robust

(f) and (g) catch what (a) cannot: with very large logits the softmax saturates, the
cross-entropy gradient underflows to exactly zero while the margin gradient is fine, and a
cross-entropy attack reports robustness that is not there.

The evaluation (evaluate.py) runs them and issues each message as a
GradientMaskingWarning. Accuracies here are fractions in [0, 1]; `tol` is the absolute
slack allowed for random-start noise.
"""
from __future__ import annotations

import numpy as np

from .gradients import NonFiniteGradient, input_gradient, predict
from .pgd import pgd


class GradientMaskingWarning(UserWarning):
    """The evaluation may overestimate robustness (gradients cannot be trusted)."""


def check_gradients(model, x: np.ndarray, y: np.ndarray, max_fraction: float = 0.05
                    ) -> list[str]:
    """(a) Fraction of examples whose input gradient is all zero or has a NaN/inf.

    The gradient is that of the margin loss max_{j≠y} z_j − z_y, which unlike the
    cross-entropy does not vanish when the softmax saturates. x: (N, ...); y: (N,).
    """
    if len(x) == 0:
        return []
    _, g, _ = input_gradient(model, x, y, "cw")
    flat = g.reshape(len(g), -1)
    bad = ~np.isfinite(flat).all(axis=1) | (flat == 0).all(axis=1)
    if bad.mean() > max_fraction:
        return [f"input gradients are zero or NaN for {bad.mean():.0%} of examples "
                f"(more than {max_fraction:.0%}): the model may mask its gradients "
                "(non-differentiable or saturating operations); gradient attacks are unreliable"]
    return []


def check_eps_monotone(eps, accuracy, tol: float = 0.02) -> list[str]:
    """(b) Robust accuracy must not rise with ε. eps, accuracy: sequences of equal length."""
    eps, accuracy = np.asarray(eps, dtype=float), np.asarray(accuracy, dtype=float)
    order = np.argsort(eps, kind="stable")
    e, a = eps[order], accuracy[order]
    rises = np.flatnonzero(a[1:] > a[:-1] + tol)
    return [f"robust accuracy rises with eps: {a[i]:.1%} at eps={e[i]:g} but {a[i + 1]:.1%} "
            f"at eps={e[i + 1]:g}; the attack is failing to optimise" for i in rises]


def check_pgd_vs_fgsm(results, tol: float = 0.02) -> list[str]:
    """(c) An iterative L∞ attack (pgd, apgd) at ε' ≥ ε must do at least as well as FGSM at ε.

    results: sequence of (attack, accuracy), attack with .name, .eps, .get(option), .label.
    """
    messages = []
    for one, acc_one in results:
        if one.name != "fgsm":
            continue
        for it, acc_it in results:
            if (it.name in ("pgd", "apgd") and it.get("norm") == "linf"
                    and it.eps >= one.eps and acc_it > acc_one + tol):
                messages.append(
                    f"{it.label} is weaker than {one.label} ({acc_it:.1%} vs {acc_one:.1%} "
                    "accuracy): a sign of masked or noisy gradients")
    return messages


_EFFORT = ("eps", "steps", "restarts")


def _effort(attack) -> tuple[float, ...]:
    """(ε, steps, restarts); a single-step attack counts as 1 step, 1 restart."""
    return tuple(float(attack.get(key, 1)) for key in _EFFORT)


def check_more_effort(results, tol: float = 0.02) -> list[str]:
    """(e), and (b) within one evaluation: for two runs of the same attack whose settings
    differ only in ε, steps or restarts, the one with no less of each must not have higher
    accuracy. results: sequence of (attack, accuracy)."""
    messages = []
    for weak, acc_weak in results:
        for strong, acc_strong in results:
            if strong is weak or strong.name != weak.name:
                continue
            if strong.settings(exclude=_EFFORT) != weak.settings(exclude=_EFFORT):
                continue
            more = [s >= w for s, w in zip(_effort(strong), _effort(weak), strict=True)]
            if all(more) and _effort(strong) != _effort(weak) and acc_strong > acc_weak + tol:
                messages.append(
                    f"{strong.label} gives higher accuracy than {weak.label} "
                    f"({acc_strong:.1%} vs {acc_weak:.1%}) despite a larger budget "
                    "(eps, steps or restarts): the attack is not converging")
    return messages


def check_whole_box(model, x: np.ndarray, y: np.ndarray, lo: float, hi: float,
                    max_accuracy: float = 0.1, steps: int = 20) -> list[str]:
    """(d) With ε = hi − lo (L∞) every input in the box is reachable, so a working attack
    drives accuracy to about zero. Runs PGD-`steps` (margin loss, no random start, so only
    the gradient can move the input) and complains if accuracy stays above max_accuracy."""
    if len(x) == 0:
        return []
    eps = float(hi - lo)
    x_adv = pgd(model, x, y, eps, steps=steps, random_start=False, loss="cw", early_stop=True,
                lo=lo, hi=hi)
    accuracy = float((predict(model, x_adv).argmax(axis=1) == y).mean())
    if accuracy > max_accuracy:
        return [f"accuracy is still {accuracy:.1%} under PGD-{steps} with eps={eps:g}, which "
                f"covers the whole box [{lo:g}, {hi:g}]: the gradients do not lead the attack"]
    return []


def _dead(g: np.ndarray) -> np.ndarray:
    """(N,) bool: the example's input gradient is all zero."""
    return (g.reshape(len(g), -1) == 0).all(axis=1)


def check_attack_gradients(model, x: np.ndarray, y: np.ndarray, loss: str, label: str,
                           max_fraction: float = 0.05) -> list[str]:
    """(f) Share of examples x (N, ...), y (N,) whose input gradient, for the loss `loss`
    the attack `label` followed, is exactly zero; a non-finite one is always reported.
    (Single zero entries are normal: adversarially trained ReLU models ignore many pixels.)
    Names the likely cause: overflowing logits; a saturated softmax when the margin
    gradient at the same points is alive; else operations without a useful gradient
    (rounding, quantisation)."""
    if len(x) == 0:
        return []
    try:
        _, g, logits = input_gradient(model, x, y, loss)
    except NonFiniteGradient as e:
        return [f"{label}: {e} (weights too large?): its robust accuracy is not credible"]
    dead = _dead(g)
    if dead.mean() <= max_fraction:
        return []
    head = (f"{label}: the input gradient of its {loss} loss is exactly zero "
            f"for {dead.mean():.0%} of the examples it attacked (more than {max_fraction:.0%})")
    if loss == "ce":
        _, g_margin, _ = input_gradient(model, x, y, "cw")
        if _dead(g_margin).mean() <= max_fraction:
            gap = np.sort(logits, axis=1)
            return [f"{head}, while the margin-loss gradient is alive: the softmax saturates "
                    f"(median top-2 logit gap {np.median(gap[:, -1] - gap[:, -2]):.3g}), so "
                    "cross-entropy attacks overestimate robustness; use a margin loss "
                    "(cw, dlr) or the default suite"]
    return [f"{head}: the model may mask its gradients (non-differentiable or quantising "
            "operations); gradient attacks are unreliable, trust only gradient-free ones"]


def check_ce_vs_margin(ce_label: str, ce_accuracy: float, margin_label: str,
                       margin_accuracy: float, tol: float = 0.03, cascade: bool = False
                       ) -> list[str]:
    """(g) A cross-entropy attack whose accuracy exceeds a margin-loss attack's on the same
    examples by more than `tol` (a few points) is a poor guide on this model; a saturated
    softmax is the usual cause. In a cascade the margin stage has already counted those
    examples, and the message says so."""
    if ce_accuracy <= margin_accuracy + tol:
        return []
    after = ("; the later stages of the cascade already count these examples"
             if cascade else "; margin-loss attacks (cw, dlr) and the default suite do not")
    return [f"{ce_label} leaves {ce_accuracy - margin_accuracy:.1%} more examples robust than "
            f"{margin_label} ({ce_accuracy:.1%} vs {margin_accuracy:.1%}): cross-entropy is a "
            "poor attack objective for this model (a saturated softmax, i.e. very large "
            "logits, or masked gradients are the usual causes), so a cross-entropy-only "
            f"evaluation overestimates its robustness{after}"]


def check_gradient_free(gradient_label: str, gradient_accuracy: float, free_label: str,
                        free_accuracy: float, tol: float = 0.03) -> list[str]:
    """(h) In a cascade, the gradient-free stage `free_label` should break almost nothing
    that the gradient stages (ending with `gradient_label`) left: if it lowers accuracy by
    more than `tol`, the gradients do not lead the attacks (Croce & Hein 2020)."""
    if gradient_accuracy <= free_accuracy + tol:
        return []
    return [f"{free_label}, which uses no gradients, broke {gradient_accuracy - free_accuracy:.1%} "
            f"of the examples that survived {gradient_label} ({gradient_accuracy:.1%} -> "
            f"{free_accuracy:.1%}): the model masks its gradients, so gradient attacks "
            "overestimate its robustness"]
