"""Each row's verdict: its paper's claim against the reference row, as measured.

Time to robustness, the measure the fast methods' papers use: with R the reference's
final per-epoch PGD check accuracy, a row reaches robustness at the first cumulative
training time its own check is within `tolerance` (2 points) of R. Its time ratio is that
time over the reference's own time to get there: 0.2 means it got there in a fifth of
PGD-AT's time; None means it never did within its run.
"""
from __future__ import annotations

from ..methods import method_class


def reach_time(curve: list[dict], target: float) -> float | None:
    """The first cumulative training time at which the per-epoch check reaches `target`;
    None if it never does. curve: [{"time", "robust_acc"}, ...] in epoch order."""
    for point in curve:
        if point.get("robust_acc") is not None and point["robust_acc"] >= target:
            return point["time"]
    return None


def time_to_robustness(rows: list[dict], tolerance: float = 0.02) -> None:
    """Set each row's `reach_time` and `time_ratio` against the reference row (see the
    module docstring); both None where there is no reference or the row never gets there."""
    ref = next((r for r in rows if r["reference"]), None)
    checks = [] if ref is None else [c["robust_acc"] for c in ref["curve"]
                                     if c.get("robust_acc") is not None]
    target = checks[-1] - tolerance if checks else None
    ref_time = None if target is None else reach_time(ref["curve"], target)
    for r in rows:
        r["target"] = target
        r["reach_time"] = None if target is None else reach_time(r["curve"], target)
        r["time_ratio"] = (r["reach_time"] / ref_time if r["reach_time"] is not None
                           and ref_time else None)


def show_ratio(ratio: float | None) -> str:
    """0.2 -> "1/5.0 of the reference's time"; None -> "never"."""
    if ratio is None:
        return "never"
    return f"1/{1 / ratio:.1f} of the reference's time" if ratio < 1 else \
        f"{ratio:.1f}× the reference's time"


def verdicts(rows: list[dict], tolerance: float = 0.02) -> None:
    """Set each row's `verdict`: its paper's claim, of the kind its method declares
    (`claim_kind`), against the reference row. "time": reproduced if it reaches robustness
    (see `time_to_robustness`) in less time than the reference; "robustness": if its final
    robust accuracy is within `tolerance` of the reference's or above, at a clean accuracy
    at most 5 points lower. Rows without a reference or claim get none."""
    ref = next((r for r in rows if r["reference"]), None)
    for r in rows:
        kind = method_class(r["method"]).claim_kind
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
        if kind == "reference":
            r["verdict"] = (f"{gap:+.3f} robust against the reference, reaching it at "
                            f"{show_ratio(r.get('time_ratio'))}")
            continue
        if kind == "time":
            reached = r.get("time_ratio") is not None and r["time_ratio"] < 1
        else:
            reached = gap >= -tolerance and r["clean_acc"] >= ref["clean_acc"] - 0.05
        tag = "reproduced" if reached else "not reproduced"
        if r["undertrained"]:
            tag += " (undertrained)"
        r["verdict"] = (f"{tag}: robust {r['robust_acc']:.3f} vs {ref['robust_acc']:.3f}, "
                        f"robustness reached at {show_ratio(r.get('time_ratio'))}")
