"""The command line: ``spacy-bert-tasks`` or ``python -m spacy_bert_tasks``.

Each command parses its options, calls one function of the package and prints
what it did. The work itself lives in the package's rooms.
"""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy-bert-tasks",
    help="Fine-tune BERT-family encoders inside spaCy: convert corpora, make and pretrain encoders, analyse.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Fine-tune BERT-family encoders inside spaCy."""


@app.command("init-encoder")
def init_encoder_cli(
    texts: List[Path] = typer.Argument(..., help="Plain-text files to train the WordPiece vocabulary on.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the Hugging Face encoder to."),
    size: str = typer.Option("tiny", "--size", "-s", help="tiny (2x128), mini (4x256), small (4x512) or base (12x768)."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="Size of the WordPiece vocabulary."),
    lowercase: bool = typer.Option(False, "--lowercase/--cased", help="Lower-case (and strip accents) before tokenising."),
    max_positions: int = typer.Option(512, "--max-positions", help="Longest sequence, in word pieces, the encoder accepts."),
    min_frequency: int = typer.Option(2, "--min-frequency", help="Least count for a piece to enter the vocabulary."),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights."),
) -> None:
    """Train a WordPiece vocabulary and write a randomly initialised BERT.

    Reads TEXTS (one document or paragraph per line). Writes OUTPUT: config.json,
    tokenizer files and model.safetensors, loadable with AutoModel/AutoTokenizer
    and usable as `paths.encoder` in every config. Nothing is downloaded.
    """
    from .pretraining.init_encoder import ENCODER_SIZES, init_encoder

    if size not in ENCODER_SIZES:
        msg.fail(f"Unknown size '{size}'", f"Choose one of: {', '.join(ENCODER_SIZES)}.", exits=1)
    try:
        with msg.loading(f"Training a {vocab_size}-piece vocabulary on {len(texts)} file(s)..."):
            path = init_encoder(
                texts, output, size=size, vocab_size=vocab_size, lowercase=lowercase,
                max_positions=max_positions, min_frequency=min_frequency, seed=seed,
            )
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not build the encoder", str(err), exits=1)
    msg.good(f"Wrote a randomly initialised {size} BERT to {path}")


@app.command("merge-corpora")
def merge_corpora_cli(
    inputs: List[str] = typer.Argument(..., help="NAME=PATH pairs: the joint pipeline's component name and its task's .spacy corpus."),
    output: Path = typer.Option(..., "--output", "-o", help="The merged .spacy file to write."),
    labels_dir: Optional[Path] = typer.Option(None, "--labels-dir", help="Write NAME.json with each text classifier's labels here."),
    max_per_task: Optional[int] = typer.Option(None, "--max-per-task", help="Keep at most this many docs of each corpus (seeded sample); 0 keeps all."),
    seed: int = typer.Option(0, "--seed", help="Seed for sampling and shuffling."),
) -> None:
    """Merge single-task corpora into one corpus for multi-task training.

    Reads each PATH (written by `convert`) and writes OUTPUT, shuffled. Every
    doc keeps only its own task's annotation; the other tasks' annotations are
    removed so the other heads treat the doc as missing, not as a negative.
    """
    from .project import merge_corpora

    pairs = []
    for item in inputs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            msg.fail(f"Cannot read '{item}'", "Write each input as NAME=PATH, e.g. ner=corpus/conll/train.spacy.", exits=1)
        pairs.append((name, Path(path)))
    try:
        counts = merge_corpora(pairs, output, labels_dir=labels_dir, max_per_task=max_per_task or None, seed=seed)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not merge the corpora", str(err), exits=1)
    kept = ", ".join(f"{name} {n}" for name, n in counts.items())
    msg.good(f"Wrote {sum(counts.values())} docs to {output} ({kept})")


@app.command("split-squad")
def split_squad_cli(
    input_path: Path = typer.Argument(..., help="SQuAD 1.1 or 2.0 JSON file.", exists=True, dir_okay=False),
    train_output: Path = typer.Option(..., "--train", help="JSON file for the training articles."),
    dev_output: Path = typer.Option(..., "--dev", help="JSON file for the dev articles."),
    dev_articles: int = typer.Option(..., "--dev-articles", help="How many articles, from the end of the file, form the dev set."),
) -> None:
    """Split a SQuAD file by article into train and dev files.

    Reads INPUT_PATH; writes the first articles to --train and the last
    --dev-articles to --dev, so no paragraph is shared between the two.
    """
    from .project import split_squad

    try:
        n_train, n_dev = split_squad(input_path, train_output, dev_output, dev_articles=dev_articles)
    except ValueError as err:
        msg.fail("Could not split the SQuAD file", str(err), exits=1)
    msg.good(f"Wrote {n_train} articles to {train_output} and {n_dev} to {dev_output}")


@app.command("summarize")
def summarize_cli(
    metrics: List[Path] = typer.Argument(..., help="Metrics JSON files written by `spacy evaluate`.", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the table as Markdown here."),
) -> None:
    """Print a table of the headline metrics of each evaluated pipeline.

    Reads METRICS (one row group per file, named by the file's stem); writes
    OUTPUT as a Markdown table when given.
    """
    from .project import summarize_metrics

    try:
        rows = summarize_metrics(metrics)
    except ValueError as err:
        msg.fail("Could not read the metrics", str(err), exits=1)
    table = [(run, f"{label} ({key})", f"{value:.3f}") for run, key, label, value in rows]
    header = ("run", "metric", "value")
    msg.divider("Metrics")
    msg.table(table, header=header, divider=True, aligns=("l", "l", "r"))
    if output is not None:
        lines = ["| run | metric | value |", "|---|---|---:|"] + [f"| {a} | {b} | {c} |" for a, b, c in table]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n", encoding="utf8")
        msg.good(f"Wrote {output}")


analyze_app = typer.Typer(
    help="What fine-tuning did to the weights: drift per layer, loss interpolation, landscapes, trajectories.",
    no_args_is_help=True,
)
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

    from .analysis import analyze_pipeline

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
    from .analysis import compare_runs

    pairs = {}
    for run in runs:
        label, sep, folder = run.partition("=")
        if not sep or not label or not folder:
            msg.fail(f"Cannot read '{run}'", "Give each run as LABEL=FOLDER.", exits=1)
        pairs[label] = Path(folder)
    try:
        summary = compare_runs(pairs, output)
    except FileNotFoundError as err:
        msg.fail("Could not compare the runs", str(err), exits=1)
    for label, run in summary["runs"].items():
        msg.info(f"{label}: best dev score {run['best_dev_score']}, drift {run['drift_total']}, most drifted {run['most_drifted_layers']}")
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
    from .analysis import instrument_config

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
    from .analysis import random_encoder

    try:
        path = random_encoder(source, output, seed=seed)
    except FileNotFoundError as err:
        msg.fail("Could not copy the encoder", str(err), exits=1)
    msg.good(f"Wrote a randomly initialised copy of {source} to {path}")
