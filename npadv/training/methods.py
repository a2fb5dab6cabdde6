"""The training methods by name, with their defaults adapted to MNIST.

    method = build_method("pgd", eps=0.1, steps=10)
    method = build_method("yopo", eps=0.1, yopo_m=5, yopo_n=3)

Flags (CLI spelling → keyword): --eps eps, --alpha alpha, --steps steps, --beta beta,
--replays replays,
--yopo-m yopo_m, --yopo-n yopo_n, --freelb-k freelb_k, --adv-lr adv_lr, --adv-init-mag
adv_init_mag, --adv-max-norm adv_max_norm; also guard, guard_margin (fast), c (fgsm),
random_start (pgd), lo and hi (every method). A flag set to None takes the default below.
eps, lo and hi are accepted by every method (natural ignores all three, freelb ignores
eps); any other flag given to a method that does not use it is a ValueError.

α (--alpha) is the step at the target ε, in pixel units; the methods store it as the
ratio α/ε, so when the loop ramps ε up from 0 the step ramps with it.

Defaults (ε itself is the CLI's; 0.1 in the demo, 0.3 in the papers' MNIST runs):

| method  | default                                   | source                                    |
|---------|-------------------------------------------|-------------------------------------------|
| natural | —                                         | —                                         |
| fgsm    | c = 0.5                                   | Goodfellow et al. 2015, Sec. 5 (ε = 0.25) |
| fast    | α = 1.25ε; guard on: PGD-10 (α = ε/4) on  | Wong et al. 2020: MNIST α = 0.375 at      |
|         | the first 256 training examples after     | ε = 0.3; their early stopping stops on a  |
|         | each epoch, stop on a drop > 0.2 below    | PGD accuracy drop of more than 0.2 on a   |
|         | the best and restore the best weights     | training batch                            |
| pgd     | K = 10, α = 2.5ε/K (= ε/4), random start  | Madry et al. 2018 use K = 40, α = 0.01 at |
|         |                                           | ε = 0.3; K = 10 fits the demo's budget,   |
|         |                                           | 2.5ε/K lets K steps cross the ball        |
| free    | m = 8 replays, step ε; epochs ÷ m         | Shafahi et al. 2019 (m = 8 on CIFAR-10)   |
| yopo    | m = 5, n = 3, α = ε/4                     | Zhang et al. 2019: YOPO-5-3 with α = 2/255|
|         |                                           | at ε = 8/255 (CIFAR-10); the MNIST run is |
|         |                                           | YOPO-5-10 with α = 0.01 at ε = 0.3        |
| freelb  | K = 3, α (adv-lr) = 0.5, σ (adv-init-mag) | Zhu et al. 2020 (K = 2-3 ascent steps,    |
|         | = 0, max_norm = 0 (unbounded), pixels     | σ = 0 allowed, max_norm 0 = no bound);    |
|         | kept in [0, 1]                            | α is an L2 step, rescaled from embedding  |
|         |                                           | norms to pixels (‖x‖₂ ≈ 9 for MNIST):     |
|         |                                           | 3 steps move δ at most 1.5, under the     |
|         |                                           | usual MNIST L2 radius of 2                |
| trades  | K = 10, α = ε/4, β = 6                    | Zhang et al. 2019: β = 1/λ = 6; MNIST    |
|         |                                           | K = 40, α = 0.01 at ε = 0.3               |
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

from .fast_at import FastAT
from .fgsm_at import FGSMAT
from .free_at import FreeAT
from .freelb import FreeLB
from .natural import Natural
from .pgd_at import PGDAT
from .trades import TRADES
from .yopo import YOPO

_COMMON = ("eps", "lo", "hi")


def _natural(eps: float = 0.1, lo: float | None = 0.0, hi: float | None = 1.0) -> Natural:
    return Natural()


def _fgsm(eps: float = 0.1, c: float = 0.5, lo: float | None = 0.0,
          hi: float | None = 1.0) -> FGSMAT:
    return FGSMAT(eps, c=c, lo=lo, hi=hi)


def _fast(eps: float = 0.1, alpha: float | None = None, guard: bool = True,
          guard_margin: float = 0.2, lo: float | None = 0.0, hi: float | None = 1.0) -> FastAT:
    return FastAT(eps, alpha=alpha, guard=guard, guard_margin=guard_margin, lo=lo, hi=hi)


def _pgd(eps: float = 0.1, alpha: float | None = None, steps: int = 10,
         random_start: bool = True, lo: float | None = 0.0, hi: float | None = 1.0) -> PGDAT:
    return PGDAT(eps, alpha=alpha, steps=steps, random_start=random_start, lo=lo, hi=hi)


def _free(eps: float = 0.1, replays: int = 8, lo: float | None = 0.0,
          hi: float | None = 1.0) -> FreeAT:
    return FreeAT(eps, replays=replays, lo=lo, hi=hi)


def _yopo(eps: float = 0.1, alpha: float | None = None, yopo_m: int = 5, yopo_n: int = 3,
          lo: float | None = 0.0, hi: float | None = 1.0) -> YOPO:
    return YOPO(eps, m=yopo_m, n=yopo_n, alpha=alpha, lo=lo, hi=hi)


def _freelb(eps: float = 0.1, freelb_k: int = 3, adv_lr: float = 0.5,
            adv_init_mag: float = 0.0, adv_max_norm: float = 0.0, lo: float | None = 0.0,
            hi: float | None = 1.0) -> FreeLB:
    return FreeLB(K=freelb_k, alpha=adv_lr, sigma=adv_init_mag, max_norm=adv_max_norm,
                  lo=lo, hi=hi)


def _trades(eps: float = 0.1, alpha: float | None = None, steps: int = 10, beta: float = 6.0,
            lo: float | None = 0.0, hi: float | None = 1.0) -> TRADES:
    return TRADES(eps, alpha=alpha, steps=steps, beta=beta, lo=lo, hi=hi)


METHODS: dict[str, Callable[..., object]] = {
    "natural": _natural, "fgsm": _fgsm, "fast": _fast, "pgd": _pgd, "free": _free,
    "yopo": _yopo, "freelb": _freelb, "trades": _trades,
}


def method_flags(name: str) -> list[str]:
    """The flags (keyword names) the method `name` accepts, common ones included."""
    return list(inspect.signature(METHODS[name]).parameters)


def build_method(name: str, **flags):
    """A training method by name with MNIST defaults; flags that are None take the default.

    Raises ValueError for an unknown name, or for a method-specific flag that the method
    does not use (e.g. replays for pgd).
    """
    key = name.lower().replace("_", "-")
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    given = {k: v for k, v in flags.items() if v is not None}
    accepted = method_flags(key)
    stray = sorted(k for k in given if k not in accepted)
    if stray:
        def flag(k):
            return "--" + k.replace("_", "-")
        raise ValueError(f"method {key!r} does not use {', '.join(map(flag, stray))}; its "
                         f"flags are {', '.join(flag(k) for k in accepted if k not in _COMMON)}"
                         f" (and {', '.join(map(flag, _COMMON))})")
    return METHODS[key](**given)
