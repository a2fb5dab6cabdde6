"""The training methods by name: each class declares itself, this file lists the classes.

    method = build_method("pgd", eps=0.1, steps=10)               # image, the default task
    method = build_method("freelb", task="text", freelb_k=3)      # on word embeddings
    print(method_table())                                         # the README's table

A method class declares, once and next to its code, its name, task, paper, summary, claim,
the flags a user may set and their help (see npadv.training.method). Its constructor's
signature holds every default. Everything else reads that declaration: build_method, the
CLI's --method choices, flag help and epilog, the experiments' epoch arithmetic and the
README's method table (a test checks that the README matches `method_table()`).

Adding a method: one new file with its Method subclass, and its class in REGISTERED below.

Flags go by keyword: the method's declared flags, and eps, lo and hi where its constructor
has them (natural training has none; image FreeLB's radius is adv_max_norm, so it has no
eps; text methods have no box). Any other flag is a ValueError naming it, so that no
setting is silently ignored. A flag given as None takes the default.
"""
from __future__ import annotations

import inspect
import textwrap

from .text.methods import FGM, TextFreeLB, TextNatural, TextPGD
from .training.fast_at import FastAT
from .training.fgsm_at import FGSMAT
from .training.free_at import FreeAT
from .training.freelb import FreeLB
from .training.ibp import IBP
from .training.method import Method
from .training.natural import Natural
from .training.pgd_at import PGDAT
from .training.trades import TRADES
from .training.yopo import YOPO

REGISTERED: tuple[type[Method], ...] = (
    Natural, FGSMAT, FastAT, PGDAT, FreeAT, YOPO, FreeLB, TRADES, IBP,  # image
    TextNatural, FGM, TextPGD, TextFreeLB,                              # text
)
TASKS = ("image", "text")
COMMON = ("eps", "lo", "hi")
METHODS: dict[tuple[str, str], type[Method]] = {(cls.task, cls.name): cls
                                                for cls in REGISTERED}


def names(task: str = "image") -> list[str]:
    """The method names of `task`, in registration order."""
    return [cls.name for cls in REGISTERED if cls.task == task]


def method_class(name: str, task: str = "image") -> type[Method]:
    """The class registered as `name` for `task`; ValueError names the choices."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    key = (task, name.lower().replace("_", "-"))
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r} for the {task} task; choose from "
                         f"{names(task)}")
    return METHODS[key]


def _signature(cls: type[Method]) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items() if k != "self"}


def defaults(cls: type[Method]) -> dict[str, object]:
    """Each flag of `cls` (eps included, if it has one) with its default: the constructor's,
    or for a derived default (None in the signature) the rule that derives it."""
    sig = _signature(cls)
    out: dict[str, object] = {}
    for flag in (["eps"] if "eps" in sig else []) + list(cls.flags):
        default = sig[cls.params.get(flag, flag)].default
        out[flag] = cls.derived.get(flag, default) if default is None else default
    return out


def accepted(cls: type[Method]) -> list[str]:
    """The flags build_method accepts for `cls`: eps, lo, hi where it has them, then its own."""
    return [k for k in COMMON if k in _signature(cls)] + list(cls.flags)


def build_method(name: str, task: str = "image", **flags) -> Method:
    """A training method by name with its declared defaults; flags that are None take them.

    Raises ValueError for an unknown name, or for a flag the method does not take (e.g.
    replays for pgd, eps for natural).
    """
    cls = method_class(name, task)
    given = {k: v for k, v in flags.items() if v is not None}
    stray = sorted(k for k in given if k not in accepted(cls))
    if stray:
        def flag(k):
            return "--" + k.replace("_", "-")
        own = ", ".join(map(flag, accepted(cls))) or "none"
        raise ValueError(f"method {cls.name!r} does not use {', '.join(map(flag, stray))}; "
                         f"its flags are {own}")
    return cls(**{cls.params.get(k, k): v for k, v in given.items()})


def flag_help(flag: str) -> str:
    """Help for one flag from the methods that declare it, defaults grouped:
    "ascent steps K (default 10: image pgd, trades; 3: text pgd)"."""
    helps: dict[str, dict[str, list[str]]] = {}          # help -> default -> methods
    for cls in REGISTERED:
        if flag in cls.flags:
            by_default = helps.setdefault(cls.flags[flag], {})
            by_default.setdefault(_show(defaults(cls)[flag]), []).append(
                f"{cls.task} {cls.name}")
    parts = []
    for text, by_default in helps.items():
        shown = "; ".join(f"{default}: {_join(users)}" for default, users in by_default.items())
        parts.append(f"{text} (default {shown})")
    return "; ".join(parts)


def _join(users: list[str]) -> str:
    """["image pgd", "image trades"] -> "image pgd, trades"."""
    out, task = [], None
    for user in users:
        t, name = user.split(" ", 1)
        out.append(name if t == task else user)
        task = t
    return ", ".join(out)


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _settings(cls: type[Method]) -> str:
    return ", ".join(f"{k.replace('_', '-')} {_show(v)}" for k, v in defaults(cls).items()
                     ) or "—"


def method_table() -> str:
    """The README's table of methods, as markdown: one row per registered method."""
    rows = ["| method | task | paper | one minibatch | defaults | file |",
            "|---|---|---|---|---|---|"]
    for cls in REGISTERED:
        file = inspect.getmodule(cls).__name__.replace(".", "/") + ".py"
        rows.append(f"| `{cls.name}` {cls.title} | {cls.task} | {cls.paper or '—'} | "
                    f"{cls.summary} | {_settings(cls)} | `{file}` |")
    return "\n".join(rows) + "\n"


def method_help() -> str:
    """The CLI's epilog: every method of every task in one line each."""
    lines = []
    for task in TASKS:
        lines.append(f"--task {task} methods:")
        for cls in REGISTERED:
            if cls.task == task:
                paper = f" ({cls.paper})" if cls.paper else ""
                lines += textwrap.wrap(f"{cls.title}{paper}: {cls.summary}", 88,
                                       initial_indent=f"  {cls.name:<9}",
                                       subsequent_indent=" " * 11)
    return "\n".join(lines) + "\n"
