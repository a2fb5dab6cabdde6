"""The comparison's measures on made-up rows: time to robustness against the reference, and
each claim's verdict of the kind its method declares."""
from __future__ import annotations

import pytest

from npadv.experiments.report import format_table
from npadv.experiments.verdicts import reach_time, show_ratio, time_to_robustness, verdicts


def _row(method, checks, times, robust, clean=0.95, reference=False, claim="a claim"):
    return {"label": method, "method": method, "reference": reference, "claim": claim,
            "undertrained": False, "robust_acc": robust, "clean_acc": clean,
            "curve": [{"time": t, "robust_acc": c, "clean_acc": clean}
                      for t, c in zip(times, checks, strict=True)],
            "epochs": len(checks), "train_time": times[-1], "full_passes": 1, "gflops": 1.0,
            "stopped": None}


def _rows():
    return [_row("pgd", [0.5, 0.7, 0.8, 0.82], [10, 20, 30, 40], 0.80, reference=True),
            _row("yopo", [0.6, 0.81], [4, 8], 0.79),            # reaches 0.80 at 8 s
            _row("fast", [0.3, 0.5, 0.6], [5, 10, 15], 0.55),   # never reaches 0.80
            _row("free", [0.2, 0.5, 0.80], [20, 40, 60], 0.78),  # reaches it, but later
            _row("trades", [0.7, 0.85], [30, 60], 0.81, clean=0.93),
            _row("natural", [0.0, 0.0], [1, 2], 0.0, claim="")]


def test_reach_time_is_the_first_time_the_check_gets_there():
    curve = [{"time": 1, "robust_acc": None}, {"time": 2, "robust_acc": 0.5},
             {"time": 3, "robust_acc": 0.7}, {"time": 4, "robust_acc": 0.6}]
    assert reach_time(curve, 0.6) == 3 and reach_time(curve, 0.5) == 2
    assert reach_time(curve, 0.71) is None


def test_time_to_robustness_against_the_reference():
    rows = _rows()
    time_to_robustness(rows)
    by = {r["method"]: r for r in rows}
    assert by["pgd"]["target"] == pytest.approx(0.80)      # final check 0.82 less 2 points
    assert by["pgd"]["reach_time"] == 30 and by["pgd"]["time_ratio"] == 1
    assert by["yopo"]["time_ratio"] == pytest.approx(8 / 30)
    assert by["fast"]["reach_time"] is None and by["fast"]["time_ratio"] is None
    assert by["free"]["time_ratio"] == pytest.approx(2)
    assert show_ratio(8 / 30) == "1/3.8 of the reference's time"
    assert show_ratio(2.0) == "2.0× the reference's time" and show_ratio(None) == "never"


def test_each_claim_is_judged_by_its_kind():
    rows = _rows()
    time_to_robustness(rows)
    verdicts(rows)
    by = {r["method"]: r["verdict"] for r in rows}
    assert by["yopo"].startswith("reproduced") and "1/3.8" in by["yopo"]
    assert by["fast"].startswith("not reproduced") and "never" in by["fast"]
    assert by["free"].startswith("not reproduced") and "2.0×" in by["free"]
    assert by["trades"].startswith("reproduced")            # 0.81 ≥ 0.80, clean −0.02
    assert by["natural"] == "" and by["pgd"] == ""
    rows[4]["clean_acc"] = 0.85                              # 10 points of clean accuracy
    verdicts(rows)
    assert rows[4]["verdict"].startswith("not reproduced")


def test_the_table_shows_the_time_to_robustness():
    rows = _rows()
    time_to_robustness(rows)
    verdicts(rows)
    table = format_table({"rows": rows})
    assert "| time to robustness |" in table.splitlines()[0]
    assert "8 s (1/3.8 of the reference's time)" in table and "| never |" in table
