"""Every number a refactoring must keep: gradients, attack iterates, one-batch updates.

    python bench/reference_numbers.py --save before.npz      # on the old tree
    python bench/reference_numbers.py --compare before.npz   # on the new tree

Computes, in float64 on small models with fixed seeds: parameter and input gradients of
the MLP and small_cnn; FGSM, FGM, PGD (L∞, L2, L1, with restarts), APGD, APGD-T and
Square adversarial inputs; the weights after one minibatch of every image training method
(two steps for the stateful ones) and of every text method; the text perturbations (FGM,
PGD on embeddings); and short whole runs of the shared loop, image and text (`loop`).
--compare prints the largest difference of each array from the saved file, relative to
the array's scale, and exits 1 if any exceeds --tol. --parts limits both to some groups.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import npadv
from npadv import attacks, optim
from npadv import functional as F
from npadv.methods import accepted, build_method, method_class, names


def _at_eps(name: str, eps: float) -> dict:
    return {"eps": eps} if "eps" in accepted(method_class(name)) else {}


def _images(n: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28))
    y = rng.integers(0, 10, n)
    return x, y


def _weights(model) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in model.state_dict().items()}


def gradients(out: dict) -> None:
    x, y = _images()
    for name in ("mlp", "small_cnn"):
        model = npadv.build_model(name, seed=1, dtype=np.float64)
        xt = npadv.Tensor(x, requires_grad=True)
        loss = F.cross_entropy(model(xt), y)
        loss.backward()
        out[f"grad/{name}/input"] = xt.grad
        for k, p in zip(model.state_dict(), model.parameters(), strict=True):
            out[f"grad/{name}/{k}"] = p.grad
        _, g, _ = attacks.input_gradient(model, x, y, "cw")
        out[f"grad/{name}/input_cw"] = g


def attack_points(out: dict) -> None:
    x, y = _images()
    model = npadv.build_model("small_cnn", seed=2, dtype=np.float64)
    out["attack/fgsm"] = attacks.fgsm(model, x, y, 0.1)
    out["attack/fgm"] = attacks.fgm(model, x, y, 1.0, lo=0.0, hi=1.0)
    out["attack/pgd_linf"] = attacks.pgd(model, x, y, 0.1, steps=5, rng=0)
    out["attack/pgd_linf_restarts"] = attacks.pgd(model, x, y, 0.1, steps=3, restarts=2,
                                                  rng=1, loss="cw")
    out["attack/pgd_l2"] = attacks.pgd(model, x, y, 1.5, steps=5, norm="l2", rng=2)
    out["attack/pgd_l1"] = attacks.pgd(model, x, y, 8.0, steps=5, norm="l1", rng=3)
    out["attack/pgd_early"] = attacks.pgd(model, x, y, 0.2, steps=5, early_stop=True, rng=4)
    out["attack/apgd_ce"] = attacks.apgd(model, x, y, 0.1, steps=10, rng=5)
    out["attack/apgd_dlr_l2"] = attacks.apgd(model, x, y, 1.5, norm="l2", steps=10,
                                             loss="dlr", rng=6)
    out["attack/apgd_t"] = attacks.apgd_targeted(model, x, y, 0.1, steps=5, n_targets=3, rng=7)
    out["attack/square"] = attacks.square(model, x, y, 0.1, n_queries=30, rng=8)


IMAGE_METHODS = {
    "natural": {}, "fgsm": {}, "fast": {"guard": False}, "pgd": {"steps": 3},
    "free": {"replays": 2}, "yopo": {"yopo_m": 2, "yopo_n": 2}, "freelb": {"adv_init_mag": 0.1},
    "trades": {"steps": 3},
}


def image_updates(out: dict) -> None:
    x, y = _images(16, seed=3)
    for name, flags in IMAGE_METHODS.items():
        for arch in ("mlp", "small_cnn"):
            model = npadv.build_model(arch, seed=4, dtype=np.float64)
            method = build_method(name, **_at_eps(name, 0.1), **flags)
            opt = optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=5e-4)
            for i in range(2):
                rng = np.random.default_rng([0, 0, i])
                loss = method.step(model, opt, x[8 * i:8 * i + 8], y[8 * i:8 * i + 8], rng)
                out[f"train/{name}/{arch}/loss{i}"] = np.array(loss)
            for k, v in _weights(model).items():
                out[f"train/{name}/{arch}/{k}"] = v


def text_numbers(out: dict) -> None:
    from npadv import text
    from npadv.text.batching import iterate_text_batches

    task = text.make_text_task(n_train=64, n_test=16)
    ids, mask, y = next(iterate_text_batches(task.train_ids, task.train_y, 16, seed=0,
                                             epoch=0))
    model = text.text_cnn(len(task.vocab), seed=5)
    out["text/fgm_r"] = text.fgm_perturbation(model, ids, mask, y, 1.0)
    out["text/pgd_delta"] = text.pgd_embedding(model, ids, mask, y, 1.0, 3,
                                               random_start=True, rng=np.random.default_rng(1))
    for name in names("text"):
        model = text.text_cnn(len(task.vocab), seed=5)
        method = build_method(name, task="text")
        opt = optim.Adam(model.parameters(), 2e-3)
        for i in range(2):
            loss = method.step(model, opt, ids, mask, y, np.random.default_rng([0, 0, i]))
            out[f"text/{name}/loss{i}"] = np.array(loss)
        for k, v in _weights(model).items():
            out[f"text/{name}/{k}"] = v


def loop_runs(out: dict) -> None:
    """Whole runs of the shared loop: two epochs of four image methods on 512 MNIST-5k
    images (per-epoch clean and PGD checks) and one epoch of the four text methods."""
    from npadv import text
    from npadv.data import load_mnist_5k
    from npadv.training import TrainConfig, train

    x, y, xt, yt = load_mnist_5k()
    data = (x[:512], y[:512], xt[:200], yt[:200])
    for name, flags in [("pgd", {"steps": 2}), ("fast", {}), ("free", {"replays": 2}),
                        ("trades", {"steps": 2})]:
        model = npadv.small_cnn(seed=0)
        history = train(model, build_method(name, eps=0.1, **flags), data,
                        TrainConfig(epochs=2, eval_eps=0.1, eval_size=100, eval_steps=3),
                        progress=False)
        _record(out, f"loop/image/{name}", model, history)
    task = text.make_text_task(n_train=200, n_test=100)
    for name in names("text"):
        model = text.text_cnn(len(task.vocab), seed=0)
        result = text.train_text(model, build_method(name, task="text"), task,
                                 text.TextTrainConfig(epochs=1, eval_steps=3), progress=False)
        _record(out, f"loop/text/{name}", model, result["history"])


def _record(out: dict, key: str, model, history: list[dict]) -> None:
    for k, v in _weights(model).items():
        out[f"{key}/{k}"] = v
    out[f"{key}/records"] = np.array([[r["loss"], r["clean_acc"], r.get("robust_acc", -1),
                                       r["full_passes"]] for r in history])


PARTS = {"gradients": gradients, "attacks": attack_points, "image": image_updates,
         "text": text_numbers, "loop": loop_runs}


def compute(parts=tuple(PARTS)) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in parts:
        PARTS[name](out)
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="FILE")
    g.add_argument("--compare", metavar="FILE")
    p.add_argument("--tol", type=float, default=1e-12,
                   help="largest allowed |new − old| / max(1, max|old|) (default 1e-12)")
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS),
                   help="compute and compare only these groups (default all)")
    args = p.parse_args(argv)
    numbers = compute(args.parts)
    if args.save:
        np.savez(args.save, **numbers)
        print(f"saved {len(numbers)} arrays to {args.save}")
        return 0
    prefixes = {"gradients": "grad/", "attacks": "attack/", "image": "train/", "text": "text/",
                "loop": "loop/"}
    old = {k: v for k, v in np.load(args.compare).items()
           if any(k.startswith(prefixes[part]) for part in args.parts)}
    worst, bad = 0.0, []
    for key in sorted(set(old) | set(numbers)):
        if key not in old or key not in numbers:
            bad.append(f"{key}: only in {'new' if key in numbers else 'old'}")
            continue
        a, b = old[key].astype(np.float64), numbers[key].astype(np.float64)
        if a.shape != b.shape:
            bad.append(f"{key}: shape {a.shape} -> {b.shape}")
            continue
        diff = float(np.max(np.abs(a - b), initial=0.0)) / max(1.0, float(np.max(np.abs(a),
                                                                                initial=0)))
        worst = max(worst, diff)
        if diff > args.tol:
            bad.append(f"{key}: relative difference {diff:.3g}")
    print(f"compared {len(numbers)} arrays; largest relative difference {worst:.3g}")
    for line in bad:
        print("  DIFFERS", line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
