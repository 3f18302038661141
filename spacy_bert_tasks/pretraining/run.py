"""The MLM run: ``pretrain()`` adapts an encoder to domain text, or pretrains one from scratch.

It puts the room's pieces together: a starting encoder (a local folder, or a fresh
one from ``init_encoder``), optionally a vocabulary extended with domain words, the
tokenised and cached text cut into sequences, a masking collator, the
masked-positions MLM model, and Hugging Face ``Trainer`` for the loop (checkpoints,
resume, accumulation, mixed precision, ``torchrun``/``accelerate``). The held-out
text is masked once with a fixed seed, so the perplexity before and after training
is measured on the same masks.
"""
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy

from ..encoder_folder import check_encoder_folder
from ..ml.encoder import max_positions
from .collators import (
    MaskingCollator,
    NextSentenceCollator,
    SpanMaskingCollator,
    WholeWordMaskingCollator,
    mask_once,
)
from .init_encoder import ENCODER_SIZES, extend_wordpiece_vocabulary, find_domain_words, init_encoder
from .model import extend_embeddings, load_pretraining_model, save_encoder
from .text import (
    LAYOUTS,
    SentenceChunkDataset,
    TokenizedText,
    load_tokenized,
    pack_documents,
    read_documents,
    split_documents,
    split_lines,
)

logger = logging.getLogger(__name__)

OBJECTIVES = {"mlm": MaskingCollator, "wwm": WholeWordMaskingCollator, "span": SpanMaskingCollator}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
METRICS_FILE = "pretrain_metrics.json"
START_FILE = "pretrain_start.json"
COMPLETE_FILE = "checkpoint_complete.json"
INIT_DIR = "init-encoder"

PathLike = Union[str, Path]


class PretrainingTrainer(Trainer):
    """Trainer that logs perplexity, and resumes to the same weights as an unbroken run.

    In stock Trainer a resumed run draws other random numbers than an unbroken one:
    the shuffling sampler takes its seed from the global torch generator, and the
    collator masks with it too, one batch ahead of the step (the data loader
    prefetches), so the RNG state a checkpoint restores is not the one the next
    batch was masked with. Here the order is a function of the seed and the epoch
    (``EpochSampler``), and each batch is masked with a generator seeded by the seed
    and the batch's number (``SeededCollator``); the global generator is left to
    dropout, whose state Trainer saves and restores. Exact with
    ``dataloader_num_workers=0`` (the default); worker processes count their own batches.
    """

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "eval_loss" in logs:
            logs["eval_perplexity"] = perplexity(logs["eval_loss"])
        super().log(logs, start_time)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochSampler(len(dataset), seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)


class EpochSampler(torch.utils.data.Sampler):
    """A shuffled order that depends on the seed and the epoch only, not on the global RNG."""

    def __init__(self, n: int, *, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())


class SeededCollator:
    """``collator`` run with the torch generator seeded by (seed, process, batch number).

    The masks of a batch then depend on which training batch of the run it is, not on
    what drew random numbers before; a resumed run starts counting at the batches done.
    The global generator is put back as it was after each batch.
    """

    def __init__(self, collator: Callable, *, seed: int, process_index: int = 0, start: int = 0) -> None:
        self.collator = collator
        self.seed = seed
        self.process_index = process_index
        self.n_batches = start

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        if examples and "labels" in examples[0]:
            return self.collator(examples)  # the held-out set, masked once already: not counted
        key = np.random.SeedSequence([self.seed, self.process_index, self.n_batches]).generate_state(1)[0]
        self.n_batches += 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(key))
            return self.collator(examples)


class CheckpointMarker(TrainerCallback):
    """Write ``COMPLETE_FILE`` into a checkpoint once Trainer has written all of it.

    A run killed while saving leaves a checkpoint folder without it, which
    ``--resume`` then passes over for the last complete one.
    """

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                (folder / COMPLETE_FILE).write_text(json.dumps({"global_step": state.global_step}) + "\n")
        return control


def pretrain(
    texts: Sequence[PathLike],
    output_dir: PathLike,
    *,
    encoder: Optional[PathLike] = None,
    size: Optional[str] = None,
    objective: str = "mlm",
    nsp: bool = False,
    max_steps: Optional[int] = None,
    epochs: float = 1.0,
    resume: bool = False,
    overwrite: bool = False,
    max_seq_length: int = 128,
    line_by_line: bool = False,
    layout: str = "auto",
    eval_fraction: float = 0.05,
    eval_texts: Optional[Sequence[PathLike]] = None,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    max_predictions_per_seq: Optional[int] = None,
    span_p: float = 0.2,
    max_span_length: int = 10,
    extend_vocab: int = 0,
    extend_vocab_min_count: int = 20,
    extend_vocab_min_pieces: int = 3,
    vocab_size: int = 8000,
    lowercase: bool = False,
    batch_size: int = 32,
    eval_batch_size: Optional[int] = None,
    grad_accum: int = 1,
    learning_rate: float = 1e-4,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.06,
    scheduler: str = "linear",
    precision: str = "auto",
    logging_steps: int = 50,
    eval_steps: Optional[int] = None,
    save_steps: int = 500,
    save_total_limit: Optional[int] = 2,
    seed: int = 0,
    num_workers: int = 0,
    with_head: bool = False,
    checkpoint_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    report_to: str = "none",
    show_progress: bool = True,
    callbacks: Optional[List[TrainerCallback]] = None,
) -> Dict[str, Any]:
    """Continue MLM pretraining of an encoder on raw text, or pretrain one from scratch.

    texts (Sequence[Path]): text files, one document per line or paragraphs with a
        blank line between documents.
    output_dir (Path): where the final encoder (plain Hugging Face folder, safetensors,
        tokenizer) and ``pretrain_metrics.json`` go.
    encoder (Optional[Path]): a local encoder folder to adapt. Give this or ``size``.
    size (Optional[str]): tiny, mini, small or base: a fresh BERT whose WordPiece
        vocabulary (``vocab_size``, ``lowercase``) is trained on ``texts``.
    objective (str): "mlm" (pieces), "wwm" (whole words) or "span" (SpanBERT spans).
    nsp (bool): add next-sentence prediction (BERT encoders).
    max_steps (Optional[int]): optimiser steps; None trains for ``epochs``.
    resume (bool): continue from the last checkpoint in ``checkpoint_dir``.
    overwrite (bool): delete earlier checkpoints and start again.
    max_seq_length (int): pieces per sequence, [CLS] and [SEP] included.
    line_by_line (bool): one sequence per line instead of packing documents.
    eval_fraction (float): fraction of documents held out, if ``eval_texts`` is not given.
    eval_texts (Optional[Sequence[Path]]): held-out text files.
    extend_vocab (int): add up to this many frequent domain words that the tokenizer
        splits into ``extend_vocab_min_pieces`` or more pieces (WordPiece only).
    with_head (bool): write the MLM model rather than the bare encoder.
    checkpoint_dir (Optional[Path]): Trainer's folder; default ``output_dir/checkpoints``.
    cache_dir (Optional[Path]): tokenised texts; default ``checkpoint_dir/cache``.
    callbacks (Optional[List[TrainerCallback]]): more Trainer callbacks.
    The other settings are Trainer's (``precision``: auto picks bf16 or fp16 on a GPU
    that has it, fp32 on CPU).
    RETURNS (Dict[str, Any]): the metrics also written to ``pretrain_metrics.json``.
    """
    if (encoder is None) == (size is None):
        raise ValueError("Give either an encoder folder to adapt (--encoder) or a size to start from scratch (--size).")
    if size is not None and size not in ENCODER_SIZES:
        raise ValueError(f"Unknown encoder size '{size}'. Choose one of: {', '.join(ENCODER_SIZES)}.")
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective '{objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision '{precision}'. Choose one of: {', '.join(PRECISIONS)}.")
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown text layout '{layout}'. Choose one of: {', '.join(LAYOUTS)}.")
    if not texts:
        raise ValueError("No text files given. Pass at least one plain-text file.")
    texts = [Path(path) for path in texts]
    eval_texts = [Path(path) for path in eval_texts] if eval_texts else []
    for path in [*texts, *eval_texts]:
        if not path.is_file():
            raise FileNotFoundError(f"Text file not found: {path}. Pass an existing plain-text file.")
    output_dir = Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else output_dir / "checkpoints"
    cache_dir = Path(cache_dir) if cache_dir is not None else checkpoint_dir / "cache"

    args = TrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=max_steps if max_steps else -1,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size or batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        lr_scheduler_type=scheduler,
        logging_steps=logging_steps,
        eval_strategy="steps",
        eval_steps=eval_steps or save_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=num_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to=[] if report_to == "none" else [report_to],
        disable_tqdm=not show_progress,
        remove_unused_columns=False,  # keep word_start for the collators
        prediction_loss_only=False,  # predictions for masked_accuracy (argmax ids only: predicted_tokens)
        label_names=["labels"],
        ddp_find_unused_parameters=False,
        save_safetensors=True,
        # Without a GPU, processes from torchrun/accelerate train on CPU with gloo.
        use_cpu=_launched_processes() > 1 and not torch.cuda.is_available(),
        **_precision_flags(precision),
    )
    if _launched_processes() > 1 and args.world_size == 1:
        # Each process would otherwise train alone and write the same output.
        raise ValueError(
            f"Launched as {_launched_processes()} processes, but Trainer set up no distributed training. "
            "Check the launcher's settings (torchrun --nproc_per_node, accelerate config)."
        )
    is_main = args.process_index == 0
    last_checkpoint = _check_checkpoints(checkpoint_dir, resume=resume, overwrite=overwrite, is_main=is_main)

    with args.main_process_first(desc="preparing the encoder and the text"):
        n_docs = [len(read_documents(path, layout)) for path in texts]  # clear errors for bad files, early
        if size is not None:
            encoder = _fresh_encoder(
                texts, checkpoint_dir / INIT_DIR, size=size, vocab_size=vocab_size, lowercase=lowercase,
                max_positions=max(512, max_seq_length), seed=seed, log=is_main,
            )
        encoder = check_encoder_folder(encoder)
        tokenizer = AutoTokenizer.from_pretrained(encoder, local_files_only=True)
        model, loading = load_pretraining_model(encoder, nsp=nsp, seed=seed)
        if is_main:
            loading.log()
        _check_length(max_seq_length, model.config, encoder)
        # Held-out text: whole documents for NSP (its chunks need them), else sequences
        # (see _make_datasets), so that one long line still gives held-out text.
        train_docs, eval_docs = (
            split_documents(sum(n_docs), eval_fraction, seed) if nsp and not eval_texts
            else (np.arange(sum(n_docs)), np.zeros(0, np.int64))
        )
        added_words: List[str] = []
        if extend_vocab:
            tokenizer, added_words = _extend_vocabulary(
                model, tokenizer, texts, train_docs, layout=layout, max_words=extend_vocab,
                min_count=extend_vocab_min_count, min_pieces=extend_vocab_min_pieces, log=is_main,
            )
        text = TokenizedText.concat([load_tokenized(p, tokenizer, layout=layout, cache_dir=cache_dir) for p in texts])
        if eval_texts:
            held_out = TokenizedText.concat(
                [load_tokenized(p, tokenizer, layout=layout, cache_dir=cache_dir) for p in eval_texts]
            )
            eval_docs = np.arange(held_out.n_docs)
        else:
            held_out = text

    masker = OBJECTIVES[objective](
        tokenizer,
        mlm_probability=mlm_probability,
        mask_replace_prob=mask_replace_prob,
        random_replace_prob=random_replace_prob,
        max_predictions_per_seq=max_predictions_per_seq,
        pad_to_multiple_of=8 if torch.cuda.is_available() else None,
        **({"span_p": span_p, "max_span_length": max_span_length} if objective == "span" else {}),
    )
    train_dataset, collator, eval_dataset = _make_datasets(
        text, train_docs, held_out, eval_docs, tokenizer, masker,
        nsp=nsp, line_by_line=line_by_line, max_seq_length=max_seq_length, seed=seed,
        eval_fraction=0.0 if eval_texts or nsp else eval_fraction,
    )
    if len(train_dataset) == 0:
        raise ValueError(f"No training sequences in {', '.join(map(str, texts))}: the texts are all held out or empty.")
    if eval_dataset is None:
        args.eval_strategy = IntervalStrategy.NO
        if is_main:
            logger.warning(
                "No held-out text (eval fraction %s, %d training %s), so no perplexity is measured. "
                "Pass --eval-file, or more text or a larger --eval-fraction.",
                eval_fraction, len(train_dataset), "chunks" if nsp else "sequences",
            )
    if is_main:
        logger.info(
            "%d training %s, %d held-out sequences; objective %s%s",
            len(train_dataset), "sentence chunks" if nsp else "sequences",
            len(eval_dataset or []), objective, " + NSP" if nsp else "",
        )

    done = _step(last_checkpoint) * args.gradient_accumulation_steps if last_checkpoint else 0
    trainer = PretrainingTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=SeededCollator(collator, seed=seed, process_index=args.process_index, start=done),
        processing_class=tokenizer,
        callbacks=[CheckpointMarker(), *(callbacks or [])],
        compute_metrics=masked_accuracy,
        preprocess_logits_for_metrics=predicted_tokens,
    )
    start = _start_metrics(trainer, checkpoint_dir, resuming=last_checkpoint is not None, is_main=is_main)
    result = trainer.train(resume_from_checkpoint=str(last_checkpoint) if last_checkpoint else None)
    end = trainer.evaluate() if eval_dataset is not None else {}

    metrics: Dict[str, Any] = {
        "encoder": str(encoder),
        "from_scratch": size is not None,
        "size": size,
        "objective": objective,
        "nsp": nsp,
        "max_seq_length": max_seq_length,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "resumed_from": last_checkpoint.name if last_checkpoint else None,
        "train_loss": result.training_loss,
        "train_sequences": len(train_dataset),
        "eval_sequences": len(eval_dataset or []),
        "eval_loss_before": start.get("eval_loss"),
        "eval_loss_after": end.get("eval_loss"),
        "perplexity_before": start.get("eval_perplexity"),
        "perplexity_after": end.get("eval_perplexity"),
        "masked_accuracy_before": start.get("eval_masked_accuracy"),
        "masked_accuracy_after": end.get("eval_masked_accuracy"),
        "train_runtime_s": result.metrics.get("train_runtime"),
        "processes": args.world_size,
        "loading": loading.to_dict(),
        "vocab_added": added_words,
        "output": str(output_dir),
        "with_head": with_head,
    }
    if metrics["perplexity_before"] and metrics["perplexity_after"] is not None:
        metrics["perplexity_change"] = metrics["perplexity_after"] / metrics["perplexity_before"] - 1.0
    if trainer.is_world_process_zero():
        save_encoder(trainer.model, tokenizer, output_dir, with_head=with_head)
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf8")
        logger.info("Wrote the encoder and %s to %s", METRICS_FILE, output_dir)
    return metrics


def predicted_tokens(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """The predicted piece at every position of the batch (argmax), so evaluation keeps ids, not logits.

    A masked-positions head (model.py) returns logits for the masked positions only,
    in row-major order; they go back to their places, -100 elsewhere, so batches
    concatenate as Trainer expects.
    """
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits  # MLM + NSP heads: the MLM logits
    labels = labels[0] if isinstance(labels, (tuple, list)) else labels
    if logits.dim() == 2:
        placed = torch.full_like(labels, -100)
        placed[labels != -100] = logits.argmax(dim=-1)
        return placed
    return logits.argmax(dim=-1)


def masked_accuracy(prediction: Any) -> Dict[str, float]:
    """Share of the held-out masked positions whose original piece the head predicts (as run_mlm.py reports)."""
    predicted, labels = prediction.predictions, prediction.label_ids
    predicted = predicted[0] if isinstance(predicted, (tuple, list)) else predicted
    labels = labels[0] if isinstance(labels, (tuple, list)) else labels  # NSP adds next_sentence_label
    scored = labels != -100
    return {"masked_accuracy": float((predicted[scored] == labels[scored]).mean()) if scored.any() else 0.0}


def perplexity(loss: float) -> float:
    """exp(loss), infinite rather than an overflow."""
    return math.exp(loss) if loss < 700 else float("inf")


def _fresh_encoder(texts, init_dir: Path, *, size: str, vocab_size: int, lowercase: bool,
                   max_positions: int, seed: int, log: bool) -> Path:
    """A fresh BERT from ``init_encoder``, made once per run and reused on resume."""
    if not (init_dir / "config.json").exists():
        if log:
            logger.info("Training a %d-piece vocabulary on %d file(s) for a fresh %s BERT", vocab_size, len(texts), size)
        init_encoder(texts, init_dir, size=size, vocab_size=vocab_size, lowercase=lowercase,
                     max_positions=max_positions, seed=seed)
    return init_dir


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
            _remove_run(checkpoint_dir)
        return None
    checkpoints = _checkpoints(checkpoint_dir)
    if checkpoints and not resume:
        raise ValueError(
            f"{checkpoint_dir} holds checkpoints of an earlier run (last: {checkpoints[-1].name}). "
            "Pass --resume to continue it, or --overwrite to start again."
        )
    complete = [path for path in checkpoints if is_complete_checkpoint(path)]
    last = complete[-1] if complete else None
    broken = [path for path in checkpoints if path not in complete and (last is None or _step(path) > _step(last))]
    if resume and broken and is_main:
        logger.warning(
            "Passing over %s: written only in part (the run was stopped while saving); removing %s",
            ", ".join(path.name for path in broken), "it" if len(broken) == 1 else "them",
        )
        for path in broken:
            shutil.rmtree(path)
    if resume and is_main:
        if last is not None:
            logger.info("Resuming from %s (step %d)", last, _step(last))
        else:
            logger.info("No complete checkpoint in %s to resume from; starting from the beginning", checkpoint_dir)
    return last


def is_complete_checkpoint(path: Path) -> bool:
    """Whether Trainer finished writing the checkpoint folder ``path``.

    It is complete with our marker (``CheckpointMarker``), or, for a checkpoint
    written without it, with a readable ``trainer_state.json``: Trainer writes that
    file after the weights, optimizer and RNG states.
    """
    if (path / COMPLETE_FILE).is_file():
        return True
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf8"))
    except (OSError, ValueError):
        return False
    return any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))


def _checkpoints(checkpoint_dir: Path) -> List[Path]:
    """The ``checkpoint-N`` folders, by step."""
    if not checkpoint_dir.is_dir():
        return []
    folders = [path for path in checkpoint_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.is_dir()]
    return sorted((path for path in folders if path.name.split("-")[-1].isdigit()), key=_step)


def _step(path: Path) -> int:
    return int(path.name.split("-")[-1])


def _remove_run(checkpoint_dir: Path) -> None:
    """Delete an earlier run's checkpoints and fresh encoder; keep the tokenised cache."""
    for path in checkpoint_dir.glob("checkpoint-*"):
        shutil.rmtree(path)
    for name in (INIT_DIR, START_FILE):
        path = checkpoint_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _check_length(max_seq_length: int, config, encoder: Path) -> None:
    limit = max_positions(config)
    if limit is not None and max_seq_length > limit:
        raise ValueError(
            f"--max-seq-length {max_seq_length} is longer than the {limit} positions of the encoder in "
            f"{encoder}. Pass --max-seq-length {limit} or less."
        )


def _extend_vocabulary(model, tokenizer, texts, train_docs, *, layout, max_words, min_count, min_pieces, log):
    """Add frequent, much-split words of the training documents to tokenizer and model."""
    keep = set(train_docs.tolist())
    lines, offset = [], 0
    for path in texts:
        docs = read_documents(path, layout)
        lines.extend(line for i, doc in enumerate(docs) if offset + i in keep for line in doc)
        offset += len(docs)
    words = find_domain_words(lines, tokenizer, max_words=max_words, min_count=min_count, min_pieces=min_pieces)
    if not words:
        if log:
            logger.info("No word occurs %d times and splits into %d pieces; the vocabulary stays as it is", min_count, min_pieces)
        return tokenizer, []
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    extended = extend_wordpiece_vocabulary(tokenizer, words)
    extend_embeddings(model, pieces)
    if log:
        logger.info(
            "Added %d domain words to the vocabulary (%d -> %d), each started as the mean of its pieces: %s",
            len(words), len(tokenizer), len(extended), ", ".join(words[:20]) + (" ..." if len(words) > 20 else ""),
        )
    return extended, words


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
