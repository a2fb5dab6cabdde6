"""A text classification task as the shared training loop sees it.

    task = make_text_task()                              # the synthetic sentiment task
    task = read_text_task("train.tsv", "dev.tsv")        # GLUE/SST-2 style files
    train(model, build_method("fgm", task="text"), task, TextTrainConfig())

A TextTask holds the tokenised training and test sentences and their vocabulary (built from
the training sentences only: test words never seen in training become <unk>). It gives the
loop its minibatches, (ids (B, T), mask (B, T), y (B,)) in an order seeded by (seed, epoch),
and its accuracies: clean, and under L2 PGD on the embeddings (`pgd_embedding`: zero start,
α = 2.5ε/K, early stop, so an example counts as broken if any iterate misclassifies it).
Both run the model in eval mode and restore its modes, also on an exception.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..engine import no_grad
from ..nn import evaluating
from .batching import check_labels, encode_dataset, iterate_text_batches
from .grammar import make_sentiment_splits
from .methods import pgd_embedding
from .tsv import read_tsv
from .vocab import Vocab, tokenize

# The synthetic task of the demo and the CLI: 1,000 training sentences of the `single` and
# `contrast` forms with 6 sentiment words per polarity. Measured with a natural TextCNN
# (12 epochs): about 0.68 clean test accuracy, well above chance (a bag of embeddings
# stays at ~0.5 by construction of the task) and well below 1 (training accuracy
# reaches 1: generalisation is what limits it).
DEFAULT_TASK = {"n_train": 1000, "n_test": 1000, "data_seed": 0,
                "form_weights": {"single": 0.5, "contrast": 0.5}, "n_sentiment_words": 6}
EVAL_BATCH = 250                 # sentences per batch of the PGD evaluation


class TextBatches:
    """The training minibatches of one epoch: `iterate_text_batches` seeded by (seed, epoch)."""

    def __init__(self, ids_list: list, y: np.ndarray, batch_size: int, seed: int):
        self.ids_list, self.y, self.batch_size, self.seed = ids_list, y, batch_size, seed

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def epoch(self, epoch: int):
        return iterate_text_batches(self.ids_list, self.y, self.batch_size, seed=self.seed,
                                    epoch=epoch)


@dataclass
class TextTask:
    """A tokenised classification task. ids lists hold (Lᵢ,) int64 arrays; labels are
    0..num_classes−1."""

    vocab: Vocab
    train_ids: list
    train_y: np.ndarray
    test_ids: list
    test_y: np.ndarray
    settings: dict = field(default_factory=dict)
    task: ClassVar[str] = "text"

    def __post_init__(self):
        self.train_y = check_labels(self.train_y, len(self.train_ids), "training sentences")
        self.test_y = check_labels(self.test_y, len(self.test_ids), "test sentences")
        if len(self.train_y) == 0:
            raise ValueError("the text task has no training sentences")
        if len(self.test_y) == 0:
            raise ValueError("the text task has no test sentences")
        if min(self.train_y.min(), self.test_y.min(initial=0)) < 0:
            raise ValueError("text labels must be 0..C−1, got a negative label")

    @property
    def num_classes(self) -> int:
        return max(2, int(max(self.train_y.max(), self.test_y.max(initial=0))) + 1)

    @property
    def train_set(self) -> tuple[list, np.ndarray]:
        return self.train_ids, self.train_y

    def batches(self, batch_size: int, seed: int) -> TextBatches:
        return TextBatches(self.train_ids, self.train_y, batch_size, seed)

    def accuracy(self, model, n: int | None = None) -> float:
        """Clean accuracy on the first n test sentences (all if None)."""
        return accuracy(model, self.test_ids[:n], self.test_y[:n])

    def robust_accuracy(self, model, eps: float, steps: int, restarts: int = 1,
                        seed: int = 0, n: int | None = None) -> float:
        """Accuracy under L2 PGD-`steps` on the embeddings at radius eps, on the first n
        test sentences. PGD starts at 0, so restarts and seed change nothing."""
        return pgd_accuracy(model, self.test_ids[:n], self.test_y[:n], eps, steps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """What a checkpoint keeps of the task: the vocabulary, without which the weights
        of the embedding table mean nothing."""
        return {"vocab": self.vocab.to_array()}


def _task(s_tr, y_tr, s_te, y_te, settings: dict) -> TextTask:
    vocab = Vocab.build(tokenize(s) for s in s_tr)
    return TextTask(vocab, encode_dataset(s_tr, vocab), y_tr, encode_dataset(s_te, vocab),
                    y_te, {**settings, "vocab_size": len(vocab)})


def make_text_task(n_train: int = 1000, n_test: int = 1000, data_seed: int = 0,
                   form_weights: Mapping[str, float] | None = None,
                   n_sentiment_words: int = 6) -> TextTask:
    """The synthetic sentiment task (npadv.text.grammar).

    Raises:
        ValueError: `n_train` or `n_test` is not an int >= 1 (bools are refused), or an
            argument of `make_sentiment_splits` is out of its range.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if (not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_))
                or value < 1):
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    (s_tr, y_tr), (s_te, y_te) = make_sentiment_splits(
        n_train, n_test, seed=data_seed, form_weights=form_weights,
        n_sentiment_words=n_sentiment_words)
    return _task(s_tr, y_tr, s_te, y_te, {
        "n_train": n_train, "n_test": n_test, "data_seed": data_seed,
        "form_weights": dict(form_weights) if form_weights else None,
        "n_sentiment_words": n_sentiment_words})


def read_text_task(train_path: str | Path, test_path: str | Path) -> TextTask:
    """A task from two GLUE/SST-2 style TSV files (`read_tsv`: columns sentence, label).
    The settings record each file's name and SHA-256, so a resume refuses other data."""
    (s_tr, y_tr), (s_te, y_te) = read_tsv(train_path), read_tsv(test_path)
    return _task(s_tr, y_tr, s_te, y_te, {
        "train_file": str(train_path), "train_sha256": _sha256(train_path),
        "test_file": str(test_path), "test_sha256": _sha256(test_path),
        "n_train": len(s_tr), "n_test": len(s_te)})


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- evaluation -------------------------------------------------------------------------
def _batches(ids_list, y, batch_size: int):
    return iterate_text_batches(ids_list, np.asarray(y), batch_size, shuffle=False)


def _check_not_empty(y) -> None:
    if len(y) == 0:
        raise ValueError("accuracy on an empty set of sentences is undefined")


def accuracy(model, ids_list, y, batch_size: int = 500) -> float:
    """Clean accuracy on (ids_list, y), model in eval mode for the call."""
    _check_not_empty(y)
    correct = 0
    with evaluating(model), no_grad():
        for ids, mask, yb in _batches(ids_list, y, batch_size):
            correct += int((model(ids, mask).data.argmax(axis=1) == yb).sum())
    return correct / len(y)


def pgd_accuracy(model, ids_list, y, eps: float, steps: int = 10,
                 batch_size: int = EVAL_BATCH) -> float:
    """Accuracy under L2 PGD on the embeddings, model in eval mode for the call."""
    _check_not_empty(y)
    correct = 0
    with evaluating(model):
        for ids, mask, yb in _batches(ids_list, y, batch_size):
            e = model.embed(ids).data
            delta = pgd_embedding(model, ids, mask, yb, eps, steps, early_stop=True, e=e)
            with no_grad():
                correct += int((model.head(e + delta, mask).data.argmax(axis=1) == yb).sum())
    return correct / len(y)
