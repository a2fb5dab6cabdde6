# %% [markdown]
# # Attacks, pictured
#
# Two small_cnn models on MNIST-5k: one trained naturally, one with PGD adversarial
# training (Madry et al. 2018) at L∞ ε = 0.1. Against both:
#
# 1. FGSM, PGD in L∞, L2 and L1, and APGD: robust accuracy, and a grid per attack
#    (clean image, perturbation, adversarial image, prediction and confidence);
# 2. robust accuracy against ε for both models;
# 3. the loss landscape along the signed gradient and along a random direction, for a
#    smooth model and a gradient-masked one (the natural model with its last layer scaled
#    ×10⁴: same predictions, vanishing cross-entropy gradients).
#
#     python demos/attacks.py [--quick] [--out DIR]
#
# The full run takes about 3 minutes on 2 cores (500 test images). --quick (about 15 s)
# trains each model for one epoch and evaluates on 60 test images; its numbers
# are those of briefly trained models (the JSON says so). Writes attacks.json, one
# grid_<attack>.png per attack, robust_accuracy.png and loss_landscape.png.

# %%
from __future__ import annotations

import os

# One BLAS thread: the matrices here are small, and a multi-threaded OpenBLAS on a busy
# machine spends its time waiting (measured 10-20x slower). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from npadv import small_cnn
from npadv.attacks import (
    Attack,
    ce_loss,
    check_attack_gradients,
    evaluate,
    input_gradient,
    predict,
    robust_accuracy_curve,
)
from npadv.data import load_mnist_5k
from npadv.methods import build_method
from npadv.training import TrainConfig, train

parser = argparse.ArgumentParser(description="FGSM, PGD and APGD against a natural and a "
                                             "PGD-trained CNN, with pictures")
parser.add_argument("--quick", action="store_true",
                    help="one training epoch per model, 60 test images")
parser.add_argument("--out", type=Path, default=Path("demos/out/attacks"),
                    help="folder for the PNGs and attacks.json")
args, _ = parser.parse_known_args()
args.out.mkdir(parents=True, exist_ok=True)
t_start = time.perf_counter()

EPS = 0.1                                  # L∞ radius: training and the L∞ attacks
n_eval = 60 if args.quick else 500         # test images attacked
steps = 10 if args.quick else 40           # PGD steps (APGD gets twice as many)
results: dict = {"quick": args.quick, "eps_linf": EPS, "test_images": n_eval,
                 "note": ("quick run: each model trained for one epoch, numbers from 60 test "
                          "images; the full run trains for longer") if args.quick else ""}

# %% [markdown]
# ## Two models
#
# Both start from the same weights. PGD-AT replaces each batch by PGD-K adversarial
# examples at ε = 0.1 before the SGD step (K = 7; 3 under --quick), so an epoch costs
# about K + 1 times a natural one.

# %%
x_train, y_train, x_test, y_test = load_mnist_5k()
data = (x_train, y_train, x_test, y_test)
plan = {"natural": (build_method("natural"), 1 if args.quick else 5),
        "PGD-AT": (build_method("pgd", eps=EPS, steps=3 if args.quick else 7),
                   1 if args.quick else 5)}
models, results["models"] = {}, {}
for name, (method, epochs) in plan.items():
    model = small_cnn(seed=0)
    t0 = time.perf_counter()
    history = train(model, method, data,
                    TrainConfig(epochs=epochs, batch_size=64, lr=0.05, eval_size=n_eval),
                    progress=False)
    seconds = time.perf_counter() - t0
    model.eval()
    models[name] = model
    results["models"][name] = {"method": method.name, "settings": method.settings(),
                               "epochs": epochs, "train_images": len(x_train),
                               "train_time": seconds, "briefly_trained": args.quick,
                               "clean_accuracy": history[-1]["clean_acc"]}
    print(f"{name:8s} {epochs} epoch(s) on {len(x_train)} images, {seconds:5.1f} s: clean "
          f"accuracy {history[-1]['clean_acc']:.3f} on {n_eval} test images"
          + ("  (briefly trained)" if args.quick else ""))
x_eval, y_eval = x_test[:n_eval], y_test[:n_eval]

# %% [markdown]
# ## Five attacks
#
# FGSM: one signed-gradient step of size ε. PGD: `steps` projected steps from a random
# start, in the L∞ ball (ε = 0.1), the L2 ball (ε = 1.5) and the L1 ball (ε = 10, sparse
# steps that move only the pixels with the largest gradient). APGD: PGD with an adaptive
# step size and momentum (Croce & Hein 2020), L∞. Accuracy counts an example as robust
# if it is classified correctly both clean and after the attack.

# %%
attacks = {
    "fgsm": Attack("fgsm", EPS),
    "pgd_linf": Attack("pgd", EPS, steps=steps, norm="linf", rng=0),
    "pgd_l2": Attack("pgd", 1.5, steps=steps, norm="l2", rng=0),
    "pgd_l1": Attack("pgd", 10.0, steps=steps, norm="l1", rng=0),
    "apgd": Attack("apgd", EPS, steps=2 * steps, norm="linf", rng=0),
}
titles = {"fgsm": "FGSM, L∞ ε = 0.1", "pgd_linf": f"PGD-{steps}, L∞ ε = 0.1",
          "pgd_l2": f"PGD-{steps}, L2 ε = 1.5", "pgd_l1": f"PGD-{steps}, L1 ε = 10",
          "apgd": f"APGD-CE ({2 * steps} steps), L∞ ε = 0.1"}
results["attacks"] = {key: {"title": titles[key], "settings": attack.settings()}
                      for key, attack in attacks.items()}
print(f"\n{'attack':<36s}" + "".join(f"{name:>10s}" for name in models))
print(f"{'clean':<36s}" + "".join(f"{results['models'][n]['clean_accuracy']:>10.3f}"
                                  for n in models))
for name, model in models.items():
    report = evaluate(model, x_eval, y_eval, list(attacks.values()), batch_size=250,
                      checks=False)
    for key, accuracy in zip(attacks, report.attack_accuracy.values(), strict=True):
        results["attacks"][key][name] = accuracy
    results["models"][name]["worst_case_accuracy"] = report.robust_accuracy
for key in attacks:
    print(f"{titles[key]:<36s}" + "".join(f"{results['attacks'][key][n]:>10.3f}"
                                          for n in models))
print(f"{'worst case: any of the five':<36s}"
      + "".join(f"{results['models'][n]['worst_case_accuracy']:>10.3f}" for n in models))

# %% [markdown]
# Training against L∞ perturbations protects mostly against L∞ ones: against the L2 and
# above all the sparse L1 attack (a few pixels changed a lot) the two models are much
# closer (Tramèr & Boneh, NeurIPS 2019, on robustness to one norm but not another).
#
# ### A grid per attack
#
# Six test digits, with both models' predictions. For each model, the attack's
# perturbation δ = x' − x (red brightens a pixel, blue darkens it; scaled so that the
# largest |δ| in the row is full colour) and the adversarial image with the prediction and
# its softmax confidence (red when wrong).

# %%
shown, gap = 6, 3
x_show, y_show = x_test[:shown], y_test[:shown]


def predictions(model, images: np.ndarray) -> list[tuple[str, bool]]:
    """('7 (0.98)', correct?) per image: predicted class and its softmax probability."""
    z = predict(model, images)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return [(f"{g} ({p[i, g]:.2f})", g == y_show[i]) for i, g in enumerate(p.argmax(axis=1))]


def show_row(ax, images: np.ndarray, cmap: str, vmin: float, vmax: float, label: str,
             captions: list[list[tuple[str, bool]]]):
    """Draw images (n, 28, 28) side by side on one axes, captions above each (red if wrong)."""
    tiles = [np.pad(im, ((0, 0), (0, gap)), constant_values=np.nan) for im in images]
    colormap = plt.get_cmap(cmap).with_extremes(bad="0.8")
    handle = ax.imshow(np.hstack(tiles)[:, :-gap], cmap=colormap, vmin=vmin, vmax=vmax)
    for line, row in enumerate(reversed(captions)):
        for i, (text, ok) in enumerate(row):
            ax.text(i * (28 + gap) + 13.5, -1.5 - 4.2 * line, text, ha="center", fontsize=9,
                    color="black" if ok else "tab:red")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(label, fontsize=9.5)
    return handle


grid_files = []
for key, attack in attacks.items():
    fig, axes = plt.subplots(5, 1, figsize=(10, 8.6))
    fig.subplots_adjust(left=0.1, right=0.86, top=0.84, bottom=0.01, hspace=0.32)
    clean_captions = [[(f"label {y}", True) for y in y_show]] + [
        [(f"{name}: {text}", ok) for text, ok in predictions(model, x_show)]
        for name, model in models.items()]
    show_row(axes[0], x_show[:, 0], "gray", 0, 1, "clean", clean_captions)
    for m, (name, model) in enumerate(models.items()):
        x_adv = attack.run(model, x_show, y_show)
        delta = (x_adv - x_show)[:, 0]
        scale = np.abs(delta).max() or 1.0
        handle = show_row(axes[1 + 2 * m], delta / scale, "RdBu_r", -1, 1,
                          f"{name}:\nδ × {1 / scale:.0f}", [])
        show_row(axes[2 + 2 * m], x_adv[:, 0], "gray", 0, 1, f"{name}:\nadversarial",
                 [[(f"pred {text}", ok) for text, ok in predictions(model, x_adv)]])
    fig.colorbar(handle, cax=fig.add_axes([0.88, 0.3, 0.018, 0.35]),
                 label="δ = x' − x, scaled to ±1 per row")
    fig.suptitle(f"{titles[key]}: natural vs PGD-trained small_cnn\n"
                 "(prediction and softmax confidence; red = wrong)", fontsize=12)
    fig.savefig(args.out / f"grid_{key}.png", dpi=100)
    plt.close(fig)
    grid_files.append(f"grid_{key}.png")
print(f"wrote {', '.join(grid_files)}")

# %% [markdown]
# ## Robust accuracy against ε
#
# PGD in L∞ at each radius (`robust_accuracy_curve`, which also checks that accuracy does
# not rise with ε). The dotted line marks the training ε of PGD-AT.

# %%
eps_grid = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3] if args.quick else \
    [0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]
curve_steps = 10 if args.quick else 20
results["eps_curve"] = {"eps": eps_grid, "attack": f"PGD-{curve_steps} L∞"}
fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
for (name, model), marker in zip(models.items(), "os", strict=True):
    curve = robust_accuracy_curve(model, x_eval, y_eval, eps_grid,
                                  Attack("pgd", 0.0, steps=curve_steps, rng=0), batch_size=250)
    results["eps_curve"][name] = curve.accuracy.tolist()
    ax.plot(curve.eps, curve.accuracy, marker=marker, label=name)
    print(f"{name:8s} PGD-{curve_steps} accuracy at ε = "
          + ", ".join(f"{e:g}: {a:.3f}" for e, a in zip(curve.eps, curve.accuracy, strict=True)))
ax.axvline(EPS, color="gray", ls=":", label=f"PGD-AT training ε = {EPS}")
ax.set(xlabel="L∞ radius ε", ylabel="robust accuracy", ylim=(-0.02, 1.02),
       title=f"MNIST test accuracy under PGD-{curve_steps} ({n_eval} images)"
       + (",\nmodels trained for one epoch (--quick)" if args.quick else ""))
ax.grid(alpha=0.3)
ax.legend()
fig.savefig(args.out / "robust_accuracy.png", dpi=110)

# %% [markdown]
# ## Gradient masking and the loss landscape
#
# Multiply the natural model's last layer by 10⁴. Its predictions do not change, but the
# softmax saturates: on a correctly classified image the cross-entropy is 0 to float32
# precision and so is its gradient. FGSM and PGD on the cross-entropy then have nothing to
# follow, and the model looks robust. It is not: the same PGD on the margin loss
# max_{j≠y} z_j − z_y, or the natural model's own adversarial examples (a transfer attack),
# break it as easily as the natural model.

# %%
masked = small_cnn(seed=0)
state = models["natural"].state_dict()
last = [k for k in state if k.startswith(f"{len(masked) - 1}.")]  # the final Linear
masked.load_state_dict({k: v * 1e4 if k in last else v for k, v in state.items()})
masked.eval()

x_transfer = Attack("pgd", EPS, steps=steps, rng=0).run(models["natural"], x_eval, y_eval)
masking = {
    "clean": float((predict(masked, x_eval).argmax(1) == y_eval).mean()),
    "fgsm": None, "pgd_ce": None, "pgd_margin": None,
    "transfer_from_natural": float((predict(masked, x_transfer).argmax(1) == y_eval).mean()),
}
report = evaluate(masked, x_eval, y_eval,
                  [Attack("fgsm", EPS), Attack("pgd", EPS, steps=steps, rng=0),
                   Attack("pgd", EPS, steps=steps, loss="cw", rng=0)],
                  batch_size=250, checks=False)
masking["fgsm"], masking["pgd_ce"], masking["pgd_margin"] = report.attack_accuracy.values()
masking["warnings"] = check_attack_gradients(masked, x_eval, y_eval, "ce", f"PGD-{steps} (ce)")
results["masking"] = masking
print(f"\nnatural model with its last layer ×1e4, L∞ ε = {EPS}:")
for key, label in [("clean", "clean"), ("fgsm", "FGSM"), ("pgd_ce", f"PGD-{steps}, cross-entropy"),
                   ("pgd_margin", f"PGD-{steps}, margin loss"),
                   ("transfer_from_natural", "PGD examples of the natural model")]:
    print(f"  {label:<36s} {masking[key]:.3f}")
for message in masking["warnings"]:
    print(f"  check_attack_gradients: {message}")

# %% [markdown]
# The loss landscape (as in Tramèr et al. 2018 and Athalye et al. 2018): the cross-entropy
# of x + t·d, clipped to [0, 1], for t from 0 to 0.3, along d = sign(∇ₓ loss) of the model
# itself and along a random sign vector d. Lines are the median over the test images that
# the natural model classifies correctly; bands the 25-75 % range. A smooth model rises
# steadily along its gradient and barely along a random direction; the masked model is flat
# along its own (zero) gradient, then jumps off a cliff where the prediction flips.

# %%
n_land = 50 if args.quick else 200
keep = np.flatnonzero(predict(models["natural"], x_eval).argmax(1) == y_eval)[:n_land]
x_land, y_land = x_eval[keep], y_eval[keep]
t_grid = np.linspace(0.0, 0.3, 16 if args.quick else 31)
random_dir = np.sign(np.random.default_rng(0).standard_normal(x_land.shape)).astype(np.float32)


def losses_along(model, direction: np.ndarray) -> np.ndarray:
    """(T, N) per-example cross-entropy at clip(x + t·d, 0, 1) for each t in t_grid."""
    points = [np.clip(x_land + t * direction, 0, 1).astype(np.float32) for t in t_grid]
    return np.stack([ce_loss(predict(model, x), y_land).data for x in points])


grad_dir = {name: np.sign(input_gradient(model, x_land, y_land)[1])
            for name, model in [*models.items(), ("masked", masked)]}
panels = {
    "natural": {"own signed gradient": losses_along(models["natural"], grad_dir["natural"]),
                "random sign direction": losses_along(models["natural"], random_dir)},
    "PGD-AT": {"own signed gradient": losses_along(models["PGD-AT"], grad_dir["PGD-AT"]),
               "random sign direction": losses_along(models["PGD-AT"], random_dir)},
    "masked": {
        "own signed gradient": losses_along(masked, grad_dir["masked"]),
        "random sign direction": losses_along(masked, random_dir),
        "natural model's signed gradient": losses_along(masked, grad_dir["natural"])},
}
zero_grad_share = float((grad_dir["masked"].reshape(len(keep), -1) == 0).all(axis=1).mean())
results["landscape"] = {
    "t": t_grid.tolist(), "images": len(keep), "masked_zero_gradient_share": zero_grad_share,
    "median_loss": {p: {d: np.median(v, axis=1).tolist() for d, v in lines.items()}
                    for p, lines in panels.items()}}
print(f"\nloss landscape over {len(keep)} images; the masked model's CE gradient is exactly "
      f"zero for {zero_grad_share:.0%} of them")
for p, lines in panels.items():
    for d, v in lines.items():
        print(f"  {p:<34s} along {d:<32s} median loss at t = 0, 0.1, 0.3: "
              + ", ".join(f"{np.median(v[np.argmin(np.abs(t_grid - t))]):.3g}"
                          for t in (0.0, 0.1, 0.3)))

styles = {"own signed gradient": ("tab:red", "-", 4),
          "random sign direction": ("tab:blue", "--", 2),
          "natural model's signed gradient": ("tab:purple", ":", 2.5)}
fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), constrained_layout=True)
for ax, (p, lines) in zip(axes, panels.items(), strict=True):
    for d, v in lines.items():
        color, ls, lw = styles[d]
        ax.plot(t_grid, np.median(v, axis=1), color=color, ls=ls, lw=lw, label=d)
        ax.fill_between(t_grid, *np.percentile(v, [25, 75], axis=1), color=color, alpha=0.15)
    ax.axvline(EPS, color="gray", ls=":", lw=1)
    ax.set(title=p, xlabel="step t along the direction (L∞ distance)",
           ylabel="cross-entropy loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="upper left")
axes[2].set_yscale("symlog", linthresh=1.0)
axes[2].set_ylabel("cross-entropy loss (symlog scale)")
axes[2].set_ylim(-0.3, 1e6)
axes[2].set_title("masked: natural, last layer ×10⁴\n(its own cross-entropy gradient is exactly 0)",
                  fontsize=11)
fig.suptitle("Loss along the signed gradient and along a random direction "
             "(median and 25-75 % band; dotted line at ε = 0.1)")
fig.savefig(args.out / "loss_landscape.png", dpi=110)

# %%
results["total_time"] = time.perf_counter() - t_start
(args.out / "attacks.json").write_text(json.dumps(results, indent=2))
print(f"total {results['total_time']:.1f} s; wrote {args.out}/attacks.json, "
      "robust_accuracy.png, loss_landscape.png and the grids")
