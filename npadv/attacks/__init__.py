"""Attacks on a model's inputs and the evaluation of robustness.

    fgsm, fgm      one-step attacks (Goodfellow et al. 2015; Miyato et al. 2017)
    pgd            projected gradient descent with restarts (Madry et al. 2018)
    apgd           Auto-PGD (Croce & Hein 2020)
    apgd_targeted  APGD-T: APGD on the targeted DLR loss over the top classes (same paper)
    square         Square Attack, gradient-free random search (Andriushchenko et al. 2020)
    evaluate       clean / per-attack / worst-case robust accuracy, with masking checks;
                   by default the cascade APGD-CE, APGD-T, Square (SUITES, suite)
    project, random_start, steepest_step, norm_per_example   threat-model geometry

Every attack takes (model, x (N, ...), y (N,), eps, ...) and returns adversarial inputs of
x's shape and dtype inside the ε-ball and the box [lo, hi]; none changes the model's
parameters, their .grad, its train/eval mode, or the caller's arrays.
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
from .projections import norm_per_example, project, random_start, steepest_step
from .square import square

__all__ = [
    "project", "random_start", "steepest_step", "norm_per_example",
    "fgsm", "fgm", "l2_normalize", "pgd", "apgd", "checkpoints", "square",
    "apgd_targeted", "dlr_targeted_loss",
    "ce_loss", "cw_loss", "dlr_loss", "LOSSES", "get_loss", "input_gradient", "predict", "correct",
    "Attack", "ATTACKS", "evaluate", "EvalReport", "robust_accuracy_curve", "AccuracyCurve",
    "SUITES", "suite", "check_attack_gradients", "check_ce_vs_margin", "check_gradient_free",
    "GradientMaskingWarning", "check_gradients", "check_eps_monotone", "check_pgd_vs_fgsm",
    "check_more_effort", "check_whole_box",
]
