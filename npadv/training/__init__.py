"""Training: the shared loop and one file per method."""
from .loop import TrainConfig, accuracy, pgd_accuracy, train
from .natural import Natural

__all__ = ["TrainConfig", "train", "accuracy", "pgd_accuracy", "Natural"]
