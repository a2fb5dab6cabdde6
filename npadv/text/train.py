"""Training text classifiers: the shared loop with the text task's defaults.

    task = make_text_task()
    model = build_text_model("cnn", len(task.vocab))
    result = train_text(model, build_method("fgm", task="text"), task, TextTrainConfig())
    result["clean_acc"], result["pgd_acc"], result["full_passes"]

Text runs in npadv.training.loop like images: the same minibatch order seeded by
(seed, epoch), ε ramp, divergence checks, checkpoints and bit-identical resume. What differs
is the data (a TextTask: minibatches (ids, mask, y), accuracy under L2 PGD on the
embeddings) and the defaults below: Adam at 2e-3, no weight decay, a constant rate, and the
PGD check after the last epoch only (clean accuracy after every epoch).

Cost. A "full pass" is one forward and backward through the whole network. The models of
npadv.text.models end in a Linear, `model.classifier`, and every full pass sends exactly
one gradient back through it, so the loop's cost meter counts full passes there. Times are
wall-clock seconds of training (evaluation excluded) and user CPU seconds of this process.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..cost import CostMeter
from ..training.loop import TrainConfig, train
from .methods import TEXT_EPS
from .models import bag_of_embeddings, text_cnn
from .task import TextTask


@dataclass
class TextTrainConfig(TrainConfig):
    """TrainConfig with the text task's defaults."""

    epochs: int = 12
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    eval_eps: float = TEXT_EPS      # ε of the embedding-space PGD check
    eval_every: int = 0             # the PGD check after the last epoch only


def build_text_model(name: str, vocab_size: int, seed: int = 0, **kwargs):
    """"cnn" (text_cnn) or "bag" (bag_of_embeddings), weights from `seed`."""
    if name == "cnn":
        return text_cnn(vocab_size, seed=seed, **kwargs)
    if name == "bag":
        return bag_of_embeddings(vocab_size, seed=seed, **kwargs)
    raise ValueError(f"unknown text model {name!r}; use 'cnn' or 'bag'")


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
    return meter.full_passes(model)


def evaluate_text(model, task: TextTask, eps: float, steps: int = 10) -> dict:
    """{"clean": accuracy, "pgd": accuracy under L2 PGD-`steps` at radius eps} on the
    task's test sentences."""
    return {"clean": task.accuracy(model), "pgd": task.robust_accuracy(model, eps, steps)}


def train_text(model, method, task: TextTask, config: TextTrainConfig,
               progress: bool = True, **loop_args) -> dict:
    """Train `model` with the text `method` on `task` in the shared loop.

    loop_args go to npadv.training.loop.train (log_path, checkpoint_path, resume,
    model_name). Returns {"history": the loop's per-epoch records, "train_time",
    "train_cpu", "full_passes", "clean_acc", "pgd_acc"} from its last record (pgd_acc None
    when config.eval_eps is 0); times in seconds.
    """
    history = train(model, method, task, config, progress=progress, **loop_args)
    last = history[-1]
    return {"history": history, "train_time": last["time"], "train_cpu": last["cpu_time"],
            "full_passes": last["full_passes"], "clean_acc": last["clean_acc"],
            "pgd_acc": last.get("robust_acc")}
