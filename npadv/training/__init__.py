"""Training: the Method base class, the shared loop, and one file per method.

    method = build_method("pgd", eps=0.1, steps=10)        # by name, with paper defaults
    history = train(model, method, data, TrainConfig(epochs=10))
"""
from .loop import ResumeError, TrainConfig, TrainingDiverged, accuracy, pgd_accuracy, train
from .method import Method
from .methods import METHODS, build_method
from .natural import Natural

__all__ = ["METHODS", "Method", "Natural", "ResumeError", "TrainConfig", "TrainingDiverged",
           "accuracy", "build_method", "pgd_accuracy", "train"]
