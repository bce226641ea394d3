"""PNG plots of the examples' and benchmarks' results (matplotlib, the ``plots`` extra).

matplotlib is imported only when a plot is drawn. Without it every function prints how to get
the plot (``pip install 'sedna-py[plots]'``) and returns ``None``: the examples run the same.
The default directory for the examples' plots is ``$SEDNA_PLOTS_DIR``, else ``.sedna/plots``
under the current directory (untracked, next to the state ``sedna local up`` keeps).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install 'sedna-py[plots]' (matplotlib)"


def plots_dir() -> Path:
    """Where the examples write their plots: ``$SEDNA_PLOTS_DIR`` or ``./.sedna/plots``."""
    return Path(os.environ.get("SEDNA_PLOTS_DIR") or Path(".sedna") / "plots")


def _pyplot(path: Path) -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend, or None (after saying why)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"(no plot {path.name}: matplotlib is not installed; {INSTALL_HINT})", flush=True)
        return None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot written to {path}", flush=True)
    return path


def threshold_curve(path: Path, thresholds: Sequence[float], offload: Sequence[float], accuracy: Sequence[float],
                    chosen: float, edge_accuracy: float | None = None,
                    cloud_accuracy: float | None = None) -> Path | None:
    """Offload share and joint accuracy over hard-example thresholds, the chosen one marked."""
    plt = _pyplot(path)
    if plt is None:
        return None
    fig, left = plt.subplots(figsize=(6.4, 3.8))
    right = left.twinx()
    left.plot(thresholds, offload, "o-", color="tab:orange", label="offload share")
    right.plot(thresholds, accuracy, "s-", color="tab:blue", label="joint accuracy")
    for value, name, style in ((edge_accuracy, "edge only", ":"), (cloud_accuracy, "cloud only", "--")):
        if value is not None:
            right.axhline(value, color="tab:blue", linestyle=style, linewidth=1, label=name)
    left.axvline(chosen, color="grey", linewidth=1)
    i = min(range(len(thresholds)), key=lambda k: abs(thresholds[k] - chosen))
    left.annotate(f"chosen {chosen}: offload {offload[i]:.3f}, accuracy {accuracy[i]:.4f}",
                  (thresholds[i], offload[i]), textcoords="offset points", xytext=(12, -30), fontsize=8,
                  arrowprops={"arrowstyle": "->", "color": "grey"})
    left.set_xlabel("CrossEntropy threshold (a sample is hard below it)")
    left.set_ylabel("share of samples sent to the cloud")
    right.set_ylabel("accuracy")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="upper left", fontsize=8)
    left.set_title("Joint inference on the digits test split")
    return _save(plt, fig, path)


def per_round(path: Path, series: dict[str, Sequence[float | None]], title: str,
              rounds: Sequence[int] | None = None, ylabel: str = "accuracy") -> Path | None:
    """One line per series over rounds (``None`` values are left out)."""
    plt = _pyplot(path)
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, values in series.items():
        xs = list(rounds) if rounds is not None else list(range(1, len(values) + 1))
        points = [(x, v) for x, v in zip(xs, values, strict=False) if v is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def task_matrix(path: Path, matrix: Sequence[Sequence[float | None]], tasks: Sequence[str], rows: Sequence[str],
                title: str = "Accuracy per task as the knowledge base grows") -> Path | None:
    """A heat map: row i is what was served after stage ``rows[i]``, column j its accuracy on task j."""
    plt = _pyplot(path)
    if plt is None:
        return None
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * len(tasks) + 2.4, 0.8 * len(matrix) + 1.8))
    image = ax.imshow(data, vmin=0.0, vmax=1.0, cmap="viridis")
    for (r, c), value in np.ndenumerate(data):
        if not np.isnan(value):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value < 0.6 else "black")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_yticks(range(len(matrix)), list(rows)[: len(matrix)])
    ax.set_xlabel("evaluated on task")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="accuracy")
    return _save(plt, fig, path)
