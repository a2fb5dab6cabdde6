"""Each row's verdict: its paper's claim against the reference row, as measured."""
from __future__ import annotations


def verdicts(rows: list[dict], tolerance: float = 0.03) -> None:
    """Set each row's `verdict`: its claim against the reference row (robust within
    `tolerance`, at the time ratio measured). Rows without a reference or claim get none."""
    ref = next((r for r in rows if r["reference"]), None)
    for r in rows:
        if ref is None or not r["claim"] or r is ref:
            r["verdict"] = ""
            continue
        if ref["undertrained"]:
            r["verdict"] = "not judged: the reference row is itself undertrained"
            continue
        ratio = ref["train_time"] / max(r["train_time"], 1e-9)
        gap = r["robust_acc"] - ref["robust_acc"]
        if r["method"] == "freelb":
            r["verdict"] = f"not tested here (robust {r['robust_acc']:.3f})"
            continue
        if r["method"] == "pgd":
            r["verdict"] = f"{gap:+.3f} robust against the reference, 1/{ratio:.1f} of its time"
            continue
        reached = gap >= -tolerance
        if r["method"] == "trades":
            reached = reached and r["clean_acc"] >= ref["clean_acc"] - 0.05
        tag = "reproduced" if reached else "not reproduced"
        if r["undertrained"]:
            tag += " (undertrained at this budget)"
        r["verdict"] = (f"{tag}: robust {r['robust_acc']:.3f} vs {ref['robust_acc']:.3f} "
                        f"at 1/{ratio:.1f} of the reference's time")
