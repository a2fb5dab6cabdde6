"""The demos run: each with --quick into a temporary folder, checking its JSON and its PNGs.

A demo is run as a script (a subprocess of this interpreter), as a reader would run it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow             # each runs a demo script: scheduled first

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ROOT / "demos"


def run_demo(name: str, out: Path) -> dict:
    """Run demos/<name>.py --quick --out out; return the parsed <out>/<name>.json."""
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(DEMOS / f"{name}.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{name}.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / f"{name}.json").read_text())


def assert_real_image(path: Path, min_side: int = 200) -> None:
    """The PNG exists, is of a sensible size, and is not a blank canvas."""
    import matplotlib.image as mpimg

    assert path.is_file(), f"{path.name} was not written"
    pixels = mpimg.imread(path)[..., :3]                    # (H, W, 3) floats in [0, 1]
    height, width = pixels.shape[:2]
    assert min(height, width) >= min_side, f"{path.name} is only {width}x{height}"
    assert pixels.std() > 0.05, f"{path.name} is (nearly) one colour"
    drawn = (pixels < 0.9).any(axis=-1).mean()             # share of non-white pixels
    assert drawn > 0.02, f"{path.name} has only {drawn:.1%} non-white pixels"


def assert_accuracy(value, what: str) -> None:
    assert isinstance(value, float) and 0.0 <= value <= 1.0, f"{what} = {value!r}"


def test_autograd_tour_quick(tmp_path):
    result = run_demo("autograd_tour", tmp_path)
    graph = result["small_graph"]
    assert graph["max_abs_error"] < 1e-12                   # engine = hand-derived gradients
    assert graph["grads"]["x"] == pytest.approx([2.5, -4.0, 6.0])
    assert graph["intermediate_grad_without_retain"] is None
    assert_accuracy(result["cnn"]["test_accuracy"], "CNN test accuracy")
    assert result["cnn"]["test_accuracy"] > 0.6             # trained, however briefly
    assert result["cnn"]["input_gradient_vjp_check"]["passed"]
    assert result["gradcheck"]["softplus"]["passed"]
    caught = result["gradcheck"]["wrong softplus"]
    assert not caught["passed"] and "element" in caught["message"]
    for png in ("input_gradients.png", "gradcheck.png"):
        assert_real_image(tmp_path / png)


def test_attacks_quick(tmp_path):
    result = run_demo("attacks", tmp_path)
    assert result["quick"] and result["note"]               # says the models are brief
    models = ("natural", "PGD-AT")
    for name in models:
        assert result["models"][name]["briefly_trained"]
        assert_accuracy(result["models"][name]["clean_accuracy"], f"{name} clean")
        assert_accuracy(result["models"][name]["worst_case_accuracy"], f"{name} worst case")
    attacks = ("fgsm", "pgd_linf", "pgd_l2", "pgd_l1", "apgd")
    assert set(result["attacks"]) == set(attacks)
    for key in attacks:
        for name in models:
            assert_accuracy(result["attacks"][key][name], f"{name} under {key}")
            assert result["attacks"][key][name] <= result["models"][name]["clean_accuracy"]
    # the adversarially trained model is the more robust one at its training ε
    assert result["attacks"]["pgd_linf"]["PGD-AT"] > result["attacks"]["pgd_linf"]["natural"]
    curve = result["eps_curve"]
    for name in models:
        assert len(curve[name]) == len(curve["eps"])
        assert all(0.0 <= a <= 1.0 for a in curve[name])
        assert curve[name][-1] <= curve[name][0]
    masking = result["masking"]           # cross-entropy attacks are fooled, margin ones not
    assert masking["pgd_ce"] >= masking["clean"] - 0.05
    assert masking["pgd_margin"] < masking["clean"] - 0.1
    assert masking["warnings"]
    for png in [f"grid_{key}.png" for key in attacks] + ["robust_accuracy.png",
                                                         "loss_landscape.png"]:
        assert_real_image(tmp_path / png)


def test_text_freelb_quick(tmp_path):
    result = run_demo("text_freelb", tmp_path)
    methods = ("natural", "FGM", "PGD-3", "FreeLB-3")
    assert set(result["summary"]) == set(methods) == set(result["runs"])
    for name in methods:
        assert len(result["runs"][name]) == result["seeds"] >= 2
        for run in result["runs"][name]:
            assert_accuracy(run["clean_acc"], f"{name} clean")
            assert_accuracy(run["pgd_acc"], f"{name} PGD")
            assert run["pgd_acc"] <= run["clean_acc"]
        assert result["summary"][name]["undertrained"]
    assert np.mean([r["clean_acc"] for r in result["runs"]["natural"]]) > 0.55  # above chance
    assert "undertrained" in result["table"]
    assert_real_image(tmp_path / "text_freelb.png")


def _comparison(name: str, out: Path) -> dict:
    """Run a comparison demo with --quick; return its comparison.json."""
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(DEMOS / f"{name}.py"), "--quick", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{name}.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "| method |" in proc.stdout                      # the table was printed
    return json.loads((out / "comparison.json").read_text())


def _check_comparison(summary: dict, out: Path, methods: set[str]) -> None:
    rows = {r["method"] + (" reference" if r["reference"] else ""): r for r in summary["rows"]}
    assert set(rows) == methods | {"pgd reference"}
    for r in rows.values():
        assert_accuracy(r["clean_acc"], f"{r['label']} clean")
        assert_accuracy(r["robust_acc"], f"{r['label']} robust")
        assert r["robust_acc"] <= r["clean_acc"] and r["train_time"] > 0
        assert r["curve"] and r["full_passes"] > 0
    assert rows["pgd reference"]["robust_acc"] > rows["natural"]["robust_acc"]
    assert_real_image(out / "comparison.png")


def test_adversarial_training_quick(tmp_path):
    summary = _comparison("adversarial_training", tmp_path)
    _check_comparison(summary, tmp_path, {"natural", "fast", "free"})


def test_fashion_mnist_quick(tmp_path):
    from npadv.data import load_fashion_mnist

    try:
        load_fashion_mnist(base_url="http://127.0.0.1:9/")    # found locally, or skip
    except Exception as e:                                   # noqa: BLE001
        pytest.skip(f"Fashion-MNIST is not installed here ({type(e).__name__})")
    summary = _comparison("fashion_mnist", tmp_path)
    _check_comparison(summary, tmp_path, {"natural", "fast", "free"})


def test_property_testing_quick(tmp_path):
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(DEMOS / "property_testing.py"), "--quick",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "property_testing.json").read_text())
    assert result["single_point_gradcheck"]["passed"]        # one random point misses the bug
    assert "PoolCase" in result["property"]["shrunk"]        # the property finds and shrinks it
    assert result["correct_max_pool_passes"]


def test_certified_quick(tmp_path):
    result = run_demo("certified", tmp_path)
    assert set(result["results"]) == {"natural", "PGD-AT", "IBP"}
    for rows in result["results"].values():
        assert [r["eps"] for r in rows] == [0.0, 0.05, 0.1]
        for r in rows:
            for key in ("attacked", "ibp", "crown"):
                assert_accuracy(r[key], key)
            assert r["ibp"] <= r["crown"] <= r["attacked"]     # the bracket, never crossed
        assert rows[0]["crown"] == rows[0]["attacked"]          # at ε = 0 nothing to prove
    assert_real_image(tmp_path / "certified.png")
