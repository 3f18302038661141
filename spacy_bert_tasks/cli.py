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
