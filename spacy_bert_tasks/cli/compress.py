"""Commands that make a pipeline smaller or faster: ``distill`` and ``quantize``."""
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .app import app


@app.command("distill")
def distill_cli(
    teacher: Path = typer.Argument(..., help="A trained pipeline with bert_textcat, bert_ner and/or bert_qa heads.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder for the student pipeline (spacy.load reads it, spacy package packages it)."),
    corpus: Optional[List[Path]] = typer.Option(None, "--corpus", "-c", help="A .spacy training corpus (repeat for several; default: the teacher's paths.train).", exists=True),
    text: Optional[List[Path]] = typer.Option(None, "--text", "-t", help="Plain text, one unlabelled doc a line (repeat for several): NER and textcat learn from the teacher alone there.", exists=True, dir_okay=False),
    layers: Optional[int] = typer.Option(None, "--layers", "-l", help="Layers of the teacher's encoder the student keeps, evenly spaced from the bottom (default: every other one)."),
    student: Optional[Path] = typer.Option(None, "--student", help="A Hugging Face encoder folder to use as the student's encoder instead (e.g. a narrower init-encoder).", exists=True, file_okay=False),
    steps: int = typer.Option(1000, "--steps", help="Batches to train on."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Docs per batch."),
    learn_rate: float = typer.Option(1e-4, "--learn-rate", "--lr", help="Peak learning rate (Adam, warm-up then linear decay)."),
    temperature: float = typer.Option(2.0, "--temperature", "-T", help="Temperature of the soft targets."),
    gold_weight: float = typer.Option(0.5, "--gold-weight", help="Weight of the heads' gold losses where gold exists (0: soft targets only)."),
    hidden_weight: float = typer.Option(0.0, "--hidden-weight", help="Weight of the mean squared error between last hidden states (same tokenizer and width; 0: off)."),
    dropout: float = typer.Option(0.1, "--dropout", help="Dropout in the student while it learns."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints (0: only at the end)."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", help="Checkpoint folder (default: OUTPUT.checkpoint beside OUTPUT)."),
    resume: bool = typer.Option(False, "--resume", help="Go on from the last checkpoint."),
    limit: int = typer.Option(0, "--limit", help="Read at most this many docs from each file (0: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the data order and dropout."),
    save_dtype: str = typer.Option("float32", "--save-dtype", help="What the student's encoder weights are written as: float32, or float16/bfloat16 for half the size on disk (read back as float32)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Distil a trained pipeline into a smaller student with the same components and labels.

    The student's encoder is the teacher's with fewer layers (DistilBERT's start:
    every other layer) or another folder's. Each head learns the teacher's soft
    outputs at --temperature (textcat class probabilities, NER tag distributions at
    the first pieces, QA start/end distributions over each window), plus its gold
    loss where the data have gold. Reads the teacher's training corpora (.spacy)
    and plain text. Writes OUTPUT, and checkpoints to resume from.
    """
    from ..distillation import DistillSettings, StepSettings, distill

    settings = DistillSettings(
        steps=steps, batch_size=batch_size, learn_rate=learn_rate, checkpoint_every=checkpoint_every, seed=seed,
        limit=limit, save_dtype=save_dtype, step=StepSettings(temperature=temperature, gold_weight=gold_weight, hidden_weight=hidden_weight, dropout=dropout),
    )
    try:
        distill(teacher, output, corpora=corpus or [], texts=text or [], n_layers=layers, student_encoder=student,
                settings=settings, checkpoints=checkpoints, resume=resume, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not distil", str(err), exits=1)
    msg.good(f"Wrote the student pipeline to {output}")


@app.command("quantize")
def quantize_cli(
    model: Path = typer.Argument(..., help="A trained pipeline with a spacy_bert_tasks `transformer` component.", exists=True, file_okay=False),
    output: Path = typer.Argument(..., help="Folder for the quantized pipeline."),
    embeddings: bool = typer.Option(False, "--embeddings/--no-embeddings", help="Also store the embedding tables as int8 (smaller on disk)."),
) -> None:
    """Quantize a pipeline's encoder to int8 for fast CPU inference.

    Exports each `transformer` component's network to ONNX and quantizes its
    linear layers (int8 weights per output channel, activations per batch) with
    ONNX Runtime. Writes OUTPUT, the same pipeline with the int8 encoder inside,
    which spacy.load restores in any process. The heads stay as they are.
    """
    from ..quantization import quantize

    try:
        with msg.loading(f"Exporting and quantizing the encoder of {model}..."):
            done = quantize(model, output, quantize_embeddings=embeddings)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not quantize", str(err), exits=1)
    msg.good(f"Wrote the int8 pipeline to {output} (encoders: {', '.join(done)})")
