"""Adversarial training for text: models with exposed embeddings, methods that perturb them.

    from npadv.methods import build_method
    from npadv.text import TextTrainConfig, make_text_task, text_cnn, train_text
    task = make_text_task()                                  # the synthetic sentiment task
    model = text_cnn(len(task.vocab))                        # embed(ids), head(e, mask)
    result = train_text(model, build_method("fgm", task="text"), task, TextTrainConfig())
    result["clean_acc"], result["pgd_acc"], result["full_passes"]

vocab.py      tokeniser and vocabulary
batching.py   padding and seeded minibatches (ids, mask, y)
tsv.py        GLUE/SST-2 style TSV files
lexicon.py    the word lists of the synthetic task
grammar.py    the synthetic sentiment task's grammar and generator
labeller.py   the reference labelling rule of a synthetic sentence
models.py     TextCNN, BagOfEmbeddings (padding never changes their output)
methods.py    natural, FGM, PGD-K and FreeLB-K on embeddings; fgm_perturbation, pgd_embedding
task.py       TextTask: the loop's view of a text task, accuracy under embedding-space PGD
train.py      TextTrainConfig, train_text: the shared loop with the text defaults
demo.py       run_text_demo: the four methods over seeds on a small training set
"""
from .demo import run_text_demo
from .methods import (
    FGM,
    TEXT_EPS,
    TextFreeLB,
    TextNatural,
    TextPGD,
    fgm_perturbation,
    pgd_embedding,
)
from .models import BagOfEmbeddings, TextCNN, bag_of_embeddings, text_cnn
from .task import DEFAULT_TASK, TextTask, make_text_task, read_text_task
from .train import TextTrainConfig, build_text_model, evaluate_text, full_passes, train_text

__all__ = [
    "DEFAULT_TASK", "FGM", "TEXT_EPS", "BagOfEmbeddings", "TextCNN", "TextFreeLB", "TextNatural",
    "TextPGD", "TextTask", "TextTrainConfig", "bag_of_embeddings", "build_text_model",
    "evaluate_text", "fgm_perturbation", "full_passes", "make_text_task", "pgd_embedding",
    "read_text_task", "run_text_demo", "text_cnn", "train_text",
]
