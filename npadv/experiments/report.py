"""The comparison shown: a Markdown table, printed and written, and a plot of robust
accuracy against training time."""
from __future__ import annotations

from pathlib import Path

from ..files import atomic_output, atomic_write


def format_table(summary: dict) -> str:
    """The comparison as a Markdown table (also readable as plain text)."""
    lines = ["| method | epochs | clean | robust | train s | full passes | GFLOPs | claim |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        note = " (undertrained)" if r["undertrained"] and not r["reference"] else ""
        stopped = f" (stopped: {r['stopped']})" if r["stopped"] else ""
        lines.append(f"| {r['label']}{note}{stopped} | {r['epochs']} | {r['clean_acc']:.3f} | "
                     f"{r['robust_acc']:.3f} | {r['train_time']:.1f} | {r['full_passes']} | "
                     f"{r['gflops']:.0f} | {r.get('verdict', '')} |")
    return "\n".join(lines)


def report(summary: dict, out: str | Path | None = None) -> None:
    """Print the comparison's settings and table; with `out`, also write it to table.md."""
    print(f"\n{summary['title']}\nrobust = {summary['evaluation']}\n"
          f"on {summary['n_eval']} test images; wall time {summary['wall_time']:.0f} s\n")
    print(format_table(summary))
    if out is not None:
        atomic_write(Path(out) / "table.md", format_table(summary) + "\n")


def plot_comparison(summary: dict, path: Path) -> bool:
    """Per-epoch PGD-10 check accuracy against cumulative training time, one curve a row.
    Returns False (and writes nothing) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in summary["rows"]:
        t = [c["time"] for c in r["curve"]]
        acc = [c["robust_acc"] for c in r["curve"]]
        style = {"linestyle": "--", "color": "black"} if r["reference"] else {}
        ax.plot(t, acc, marker="o", markersize=3, label=r["label"], **style)
    if summary.get("budget"):
        ax.axvline(summary["budget"], color="grey", linewidth=0.8, linestyle=":")
        ax.text(summary["budget"], 0.02, " budget", color="grey", fontsize=8)
    ax.set_xlabel("cumulative training time (s)")
    ax.set_ylabel(f"PGD-10 accuracy at ε = {summary['eps']}\n(per-epoch check)")
    ax.set_ylim(0, 1)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if summary.get("title"):
        ax.set_title(summary["title"], fontsize=10)
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:     # keeps path's suffix, savefig's format
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return True
