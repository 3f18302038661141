"""PNG figures of the analyses (matplotlib, Agg backend: no display needed).

Each function takes the plain numbers an analysis returned (the same that go
into the JSON file) and a path, and writes one PNG with labelled axes and a legend.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import matplotlib

matplotlib.use("Agg")
import numpy  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 120


def _save(fig: Figure, path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _drift_bars(ax, runs: Dict[str, Dict[str, float]]) -> None:
    layers: List[str] = []
    for drift in runs.values():
        layers.extend(layer for layer in drift if layer not in layers)
    x = numpy.arange(len(layers))
    width = 0.8 / max(len(runs), 1)
    for i, (label, drift) in enumerate(runs.items()):
        values = [drift.get(layer, numpy.nan) for layer in layers]
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=30, ha="right")
    ax.set_xlabel("layer")
    ax.set_ylabel("relative change ||W_ft - W_0|| / ||W_0||")
    ax.set_title("Weight drift per layer")
    ax.legend()


def plot_drift(drift: Dict[str, object], path: Union[str, Path], *, label: str = "fine-tuned") -> Path:
    """Bars of the drift per layer, and a heat map of the drift per module of each layer.

    drift (Dict[str, object]): as returned by ``weight_drift``.
    """
    layers: Dict[str, float] = drift["layers"]  # type: ignore[assignment]
    modules: Dict[str, Dict[str, float]] = drift["modules"]  # type: ignore[assignment]
    fig = Figure(figsize=(13, 5))
    _drift_bars(fig.add_subplot(1, 2, 1), {label: layers})
    ax = fig.add_subplot(1, 2, 2)
    encoder_layers = [layer for layer in layers if layer.startswith("layer ")]
    names: List[str] = []
    for layer in encoder_layers:
        names.extend(m for m in modules[layer] if m not in names)
    if encoder_layers and names:
        grid = numpy.array([[modules[layer].get(m, numpy.nan) for layer in encoder_layers] for m in names])
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(encoder_layers)))
        ax.set_xticklabels(encoder_layers)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names)
        for (i, j), value in numpy.ndenumerate(grid):
            ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="w", fontsize=8)
        fig.colorbar(image, ax=ax, label="relative change")
    ax.set_xlabel("encoder layer")
    ax.set_ylabel("module")
    ax.set_title("Weight drift per module")
    return _save(fig, path)


def _interpolation_lines(ax, runs: Dict[str, Dict[str, List[float]]]) -> None:
    styles = {"train": "-", "dev": "--"}
    for i, (label, result) in enumerate(runs.items()):
        color = f"C{i}"
        for split, values in result.items():
            if split == "alpha":
                continue
            name = f"{label}: {split}" if len(runs) > 1 else split
            ax.plot(result["alpha"], values, styles.get(split, ":"), color=color if len(runs) > 1 else None, marker="o", markersize=3, label=name)
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("α  (θ = θ0 + α (θ1 − θ0); θ0 at 0, fine-tuned θ1 at 1)")
    ax.set_ylabel("loss (mean per batch)")
    ax.set_title("1D interpolation from the initial to the fine-tuned weights")
    ax.legend()


def plot_interpolation(result: Dict[str, List[float]], path: Union[str, Path]) -> Path:
    """Training and dev loss against α along the line from θ0 to θ1."""
    fig = Figure(figsize=(7, 4.5))
    _interpolation_lines(fig.add_subplot(1, 1, 1), {"": result})
    return _save(fig, path)


def plot_landscape(
    xs: Sequence[float],
    ys: Sequence[float],
    grid: numpy.ndarray,
    path: Union[str, Path],
    *,
    title: str = "Loss around the fine-tuned weights",
    xlabel: str = "random direction 1 (filter-normalised)",
    ylabel: str = "random direction 2 (filter-normalised)",
    trajectory: Optional[Sequence[Tuple[float, float]]] = None,
    trajectory_labels: Optional[Sequence[str]] = None,
) -> Path:
    """A contour plot of a loss grid, with θ1 at the origin and optionally a trajectory over it."""
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    grid = numpy.asarray(grid)
    filled = ax.contourf(xs, ys, grid, levels=20, cmap="viridis")
    lines = ax.contour(xs, ys, grid, levels=10, colors="white", linewidths=0.5)
    ax.clabel(lines, fontsize=7, fmt="%.3g")
    fig.colorbar(filled, ax=ax, label="loss")
    if trajectory is not None and len(trajectory):
        tx, ty = zip(*trajectory)
        ax.plot(tx, ty, "-o", color="red", markersize=4, label="checkpoints")
        ax.plot(tx[0], ty[0], "s", color="orange", markersize=8, label="start (θ0)")
        if trajectory_labels:
            for (px, py), text in zip(trajectory, trajectory_labels):
                ax.annotate(text, (px, py), fontsize=7, color="white", xytext=(3, 3), textcoords="offset points")
    ax.plot([0], [0], "*", color="red", markersize=14, label="fine-tuned (θ1)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_comparison(runs: Dict[str, Dict[str, object]], path: Union[str, Path], *, score_name: str = "dev score") -> Path:
    """Side by side: training loss, dev score, drift per layer and 1D interpolation of each run.

    runs (Dict[str, Dict[str, object]]): per label, ``{"log": [training log rows],
        "drift": weight_drift result, "interpolation": interpolate result}``.
    """
    fig = Figure(figsize=(13, 9.5))
    ax_loss, ax_score, ax_drift, ax_interp = (fig.add_subplot(2, 2, i) for i in range(1, 5))
    for i, (label, run) in enumerate(runs.items()):
        log = run.get("log") or []
        steps = [row["step"] for row in log]
        # spaCy sums the losses since the last evaluation: divide by the steps they cover
        spans = [max(step - prev, 1) for step, prev in zip(steps, [0] + steps[:-1])]
        per_step = [sum(row["losses"].values()) / span for row, span in zip(log, spans)]
        ax_loss.plot(steps, per_step, "-o", markersize=3, color=f"C{i}", label=label)
        ax_score.plot(steps, [row["score"] for row in log], "-o", markersize=3, color=f"C{i}", label=label)
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("training loss (mean per step since the last evaluation)")
    ax_loss.set_yscale("log")
    ax_loss.set_title("Training loss")
    ax_loss.legend()
    ax_score.set_xlabel("training step")
    ax_score.set_ylabel(score_name)
    ax_score.set_title("Dev score")
    ax_score.legend()
    _drift_bars(ax_drift, {label: run["drift"]["layers"] for label, run in runs.items() if run.get("drift")})
    _interpolation_lines(ax_interp, {label: run["interpolation"] for label, run in runs.items() if run.get("interpolation")})
    return _save(fig, path)
