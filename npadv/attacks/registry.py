"""One declaration per attack: what it is, what it supports, how `npadv eval` runs it.

Each attack declares itself once, beside its function in its own file (pgd.py ends with
`PGD = AttackSpec(name="pgd", run=pgd, ...)`), and evaluate.py registers it with one line
in ATTACKS. Everything that needs to know what an attack supports reads the declaration:
the attack's own argument checks (its norms, its losses), Attack (the loss it follows),
evaluate's margin-loss check (g), and `npadv eval` (its --attack choices, the flags each
attack takes, their defaults and help). Adding an attack is one new file, with the function
and its AttackSpec, and one registration in evaluate.py.

A declaration is checked against its function's signature when it is made: a norm option
exactly when it supports several norms, a loss option exactly when it can follow several
losses, and a parameter for every `npadv eval` option it takes.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .projections import NORMS

NOT_OPTIONS = ("model", "x", "y", "eps", "return_loss")   # the call itself, not settings


@dataclass(frozen=True, kw_only=True)
class AttackSpec:
    """An attack's declaration. The fields, all given by keyword:

    name: what Attack(name, ...) and `npadv eval --attack` call it, e.g. "apgd-t".
    run: the function, run(model, x, y, eps, **options) -> x_adv.
    title, paper, summary: as printed, e.g. "APGD-T", "Croce & Hein, ICML 2020", and a
        short phrase saying what it does.
    norms: the norms it attacks in, a subset of ("linf", "l2", "l1").
    losses: the losses whose input gradient it can follow, the default first; () for a
        gradient-free attack.
    margin_loss: the margin loss that stands in for cross-entropy in check (g) (pgd: "cw",
        apgd: "dlr"); None if it has none. margin_min_classes: the classes it needs.
    cli: offered by `npadv eval --attack`.
    cli_steps: the default of `npadv eval --steps` for it; None if it takes no --steps.
    cli_restarts: it takes --restarts. cli_queries: it takes --queries (as n_queries).
    cli_targeted: the attack `npadv eval --targeted` runs in its place, by name.
    """

    name: str
    run: Callable[..., Any]
    title: str
    paper: str
    summary: str
    norms: tuple[str, ...]
    losses: tuple[str, ...] = ()
    margin_loss: str | None = None
    margin_min_classes: int = 2
    cli: bool = True
    cli_steps: int | None = None
    cli_restarts: bool = False
    cli_queries: bool = False
    cli_targeted: str | None = None

    def __post_init__(self):
        def refuse(problem: str):
            raise ValueError(f"the declaration of attack {self.name!r}: {problem}")

        if not self.norms or not set(self.norms) <= set(NORMS):
            refuse(f"norms must be some of {NORMS}, got {self.norms!r}")
        if self.margin_loss is not None and self.margin_loss not in self.losses:
            refuse(f"margin_loss {self.margin_loss!r} is not one of its losses {self.losses}")
        for option, choices in (("norm", self.norms), ("loss", self.losses)):
            if self.takes(option) != (len(choices) > 1):
                refuse(f"its function has a parameter {option!r} exactly when there is a "
                       f"choice, but it declares {choices!r}")
        for option, offered in (("steps", self.cli_steps is not None),
                                ("restarts", self.cli_restarts), ("n_queries", self.cli_queries)):
            if offered and not self.takes(option):
                refuse(f"npadv eval sets {option!r}, which its function does not take")

    @property
    def default_loss(self) -> str | None:
        """The loss it follows unless told otherwise; None for a gradient-free attack."""
        return self.losses[0] if self.losses else None

    @property
    def gradient_free(self) -> bool:
        return not self.losses

    @property
    def options(self) -> list[str]:
        """The names of the settings its function takes, in order (not model, x, y, eps)."""
        return [p for p in inspect.signature(self.run).parameters if p not in NOT_OPTIONS]

    def takes(self, option: str) -> bool:
        return option in self.options

    def default(self, option: str, otherwise: Any = None) -> Any:
        """The function's default for `option`; `otherwise` if it has none."""
        param = inspect.signature(self.run).parameters.get(option)
        return otherwise if param is None or param.default is inspect.Parameter.empty \
            else param.default

    def check_norm(self, norm: str) -> None:
        """ValueError, naming the function, if it does not attack in `norm`."""
        if norm not in self.norms:
            raise ValueError(f"{self.run.__name__} supports norm {_either(self.norms)}, "
                             f"got {norm!r}")

    def check_loss(self, loss: str) -> None:
        """ValueError, naming the function, if it cannot follow `loss`."""
        if loss not in self.losses:
            raise ValueError(f"{self.run.__name__} supports loss {_either(self.losses)}, "
                             f"got {loss!r}")


def _either(names: tuple[str, ...]) -> str:
    """('linf', 'l2') -> "'linf' or 'l2'"."""
    quoted = [repr(n) for n in names] or ["nothing"]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def registry(*specs: AttackSpec) -> dict[str, AttackSpec]:
    """name -> declaration, in the order given; refuses a name given twice and a
    cli_targeted that names no attack given."""
    attacks: dict[str, AttackSpec] = {}
    for spec in specs:
        if spec.name in attacks:
            raise ValueError(f"attack {spec.name!r} is registered twice")
        attacks[spec.name] = spec
    for spec in specs:
        if spec.cli_targeted is not None and spec.cli_targeted not in attacks:
            raise ValueError(f"attack {spec.name!r}: its cli_targeted {spec.cli_targeted!r} "
                             "is not registered")
    return attacks
