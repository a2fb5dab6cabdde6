"""The `npadv` command: train, eval, export, demo.

    npadv train --model small-cnn --dataset mnist-5k --method pgd --eps 0.1 --epochs 10
    npadv eval  --checkpoint runs/pgd-small-cnn/checkpoint.npz --eps 0.1
    npadv export runs/pgd-small-cnn/checkpoint.npz --torch model.pt
    npadv demo  [--quick] [--eps 0.3]

Each subcommand's parser is built by its own function. Every flag is checked before any
work starts: bad input gives one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError

DATASETS = ["mnist-5k", "mnist", "fashion-mnist"]
TASKS = ["image", "text"]

class UsageError(Exception):
    """Bad command-line input; main prints it as one line and exits with 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):                      # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: {message}\n")


# ---- flag types: each refuses what can never be right --------------------------------------
def _number(kind, test, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {what}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive = _number(float, lambda v: v > 0, "> 0")
nonneg = _number(float, lambda v: v >= 0, ">= 0")
unit = _number(float, lambda v: 0 <= v < 1, "in [0, 1)")
fraction = _number(float, lambda v: 0 <= v <= 1, "in [0, 1]")
seed_int = _number(int, lambda v: 0 <= v < 2**63, "an integer >= 0 (a seed)")


def _check_out_dir(path: str | None, flag: str) -> None:
    """Refuse, before any work, a folder we could not write into (see npadv.files)."""
    from .files import OutputPathError, check_output_dir

    if path is not None:
        try:
            check_output_dir(path, flag)
        except OutputPathError as e:
            raise UsageError(str(e)) from None


def _check_out_file(path: str | None, flag: str, inputs=()) -> None:
    """Refuse, before any work, a file we could not write, or one that is an input of the
    same command (the checkpoint, its log)."""
    from .files import OutputPathError, check_output_path

    if path is not None:
        try:
            check_output_path(path, flag, inputs=inputs)
        except OutputPathError as e:
            raise UsageError(str(e)) from None


def _write_json(path, record: dict) -> None:
    """Strict JSON (a value that is not finite is written as null), written atomically."""
    from .files import atomic_write, strict_json

    atomic_write(path, strict_json(record, indent=2) + "\n")


# ---- train ------------------------------------------------------------------------------
# The method flags and their types; their help and defaults come from the methods'
# declarations (npadv.methods), so each is stated once, in the method's class.
METHOD_FLAGS = {"alpha": nonneg, "steps": nonneg_int, "beta": nonneg, "replays": positive_int,
                "yopo_m": positive_int, "yopo_n": nonneg_int, "freelb_k": positive_int,
                "adv_lr": nonneg, "adv_init_mag": nonneg, "adv_max_norm": nonneg,
                "kappa": fraction}


def _add_method_flags(p: argparse.ArgumentParser) -> None:
    from .methods import defaults, flag_help, method_class, names

    image_eps = defaults(method_class("pgd"))["eps"]
    text_eps = defaults(method_class("fgm", "text"))["eps"]
    g = p.add_argument_group("method settings (unset = the method's paper-derived default)")
    g.add_argument("--method", default="natural",
                   choices=sorted(set(names("image")) | set(names("text"))),
                   help="training method (see below)")
    g.add_argument("--eps", type=nonneg, default=None,
                   help=f"radius ε of the training perturbation (image: L∞, default "
                        f"{image_eps:g}; text: L2 per sentence, default {text_eps:g})")
    for flag, kind in METHOD_FLAGS.items():
        g.add_argument(_flag(flag), type=kind, default=None, help=flag_help(flag))
    g.add_argument("--no-guard", action="store_true", default=None,
                   help="fast: switch off the catastrophic-overfitting guard")
    g.add_argument("--eps-ramp", type=nonneg, default=None, metavar="EPOCHS",
                   help="raise ε linearly from 0 over this many epochs (default 0: off)")


def _train_parser(sub) -> None:
    from .methods import method_help
    from .text.train import TextTrainConfig
    from .training.loop import TrainConfig

    image, text = TrainConfig, TextTrainConfig
    p = sub.add_parser("train", help="train a model", epilog=method_help() + TRAIN_NOTE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="image", choices=TASKS)
    p.add_argument("--model", default=None,
                   help="image: mlp | small-cnn | madry-cnn (default small-cnn); text: cnn")
    p.add_argument("--dataset", default=None, choices=DATASETS, help="image; default mnist-5k")
    p.add_argument("--data", nargs=2, default=None, metavar=("TRAIN.tsv", "TEST.tsv"),
                   help="text: GLUE/SST-2 style files with sentence and label columns "
                        "(default: the synthetic sentiment task)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"default {image.epochs} (image), {text.epochs} (text)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"default {image.batch_size} (image), {text.batch_size} (text)")
    p.add_argument("--optimizer", default=None, choices=["sgd", "adam"],
                   help=f"default {image.optimizer} (image), {text.optimizer} (text)")
    p.add_argument("--lr", type=positive, default=None,
                   help=f"default {image.lr} (image), {text.lr} (text)")
    p.add_argument("--momentum", type=unit, default=None, help=f"default {image.momentum}")
    p.add_argument("--weight-decay", type=nonneg, default=None,
                   help=f"default {image.weight_decay} (image), {text.weight_decay} (text)")
    p.add_argument("--schedule", default=None,
                   choices=["constant", "multistep", "cosine", "cyclic"],
                   help=f"default {image.schedule} (image), {text.schedule} (text); only "
                        "constant lets --resume add epochs")
    p.add_argument("--seed", type=seed_int, default=None, help="default 0")
    p.add_argument("--eval-eps", type=nonneg, default=None,
                   help="ε of the PGD check (default: the training ε; 0 = none); image: "
                        "after every epoch, text: after the last")
    p.add_argument("--eval-size", type=positive_int, default=None,
                   help=f"default {image.eval_size}")
    p.add_argument("--out", default=None,
                   help="run folder for log.jsonl and checkpoint.npz (default runs/METHOD-MODEL, "
                        "text: runs/text-METHOD-cnn)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the run folder's checkpoint (same settings)")
    p.add_argument("--no-progress", action="store_true")
    _add_method_flags(p)
    p.set_defaults(func=cmd_train)


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


TRAIN_NOTE = """
Unset flags take each task's own defaults. Same seed, same BLAS thread count: the same
weights, bit for bit, also across --resume.
"""
LOOP_FLAGS = ["epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
              "schedule", "seed", "eps_ramp", "eval_size"]


def cmd_train(args) -> int:
    """`npadv train`: one method on one task in the shared loop, a run folder with its
    checkpoint and log."""
    from .methods import build_method, method_class, names
    from .training.loop import train

    _check_out_dir(args.out, "--out")
    task = args.task
    if args.method not in names(task):
        other = "text" if task == "image" else "image"
        hint = f"; use it with --task {other}" if args.method in names(other) else ""
        raise UsageError(f"--task {task} takes --method {', '.join(names(task))}, not "
                         f"{args.method}{hint}")
    wrong = ["dataset"] if task == "text" else ["data"]
    stray = [k for k in wrong if getattr(args, k) is not None]
    if stray:
        raise UsageError(f"{_flag(stray[0])} does not apply to --task {task}")
    for flag in ("eps", "eval_eps"):
        value = getattr(args, flag)
        if task == "image" and value is not None and value > 1:
            raise UsageError(f"{_flag(flag)} {value} is larger than the input range [0, 1]")
    flags = _given(args, ["eps", *METHOD_FLAGS])
    if args.no_guard:
        if "guard" not in method_class(args.method, task).flags:
            raise UsageError(f"--no-guard does not apply to --method {args.method}: it has no "
                             "overfitting guard")
        flags["guard"] = False
    try:
        method = build_method(args.method, task=task, **flags)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.eps_ramp is not None and method.eps is None:
        raise UsageError(f"--eps-ramp does not apply to --method {args.method}: it has no ε "
                         "to ramp")
    try:
        data, model, model_name, config = (_text_run if task == "text" else _image_run)(
            args, method)
    except ValueError as e:            # a loop setting out of range, or data that is not
        raise UsageError(str(e)) from None   # what its loader expects
    out = Path(args.out if args.out is not None else
               f"runs/text-{args.method}-{model_name}" if task == "text"
               else f"runs/{args.method}-{model_name}")
    _check_out_dir(str(out), "--out")
    for name in ("checkpoint.npz", "log.jsonl"):
        _check_out_file(str(out / name), "--out")
    ckpt, log = out / "checkpoint.npz", out / "log.jsonl"
    if args.resume and not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint at {ckpt}")
    if not args.resume and ckpt.exists():
        raise UsageError(f"{ckpt} exists; use --resume or another --out")
    if not args.resume:
        log.unlink(missing_ok=True)
    with _blas_for(task):
        history = train(model, method, data, config, log_path=log, checkpoint_path=ckpt,
                        resume=bool(args.resume), progress=not args.no_progress,
                        model_name=model_name)
    last = history[-1]
    robust = (f", PGD-{config.eval_steps} accuracy {last['robust_acc']:.4f} at ε = "
              f"{config.eval_eps:g}" if "robust_acc" in last else "")
    print(f"{args.method} on {_data_name(args)}: clean accuracy {last['clean_acc']:.4f}"
          f"{robust}; {last['full_passes']} full passes, {last['time']:.1f} s; checkpoint "
          f"{ckpt}")
    return 0


def _data_name(args) -> str:
    if args.task == "text":
        return args.data[0] if args.data else "the synthetic sentiment task"
    return args.dataset or "mnist-5k"


def _blas_for(task: str):
    from contextlib import nullcontext

    from .text.train import one_blas_thread

    return one_blas_thread() if task == "text" else nullcontext()


def _image_run(args, method):
    from .data import load_dataset
    from .models import build_model
    from .training.loop import ImageData, TrainConfig

    model_name = "small-cnn" if args.model is None else args.model
    try:
        model = build_model(model_name, seed=args.seed or 0)
    except ValueError as e:
        raise UsageError(f"--model {model_name!r}: {e}") from None
    eval_eps = args.eval_eps if args.eval_eps is not None else (method.eps or 0.0)
    config = TrainConfig(**_given(args, LOOP_FLAGS), eval_eps=eval_eps)
    name = args.dataset or "mnist-5k"
    return ImageData(load_dataset(name), name=name), model, model_name, config


def _text_run(args, method):
    from .text.methods import TEXT_EPS
    from .text.task import DEFAULT_TASK, make_text_task, read_text_task
    from .text.train import TextTrainConfig, build_text_model
    from .text.tsv import TextFormatError

    model_name = "cnn" if args.model is None else args.model
    if model_name != "cnn":
        raise UsageError(f"--model {model_name}: --task text trains the cnn (TextCNN)")
    try:
        task = read_text_task(*args.data) if args.data else make_text_task(**DEFAULT_TASK)
    except (TextFormatError, ValueError) as e:
        raise UsageError(f"--data {' '.join(args.data or [])}: {e}") from None
    model = build_text_model("cnn", len(task.vocab), seed=args.seed or 0,
                             num_classes=task.num_classes)
    eps = method.eps if method.eps is not None else (
        args.eps if args.eps is not None else TEXT_EPS)
    eval_eps = args.eval_eps if args.eval_eps is not None else eps
    config = TextTrainConfig(**_given(args, LOOP_FLAGS), eval_eps=eval_eps)
    return task, model, model_name, config


# ---- eval -------------------------------------------------------------------------------
SUITE_NAMES = ["standard", "quick"]
NORM_TITLES = {"linf": "L∞", "l2": "L2", "l1": "L1"}


def _single_attacks() -> dict:
    """name -> declaration of the attacks `npadv eval --attack` offers, in registration
    order: every registered attack (npadv.attacks.ATTACKS) whose declaration says cli."""
    from .attacks.evaluate import ATTACKS

    return {name: spec for name, spec in ATTACKS.items() if spec.cli}


def _and(words) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    words = list(words)
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _eval_help(attacks: dict) -> dict[str, str]:
    """The help of the flags that only some attacks take, from their declarations."""
    from .attacks.evaluate import ATTACKS

    with_loss = [s for s in attacks.values() if s.takes("loss")]
    steps: dict[int, list[str]] = {}                     # default -> the attacks with it
    for s in attacks.values():
        if s.cli_steps is not None:
            steps.setdefault(s.cli_steps, []).append(s.name)
    queries = [s for s in attacks.values() if s.cli_queries]
    losses = [f"{s.name} ({', '.join(s.losses)})" for s in with_loss]
    return {
        "loss": (f"loss of {_and(losses)}; "
                 f"default {_and(dict.fromkeys(s.default_loss for s in with_loss))}"),
        "targeted": "; ".join(f"{s.name}: run {ATTACKS[s.cli_targeted].title} "
                              f"({ATTACKS[s.cli_targeted].summary})"
                              for s in attacks.values() if s.cli_targeted),
        "steps": ", ".join(f"{_and(names)} (default {d})" for d, names in steps.items()),
        "restarts": (f"{_and(s.name for s in attacks.values() if s.cli_restarts)}: runs from "
                     "new random starts, each example keeping its worst case"),
        "queries": (f"{_and(s.name for s in queries)}: queries per example (default "
                    f"{_and(str(s.default('n_queries')) for s in queries)})"),
    }


def _eval_parser(sub) -> None:
    from .attacks.projections import NORMS

    attacks = _single_attacks()
    helps = _eval_help(attacks)
    losses = sorted({loss for s in attacks.values() if s.takes("loss") for loss in s.losses})
    p = sub.add_parser("eval", help="clean and robust accuracy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="default: the checkpoint's (mnist-5k for one that does not say)")
    p.add_argument("--attack", nargs="+", default=None,
                   choices=SUITE_NAMES + list(attacks) + ["none"],
                   help="a suite (standard: APGD-CE, APGD-T with DLR, Square, each on what the "
                        "earlier left unbroken; quick: the same, smaller), or attacks whose "
                        "per-example worst case is reported; none: clean accuracy only. "
                        "Default: standard, or apgd apgd-t for an L2 threat model")
    p.add_argument("--loss", default=None, choices=losses, help=helps["loss"])
    p.add_argument("--targeted", action="store_true", help=helps["targeted"])
    p.add_argument("--norm", default=None, choices=list(NORMS),
                   help="default: the norm the checkpoint's method trained against (linf)")
    p.add_argument("--eps", type=nonneg, nargs="+", default=None,
                   help="one ε, or several for robust accuracy against ε; default: the ε "
                        f"the checkpoint's method trained at ({DEFAULT_EVAL_EPS:g} if none)")
    p.add_argument("--steps", type=nonneg_int, default=None, help=helps["steps"])
    p.add_argument("--restarts", type=positive_int, default=None, help=helps["restarts"])
    p.add_argument("--queries", type=positive_int, default=None, help=helps["queries"])
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--n", type=positive_int, default=None,
                   help="evaluate the first N test examples")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes that attack batches side by side, one BLAS thread each "
                        "(default: one per available CPU); the results do not depend on it")
    p.add_argument("--certify", action="store_true",
                   help="also certify each example (L∞) by interval bound propagation and by "
                        "CROWN-IBP: the certified accuracy is a lower bound on the robust "
                        "accuracy, the attacked one an upper bound; the JSON then holds each "
                        "example's status (certified, broken or undecided)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)


def _eval_attacks(args, eps: float) -> tuple[list, bool]:
    """The Attack specs of `npadv eval` at one ε, and whether they run as a cascade. Each
    attack's declaration says which flags it takes, their defaults, its norms and losses."""
    from .attacks.evaluate import ATTACKS, Attack, suite

    names = args.attack
    if "none" in names:
        if len(names) > 1:
            raise UsageError("--attack none cannot be combined with attacks")
        return [], False
    suites = [a for a in names if a in SUITE_NAMES]
    if suites:
        if len(names) > 1:
            raise UsageError(f"--attack {suites[0]} is a suite; give it alone")
        if args.norm not in (None, "linf"):      # (None: not known yet, see cmd_eval)
            raise UsageError(f"--attack {suites[0]} is an L∞ suite; use --norm linf")
        if args.loss or args.targeted:
            raise UsageError(f"--loss and --targeted go with single attacks, not the "
                             f"{suites[0]} suite")
        fixed = [k for k in ("steps", "restarts", "queries") if getattr(args, k) is not None]
        if fixed:
            raise UsageError(f"{_flag(fixed[0])} does not apply to the {suites[0]} suite, whose "
                             "budgets are fixed; give single attacks to set it")
        return suite(suites[0], eps, seed=args.seed), True
    single = _single_attacks()
    takes = {"steps": lambda s: s.cli_steps is not None, "restarts": lambda s: s.cli_restarts,
             "queries": lambda s: s.cli_queries, "loss": lambda s: s.takes("loss")}
    for flag, test in takes.items():
        if getattr(args, flag) is not None and not any(test(single[n]) for n in names):
            takers = [s.name for s in single.values() if test(s)]
            raise UsageError(f"{_flag(flag)} does not apply to --attack {' '.join(names)}; "
                             f"it goes with {_and(takers)}")
    if args.targeted and not any(single[name].cli_targeted for name in names):
        raise UsageError("--targeted applies to " + " or ".join(
            f"--attack {s.name} ({ATTACKS[s.cli_targeted].title})"
            for s in single.values() if s.cli_targeted))
    specs = []
    for name in names:
        spec = single[name]
        if args.targeted and spec.cli_targeted:
            spec = ATTACKS[spec.cli_targeted]
        options: dict = {}
        if spec.takes("norm"):
            options["norm"] = args.norm
        if spec.cli_restarts:
            options["restarts"] = args.restarts or 1
        if spec.takes("rng"):
            options["rng"] = args.seed
        if spec.cli_steps is not None:
            options["steps"] = spec.cli_steps if args.steps is None else args.steps
        if spec.cli_queries and args.queries:
            options["n_queries"] = args.queries
        if spec.takes("loss") and args.loss:
            if args.loss not in spec.losses:
                takers = [s.name for s in single.values()
                          if s.takes("loss") and args.loss in s.losses]
                raise UsageError(f"--loss {args.loss} goes with {_and(takers)}; {name} takes "
                                 f"--loss {' or '.join(spec.losses)}")
            options["loss"] = args.loss
        if args.norm is not None and args.norm not in spec.norms:
            if len(spec.norms) == 1:
                raise UsageError(f"--attack {name} is an {NORM_TITLES[spec.norms[0]]} attack; "
                                 f"use --norm {spec.norms[0]}")
            raise UsageError(f"--attack {name} supports --norm {' or '.join(spec.norms)}")
        specs.append(Attack(spec.name, eps, **options))
    return specs, False


def _plan_line(args, attacks, n: int) -> str:
    """What `npadv eval` is about to run: the suite or attacks, n, ε and the batches."""
    from .attacks.evaluate import SUITES

    if args.attack[0] in SUITES:
        stages = " -> ".join(f"{name} ({', '.join(f'{k} {v}' for k, v in options.items())})"
                             for name, options in SUITES[args.attack[0]])
        what = f"{args.attack[0]} suite: {stages}"
    else:
        what = ", ".join(a.name for a in attacks) or "clean accuracy only"
    eps = ", ".join(f"{e:g}" for e in args.eps)
    batches = -(-n // args.batch_size)
    return (f"{what}; n = {n} in {batches} batch{'es' if batches > 1 else ''} of up to "
            f"{args.batch_size}, {args.norm} eps = {eps}")


def _estimate(n: int, n_eps: int, batch_size: int, workers: int = 1):
    """An on_batch callback that prints, after the first batch, the time for all n examples
    (and every ε) extrapolated from it (the batches taken `workers` at a time)."""
    rounds = math.ceil(math.ceil(n / batch_size) / workers)

    def on_batch(done: int, seconds: float) -> None:
        if done == min(batch_size, n) < n:
            total = seconds * rounds * n_eps
            at_each = f" at {n_eps} ε" if n_eps > 1 else ""
            print(f"first batch: {done} of {n} examples in {_duration(seconds)}; estimated "
                  f"time for all {n}{at_each}: about {_duration(total)}", flush=True)

    return on_batch


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


DEFAULT_EVAL_EPS = 0.1     # ε of `npadv eval` for a checkpoint that records no threat model


def _eval_defaults(args, meta: dict) -> list[str]:
    """Fill --dataset, --norm, --eps and --attack from the checkpoint where not given.
    Returns what to say: what was taken, and a warning line for each given value that
    differs from the checkpoint's (said once the flags have been checked)."""
    data = meta.get("data") or {}
    threat = meta.get("threat_model") or {}
    said, lines = [], []
    if args.dataset is None:
        args.dataset = data.get("dataset") or "mnist-5k"
        said.append(f"dataset {args.dataset}")
    elif data.get("dataset") and data["dataset"] != args.dataset:
        lines.append(f"warning: the checkpoint was trained on {data['dataset']}; evaluating "
                     f"on {args.dataset} as asked")
    if args.norm is None:
        args.norm = threat.get("norm", "linf")
        said.append(f"norm {args.norm}")
    if args.eps is None:
        args.eps = [threat["eps"] if threat.get("norm") == args.norm else DEFAULT_EVAL_EPS]
        said.append(f"ε = {args.eps[0]:g}")
    elif threat and (threat["norm"] != args.norm or any(e != threat["eps"] for e in args.eps)):
        lines.append(f"warning: the model was trained against {threat['norm']} ε = "
                     f"{threat['eps']:g}; evaluating at {args.norm} ε = "
                     f"{', '.join(f'{e:g}' for e in args.eps)}")
    if args.attack is None:
        args.attack = ["standard"] if args.norm == "linf" else ["apgd", "apgd-t"]
    if said:
        source = "the checkpoint" if data or threat else "the defaults"
        lines.insert(0, f"from {source}: {', '.join(said)}")
    return lines


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _check_fingerprint(meta: dict, dataset: str, x_train, y_train) -> None:
    from .training.loop import fingerprint

    data = meta.get("data") or {}
    if data.get("dataset") == dataset and data.get("train_sha256") and \
            fingerprint(x_train, y_train) != data["train_sha256"]:
        _warn(f"this {dataset} training split differs from the one the checkpoint was trained "
              "on (other files?)")


def _eval_plans(args, dims: int | None) -> list[tuple]:
    """(ε, attacks, cascade) for every --eps; refuses a radius larger than the input box
    [0, 1]^dims allows (its diameter in the norm: 1, √dims, dims)."""
    for eps in args.eps:
        widest = {"linf": 1.0, "l2": math.sqrt(dims or 0), "l1": float(dims or 0)}[args.norm]
        if eps > 1 and args.norm == "linf":
            raise UsageError(f"--eps {eps} is larger than the input range [0, 1]")
        if dims and eps > widest:
            raise UsageError(f"--eps {eps} is larger than the input box [0, 1]^{dims} in "
                             f"{args.norm} ({widest:g})")
    return [(eps, *_eval_attacks(args, eps)) for eps in args.eps]


def _check_certify(args) -> None:
    if args.certify and args.norm not in (None, "linf"):
        raise UsageError(f"--certify bounds the L∞ ball (interval bound propagation); "
                         f"use --norm linf, not {args.norm}")


def _certified(model, x, y, eps: float, report, meta: dict, norm: str) -> dict:
    """Certify each example at eps by IBP within the checkpoint's input range; print the
    certified accuracy and the undecided gap up to the attacked robust accuracy."""
    from .certify import certify, crown

    lo, hi = (meta.get("data") or {}).get("input_range", [0.0, 1.0])
    by_ibp = certify(model, x, y, eps, lo, hi)
    certified = crown.certify(model, x, y, eps, lo, hi)       # never fewer than IBP's
    broken = ~report.robust
    if (certified & broken).any():                   # a sound bound never allows this
        raise RuntimeError(f"{int((certified & broken).sum())} examples are both certified "
                           "and broken: the bounds are wrong")
    status = np.where(certified, "certified", np.where(broken, "broken", "undecided"))
    undecided = float(np.mean(status == "undecided"))
    print(f"{'certified (IBP)':<48}{norm:<6}{eps:>7.3f}{by_ibp.mean():>10.4f}")
    print(f"{'certified (CROWN-IBP)':<48}{norm:<6}{eps:>7.3f}{certified.mean():>10.4f}")
    print(f"{'undecided: robust accuracy lies in between':<48}{norm:<6}{eps:>7.3f}"
          f"{undecided:>10.4f}")
    return {"certified_accuracy": float(certified.mean()),
            "certified_accuracy_ibp": float(by_ibp.mean()), "undecided": undecided,
            "examples": status.tolist()}


def _workers(given: int | None) -> int:
    """--workers, or by default one per CPU this process may run on."""
    from .workers import available_cpus

    return available_cpus() if given is None else given


def cmd_eval(args) -> int:
    from .attacks.checks import GradientMaskingWarning
    from .attacks.evaluate import evaluate
    from .checkpoint import load_model
    from .data import load_dataset

    checkpoint = Path(args.checkpoint)
    _check_out_file(args.json, "--json", inputs=[checkpoint, checkpoint.parent / "log.jsonl"])
    _check_certify(args)
    if args.attack is not None:                 # the flags alone, before any work
        for eps in args.eps or [DEFAULT_EVAL_EPS]:
            _eval_attacks(args, eps)
        if args.norm is not None and args.eps is not None:
            _eval_plans(args, None)
    model, meta = load_model(checkpoint)
    lines = _eval_defaults(args, meta)
    x_train, y_train, x, y = load_dataset(args.dataset)
    plans = _eval_plans(args, x[0].size)
    _check_certify(args)
    print(_trained_on(meta))
    for line in lines:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    _check_fingerprint(meta, args.dataset, x_train, y_train)
    if args.n is not None:
        x, y = x[:args.n], y[:args.n]
    print(f"checkpoint {args.checkpoint} ({meta['model']}, {meta.get('method', '?')}), "
          f"{args.dataset} test, n = {len(x)}")
    print(_plan_line(args, plans[0][1], len(x)))
    if args.attack == ["standard"]:
        print("for a fast check, --attack quick runs the same cascade with smaller budgets")
    results = []
    workers = _workers(args.workers)
    estimate = _estimate(len(x), len(plans), args.batch_size, workers)
    for eps, attacks, cascade in plans:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientMaskingWarning)
            report = evaluate(model, x, y, attacks, batch_size=args.batch_size,
                              progress=not args.no_progress, cascade=cascade,
                              on_batch=None if results else estimate,
                              workers=workers)
        if not results:
            print(f"{'attack':<48}{'norm':<6}{'eps':>7}{'accuracy':>10}")
            print(f"{'clean':<48}{'':<6}{'':>7}{report.clean_accuracy:>10.4f}")
        prefix = "after " if cascade else ""
        for label, acc in report.attack_accuracy.items():
            print(f"{(prefix + label)[:47]:<48}{args.norm:<6}{eps:>7.3f}{acc:>10.4f}")
        if attacks:
            print(f"{'worst case':<48}{args.norm:<6}{eps:>7.3f}{report.robust_accuracy:>10.4f}")
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        results.append({"eps": eps, "cascade": cascade, "robust_accuracy":
                        report.robust_accuracy if attacks else report.clean_accuracy,
                        "attacks": [{"attack": label, "accuracy": acc}
                                    for label, acc in report.attack_accuracy.items()],
                        "warnings": report.warnings})
        if args.certify:
            results[-1].update(_certified(model, x, y, eps, report, meta, args.norm))
    if args.json:
        _write_json(args.json, {"checkpoint": str(args.checkpoint), "dataset": args.dataset,
                                "n": len(x), "norm": args.norm,
                                "clean_accuracy": report.clean_accuracy, "results": results})
        print(f"wrote {args.json}")
    return 0


# ---- export -----------------------------------------------------------------------------
def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint's weights for another framework")
    p.add_argument("checkpoint")
    p.add_argument("--torch", required=True, metavar="OUT",
                   help="weights under PyTorch's state_dict names for the equivalent "
                        "torch.nn.Sequential, its definition written beside them")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    import importlib.util

    from .checkpoint import load_checkpoint
    from .export import TORCH_SUFFIXES, export_checkpoint

    checkpoint = Path(args.checkpoint)
    suffix = Path(args.torch).suffix
    if suffix == ".py":
        raise UsageError(f"--torch {args.torch}: give the weights file (.npz, .pt); the "
                         "definition is written beside it as .py")
    inputs = [checkpoint, checkpoint.parent / "log.jsonl"]
    _check_out_file(args.torch, "--torch", inputs=inputs)
    _check_out_file(str(Path(args.torch).with_suffix(".py")), "--torch (its .py)", inputs=inputs)
    if suffix in TORCH_SUFFIXES and importlib.util.find_spec("torch") is None:
        raise UsageError(f"--torch {args.torch}: a {suffix} file needs PyTorch; an .npz "
                         "needs nothing")
    _, meta = load_checkpoint(checkpoint, required=("model",))
    print(_trained_on(meta))
    written = export_checkpoint(checkpoint, args.torch)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _trained_on(meta: dict) -> str:
    """One line: what the checkpoint holds and what it was trained on, as it records."""
    data, threat = meta.get("data") or {}, meta.get("threat_model")
    line = f"{meta.get('model', '?')} trained by {meta.get('method', '?')}"
    if data.get("dataset"):
        line += f" on {data['dataset']} ({data.get('n_train', '?')} training examples"
        line += f", inputs in {data['input_range']})" if "input_range" in data else ")"
    if threat:
        line += f", threat model {threat['norm']} ε = {threat['eps']:g}"
    if meta.get("npadv_version"):
        line += f", npadv {meta['npadv_version']}"
    return line


# ---- demo -------------------------------------------------------------------------------
def _demo_parser(sub) -> None:
    from .experiments.plans import DEMO_METHODS

    p = sub.add_parser("demo", help="every method on MNIST-5k trained to convergence, each "
                                    "paper's claim judged by time to robustness against a "
                                    "PGD-7-AT reference (offline, 11 min 26 s measured; a rerun "
                                    "continues in --out)")
    p.add_argument("--task", default="image", choices=["image", "text"],
                   help="image: MNIST-5k methods; text: natural/FGM/PGD/FreeLB on the "
                        "synthetic sentiment task over 3 seeds")
    p.add_argument("--quick", action="store_true",
                   help="three methods, 2,000 training and 100 test images, a 2 s budget "
                        "(28 s measured on 2 cores)")
    p.add_argument("--eps", type=nonneg, default=None, help="image: L∞ ε (default 0.1)")
    p.add_argument("--methods", nargs="+", default=None, choices=DEMO_METHODS,
                   help="image: subset of methods to run (the reference always runs)")
    p.add_argument("--seed", type=seed_int, default=None, help="image: default 0")
    p.add_argument("--out", default=None,
                   help="folder for the results and the runs (default runs/demo, text: "
                        "runs/text_demo)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    if args.task == "text":
        from .text import run_text_demo

        given = [k for k in ("eps", "methods", "seed") if getattr(args, k) is not None]
        if given:
            raise UsageError(f"{_flag(given[0])} does not apply to --task text (the text demo "
                             "runs its four methods at the text ε over seeds 0, 1, 2)")
        out = "runs/text_demo" if args.out is None else args.out
        _check_out_dir(out, "--out")
        run_text_demo(quick=args.quick, seeds=3, out=out, progress=not args.no_progress)
        return 0
    from .experiments import mnist_demo

    eps = 0.1 if args.eps is None else args.eps
    if not 0 < eps <= 1:
        raise UsageError(f"--eps {eps} must be in (0, 1], the input range")
    out = "runs/demo" if args.out is None else args.out
    _check_out_dir(out, "--out")
    mnist_demo(quick=args.quick, eps=eps, methods=args.methods, seed=args.seed or 0, out=out,
               progress=not args.no_progress)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="npadv", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"npadv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _eval_parser(sub)
    _export_parser(sub)
    _demo_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one command. Bad input (flags, files, checkpoints, data) ends in one line on
    stderr and exit code 2; a run that fails (divergence, a download, a write the system
    refuses, e.g. a full disk) in one line and exit code 1. Neither prints a traceback,
    and a failed write leaves any earlier file intact (npadv.files)."""
    from .attacks.gradients import NonFiniteGradient
    from .data.download import DownloadError
    from .data.idx import IdxFormatError
    from .text.tsv import TextFormatError
    from .training.loop import ResumeError, TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, CheckpointError, ResumeError, FileNotFoundError, IdxFormatError,
            TextFormatError) as e:
        print(f"npadv {args.command}: {e}", file=sys.stderr)
        return 2
    except (TrainingDiverged, NonFiniteGradient, DownloadError, OSError) as e:
        print(f"npadv {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
