"""Attacks on a model's inputs and the evaluation of robustness.

    fgsm, fgm      one-step attacks (Goodfellow et al. 2015; Miyato et al. 2017)
    pgd            projected gradient descent with restarts (Madry et al. 2018)
    apgd           Auto-PGD (Croce & Hein 2020)
    apgd_targeted  APGD-T: APGD on the targeted DLR loss over the top classes (same paper)
    square         Square Attack, gradient-free random search (Andriushchenko et al. 2020)
    evaluate       clean / per-attack / worst-case robust accuracy, with masking checks;
                   by default the cascade APGD-CE, APGD-T, Square (SUITES, suite)
    Ball           the threat set S = ε-ball ∩ box: .project (Π_S), .sample, .contains
    project, random_start, steepest_step, norm_per_example   threat-model geometry
    ATTACKS        name -> AttackSpec, each attack's one declaration (registry.py)

Every attack takes (model, x (N, ...), y (N,), eps, ...) and returns adversarial inputs of
x's shape and dtype inside the ε-ball and the box [lo, hi]; none changes the model's
parameters, their .grad, its train/eval mode, or the caller's arrays.

The threat set goes in one of two forms, the same attack bit for bit: the radius eps with
the attack's norm, lo and hi, or eps given as a Ball, which carries all four:

    pgd(model, x, y, 0.1, steps=20, norm="l2", lo=0.0, hi=1.0)
    pgd(model, x, y, Ball(0.1, "l2", lo=0.0, hi=1.0), steps=20)

With a Ball, leave norm, lo and hi at their defaults (or give the ball's own values): one
that disagrees with the ball raises ValueError, as does a ball in a norm the attack does
not support (ATTACKS[name].norms).
"""
from .apgd import apgd, checkpoints
from .apgd_targeted import apgd_targeted, dlr_targeted_loss
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
from .evaluate import (
    ATTACKS,
    SUITES,
    AccuracyCurve,
    Attack,
    EvalReport,
    evaluate,
    robust_accuracy_curve,
    suite,
)
from .fgsm import fgm, fgsm, l2_normalize
from .gradients import correct, input_gradient, predict
from .losses import LOSSES, ce_loss, cw_loss, dlr_loss, get_loss
from .pgd import pgd
from .projections import Ball, norm_per_example, project, random_start, steepest_step
from .registry import AttackSpec
from .square import square

__all__ = [
    "Ball", "AttackSpec", "project", "random_start", "steepest_step", "norm_per_example",
    "fgsm", "fgm", "l2_normalize", "pgd", "apgd", "checkpoints", "square",
    "apgd_targeted", "dlr_targeted_loss",
    "ce_loss", "cw_loss", "dlr_loss", "LOSSES", "get_loss", "input_gradient", "predict", "correct",
    "Attack", "ATTACKS", "evaluate", "EvalReport", "robust_accuracy_curve", "AccuracyCurve",
    "SUITES", "suite", "check_attack_gradients", "check_ce_vs_margin", "check_gradient_free",
    "GradientMaskingWarning", "check_gradients", "check_eps_monotone", "check_pgd_vs_fgsm",
    "check_more_effort", "check_whole_box",
]
