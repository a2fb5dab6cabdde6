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
import json
import math
import os
import sys
import warnings
from pathlib import Path

from .checkpoint import CheckpointError

DATASETS = ["mnist-5k", "mnist", "fashion-mnist"]
IMAGE_METHODS = ["natural", "fgsm", "fast", "pgd", "free", "yopo", "freelb", "trades"]
TEXT_METHODS = ["natural", "fgm", "pgd", "freelb"]

METHOD_HELP = """\
methods (Goodfellow 2015; Madry 2018; Wong 2020; Shafahi 2019; Zhang 2019; Zhu 2020;
Zhang 2019 for TRADES):
  natural  clean cross-entropy, 1 pass per minibatch
  fgsm     FGSM-AT: 0.5·L(x) + 0.5·L(x + ε·sign ∇ₓL), 2 passes
  fast     Fast AT (FGSM + uniform random start, α = 1.25ε) with the catastrophic-overfitting
           guard, 2 passes
  pgd      PGD-K AT (random start, --steps K, α = 2.5ε/K), K + 1 passes
  free     Free-m AT (--replays m; epochs ÷ m), m passes
  yopo     YOPO-m-n (--yopo-m full passes, --yopo-n first-layer updates each)
  freelb   FreeLB-K (--freelb-k ascent steps, --adv-lr, --adv-init-mag, --adv-max-norm)
  trades   TRADES: CE(f(x)) + β·KL(f(x) ‖ f(x')), x' a K-step KL attack (--steps, --beta)

--task text trains a TextCNN on the synthetic sentiment task with natural, fgm (Miyato
2017), pgd (L2 on embeddings) or freelb; ε is then an L2 radius per sentence (default 1).
Unset flags take each task's own defaults. Same seed, same BLAS thread count: the same
weights, bit for bit, also across --resume.
"""


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
any_int = _number(int, lambda v: True, "an integer")


def _check_out_dir(path: str | None, flag: str) -> None:
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{flag} {path} is a file; it must be a folder")


def _check_out_file(path: str | None, flag: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a folder; it must be a file name")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write in {parent}")


# ---- train ------------------------------------------------------------------------------
def _add_method_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method settings (unset = the method's paper-derived default)")
    g.add_argument("--method", default="natural", choices=sorted(set(IMAGE_METHODS + ["fgm"])),
                   help="training method (see below; fgm is for --task text)")
    g.add_argument("--eps", type=nonneg, default=None,
                   help="radius ε of the training perturbation (image: L∞, default 0.1)")
    g.add_argument("--alpha", type=nonneg, default=None,
                   help="attack step α at the target ε (fast: 1.25ε; pgd: 2.5ε/K; yopo: ε/4)")
    g.add_argument("--steps", type=nonneg_int, default=None,
                   help="PGD-AT and TRADES inner steps K (default 10)")
    g.add_argument("--beta", type=nonneg, default=None,
                   help="TRADES: weight β of the KL term (default 6)")
    g.add_argument("--replays", type=positive_int, default=None,
                   help="Free AT: replays m per minibatch (default 8)")
    g.add_argument("--yopo-m", type=positive_int, default=None,
                   help="YOPO: full passes m (default 5)")
    g.add_argument("--yopo-n", type=nonneg_int, default=None,
                   help="YOPO: first-layer updates n per full pass (default 3)")
    g.add_argument("--freelb-k", type=positive_int, default=None,
                   help="FreeLB: ascent steps K (default 3)")
    g.add_argument("--adv-lr", type=nonneg, default=None, help="FreeLB: L2 ascent step α")
    g.add_argument("--adv-init-mag", type=nonneg, default=None,
                   help="FreeLB: initial perturbation magnitude σ (default 0)")
    g.add_argument("--adv-max-norm", type=nonneg, default=None,
                   help="FreeLB: L2 bound on δ per example (0 = unbounded, the default)")
    g.add_argument("--no-guard", action="store_true", default=None,
                   help="fast: switch off the catastrophic-overfitting guard")
    g.add_argument("--eps-ramp", type=nonneg, default=None, metavar="EPOCHS",
                   help="raise ε linearly from 0 over this many epochs (default 0: off)")


METHOD_FLAGS = ["eps", "alpha", "steps", "beta", "replays", "yopo_m", "yopo_n", "freelb_k",
                "adv_lr", "adv_init_mag", "adv_max_norm"]


def _train_parser(sub) -> None:
    from .text.train import TextTrainConfig
    from .training.loop import TrainConfig

    image, text = TrainConfig, TextTrainConfig
    p = sub.add_parser("train", help="train a model", epilog=METHOD_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="image", choices=["image", "text"])
    p.add_argument("--model", default=None, help="mlp | small-cnn | madry-cnn (default small-cnn)")
    p.add_argument("--dataset", default=None, choices=DATASETS, help="default mnist-5k")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"default {image.epochs} (image), {text.epochs} (text)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"default {image.batch_size} (image), {text.batch_size} (text)")
    p.add_argument("--optimizer", default=None, choices=["sgd", "adam"],
                   help=f"default {image.optimizer} (text uses Adam)")
    p.add_argument("--lr", type=positive, default=None,
                   help=f"default {image.lr} (image), {text.lr} (text)")
    p.add_argument("--momentum", type=unit, default=None, help=f"default {image.momentum}")
    p.add_argument("--weight-decay", type=nonneg, default=None,
                   help=f"default {image.weight_decay}")
    p.add_argument("--schedule", default=None,
                   choices=["constant", "multistep", "cosine", "cyclic"],
                   help=f"default {image.schedule}; only constant lets --resume add epochs")
    p.add_argument("--seed", type=any_int, default=None, help="default 0")
    p.add_argument("--eval-eps", type=nonneg, default=None,
                   help="ε of the per-epoch PGD check (default: the training ε; 0 = none)")
    p.add_argument("--eval-size", type=positive_int, default=None,
                   help=f"default {image.eval_size}")
    p.add_argument("--out", default=None,
                   help="run folder for log.jsonl and checkpoint.npz (default runs/METHOD-MODEL)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the run folder's checkpoint (same settings)")
    p.add_argument("--no-progress", action="store_true")
    _add_method_flags(p)
    p.set_defaults(func=cmd_train)


def _given(args, names) -> dict:
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def cmd_train(args) -> int:
    _check_out_dir(args.out, "--out")
    if args.task == "text":
        return cmd_train_text(args)
    from .data import load_dataset
    from .models import build_model
    from .training.loop import TrainConfig, train
    from .training.methods import build_method

    if args.method == "fgm":
        raise UsageError("--method fgm perturbs embeddings; use it with --task text")
    if args.eps is not None and args.eps > 1:
        raise UsageError(f"--eps {args.eps} is larger than the input range [0, 1]")
    flags = _given(args, METHOD_FLAGS)
    if args.no_guard:
        flags["guard"] = False
    try:
        method = build_method(args.method, **flags)
    except ValueError as e:
        raise UsageError(str(e)) from None
    model_name = args.model or "small-cnn"
    try:
        model = build_model(model_name, seed=args.seed or 0)
    except ValueError as e:
        raise UsageError(f"--model: {e}") from None
    settings = _given(args, ["epochs", "batch_size", "optimizer", "lr", "momentum",
                             "weight_decay", "schedule", "seed", "eps_ramp", "eval_size"])
    eval_eps = args.eval_eps if args.eval_eps is not None else (method.eps or 0.0)
    config = TrainConfig(**settings, eval_eps=eval_eps)
    out = Path(args.out or f"runs/{args.method}-{model_name}")
    ckpt, log = out / "checkpoint.npz", out / "log.jsonl"
    if args.resume and not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint at {ckpt}")
    if not args.resume and ckpt.exists():
        raise UsageError(f"{ckpt} exists; use --resume or another --out")
    data = load_dataset(args.dataset or "mnist-5k")
    if not args.resume:
        log.unlink(missing_ok=True)
    history = train(model, method, data, config, log_path=log, checkpoint_path=ckpt,
                    resume=bool(args.resume), progress=not args.no_progress,
                    model_name=model_name)
    last = history[-1]
    print(f"{args.method} on {args.dataset or 'mnist-5k'}: clean accuracy "
          f"{last['clean_acc']:.4f}"
          + (f", PGD accuracy {last['robust_acc']:.4f}" if "robust_acc" in last else "")
          + f"; checkpoint {ckpt}")
    return 0


TEXT_FLAGS = ["method", "epochs", "batch_size", "lr", "seed", "eps", "steps", "alpha",
              "freelb_k", "adv_lr", "adv_init_mag", "adv_max_norm", "out", "no_progress", "task"]


def cmd_train_text(args) -> int:
    """`npadv train --task text`: one method on the synthetic task; evaluate; write JSON."""
    from dataclasses import asdict

    from .text import train as text_train
    from .text.methods import text_method

    ignored = sorted(k for k, v in vars(args).items()
                     if v is not None and k not in TEXT_FLAGS + ["func", "command"])
    if ignored:
        raise UsageError(f"{', '.join(_flag(k) for k in ignored)} do(es) not apply to --task text")
    if args.method not in TEXT_METHODS:
        raise UsageError(f"--task text takes --method {', '.join(TEXT_METHODS)}, "
                         f"not {args.method}")
    settings = text_train.method_settings(args.method, args.eps, args.steps, args.alpha,
                                          args.freelb_k, args.adv_lr, args.adv_init_mag,
                                          args.adv_max_norm)
    eps = text_train.DEFAULT_EPS if args.eps is None else args.eps
    config = text_train.TextTrainConfig(**_given(args, ["epochs", "batch_size", "lr", "seed"]),
                                        eval_eps=eps)
    task = text_train.make_text_task(**text_train.DEFAULT_TASK)
    model = text_train.build_text_model("cnn", len(task.vocab), seed=config.seed)
    with text_train.one_blas_thread():
        result = text_train.train_text(model, text_method(args.method, **settings), task,
                                       config, not args.no_progress, desc=args.method)
    record = {"task": "text", "method": args.method, "settings": settings,
              "config": asdict(config), "data": task.settings, "model": repr(model), **result}
    print(f"text {args.method}: clean test accuracy {result['clean_acc']:.3f}, "
          f"L2 PGD-{config.eval_steps} (ε = {eps:g}) accuracy {result['pgd_acc']:.3f}, "
          f"{result['full_passes']} full passes, {result['train_time']:.1f} s "
          f"({result['train_cpu']:.1f} s CPU)")
    if args.out:
        path = Path(args.out) / f"text_{args.method}_seed{config.seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
        print(f"wrote {path}")
    return 0


# ---- eval -------------------------------------------------------------------------------
SINGLE_ATTACKS = ["fgsm", "pgd", "apgd", "apgd-t", "square"]
SUITE_NAMES = ["standard", "quick"]


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="clean and robust accuracy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", default="mnist-5k", choices=DATASETS)
    p.add_argument("--attack", nargs="+", default=["standard"],
                   choices=SUITE_NAMES + SINGLE_ATTACKS + ["none"],
                   help="a suite (standard: APGD-CE, APGD-T with DLR, Square, each on what the "
                        "earlier left unbroken; quick: the same, smaller), or attacks whose "
                        "per-example worst case is reported; none: clean accuracy only")
    p.add_argument("--loss", default=None, choices=["ce", "cw", "dlr"],
                   help="loss of pgd (ce, cw, dlr) and apgd (ce, dlr); default ce")
    p.add_argument("--targeted", action="store_true",
                   help="apgd: run APGD-T (targeted DLR over the 9 most likely other classes)")
    p.add_argument("--norm", default="linf", choices=["linf", "l2", "l1"])
    p.add_argument("--eps", type=nonneg, nargs="+", default=[0.1],
                   help="one ε, or several for robust accuracy against ε")
    p.add_argument("--steps", type=nonneg_int, default=None,
                   help="pgd (default 40), apgd and apgd-t (default 100)")
    p.add_argument("--restarts", type=positive_int, default=1)
    p.add_argument("--queries", type=positive_int, default=None,
                   help="square: queries per example (default 5000)")
    p.add_argument("--seed", type=any_int, default=0)
    p.add_argument("--n", type=positive_int, default=None,
                   help="evaluate the first N test examples")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)


def _eval_attacks(args, eps: float) -> tuple[list, bool]:
    """The Attack specs of `npadv eval` at one ε, and whether they run as a cascade."""
    from .attacks.evaluate import Attack, suite

    names = args.attack
    if "none" in names:
        if len(names) > 1:
            raise UsageError("--attack none cannot be combined with attacks")
        return [], False
    suites = [a for a in names if a in SUITE_NAMES]
    if suites:
        if len(names) > 1:
            raise UsageError(f"--attack {suites[0]} is a suite; give it alone")
        if args.norm != "linf":
            raise UsageError(f"--attack {suites[0]} is an L∞ suite; use --norm linf")
        if args.loss or args.targeted:
            raise UsageError(f"--loss and --targeted go with single attacks, not the "
                             f"{suites[0]} suite")
        return suite(suites[0], eps, seed=args.seed), True
    if args.targeted and "apgd" not in names:
        raise UsageError("--targeted applies to --attack apgd (APGD-T)")
    specs = []
    for name in names:
        if name == "apgd" and args.targeted:
            name = "apgd-t"
        options: dict = {}
        if name in ("pgd", "apgd", "apgd-t"):
            options = {"norm": args.norm, "restarts": args.restarts, "rng": args.seed}
            options["steps"] = args.steps if args.steps is not None else (
                40 if name == "pgd" else 100)
            if name == "apgd-t":
                options.pop("restarts")
        if name in ("pgd", "apgd") and args.loss:
            if name == "apgd" and args.loss == "cw":
                raise UsageError("--loss cw goes with pgd; apgd takes --loss ce or dlr")
            options["loss"] = args.loss
        if name == "square":
            options = {"rng": args.seed}
            if args.queries:
                options["n_queries"] = args.queries
        if name in ("fgsm", "square") and args.norm != "linf":
            raise UsageError(f"--attack {name} is an L∞ attack; use --norm linf")
        if name in ("apgd", "apgd-t") and args.norm == "l1":
            raise UsageError("--attack apgd supports --norm linf or l2")
        specs.append(Attack(name, eps, **options))
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


def _estimate(n: int, n_eps: int, batch_size: int):
    """An on_batch callback that prints, after the first batch, the time for all n examples
    (and every ε) extrapolated from it."""
    def on_batch(done: int, seconds: float) -> None:
        if done == min(batch_size, n) < n:
            total = seconds * n / done * n_eps
            at_each = f" at {n_eps} ε" if n_eps > 1 else ""
            print(f"first batch: {done} of {n} examples in {_duration(seconds)}; estimated "
                  f"time for all {n}{at_each}: about {_duration(total)}", flush=True)

    return on_batch


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def cmd_eval(args) -> int:
    from .attacks.checks import GradientMaskingWarning
    from .attacks.evaluate import evaluate
    from .checkpoint import load_model
    from .data import load_dataset

    _check_out_file(args.json, "--json")
    for eps in args.eps:
        if args.norm == "linf" and eps > 1:
            raise UsageError(f"--eps {eps} is larger than the input range [0, 1]")
    plans = [(eps, *_eval_attacks(args, eps)) for eps in args.eps]
    model, meta = load_model(args.checkpoint)
    _, _, x, y = load_dataset(args.dataset)
    if args.n is not None:
        x, y = x[:args.n], y[:args.n]
    print(f"checkpoint {args.checkpoint} ({meta['model']}, {meta.get('method', '?')}), "
          f"{args.dataset} test, n = {len(x)}")
    print(_plan_line(args, plans[0][1], len(x)))
    if args.attack == ["standard"]:
        print("for a fast check, --attack quick runs the same cascade with smaller budgets")
    results = []
    estimate = _estimate(len(x), len(plans), args.batch_size)
    for eps, attacks, cascade in plans:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientMaskingWarning)
            report = evaluate(model, x, y, attacks, batch_size=args.batch_size,
                              progress=not args.no_progress, cascade=cascade,
                              on_batch=None if results else estimate)
        if not results:
            print(f"{'attack':<48}{'norm':<6}{'eps':>7}{'accuracy':>10}")
            print(f"{'clean':<48}{'':<6}{'':>7}{report.clean_accuracy:>10.4f}")
        prefix = "after " if cascade else ""
        for label, acc in report.attack_accuracy.items():
            print(f"{prefix + label:<48.48}{args.norm:<6}{eps:>7.3f}{acc:>10.4f}")
        if attacks:
            print(f"{'worst case':<48}{args.norm:<6}{eps:>7.3f}{report.robust_accuracy:>10.4f}")
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        results.append({"eps": eps, "cascade": cascade, "robust_accuracy":
                        report.robust_accuracy if attacks else report.clean_accuracy,
                        "attacks": [{"attack": label, "accuracy": acc}
                                    for label, acc in report.attack_accuracy.items()],
                        "warnings": report.warnings})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "n": len(x),
             "norm": args.norm, "clean_accuracy": report.clean_accuracy, "results": results},
            indent=2))
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

    from .export import TORCH_SUFFIXES, export_checkpoint

    _check_out_file(args.torch, "--torch")
    suffix = Path(args.torch).suffix
    if suffix == ".py":
        raise UsageError(f"--torch {args.torch}: give the weights file (.npz, .pt); the "
                         "definition is written beside it as .py")
    if suffix in TORCH_SUFFIXES and importlib.util.find_spec("torch") is None:
        raise UsageError(f"--torch {args.torch}: a {suffix} file needs PyTorch; an .npz "
                         "needs nothing")
    written = export_checkpoint(args.checkpoint, args.torch)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ---- demo -------------------------------------------------------------------------------
def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="every method on MNIST-5k at an equal training budget, "
                                    "beside a PGD-AT reference (offline)")
    p.add_argument("--task", default="image", choices=["image", "text"],
                   help="image: MNIST-5k methods; text: natural/FGM/PGD/FreeLB on the "
                        "synthetic sentiment task over 3 seeds")
    p.add_argument("--quick", action="store_true",
                   help="three methods, 2,000 training and 100 test images, a 2 s budget "
                        "(about 30 s on 2 cores)")
    p.add_argument("--eps", type=nonneg, default=0.1)
    p.add_argument("--methods", nargs="+", default=None, choices=IMAGE_METHODS,
                   help="subset of methods to run")
    p.add_argument("--seed", type=any_int, default=0)
    p.add_argument("--out", default="runs/demo",
                   help="folder for comparison.json, comparison.png and the logs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    _check_out_dir(args.out, "--out")
    if args.task == "text":
        from .text import run_text_demo

        run_text_demo(quick=args.quick, seeds=3, out=args.out,
                      progress=not args.no_progress)
        return 0
    from .experiments import mnist_demo

    if not 0 < args.eps <= 1:
        raise UsageError(f"--eps {args.eps} must be in (0, 1], the input range")
    mnist_demo(quick=args.quick, eps=args.eps, methods=args.methods, seed=args.seed,
               out=args.out, progress=not args.no_progress)
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
    from .attacks.gradients import NonFiniteGradient
    from .data.download import DownloadError
    from .training.loop import ResumeError, TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, CheckpointError, ResumeError, FileNotFoundError) as e:
        print(f"npadv {args.command}: {e}", file=sys.stderr)
        return 2
    except (TrainingDiverged, NonFiniteGradient, DownloadError) as e:
        print(f"npadv {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
