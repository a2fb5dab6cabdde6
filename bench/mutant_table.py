"""For each deliberately wrong backward or projection in tests/test_testing.py: the minimal
failing example hypothesis shrinks to (npadv.testing.minimal_failure), and whether one check
at a random point catches it.

The single-point check is npadv.testing.gradcheck.gradcheck (every element, central differences)
for ops, and npadv.testing.assert_projection at one point for projections. It runs with
random continuous values twice: at the shapes of the shrunk example, and at shapes a test
writer might pick by hand.

    python bench/mutant_table.py [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_testing import MUTANTS  # noqa: E402

from npadv.testing import (  # noqa: E402
    ConvCase,
    PoolCase,
    ProjectionCase,
    ProjectionError,
    assert_projection,
    minimal_failure,
)
from npadv.testing.gradcheck import GradcheckError, gradcheck  # noqa: E402

SEARCH = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))


def compact(value) -> str:
    """A case as one short line: arrays as nested lists of 4 significant digits."""
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, separator=", ", threshold=64,
                               max_line_width=10**6)
        return " ".join(text.split())
    if hasattr(value, "_asdict"):
        fields = ", ".join(f"{k}={compact(v)}" for k, v in value._asdict().items())
        return f"{type(value).__name__}({fields})"
    if isinstance(value, tuple):
        return "(" + ", ".join(compact(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def shrink(prop) -> tuple[str, object]:
    """(the minimal failing case, compact, and the case itself)."""
    found = minimal_failure(prop, SEARCH)
    if found is None:
        raise AssertionError("the kit did not catch this mutant")
    case, _ = found
    return compact(case), case


def randomise(case, rng):
    """The same shapes and configuration, with continuous random values."""
    if isinstance(case, ProjectionCase):
        x = rng.random(case.x.shape)
        eps = np.full(len(x), 0.3) if np.ndim(case.eps) else 0.3
        return ProjectionCase(x + rng.standard_normal(x.shape), x, eps, case.lo, case.hi)
    if isinstance(case, ConvCase):
        return case._replace(**{k: rng.standard_normal(getattr(case, k).shape)
                                for k in ("x", "w", "b")})
    if isinstance(case, PoolCase):
        return case._replace(x=rng.standard_normal(case.x.shape))
    return tuple(rng.standard_normal(np.shape(a)) for a in case)


def typical(name, rng):
    """Shapes a hand-written test would use."""
    image = rng.standard_normal((2, 3, 4, 4))
    if name.startswith("max_pool"):
        return PoolCase(image, (2, 2), (2, 2), (0, 0))
    if name.startswith("conv"):
        return ConvCase(image, rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2),
                        (1, 1), (1, 1))
    if name.startswith("broadcast"):
        return rng.standard_normal((3, 4)), rng.standard_normal(4)
    if name.startswith("relu"):
        return rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    if name.startswith("exp"):
        return (rng.standard_normal((4, 5)),)
    x = rng.random((8, 1, 4, 4))
    return ProjectionCase(x + 0.5 * rng.standard_normal(x.shape), x, 0.3, 0.0, 1.0)


def single_point_catches(mutant, case) -> bool:
    try:
        if mutant.norm is not None:
            assert_projection(mutant.wrong, mutant.norm, case.eps, case.lo, case.hi,
                              (case.z, case.x))
        else:
            f, inputs = mutant.call(mutant.wrong, case)
            gradcheck(f, list(inputs))
    except (GradcheckError, ProjectionError):
        return True
    return False


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = {}
    for name, mutant in MUTANTS.items():
        example, case = shrink(mutant.prop(mutant.wrong))
        rng = np.random.default_rng(0)
        rows[name] = {"shrunk": example,
                      "single_point_at_shrunk_shapes": single_point_catches(
                          mutant, randomise(case, rng)),
                      "single_point_at_typical_shapes": single_point_catches(
                          mutant, typical(name, rng))}
        verdict = {True: "caught", False: "missed"}
        print(f"{name}: single point {verdict[rows[name]['single_point_at_shrunk_shapes']]} "
              f"at the shrunk shapes, {verdict[rows[name]['single_point_at_typical_shapes']]} "
              f"at typical shapes\n    {example}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "mutant_table.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
