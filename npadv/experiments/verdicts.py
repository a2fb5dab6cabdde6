"""Each row's verdict: its paper's claim against the reference row, as measured.

Time to robustness, the measure the fast methods' papers use: with R the reference's
final per-epoch PGD check accuracy, a row reaches robustness at the first cumulative
training time its own check is within `tolerance` (2 points) of R. Its time ratio is that
time over the reference's own time to get there: 0.2 means it got there in a fifth of
PGD-AT's time; None means it never did within its run.

The clock is the training's CPU time ("cpu_time": user and system time of the process,
all its threads) where every curve has it, else wall time ("time"): CPU time is what the
papers' wall-clock figures measure on a dedicated machine, and other load on a shared
machine does not inflate it.
"""
from __future__ import annotations

from ..methods import method_class


def reach_time(curve: list[dict], target: float, clock: str = "time") -> float | None:
    """The first cumulative training time at which the per-epoch check reaches `target`;
    None if it never does. curve: [{clock, "robust_acc"}, ...] in epoch order."""
    for point in curve:
        if point.get("robust_acc") is not None and point["robust_acc"] >= target:
            return point[clock]
    return None


def clock_of(rows: list[dict]) -> str:
    """"cpu_time" if every curve point of every row has it, else "time" (wall)."""
    points = [c for r in rows for c in r["curve"]]
    return "cpu_time" if points and all("cpu_time" in c for c in points) else "time"


def time_to_robustness(rows: list[dict], tolerance: float = 0.02) -> None:
    """Set each row's `reach_time` and `time_ratio` against the reference row (see the
    module docstring); both None where there is no reference or the row never gets there."""
    ref = next((r for r in rows if r["reference"]), None)
    clock = clock_of(rows)
    checks = [] if ref is None else [c["robust_acc"] for c in ref["curve"]
                                     if c.get("robust_acc") is not None]
    target = checks[-1] - tolerance if checks else None
    ref_time = None if target is None else reach_time(ref["curve"], target, clock)
    for r in rows:
        r["target"], r["clock"] = target, clock
        r["reach_time"] = None if target is None else reach_time(r["curve"], target, clock)
        r["time_ratio"] = (r["reach_time"] / ref_time if r["reach_time"] is not None
                           and ref_time else None)


def show_ratio(ratio: float | None) -> str:
    """0.2 -> "1/5.0 of the reference's time"; None -> "never"; 0 (a time below the
    clock's resolution, 10 ms of CPU time) -> "no measurable time"."""
    if ratio is None:
        return "never"
    if ratio <= 0:
        return "no measurable time"
    return f"1/{1 / ratio:.1f} of the reference's time" if ratio < 1 else \
        f"{ratio:.1f}× the reference's time"


def claimed_ratio(name: str) -> str:
    """A "time" claim's fraction in words: "about 1/5 of the reference's time (the paper's
    own figure)"; "" for methods that declare none."""
    cls = method_class(name)
    if cls.claim_ratio is None:
        return ""
    return f"about 1/{1 / cls.claim_ratio:.0f} of the reference's time ({cls.claim_ratio_says})"


def verdicts(rows: list[dict], tolerance: float = 0.02) -> None:
    """Set each row's `verdict`: its paper's claim, of the kind its method declares
    (`claim_kind`), against the reference row. Rows without a reference or claim get none.

    "time": reproduced if the row reaches robustness (see `time_to_robustness`) within
    twice the fraction of the reference's time its paper claims (claim_ratio; ratio < 1 if
    it claims none); "partly" if it gets there faster than the reference, but not that
    fast; not reproduced if slower or never. "robustness": reproduced if its final robust
    accuracy is within `tolerance` of the reference's or above, at a clean accuracy at most
    5 points lower.
    """
    ref = next((r for r in rows if r["reference"]), None)
    for r in rows:
        cls = method_class(r["method"])
        kind = cls.claim_kind
        if ref is None or not r["claim"] or r is ref:
            r["verdict"] = ""
            continue
        if ref["undertrained"]:
            r["verdict"] = "not judged: the reference row is itself undertrained"
            continue
        gap = r["robust_acc"] - ref["robust_acc"]
        if kind is None:
            r["verdict"] = f"not tested here (robust {r['robust_acc']:.3f})"
            continue
        ratio = r.get("time_ratio")
        reach = ("robustness never reached" if ratio is None
                 else f"robustness reached at {show_ratio(ratio)}")
        if kind == "reference":
            r["verdict"] = f"{gap:+.3f} robust against the reference, {reach}"
            continue
        if kind == "time":
            bar = 1.0 if cls.claim_ratio is None else min(1.0, 2 * cls.claim_ratio)
            tag = ("not reproduced" if ratio is None or ratio >= 1 else
                   "reproduced" if ratio <= bar else
                   "partly: faster than the reference, not as much as claimed")
        else:
            reached = gap >= -tolerance and r["clean_acc"] >= ref["clean_acc"] - 0.05
            tag = "reproduced" if reached else "not reproduced"
        if r["undertrained"]:
            tag += " (undertrained)"
        r["verdict"] = (f"{tag}: robust {r['robust_acc']:.3f} vs {ref['robust_acc']:.3f}, "
                        f"clean {r['clean_acc']:.3f} vs {ref['clean_acc']:.3f}, {reach}")
