"""The `npadv` command: train, eval, demo.

    npadv train --model small-cnn --dataset mnist-5k --method pgd --eps 0.1 --epochs 10
    npadv eval  --checkpoint runs/pgd-small-cnn/checkpoint.npz --attack pgd --eps 0.1 0.2
    npadv demo  [--quick] [--eps 0.3]

Each subcommand's parser is built by its own function, so a new method or attack adds
flags in one place.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint

DATASETS = ["mnist-5k", "mnist", "fashion-mnist"]

METHOD_HELP = """\
methods (Goodfellow 2015; Madry 2018; Wong 2020; Shafahi 2019; Zhang 2019; Zhu 2020):
  natural  clean cross-entropy, 1 pass per minibatch
  fgsm     FGSM-AT: 0.5·L(x) + 0.5·L(x + ε·sign ∇ₓL), 2 passes
  fast     Fast AT (FGSM + uniform random start, α = 1.25ε) with the catastrophic-overfitting
           guard, 2 passes
  pgd      PGD-K AT (random start, --steps K, α = 2.5ε/K), K + 1 passes
  free     Free-m AT (--replays m; epochs ÷ m), m passes
  yopo     YOPO-m-n (--yopo-m full passes, --yopo-n first-layer updates each)
  freelb   FreeLB-K (--freelb-k ascent steps, --adv-lr, --adv-init-mag, --adv-max-norm)

--task text trains a TextCNN on the synthetic sentiment task with natural, fgm (Miyato
2017), pgd (L2 on embeddings) or freelb; ε is then an L2 radius per sentence (default 1).
Unset flags take each task's own defaults.
"""

IMAGE_DEFAULTS = {"epochs": 10, "batch_size": 128, "lr": 0.05}


def _add_method_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method settings (unset = the method's paper-derived default)")
    g.add_argument("--method", default="natural",
                   choices=["natural", "fgsm", "fast", "pgd", "free", "yopo", "freelb", "fgm"],
                   help="training method (see below; fgm is for --task text)")
    g.add_argument("--eps", type=float, default=None,
                   help="L∞ radius ε of the training perturbation (default 0.1)")
    g.add_argument("--alpha", type=float, default=None,
                   help="attack step α at the target ε (fast: 1.25ε; pgd: 2.5ε/K; yopo: ε/4)")
    g.add_argument("--steps", type=int, default=None, help="PGD-AT inner steps K (default 10)")
    g.add_argument("--replays", type=int, default=None,
                   help="Free AT: replays m per minibatch (default 8)")
    g.add_argument("--yopo-m", type=int, default=None, help="YOPO: full passes m (default 5)")
    g.add_argument("--yopo-n", type=int, default=None,
                   help="YOPO: first-layer updates n per full pass (default 3)")
    g.add_argument("--freelb-k", type=int, default=None, help="FreeLB: ascent steps K (default 3)")
    g.add_argument("--adv-lr", type=float, default=None, help="FreeLB: L2 ascent step α")
    g.add_argument("--adv-init-mag", type=float, default=None,
                   help="FreeLB: initial perturbation magnitude σ (default 0)")
    g.add_argument("--adv-max-norm", type=float, default=None,
                   help="FreeLB: L2 bound on δ per example (0 = unbounded, the default)")
    g.add_argument("--no-guard", action="store_true",
                   help="fast: switch off the catastrophic-overfitting guard")
    g.add_argument("--eps-ramp", type=float, default=0.0, metavar="EPOCHS",
                   help="raise ε linearly from 0 over this many epochs (default 0: off)")


def method_from_args(args):
    from .training.methods import build_method, method_flags

    flags = {"eps": args.eps if args.eps is not None else 0.1, "alpha": args.alpha,
             "steps": args.steps, "replays": args.replays, "yopo_m": args.yopo_m,
             "yopo_n": args.yopo_n, "freelb_k": args.freelb_k, "adv_lr": args.adv_lr,
             "adv_init_mag": args.adv_init_mag, "adv_max_norm": args.adv_max_norm}
    if args.no_guard:
        flags["guard"] = False
    accepted = method_flags(args.method)
    stray = [k for k, v in flags.items() if v is not None and k not in accepted]
    if stray:
        given = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise SystemExit(f"npadv train: --method {args.method} does not use {given}")
    return build_method(args.method, **flags)


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model", epilog=METHOD_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="image", choices=["image", "text"])
    p.add_argument("--model", default="small-cnn", help="mlp | small-cnn | madry-cnn")
    p.add_argument("--dataset", default="mnist-5k", choices=DATASETS)
    p.add_argument("--epochs", type=int, default=None, help="default 10 (image), 12 (text)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128 (image), 32 (text)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="image task (text uses Adam)")
    p.add_argument("--lr", type=float, default=None, help="default 0.05 (image), 2e-3 (text)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", default="cosine",
                   choices=["constant", "multistep", "cosine", "cyclic"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-eps", type=float, default=None,
                   help="ε of the per-epoch PGD check (default: the training ε; 0 = none)")
    p.add_argument("--eval-size", type=int, default=1000)
    p.add_argument("--out", default=None,
                   help="run folder for log.jsonl and checkpoint.npz (default runs/METHOD-MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--no-progress", action="store_true")
    _add_method_flags(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from .data import load_dataset
    from .models import build_model
    from .training.loop import TrainConfig, train

    if args.task == "text":
        from .text import train_text_cli

        if args.method not in ("natural", "fgm", "pgd", "freelb"):
            raise SystemExit(f"npadv train: --task text takes --method natural, fgm, pgd or "
                             f"freelb, not {args.method}")
        train_text_cli(args)
        return 0
    if args.method == "fgm":
        raise SystemExit("npadv train: fgm perturbs embeddings; use it with --task text")
    for key, value in IMAGE_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    method = method_from_args(args)
    model = build_model(args.model, seed=args.seed)
    adversarial = args.method != "natural"
    eval_eps = args.eval_eps if args.eval_eps is not None else (
        getattr(method, "eps", 0.0) if adversarial else 0.0)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                         optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
                         eps_ramp=args.eps_ramp, eval_size=args.eval_size,
                         eval_eps=eval_eps or 0.0)
    out = Path(args.out or f"runs/{args.method}-{args.model}")
    ckpt, log = out / "checkpoint.npz", out / "log.jsonl"
    if not args.resume:
        if ckpt.exists():
            raise SystemExit(f"npadv train: {ckpt} exists; use --resume or another --out")
        log.unlink(missing_ok=True)
    data = load_dataset(args.dataset)
    history = train(model, method, data, config, log_path=log, checkpoint_path=ckpt,
                    resume=args.resume, progress=not args.no_progress, model_name=args.model)
    last = history[-1] if history else {}
    print(f"{args.method} on {args.dataset}: clean accuracy {last.get('clean_acc', 0):.4f}"
          + (f", PGD accuracy {last['robust_acc']:.4f}" if "robust_acc" in last else "")
          + f"; checkpoint {ckpt}")
    return 0


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="clean and robust accuracy of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", default="mnist-5k", choices=DATASETS)
    p.add_argument("--attack", default=None, choices=["pgd", "apgd", "fgsm"],
                   help="attack to run (default: clean accuracy only)")
    p.add_argument("--norm", default="linf", choices=["linf", "l2", "l1"])
    p.add_argument("--eps", type=float, nargs="+", default=[0.1],
                   help="one ε, or several for the robust-accuracy-vs-ε curve")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=None, help="evaluate the first N test examples")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_eval)


def load_model(path):
    """Rebuild a model from a training checkpoint (architecture name in its metadata)."""
    from .models import build_model

    parts, meta = load_checkpoint(path)
    model = build_model(meta["model"])
    model.load_state_dict(parts["model"])
    return model.eval(), meta


def _attack_options(args) -> dict:
    if args.attack == "fgsm":
        if args.norm != "linf":
            raise SystemExit("npadv eval: fgsm is an L∞ attack; use --norm linf")
        return {}
    if args.attack == "apgd":
        if args.norm == "l1":
            raise SystemExit("npadv eval: apgd supports --norm linf or l2")
        return {"norm": args.norm, "steps": args.steps, "restarts": args.restarts,
                "rng": args.seed}
    return {"norm": args.norm, "steps": args.steps, "restarts": args.restarts, "rng": args.seed}


def cmd_eval(args) -> int:
    from .attacks.evaluate import Attack, evaluate
    from .data import load_dataset

    model, meta = load_model(args.checkpoint)
    _, _, x, y = load_dataset(args.dataset)
    if args.n is not None:
        x, y = x[:args.n], y[:args.n]
    attacks = ([Attack(args.attack, eps, **_attack_options(args)) for eps in args.eps]
               if args.attack else [])
    report = evaluate(model, x, y, attacks, batch_size=args.batch_size,
                      progress=not args.no_progress)
    print(f"checkpoint {args.checkpoint} ({meta['model']}, {meta['method']}), "
          f"{args.dataset} test, n = {report.n}")
    print(f"{'attack':<12}{'norm':<6}{'eps':>8}{'accuracy':>11}")
    print(f"{'clean':<12}{'':<6}{'':>8}{report.clean_accuracy:>11.4f}")
    for attack, acc in zip(attacks, report.attack_accuracy.values()):
        print(f"{attack.name:<12}{args.norm:<6}{attack.eps:>8.3f}{acc:>11.4f}")
    if len(attacks) > 1:
        print(f"{'worst case':<12}{'':<6}{'':>8}{report.robust_accuracy:>11.4f}")
    for w in report.warnings:
        print(f"warning: {w}")
    if args.json:
        result = {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "n": report.n,
                  "clean_accuracy": report.clean_accuracy,
                  "robust_accuracy": report.robust_accuracy,
                  "attacks": [{"attack": a.name, "norm": args.norm, "eps": a.eps,
                               "steps": args.steps, "restarts": args.restarts,
                               "accuracy": acc}
                              for a, acc in zip(attacks, report.attack_accuracy.values())],
                  "warnings": report.warnings}
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="train every method on MNIST-5k and compare (offline)")
    p.add_argument("--task", default="image", choices=["image", "text"],
                   help="image: MNIST-5k methods; text: natural/FGM/PGD/FreeLB on the "
                        "synthetic sentiment task over 3 seeds")
    p.add_argument("--quick", action="store_true", help="a ~1 minute version")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--eps-ramp", type=float, default=None,
                   help="ε warm-up in epochs (default: on when ε > 0.1)")
    p.add_argument("--methods", nargs="+", default=None, help="subset of methods to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo", help="folder for demo.json and demo.png")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    if args.task == "text":
        from .text import run_text_demo

        run_text_demo(quick=args.quick, seeds=3, out=args.out,
                      progress=not args.no_progress)
        return 0
    from .demo import run_demo

    run_demo(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npadv", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _eval_parser(sub)
    _demo_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # bad input: say what, exit 2
        print(f"npadv {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
