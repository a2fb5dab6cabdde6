"""`npadv demo --task text`: natural, FGM, PGD-3 and FreeLB-3 on embeddings, 3 seeds.

The task (npadv.text.task.DEFAULT_TASK): the synthetic sentiment sentences of
npadv.text.grammar, forms `single` and `contrast` in equal parts, 6 sentiment words
per polarity, 1,000 training and 1,000 test sentences. The label depends on word order
(negation, "but"), so a bag of words is at chance; a naturally trained TextCNN reaches
about 0.68 on the test set while fitting the training set exactly (training accuracy 1.0,
seeds 0 and 1): generalisation is what limits it, the regime in which Miyato et al. and
Zhu et al. report clean-accuracy gains from adversarial training on embeddings. Whether
there is a gain here is what the demo measures.

Model and training: TextCNN (d = 64, 64 filters of width 3), Adam lr 2e-3, batch 32,
12 epochs. Seeds 0, 1, 2 vary the initialisation, the batch order and the methods'
randomness; the data are the same for all (data seed 0).

ε. One radius for all methods, L2 per example over non-pad tokens × dims: ε = 1.0 (a
token's embedding has norm ≈ 8 at initialisation). It was chosen by a sweep over
ε ∈ {0.5, 1, 2, 4} with training seed 0 on a separate draw of the task (data seed 1),
never on the test set of the demo:

    data seed 1, training seed 0      ε = 0.5   ε = 1     ε = 2     ε = 4
    FGM     clean accuracy            0.689     0.698     0.714     0.483 (collapsed)
    PGD-3   clean accuracy            0.704     0.725     0.483 (collapsed; 4 not run)
    FreeLB-3 clean accuracy           0.691     0.706     0.725     0.483 (collapsed)
    (natural: 0.685)

"Collapsed": the model ended predicting one class. ε = 1 is the largest radius at which
every method trains stably. The evaluation attack is L2 PGD-10 on the embeddings at the
same ε (zero start, α = 2.5ε/10, an example counts as broken if any iterate misclassifies
it). Methods: FGM (λ = 1); PGD-3 (α = 2.5ε/3, zero start); FreeLB-3 (adv-lr α = ε/2,
adv-max-norm ε, adv-init-mag 0).

BLAS threads. The matrices here are small (a batch is 32 × ~20 tokens), and a multi-threaded
BLAS spends more time synchronising than computing; on a busy machine much more. When
threadpoolctl is installed the demo limits BLAS to one thread (recorded in the JSON).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..files import write_json
from .methods import FGM, TEXT_EPS, TextFreeLB, TextNatural, TextPGD
from .task import DEFAULT_TASK, make_text_task
from .train import TextTrainConfig, build_text_model, one_blas_thread, train_text

DEMO_METHODS = {"natural": TextNatural, "fgm": FGM, "pgd": TextPGD, "freelb": TextFreeLB}
LABELS = {"natural": "natural", "fgm": "FGM", "pgd": "PGD-3", "freelb": "FreeLB-3"}


def _mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def format_table(summary: dict, steps: int = 10) -> str:
    """The demo's table from its summary (see run_text_demo); steps: of the PGD evaluation."""
    head = (f"{'method':<10} {'clean acc':>15} {'Δ clean (paired)':>17} {f'PGD-{steps} acc':>15} "
            f"{'time/run s':>11} {'CPU/run s':>10} {'full passes':>12}")
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        delta = ("" if name == "natural" else
                 f"{s['clean_gain_mean']:+.3f} ± {s['clean_gain_std']:.3f}")
        lines.append(f"{LABELS.get(name, name):<10} "
                     f"{s['clean_mean']:>7.3f} ± {s['clean_std']:.3f} {delta:>17} "
                     f"{s['pgd_mean']:>7.3f} ± {s['pgd_std']:.3f} "
                     f"{s['train_time_mean']:>11.1f} {s['train_cpu_mean']:>10.1f} "
                     f"{s['full_passes']:>12d}")
    return "\n".join(lines)


def run_text_demo(quick: bool = False, seeds: int = 3, out: str | None = "runs/text_demo",
                  progress: bool = True) -> dict:
    """Train the four methods over `seeds` seeds, print the table, write JSON to `out`.

    quick: 300 training / 300 test sentences, 3 epochs, PGD-5 evaluation (a smoke run).
    The table gives mean ± sample std over seeds; "Δ clean (paired)" is the clean accuracy
    minus natural training's with the same seed (same initialisation and batch order),
    mean ± std over seeds. Times are per run, training only (evaluation excluded).
    Returns {"settings", "runs": [per method and seed], "summary": {method: ...},
    "total_time", "total_cpu"}; writes <out>/text_demo.json when out is given.
    """
    task_settings = dict(DEFAULT_TASK)
    config = TextTrainConfig(eval_eps=TEXT_EPS)
    if quick:
        task_settings.update(n_train=300, n_test=300)
        config.epochs, config.eval_steps = 3, 5
    wall0, cpu0 = time.perf_counter(), os.times().user
    task = make_text_task(**task_settings)
    batches = config.epochs * len(task.batches(config.batch_size, 0))
    runs, summary = [], {}
    with one_blas_thread() as limiter:
        for name, method_class in DEMO_METHODS.items():
            settings = method_class().settings()
            for seed in range(seeds):
                model = build_text_model("cnn", len(task.vocab), seed=seed)
                result = train_text(model, method_class(), task, replace(config, seed=seed),
                                    progress)
                runs.append({"method": name, "seed": seed, "settings": settings, **result})
                if progress:
                    print(f"{LABELS[name]:<9} seed {seed}: clean {result['clean_acc']:.3f}, "
                          f"PGD {result['pgd_acc']:.3f}, {result['train_time']:.1f} s",
                          flush=True)
            mine = [r for r in runs if r["method"] == name]
            natural = [r for r in runs if r["method"] == "natural"]
            gain = _mean_std([r["clean_acc"] - n["clean_acc"]
                              for r, n in zip(mine, natural, strict=True)])
            clean = _mean_std([r["clean_acc"] for r in mine])
            robust = _mean_std([r["pgd_acc"] for r in mine])
            summary[name] = {
                "clean_mean": clean[0], "clean_std": clean[1],
                "clean_gain_mean": gain[0], "clean_gain_std": gain[1],
                "pgd_mean": robust[0], "pgd_std": robust[1],
                "train_time_mean": float(np.mean([r["train_time"] for r in mine])),
                "train_cpu_mean": float(np.mean([r["train_cpu"] for r in mine])),
                "full_passes": int(mine[0]["full_passes"]),
                "passes_per_batch": int(mine[0]["full_passes"]) // batches}
    total_time, total_cpu = time.perf_counter() - wall0, os.times().user - cpu0
    table = format_table(summary, config.eval_steps)
    print(f"\nText task: {task.settings['n_train']} train / {task.settings['n_test']} test "
          f"sentences, TextCNN, {config.epochs} epochs, {seeds} seeds (mean ± std); "
          f"PGD-{config.eval_steps} on embeddings at L2 ε = {TEXT_EPS:g}")
    print(table)
    print(f"total {total_time:.1f} s wall, {total_cpu:.1f} s user CPU")
    record = {
        "settings": {"task": task.settings, "config": asdict(config), "eps": TEXT_EPS,
                     "methods": {n: c().settings() for n, c in DEMO_METHODS.items()},
                     "seeds": seeds, "quick": quick,
                     "blas_one_thread": limiter is not None},
        "runs": runs, "summary": summary, "table": table,
        "total_time": total_time, "total_cpu": total_cpu}
    if out:
        path = write_json(Path(out) / "text_demo.json", record)
        print(f"wrote {path}")
    return record
