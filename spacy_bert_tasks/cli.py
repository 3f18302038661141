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
