"""Run the analyses of one fine-tuned pipeline, or compare several, and write PNGs + JSON.

θ0, the weights fine-tuning started from, comes from (first that applies):
1. ``initial``: a weights file, a pipeline saved right after ``nlp.initialize``,
   or an encoder folder (then only the encoder has a θ0 of its own, see 3);
2. the first of ``checkpoints`` (``step-000000`` of ``save_weights.v1`` is
   exactly the state after ``nlp.initialize``);
3. the encoder folder named in the pipeline's config; the heads' θ0 is then a
   fresh initialisation of each head with ``seed`` (the same distribution as the
   real start, not the same draw: say so when you report numbers).
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy
from spacy.language import Language
from spacy.util import fix_random_seed
from wasabi import msg

from . import plots
from .drift import weight_drift
from .landscape import interpolate, landscape_2d, project, random_direction, sharpness, trajectory_directions
from .losses import read_examples
from .params import Weights, encoder_pipe_names, get_weights, head_pipe_names, load_weights, norm, set_weights, subtract
from .recording import read_training_log

ANALYSES = ("drift", "interpolation", "landscape", "sharpness", "trajectory")
RESULT_FILE = "analysis.json"


def checkpoint_files(folder: Union[str, Path]) -> List[Path]:
    """The ``step-*.safetensors`` files of a folder, in step order."""
    files = sorted(Path(folder).glob("step-*.safetensors"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        raise FileNotFoundError(
            f"No step-*.safetensors checkpoints in {folder}. Train with the "
            "spacy_bert_tasks.save_weights.v1 callback (see `analyze config`)."
        )
    return files


def reinitialized_heads(nlp: Language, seed: int) -> Weights:
    """The heads' weights after a fresh initialisation with ``seed``; the pipeline is left unchanged."""
    current = get_weights(nlp)
    try:
        fix_random_seed(seed)
        for name in head_pipe_names(nlp):
            nlp.get_pipe(name).model.initialize()
        fresh = get_weights(nlp)
    finally:
        set_weights(nlp, current)
    heads = set(head_pipe_names(nlp))
    return {k: v for k, v in fresh.items() if k.split("/", 1)[0] in heads}


def initial_weights(
    nlp: Language,
    *,
    initial: Optional[Union[str, Path]] = None,
    checkpoints: Sequence[Path] = (),
    seed: int = 0,
) -> Dict[str, object]:
    """θ0 and where it came from (see the module docstring)."""
    if initial is not None:
        theta0 = load_weights(initial)
        source = str(initial)
    elif checkpoints:
        theta0 = load_weights(checkpoints[0])
        source = str(checkpoints[0])
    else:
        pipe = encoder_pipe_names(nlp)[0]
        folder = nlp.config["components"][pipe]["model"].get("name", "")
        if not Path(str(folder)).is_dir():
            raise FileNotFoundError(
                f"The encoder the pipeline started from ({folder}) is not a local folder. Pass "
                "--initial (the encoder folder or a step-0 checkpoint)."
            )
        theta0 = load_weights(folder, encoder_pipe=pipe)
        source = str(folder)
    heads = set(head_pipe_names(nlp))
    if not any(k.split("/", 1)[0] in heads for k in theta0):
        theta0.update(reinitialized_heads(nlp, seed))
        source += f" (heads: fresh initialisation, seed {seed})"
    return {"weights": theta0, "source": source}


def analyze_pipeline(
    nlp: Language,
    output_dir: Union[str, Path],
    *,
    initial: Optional[Union[str, Path]] = None,
    train_path: Optional[Union[str, Path]] = None,
    dev_path: Optional[Union[str, Path]] = None,
    checkpoints_dir: Optional[Union[str, Path]] = None,
    training_log: Optional[Union[str, Path]] = None,
    analyses: Sequence[str] = ANALYSES,
    n_batches: int = 4,
    batch_size: int = 16,
    alpha_min: float = -0.5,
    alpha_max: float = 1.5,
    alpha_steps: int = 21,
    grid_size: int = 11,
    grid_range: float = 1.0,
    sharpness_distance: float = 0.5,
    sharpness_directions: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> Dict[str, object]:
    """Run the chosen analyses on a fine-tuned pipeline; write ``analysis.json`` and PNGs.

    nlp (Language): the fine-tuned pipeline (θ1). Its weights are restored at the end.
    output_dir (Union[str, Path]): folder for ``analysis.json`` and the figures.
    initial (Optional[Union[str, Path]]): θ0 (see the module docstring).
    train_path / dev_path (Optional[Union[str, Path]]): corpora for the losses.
    checkpoints_dir (Optional[Union[str, Path]]): ``step-*.safetensors`` for the trajectory.
    training_log (Optional[Union[str, Path]]): a ``TrainingLog.v1`` file, copied into the JSON.
    analyses (Sequence[str]): a subset of ``ANALYSES``.
    n_batches, batch_size (int): the losses are measured on ``n_batches * batch_size``
        examples of each split, drawn once with ``seed``.
    alpha_min, alpha_max, alpha_steps: the points of the 1D interpolation.
    grid_size (int), grid_range (float): the 2D grid is grid_size x grid_size over
        [-grid_range, grid_range]^2 in filter-normalised units.
    sharpness_distance (float), sharpness_directions (int): see ``landscape.sharpness``.
    RETURNS (Dict[str, object]): everything written to ``analysis.json``.
    """
    unknown = set(analyses) - set(ANALYSES)
    if unknown:
        raise ValueError(f"Unknown analyses {sorted(unknown)}; choose from {', '.join(ANALYSES)}.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    splits = _read_splits(nlp, {"train": train_path, "dev": dev_path}, n_batches * batch_size, seed)
    needs_data = {"interpolation", "landscape", "sharpness", "trajectory"} & set(analyses)
    if needs_data and not splits:
        raise ValueError(f"The analyses {sorted(needs_data)} measure losses: pass a train and/or dev corpus.")
    checkpoints = checkpoint_files(checkpoints_dir) if checkpoints_dir is not None else []
    theta1 = get_weights(nlp)
    start = initial_weights(nlp, initial=initial, checkpoints=checkpoints, seed=seed)
    run = _Run(
        nlp, output_dir, start["weights"], theta1, splits, splits.get("train") or splits.get("dev") or [], checkpoints,
        batch_size=batch_size, seed=seed, progress=progress, alphas=numpy.linspace(alpha_min, alpha_max, alpha_steps).tolist(),
        grid_size=grid_size, grid_range=grid_range, sharpness_distance=sharpness_distance,
        sharpness_directions=sharpness_directions,
    )
    result: Dict[str, object] = {
        "settings": {
            "initial": start["source"], "train": str(train_path), "dev": str(dev_path),
            "examples_per_split": {k: len(v) for k, v in splits.items()}, "batch_size": batch_size,
            "n_batches": n_batches, "seed": seed, "analyses": list(analyses),
        },
        "figures": run.figures,
    }
    if training_log is not None:
        result["log"] = read_training_log(training_log)
    try:
        for name in ANALYSES:
            if name in analyses:
                outcome = _ANALYSES[name](run)
                if outcome is not None:
                    result[name] = outcome
    finally:
        set_weights(nlp, theta1)
    # the standard json module keeps every digit of the floats
    (output_dir / RESULT_FILE).write_text(json.dumps(result, indent=2), encoding="utf8")
    return result


def _read_splits(nlp: Language, paths: Dict[str, Optional[Union[str, Path]]], n_examples: int, seed: int) -> Dict[str, list]:
    """A seeded sample of ``n_examples`` examples of each split that has a path."""
    return {split: read_examples(nlp, path, split=split, limit=n_examples, seed=seed)
            for split, path in paths.items() if path is not None}


@dataclass
class _Run:
    """What every analysis of one pipeline reads: the pipeline, θ0 and θ1, the examples, the settings."""

    nlp: Language
    output_dir: Path
    theta0: Weights
    theta1: Weights
    splits: Dict[str, list]
    surface: list  # the examples the landscapes are measured on
    checkpoints: List[Path]
    batch_size: int
    seed: int
    progress: bool
    alphas: List[float]
    grid_size: int
    grid_range: float
    sharpness_distance: float
    sharpness_directions: int
    figures: Dict[str, str] = field(default_factory=dict)

    @property
    def surface_name(self) -> str:
        return _name(self.splits, self.surface)


def _drift(run: _Run) -> dict:
    drift = weight_drift(run.theta0, run.theta1)
    run.figures["drift"] = str(plots.plot_drift(drift, run.output_dir / "drift.png"))
    return drift


def _interpolation(run: _Run) -> dict:
    curves = interpolate(run.nlp, run.theta0, run.theta1, run.splits, run.alphas, batch_size=run.batch_size,
                         progress=run.progress)
    run.figures["interpolation"] = str(plots.plot_interpolation(curves, run.output_dir / "interpolation.png"))
    return curves


def _landscape(run: _Run) -> dict:
    rng = numpy.random.default_rng(run.seed)
    d1, d2 = random_direction(run.theta1, rng), random_direction(run.theta1, rng)
    coords = numpy.linspace(-run.grid_range, run.grid_range, run.grid_size).tolist()
    grid = landscape_2d(run.nlp, run.theta1, d1, d2, coords, coords, run.surface, batch_size=run.batch_size,
                        progress=run.progress)
    run.figures["landscape"] = str(plots.plot_landscape(
        coords, coords, grid, run.output_dir / "landscape.png",
        title=f"{run.surface_name} loss around the fine-tuned weights",
    ))
    return {"xs": coords, "ys": coords, "loss": grid.tolist(), "split": run.surface_name}


def _sharpness(run: _Run) -> dict:
    return sharpness(
        run.nlp, run.theta1, run.surface, distance=run.sharpness_distance, n_directions=run.sharpness_directions,
        seed=run.seed + 1, batch_size=run.batch_size, progress=run.progress,
    )


def _trajectory_analysis(run: _Run) -> Optional[dict]:
    if not run.checkpoints:
        msg.warn("Skipping the trajectory: no checkpoints folder given.")
        return None
    traj = _trajectory(run.nlp, run.theta1, run.checkpoints, run.surface, run.grid_size, run.batch_size, run.progress)
    run.figures["trajectory"] = str(plots.plot_landscape(
        traj["xs"], traj["ys"], numpy.asarray(traj["loss"]), run.output_dir / "trajectory.png",
        title=f"Optimisation trajectory over the {run.surface_name} loss",
        xlabel=f"1st principal direction ({100 * traj['explained'][0]:.1f}% of variance)",
        ylabel=f"2nd principal direction ({100 * traj['explained'][1]:.1f}% of variance)",
        trajectory=traj["points"], trajectory_labels=[f"{s}" for s in traj["steps"]],
    ))
    return traj


# One function per analysis, run in the order of ANALYSES.
_ANALYSES: Dict[str, Callable[[_Run], Optional[dict]]] = {
    "drift": _drift, "interpolation": _interpolation, "landscape": _landscape, "sharpness": _sharpness,
    "trajectory": _trajectory_analysis,
}


def _name(splits: Dict[str, list], surface: list) -> str:
    return next((name for name, egs in splits.items() if egs is surface), "train")


def _trajectory(nlp: Language, theta1: Weights, checkpoints: List[Path], examples, grid_size: int, batch_size: int, progress: bool) -> dict:
    weights = [load_weights(path) for path in checkpoints]
    d1, d2, explained = trajectory_directions(weights, theta1)
    points = [project(w, theta1, d1, d2) for w in weights]
    steps: List[Union[int, str]] = [int(re.sub(r"\D", "", p.stem) or 0) for p in checkpoints]
    if norm(subtract(weights[-1], theta1)) == 0.0:
        steps[-1] = f"{steps[-1]} (final)"  # the last checkpoint is θ1 itself
    else:
        points.append((0.0, 0.0))
        steps.append("final")
    px, py = [p[0] for p in points], [p[1] for p in points]
    pad_x, pad_y = 0.2 * (max(px) - min(px) or 1.0), 0.2 * (max(py) - min(py) or 1.0)
    xs = numpy.linspace(min(px) - pad_x, max(px) + pad_x, grid_size).tolist()
    ys = numpy.linspace(min(py) - pad_y, max(py) + pad_y, grid_size).tolist()
    grid = landscape_2d(nlp, theta1, d1, d2, xs, ys, examples, batch_size=batch_size, progress=progress, desc="trajectory landscape")
    return {"steps": steps, "points": points, "explained": explained, "xs": xs, "ys": ys, "loss": grid.tolist()}


def compare_runs(results: Dict[str, Union[str, Path]], output_dir: Union[str, Path]) -> Dict[str, object]:
    """Put the ``analysis.json`` of several runs side by side in ``compare.png`` + ``compare.json``.

    results (Dict[str, Union[str, Path]]): per label (e.g. "pre-trained", "from scratch"),
        an analysis folder or its ``analysis.json``.
    """
    runs = {}
    for label, path in results.items():
        path = Path(path)
        path = path / RESULT_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"No analysis results at {path} (for '{label}'). Run `analyze pipeline` first.")
        runs[label] = json.loads(path.read_text(encoding="utf8"))
    output_dir = Path(output_dir)
    figure = plots.plot_comparison(runs, output_dir / "compare.png")
    summary: Dict[str, object] = {"figure": str(figure), "runs": {}}
    for label, run in runs.items():
        summary["runs"][label] = run_findings(run)  # type: ignore[index]
    (output_dir / "compare.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    return summary


def run_findings(run: Dict[str, object]) -> Dict[str, object]:
    """The numbers behind Hao et al.'s three findings, from one run's ``analysis.json``.

    - optimisation and flatness: the training loss per step at the first and last
      evaluation, and the sharpness;
    - robustness to overfitting: the best and final dev scores, and the drop between them;
    - lower layers change least: the mean drift of the lower and upper half of the
      encoder's layers, and the rank correlation of drift with depth (+1: each layer
      drifts more than the one below).
    """
    log = run.get("log") or []
    drift = run.get("drift") or {}
    layers: Dict[str, float] = drift.get("layers", {})  # type: ignore[assignment]
    steps = [row["step"] for row in log]
    spans = [max(step - prev, 1) for step, prev in zip(steps, [0] + steps[:-1])]
    train_loss = [sum(row["losses"].values()) / span for row, span in zip(log, spans)]
    scores = [row["score"] for row in log]
    best = max(scores, default=None)
    encoder_layers = [layers[name] for name in sorted((n for n in layers if re.fullmatch(r"layer \d+", n)), key=lambda n: int(n.split()[1]))]
    half = len(encoder_layers) // 2
    sharp = run.get("sharpness") or {}
    return {
        "best_dev_score": best,
        "best_dev_step": steps[scores.index(best)] if scores else None,
        "final_dev_score": scores[-1] if scores else None,
        "dev_drop_from_best": best - scores[-1] if scores else None,
        "first_train_loss": train_loss[0] if train_loss else None,
        "final_train_loss": train_loss[-1] if train_loss else None,
        "sharpness": run.get("sharpness"),
        "sharpness_mean": sharp.get("mean"),  # type: ignore[union-attr]
        "drift_total": drift.get("total"),
        "most_drifted_layers": sorted(layers, key=layers.get, reverse=True)[:3],  # type: ignore[arg-type]
        "drift_layers": layers,
        "drift_lower_half": float(numpy.mean(encoder_layers[:half])) if half else None,
        "drift_upper_half": float(numpy.mean(encoder_layers[half:])) if half else None,
        "drift_depth_correlation": _rank_correlation(encoder_layers) if len(encoder_layers) > 1 else None,
    }


def _rank_correlation(values: Sequence[float]) -> float:
    """Spearman's rho between position (depth) and value."""
    ranks = numpy.argsort(numpy.argsort(numpy.asarray(values, dtype="float64"))).astype("float64")
    depth = numpy.arange(len(values), dtype="float64")
    return float(numpy.corrcoef(depth, ranks)[0, 1])
