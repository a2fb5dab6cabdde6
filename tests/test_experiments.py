"""The comparison's measures on made-up rows: time to robustness against the reference, and
each claim's verdict of the kind its method declares."""
from __future__ import annotations

import json

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
    assert show_ratio(0.0) == "no measurable time"      # CPU time ticks in 10 ms


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


def test_a_time_claim_short_of_its_claimed_ratio_is_partly_reproduced():
    rows = _rows()
    rows[1]["curve"][-1]["time"] = 18                     # YOPO gets there in 18/30 = 0.6
    time_to_robustness(rows)
    verdicts(rows)
    assert rows[1]["time_ratio"] == pytest.approx(0.6)
    assert rows[1]["verdict"].startswith("partly")       # claimed 1/5: at most 2/5 counts


def test_the_guard_shows_what_it_did():
    rows = _rows()
    rows[2]["curve"] = [{**c, "guard_acc": a, "guard_best_epoch": b} for c, a, b in
                        zip(rows[2]["curve"], [0.3, 0.5, 0.45], [1, 2, 2], strict=True)]
    time_to_robustness(rows)
    verdicts(rows)
    assert "(guard: never fired, best check at epoch 2 of 3)" in format_table({"rows": rows})
    rows[2]["stopped"] = "catastrophic overfitting"
    assert "(stopped: catastrophic overfitting)" in format_table({"rows": rows})


def test_the_table_shows_the_time_to_robustness():
    rows = _rows()
    time_to_robustness(rows)
    verdicts(rows)
    table = format_table({"rows": rows})
    assert "| time to robustness |" in table.splitlines()[0]
    assert "8 s (1/3.8 of the reference's time)" in table and "| never |" in table


# ---- run folders: a rerun continues ------------------------------------------------------
def _tiny():
    from npadv.data import load_mnist_5k

    x_train, y_train, x_test, y_test = load_mnist_5k()
    return x_train[:96], y_train[:96], x_test[:40], y_test[:40]


def _compare(out, epochs=3, n_eval=40, **kw):
    from npadv.attacks import Attack
    from npadv.experiments import Entry, compare

    entries = [Entry("Fast AT", "fast", epochs=epochs, claim="c"),
               Entry("PGD-2-AT (reference)", "pgd", {"steps": 2}, epochs=epochs, claim="c",
                     reference=True)]
    return compare(entries, _tiny(), eps=0.1, model_name="mlp", check_size=40, batch_size=32,
                   n_eval=n_eval, attacks=[Attack("fgsm", 0.1)], out=out, **kw)


def _without_times(row):
    drop = ("train_time", "train_cpu_time", "eval_time", "curve", "reach_time", "time_ratio",
            "verdict")
    return {k: v for k, v in row.items() if k not in drop} | {
        "curve": [{k: v for k, v in c.items() if k not in ("time", "cpu_time")}
                  for c in row["curve"]]}


def test_an_interrupted_comparison_continues_where_it_stopped(tmp_path, monkeypatch):
    import npadv.training.loop as loop

    whole = _compare(tmp_path / "whole")
    real, calls = loop.append_log, []

    def killed_after_second_epoch_of_the_reference(run, record):
        real(run, record)
        calls.append(record["epoch"])
        if run.method.name == "pgd" and record["epoch"] == 2:
            raise KeyboardInterrupt                  # after the checkpoint of epoch 2
    monkeypatch.setattr(loop, "append_log", killed_after_second_epoch_of_the_reference)
    with pytest.raises(KeyboardInterrupt):
        _compare(tmp_path / "cut")
    assert (tmp_path / "cut/fast-at/row.json").exists()
    assert not (tmp_path / "cut/pgd-2-at-reference/row.json").exists()
    calls.clear()
    again = _compare(tmp_path / "cut")
    assert calls == [3]                    # Fast AT skipped; the reference's epoch 3 only
    for a, b in zip(whole["rows"], again["rows"], strict=True):
        assert _without_times(a) == _without_times(b)       # as if never interrupted
    calls.clear()
    assert _compare(tmp_path / "cut")["rows"] == again["rows"] and calls == []


def test_a_run_folder_of_other_settings_is_refused_or_only_evaluated_again(tmp_path,
                                                                          monkeypatch):
    import npadv.training.loop as loop
    from npadv.training.loop import ResumeError

    first = _compare(tmp_path, epochs=2)
    with pytest.raises(ResumeError, match="other training settings"):
        _compare(tmp_path, epochs=3)
    calls = []
    monkeypatch.setattr(loop, "train_one_epoch", lambda *a: calls.append(a))
    again = _compare(tmp_path, epochs=2, n_eval=20)     # only the evaluation differs
    assert calls == []                                  # nothing trained again
    assert [r["curve"] for r in again["rows"]] == [r["curve"] for r in first["rows"]]
    assert all(len(r["robust"]) == 20 for r in again["rows"])


def test_rows_side_by_side_give_the_rows_of_one_process(tmp_path):
    one = _compare(tmp_path / "one")
    two = _compare(tmp_path / "two", workers=2)
    assert [_without_times(r) for r in two["rows"]] == [_without_times(r) for r in one["rows"]]
    assert json.loads((tmp_path / "two/fast-at/row.json").read_text())["label"] == "Fast AT"


def test_the_demo_plan_and_its_methods():
    from npadv.experiments import DEMO_FULL, demo_plan

    full = demo_plan(False)
    assert full[-1].reference and {e.epochs for e in full[:-1] if e.method != "free"} == {
        DEMO_FULL["epochs"]}
    quick = demo_plan(True, ["fgsm", "yopo"])        # any demo method, at the quick budget
    assert [e.method for e in quick] == ["fgsm", "yopo", "pgd"]
    assert quick[0].epochs is None and quick[-1].reference
    with pytest.raises(ValueError, match="ibp"):
        demo_plan(False, ["ibp"])
