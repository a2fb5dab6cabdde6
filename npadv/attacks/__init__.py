"""Attacks on a model's inputs and the evaluation of robustness.

    fgsm, fgm      one-step attacks (Goodfellow et al. 2015; Miyato et al. 2017)
    pgd            projected gradient descent with restarts (Madry et al. 2018)
    apgd           Auto-PGD (Croce & Hein 2020)
    evaluate       clean / per-attack / worst-case robust accuracy, with masking checks
    project, random_start, steepest_step, norm_per_example   threat-model geometry

Every attack takes (model, x (N, ...), y (N,), eps, ...) and returns adversarial inputs of
x's shape and dtype inside the ε-ball and the box [lo, hi]; none changes the model's
parameters, their .grad, its train/eval mode, or the caller's arrays.
"""
from .apgd import apgd, checkpoints
from .checks import (GradientMaskingWarning, check_eps_monotone, check_gradients,
                     check_more_effort, check_pgd_vs_fgsm, check_whole_box)
from .evaluate import ATTACKS, AccuracyCurve, Attack, EvalReport, evaluate, robust_accuracy_curve
from .fgsm import fgm, fgsm, l2_normalize
from .losses import LOSSES, ce_loss, cw_loss, dlr_loss, get_loss, input_gradient
from .pgd import pgd
from .projections import norm_per_example, project, random_start, steepest_step

__all__ = [
    "project", "random_start", "steepest_step", "norm_per_example",
    "fgsm", "fgm", "l2_normalize", "pgd", "apgd", "checkpoints",
    "ce_loss", "cw_loss", "dlr_loss", "LOSSES", "get_loss", "input_gradient",
    "Attack", "ATTACKS", "evaluate", "EvalReport", "robust_accuracy_curve", "AccuracyCurve",
    "GradientMaskingWarning", "check_gradients", "check_eps_monotone", "check_pgd_vs_fgsm",
    "check_more_effort", "check_whole_box",
]
