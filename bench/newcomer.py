"""The newcomer's stopwatch: wall time of what the README and the demos tell a new user to
run, each in a fresh process, on this machine as it is. Every time stated in README.md,
in `npadv ... --help` and in demos/README.md comes from this script's table.

    python bench/newcomer.py                 # the short items (several minutes)
    python bench/newcomer.py --full          # also the full demos and the full example
    python bench/newcomer.py --only first-example "npadv demo --quick"
    python bench/newcomer.py --list          # the items, without running them

The README's Python examples are run as written: the code block after a line
`<!-- newcomer: NAME -->` in README.md is the item NAME. Commands that write output write
into a temporary folder. Each item runs once (these are minutes-long runs, so the spread
between runs matters less than the load): the 1-minute load average before and after each
item is printed beside it. An item that uses both cores itself leaves a load near 2 behind
it; for a quiet-machine figure run the script with nothing else running. This is a benchmark, not a
test: it asserts nothing, and an item that fails is reported as failed with its exit code.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMOS = ["autograd_tour", "attacks", "adversarial_training", "fashion_mnist",
         "property_testing", "text_freelb"]


def readme_example(name: str) -> str:
    """The ```python block that follows `<!-- newcomer: name -->` in README.md."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- newcomer: {re.escape(name)} -->\s*```python\n(.*?)```", text,
                      re.S)
    if found is None:
        raise SystemExit(f"README.md has no python block marked <!-- newcomer: {name} -->")
    return found.group(1)


def items(out: Path) -> list[tuple[str, list[str], bool]]:
    """(name, command, full-only) for every timed item; commands run from the repo root."""
    py = sys.executable
    npadv = [py, "-m", "npadv"]
    rows = [
        ("first-example", [py, "-c", readme_example("first-example")], False),
        ("README train command", npadv + ["train", "--model", "small-cnn", "--dataset",
                                          "mnist-5k", "--epochs", "5", "--no-progress",
                                          "--out", str(out / "train")], False),
        ("test suite (-n auto)", [py, "-m", "pytest", "-q", "-n", "auto", "-p",
                                  "no:cacheprovider"], False),
        ("npadv demo --quick", npadv + ["demo", "--quick", "--no-progress", "--out",
                                        str(out / "demo-quick")], False),
    ]
    for demo in DEMOS:
        script = [py, str(ROOT / "demos" / f"{demo}.py")]
        rows.append((f"demos/{demo}.py --quick",
                     script + ["--quick", "--out", str(out / f"{demo}-quick")], False))
    rows.append(("full-example", [py, "-c", readme_example("full-example")], True))
    rows.append(("npadv demo", npadv + ["demo", "--no-progress", "--out", str(out / "demo")],
                 True))
    for demo in DEMOS:
        rows.append((f"demos/{demo}.py", [py, str(ROOT / "demos" / f"{demo}.py"), "--out",
                                          str(out / demo)], True))
    return rows


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    import numpy  # noqa: F401  (loads the BLAS library that threadpoolctl reports)

    return "; ".join(f"{i['internal_api']} {i['version']} {i.get('architecture', '')}, "
                     f"{i['num_threads']} threads" for i in threadpool_info())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="also the full demos and the README's full example (hours)")
    parser.add_argument("--only", nargs="+", default=None, help="items to run, by name")
    parser.add_argument("--list", action="store_true", help="list the items and stop")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the items' outputs and logs here instead of a temp folder")
    args = parser.parse_args()

    out = args.keep or Path(tempfile.mkdtemp(prefix="npadv-newcomer-"))
    rows = items(out)
    names = [name for name, _, _ in rows]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise SystemExit(f"unknown item(s) {unknown}; items: {names}")
        rows = [r for r in rows if r[0] in args.only]
    else:
        rows = [r for r in rows if args.full or not r[2]]
    if args.list:
        print("\n".join(f"{name}{'  (--full)' if full else ''}" for name, _, full in rows))
        return

    cores = os.cpu_count() or 1
    print(f"python {platform.python_version()}, {cores} cores; {blas()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS"):
        if var in os.environ:
            print(f"  {var}={os.environ[var]}")
    print(f"outputs and logs: {out}\n")
    print(f"{'item':<40}{'time':>12}  {'load before → after':<22}exit")
    results = []
    for name, command, _ in rows:
        log = out / "logs" / (re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        before = os.getloadavg()[0]
        start = time.perf_counter()
        with open(log, "w") as f:
            code = subprocess.call(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        after = os.getloadavg()[0]
        status = "ok" if code == 0 else f"FAILED ({code}; see {log})"
        print(f"{name:<40}{duration(seconds):>12}  {before:5.2f} → {after:5.2f}"
              f"{'':<9}{status}", flush=True)
        results.append({"item": name, "seconds": round(seconds, 2), "exit": code,
                        "load_before": before, "load_after": after})
    if args.json:
        args.json.write_text(json.dumps({"python": platform.python_version(), "cores": cores,
                                         "blas": blas(), "items": results}, indent=2))
    if args.keep is None and all(r["exit"] == 0 for r in results):
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
