"""Training and evaluation of text classifiers, with any step of npadv.text.methods.

    for epoch in 0 .. epochs−1:
      for minibatch i of iterate_text_batches(order seeded by (seed, epoch)):
        loss ← step(model, optimizer, ids, mask, y, default_rng([seed, epoch, i]))
      record the clean test accuracy
    evaluate: clean test accuracy and accuracy under L2 PGD on the embeddings

Cost. A "full pass" is one forward and backward through the whole network. The models of
npadv.text.models end in a Linear, `model.classifier`, and every full pass sends exactly
one gradient back through it, so a cost meter counts full passes as
``meter.backwards[model.classifier]`` (`full_passes`). Evaluation runs outside the meter.

Timing: wall-clock seconds (time.perf_counter) and user CPU seconds of this process
(os.times().user, all threads).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .. import optim
from ..cost import CostMeter, cost
from ..engine import no_grad
from .data import Vocab, encode_dataset, iterate_text_batches, tokenize
from .methods import TEXT_METHODS, TextStep, pgd_embedding
from .models import bag_of_embeddings, text_cnn
from .synthetic import make_sentiment_splits

# The synthetic task of the demo and the CLI: 1,000 training sentences of the `single` and
# `contrast` forms with 6 sentiment words per polarity. Measured with a natural TextCNN
# (12 epochs): about 0.68 clean test accuracy, well above chance (a bag of embeddings
# stays at ~0.5 by construction of the task) and well below 1 (training accuracy
# reaches 1: generalisation is what limits it).
DEFAULT_TASK = {"n_train": 1000, "n_test": 1000, "data_seed": 0,
                "form_weights": {"single": 0.5, "contrast": 0.5}, "n_sentiment_words": 6}


@dataclass
class TextTask:
    """A tokenised classification task. ids lists hold (Lᵢ,) int64 arrays."""

    vocab: Vocab
    train_ids: list
    train_y: np.ndarray
    test_ids: list
    test_y: np.ndarray
    settings: dict = field(default_factory=dict)


def make_text_task(n_train: int = 1000, n_test: int = 1000, data_seed: int = 0,
                   form_weights: Mapping[str, float] | None = None,
                   n_sentiment_words: int = 6) -> TextTask:
    """The synthetic sentiment task (npadv.text.synthetic), vocabulary from the
    training sentences only (test words never seen in training become <unk>)."""
    (s_tr, y_tr), (s_te, y_te) = make_sentiment_splits(
        n_train, n_test, seed=data_seed, form_weights=form_weights,
        n_sentiment_words=n_sentiment_words)
    vocab = Vocab.build(tokenize(s) for s in s_tr)
    settings = {"n_train": n_train, "n_test": n_test, "data_seed": data_seed,
                "form_weights": dict(form_weights) if form_weights else None,
                "n_sentiment_words": n_sentiment_words, "vocab_size": len(vocab)}
    return TextTask(vocab, encode_dataset(s_tr, vocab), y_tr, encode_dataset(s_te, vocab),
                    y_te, settings)


def build_text_model(name: str, vocab_size: int, seed: int = 0, **kwargs):
    """"cnn" (text_cnn) or "bag" (bag_of_embeddings), weights from `seed`."""
    if name == "cnn":
        return text_cnn(vocab_size, seed=seed, **kwargs)
    if name == "bag":
        return bag_of_embeddings(vocab_size, seed=seed, **kwargs)
    raise ValueError(f"unknown text model {name!r}; use 'cnn' or 'bag'")


@dataclass
class TextTrainConfig:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3                # Adam
    seed: int = 0                   # batch order and the methods' randomness
    eval_eps: float = 1.0           # ε of the final embedding-space PGD evaluation
    eval_steps: int = 10
    eval_batch_size: int = 250


def one_blas_thread():
    """A context limiting BLAS to one thread, when threadpoolctl is installed (else a no-op
    context yielding None). The matrices of text models are small (a batch is 32 × ~20
    tokens): a multi-threaded BLAS spends more time synchronising than computing, and on a
    busy machine measured 10× slower. The CLI and the demo train inside it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext(None)
    return threadpool_limits(limits=1, user_api="blas")


def full_passes(meter: CostMeter, model) -> int:
    """Full passes recorded by `meter`: backward passes through `model.classifier`."""
    return meter.backwards[model.classifier]


# ---- evaluation -------------------------------------------------------------------------
def _eval_batches(ids_list, y, batch_size: int):
    return iterate_text_batches(ids_list, np.asarray(y), batch_size, shuffle=False)


def accuracy(model, ids_list, y, batch_size: int = 500) -> float:
    """Clean accuracy on (ids_list, y); model in eval mode for the call."""
    was_training = model.training
    model.eval()
    correct = 0
    with no_grad():
        for ids, mask, yb in _eval_batches(ids_list, y, batch_size):
            correct += int((model(ids, mask).data.argmax(axis=1) == yb).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


def pgd_accuracy(model, ids_list, y, eps: float, steps: int = 10,
                 batch_size: int = 250) -> float:
    """Accuracy under L2 PGD on the embeddings (`pgd_embedding`: zero start, α = 2.5ε/K,
    early stop, so an example counts as broken if any iterate misclassifies it)."""
    was_training = model.training
    model.eval()
    correct = 0
    for ids, mask, yb in _eval_batches(ids_list, y, batch_size):
        e = model.embed(ids).data
        delta = pgd_embedding(model, ids, mask, yb, eps, steps, early_stop=True, e=e)
        with no_grad():
            correct += int((model.head(e + delta, mask).data.argmax(axis=1) == yb).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


def evaluate_text(model, ids_list, y, eps: float, steps: int = 10,
                  batch_size: int = 250) -> dict:
    """{"clean": accuracy, "pgd": accuracy under PGD-`steps` at L2 radius eps}."""
    return {"clean": accuracy(model, ids_list, y),
            "pgd": pgd_accuracy(model, ids_list, y, eps, steps, batch_size)}


# ---- training ---------------------------------------------------------------------------
def train_text(model, step: TextStep, task: TextTask, config: TextTrainConfig,
               progress: bool = True, desc: str = "train") -> dict:
    """Train `model` with `step` (from text_method) on task; evaluate at the end.

    Returns {"history": [{"epoch", "loss", "test_acc"}...], "train_time", "train_cpu",
    "full_passes", "clean_acc", "pgd_acc", "eval_time"}; times in seconds.
    """
    optimizer = optim.Adam(model.parameters(), config.lr)
    history = []
    model.train()
    wall0, cpu0 = time.perf_counter(), os.times().user
    with cost() as meter:
        bar = tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False)
        for epoch in bar:
            losses = []
            batches = iterate_text_batches(task.train_ids, task.train_y, config.batch_size,
                                           seed=config.seed, epoch=epoch)
            for i, (ids, mask, y) in enumerate(batches):
                rng = np.random.default_rng([config.seed, epoch, i])
                losses.append(step(model, optimizer, ids, mask, y, rng))
            acc = accuracy(model, task.test_ids, task.test_y)
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                            "test_acc": acc})
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{acc:.3f}")
    train_time, train_cpu = time.perf_counter() - wall0, os.times().user - cpu0
    wall1 = time.perf_counter()
    result = evaluate_text(model, task.test_ids, task.test_y, config.eval_eps,
                           config.eval_steps, config.eval_batch_size)
    return {"history": history, "train_time": train_time, "train_cpu": train_cpu,
            "full_passes": full_passes(meter, model), "clean_acc": result["clean"],
            "pgd_acc": result["pgd"], "eval_time": time.perf_counter() - wall1}


# ---- the command line -------------------------------------------------------------------
DEFAULT_EPS = 1.0


def method_settings(method: str, eps: float | None = None, steps: int | None = None,
                    alpha: float | None = None, freelb_k: int | None = None,
                    adv_lr: float | None = None, adv_init_mag: float | None = None,
                    adv_max_norm: float | None = None) -> dict:
    """The settings of a text method from CLI-style flags (None → default).

    Defaults: ε = 1.0 (L2 per example over non-pad tokens × dims; a token's embedding has
    norm ≈ √d = 8 at initialisation); PGD K = 3, α = 2.5ε/K, zero start; FreeLB K = 3,
    adv-lr α = ε/2, adv-max-norm = ε, adv-init-mag σ = 0 (so FreeLB's perturbations stay
    in the same ball as PGD's and FGM's).
    """
    eps = DEFAULT_EPS if eps is None else float(eps)
    if method == "natural":
        return {}
    if method == "fgm":
        return {"eps": eps}
    if method == "pgd":
        k = 3 if steps is None else int(steps)
        return {"eps": eps, "steps": k, "alpha": 2.5 * eps / max(k, 1) if alpha is None
                else float(alpha)}
    if method == "freelb":
        return {"K": 3 if freelb_k is None else int(freelb_k),
                "alpha": eps / 2 if adv_lr is None else float(adv_lr),
                "sigma": 0.0 if adv_init_mag is None else float(adv_init_mag),
                "max_norm": eps if adv_max_norm is None else float(adv_max_norm)}
    raise ValueError(f"unknown text method {method!r}; use one of {TEXT_METHODS}")
