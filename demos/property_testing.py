# %% [markdown]
# # Property-testing a backward pass
#
# A max-pool backward with a classic bug: every tap equal to its window's maximum gets the
# window's whole gradient. Without ties the bug is invisible, and a gradient check at one
# random input (continuous values: no ties) passes. `npadv.testing` draws inputs with tied
# maxima, checks the backward along directions that keep the ties tied, and hypothesis
# shrinks the failure to a minimal example.
#
#     python demos/property_testing.py [--quick] [--out DIR]

# %%
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings

from npadv import Tensor
from npadv import functional as F
from npadv.testing import minimal_failure, pool2d_property
from npadv.testing.gradcheck import gradcheck

parser = argparse.ArgumentParser(description="hypothesis shrinking a wrong max-pool backward")
parser.add_argument("--quick", action="store_true", help="fewer hypothesis examples")
parser.add_argument("--out", type=Path, default=None, help="write property_testing.json here")
args, _ = parser.parse_known_args()
results: dict = {}


def max_pool_every_tied_tap(x: Tensor, kernel, stride, padding) -> Tensor:
    """max_pool2d whose backward hands a window's gradient to EVERY tap equal to its max."""
    (kh, kw), (sh, sw), (ph, pw) = (k if isinstance(k, tuple) else (k, k)
                                    for k in (kernel, stride, padding))
    xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    out = F.max_pool2d(x.data, kernel, stride, padding).data           # (N, C, Ho, Wo)
    ho, wo = out.shape[2:]

    def vjp(g):
        dxp = np.zeros_like(xp)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i, i + sh * (ho - 1) + 1, sh)
                cols = slice(j, j + sw * (wo - 1) + 1, sw)
                dxp[:, :, rows, cols] += g * (xp[:, :, rows, cols] == out)  # the bug: no tie-break
        return (dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]],)

    return Tensor.from_op(out, (x,), vjp)


# %% [markdown]
# ## One random point: the bug passes

# %%
x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
passed = gradcheck(lambda t: max_pool_every_tied_tap(t, 2, 2, 0), [x])
print(f"gradcheck at one random (2, 3, 4, 4) input, 2x2 pool: {'passed' if passed else ''}")
results["single_point_gradcheck"] = {"shape": list(x.shape), "kernel": 2, "passed": passed}

# %% [markdown]
# ## The property: hypothesis finds the tie and shrinks it

# %%
search = settings(max_examples=20 if args.quick else 100, derandomize=True, database=None,
                  deadline=None, suppress_health_check=list(HealthCheck), print_blob=False,
                  report_multiple_bugs=False)
found = minimal_failure(pool2d_property(max_pool_every_tied_tap), search)
if found is None:
    case, shrunk, message = None, None, "not caught"
else:
    case, error = found                      # the shrunk PoolCase itself, and its GradcheckError
    fields = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in case._asdict().items()}
    shrunk = "PoolCase(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
    message = str(error)
print(f"pool2d_property(max_pool_every_tied_tap) fails.\n  minimal example: {shrunk}\n"
      f"  {message}")
results["property"] = {"shrunk": shrunk, "message": message,
                       "case": None if case is None else fields}

# %% [markdown]
# Two tied taps in one window: moving both up by t moves the maximum by t, but the wrong
# backward says 2t. The correct npadv.functional.max_pool2d passes the same property.

# %%
search(pool2d_property(F.max_pool2d))()
print("pool2d_property(F.max_pool2d) passes")
results["correct_max_pool_passes"] = True

if args.out is not None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "property_testing.json").write_text(json.dumps(results, indent=2))
