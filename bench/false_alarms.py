"""False alarms of the property-testing kit: every CORRECT op and projection of the mutant
catalogue in tests/test_testing.py, under many independent random searches.

Each entry's property (MUTANTS[name].prop applied to MUTANTS[name].right) is searched once
per seed s = 0, 1, ..., --seeds − 1: its strategy and check under hypothesis.seed(s), with
--examples examples, not derandomized and without an example database, so every seed is a
new random search (hypothesis opens each search with its simplest case, all zeros, so a
seed adds --examples − 1 random cases). A false alarm is a GradcheckError or
ProjectionError raised on a correct version: the kit should raise none, and the script
exits with status 1 if it does.

    OPENBLAS_NUM_THREADS=1 python bench/false_alarms.py [--seeds 2000] [--examples 5]
                                                        [--names ...] [--out DIR]

Prints one row per entry (seeds, examples run, false alarms, wall time) and the load
average; --out writes false_alarms.json with the same numbers and each false alarm's seed,
case and message.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import hypothesis
import numpy as np
from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mutant_table import compact  # noqa: E402
from test_testing import MUTANTS  # noqa: E402

from npadv.testing import GradcheckError, ProjectionError  # noqa: E402


def search(prop, s: int, examples: int) -> tuple[int, tuple[object, str] | None]:
    """One random search of prop's strategy under seed s: (examples run before the first
    failure, (shrunk case, message) or None)."""
    ran, failing = [0], []

    @seed(s)
    @settings(max_examples=examples, database=None, derandomize=False, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False,
              report_multiple_bugs=False)
    @given(case=prop.strategy)
    def test(case):
        ran[0] += 0 if failing else 1
        try:
            prop.check(case)
        except (GradcheckError, ProjectionError):
            failing[:] = [case]      # hypothesis replays the shrunk case last
            raise

    try:
        test()
    except (GradcheckError, ProjectionError) as err:
        return ran[0], (failing[0], str(err))
    return ran[0], None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--examples", type=int, default=5, help="examples per seed")
    parser.add_argument("--names", nargs="+", default=list(MUTANTS), choices=list(MUTANTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = {}
    print(f"{'correct version of':<30} {'seeds':>6} {'examples':>9} {'false alarms':>13} "
          f"{'seconds':>8}", flush=True)
    for name in args.names:
        mutant = MUTANTS[name]
        prop = mutant.prop(mutant.right)
        start, examples, alarms = time.perf_counter(), 0, []
        for s in range(args.seeds):
            ran, alarm = search(prop, s, args.examples)
            examples += ran
            if alarm is not None:
                with np.printoptions(floatmode="unique", threshold=sys.maxsize):
                    exact = repr(alarm[0])
                alarms.append({"seed": s, "case": compact(alarm[0]), "exact": exact,
                               "message": alarm[1]})
        seconds = time.perf_counter() - start
        rows[name] = {"seeds": args.seeds, "examples": examples, "false_alarms": len(alarms),
                      "seconds": round(seconds, 1), "alarms": alarms}
        print(f"{name:<30} {args.seeds:>6} {examples:>9} {len(alarms):>13} {seconds:>8.0f}",
              flush=True)
        for alarm in alarms[:3]:
            print(f"    seed {alarm['seed']}: {alarm['case']}\n        {alarm['message']}")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min); "
          f"hypothesis {hypothesis.__version__}, NumPy {np.__version__}, "
          f"{args.examples} examples per seed")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "false_alarms.json").write_text(json.dumps(
            {"examples_per_seed": args.examples, "load_average": load,
             "hypothesis": hypothesis.__version__, "numpy": np.__version__, "entries": rows},
            indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(1 if any(row["false_alarms"] for row in main().values()) else 0)
