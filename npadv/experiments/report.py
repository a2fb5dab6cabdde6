"""The comparison shown: a Markdown table, printed and written, and a plot of robust
accuracy against training time."""
from __future__ import annotations

from pathlib import Path

from ..files import atomic_output, atomic_write
from .verdicts import claimed_ratio, clock_of, show_ratio


def format_table(summary: dict) -> str:
    """The comparison as a Markdown table (also readable as plain text)."""
    lines = ["| method | epochs | clean | robust | train s | train CPU s | time to robustness "
             "| full passes | GFLOPs | paper's claim | here |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        note = " (undertrained)" if r["undertrained"] and not r["reference"] else ""
        cpu = " CPU" if r.get("clock") == "cpu_time" else ""
        reach = ("—" if r.get("target") is None else "never" if r.get("reach_time") is None
                 else f"{r['reach_time']:.0f} s{cpu} ({show_ratio(r['time_ratio'])})")
        claim = r["claim"]
        if claim and claimed_ratio(r["method"]):
            claim += f"; in time: {claimed_ratio(r['method'])}"
        lines.append(f"| {r['label']}{note}{guard_note(r)} | {r['epochs']} | "
                     f"{r['clean_acc']:.3f} | {r['robust_acc']:.3f} | {r['train_time']:.1f} | "
                     f"{_cpu(r)} | "
                     f"{reach} | {r['full_passes']} | {r['gflops']:.0f} | {claim} | "
                     f"{r.get('verdict', '')} |")
    return "\n".join(lines)


def _cpu(row: dict) -> str:
    return "—" if row.get("train_cpu_time") is None else f"{row['train_cpu_time']:.1f}"


def guard_note(row: dict) -> str:
    """What an early-stopping guard did: " (stopped: why)", " (guard: never fired, best
    check at epoch k of n)" for a row whose log has the guard's figures, else ""."""
    if row.get("stopped"):
        return f" (stopped: {row['stopped']})"
    best = [c["guard_best_epoch"] for c in row.get("curve", []) if "guard_best_epoch" in c]
    if not best:
        return ""
    return f" (guard: never fired, best check at epoch {best[-1]} of {len(row['curve'])})"


def report(summary: dict, out: str | Path | None = None) -> None:
    """Print the comparison's settings and table; with `out`, also write it to table.md."""
    print(f"\n{summary['title']}\nrobust = {summary['evaluation']}\n"
          f"on {summary['n_eval']} test images; wall time {summary['wall_time']:.0f} s\n")
    print(format_table(summary))
    if out is not None:
        atomic_write(Path(out) / "table.md", format_table(summary) + "\n")


def plot_comparison(summary: dict, path: Path) -> bool:
    """Per-epoch PGD-10 check accuracy against cumulative training time, one curve a row,
    each row's final evaluation as a star at its end, and the time-to-robustness target as
    a line. Returns False (and writes nothing) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.8))
    clock = clock_of(summary["rows"])
    for r in summary["rows"]:
        t = [c[clock] for c in r["curve"]]
        acc = [c["robust_acc"] for c in r["curve"]]
        style = {"linestyle": "--", "color": "black"} if r["reference"] else {}
        line, = ax.plot(t, acc, marker="o", markersize=3, label=r["label"], **style)
        ax.plot([t[-1]], [r["robust_acc"]], marker="*", markersize=11, linestyle="none",
                color=line.get_color())            # the final evaluation, at the end of training
    target = next((r.get("target") for r in summary["rows"] if r.get("target") is not None),
                  None)
    log = not summary.get("budget")          # converged runs span a decade or more of time
    if log:
        ax.set_xscale("log")
    if target is not None:
        ax.axhline(target, color="grey", linewidth=0.8, linestyle="-.")
        ax.text(0.01, target, " within 2 points of the reference", color="grey", fontsize=8,
                va="bottom", transform=ax.get_yaxis_transform())
    ax.plot([], [], marker="*", markersize=11, linestyle="none", color="grey",
            label="final evaluation (★)")
    if summary.get("budget"):
        ax.axvline(summary["budget"], color="grey", linewidth=0.8, linestyle=":")
        ax.text(summary["budget"], 0.02, " budget", color="grey", fontsize=8)
    what = "CPU time" if clock == "cpu_time" else "time"
    ax.set_xlabel(f"cumulative training {what} (s{', log scale' if log else ''})")
    ax.set_ylabel(f"robust accuracy at ε = {summary['eps']}\n(per-epoch PGD-10 check; ★ final)")
    ax.set_ylim(0, 1)
    if not log:
        ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))    # off the curves
    if summary.get("title"):
        ax.set_title(summary["title"], fontsize=10)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:     # keeps path's suffix, savefig's format
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return True
