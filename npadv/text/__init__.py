"""Adversarial training for text: models with exposed embeddings, methods that perturb them.

    from npadv.text import make_text_task, text_cnn, text_method, train_text, TextTrainConfig
    task = make_text_task()                                  # the synthetic sentiment task
    model = text_cnn(len(task.vocab))                        # embed(ids), head(e, mask)
    result = train_text(model, text_method("fgm", eps=1.0), task, TextTrainConfig())
    result["clean_acc"], result["pgd_acc"], result["full_passes"]

models.py   TextCNN, BagOfEmbeddings (padding never changes their output)
methods.py  FGM, PGD-K and FreeLB-K on embeddings, natural; fgm_perturbation, pgd_embedding
train.py    the text training loop, evaluation under embedding-space L2 PGD
demo.py     run_text_demo: the four methods over seeds on a small training set
"""
from .demo import run_text_demo
from .methods import (
    TEXT_METHODS,
    fgm_perturbation,
    fgm_step,
    freelb_text_step,
    natural_step,
    pgd_embedding,
    pgd_step,
    text_method,
)
from .models import BagOfEmbeddings, TextCNN, bag_of_embeddings, text_cnn
from .train import (
    DEFAULT_EPS,
    DEFAULT_TASK,
    TextTask,
    TextTrainConfig,
    evaluate_text,
    full_passes,
    make_text_task,
    method_settings,
    train_text,
)

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_TASK",
    "method_settings",
    "TEXT_METHODS",
    "BagOfEmbeddings",
    "TextCNN",
    "TextTask",
    "TextTrainConfig",
    "bag_of_embeddings",
    "evaluate_text",
    "fgm_perturbation",
    "fgm_step",
    "freelb_text_step",
    "full_passes",
    "make_text_task",
    "natural_step",
    "pgd_embedding",
    "pgd_step",
    "run_text_demo",
    "text_cnn",
    "text_method",
    "train_text",
]
