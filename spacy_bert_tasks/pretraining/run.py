"""The MLM run: ``pretrain()`` adapts an encoder to domain text, or pretrains one from scratch.

It puts the room's pieces together, one stage each: Trainer's arguments, a starting
encoder (a local folder, or a fresh one from ``init_encoder``), optionally a
vocabulary extended with domain words, the tokenised and cached text cut into
sequences, a masking collator, the masked-positions MLM model, and Hugging Face
``Trainer`` for the loop (``trainer.py``: checkpoints, resume, accumulation, mixed
precision, ``torchrun``/``accelerate``). The held-out text is masked once with a
fixed seed, so the perplexity before and after training is measured on the same masks.
"""
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import IntervalStrategy

from .collators import MaskingCollator, SpanMaskingCollator, WholeWordMaskingCollator, mask_once
from .nsp import NextSentenceCollator
from .init_encoder import ENCODER_SIZES
from .model import save_encoder
from .settings import PathLike, PretrainSettings
from .start import RunStart, prepare_start
from .sequences import SentenceChunkDataset, pack_documents, split_lines
from .text import LAYOUTS, split_documents
from .trainer import (  # noqa: F401  (COMPLETE_FILE: the marker tests look for)
    COMPLETE_FILE,
    START_FILE,
    CheckpointMarker,
    PretrainingTrainer,
    SeededCollator,
    checkpoint_step,
    is_complete_checkpoint,
    list_checkpoints,
    masked_accuracy,
    predicted_tokens,
    remove_run,
)

logger = logging.getLogger(__name__)

OBJECTIVES = {"mlm": MaskingCollator, "wwm": WholeWordMaskingCollator, "span": SpanMaskingCollator}
METRICS_FILE = "pretrain_metrics.json"


def pretrain(
    texts: Sequence[PathLike],
    output_dir: PathLike,
    settings: Optional[PretrainSettings] = None,
    *,
    callbacks: Optional[List[TrainerCallback]] = None,
    **overrides: Any,
) -> Dict[str, Any]:
    """Continue MLM pretraining of an encoder on raw text, or pretrain one from scratch.

    texts (Sequence[Path]): text files, one document per line or paragraphs with a
        blank line between documents.
    output_dir (Path): where the final encoder (plain Hugging Face folder, safetensors,
        tokenizer) and ``pretrain_metrics.json`` go.
    settings (Optional[PretrainSettings]): the run's settings (default: the defaults).
    callbacks (Optional[List[TrainerCallback]]): more Trainer callbacks.
    overrides: fields of ``PretrainSettings`` to change, e.g. ``encoder=..., max_steps=10``.
    RETURNS (Dict[str, Any]): the metrics also written to ``pretrain_metrics.json``.
    """
    s = dataclasses.replace(settings or PretrainSettings(), **overrides)
    s.check(ENCODER_SIZES, LAYOUTS)
    texts, eval_texts = _check_texts(texts, s.eval_texts)
    output_dir = Path(output_dir)
    checkpoint_dir = Path(s.checkpoint_dir) if s.checkpoint_dir is not None else output_dir / "checkpoints"
    cache_dir = Path(s.cache_dir) if s.cache_dir is not None else checkpoint_dir / "cache"
    args = _training_arguments(s, checkpoint_dir)
    is_main = args.process_index == 0
    last_checkpoint = _check_checkpoints(checkpoint_dir, resume=s.resume, overwrite=s.overwrite, is_main=is_main)
    with args.main_process_first(desc="preparing the encoder and the text"):
        start = prepare_start(s, texts, eval_texts, checkpoint_dir, cache_dir, is_main=is_main)
    masker = _masker(s, start.tokenizer)
    train_dataset, collator, eval_dataset = _make_datasets(
        start.text, start.train_docs, start.held_out, start.eval_docs, start.tokenizer, masker,
        nsp=s.nsp, line_by_line=s.line_by_line, max_seq_length=s.max_seq_length, seed=s.seed,
        eval_fraction=0.0 if eval_texts or s.nsp else s.eval_fraction,
    )
    _log_datasets(s, texts, train_dataset, eval_dataset, args, is_main=is_main)
    done = checkpoint_step(last_checkpoint) * args.gradient_accumulation_steps if last_checkpoint else 0
    trainer = PretrainingTrainer(
        model=start.model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=SeededCollator(collator, seed=s.seed, process_index=args.process_index, start=done),
        processing_class=start.tokenizer,
        callbacks=[CheckpointMarker(), *(callbacks or [])],
        compute_metrics=masked_accuracy,
        preprocess_logits_for_metrics=predicted_tokens,
    )
    before = _start_metrics(trainer, checkpoint_dir, resuming=last_checkpoint is not None, is_main=is_main)
    result = trainer.train(resume_from_checkpoint=str(last_checkpoint) if last_checkpoint else None)
    after = trainer.evaluate() if eval_dataset is not None else {}
    metrics = _metrics(s, start, trainer, result, before, after, last_checkpoint, output_dir)
    if trainer.is_world_process_zero():
        save_encoder(trainer.model, start.tokenizer, output_dir, with_head=s.with_head)
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf8")
        logger.info("Wrote the encoder and %s to %s", METRICS_FILE, output_dir)
    return metrics


def _check_texts(texts: Sequence[PathLike], eval_texts: Optional[Sequence[PathLike]]) -> tuple:
    """The training and held-out files as paths, each checked to exist."""
    if not texts:
        raise ValueError("No text files given. Pass at least one plain-text file.")
    texts = [Path(path) for path in texts]
    eval_texts = [Path(path) for path in eval_texts] if eval_texts else []
    for path in [*texts, *eval_texts]:
        if not path.is_file():
            raise FileNotFoundError(f"Text file not found: {path}. Pass an existing plain-text file.")
    return texts, eval_texts


def _training_arguments(s: PretrainSettings, checkpoint_dir: Path) -> TrainingArguments:
    """Trainer's arguments for these settings; refuses a launcher that set up no distributed run."""
    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=s.max_steps if s.max_steps else -1,
        num_train_epochs=s.epochs,
        per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.eval_batch_size or s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.learning_rate,
        weight_decay=s.weight_decay,
        warmup_ratio=s.warmup_ratio,
        lr_scheduler_type=s.scheduler,
        logging_steps=s.logging_steps,
        eval_strategy="steps",
        eval_steps=s.eval_steps or s.save_steps,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=s.save_total_limit,
        seed=s.seed,
        data_seed=s.seed,
        dataloader_num_workers=s.num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to=[] if s.report_to == "none" else [s.report_to],
        disable_tqdm=not s.show_progress,
        remove_unused_columns=False,  # keep word_start for the collators
        prediction_loss_only=False,  # predictions for masked_accuracy (argmax ids only: predicted_tokens)
        label_names=["labels"],
        ddp_find_unused_parameters=False,
        save_safetensors=True,
        # Without a GPU, processes from torchrun/accelerate train on CPU with gloo.
        use_cpu=_launched_processes() > 1 and not torch.cuda.is_available(),
        **_precision_flags(s.precision),
    )
    if _launched_processes() > 1 and args.world_size == 1:
        # Each process would otherwise train alone and write the same output.
        raise ValueError(
            f"Launched as {_launched_processes()} processes, but Trainer set up no distributed training. "
            "Check the launcher's settings (torchrun --nproc_per_node, accelerate config)."
        )
    return args


def _masker(s: PretrainSettings, tokenizer: Any) -> MaskingCollator:
    """The collator of the chosen objective."""
    return OBJECTIVES[s.objective](
        tokenizer,
        mlm_probability=s.mlm_probability,
        mask_replace_prob=s.mask_replace_prob,
        random_replace_prob=s.random_replace_prob,
        max_predictions_per_seq=s.max_predictions_per_seq,
        pad_to_multiple_of=8 if torch.cuda.is_available() else None,
        **({"span_p": s.span_p, "max_span_length": s.max_span_length} if s.objective == "span" else {}),
    )


def _log_datasets(s: PretrainSettings, texts: List[Path], train_dataset: Any, eval_dataset: Any,
                  args: TrainingArguments, *, is_main: bool) -> None:
    """Refuse a run with no training text; say what is held out (and turn evaluation off without any)."""
    if len(train_dataset) == 0:
        raise ValueError(f"No training sequences in {', '.join(map(str, texts))}: the texts are all held out or empty.")
    if eval_dataset is None:
        args.eval_strategy = IntervalStrategy.NO
        if is_main:
            logger.warning(
                "No held-out text (eval fraction %s, %d training %s), so no perplexity is measured. "
                "Pass --eval-file, or more text or a larger --eval-fraction.",
                s.eval_fraction, len(train_dataset), "chunks" if s.nsp else "sequences",
            )
    if is_main:
        logger.info(
            "%d training %s, %d held-out sequences; objective %s%s",
            len(train_dataset), "sentence chunks" if s.nsp else "sequences",
            len(eval_dataset or []), s.objective, " + NSP" if s.nsp else "",
        )


def _metrics(s: PretrainSettings, start: RunStart, trainer: Trainer, result: Any, before: Dict[str, float],
             after: Dict[str, float], last_checkpoint: Optional[Path], output_dir: Path) -> Dict[str, Any]:
    """What ``pretrain_metrics.json`` records of the run."""
    metrics: Dict[str, Any] = {
        "encoder": str(start.encoder),
        "from_scratch": s.size is not None,
        "size": s.size,
        "objective": s.objective,
        "nsp": s.nsp,
        "max_seq_length": s.max_seq_length,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "resumed_from": last_checkpoint.name if last_checkpoint else None,
        "train_loss": result.training_loss,
        "train_sequences": len(trainer.train_dataset),
        "eval_sequences": len(trainer.eval_dataset or []),
        "eval_loss_before": before.get("eval_loss"),
        "eval_loss_after": after.get("eval_loss"),
        "perplexity_before": before.get("eval_perplexity"),
        "perplexity_after": after.get("eval_perplexity"),
        "masked_accuracy_before": before.get("eval_masked_accuracy"),
        "masked_accuracy_after": after.get("eval_masked_accuracy"),
        "train_runtime_s": result.metrics.get("train_runtime"),
        "processes": trainer.args.world_size,
        "loading": start.loading.to_dict(),
        "vocab_added": start.added_words,
        "output": str(output_dir),
        "with_head": s.with_head,
    }
    if metrics["perplexity_before"] and metrics["perplexity_after"] is not None:
        metrics["perplexity_change"] = metrics["perplexity_after"] / metrics["perplexity_before"] - 1.0
    return metrics


def _make_datasets(text, train_docs, held_out, eval_docs, tokenizer, masker, *, nsp, line_by_line, max_seq_length,
                   seed, eval_fraction=0.0):
    """Training examples and their collator, and the held-out sequences masked once (or None).

    With ``eval_fraction``, a seeded fraction of the training sequences is held out
    (at least one of two or more), rather than of the documents or lines.
    """
    ids = {"cls_id": tokenizer.cls_token_id, "sep_id": tokenizer.sep_token_id}
    make_sequences = split_lines if line_by_line else pack_documents
    eval_sequences = None
    if nsp:
        train_dataset = SentenceChunkDataset(text, train_docs, max_seq_length=max_seq_length)
        collator = NextSentenceCollator(masker, train_dataset)
    else:
        train_dataset = make_sequences(text, train_docs, max_seq_length=max_seq_length, **ids)
        collator = masker
        if eval_fraction:
            keep, held = split_documents(len(train_dataset), eval_fraction, seed)
            train_dataset, eval_sequences = train_dataset.subset(keep), train_dataset.subset(held)
    if len(eval_docs):
        # Held-out text is always plain sequences, so its loss is the MLM loss alone.
        eval_sequences = make_sequences(held_out, eval_docs, max_seq_length=max_seq_length, **ids)
    eval_dataset = mask_once(eval_sequences, masker, seed=seed) if eval_sequences is not None and len(eval_sequences) else None
    return train_dataset, collator, eval_dataset


def _launched_processes() -> int:
    """How many processes torchrun or accelerate started (WORLD_SIZE), 1 without a launcher."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _precision_flags(precision: str) -> Dict[str, bool]:
    if precision == "auto":
        if torch.cuda.is_available():
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def _check_checkpoints(checkpoint_dir: Path, *, resume: bool, overwrite: bool, is_main: bool) -> Optional[Path]:
    """The last complete checkpoint to resume from, after refusing to mix a new run with an old one.

    Checkpoints that a killed run left half-written are passed over (and removed on
    resume, so Trainer writes them anew), and the log says which one is resumed.
    """
    if overwrite:
        if is_main and checkpoint_dir.is_dir():
            remove_run(checkpoint_dir)
        return None
    checkpoints = list_checkpoints(checkpoint_dir)
    if checkpoints and not resume:
        raise ValueError(
            f"{checkpoint_dir} holds checkpoints of an earlier run (last: {checkpoints[-1].name}). "
            "Pass --resume to continue it, or --overwrite to start again."
        )
    complete = [path for path in checkpoints if is_complete_checkpoint(path)]
    last = complete[-1] if complete else None
    broken = [path for path in checkpoints if path not in complete and (last is None or checkpoint_step(path) > checkpoint_step(last))]
    if resume and broken and is_main:
        logger.warning(
            "Passing over %s: written only in part (the run was stopped while saving); removing %s",
            ", ".join(path.name for path in broken), "it" if len(broken) == 1 else "them",
        )
        for path in broken:
            shutil.rmtree(path)
    if resume and is_main:
        if last is not None:
            logger.info("Resuming from %s (step %d)", last, checkpoint_step(last))
        else:
            logger.info("No complete checkpoint in %s to resume from; starting from the beginning", checkpoint_dir)
    return last


def _start_metrics(trainer: Trainer, checkpoint_dir: Path, *, resuming: bool, is_main: bool) -> Dict[str, float]:
    """Held-out loss of the starting model, measured once and kept for resumed runs."""
    path = checkpoint_dir / START_FILE
    if resuming and path.exists():
        return json.loads(path.read_text(encoding="utf8"))
    if trainer.eval_dataset is None:
        return {}
    start = trainer.evaluate()
    if is_main:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(start, indent=2) + "\n", encoding="utf8")
    return start
