"""Training: the Method base class, the shared loop, and one file per method.

    from npadv.methods import build_method                  # every method by name
    method = build_method("pgd", eps=0.1, steps=10)        # with its declared defaults
    history = train(model, method, data, TrainConfig(epochs=10))
"""
from .loop import (
    ImageData,
    ResumeError,
    TrainConfig,
    TrainingDiverged,
    accuracy,
    pgd_accuracy,
    train,
)
from .method import IMAGE_EPS, Method
from .natural import Natural

__all__ = ["IMAGE_EPS", "ImageData", "Method", "Natural", "ResumeError", "TrainConfig",
           "TrainingDiverged", "accuracy", "pgd_accuracy", "train"]
