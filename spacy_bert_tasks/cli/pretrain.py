"""The ``pretrain`` command: MLM pretraining of an encoder on raw domain text."""
import dataclasses
import logging
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .app import app


@app.command("pretrain")
def pretrain_cli(
    texts: List[Path] = typer.Argument(..., help="Plain-text files: one document per line, or one paragraph per line with a blank line between documents.", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the pretrained encoder (Hugging Face format, safetensors, tokenizer) and pretrain_metrics.json; use it as paths.encoder."),
    encoder: Optional[Path] = typer.Option(None, "--encoder", "-e", help="Local encoder folder to adapt to the texts (domain-adaptive pretraining).", exists=True, file_okay=False),
    size: Optional[str] = typer.Option(None, "--size", "-s", help="Pretrain from scratch instead: a fresh tiny, mini, small or base BERT, vocabulary trained on TEXTS."),
    objective: str = typer.Option("mlm", "--objective", help="mlm (single pieces), wwm (whole words, from the tokenizer's word ids) or span (SpanBERT spans of whole words)."),
    nsp: bool = typer.Option(False, "--nsp", help="Add next-sentence prediction (50% real, 50% random pairs of sentence runs; BERT encoders)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps to train for; without it, --epochs passes over the text."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the training text, when --max-steps is not given."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of an interrupted run (same --output or --checkpoint-dir)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete the checkpoints of an earlier run and start again."),
    max_seq_length: int = typer.Option(128, "--max-seq-length", help="Word pieces per sequence, [CLS] and [SEP] included."),
    line_by_line: bool = typer.Option(False, "--line-by-line", help="One sequence per line (long lines cut) instead of packing documents end to end."),
    layout: str = typer.Option("auto", "--layout", help="auto, lines (one document per line) or paragraphs (a blank line between documents)."),
    eval_fraction: float = typer.Option(0.05, "--eval-fraction", help="Fraction of the documents held out for the loss and perplexity."),
    eval_texts: Optional[List[Path]] = typer.Option(None, "--eval-file", help="Held-out text file (repeat for several); replaces --eval-fraction.", exists=True, dir_okay=False),
    mlm_probability: float = typer.Option(0.15, "--mlm-probability", help="Fraction of the pieces to predict."),
    mask_replace_prob: float = typer.Option(0.8, "--mask-replace-prob", help="Fraction of the predicted pieces replaced by [MASK]."),
    random_replace_prob: float = typer.Option(0.1, "--random-replace-prob", help="Fraction replaced by a random piece (the rest stay unchanged)."),
    max_predictions_per_seq: Optional[int] = typer.Option(None, "--max-predictions", help="At most this many predicted pieces per sequence (BERT's max_predictions_per_seq)."),
    span_p: float = typer.Option(0.2, "--span-p", help="Span masking: p of the geometric span-length distribution (in words)."),
    max_span_length: int = typer.Option(10, "--max-span-length", help="Span masking: longest span, in words."),
    extend_vocab: int = typer.Option(0, "--extend-vocab", help="Add up to this many frequent domain words that the tokenizer splits into many pieces, resizing the embeddings (WordPiece only; 0: off)."),
    extend_vocab_min_count: int = typer.Option(20, "--extend-vocab-min-count", help="Least count for a word to be added."),
    extend_vocab_min_pieces: int = typer.Option(3, "--extend-vocab-min-pieces", help="Least number of pieces the tokenizer splits a word into for it to be added."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="With --size: size of the WordPiece vocabulary."),
    lowercase: bool = typer.Option(False, "--lowercase/--cased", help="With --size: lower-case (and strip accents) before tokenising."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Sequences per device per step."),
    eval_batch_size: Optional[int] = typer.Option(None, "--eval-batch-size", help="Sequences per device per evaluation step (default: --batch-size)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", "--lr", help="Peak learning rate (AdamW)."),
    weight_decay: float = typer.Option(0.01, "--weight-decay", help="AdamW weight decay."),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio", help="Fraction of the steps for the learning-rate warm-up."),
    scheduler: str = typer.Option("linear", "--scheduler", help="Learning-rate schedule (Trainer's lr_scheduler_type: linear, cosine, constant_with_warmup, ...)."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 or fp16 where the GPU has it, else fp32), fp32, bf16 or fp16."),
    logging_steps: int = typer.Option(50, "--logging-steps", help="Log the training loss every this many steps."),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Log held-out loss and perplexity every this many steps (default: --save-steps)."),
    save_steps: int = typer.Option(500, "--save-steps", help="Write a checkpoint every this many steps."),
    save_total_limit: Optional[int] = typer.Option(2, "--save-total-limit", help="Keep at most this many checkpoints."),
    seed: int = typer.Option(0, "--seed", help="Seed for the held-out split, the masks and the weights."),
    num_workers: int = typer.Option(0, "--num-workers", help="Data-loader worker processes."),
    with_head: bool = typer.Option(False, "--with-head/--without-head", help="Write the MLM model (head included) rather than the bare encoder."),
    checkpoint_dir: Optional[Path] = typer.Option(None, "--checkpoint-dir", help="Trainer's checkpoints (default: OUTPUT/checkpoints)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Tokenised texts, reused by later runs (default: CHECKPOINT_DIR/cache)."),
    report_to: str = typer.Option("none", "--report-to", help="Trainer's report_to: none, tensorboard, wandb, ..."),
    show_progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Masked-language-model pretraining of an encoder on raw domain text.

    Adapts the encoder in --encoder to TEXTS, or pretrains a fresh one (--size).
    Texts are tokenised once (cached), packed into --max-seq-length sequences, masked
    afresh each time they are seen, and trained with Hugging Face Trainer (checkpoints,
    --resume, gradient accumulation, bf16/fp16, torchrun or accelerate for several
    processes). Logs loss and held-out perplexity. Writes OUTPUT: a plain Hugging Face
    folder (AutoModel/AutoTokenizer, safetensors) for `paths.encoder`, plus
    pretrain_metrics.json with the perplexity before and after.
    """
    from ..pretraining.run import pretrain
    from ..pretraining.settings import PretrainSettings

    options = dict(locals())  # the options, named as the settings' fields
    settings = PretrainSettings(**{field.name: options[field.name] for field in dataclasses.fields(PretrainSettings)})
    logger = logging.getLogger("spacy_bert_tasks")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        metrics = pretrain(texts, output, settings)
    except (ValueError, FileNotFoundError) as err:
        msg.fail("Could not pretrain", str(err), exits=1)
    if metrics.get("perplexity_before") is not None:
        msg.info(
            f"Held-out perplexity {metrics['perplexity_before']:.2f} -> {metrics['perplexity_after']:.2f} "
            f"after {metrics['steps']} steps; masked-token accuracy {metrics['masked_accuracy_before']:.1%} -> "
            f"{metrics['masked_accuracy_after']:.1%}"
        )
    msg.good(f"Wrote the pretrained encoder to {output}")
