"""The ``analyze`` command group: what fine-tuning did to the weights."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .app import analyze_app, app, parse_pairs

app.add_typer(analyze_app, name="analyze")


@analyze_app.command("pipeline")
def analyze_pipeline_cli(
    model: Path = typer.Argument(..., help="The fine-tuned spaCy pipeline folder (θ1).", exists=True, file_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for analysis.json and the PNG figures."),
    initial: Optional[Path] = typer.Option(None, "--initial", "-i", help="θ0: a step-0 weights file, a pipeline saved after initialize, or the encoder folder. Default: the first checkpoint, else the encoder folder of the config.", exists=True),
    train: Optional[Path] = typer.Option(None, "--train", help="Training corpus (.spacy, or what the config's reader reads).", exists=True),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev corpus.", exists=True),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Folder of step-*.safetensors saved by spacy_bert_tasks.save_weights.v1, for the trajectory.", exists=True, file_okay=False),
    log: Optional[Path] = typer.Option(None, "--log", help="JSON-lines training log of spacy_bert_tasks.TrainingLog.v1, kept in analysis.json for `analyze compare`.", exists=True, dir_okay=False),
    only: str = typer.Option("drift,interpolation,landscape,sharpness,trajectory", "--only", help="Comma-separated analyses to run."),
    n_batches: int = typer.Option(4, "--n-batches", help="Batches of each split the losses are measured on."),
    batch_size: int = typer.Option(16, "--batch-size", help="Examples per batch."),
    alpha_min: float = typer.Option(-0.5, "--alpha-min", help="First α of the 1D interpolation (0 = θ0)."),
    alpha_max: float = typer.Option(1.5, "--alpha-max", help="Last α of the 1D interpolation (1 = θ1)."),
    alpha_steps: int = typer.Option(21, "--alpha-steps", help="Points on the 1D line."),
    grid_size: int = typer.Option(11, "--grid-size", help="Points per side of the 2D grids."),
    grid_range: float = typer.Option(1.0, "--grid-range", help="The 2D landscape spans [-r, r] in filter-normalised units."),
    sharpness_distance: float = typer.Option(0.5, "--sharpness-distance", help="Distance along each random direction for the sharpness."),
    sharpness_directions: int = typer.Option(4, "--sharpness-directions", help="Random directions for the sharpness (each used both ways)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the example sample and the random directions."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Analyse one fine-tuned pipeline.

    Reads MODEL, θ0 (--initial / --checkpoints / the encoder folder of its config) and
    samples of the corpora. Writes to OUTPUT: analysis.json (every number) and
    drift.png, interpolation.png, landscape.png, trajectory.png.
    """
    import spacy

    from ..analysis import analyze_pipeline

    analyses = [name.strip() for name in only.split(",") if name.strip()]
    nlp = spacy.load(model)
    try:
        result = analyze_pipeline(
            nlp, output, initial=initial, train_path=train, dev_path=dev, checkpoints_dir=checkpoints,
            training_log=log, analyses=analyses, n_batches=n_batches, batch_size=batch_size,
            alpha_min=alpha_min, alpha_max=alpha_max, alpha_steps=alpha_steps, grid_size=grid_size,
            grid_range=grid_range, sharpness_distance=sharpness_distance,
            sharpness_directions=sharpness_directions, seed=seed, progress=progress,
        )
    except (ValueError, FileNotFoundError, KeyError) as err:
        msg.fail("Could not analyse the pipeline", str(err), exits=1)
    if "drift" in result:
        layers = result["drift"]["layers"]
        msg.info("Drift per layer: " + ", ".join(f"{k} {v:.4f}" for k, v in layers.items()))
    if "sharpness" in result:
        msg.info(f"Sharpness at distance {result['sharpness']['distance']}: mean increase {result['sharpness']['mean']:.4f}")
    for name, path in result["figures"].items():
        msg.good(f"{name}: {path}")
    msg.good(f"Numbers: {output / 'analysis.json'}")


@analyze_app.command("compare")
def analyze_compare_cli(
    runs: List[str] = typer.Argument(..., help="LABEL=FOLDER pairs: analysis folders of `analyze pipeline`, e.g. pre-trained=analysis/pre scratch=analysis/scratch."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for compare.png and compare.json."),
) -> None:
    """Put several analysed runs side by side.

    Reads each FOLDER/analysis.json (with its training log). Writes OUTPUT/compare.png
    (training loss, dev score, drift per layer, 1D interpolation) and OUTPUT/compare.json.
    """
    from ..analysis import compare_runs

    pairs = {label: Path(folder) for label, folder in parse_pairs(runs, what="a run", form="LABEL=FOLDER", example="pre-trained=analysis/pre")}
    try:
        summary = compare_runs(pairs, output)
    except FileNotFoundError as err:
        msg.fail("Could not compare the runs", str(err), exits=1)
    header = ("run", "best dev", "final dev", "drop", "train loss first -> last", "sharpness", "drift lower / upper half", "drift~depth")
    rows = [
        (label, _fmt(run["best_dev_score"]), _fmt(run["final_dev_score"]), _fmt(run["dev_drop_from_best"]),
         f"{_fmt(run['first_train_loss'])} -> {_fmt(run['final_train_loss'])}", _fmt(run["sharpness_mean"]),
         f"{_fmt(run['drift_lower_half'])} / {_fmt(run['drift_upper_half'])}", _fmt(run["drift_depth_correlation"], 2))
        for label, run in summary["runs"].items()
    ]
    msg.table(rows, header=header, divider=True)
    msg.good(f"Wrote {summary['figure']} and {output / 'compare.json'}")


@analyze_app.command("config")
def analyze_config_cli(
    config: Path = typer.Argument(..., help="A spaCy training config.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the instrumented config."),
    weights_dir: Path = typer.Option(..., "--weights-dir", help="Folder the weight checkpoints go to during training."),
    log: Path = typer.Option(..., "--log", help="JSON-lines training log to write during training."),
    every: int = typer.Option(100, "--every", help="Steps between weight checkpoints (step 0 is always saved)."),
) -> None:
    """Write a copy of CONFIG that saves weight checkpoints and a JSON training log.

    Sets [training.before_update] to spacy_bert_tasks.save_weights.v1 and
    [training.logger] to spacy_bert_tasks.TrainingLog.v1; everything else is unchanged.
    """
    from ..analysis import instrument_config

    try:
        path = instrument_config(config, output, weights_dir=weights_dir, log_path=log, every=every)
    except ValueError as err:
        msg.fail("Could not instrument the config", str(err), exits=1)
    msg.good(f"Wrote {path}: checkpoints every {every} steps to {weights_dir}, log to {log}")


@analyze_app.command("random-encoder")
def analyze_random_encoder_cli(
    source: Path = typer.Argument(..., help="A Hugging Face encoder folder.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder to write the randomly initialised copy to."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initialisation."),
) -> None:
    """Write an encoder of the same shape and tokenizer as SOURCE with random weights.

    The "from scratch" start of a pre-trained vs random comparison.
    """
    from ..pretraining.init_encoder import reinit_encoder

    try:
        path = reinit_encoder(source, output, seed=seed)
    except FileNotFoundError as err:
        msg.fail("Could not copy the encoder", str(err), exits=1)
    msg.good(f"Wrote a randomly initialised copy of {source} to {path}")


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
